//! How a [`PgStore`](super::PgStore) connects and how long it waits
//! ([`PgStoreConfig`]), and connection settings from the environment, as
//! libpq reads them ([`PgStoreConfig::from_env`]).

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::TargetSessionAttrs;

use super::conn_string::split_tls;
use super::tls::{TlsParams, TlsSettings};
use crate::Error;

/// The default number of pooled connections a [`PgStore`](super::PgStore)
/// opens at most.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// tokio-postgres's keepalive idle time when the settings name none; it is
/// the operating system's usual default too.
const DRIVER_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// How a [`PgStore`](super::PgStore) connects, how many connections it
/// keeps, and how long it waits for each thing.
///
/// Plain data: the connection settings are required
/// ([`new`](Self::new), [`from_env`](Self::from_env)); every other field
/// has the default documented on it. No wait is unbounded, so that a server
/// that stops answering (frozen, or the network gone) turns into a
/// transient error instead of a call that never returns.
///
/// ```no_run
/// use std::time::Duration;
/// use ebb_message_store::pg::{PgStore, PgStoreConfig};
///
/// let store = PgStore::new(PgStoreConfig {
///     max_connections: 4,
///     call_timeout: Duration::from_secs(5),
///     ..PgStoreConfig::from_env()?
/// })?;
/// # Ok::<(), ebb_message_store::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PgStoreConfig {
    /// Where to connect and as whom. The store adds
    /// `-c search_path=message_store,public` to the options unless they
    /// name a search path (see
    /// [`with_store_search_path`](super::with_store_search_path)), and the
    /// timeouts and keepalive settings below.
    pub connection: tokio_postgres::Config,
    /// How connections use TLS: libpq's `sslmode`, `sslrootcert`,
    /// `sslcert` and `sslkey`, for every connection the store opens (the
    /// pool's, the wake-up listener's, cancel requests). Default: from
    /// the connection settings' `sslmode` (`prefer` unless set).
    pub tls: TlsSettings,
    /// The most connections the pool opens. Default:
    /// [`DEFAULT_MAX_CONNECTIONS`] (16).
    pub max_connections: usize,
    /// How many connections the store's own calls share, pipelined. With
    /// 0 each call (a write, a stream read's batch) borrows a pooled
    /// connection for itself. With N > 0 each call takes the least busy
    /// of N shared connections (each borrowed from the pool while calls
    /// use it): one with no call in flight while there is one, so up to N
    /// calls made at the same time run side by side as pooled calls
    /// would; beyond N, calls queue on a shared connection and travel
    /// together: the server runs them back to back without waiting for
    /// the client in between, so it does not wake a backend for each call,
    /// which is much of a short call's cost on a local server.
    ///
    /// Worth it for handlers that run at once (a consumer's `concurrency`
    /// above 1, several consumers on one store): `BENCHMARKS.md`
    /// (*Consumer features*) measures a consumer at concurrency 8 against
    /// concurrency 1 with 4 shared connections and with none. Not the
    /// default: with it on, consumers on small pools (two connections)
    /// were seen to stall in tests under load, a cause not yet found. A
    /// category read
    /// ([`read_category`](crate::MessageStore::read_category), a
    /// consumer's batches of 1,000 rows) always runs on a pooled
    /// connection of its own, since a long batch would hold up the short
    /// calls queued behind it and wait behind them.
    ///
    /// A call that times out or fails with its connection takes that
    /// connection out of the turn (cancelling its statement), and the
    /// calls queued behind it fail with it (transient errors, retried
    /// where the caller retries). [`PgStore::client`](super::PgStore::client),
    /// transactions, category reads and wake-ups always use connections of
    /// their own. At most `max_connections - 1` are shared, so that the
    /// pool keeps a connection for those: a pool of one connection
    /// pipelines nothing. Default: 0.
    pub pipeline_connections: usize,
    /// How long a call waits for a pooled connection when all of them are
    /// in use. Default: 30 s.
    pub wait_timeout: Duration,
    /// How long opening a connection may take, from connecting the socket
    /// to the end of the startup handshake. Default: the connection
    /// settings' `connect_timeout` if they have one, else 10 s.
    pub connect_timeout: Duration,
    /// How long checking a pooled connection before handing it out again
    /// may take. Default: 5 s.
    pub recycle_timeout: Duration,
    /// How long one call may wait for the server once it has a connection:
    /// one write, one batch of a read, the server's whole work on it
    /// included. Past it the call fails with [`Error::Timeout`] and its
    /// connection is closed rather than reused. Default: 30 s; raise it for
    /// unbounded reads (batch size -1) of large categories.
    pub call_timeout: Duration,
    /// TCP: how long a connection may be idle before keepalive probes
    /// start. Default: the connection settings' `keepalives_idle` if they
    /// have one, else 60 s. Unix-socket connections need no keepalives.
    pub keepalive_idle: Duration,
    /// TCP: the time between keepalive probes. Default: the connection
    /// settings' `keepalives_interval` if they have one, else 10 s.
    pub keepalive_interval: Duration,
    /// TCP: how many unanswered keepalive probes mean the connection is
    /// lost. Default: the connection settings' `keepalives_retries` if they
    /// have one, else 3.
    pub keepalive_retries: u32,
    /// TCP (Linux): how long sent data may go unacknowledged before the
    /// connection counts as lost (`TCP_USER_TIMEOUT`). Default: the
    /// connection settings' `tcp_user_timeout` if they have one, else 30 s.
    pub tcp_user_timeout: Duration,
    /// Wake-ups: how long after a notification its category counts as
    /// busy. While it is, [`arm_wakeup`](crate::MessageStore::arm_wakeup)
    /// does not ask the database for another notification but returns a
    /// wake-up after [`busy_category_poll`](Self::busy_category_poll):
    /// the reader polls quickly while messages keep coming, and each
    /// category costs its writers at most one notifying commit per window
    /// (a notifying commit holds a database-wide lock through its WAL
    /// flush). Zero arms the database at every call. Default: 1 s.
    pub busy_category_window: Duration,
    /// Wake-ups: how soon the wake-up of a busy category comes (see
    /// [`busy_category_window`](Self::busy_category_window)), which bounds
    /// the delay of a message written to it, at the price of a read per
    /// interval by each waiting reader. The store's busy categories share
    /// it: with `n` of them busy, each one's wake-up comes after `n`
    /// intervals, so that a component with many busy consumers reads about
    /// once per interval in all rather than once per interval each.
    /// Default: 2 ms.
    pub busy_category_poll: Duration,
    /// Whether the store's calls prepare each statement once per
    /// connection and keep it (`true`), or run each one as an unnamed
    /// statement (`false`: parse, bind and execute in the one round trip
    /// all the same; see `BENCHMARKS.md` for what it costs the server),
    /// preparing nothing a transaction-pooling PgBouncer could lose.
    /// `EBB_PREPARED_STATEMENTS=off` in the environment turns it off.
    /// With it off and no [`listen`](Self::listen) connection, wake-ups
    /// are off too (`LISTEN` needs a session, which transaction pooling
    /// does not keep): readers poll, and the first to arm says so once.
    /// Default: on.
    pub prepared_statements: bool,
    /// Where the wake-up listener connects, when not where the store's
    /// other connections go: straight to the server (or through a
    /// session-pooling PgBouncer) for a store whose connections go through
    /// a transaction-pooling one. From `EBB_LISTEN_DATABASE_URL` (a URL or
    /// `key=value` string, read like `DATABASE_URL`). Default: none, the
    /// store's own connection settings.
    pub listen: Option<ListenConnection>,
    /// Group commit: whether [`write`](crate::MessageStore::write)s made
    /// to one category at the same time go to the server together.
    ///
    /// Message DB makes the writes to a category take turns, each holding
    /// the category's lock until it has committed, WAL flush included: a
    /// busy category (every command of a component lands in one) commits
    /// one write, and flushes once, at a time, however many tasks write
    /// to it. With group commit, a write to a category with no write out
    /// goes at once, alone, as `write_message`; the writes made while one
    /// is out queue, and go together in one call of
    /// `message_store.ebb_write_messages` when it ends: one round trip,
    /// one lock, one flush for all of them. Each write is still checked
    /// against its own expected version, and a conflict fails that write
    /// only (see [`Error::Grouped`](crate::Error::Grouped) for the errors
    /// a group shares). A queued write waits for the write or group ahead
    /// of it, then for its own group: at most twice the call timeout.
    ///
    /// On a database installed by Message DB's own scripts, which has no
    /// `ebb_write_messages`, writes go one by one as before.
    /// [`write_batch`](crate::MessageStore::write_batch) and the
    /// [`operations`](super::operations) (the caller's own transactions)
    /// are never grouped. `EBB_GROUP_COMMIT=off` in the environment turns
    /// it off. Default: on.
    pub group_commit: bool,
}

/// A connection of its own for the wake-up listener (see
/// [`PgStoreConfig::listen`]).
#[derive(Debug, Clone)]
pub struct ListenConnection {
    /// Where to connect and as whom; the store's search path, timeouts
    /// and keepalives are added as to its other connections.
    pub connection: tokio_postgres::Config,
    /// Its TLS settings.
    pub tls: TlsSettings,
}

impl PgStoreConfig {
    /// The defaults, for the database `connection` names.
    pub fn new(connection: tokio_postgres::Config) -> Self {
        let keepalive_idle = match connection.get_keepalives_idle() {
            DRIVER_KEEPALIVES_IDLE => Duration::from_secs(60),
            set => set,
        };
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            pipeline_connections: 0,
            wait_timeout: Duration::from_secs(30),
            connect_timeout: connection
                .get_connect_timeout()
                .copied()
                .unwrap_or(Duration::from_secs(10)),
            recycle_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            keepalive_idle,
            keepalive_interval: connection
                .get_keepalives_interval()
                .unwrap_or(Duration::from_secs(10)),
            keepalive_retries: connection.get_keepalives_retries().unwrap_or(3),
            tcp_user_timeout: connection
                .get_tcp_user_timeout()
                .copied()
                .unwrap_or(Duration::from_secs(30)),
            busy_category_window: Duration::from_secs(1),
            busy_category_poll: Duration::from_millis(2),
            tls: TlsSettings::from_driver(connection.get_ssl_mode()),
            prepared_statements: true,
            listen: None,
            group_commit: true,
            connection,
        }
    }

    /// The defaults, for the database the environment names: the
    /// settings in `DATABASE_URL` (a `postgres://` URL or a `key=value`
    /// string), or else those of the libpq variables:
    ///
    /// | variable | default |
    /// |---|---|
    /// | `PGHOST` | `/var/run/postgresql` if that socket directory exists, else `localhost` |
    /// | `PGPORT` | 5432 |
    /// | `PGTARGETSESSIONATTRS` | `any` (`read-write`: only a primary will do) |
    /// | `EBB_PREPARED_STATEMENTS` | `on` (`off` behind a transaction-pooling PgBouncer) |
    /// | `EBB_LISTEN_DATABASE_URL` | none: wake-ups listen where `DATABASE_URL` points |
    /// | `EBB_GROUP_COMMIT` | `on` (see [`group_commit`](Self::group_commit)) |
    /// | `PGUSER` | `USER` |
    /// | `PGPASSWORD` | none |
    /// | `PGDATABASE` | the user name |
    /// | `PGSSLMODE` | `prefer` (`verify-full` with `PGSSLROOTCERT=system`) |
    /// | `PGSSLROOTCERT` | none |
    /// | `PGSSLCERT`, `PGSSLKEY` | none |
    ///
    /// `PGHOST` and `PGPORT` may be lists (`PGHOST=/run/postgresql,db2`,
    /// `PGPORT=5432,5433`: one port for all hosts, or one per host), tried
    /// in turn as libpq does; with `PGTARGETSESSIONATTRS=read-write` a
    /// standby is passed over, so a list of a primary and its standbys
    /// finds whichever is the primary after a failover.
    ///
    /// A variable set to the empty string counts as unset. With
    /// `DATABASE_URL` set, the user, database and TLS variables stand in
    /// for what it leaves out, as with libpq. `sslmode` takes libpq's six
    /// values (see [`TlsSettings`]), in either place.
    ///
    /// ```no_run
    /// let config = ebb_message_store::pg::PgStoreConfig::from_env()?;
    /// # Ok::<(), ebb_message_store::Error>(())
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The defaults, for the database `text` names: a `postgres://` URL or
    /// a `key=value` string, read as [`from_env`](Self::from_env) reads
    /// `DATABASE_URL` (the libpq variables stand in for what it leaves
    /// out).
    pub fn from_connection_string(text: &str) -> Result<Self, Error> {
        Self::from_vars(|name| match name {
            "DATABASE_URL" => Some(text.to_owned()),
            name => std::env::var(name).ok(),
        })
    }

    /// [`from_env`](Self::from_env) with the variables `var` gives.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let (connection, tls) = config_from(&var)?;
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let prepared_statements = match set("EBB_PREPARED_STATEMENTS") {
            None => true,
            Some(value) => parse_switch(&value).ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "EBB_PREPARED_STATEMENTS must be on or off, not {value:?}"
                ))
            })?,
        };
        let group_commit = match set("EBB_GROUP_COMMIT") {
            None => true,
            Some(value) => parse_switch(&value).ok_or_else(|| {
                Error::InvalidConfig(format!("EBB_GROUP_COMMIT must be on or off, not {value:?}"))
            })?,
        };
        let listen = match set("EBB_LISTEN_DATABASE_URL") {
            None => None,
            Some(url) => {
                let (connection, tls) = config_from(|name| match name {
                    "DATABASE_URL" => Some(url.clone()),
                    name => var(name),
                })
                .map_err(|err| match err {
                    Error::InvalidConfig(problem) => Error::InvalidConfig(format!(
                        "EBB_LISTEN_DATABASE_URL: {}",
                        problem.trim_start_matches("DATABASE_URL: ")
                    )),
                    Error::InvalidDatabaseUrl(source) => Error::InvalidConfig(format!(
                        "EBB_LISTEN_DATABASE_URL is not a PostgreSQL connection string: {source}"
                    )),
                    other => other,
                })?;
                Some(ListenConnection { connection, tls })
            }
        };
        Ok(Self {
            tls,
            prepared_statements,
            listen,
            group_commit,
            ..Self::new(connection)
        })
    }

    /// Refuses settings no pool can work with: no connections, a timeout
    /// of zero, or hosts, addresses and ports whose counts do not match.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.max_connections == 0 {
            return Err(Error::InvalidConfig(
                "max_connections must be at least 1".into(),
            ));
        }
        let timeouts = [
            ("wait_timeout", self.wait_timeout),
            ("connect_timeout", self.connect_timeout),
            ("recycle_timeout", self.recycle_timeout),
            ("call_timeout", self.call_timeout),
            ("keepalive_idle", self.keepalive_idle),
            ("keepalive_interval", self.keepalive_interval),
            ("tcp_user_timeout", self.tcp_user_timeout),
        ];
        for (name, value) in timeouts {
            if value.is_zero() {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be longer than zero"
                )));
            }
        }
        // No host at all is reported when a connection is opened, as the
        // driver does.
        if !self.connection.get_hosts().is_empty() || !self.connection.get_hostaddrs().is_empty() {
            super::hosts::targets(&self.connection).map_err(Error::InvalidConfig)?;
        }
        Ok(())
    }

    /// The connections the store's calls share, pipelined:
    /// [`pipeline_connections`](Self::pipeline_connections), but at most
    /// `max_connections - 1`, so that the pool keeps one for transactions,
    /// category reads and [`PgStore::client`](super::PgStore::client).
    pub fn effective_pipeline_connections(&self) -> usize {
        self.pipeline_connections
            .min(self.max_connections.saturating_sub(1))
    }

    /// The connection settings every connection of the store is opened
    /// with: the caller's, the store's search path, and the timeouts and
    /// keepalives of this configuration.
    pub fn effective_connection(&self) -> tokio_postgres::Config {
        self.with_store_settings(self.connection.clone())
    }

    /// `connection` with the store's search path, timeouts and keepalives.
    pub(crate) fn with_store_settings(
        &self,
        connection: tokio_postgres::Config,
    ) -> tokio_postgres::Config {
        let mut connection = super::with_store_search_path(connection);
        connection
            .connect_timeout(self.connect_timeout)
            .keepalives_idle(self.keepalive_idle)
            .keepalives_interval(self.keepalive_interval)
            .keepalives_retries(self.keepalive_retries)
            .tcp_user_timeout(self.tcp_user_timeout);
        connection
    }
}

/// `on`/`off` and the other ways of saying so libpq and PostgreSQL accept.
fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// The connection settings the variables `var` gives name (see
/// [`PgStoreConfig::from_env`]), and their TLS settings.
pub(crate) fn config_from(
    var: impl Fn(&str) -> Option<String>,
) -> Result<(tokio_postgres::Config, TlsSettings), Error> {
    let var = |name: &str| var(name).filter(|value| !value.is_empty());
    if let Some(url) = var("DATABASE_URL") {
        let (url, tls) = split_tls(&url)?;
        let tls = TlsSettings::from_params(tls, var)?;
        let mut config =
            tokio_postgres::Config::from_str(&url).map_err(Error::InvalidDatabaseUrl)?;
        // libpq's defaults for what the URL leaves out.
        if config.get_user().is_none() {
            config.user(
                var("PGUSER")
                    .or_else(|| var("USER"))
                    .unwrap_or_else(|| "postgres".into()),
            );
        }
        if config.get_dbname().is_none() {
            let user = config.get_user().unwrap_or_default().to_owned();
            config.dbname(var("PGDATABASE").unwrap_or(user));
        }
        return Ok((config, tls));
    }
    let mut config = tokio_postgres::Config::new();
    let host = var("PGHOST").unwrap_or_else(|| {
        if std::path::Path::new("/var/run/postgresql").is_dir() {
            "/var/run/postgresql".into()
        } else {
            "localhost".into()
        }
    });
    for host in host.split(',') {
        config.host(host);
    }
    // One port for every host, or one per host, as in a connection string.
    for port in var("PGPORT").as_deref().unwrap_or("5432").split(',') {
        let port = port
            .trim()
            .parse()
            .map_err(|_| Error::InvalidConfig(format!("PGPORT is not a port number: {port:?}")))?;
        config.port(port);
    }
    if let Some(attrs) = var("PGTARGETSESSIONATTRS") {
        config.target_session_attrs(match attrs.as_str() {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "PGTARGETSESSIONATTRS must be any, read-write or read-only, not {other:?}"
                )));
            }
        });
    }
    let user = var("PGUSER")
        .or_else(|| var("USER"))
        .unwrap_or_else(|| "postgres".into());
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    config.dbname(var("PGDATABASE").unwrap_or_else(|| user.clone()));
    config.user(user);
    Ok((config, TlsSettings::from_params(TlsParams::default(), var)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<tokio_postgres::Config, Error> {
        with_tls(vars).map(|(config, _)| config)
    }

    fn with_tls(vars: &[(&str, &str)]) -> Result<(tokio_postgres::Config, TlsSettings), Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn libpq_s_tls_settings_in_either_form_of_database_url() {
        use crate::pg::{RootCerts, SslMode};
        let (config, tls) = with_tls(&[(
            "DATABASE_URL",
            "postgres://a@db.example/store?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )])
        .unwrap();
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Tcp("db.example".into())]
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_certs, Some(RootCerts::File("/etc/ca.pem".into())));
        let (config, tls) = with_tls(&[
            ("DATABASE_URL", "host=db.example dbname=store sslmode=allow"),
            ("PGSSLMODE", "require"),
            ("PGSSLCERT", "/me.pem"),
            ("PGSSLKEY", "/me.key"),
        ])
        .unwrap();
        assert_eq!(config.get_dbname(), Some("store"));
        assert_eq!(tls.mode, SslMode::Allow);
        assert_eq!(
            tls.client_cert.as_deref(),
            Some(std::path::Path::new("/me.pem"))
        );
        let err = with_tls(&[("PGHOST", "db.example"), ("PGSSLMODE", "verify-ca")]).unwrap_err();
        assert!(err.to_string().contains("sslrootcert"), "{err}");
        let err = from(&[("DATABASE_URL", "postgres://db.example/?sslmode=verify")]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidTlsSetting {
                    setting: "sslmode",
                    ..
                }
            ),
            "{err}"
        );
        let config =
            PgStoreConfig::from_vars(|name| (name == "PGSSLMODE").then(|| "disable".to_owned()))
                .unwrap();
        assert_eq!(config.tls.mode, SslMode::Disable);
    }

    #[test]
    fn database_url_wins() {
        let config = from(&[
            ("DATABASE_URL", "postgres://alice@db.example:6543/store"),
            ("PGUSER", "bob"),
        ])
        .unwrap();
        assert_eq!(config.get_user(), Some("alice"));
        assert_eq!(config.get_dbname(), Some("store"));
        assert_eq!(config.get_ports(), [6543]);
    }

    #[test]
    fn a_url_without_user_or_database_gets_libpq_s_defaults() {
        let config = from(&[
            ("DATABASE_URL", "postgres://db.example/"),
            ("USER", "carol"),
        ])
        .unwrap();
        assert_eq!(config.get_user(), Some("carol"));
        assert_eq!(config.get_dbname(), Some("carol"));
    }

    #[test]
    fn libpq_variables_with_defaults() {
        let config = from(&[("PGHOST", "127.0.0.1"), ("PGUSER", "bob")]).unwrap();
        assert_eq!(config.get_user(), Some("bob"));
        assert_eq!(config.get_dbname(), Some("bob"));
        assert_eq!(config.get_ports(), [5432]);
    }

    fn store_config(vars: &[(&str, &str)]) -> Result<PgStoreConfig, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        PgStoreConfig::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn prepared_statements_and_the_listening_connection_from_the_environment() {
        let defaults = store_config(&[("PGHOST", "db.example")]).unwrap();
        assert!(defaults.prepared_statements);
        assert!(defaults.listen.is_none());

        let pooled = store_config(&[
            ("DATABASE_URL", "postgres://app@127.0.0.1:6432/store"),
            ("EBB_PREPARED_STATEMENTS", "off"),
            (
                "EBB_LISTEN_DATABASE_URL",
                "postgres://app@127.0.0.1:5432/store?sslmode=verify-full&sslrootcert=/ca.pem",
            ),
        ])
        .unwrap();
        assert!(!pooled.prepared_statements);
        assert_eq!(pooled.connection.get_ports(), [6432]);
        let listen = pooled.listen.expect("a listening connection");
        assert_eq!(listen.connection.get_ports(), [5432]);
        assert_eq!(listen.connection.get_user(), Some("app"));
        assert_eq!(listen.tls.mode, super::super::SslMode::VerifyFull);
        assert_eq!(pooled.tls.mode, super::super::SslMode::Prefer);

        for on in ["on", "TRUE", "1", "yes"] {
            let config = store_config(&[("EBB_PREPARED_STATEMENTS", on)]).unwrap();
            assert!(config.prepared_statements, "{on}");
        }
        let err = store_config(&[("EBB_PREPARED_STATEMENTS", "sometimes")]).unwrap_err();
        assert!(err.to_string().contains("EBB_PREPARED_STATEMENTS"), "{err}");
        let err = store_config(&[("EBB_LISTEN_DATABASE_URL", "postgres://a:b:c/d")]).unwrap_err();
        assert!(err.to_string().contains("EBB_LISTEN_DATABASE_URL"), "{err}");
    }

    #[test]
    fn host_and_port_lists_and_the_session_wanted() {
        let config = from(&[
            ("PGHOST", "/run/postgresql,10.0.0.2"),
            ("PGPORT", "5432,5433"),
            ("PGTARGETSESSIONATTRS", "read-write"),
        ])
        .unwrap();
        assert_eq!(
            config.get_hosts(),
            [
                tokio_postgres::config::Host::Unix("/run/postgresql".into()),
                tokio_postgres::config::Host::Tcp("10.0.0.2".into()),
            ]
        );
        assert_eq!(config.get_ports(), [5432, 5433]);
        assert_eq!(
            config.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        let err = from(&[("PGTARGETSESSIONATTRS", "primary")]).unwrap_err();
        assert!(err.to_string().contains("PGTARGETSESSIONATTRS"), "{err}");
        let err = from(&[("PGPORT", "5432,x")]).unwrap_err();
        assert!(err.to_string().contains("\"x\""), "{err}");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let config = from(&[
            ("DATABASE_URL", ""),
            ("PGHOST", "db.example"),
            ("PGPORT", "6543"),
            ("PGUSER", "bob"),
        ])
        .unwrap();
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Tcp("db.example".into())]
        );
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(config.get_user(), Some("bob"));

        let config = from(&[
            ("PGHOST", "db.example"),
            ("PGPORT", ""),
            ("PGUSER", "bob"),
            ("PGDATABASE", ""),
        ])
        .unwrap();
        assert_eq!(config.get_ports(), [5432]);
        assert_eq!(config.get_dbname(), Some("bob"));
    }

    #[test]
    fn timeouts_default_to_the_connection_settings_then_to_ebb_s() {
        let config = PgStoreConfig::new(from(&[("DATABASE_URL", "postgres://a@h/d")]).unwrap());
        assert_eq!(config.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(config.pipeline_connections, 0);
        assert_eq!(config.effective_pipeline_connections(), 0);
        assert_eq!(config.wait_timeout, Duration::from_secs(30));
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.recycle_timeout, Duration::from_secs(5));
        assert_eq!(config.keepalive_idle, Duration::from_secs(60));
        assert_eq!(config.keepalive_interval, Duration::from_secs(10));
        assert_eq!(config.keepalive_retries, 3);
        assert_eq!(config.tcp_user_timeout, Duration::from_secs(30));
        assert_eq!(config.call_timeout, Duration::from_secs(30));
        config.validate().unwrap();

        let config = PgStoreConfig::new(
            from(&[(
                "DATABASE_URL",
                "postgres://a@h/d?connect_timeout=3&keepalives_idle=20\
                 &keepalives_interval=4&keepalives_retries=5&tcp_user_timeout=7",
            )])
            .unwrap(),
        );
        assert_eq!(config.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.keepalive_idle, Duration::from_secs(20));
        assert_eq!(config.keepalive_interval, Duration::from_secs(4));
        assert_eq!(config.keepalive_retries, 5);
        assert_eq!(config.tcp_user_timeout, Duration::from_secs(7));

        let effective = config.effective_connection();
        assert_eq!(
            effective.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(effective.get_keepalives_idle(), Duration::from_secs(20));
        assert_eq!(
            effective.get_keepalives_interval(),
            Some(Duration::from_secs(4))
        );
        assert_eq!(effective.get_keepalives_retries(), Some(5));
        assert_eq!(
            effective.get_options(),
            Some("-c search_path=message_store,public")
        );
    }

    #[test]
    fn settings_no_pool_can_use_are_refused() {
        let base = PgStoreConfig::new(tokio_postgres::Config::new());
        let none = PgStoreConfig {
            max_connections: 0,
            ..base.clone()
        };
        let err = none.validate().unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
        // Sharing every connection would leave none for transactions: the
        // pool keeps one back, and a pool of one pipelines nothing.
        let all_shared = PgStoreConfig {
            max_connections: 4,
            pipeline_connections: 4,
            ..base.clone()
        };
        all_shared.validate().unwrap();
        assert_eq!(all_shared.effective_pipeline_connections(), 3);
        let one = PgStoreConfig {
            max_connections: 1,
            ..base.clone()
        };
        one.validate().unwrap();
        assert_eq!(one.effective_pipeline_connections(), 0);
        let zero = PgStoreConfig {
            call_timeout: Duration::ZERO,
            ..base
        };
        let err = zero.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
        assert!(err.to_string().contains("call_timeout"), "{err}");
        let ports = PgStoreConfig::new("host=a,b,c port=1,2".parse().unwrap());
        let err = ports.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
        assert!(err.to_string().contains("3 hosts but 2 ports"), "{err}");
    }

    #[test]
    fn bad_values_are_reported() {
        let err = from(&[("PGPORT", "fifty")]).unwrap_err();
        assert!(err.to_string().contains("PGPORT"), "{err}");
        let err = from(&[("DATABASE_URL", "postgres://x:notaport/")]).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }
}
