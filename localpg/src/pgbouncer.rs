//! A throwaway PgBouncer in front of a private cluster, for tests of
//! clients behind a connection pooler.
//!
//! PgBouncer runs in the foreground under a watchdog shell like the
//! cluster's: whenever this process lets go of the watchdog's pipe (drop,
//! panic, `abort`, `SIGKILL`), the watchdog stops PgBouncer and removes its
//! directory.

use std::fmt;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

use crate::bin_dir::is_executable;
use crate::cluster::{log_tail, temp_base};
use crate::replication::block_on;
use crate::user::RunAs;
use crate::{Cluster, Error, conninfo};

/// The database user clients connect as, the cluster's superuser; the only
/// one in PgBouncer's `auth_file`, and its admin.
const SUPERUSER: &str = "postgres";

/// Where PgBouncer listens: loopback only.
const LISTEN_ADDR: &str = "127.0.0.1";

/// The files in PgBouncer's directory.
const CONFIG_FILE: &str = "pgbouncer.ini";
const AUTH_FILE: &str = "users.txt";
const LOG_FILE: &str = "pgbouncer.log";
/// PgBouncer's process id, written by the watchdog.
const PID_FILE: &str = "pid";

/// Where `pgbouncer` is looked for after `PATH` (Debian puts it in
/// `/usr/sbin`, which an ordinary user's `PATH` lacks).
const SEARCHED: [&str; 3] = [
    "/usr/sbin/pgbouncer",
    "/usr/local/sbin/pgbouncer",
    "/usr/local/bin/pgbouncer",
];

/// How many free ports [`PgBouncerBuilder::start`] tries when another
/// process takes the one it picked before PgBouncer binds it.
const PORT_ATTEMPTS: u32 = 5;

/// How often the readiness and stop waits look again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long one readiness attempt may take to connect.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What PgBouncer 1.18 must ignore in a client's startup packet instead of
/// refusing the connection (`unsupported startup parameter`): JDBC's
/// `extra_float_digits`, and `options`, which ebb sends.
const IGNORED_STARTUP_PARAMETERS: &str = "extra_float_digits,options";

/// The watchdog, run as `sh -c WATCHDOG sh DIR PGBOUNCER` under the
/// account the cluster's server runs as.
///
/// - fd 3 keeps the pipe from this process; everything the script and
///   PgBouncer print goes to `DIR/pgbouncer.log`.
/// - The main shell starts `PGBOUNCER DIR/pgbouncer.ini` in the background
///   (in the foreground as PgBouncer sees it: no `-d`), writes its pid to
///   `DIR/pid`, and exits (4) when PgBouncer does, which is how
///   [`PgBouncerBuilder::start`] notices a failed start. It leaves the
///   directory alone so the log can still be read.
/// - The subshell (the *killer*) blocks on fd 3. On end-of-file it stops
///   PgBouncer with SIGTERM (immediate shutdown: clients are disconnected),
///   escalating to SIGKILL after 10 seconds, then removes the directory. It
///   only signals the pid while that process still runs PgBouncer on this
///   directory's configuration (not a process that took the number since),
///   and it does not depend on the main shell staying alive.
/// - HUP/INT are ignored, as in the cluster's watchdog; PgBouncer installs
///   handlers of its own for them.
const WATCHDOG: &str = r#"
d=$1 bin=$2
exec 3<&0 0</dev/null 1>>"$d/pgbouncer.log" 2>&1
trap '' HUP INT PIPE
# A zombie counts as dead: if the main shell was killed, PgBouncer's new
# parent may never reap it.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "${state%% *}" != Z ]
}
"$bin" "$d/pgbouncer.ini" 3<&- &
pid=$!
echo "$pid" >"$d/pid.new" && mv "$d/pid.new" "$d/pid"
ours() {
    alive "$pid" || return 1
    [ -r "/proc/$pid/cmdline" ] || return 0
    case $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) in
        *"$d/pgbouncer.ini"*) return 0 ;;
    esac
    return 1
}
(
    trap '' TERM
    read -r _ <&3
    if ours; then
        kill -TERM "$pid" 2>/dev/null
        n=0
        while ours; do
            n=$((n + 1))
            if [ "$n" -eq 200 ]; then kill -KILL "$pid" 2>/dev/null; fi
            sleep 0.05
        done
    fi
    rm -rf "$d"
) &
wait "$pid"
echo "ebb-localpg: pgbouncer exited with status $?"
exit 4
"#;

/// The `[pgbouncer]` settings [`PgBouncerBuilder::start`] sets itself and
/// [`PgBouncerBuilder::setting`] refuses, with why.
const MANAGED: [(&str, &str); 8] = [
    (
        "listen_addr",
        "PgBouncer listens on 127.0.0.1, on a free port start() picks (see PgBouncer::port)",
    ),
    (
        "listen_port",
        "PgBouncer listens on 127.0.0.1, on a free port start() picks (see PgBouncer::port)",
    ),
    (
        "unix_socket_dir",
        "PgBouncer listens on no Unix socket, only on 127.0.0.1",
    ),
    (
        "auth_type",
        "clients are trusted: start() and PgBouncer::config connect as `postgres` without a password",
    ),
    (
        "auth_file",
        "clients are trusted: start() and PgBouncer::config connect as `postgres` without a password",
    ),
    (
        "logfile",
        "PgBouncer logs to pgbouncer.log in its directory (PgBouncer::log_path), which start() reports from",
    ),
    ("pool_mode", "use PgBouncerBuilder::pool_mode"),
    ("default_pool_size", "use PgBouncerBuilder::pool_size"),
];

/// When PgBouncer hands a server connection back to its pool, to serve
/// another client: its `pool_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PoolMode {
    /// `session`: a client keeps its server connection from login to
    /// logout, so it behaves as if connected directly (session state,
    /// prepared statements, `LISTEN` all hold); PgBouncer only caps and
    /// reuses connections.
    Session,
    /// `transaction`: a client holds a server connection only during a
    /// transaction (a statement outside an explicit one is a transaction of
    /// its own). Between transactions the next one may run on another
    /// server connection, one other clients used meanwhile: session state
    /// (`SET`, named prepared statements, advisory locks, `LISTEN`) is
    /// neither kept nor private. The mode ebb's PgBouncer support is for,
    /// and the default here.
    #[default]
    Transaction,
}

impl PoolMode {
    /// The name PgBouncer uses, in `pool_mode` and `SHOW POOLS`:
    /// `session` or `transaction`.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

/// Writes [`as_str`](PoolMode::as_str).
impl fmt::Display for PoolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options for a [`PgBouncer`]; start with [`PgBouncer::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct PgBouncerBuilder {
    /// The cluster's socket directory, PgBouncer's server host.
    server_dir: PathBuf,
    /// The cluster's port, naming its socket file.
    server_port: u16,
    /// The account the cluster's server runs as, if we are root.
    run_as: Option<RunAs>,
    /// `pool_mode`.
    pool_mode: PoolMode,
    /// `default_pool_size`.
    pool_size: u32,
    /// Extra `[pgbouncer]` settings, applied last so they win.
    settings: Vec<(String, String)>,
    /// The program; `None` means searching for it.
    bin: Option<PathBuf>,
    /// How long `start` waits for PgBouncer to relay a query.
    start_timeout: Duration,
    /// How long `stop` and drop wait for PgBouncer to stop and its
    /// directory to disappear.
    stop_timeout: Duration,
}

impl PgBouncerBuilder {
    /// The pool mode. Default: [`PoolMode::Transaction`].
    pub fn pool_mode(mut self, mode: PoolMode) -> Self {
        self.pool_mode = mode;
        self
    }

    /// How many server connections PgBouncer opens at most for each
    /// database and user (`default_pool_size`); clients beyond that wait
    /// for one. At least 1. Default: 10.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// Any `[pgbouncer]` setting, e.g. `.setting("query_wait_timeout",
    /// "5")`; applied after the defaults, so it replaces them (such as
    /// `max_client_conn`, 500, or `ignore_startup_parameters`; see
    /// [`PgBouncer`]). Default: none.
    ///
    /// The settings [`start`](Self::start) needs to manage are refused
    /// there with [`Error::InvalidPgBouncerSetting`]: `listen_addr`,
    /// `listen_port`, `unix_socket_dir`, `auth_type`, `auth_file`,
    /// `logfile`, and `pool_mode` and `default_pool_size` (use
    /// [`pool_mode`](Self::pool_mode) and [`pool_size`](Self::pool_size)).
    /// So are names other than letters, digits and `_`, and values with a
    /// line break. A setting PgBouncer does not know makes it exit, which
    /// `start` reports as [`Error::PgBouncerStartFailed`].
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Run the `pgbouncer` program at `path`. Default: the first
    /// `pgbouncer` on `PATH`, else `/usr/sbin/pgbouncer` (where Debian's
    /// package puts it), `/usr/local/sbin/pgbouncer` or
    /// `/usr/local/bin/pgbouncer`. When the process is root the program
    /// runs as the cluster's server account, which must be allowed to
    /// execute it.
    pub fn bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.bin = Some(path.into());
        self
    }

    /// How long [`start`](Self::start) waits for PgBouncer to relay a
    /// query (on each port it tries). Default: 30 s.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long [`PgBouncer::stop`] and drop wait for PgBouncer to stop
    /// and its directory to be removed. Default: 15 s.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Writes PgBouncer's configuration into a new temporary directory,
    /// starts PgBouncer in front of the cluster, and waits until it relays
    /// a query: a connection through it to the `postgres` database runs
    /// `SELECT 1` on the cluster. The configuration is described at
    /// [`PgBouncer`].
    ///
    /// PgBouncer listens on `127.0.0.1`, on a port that was free a moment
    /// before; should another process take it first, `start` tries again
    /// on another (up to 5 ports). When the process is root, PgBouncer
    /// (which refuses to run as root) runs as the account the cluster's
    /// server runs as, which also owns the directory.
    ///
    /// Blocking; fine to call from inside a tokio runtime (it runs its
    /// readiness check on a thread and runtime of its own).
    ///
    /// # Errors
    ///
    /// - [`Error::PgBouncerNotFound`]: no `pgbouncer` program (see
    ///   [`bin`](Self::bin));
    /// - [`Error::InvalidPgBouncerSetting`]: a refused
    ///   [`setting`](Self::setting), or a pool size of 0;
    /// - [`Error::PgBouncerStartFailed`], with the end of PgBouncer's log:
    ///   it exited (e.g. on a setting it does not know), or relayed no
    ///   query within the [start timeout](Self::start_timeout) (e.g. the
    ///   cluster is down);
    /// - [`Error::Io`]: creating the directory or files, or spawning the
    ///   watchdog, failed.
    pub fn start(self) -> Result<PgBouncer, Error> {
        self.check_settings()?;
        let bin = self.find_bin()?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            match self.start_on(&bin, port) {
                Err(err) if attempt < PORT_ATTEMPTS && is_port_clash(&err) => {
                    tracing::debug!(port, "PgBouncer's port was taken meanwhile; trying another");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Refuses malformed settings and those `start` manages.
    fn check_settings(&self) -> Result<(), Error> {
        if self.pool_size == 0 {
            return Err(Error::InvalidPgBouncerSetting {
                name: "default_pool_size".to_owned(),
                reason: "the pool size (PgBouncerBuilder::pool_size) must be at least 1".to_owned(),
            });
        }
        for (name, value) in &self.settings {
            let refuse = |reason: &str| Error::InvalidPgBouncerSetting {
                name: name.clone(),
                reason: reason.to_owned(),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(refuse(
                    "a name is letters, digits and `_`, as in PgBouncer's documentation",
                ));
            }
            if value.contains(['\n', '\r', '\0']) {
                return Err(refuse("a value is one line"));
            }
            if let Some((_, reason)) = MANAGED
                .iter()
                .find(|(managed, _)| managed.eq_ignore_ascii_case(name))
            {
                return Err(refuse(&format!("ebb-localpg sets it: {reason}")));
            }
        }
        Ok(())
    }

    /// The program to run: [`bin`](Self::bin) if given, else the first
    /// `pgbouncer` on `PATH` or in [`SEARCHED`].
    fn find_bin(&self) -> Result<PathBuf, Error> {
        if let Some(bin) = &self.bin {
            return if is_executable(bin) {
                Ok(bin.clone())
            } else {
                Err(Error::PgBouncerNotFound {
                    searched: bin.display().to_string(),
                })
            };
        }
        let on_path = std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("pgbouncer"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        on_path
            .into_iter()
            .chain(SEARCHED.iter().map(PathBuf::from))
            .find(|bin| is_executable(bin))
            .ok_or_else(|| Error::PgBouncerNotFound {
                searched: format!("PATH, {}", SEARCHED.join(", ")),
            })
    }

    /// One attempt of [`start`](Self::start), on `port`.
    fn start_on(&self, bin: &Path, port: u16) -> Result<PgBouncer, Error> {
        let temp = tempfile::Builder::new()
            .prefix("ebb-pgb-")
            .tempdir_in(temp_base(self.run_as.is_some()))
            .map_err(|e| Error::io("create a temporary directory for PgBouncer", e))?;
        let dir = temp.path().to_path_buf();
        if let Some(account) = self.run_as {
            std::os::unix::fs::chown(&dir, Some(account.uid), Some(account.gid)).map_err(|e| {
                Error::io(
                    format!("hand {} to the cluster's server account", dir.display()),
                    e,
                )
            })?;
        }
        // trust still wants the user listed; the password is not checked.
        write_private(
            &dir.join(AUTH_FILE),
            &format!("\"{SUPERUSER}\" \"\"\n"),
            self.run_as,
        )?;
        write_private(
            &dir.join(CONFIG_FILE),
            &self.config_text(&dir, port),
            self.run_as,
        )?;

        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("ebb-localpg-pgbouncer-watchdog")
            .arg(&dir)
            .arg(bin)
            .current_dir(&dir)
            .env("HOME", &dir)
            // Untranslated system messages: a port clash is recognised by
            // its text.
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group: a Ctrl-C to the test run must not kill the
            // watchdog before it has cleaned up.
            .process_group(0);
        if let Some(account) = self.run_as {
            command.uid(account.uid).gid(account.gid);
        }
        let mut child = command
            .spawn()
            .map_err(|e| Error::io("spawn the PgBouncer watchdog (/bin/sh)", e))?;
        let stdin = child.stdin.take();
        // From here on the watchdog owns the directory and removes it.
        let dir = temp.keep();
        let mut bouncer = PgBouncer {
            dir,
            port,
            pool_mode: self.pool_mode,
            pool_size: self.pool_size,
            pid: 0,
            watchdog: Some(Watchdog { child, stdin }),
            stop_timeout: self.stop_timeout,
        };
        match bouncer.wait_ready(self.start_timeout) {
            Ok(pid) => {
                bouncer.pid = pid;
                tracing::debug!(dir = %bouncer.dir.display(), port, "PgBouncer ready");
                Ok(bouncer)
            }
            Err(err) => {
                let _ = bouncer.shutdown();
                Err(err)
            }
        }
    }

    /// `pgbouncer.ini`: every database on the cluster's socket, then the
    /// defaults, each replaced by a [`setting`](Self::setting) of the same
    /// name, then the other settings.
    fn config_text(&self, dir: &Path, port: u16) -> String {
        let mut settings: Vec<(String, String)> = [
            ("listen_addr", LISTEN_ADDR.to_owned()),
            ("listen_port", port.to_string()),
            ("unix_socket_dir", String::new()),
            ("auth_type", "trust".to_owned()),
            ("auth_file", dir.join(AUTH_FILE).display().to_string()),
            ("admin_users", SUPERUSER.to_owned()),
            ("pool_mode", self.pool_mode.as_str().to_owned()),
            ("default_pool_size", self.pool_size.to_string()),
            ("max_client_conn", "500".to_owned()),
            (
                "ignore_startup_parameters",
                IGNORED_STARTUP_PARAMETERS.to_owned(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        for (name, value) in &self.settings {
            match settings
                .iter_mut()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
            {
                Some(known) => known.1.clone_from(value),
                None => settings.push((name.clone(), value.clone())),
            }
        }
        let mut text = format!(
            ";; A throwaway PgBouncer of ebb-localpg; removed when it stops.\n\
             [databases]\n\
             * = host={} port={}\n\
             \n\
             [pgbouncer]\n",
            connstring_value(&self.server_dir.display().to_string()),
            self.server_port,
        );
        for (name, value) in settings {
            text.push_str(&name);
            text.push_str(" = ");
            text.push_str(&value);
            text.push('\n');
        }
        text
    }
}

/// The running watchdog shell and our end of its pipe.
#[derive(Debug)]
struct Watchdog {
    /// The main shell; it exits when PgBouncer does, which reveals a failed
    /// start, and must be reaped.
    child: Child,
    /// Closing this tells the watchdog to stop PgBouncer and clean up.
    stdin: Option<ChildStdin>,
}

/// A running PgBouncer in front of a [`Cluster`], for tests of clients
/// behind a connection pooler; stopped, and its directory removed, on drop.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use ebb_localpg::{Cluster, PgBouncer, PoolMode};
///
/// let cluster = Cluster::start()?;
/// let bouncer = PgBouncer::builder(&cluster)
///     .pool_mode(PoolMode::Transaction)
///     .pool_size(2)
///     .start()?;
/// let (client, connection) = bouncer.config("postgres").connect(tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// client.simple_query("SELECT 1").await?;
///
/// // The admin console: simple queries only.
/// let (admin, connection) = bouncer.config("pgbouncer").connect(tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let pools = admin.simple_query("SHOW POOLS").await?;
/// # let _ = pools;
/// # Ok(())
/// # }
/// ```
///
/// Its configuration (`pgbouncer.ini` in [`dir`](Self::dir)):
///
/// - `listen_addr = 127.0.0.1`, `listen_port` a free port
///   ([`port`](Self::port)), and `unix_socket_dir =` empty: no Unix
///   socket, so any number of PgBouncers can run at once.
/// - `[databases]` `* = host=<the cluster's socket directory>
///   port=<its port>`: any database name is relayed to the same database
///   of the cluster, over its Unix socket (the cluster needs no TCP
///   address; with a custom [`hba`](crate::ClusterBuilder::hba), keep a
///   `local` line that trusts `postgres`).
/// - `auth_type = trust`, with an `auth_file` listing the cluster's user,
///   `postgres`, the user to connect as; `admin_users = postgres`, so
///   that user may use the admin console, database `pgbouncer`
///   (`SHOW POOLS`, `SHOW SERVERS`, `SHOW CLIENTS`, `PAUSE`, ...; it
///   takes simple queries only, e.g. tokio-postgres' `simple_query`).
/// - `pool_mode` and `default_pool_size` from the builder;
///   `max_client_conn = 500`; `server_reset_query` PgBouncer's default
///   (`DISCARD ALL`, run in session mode when a client leaves).
/// - `ignore_startup_parameters = extra_float_digits,options`. **Clients
///   of ebb need this in their own PgBouncer too:** ebb's `PgStore` sends
///   the startup parameter `options=-c search_path=message_store,public`,
///   and PgBouncer 1.18 refuses any startup parameter it does not track
///   (`unsupported startup parameter: options`), so without the setting
///   ebb cannot connect. With it PgBouncer accepts the connection and
///   drops the parameter: the server session keeps its default search
///   path. ebb's own schema qualifies every name and does not need it; a
///   database installed by Message DB's own scripts does, and should get
///   it from the role or database instead (`ALTER ROLE ... SET
///   search_path = message_store, public`).
/// - Extra settings from [`PgBouncerBuilder::setting`], which may replace
///   the defaults above except those the builder manages.
/// - Its log goes to `pgbouncer.log` ([`log_path`](Self::log_path)).
///
/// In transaction mode, statements prepared in one transaction may be gone
/// (or belong to another client) in the next: tokio-postgres' `query`
/// with a `&str` prepares a named statement in one round trip and runs it
/// in another, which may land on another server connection. Use
/// `simple_query`, or run the statement inside an explicit transaction.
/// ebb's store turns its prepared statements off
/// for this (`PgStoreConfig::prepared_statements`,
/// `EBB_PREPARED_STATEMENTS=off`).
///
/// The bouncer does not borrow the cluster: it may outlive it, and then
/// relays only errors. PgBouncer runs in its own temporary directory, as
/// the cluster's server account when the process is root; if the process
/// dies without dropping it, the watchdog still stops PgBouncer and removes
/// the directory.
#[derive(Debug)]
pub struct PgBouncer {
    /// The temporary directory: `pgbouncer.ini`, `users.txt`,
    /// `pgbouncer.log`, `pid`.
    dir: PathBuf,
    /// The TCP port on 127.0.0.1.
    port: u16,
    /// `pool_mode`.
    pool_mode: PoolMode,
    /// `default_pool_size`.
    pool_size: u32,
    /// PgBouncer's process id; 0 until ready.
    pid: u32,
    /// `None` once stopped, so drop after `stop` does nothing.
    watchdog: Option<Watchdog>,
    /// How long stop and drop wait.
    stop_timeout: Duration,
}

impl PgBouncer {
    /// Options for a PgBouncer in front of `cluster`, each with a
    /// documented default; [`start`](PgBouncerBuilder::start) starts it.
    pub fn builder(cluster: &Cluster) -> PgBouncerBuilder {
        PgBouncerBuilder {
            server_dir: cluster.socket_dir().to_path_buf(),
            server_port: cluster.port(),
            run_as: cluster.run_as(),
            pool_mode: PoolMode::default(),
            pool_size: 10,
            settings: Vec::new(),
            bin: None,
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(15),
        }
    }

    /// The TCP port PgBouncer listens on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection settings for database `dbname` through PgBouncer: host
    /// `127.0.0.1`, [`port`](Self::port), user `postgres`, no password.
    /// `dbname` `pgbouncer` is the admin console.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(LISTEN_ADDR)
            .port(self.port)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// A libpq `key=value` connection string for `dbname` through
    /// PgBouncer, usable by `psql` or as `DATABASE_URL`, e.g.
    /// `host=127.0.0.1 port=40123 user=postgres dbname=foo`: the
    /// [`config`](Self::config) rendered by
    /// [`conninfo::connection_string`].
    pub fn connection_string(&self, dbname: &str) -> String {
        conninfo::connection_string(&self.config(dbname))
    }

    /// The pool mode it was started with.
    pub fn pool_mode(&self) -> PoolMode {
        self.pool_mode
    }

    /// Its `default_pool_size`: at most this many server connections per
    /// database and user.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// PgBouncer's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its temporary directory, holding `pgbouncer.ini`, the `auth_file`
    /// and the log; removed when it stops.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// PgBouncer's log, in its directory.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Stops PgBouncer (immediate shutdown: its clients are disconnected,
    /// which they see as a closed connection) and removes its directory,
    /// waiting for both, for at most the
    /// [stop timeout](PgBouncerBuilder::stop_timeout). Dropping does the
    /// same but cannot report failure. The cluster behind it is not
    /// touched.
    ///
    /// Blocking; from async code call it through
    /// `tokio::task::block_in_place` or `spawn_blocking`, or just wait a
    /// moment.
    ///
    /// # Errors
    ///
    /// [`Error::PgBouncerStopTimeout`] when the watchdog did not clean up in
    /// time; PgBouncer is then killed and the directory removed here.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    /// Waits until PgBouncer relays `SELECT 1` to the cluster, or the
    /// watchdog's main shell exits (a failed start), or time runs out;
    /// returns PgBouncer's pid.
    ///
    /// Each attempt first makes sure, on the admin console, that the
    /// PgBouncer on the port is this one (its `auth_file` is in this
    /// directory): should another server have taken the port, ours exits
    /// and `start` tries another port, rather than hand out someone
    /// else's. The watchdog is watched during an attempt too, since a
    /// server that took the port may never answer.
    fn wait_ready(&mut self, timeout: Duration) -> Result<u32, Error> {
        let started = Instant::now();
        let auth_file = self.dir.join(AUTH_FILE).display().to_string();
        let mut admin = self.config("pgbouncer");
        let mut relayed = self.config("postgres");
        for config in [&mut admin, &mut relayed] {
            config
                .application_name("ebb-localpg readiness check")
                .connect_timeout(PROBE_CONNECT_TIMEOUT);
        }
        let dir = self.dir.clone();
        let Some(watchdog) = self.watchdog.as_mut() else {
            return Err(self.start_failed("stopped before it was ready".to_owned()));
        };
        let outcome = block_on(async {
            let mut last = "none made".to_owned();
            loop {
                let remaining = timeout.saturating_sub(started.elapsed());
                if remaining.is_zero() {
                    return Ok(Err(format!(
                        "no query relayed within {timeout:?}; last attempt: {last}"
                    )));
                }
                let mut step = "";
                let attempt = async {
                    let pid = read_pid(&dir).ok_or("pgbouncer has not started yet")?;
                    probe(&admin, &auth_file, &relayed, &mut step).await?;
                    Ok::<u32, String>(pid)
                };
                tokio::select! {
                    status = exited(&mut watchdog.child) => {
                        let status = status?;
                        let reason = match status.code() {
                            Some(4) => "pgbouncer exited".to_owned(),
                            _ => format!("watchdog {status}"),
                        };
                        return Ok(Err(reason));
                    }
                    result = tokio::time::timeout(remaining, attempt) => match result {
                        Ok(Ok(pid)) => return Ok(Ok(pid)),
                        Ok(Err(error)) => last = error,
                        Err(_) => last = format!("{step} did not finish"),
                    }
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        })?;
        outcome.map_err(|reason| self.start_failed(reason))
    }

    /// [`Error::PgBouncerStartFailed`] with the end of the log.
    fn start_failed(&self, reason: String) -> Error {
        let log_path = self.log_path();
        Error::PgBouncerStartFailed {
            reason,
            log_tail: log_tail(&log_path),
            log_path,
        }
    }

    /// Closes the watchdog's pipe and waits, bounded, until PgBouncer has
    /// stopped and the directory is gone; past the bound, does it here.
    fn shutdown(&mut self) -> Result<(), Error> {
        let Some(mut watchdog) = self.watchdog.take() else {
            return Ok(());
        };
        drop(watchdog.stdin.take());
        let started = Instant::now();
        let mut reaped = false;
        while started.elapsed() < self.stop_timeout {
            reaped = reaped || !matches!(watchdog.child.try_wait(), Ok(None));
            if reaped && !self.dir.exists() {
                tracing::debug!(dir = %self.dir.display(), "PgBouncer stopped and removed");
                return Ok(());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        // The watchdog is gone or stuck: stop PgBouncer and clean up here.
        tracing::warn!(dir = %self.dir.display(), "PgBouncer watchdog did not clean up; doing it directly");
        let _ = watchdog.child.kill();
        let _ = watchdog.child.wait();
        if let Some(pid) = read_pid(&self.dir).and_then(|pid| libc::pid_t::try_from(pid).ok()) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Err(Error::PgBouncerStopTimeout {
            dir: self.dir.clone(),
            waited: self.stop_timeout,
        })
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::warn!(error = %err, "stopping PgBouncer");
        }
    }
}

/// Whether the PgBouncer on `admin`'s port is the one whose `auth_file`
/// is `auth_file`, and relays `SELECT 1` (a simple query, which any pool
/// mode relays) to the cluster on `relayed`'s connection. The error says
/// which step failed; `step` names the one under way, for when the caller
/// gives up waiting.
async fn probe(
    admin: &tokio_postgres::Config,
    auth_file: &str,
    relayed: &tokio_postgres::Config,
    step: &mut &'static str,
) -> Result<(), String> {
    *step = "SHOW CONFIG on the admin console";
    let rows = simple_query(admin, "SHOW CONFIG")
        .await
        .map_err(|e| format!("{step}: {}", error_chain(&e)))?;
    let served = rows.iter().find_map(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) if row.get("key") == Some("auth_file") => {
            Some(row.get("value").unwrap_or_default().to_owned())
        }
        _ => None,
    });
    if served.as_deref() != Some(auth_file) {
        return Err(format!(
            "the PgBouncer on the port is another one (auth_file {served:?})"
        ));
    }
    *step = "SELECT 1 through PgBouncer on the cluster";
    simple_query(relayed, "SELECT 1")
        .await
        .map(drop)
        .map_err(|e| format!("{step}: {}", error_chain(&e)))
}

/// Connects with `config`, runs `sql` as a simple query, and disconnects.
async fn simple_query(
    config: &tokio_postgres::Config,
    sql: &str,
) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    let result = client.simple_query(sql).await;
    drop(client);
    // Ends once the connection has said goodbye.
    let _ = connection.await;
    result
}

/// Resolves when `child` has exited, looking every [`POLL_INTERVAL`].
async fn exited(child: &mut Child) -> Result<ExitStatus, Error> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => tokio::time::sleep(POLL_INTERVAL).await,
            Err(e) => return Err(Error::io("check on the PgBouncer watchdog", e)),
        }
    }
}

/// PgBouncer's pid as the watchdog wrote it into `dir`, once it has.
fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&pid| pid > 0)
}

/// `err` and its sources, joined by `: `, each left out when the text
/// before already ends with it.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| Error::io("find a free port on 127.0.0.1 for PgBouncer", e))
}

/// Whether a failed start failed because another process had taken the
/// port meanwhile.
fn is_port_clash(err: &Error) -> bool {
    matches!(err, Error::PgBouncerStartFailed { log_tail, .. }
        if log_tail.contains("Address already in use"))
}

/// `value` for a PgBouncer connection string: as it is when it has no
/// space, quote or backslash, else single-quoted with those escaped.
fn connstring_value(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\']) {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// Writes `contents` to a new file at `path`, readable only by its owner,
/// the cluster's server account when we are root.
fn write_private(path: &Path, contents: &str, run_as: Option<RunAs>) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        std::io::Write::write_all(&mut file, contents.as_bytes())?;
        if let Some(account) = run_as {
            std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))?;
        }
        Ok(())
    };
    write().map_err(|e| Error::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connstring_values_are_quoted_only_when_needed() {
        assert_eq!(connstring_value("/tmp/ebb-pg-x"), "/tmp/ebb-pg-x");
        assert_eq!(connstring_value("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(connstring_value(r"/tmp/it's\"), r"'/tmp/it\'s\\'");
        assert_eq!(connstring_value(""), "''");
    }

    /// What real PgBouncer logs when its port is taken is what `start`
    /// retries on.
    #[test]
    fn a_taken_port_is_recognised_as_a_clash() {
        let cluster = Cluster::start().expect("start cluster");
        let builder = PgBouncer::builder(&cluster);
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
        let port = taken.local_addr().expect("its address").port();
        let bin = builder.find_bin().expect("pgbouncer");
        let err = builder.start_on(&bin, port).expect_err("the port is taken");
        assert!(is_port_clash(&err), "{err}");
        let bouncer = builder.clone().start().expect("start on another port");
        assert_ne!(bouncer.port(), port);

        // Taken by another PgBouncer, which would relay queries too: ours
        // still fails, and is not mistaken for the other one.
        let err = builder
            .start_on(&bin, bouncer.port())
            .expect_err("the port is taken by the other PgBouncer");
        assert!(is_port_clash(&err), "{err}");
    }
}
