//! Trying each host a connection string names, as libpq does, on every
//! path ebb opens a connection by: the pool, dedicated connections (the
//! wake-up listener), and [`connect`](super::connect).
//!
//! A connection string may name several hosts (`host=/run/pg,10.0.0.2`,
//! `postgres://a:5432,b:5433/db`, `PGHOST=a,b PGPORT=5432,5433`), each a
//! Unix socket directory or a TCP host. They are tried in order (in a
//! random order with `load_balance_hosts=random`), each within the connect
//! timeout, and the first that accepts the session, and offers the kind of
//! session `target_session_attrs` asks for, is used. So after a failover
//! the connection string that names both the old primary and its standby,
//! with `target_session_attrs=read-write`, finds the new primary.
//!
//! Each host is tried with settings that name it alone ([`Target::config`]),
//! so each gets its own TLS negotiation (`sslmode=prefer` falls back to a
//! plain connection for that host only; a socket directory never asks for
//! TLS) and a socket directory keeps the pool's own socket connector.
//!
//! When no host will do, the error names every host tried and why each
//! refused ([`ConnectFailed`]).

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::IpAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{Host, LoadBalanceHosts, TargetSessionAttrs};
use tokio_postgres::tls::TlsStream;
use tokio_postgres::{Client, Config, Connection, SimpleQueryMessage};

/// One place a connection can go: one entry of the settings' host list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// A TCP host name or address, or a socket directory.
    host: Option<Host>,
    /// The address to connect to instead of resolving `host`.
    hostaddr: Option<IpAddr>,
    port: u16,
}

impl Target {
    /// `base` naming this target alone, and asking for no particular
    /// session (the session is checked here, see [`connect_any`]).
    pub(crate) fn config(&self, base: &Config) -> Config {
        let mut config = Config::new();
        if let Some(user) = base.get_user() {
            config.user(user);
        }
        if let Some(password) = base.get_password() {
            config.password(password);
        }
        if let Some(dbname) = base.get_dbname() {
            config.dbname(dbname);
        }
        if let Some(options) = base.get_options() {
            config.options(options);
        }
        if let Some(name) = base.get_application_name() {
            config.application_name(name);
        }
        config
            .ssl_mode(base.get_ssl_mode())
            .ssl_negotiation(base.get_ssl_negotiation())
            .port(self.port)
            .keepalives(base.get_keepalives())
            .keepalives_idle(base.get_keepalives_idle())
            .channel_binding(base.get_channel_binding())
            .target_session_attrs(TargetSessionAttrs::Any);
        match &self.host {
            Some(Host::Tcp(name)) => {
                config.host(name);
            }
            #[cfg(unix)]
            Some(Host::Unix(dir)) => {
                config.host_path(dir);
            }
            None => {}
        }
        if let Some(address) = self.hostaddr {
            config.hostaddr(address);
        }
        if let Some(timeout) = base.get_connect_timeout() {
            config.connect_timeout(*timeout);
        }
        if let Some(timeout) = base.get_tcp_user_timeout() {
            config.tcp_user_timeout(*timeout);
        }
        if let Some(interval) = base.get_keepalives_interval() {
            config.keepalives_interval(interval);
        }
        if let Some(retries) = base.get_keepalives_retries() {
            config.keepalives_retries(retries);
        }
        config
    }

    /// True for a Unix socket directory.
    pub(crate) fn is_socket(&self) -> bool {
        #[cfg(unix)]
        {
            self.hostaddr.is_none() && matches!(self.host, Some(Host::Unix(_)))
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

/// `host:port`, `host (address):port`, or the socket file's path, as an
/// operator would look for it.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.port;
        match (&self.host, self.hostaddr) {
            #[cfg(unix)]
            (Some(Host::Unix(dir)), None) => {
                write!(f, "{}", dir.join(format!(".s.PGSQL.{port}")).display())
            }
            (Some(Host::Tcp(name)), Some(address)) if *name != address.to_string() => {
                write!(f, "{name} ({address}):{port}")
            }
            (Some(Host::Tcp(name)), _) if name.contains(':') => write!(f, "[{name}]:{port}"),
            (Some(Host::Tcp(name)), _) => write!(f, "{name}:{port}"),
            (_, Some(IpAddr::V6(address))) => write!(f, "[{address}]:{port}"),
            (_, Some(address)) => write!(f, "{address}:{port}"),
            (None, None) => write!(f, "port {port}"),
        }
    }
}

/// Every place `config` names, in its order; an error says why the list
/// cannot be made (counts of hosts, addresses and ports that do not
/// match, as libpq requires).
pub(crate) fn targets(config: &Config) -> Result<Vec<Target>, String> {
    let hosts = config.get_hosts();
    let addresses = config.get_hostaddrs();
    let ports = config.get_ports();
    if !hosts.is_empty() && !addresses.is_empty() && hosts.len() != addresses.len() {
        return Err(format!(
            "{} hosts but {} host addresses: give one address per host, or none",
            hosts.len(),
            addresses.len()
        ));
    }
    let count = hosts.len().max(addresses.len());
    if count == 0 {
        return Err("no host is given".into());
    }
    if ports.len() > 1 && ports.len() != count {
        return Err(format!(
            "{count} hosts but {} ports: give one port for all, or one per host",
            ports.len()
        ));
    }
    Ok((0..count)
        .map(|i| Target {
            host: hosts.get(i).cloned(),
            hostaddr: addresses.get(i).copied(),
            port: ports.get(i).or(ports.first()).copied().unwrap_or(5432),
        })
        .collect())
}

/// The targets of `config` in the order to try them: as written, or
/// shuffled with `load_balance_hosts=random`.
fn ordered_targets(config: &Config) -> Result<Vec<Target>, String> {
    let mut targets = targets(config)?;
    if config.get_load_balance_hosts() == LoadBalanceHosts::Random {
        shuffle(&mut targets);
    }
    Ok(targets)
}

fn shuffle<T>(items: &mut [T]) {
    use ring::rand::SecureRandom as _;
    let random = ring::rand::SystemRandom::new();
    for i in (1..items.len()).rev() {
        let mut bytes = [0; 8];
        if random.fill(&mut bytes).is_err() {
            return;
        }
        let j = (u64::from_le_bytes(bytes) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// How long all of `config`'s hosts may take, each within the connect
/// timeout, and a little more: what a caller's overall limit on opening
/// one connection must allow for, so that the hosts' own limits end an
/// attempt first, with an error that names them.
pub(crate) fn connect_budget(config: &Config, per_host: Duration) -> Duration {
    let hosts = targets(config).map_or(1, |targets| targets.len().max(1));
    per_host
        .saturating_mul(u32::try_from(hosts).unwrap_or(u32::MAX))
        .saturating_add(BUDGET_MARGIN)
}

/// What [`connect_budget`] adds to the hosts' limits.
const BUDGET_MARGIN: Duration = Duration::from_millis(500);

/// Why one host was not used.
#[derive(Debug)]
pub enum Refusal {
    /// The driver's error: the host could not be reached, refused the
    /// session, or failed the TLS handshake.
    Driver(tokio_postgres::Error),
    /// The host did not finish opening the session within the connect
    /// timeout.
    TimedOut(Duration),
    /// The session is not the kind `target_session_attrs` asks for: a
    /// standby (or a server with `default_transaction_read_only`) where
    /// writes were asked for, or a primary where a standby was.
    WrongSession {
        /// What the server said `transaction_read_only` was.
        read_only: bool,
    },
}

impl Refusal {
    /// Whether trying the host again later can help: an unreachable
    /// server, or one that is not (yet) the primary, as during a failover.
    /// A password, certificate or setting the server refuses is not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Driver(err) => crate::error::db_error_is_transient(err),
            Self::TimedOut(_) | Self::WrongSession { .. } => true,
        }
    }

    /// The driver's error, when it is one.
    pub fn driver_error(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Self::Driver(err) => Some(err),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for Refusal {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Driver(err)
    }
}

/// The cause alone, on one line: the server's message, or what went wrong
/// on the way to it.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Driver(err) => match err.as_db_error() {
                Some(db) => write!(f, "{}", db.message()),
                None => {
                    // The driver's own text ("error connecting to server")
                    // says less than its cause, which says what happened.
                    let mut causes = ebb_retry::Chain::new(err).skip(1).peekable();
                    match causes.peek() {
                        Some(_) => {
                            let text: Vec<String> = causes.map(ToString::to_string).collect();
                            write!(f, "{}", dedup_join(&text))
                        }
                        None => write!(f, "{err}"),
                    }
                }
            },
            Self::TimedOut(after) => write!(f, "no session within {after:?}"),
            Self::WrongSession { read_only: true } => f.write_str(
                "the server accepts no writes (a standby, or default_transaction_read_only is on)",
            ),
            Self::WrongSession { read_only: false } => {
                f.write_str("the server accepts writes, where a read-only session was asked for")
            }
        }
    }
}

/// `texts` joined by `: `, leaving out a text the line already ends with.
fn dedup_join(texts: &[String]) -> String {
    let mut line = String::new();
    for text in texts {
        if line.ends_with(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

/// One host tried, and why it was not used.
#[derive(Debug)]
pub struct Attempt {
    /// The host, as an operator would look for it (`db.example:5432`, a
    /// socket file's path).
    pub host: String,
    /// Why it was not used.
    pub refusal: Refusal,
}

/// Every host a connection was tried on refused it; each is named with its
/// cause, in the order they were tried.
///
/// Reached through [`Error::connect_failed`](crate::Error::connect_failed)
/// (the driver's error carries it as its I/O error).
#[derive(Debug)]
pub struct ConnectFailed {
    attempts: Vec<Attempt>,
}

impl ConnectFailed {
    /// Each host tried, in order, with its refusal.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// Whether trying again later can help: some host was unreachable, or
    /// not yet the kind of server asked for (see [`Refusal::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.attempts
            .iter()
            .any(|attempt| attempt.refusal.is_transient())
    }

    /// The SQLSTATE the last host that gave one refused with.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.attempts
            .iter()
            .rev()
            .find_map(|attempt| attempt.refusal.driver_error()?.code())
    }
}

impl fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.attempts.as_slice() {
            [one] => write!(f, "could not connect to {}: {}", one.host, one.refusal),
            several => {
                write!(f, "could not connect to any of {} hosts", several.len())?;
                for (i, attempt) in several.iter().enumerate() {
                    let separator = if i == 0 { ": " } else { "; " };
                    write!(f, "{separator}{}: {}", attempt.host, attempt.refusal)?;
                }
                Ok(())
            }
        }
    }
}

/// Everything is in the message; the causes are kept in
/// [`attempts`](Self::attempts).
impl std::error::Error for ConnectFailed {}

/// The [`ConnectFailed`] a driver error made by [`connect_any`] carries.
pub(crate) fn connect_failed(err: &tokio_postgres::Error) -> Option<&ConnectFailed> {
    let source = std::error::Error::source(err)?;
    source
        .downcast_ref::<io::Error>()?
        .get_ref()?
        .downcast_ref::<ConnectFailed>()
}

/// Opens a connection to the first of `config`'s hosts that will have it:
/// `open` is given settings naming one host alone (asking for any kind of
/// session), and the host, and is bounded by the connect timeout. `open`
/// checks the session with [`check_session`] against
/// `config.get_target_session_attrs()`.
pub(crate) async fn connect_any<C, Open, Fut>(
    config: &Config,
    mut open: Open,
) -> Result<C, tokio_postgres::Error>
where
    Open: FnMut(Config, &Target) -> Fut,
    Fut: Future<Output = Result<C, Refusal>>,
{
    let targets = match ordered_targets(config) {
        Ok(targets) => targets,
        Err(problem) => {
            return Err(super::connect::driver_error(
                config,
                io::Error::new(io::ErrorKind::InvalidInput, problem),
            )
            .await);
        }
    };
    let mut attempts = Vec::with_capacity(targets.len());
    for target in &targets {
        let attempt = open(target.config(config), target);
        let refusal = match config.get_connect_timeout() {
            Some(limit) => match tokio::time::timeout(*limit, attempt).await {
                Ok(Ok(connected)) => return Ok(connected),
                Ok(Err(refusal)) => refusal,
                Err(_) => Refusal::TimedOut(*limit),
            },
            None => match attempt.await {
                Ok(connected) => return Ok(connected),
                Err(refusal) => refusal,
            },
        };
        tracing::debug!(host = %target, error = %refusal, "host refused the connection");
        attempts.push(Attempt {
            host: target.to_string(),
            refusal,
        });
    }
    let failed = ConnectFailed { attempts };
    let kind = if failed.is_transient() {
        io::ErrorKind::NotConnected
    } else {
        io::ErrorKind::PermissionDenied
    };
    Err(super::connect::driver_error(config, io::Error::new(kind, failed)).await)
}

/// Checks that a connection just opened (and not yet spawned: it is driven
/// here while asking) has the kind of session `wanted` asks for, as libpq
/// does, with `SHOW transaction_read_only`.
pub(crate) async fn check_session<S, T>(
    client: &Client,
    connection: &mut Connection<S, T>,
    wanted: TargetSessionAttrs,
) -> Result<(), Refusal>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + TlsStream + Unpin,
{
    if wanted == TargetSessionAttrs::Any {
        return Ok(());
    }
    let mut answer = pin!(client.simple_query("SHOW transaction_read_only"));
    let messages = poll_fn(|cx| {
        match connection.poll_unpin(cx) {
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Ready(Ok(())) => return Poll::Ready(Ok(Vec::new())),
            Poll::Pending => {}
        }
        answer.as_mut().poll(cx)
    })
    .await?;
    let read_only = messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => row.get(0).map(|value| value == "on"),
        _ => None,
    });
    let Some(read_only) = read_only else {
        let closed = io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed while asking whether it is read-only",
        );
        return Err(Refusal::Driver(
            super::connect::driver_error(&Config::new(), closed).await,
        ));
    };
    let fits = match wanted {
        TargetSessionAttrs::ReadWrite => !read_only,
        TargetSessionAttrs::ReadOnly => read_only,
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(Refusal::WrongSession { read_only })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        text.parse().unwrap()
    }

    #[test]
    fn one_target_per_host_with_its_port() {
        let config = parse("host=/run/pg,db.example,10.0.0.2 port=5432,5433,5434");
        let targets = targets(&config).unwrap();
        let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["/run/pg/.s.PGSQL.5432", "db.example:5433", "10.0.0.2:5434"]
        );
        assert!(targets[0].is_socket());
        assert!(!targets[1].is_socket());

        let one_port = targets_of("postgres://a,b:6000/db");
        assert_eq!(one_port, ["a:5432", "b:6000"]);
        let shared_port = targets_of("host=a,b port=6000");
        assert_eq!(shared_port, ["a:6000", "b:6000"]);
        let addressed = targets_of("host=db.example,b hostaddr=10.0.0.1,10.0.0.2");
        assert_eq!(
            addressed,
            ["db.example (10.0.0.1):5432", "b (10.0.0.2):5432"]
        );
        assert_eq!(targets_of("host=::1"), ["[::1]:5432"]);
    }

    fn targets_of(text: &str) -> Vec<String> {
        targets(&parse(text))
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn lists_that_do_not_match_are_refused() {
        let err = targets(&parse("host=a,b,c port=1,2")).unwrap_err();
        assert!(err.contains("3 hosts but 2 ports"), "{err}");
        let err = targets(&parse("host=a,b hostaddr=10.0.0.1")).unwrap_err();
        assert!(err.contains("2 hosts but 1 host addresses"), "{err}");
        assert!(targets(&Config::new()).is_err());
    }

    #[test]
    fn a_target_s_settings_name_it_alone_and_keep_the_rest() {
        let base = parse(
            "host=/run/pg,db.example port=5432,5433 user=u password=p dbname=d \
             application_name=app options='-c x=1' connect_timeout=7 \
             target_session_attrs=read-write keepalives_idle=30",
        );
        let targets = targets(&base).unwrap();
        let second = targets[1].config(&base);
        assert_eq!(second.get_hosts(), [Host::Tcp("db.example".into())]);
        assert_eq!(second.get_ports(), [5433]);
        assert_eq!(second.get_user(), Some("u"));
        assert_eq!(second.get_password(), Some(&b"p"[..]));
        assert_eq!(second.get_dbname(), Some("d"));
        assert_eq!(second.get_application_name(), Some("app"));
        assert_eq!(second.get_options(), Some("-c x=1"));
        assert_eq!(second.get_connect_timeout(), Some(&Duration::from_secs(7)));
        assert_eq!(second.get_keepalives_idle(), Duration::from_secs(30));
        // The session is checked by `connect_any`, once, not by the driver.
        assert_eq!(second.get_target_session_attrs(), TargetSessionAttrs::Any);
        let first = targets[0].config(&base);
        assert_eq!(first.get_hosts(), [Host::Unix("/run/pg".into())]);
        assert_eq!(first.get_ports(), [5432]);
    }

    #[test]
    fn the_budget_allows_each_host_its_timeout() {
        let two = parse("host=a,b");
        assert_eq!(
            connect_budget(&two, Duration::from_secs(5)),
            Duration::from_secs(10) + BUDGET_MARGIN
        );
        assert_eq!(
            connect_budget(&parse("host=a"), Duration::from_secs(5)),
            Duration::from_secs(5) + BUDGET_MARGIN
        );
    }

    #[test]
    fn shuffling_keeps_every_item() {
        let mut items: Vec<u32> = (0..20).collect();
        shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn a_refusal_says_its_cause_and_whether_to_try_again() {
        let failed = ConnectFailed {
            attempts: vec![
                Attempt {
                    host: "a:5432".into(),
                    refusal: Refusal::TimedOut(Duration::from_secs(5)),
                },
                Attempt {
                    host: "b:5433".into(),
                    refusal: Refusal::WrongSession { read_only: true },
                },
            ],
        };
        assert_eq!(
            failed.to_string(),
            "could not connect to any of 2 hosts: a:5432: no session within 5s; \
             b:5433: the server accepts no writes (a standby, or \
             default_transaction_read_only is on)"
        );
        assert!(failed.is_transient());
        assert_eq!(
            dedup_join(&["x: y".into(), "y".into(), "z".into()]),
            "x: y: z"
        );
    }
}
