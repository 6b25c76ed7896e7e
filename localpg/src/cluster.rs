//! A private, throwaway PostgreSQL cluster and its watchdog.
//!
//! The server is started by a small shell script, the *watchdog*, whose
//! standard input is a pipe that only this process writes to. Whenever this
//! process goes away (drop, panic, `abort`, `SIGKILL`) the kernel closes the
//! pipe, the watchdog sees end-of-file, stops PostgreSQL (fast shutdown) and
//! removes the directory. That is what cleans up the shared cluster, which
//! lives in a `static` and is never dropped.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bin_dir::{find_bin_dir, has_server_binaries};
use crate::user::{RunAs, run_as};
use crate::{Error, conninfo};

/// The superuser `initdb` creates; clients connect as it.
const SUPERUSER: &str = "postgres";

/// The watchdog, run as `sh -c WATCHDOG sh DIR BIN_DIR PRIMARY [postgres
/// args...]` under the account that owns the cluster; `PRIMARY` is empty, or
/// for a standby the libpq connection string of its primary.
///
/// - fd 3 keeps the pipe from this process; everything else the script and
///   its children print goes to `DIR/log`.
/// - The subshell (the *killer*) blocks on fd 3. On end-of-file it stops the
///   postmaster named in `postmaster.pid` with SIGINT (fast shutdown),
///   escalating to SIGQUIT and SIGKILL after 10 and 20 seconds, then removes
///   the directory. It does not depend on the main shell staying alive, so
///   killing that one alone still cleans up once this process exits.
/// - The main shell runs `initdb` (or, for a standby, `pg_basebackup` from
///   `PRIMARY`, writing `standby.signal` and `primary_conninfo`), then
///   `postgres` in the background, and exits when postgres does (3: initdb
///   failed, 4: postgres exited, 5: pg_basebackup failed), which is how
///   [`Cluster::start`] notices a failed start. It leaves the directory
///   alone so the log can still be read.
/// - A standby does not keep the `synchronous_standby_names` its primary
///   may have set with `ALTER SYSTEM` (the base backup copies
///   `postgresql.auto.conf`): once promoted, its commits would wait for a
///   standby of its own that does not exist.
/// - Unless postgres was stopped on purpose ([`Cluster::stop_server`]):
///   then `DIR/held` exists; the shell says so by creating `DIR/down` and
///   waits until `held` is removed ([`Cluster::start_server`]), then
///   removes `down` and starts postgres again on the same directory,
///   port and socket. The killer creates `DIR/ending` first thing, so a
///   shell held down exits instead of waiting for ever.
/// - HUP/INT are ignored so that a Ctrl-C aimed at a test run only stops
///   the server through the regular path (the process group is separate as
///   well).
const WATCHDOG: &str = r#"
d=$1 bin=$2 primary=$3
shift 3
exec 3<&0 0</dev/null 1>>"$d/log" 2>&1
trap '' HUP INT PIPE
# A zombie counts as dead: if the main shell was killed, the postmaster's
# new parent may never reap it.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "${state%% *}" != Z ]
}
(
    trap '' TERM
    read -r _ <&3
    : >"$d/ending"
    n=0
    while :; do
        if [ -s "$d/data/postmaster.pid" ] && read -r pid <"$d/data/postmaster.pid" && alive "$pid"; then
            kill -INT "$pid" 2>/dev/null
            while alive "$pid"; do
                n=$((n + 1))
                if [ "$n" -eq 200 ]; then kill -QUIT "$pid" 2>/dev/null; fi
                if [ "$n" -eq 400 ]; then kill -KILL "$pid" 2>/dev/null; fi
                sleep 0.05
            done
            break
        fi
        alive "$$" || break
        sleep 0.05
    done
    rm -rf "$d"
) &
if [ -z "$primary" ]; then
    "$bin/initdb" -D "$d/data" --username=postgres --auth=trust --encoding=UTF8 --locale=C --no-sync || exit 3
else
    "$bin/pg_basebackup" -D "$d/data" -d "$primary" -R -X stream --checkpoint=fast --no-sync || exit 5
    sed -i '/^[[:space:]]*synchronous_standby_names[[:space:]]*=/d' "$d/data/postgresql.auto.conf" || exit 5
fi
while :; do
    "$bin/postgres" -D "$d/data" "$@" &
    wait "$!"
    [ -e "$d/held" ] || exit 4
    : >"$d/down"
    while [ -e "$d/held" ]; do
        [ -e "$d/ending" ] && exit 4
        sleep 0.05
    done
    rm -f "$d/down"
done
"#;

/// Where a cluster's TLS files and `pg_hba.conf` go in its directory.
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const CLIENT_CA: &str = "client-ca.crt";
const HBA_FILE: &str = "pg_hba.conf";

/// What a cluster serves TLS with ([`ClusterBuilder::tls`]): PEM texts,
/// such as a test makes with `rcgen`.
#[derive(Clone)]
pub struct ServerTls {
    /// The server's certificate, and any intermediates after it.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// The CA whose client certificates the server accepts (for
    /// `pg_hba.conf`'s `cert` method and `clientcert`); `None`: the server
    /// asks for none.
    pub client_ca_pem: Option<String>,
}

/// Leaves the key out.
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// Options for [`Cluster`]; start with [`Cluster::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct ClusterBuilder {
    /// Where `postgres` and `initdb` are; `None` means [`find_bin_dir`].
    bin_dir: Option<PathBuf>,
    /// Whether to keep PostgreSQL's durability settings; throwaway clusters
    /// do not need them and are much faster without.
    fsync: bool,
    /// `max_connections`; tests run many pools at once.
    max_connections: u32,
    /// The port number, which only names the socket file since the server
    /// listens on no TCP address.
    port: u16,
    /// Extra `postgresql.conf` settings, applied last so they win.
    settings: Vec<(String, String)>,
    /// The certificate and key to serve TLS with, if any.
    tls: Option<ServerTls>,
    /// `pg_hba.conf` to use instead of initdb's, if any.
    hba: Option<String>,
    /// How long `start` waits for the server to accept connections.
    start_timeout: Duration,
    /// How long `stop` and drop wait for the server to stop and the
    /// directory to disappear.
    stop_timeout: Duration,
    /// The primary to copy and follow, for a standby.
    standby_of: Option<PrimaryServer>,
}

/// What [`ClusterBuilder::standby_of`] keeps of the primary: where it
/// listens, and what the standby must match.
#[derive(Debug, Clone)]
struct PrimaryServer {
    /// Its socket directory, where `pg_basebackup` and the standby's WAL
    /// receiver connect.
    dir: PathBuf,
    /// Its port, naming the socket file.
    port: u16,
    /// Its binaries: a standby must run the same major version.
    bin_dir: PathBuf,
    /// A hot standby refuses to start with fewer connections than its
    /// primary.
    max_connections: u32,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            bin_dir: None,
            fsync: false,
            max_connections: 200,
            port: 5432,
            settings: Vec::new(),
            tls: None,
            hba: None,
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(15),
            standby_of: None,
        }
    }
}

impl ClusterBuilder {
    /// Use the server binaries in `dir` instead of searching.
    /// Default: [`find_bin_dir`] (`PATH`, then `/usr/lib/postgresql/*/bin`),
    /// or for a [standby](Self::standby_of) its primary's.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Keep durability: `fsync`, `synchronous_commit` and
    /// `full_page_writes` on. Default: `false` (all three off, since the
    /// data is thrown away anyway).
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// `max_connections`. Default: 200. A [standby](Self::standby_of) gets
    /// at least its primary's, which a hot standby requires.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// The port, which only names the socket file (`.s.PGSQL.<port>`); the
    /// server listens on a private Unix socket directory and no TCP address,
    /// so clusters never collide. Default: 5432.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Any `postgresql.conf` setting, e.g. `.setting("shared_buffers",
    /// "256MB")`; applied after the others, so it overrides them.
    /// Default: none.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Serve TLS (`ssl = on`) with `tls`'s certificate and key, and check
    /// client certificates against its CA if it has one. The files are
    /// written into the cluster's directory, readable only by the server.
    /// TLS is offered on TCP only, so set `listen_addresses` too. Default:
    /// no TLS.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Use `contents` as `pg_hba.conf` instead of initdb's (which trusts
    /// every local connection, on the socket and on loopback TCP, including
    /// replication connections). Keep a `local` line:
    /// [`TestDatabases`](crate::TestDatabases) and the client tools connect
    /// over the socket. For a cluster that will have
    /// [standbys](Self::standby_of), also keep
    /// `local replication postgres trust` (or `all`): they copy and follow
    /// it over its socket as user `postgres`, without a password.
    /// Default: initdb's.
    pub fn hba(mut self, contents: impl Into<String>) -> Self {
        self.hba = Some(contents.into());
        self
    }

    /// How long [`start`](Self::start) waits for the server to accept
    /// connections. Default: 30 s.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long [`Cluster::stop`] and drop wait for the server to stop and
    /// its directory to be removed. Default: 15 s.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Makes the cluster a streaming standby of `primary`, for failover
    /// tests: [`start`](Self::start) copies the primary's data with
    /// `pg_basebackup -R -X stream` (over the primary's Unix socket, as user
    /// `postgres`) instead of running `initdb`, then starts the server on
    /// the copy as a hot standby, which follows the primary by streaming
    /// replication and accepts read-only connections. Default: not a
    /// standby.
    ///
    /// The standby is a cluster of its own in every other respect: its own
    /// directory, socket and port (so give it another TCP port when it
    /// listens on TCP), and the other options of this builder apply to it
    /// (the copied `postgresql.conf` is overridden by them as usual). It
    /// connects to its primary under a name of its own,
    /// [`standby_name`](Cluster::standby_name), also its `cluster_name`,
    /// which [`Cluster::make_synchronous`] puts in the primary's
    /// `synchronous_standby_names`; it does not copy that setting from its
    /// primary. Unless set here, the binaries are the primary's (both must
    /// run the same major version), and `max_connections` is at least the
    /// primary's, as a hot standby requires (set other such limits, e.g.
    /// `max_worker_processes`, no lower than the primary's either).
    ///
    /// The primary must allow replication connections on its socket, as
    /// initdb's `pg_hba.conf` does (see [`hba`](Self::hba)), and run until
    /// `start` returns; a failed copy is reported as
    /// [`Error::StartFailed`] with `pg_basebackup`'s messages. A standby
    /// can be [promoted](Cluster::promote) once its primary is gone, e.g.
    /// after [`Cluster::stop_server`] with [`ShutdownMode::Immediate`].
    pub fn standby_of(mut self, primary: &Cluster) -> Self {
        self.standby_of = Some(PrimaryServer {
            dir: primary.dir.clone(),
            port: primary.port,
            bin_dir: primary.bin_dir.clone(),
            max_connections: primary.max_connections,
        });
        self
    }

    /// Creates the cluster in a new temporary directory (with `initdb`, or
    /// for a [standby](Self::standby_of) with `pg_basebackup`), starts the
    /// server and waits until it accepts connections (read-only ones, for a
    /// standby).
    ///
    /// Blocking; fine to call from inside a tokio runtime (it never enters
    /// one). When the process is root, the server runs as the `postgres`
    /// user, or `nobody` if there is none.
    pub fn start(self) -> Result<Cluster, Error> {
        let bin_dir = match (&self.bin_dir, &self.standby_of) {
            (Some(dir), _) if has_server_binaries(dir) => dir.clone(),
            (Some(dir), _) => {
                return Err(Error::BinariesNotFound {
                    searched: dir.display().to_string(),
                });
            }
            (None, Some(primary)) => primary.bin_dir.clone(),
            (None, None) => find_bin_dir()?,
        };
        // The name the standby connects to its primary with; unique among
        // the primary's standbys, which are all this process's.
        let standby = self.standby_of.as_ref().map(|primary| {
            static STANDBYS: AtomicU64 = AtomicU64::new(0);
            let n = STANDBYS.fetch_add(1, Ordering::Relaxed) + 1;
            let name = format!("ebb_standby_{}_{n}", std::process::id());
            let mut source = tokio_postgres::Config::new();
            source
                .host_path(&primary.dir)
                .port(primary.port)
                .user(SUPERUSER)
                .application_name(&name);
            (
                Standby {
                    name,
                    primary_dir: primary.dir.clone(),
                },
                conninfo::connection_string(&source),
            )
        });
        let run_as = run_as()?;
        let temp = tempfile::Builder::new()
            .prefix("ebb-pg-")
            .tempdir_in(temp_base(run_as.is_some()))
            .map_err(|e| Error::io("create a temporary directory for PostgreSQL", e))?;
        let dir = temp.path().to_path_buf();
        if let Some(account) = run_as {
            std::os::unix::fs::chown(&dir, Some(account.uid), Some(account.gid)).map_err(|e| {
                Error::io(format!("hand {} to the postgres user", dir.display()), e)
            })?;
        }

        self.write_server_files(&dir, run_as)?;

        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("ebb-localpg-watchdog")
            .arg(&dir)
            .arg(&bin_dir)
            .arg(standby.as_ref().map_or("", |(_, source)| source.as_str()))
            .args(
                self.server_args(&dir, standby.as_ref().map(|(s, _)| s))
                    .iter()
                    .flat_map(|arg| ["-c", arg]),
            )
            .current_dir(&dir)
            .env("HOME", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group: a Ctrl-C to the test run must not kill the
            // watchdog before it has cleaned up.
            .process_group(0);
        // The server reads PGDATA and PGPORT, and libpq (pg_basebackup, a
        // standby's WAL receiver) PGHOST, PGSSLMODE and the like: none
        // should come from the caller, as everything is passed explicitly.
        for (name, _) in std::env::vars_os() {
            if name.as_encoded_bytes().starts_with(b"PG") {
                command.env_remove(name);
            }
        }
        if let Some(account) = run_as {
            command.uid(account.uid).gid(account.gid);
        }
        let mut child = command
            .spawn()
            .map_err(|e| Error::io("spawn the PostgreSQL watchdog (/bin/sh)", e))?;
        let stdin = child.stdin.take();
        // From here on the watchdog owns the directory and removes it.
        let dir = temp.keep();
        let mut cluster = Cluster {
            dir,
            bin_dir,
            port: self.port,
            max_connections: self.effective_max_connections(),
            standby: standby.map(|(standby, _)| standby),
            run_as,
            watchdog: Some(Watchdog { child, stdin }),
            start_timeout: self.start_timeout,
            stop_timeout: self.stop_timeout,
            server_down: false,
        };
        match cluster.wait_ready(self.start_timeout) {
            Ok(()) => {
                tracing::debug!(dir = %cluster.dir.display(), "PostgreSQL cluster ready");
                Ok(cluster)
            }
            Err(err) => {
                let _ = cluster.shutdown();
                Err(err)
            }
        }
    }

    /// `max_connections` as the server gets it: for a standby at least
    /// the primary's.
    fn effective_max_connections(&self) -> u32 {
        self.standby_of
            .as_ref()
            .map_or(self.max_connections, |primary| {
                self.max_connections.max(primary.max_connections)
            })
    }

    /// The `name=value` settings passed to `postgres -c`.
    fn server_args(&self, dir: &Path, standby: Option<&Standby>) -> Vec<String> {
        let durable = if self.fsync { "on" } else { "off" };
        let mut args = vec![
            "listen_addresses=".to_owned(),
            format!("unix_socket_directories={}", dir.display()),
            format!("port={}", self.port),
            format!("max_connections={}", self.effective_max_connections()),
            format!("fsync={durable}"),
            format!("synchronous_commit={durable}"),
            format!("full_page_writes={durable}"),
        ];
        if let Some(standby) = standby {
            // Names the server in `ps` and logs; the WAL receiver's
            // application_name is set in primary_conninfo as well.
            args.push(format!("cluster_name={}", standby.name));
        }
        if let Some(tls) = &self.tls {
            args.push("ssl=on".to_owned());
            args.push(format!("ssl_cert_file={}", dir.join(SERVER_CERT).display()));
            args.push(format!("ssl_key_file={}", dir.join(SERVER_KEY).display()));
            if tls.client_ca_pem.is_some() {
                args.push(format!("ssl_ca_file={}", dir.join(CLIENT_CA).display()));
            }
        }
        if self.hba.is_some() {
            args.push(format!("hba_file={}", dir.join(HBA_FILE).display()));
        }
        args.extend(self.settings.iter().map(|(k, v)| format!("{k}={v}")));
        args
    }

    /// Writes the TLS files and `pg_hba.conf` into `dir`, owned by the
    /// server's account and readable by it alone (PostgreSQL refuses a
    /// key others can read).
    fn write_server_files(&self, dir: &Path, run_as: Option<RunAs>) -> Result<(), Error> {
        let mut files: Vec<(&str, &str)> = Vec::new();
        if let Some(tls) = &self.tls {
            files.push((SERVER_CERT, &tls.cert_pem));
            files.push((SERVER_KEY, &tls.key_pem));
            if let Some(ca) = &tls.client_ca_pem {
                files.push((CLIENT_CA, ca));
            }
        }
        if let Some(hba) = &self.hba {
            files.push((HBA_FILE, hba));
        }
        for (name, contents) in files {
            use std::os::unix::fs::OpenOptionsExt as _;
            let path = dir.join(name);
            let write = || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                std::io::Write::write_all(&mut file, contents.as_bytes())?;
                if let Some(account) = run_as {
                    std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid))?;
                }
                Ok(())
            };
            write().map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// The last lines (at most 4 KiB) of the log at `path`, for error
/// messages; `(no log)` when there is none.
pub(crate) fn log_tail(path: &Path) -> String {
    const MAX: u64 = 4096;
    let Ok(mut file) = std::fs::File::open(path) else {
        return "(no log)".to_owned();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    // A cut first line is noise.
    let skip = usize::from(len > MAX && lines.len() > 1);
    lines[skip..].join("\n")
}

/// Where the cluster's directory goes. Unix socket paths are limited to
/// about 107 bytes, so the directory must have a short path; an account we
/// switch to must also be able to reach it, which `/tmp` guarantees and a
/// root user's `$TMPDIR` may not.
pub(crate) fn temp_base(switching_user: bool) -> PathBuf {
    let env = std::env::temp_dir();
    if !switching_user && env.as_os_str().len() <= 60 {
        env
    } else {
        PathBuf::from("/tmp")
    }
}

/// What a standby cluster knows of its replication.
#[derive(Debug)]
pub(crate) struct Standby {
    /// Its `application_name` on the primary (and `cluster_name`): what
    /// `synchronous_standby_names` and `pg_stat_replication` call it.
    pub(crate) name: String,
    /// The primary's socket directory, which identifies the primary.
    pub(crate) primary_dir: PathBuf,
}

/// The running watchdog shell and our end of its pipe.
#[derive(Debug)]
struct Watchdog {
    /// The main shell; it exits when postgres does, which reveals a failed
    /// start, and must be reaped.
    child: Child,
    /// Closing this tells the watchdog to stop the server and clean up.
    stdin: Option<ChildStdin>,
}

/// A running private PostgreSQL cluster; stopped and removed on drop.
///
/// It listens only on a Unix socket in its own temporary directory
/// ([`socket_dir`](Self::socket_dir)), so any number of clusters, from any
/// number of processes, can run at once. If the process dies without
/// dropping it, the watchdog still stops the server and removes the
/// directory.
#[derive(Debug)]
pub struct Cluster {
    /// The temporary directory: `data/` (the cluster), `log`, and the
    /// socket. Short, because socket paths are limited.
    dir: PathBuf,
    /// Where the binaries were found, for [`Cluster::command`].
    bin_dir: PathBuf,
    /// Names the socket file `.s.PGSQL.<port>`.
    port: u16,
    /// The server's `max_connections`, which a standby must match.
    max_connections: u32,
    /// Set when the cluster was started as a standby (and kept after a
    /// promotion).
    pub(crate) standby: Option<Standby>,
    /// The account the server runs as when we are root; client tools are
    /// run as it too.
    run_as: Option<RunAs>,
    /// `None` once stopped, so drop after `stop` does nothing.
    watchdog: Option<Watchdog>,
    /// How long [`Cluster::start_server`] waits for the server, and the
    /// replication calls for theirs.
    pub(crate) start_timeout: Duration,
    /// How long stop and drop wait.
    stop_timeout: Duration,
    /// Whether the server was stopped by [`Cluster::stop_server`] and not
    /// started again yet.
    server_down: bool,
}

/// How [`Cluster::stop_server`] and [`Cluster::restart_with`] stop the
/// server, as `pg_ctl stop -m MODE` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Fast shutdown (`SIGINT`): open transactions are rolled back,
    /// clients disconnected, and a checkpoint written. The default.
    #[default]
    Fast,
    /// Immediate shutdown (`SIGQUIT`): every server process quits at once,
    /// as in a crash, and the next start recovers from the write-ahead
    /// log. Without [`fsync`](ClusterBuilder::fsync) the last commits
    /// may not have reached the log yet (`synchronous_commit` is off) and
    /// are then lost.
    Immediate,
}

impl Cluster {
    /// Starts a cluster with the default options; see [`ClusterBuilder`].
    pub fn start() -> Result<Cluster, Error> {
        Cluster::builder().start()
    }

    /// Options for a cluster, each with a documented default.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// Connection settings for database `dbname`: the socket directory as
    /// host, the port, user `postgres`, no password.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(self.port)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// A libpq `key=value` connection string for `dbname`, usable by
    /// `psql`, `pgbench` or as `DATABASE_URL`, e.g.
    /// `host=/tmp/ebb-pg-Ab12Cd port=5432 user=postgres dbname=foo`: the
    /// [`config`](Self::config) rendered by [`conninfo::connection_string`].
    pub fn connection_string(&self, dbname: &str) -> String {
        conninfo::connection_string(&self.config(dbname))
    }

    /// The directory holding the server's Unix socket (and its data and
    /// log).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The port, which names the socket file.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database superuser clients connect as: `postgres`.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// Where `postgres` and `initdb` were found; `psql` and `pgbench` live
    /// there too.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// A [`Command`] for `bin_dir/program` (e.g. `"psql"`, `"pgbench"`)
    /// with `PGHOST`, `PGPORT` and `PGUSER` pointing at this cluster. When
    /// the process is root it runs as the same unprivileged account as the
    /// server, so files passed to it must be readable by that account.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command
            .env("PGHOST", &self.dir)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE");
        if let Some(account) = self.run_as {
            command.uid(account.uid).gid(account.gid);
        }
        command
    }

    /// Stops the server (fast shutdown) and removes its directory, waiting
    /// for both. Dropping does the same but cannot report failure.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    /// Stops the server, as `pg_ctl stop -m fast` (or `-m immediate`)
    /// does, and waits until it has exited; the cluster's directory, data,
    /// port and socket directory stay, and [`start_server`](Self::start_server)
    /// starts it again on them. Meanwhile connections fail (the socket is
    /// gone) and open ones are closed by the server. Does nothing when the
    /// server is already stopped this way; drop or [`stop`](Self::stop)
    /// clean up as usual while it is.
    ///
    /// Blocking, for at most the [stop timeout](ClusterBuilder::stop_timeout);
    /// from async code call it through `tokio::task::block_in_place` or
    /// `spawn_blocking`.
    pub fn stop_server(&mut self, mode: ShutdownMode) -> Result<(), Error> {
        if self.server_down {
            return Ok(());
        }
        let held = self.dir.join("held");
        let down = self.dir.join("down");
        std::fs::write(&held, b"")
            .map_err(|e| Error::io(format!("create {}", held.display()), e))?;
        let Some(pid) = self.postmaster_pid() else {
            let _ = std::fs::remove_file(&held);
            return Err(Error::io(
                "find the postmaster's pid in postmaster.pid",
                std::io::ErrorKind::NotFound.into(),
            ));
        };
        let signal = match mode {
            ShutdownMode::Fast => libc::SIGINT,
            ShutdownMode::Immediate => libc::SIGQUIT,
        };
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(pid, signal) } != 0 {
            let err = std::io::Error::last_os_error();
            let _ = std::fs::remove_file(&held);
            return Err(Error::io(format!("signal the postmaster ({pid})"), err));
        }
        // The watchdog's shell creates `down` once postgres has exited and
        // it waits for `held` to go.
        let started = Instant::now();
        while !down.exists() {
            if self.watchdog_exited()?.is_some() || started.elapsed() > self.stop_timeout {
                return Err(Error::StopTimeout {
                    dir: self.dir.clone(),
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The postmaster removes it as it exits; should one be left, the
        // next start must not take it for the new server's.
        let _ = std::fs::remove_file(self.dir.join("data").join("postmaster.pid"));
        self.server_down = true;
        tracing::debug!(dir = %self.dir.display(), ?mode, "PostgreSQL server stopped");
        Ok(())
    }

    /// Starts the server that [`stop_server`](Self::stop_server) stopped,
    /// on the same directory, port and socket directory, and waits until it
    /// accepts connections, as [`ClusterBuilder::start`] does (for at most
    /// the [start timeout](ClusterBuilder::start_timeout)). Does nothing
    /// when the server runs.
    ///
    /// Blocking, like [`stop_server`](Self::stop_server).
    pub fn start_server(&mut self) -> Result<(), Error> {
        if !self.server_down {
            return Ok(());
        }
        let held = self.dir.join("held");
        std::fs::remove_file(&held)
            .map_err(|e| Error::io(format!("remove {}", held.display()), e))?;
        self.server_down = false;
        self.wait_ready(self.start_timeout)?;
        tracing::debug!(dir = %self.dir.display(), "PostgreSQL server started again");
        Ok(())
    }

    /// Restarts the server with a fast shutdown: [`stop_server`](Self::stop_server)
    /// then [`start_server`](Self::start_server). Connections opened before
    /// fail; new ones reach the same databases, with everything committed
    /// before the restart.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.restart_with(ShutdownMode::Fast)
    }

    /// [`restart`](Self::restart), stopping the server the way `mode` says.
    pub fn restart_with(&mut self, mode: ShutdownMode) -> Result<(), Error> {
        self.stop_server(mode)?;
        self.start_server()
    }

    /// Whether the server runs, that is, has not been stopped by
    /// [`stop_server`](Self::stop_server) (or was started again since).
    pub fn is_running(&self) -> bool {
        !self.server_down
    }

    /// The postmaster's pid, from the first line of `postmaster.pid`.
    fn postmaster_pid(&self) -> Option<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("data").join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<libc::pid_t>().ok())
            .filter(|&pid| pid > 0)
    }

    /// The watchdog's main shell's exit status, once it has exited.
    fn watchdog_exited(&mut self) -> Result<Option<std::process::ExitStatus>, Error> {
        match self.watchdog.as_mut() {
            Some(watchdog) => watchdog
                .child
                .try_wait()
                .map_err(|e| Error::io("check on the PostgreSQL watchdog", e)),
            None => Ok(None),
        }
    }

    /// Waits until `postmaster.pid` says "ready" (as `pg_ctl` does), or the
    /// watchdog's main shell exits (a failed start), or time runs out.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let pid_file = self.dir.join("data").join("postmaster.pid");
        loop {
            if let Some(status) = self.watchdog_exited()? {
                let stage = match status.code() {
                    Some(3) => "initdb failed".to_owned(),
                    Some(4) => "postgres exited".to_owned(),
                    Some(5) => "pg_basebackup failed".to_owned(),
                    _ => format!("watchdog {status}"),
                };
                return Err(Error::StartFailed {
                    stage,
                    log_path: self.log_path(),
                    log_tail: self.log_tail(),
                });
            }
            if std::fs::read_to_string(&pid_file)
                .is_ok_and(|text| text.lines().nth(7).is_some_and(|s| s.trim() == "ready"))
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(Error::StartTimeout {
                    waited: timeout,
                    log_path: self.log_path(),
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The last lines of the server log, for error messages.
    fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// The account the server runs as when we are root, `None` otherwise;
    /// a [`PgBouncer`](crate::PgBouncer) in front of the cluster runs as
    /// it too.
    pub(crate) fn run_as(&self) -> Option<RunAs> {
        self.run_as
    }

    /// Closes the watchdog's pipe and waits, bounded, until the server has
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
                tracing::debug!(dir = %self.dir.display(), "PostgreSQL cluster stopped and removed");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The watchdog is gone or stuck: stop postgres and clean up here.
        tracing::warn!(dir = %self.dir.display(), "PostgreSQL watchdog did not clean up; doing it directly");
        let _ = watchdog.child.kill();
        let _ = watchdog.child.wait();
        self.kill_postmaster();
        let _ = std::fs::remove_dir_all(&self.dir);
        Err(Error::StopTimeout {
            dir: self.dir.clone(),
            waited: self.stop_timeout,
        })
    }

    /// Immediate shutdown, then SIGKILL, of the postmaster named in
    /// `postmaster.pid`, if any.
    fn kill_postmaster(&self) {
        let Some(pid) = self.postmaster_pid() else {
            return;
        };
        // SAFETY: kill has no memory-safety preconditions.
        let alive = |sig| unsafe { libc::kill(pid, sig) } == 0;
        if !alive(libc::SIGQUIT) {
            return;
        }
        let started = Instant::now();
        while alive(0) {
            if started.elapsed() > Duration::from_secs(3) {
                alive(libc::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::warn!(error = %err, "stopping PostgreSQL cluster");
        }
    }
}
