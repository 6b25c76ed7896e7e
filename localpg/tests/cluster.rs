//! The private cluster: start, query, isolation, restarts, clean-up (also
//! when the process dies), and clear errors.

#![allow(clippy::print_stdout)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebb_localpg::{Cluster, Error, ShutdownMode};
use tokio_postgres::NoTls;

async fn query_one(config: tokio_postgres::Config, sql: &str) -> String {
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.expect("query").get(0)
}

/// The postmaster's pid, from the first line of `postmaster.pid`.
fn postmaster_pid(cluster: &Cluster) -> i32 {
    let text = std::fs::read_to_string(cluster.socket_dir().join("data/postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

/// Whether `pid` runs; a zombie does not count (an orphan's new parent may
/// be slow to reap it).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid, 0) == 0 };
    exists
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            !stat.rsplit(") ").next().unwrap_or("").starts_with('Z')
        })
}

/// The parent of `pid`, from `/proc`.
fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit(") ").next().unwrap();
    after_name.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The children of `pid` and their command names (`/proc`).
fn children_of(pid: i32) -> Vec<(i32, String)> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .filter_map(|child: i32| {
            let name = std::fs::read_to_string(format!("/proc/{child}/comm")).ok()?;
            Some((child, name.trim().to_owned()))
        })
        .collect()
}

/// Waits until `cond` holds or `timeout` passes; returns whether it held.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if cond() {
            return true;
        }
        // A poll: `cond` is asked again until it holds.
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

#[tokio::test]
async fn starts_from_inside_a_runtime_and_answers_queries() {
    let cluster = Cluster::start().expect("start cluster");
    let user = query_one(cluster.config("postgres"), "SELECT current_user::text").await;
    assert_eq!(user, cluster.user());
    assert_eq!(cluster.user(), "postgres");

    // The connection string is what tools and DATABASE_URL take.
    let conninfo = cluster.connection_string("postgres");
    assert!(
        conninfo.contains(&format!("host={}", cluster.socket_dir().display())),
        "{conninfo}"
    );
    let parsed: tokio_postgres::Config = conninfo.parse().unwrap();
    let fsync = query_one(parsed, "SELECT current_setting('fsync')").await;
    assert_eq!(fsync, "off");

    let output = cluster
        .command("psql")
        .args(["-XAtc", "SELECT 40 + 2", "postgres"])
        .output()
        .expect("run psql");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
}

#[test]
fn builder_options_reach_the_server() {
    let cluster = Cluster::builder()
        .fsync(true)
        .max_connections(42)
        .setting("application_name", "ebb test")
        .start()
        .expect("start cluster");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = cluster.config("postgres");
        assert_eq!(
            query_one(config.clone(), "SELECT current_setting('fsync')").await,
            "on"
        );
        assert_eq!(
            query_one(config.clone(), "SELECT current_setting('max_connections')").await,
            "42"
        );
        assert_eq!(
            query_one(config.clone(), "SELECT current_setting('listen_addresses')").await,
            ""
        );
        assert_eq!(
            query_one(config, "SELECT current_setting('application_name')").await,
            "ebb test"
        );
    });
}

#[test]
fn two_clusters_run_side_by_side() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Cluster::start);
        let b = s.spawn(Cluster::start);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_ne!(a.socket_dir(), b.socket_dir());
    assert_eq!(
        a.port(),
        b.port(),
        "same port number, different socket directories"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client_a, conn) = a.config("postgres").connect(NoTls).await.unwrap();
        tokio::spawn(conn);
        let (client_b, conn) = b.config("postgres").connect(NoTls).await.unwrap();
        tokio::spawn(conn);
        client_a
            .batch_execute("CREATE DATABASE only_in_a")
            .await
            .unwrap();
        let in_b = client_b
            .query_opt("SELECT 1 FROM pg_database WHERE datname = 'only_in_a'", &[])
            .await
            .unwrap();
        assert!(in_b.is_none());
    });
}

#[test]
fn drop_stops_the_server_and_removes_the_directory() {
    let cluster = Cluster::start().expect("start cluster");
    let dir = cluster.socket_dir().to_path_buf();
    let socket = dir.join(format!(".s.PGSQL.{}", cluster.port()));
    let pid = postmaster_pid(&cluster);
    assert!(socket.exists() && alive(pid));
    drop(cluster);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err());
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "postmaster {pid} still alive"
    );
}

#[test]
fn stop_reports_a_clean_shutdown() {
    let cluster = Cluster::start().expect("start cluster");
    let dir = cluster.socket_dir().to_path_buf();
    let pid = postmaster_pid(&cluster);
    cluster.stop().expect("stop");
    assert!(!dir.exists());
    assert!(!alive(pid));
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Creates table `t` holding 1, 2 and 3 in the `postgres` database.
async fn fill(client: &tokio_postgres::Client) {
    client
        .batch_execute("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();
}

async fn sum(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT sum(n) FROM t", &[])
        .await
        .unwrap()
        .get(0)
}

/// After a restart the server is a new process on the same socket: new
/// connections work and see what was committed before; connections from
/// before fail, as the server's going away closed them.
#[test]
fn a_restarted_server_keeps_its_data_and_closes_old_connections() {
    let mut cluster = Cluster::start().expect("start cluster");
    let runtime = current_thread_runtime();
    let config = cluster.config("postgres");
    let old = runtime.block_on(async {
        let client = connect(&config).await;
        fill(&client).await;
        client
    });
    let (dir, port, pid) = (
        cluster.socket_dir().to_path_buf(),
        cluster.port(),
        postmaster_pid(&cluster),
    );
    let started = Instant::now();
    cluster.restart().expect("restart");
    println!("restart took {:?}", started.elapsed());
    assert!(cluster.is_running());
    assert_eq!(
        (cluster.socket_dir(), cluster.port()),
        (dir.as_path(), port)
    );
    assert_ne!(postmaster_pid(&cluster), pid, "a new postmaster");
    assert!(!alive(pid), "the old postmaster is gone");
    runtime.block_on(async {
        let err = old
            .query_one("SELECT 1", &[])
            .await
            .expect_err("a connection from before the restart fails");
        assert!(err.is_closed() || err.code().is_some(), "{err:?}");
        let new = connect(&config).await;
        assert_eq!(sum(&new).await, 6);
    });
    let dir = cluster.socket_dir().to_path_buf();
    cluster.stop().expect("stop after a restart");
    assert!(!dir.exists());
}

/// Between `stop_server` and `start_server` nothing answers; both are
/// idempotent, and dropping a cluster whose server is down cleans up.
#[test]
fn a_stopped_server_refuses_connections_until_started_again() {
    let mut cluster = Cluster::start().expect("start cluster");
    let runtime = current_thread_runtime();
    let config = cluster.config("postgres");
    runtime.block_on(async { fill(&connect(&config).await).await });
    let pid = postmaster_pid(&cluster);
    let shell = parent_of(pid);
    cluster
        .stop_server(ShutdownMode::Fast)
        .expect("stop server");
    assert!(!cluster.is_running());
    assert!(!alive(pid));
    cluster
        .stop_server(ShutdownMode::Fast)
        .expect("stopping a stopped server does nothing");
    runtime.block_on(async {
        let refused = config.connect(NoTls).await;
        assert!(refused.is_err(), "no server, no connection");
    });
    // Still down after the watchdog's shell has looked again: held down,
    // it looks for `held` before each `sleep` of its loop, so a third
    // `sleep` child seen means it has looked twice more since the stop,
    // and did not start the server by itself.
    let mut sleeps = std::collections::HashSet::new();
    let mut started_again = Vec::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            for (child, name) in children_of(shell) {
                match name.as_str() {
                    "sleep" => {
                        sleeps.insert(child);
                    }
                    "postgres" => started_again.push(child),
                    _ => {}
                }
            }
            sleeps.len() >= 3 || !started_again.is_empty()
        }),
        "the held-down shell {shell} never looked again"
    );
    assert!(started_again.is_empty(), "started again: {started_again:?}");
    assert!(!cluster.socket_dir().join("data/postmaster.pid").exists());
    cluster.start_server().expect("start server");
    cluster
        .start_server()
        .expect("starting a running server does nothing");
    assert!(cluster.is_running());
    runtime.block_on(async { assert_eq!(sum(&connect(&config).await).await, 6) });

    // Dropped while down: the watchdog still removes everything.
    cluster
        .stop_server(ShutdownMode::Fast)
        .expect("stop server");
    let dir = cluster.socket_dir().to_path_buf();
    drop(cluster);
    assert!(!dir.exists(), "{} still exists", dir.display());
}

/// An immediate shutdown is a crash to the server: the next start
/// recovers, and with durability on nothing committed is lost.
#[test]
fn an_immediate_restart_recovers_what_was_committed() {
    let mut cluster = Cluster::builder()
        .fsync(true)
        .start()
        .expect("start cluster");
    let runtime = current_thread_runtime();
    let config = cluster.config("postgres");
    runtime.block_on(async { fill(&connect(&config).await).await });
    cluster
        .restart_with(ShutdownMode::Immediate)
        .expect("immediate restart");
    runtime.block_on(async { assert_eq!(sum(&connect(&config).await).await, 6) });
    let log = std::fs::read_to_string(cluster.socket_dir().join("log")).unwrap();
    assert!(
        log.contains("was not properly shut down"),
        "the server recovered:\n{log}"
    );
}

/// The watchdog's main shell is the postmaster's parent; killing it must
/// not keep the cluster from being cleaned up.
#[test]
fn a_killed_watchdog_shell_still_cleans_up() {
    let cluster = Cluster::start().expect("start cluster");
    let dir = cluster.socket_dir().to_path_buf();
    let pid = postmaster_pid(&cluster);
    let shell = parent_of(pid);
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(shell, libc::SIGKILL) }, 0);
    assert!(eventually(Duration::from_secs(5), || !alive(shell)));
    drop(cluster);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "postmaster {pid} still alive"
    );
}

#[test]
fn missing_binaries_name_the_package() {
    let empty = tempfile::tempdir().unwrap();
    let err = Cluster::builder()
        .bin_dir(empty.path())
        .start()
        .unwrap_err();
    assert!(err.is_binaries_not_found(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("postgres, initdb"), "{message}");
    assert!(message.contains("apt-get install postgresql"), "{message}");
    assert!(
        message.contains(&empty.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn a_failed_start_reports_the_log_and_cleans_up() {
    let err = Cluster::builder()
        .setting("no_such_setting", "1")
        .start()
        .unwrap_err();
    let Error::StartFailed {
        log_tail, log_path, ..
    } = &err
    else {
        panic!("expected StartFailed, got {err:?}");
    };
    assert!(log_tail.contains("no_such_setting"), "{err}");
    // The log lies in the cluster's own directory, which must be gone.
    let dir = log_path.parent().unwrap();
    assert!(
        dir.file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("ebb-pg-")),
        "{}",
        log_path.display()
    );
    assert!(!dir.exists(), "{} still exists", dir.display());
}

/// Not a test of its own, so ignored in normal runs: [`child_dies`] runs it
/// in a new process with `EBB_LOCALPG_CHILD` set to `panic`, `abort` or
/// `kill`. It starts a cluster, prints its directory and postmaster pid, and
/// then dies the way the variable says, without running `Cluster`'s drop.
#[test]
#[ignore = "the child process of child_dies; needs EBB_LOCALPG_CHILD"]
fn child_helper() {
    let mode = std::env::var("EBB_LOCALPG_CHILD").unwrap_or_default();
    assert!(
        ["panic", "abort", "kill"].contains(&mode.as_str()),
        "child_helper is run by child_dies with EBB_LOCALPG_CHILD=panic|abort|kill, got {mode:?}"
    );
    let cluster = Cluster::start().expect("start cluster");
    println!("DIR={}", cluster.socket_dir().display());
    println!("PID={}", postmaster_pid(&cluster));
    std::io::stdout().flush().unwrap();
    match mode.as_str() {
        "panic" => {
            // As the shared cluster in a static: never dropped.
            std::mem::forget(cluster);
            panic!("child panics on purpose");
        }
        "abort" => std::process::abort(),
        _ => loop {
            // "kill": wait for the parent's SIGKILL.
            std::thread::sleep(Duration::from_secs(1));
        },
    }
}

/// Runs `child_helper` in a new process of this test binary and checks that
/// the cluster it leaves behind disappears.
fn child_dies(mode: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EBB_LOCALPG_CHILD", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut dir = None;
    let mut pid = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The harness may print "test child_helper ... " on the same line.
        if let Some((_, d)) = line.split_once("DIR=") {
            dir = Some(PathBuf::from(d));
        } else if let Some((_, p)) = line.split_once("PID=") {
            pid = Some(p.parse::<i32>().unwrap());
            break;
        }
    }
    let (dir, pid) = (
        dir.expect("child printed its dir"),
        pid.expect("child printed the pid"),
    );
    assert!(dir.exists() && alive(pid));
    if mode == "kill" {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        eventually(Duration::from_secs(20), || !dir.exists() && !alive(pid)),
        "after the child's {mode}: dir {} exists: {}, postmaster {pid} alive: {}",
        dir.display(),
        dir.exists(),
        alive(pid),
    );
}

#[test]
fn a_panicking_process_leaves_nothing_behind() {
    child_dies("panic");
}

#[test]
fn an_aborting_process_leaves_nothing_behind() {
    child_dies("abort");
}

#[test]
fn a_killed_process_leaves_nothing_behind() {
    child_dies("kill");
}
