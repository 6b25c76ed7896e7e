//! Clusters of a test's own, for tests that freeze, stop or restart their
//! server (which would disturb every other test on a shared one), and over
//! TCP.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use ebb_localpg::Cluster;
use ebb_message_store::schema;

/// How a private cluster takes connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Its Unix socket only (ebb-localpg's default).
    Socket,
    /// Its Unix socket and a TCP port on 127.0.0.1.
    Tcp,
}

/// Starts a cluster; with [`Listen::Tcp`] on a free loopback port (tried
/// again on another port if one is taken between choosing and starting).
pub fn start_cluster(listen: Listen) -> Cluster {
    if listen == Listen::Socket {
        return Cluster::start().expect("a private cluster");
    }
    start_on_loopback(Cluster::builder)
}

/// Starts the cluster `builder` makes on a free loopback port (and its
/// socket), trying another port if one is taken between choosing and
/// starting.
pub fn start_on_loopback(builder: impl Fn() -> ebb_localpg::ClusterBuilder) -> Cluster {
    let mut last = None;
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        match builder()
            .port(port)
            .setting("listen_addresses", "127.0.0.1")
            .start()
        {
            Ok(cluster) => return cluster,
            Err(err) => last = Some(err),
        }
    }
    panic!("no private cluster on a loopback port: {last:?}");
}

/// A primary with ebb's schema and its synchronous streaming standby, each
/// on its Unix socket and a loopback port: a commit the primary confirmed
/// is on the standby, so a promotion loses nothing a client saw committed.
#[derive(Debug)]
pub struct Failover {
    /// Until [`fail_over`](Self::fail_over) stops it.
    primary: Option<Cluster>,
    /// Taken only while it is promoted.
    standby: Option<Cluster>,
    /// The primary's socket directory and port, which stay in the
    /// settings after it is gone.
    primary_socket: (std::path::PathBuf, u16),
}

impl Failover {
    /// Starts both, the standby synchronous, and installs the schema.
    pub async fn start() -> Self {
        let (primary, standby) = tokio::task::spawn_blocking(|| {
            let primary =
                start_on_loopback(|| Cluster::builder().setting("synchronous_commit", "on"));
            let standby = start_on_loopback(|| Cluster::builder().standby_of(&primary));
            primary
                .make_synchronous(&standby)
                .expect("the standby becomes synchronous");
            (primary, standby)
        })
        .await
        .expect("the clusters start");
        let (client, connection) = primary
            .config("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("a connection to the primary");
        tokio::spawn(connection);
        schema::install(&client).await.expect("the schema installs");
        let primary_socket = (primary.socket_dir().to_path_buf(), primary.port());
        Self {
            primary: Some(primary),
            standby: Some(standby),
            primary_socket,
        }
    }

    /// Settings that find whichever is the primary: the primary's socket
    /// directory, then the standby over TCP, with
    /// `target_session_attrs=read-write` (so the standby is passed over
    /// until it is promoted), and a short connect timeout.
    pub fn config(&self) -> tokio_postgres::Config {
        let (dir, port) = &self.primary_socket;
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(dir)
            .host("127.0.0.1")
            .port(*port)
            .port(self.standby().port())
            .user(self.standby().user())
            .dbname("postgres")
            .target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite)
            .connect_timeout(Duration::from_secs(2));
        config
    }

    /// [`config`](Self::config) as a `key=value` connection string.
    pub fn connection_string(&self) -> String {
        ebb_localpg::conninfo::connection_string(&self.config())
    }

    /// Whether the primary still runs (no failover yet).
    pub fn has_primary(&self) -> bool {
        self.primary.is_some()
    }

    /// The standby (the primary once promoted).
    pub fn standby(&self) -> &Cluster {
        self.standby.as_ref().expect("the standby")
    }

    /// Stops the primary as in a crash (immediate mode), leaving the
    /// standby a standby.
    pub async fn stop_primary(&mut self) {
        let mut primary = self.primary.take().expect("a primary to stop");
        tokio::task::spawn_blocking(move || {
            primary
                .stop_server(ebb_localpg::ShutdownMode::Immediate)
                .expect("the primary stops");
        })
        .await
        .expect("the primary stops");
    }

    /// Stops the primary as in a crash (immediate mode), unless it is
    /// stopped already, and promotes the standby; returns once the standby
    /// takes writes.
    pub async fn fail_over(&mut self) {
        let primary = self.primary.take();
        let standby = self.standby.take().expect("the standby");
        let promoted = tokio::task::spawn_blocking(move || {
            if let Some(mut primary) = primary {
                primary
                    .stop_server(ebb_localpg::ShutdownMode::Immediate)
                    .expect("the primary stops");
            }
            standby.promote().expect("the standby is promoted");
            standby
        })
        .await
        .expect("the failover");
        self.standby = Some(promoted);
    }
}

/// Settings for `dbname` on `cluster` over TCP (the cluster must have been
/// started with [`Listen::Tcp`]).
pub fn tcp_config(cluster: &Cluster, dbname: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(cluster.port())
        .user(cluster.user())
        .dbname(dbname);
    config
}

/// A cluster of the test's own with ebb's schema in its `postgres`
/// database, and settings to connect to that database as `listen` says.
pub async fn cluster_with_schema(listen: Listen) -> (Cluster, tokio_postgres::Config) {
    let cluster = tokio::task::spawn_blocking(move || start_cluster(listen))
        .await
        .expect("the cluster starts");
    let (client, connection) = cluster
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("a connection to the private cluster");
    tokio::spawn(connection);
    schema::install(&client).await.expect("the schema installs");
    let config = match listen {
        Listen::Socket => cluster.config("postgres"),
        Listen::Tcp => tcp_config(&cluster, "postgres"),
    };
    (cluster, config)
}

/// Every process of a cluster stopped with `SIGSTOP` (the server stops
/// answering, while its sockets stay open), until this is dropped.
#[derive(Debug)]
pub struct Frozen {
    /// The postmaster first, then its children (each of which PostgreSQL
    /// makes the leader of a process group of its own, so that they are
    /// not reached through the postmaster's group).
    pids: Vec<libc::pid_t>,
}

impl Frozen {
    /// Freezes `cluster`: the postmaster, so that it starts no process
    /// any more, then every process it started.
    pub fn freeze(cluster: &Cluster) -> Frozen {
        let pid_file = cluster.socket_dir().join("data/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).expect("postmaster.pid");
        let postmaster: libc::pid_t = text
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .expect("a pid on the first line of postmaster.pid");
        let mut frozen = Frozen { pids: Vec::new() };
        frozen.stop(postmaster);
        for child in children_of(postmaster) {
            frozen.stop(child);
        }
        assert!(
            frozen.pids.len() > 2,
            "the postmaster and its processes: {:?}",
            frozen.pids
        );
        // A signal is taken when its process next runs: each is seen
        // stopped (`T`), or gone (a backend that was exiting: `Z`, `X`),
        // before the cluster counts as frozen.
        for &pid in &frozen.pids {
            assert!(
                until_state(pid, |state| matches!(state, 'T' | 'Z' | 'X')),
                "process {pid} not stopped after 10 s: {:?}",
                state_of(pid)
            );
        }
        frozen
    }

    fn stop(&mut self, pid: libc::pid_t) {
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(pid, libc::SIGSTOP) } == 0 {
            self.pids.push(pid);
        }
    }

    /// Resumes the cluster.
    pub fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in self.pids.iter().rev() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        // Each is seen running again (no longer `T`) before this returns
        // (no panic here: this may run while a test unwinds).
        for &pid in &self.pids {
            until_state(pid, |state| state != 'T');
        }
    }
}

/// The state letter of process `pid` in `/proc/PID/stat`; `None` once it
/// is gone.
fn state_of(pid: libc::pid_t) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Waits (up to 10 s) until process `pid` is gone or its state satisfies
/// `wanted`; false if it did not within.
fn until_state(pid: libc::pid_t, wanted: impl Fn(char) -> bool) -> bool {
    let started = std::time::Instant::now();
    while let Some(state) = state_of(pid) {
        if wanted(state) {
            return true;
        }
        if started.elapsed() > Duration::from_secs(10) {
            return false;
        }
        // Polls /proc until the process's state is the one wanted.
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The processes whose parent is `parent`, from `/proc`.
fn children_of(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| {
            // "pid (comm) state ppid ...": the name may hold spaces and
            // parentheses, so read from the last ") ".
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<libc::pid_t>().ok())
                    == Some(parent)
            })
        })
        .collect()
}
