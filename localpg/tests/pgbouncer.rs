//! A PgBouncer in front of a private cluster: transaction pooling really
//! shares server connections between clients, session pooling does not;
//! the admin console; startup options; clean-up on drop, stop and the
//! death of the process; clear errors.

#![allow(clippy::print_stdout)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebb_localpg::{Cluster, Error, PgBouncer, PoolMode, ShutdownMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, SimpleQueryRow};

async fn connect(config: &tokio_postgres::Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// The rows of `sql`, run as a simple query: the only kind the admin
/// console takes, and one any pool mode relays.
async fn rows(client: &Client, sql: &str) -> Vec<SimpleQueryRow> {
    client
        .simple_query(sql)
        .await
        .expect(sql)
        .into_iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .collect()
}

/// The first column of the one row of `sql`.
async fn value(client: &Client, sql: &str) -> String {
    let rows = rows(client, sql).await;
    assert_eq!(rows.len(), 1, "{sql}");
    rows[0].get(0).expect("not null").to_owned()
}

/// Column `column` of `SHOW POOLS`'s row for database `postgres`.
async fn pool(admin: &Client, column: &str) -> String {
    rows(admin, "SHOW POOLS")
        .await
        .iter()
        .find(|row| row.get("database") == Some("postgres"))
        .and_then(|row| row.get(column))
        .unwrap_or_else(|| panic!("SHOW POOLS has no `{column}` for database postgres"))
        .to_owned()
}

/// Waits until `cond` holds or `timeout` passes; returns whether it held.
async fn eventually<F: std::future::Future<Output = bool>>(
    timeout: Duration,
    mut cond: impl FnMut() -> F,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if cond().await {
            return true;
        }
        // A poll: `cond` is asked again until it holds.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond().await
}

/// Whether `pid` runs; a zombie does not count.
fn alive(pid: u32) -> bool {
    let pid = i32::try_from(pid).unwrap();
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid, 0) == 0 };
    exists
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            !stat.rsplit(") ").next().unwrap_or("").starts_with('Z')
        })
}

/// With transaction pooling and one server connection, two clients
/// connected at once take turns on the same server session: the same
/// backend, a prepared statement of one is the other's, and a client
/// waits while the other is inside a transaction.
#[tokio::test]
async fn transaction_pooling_shares_one_server_connection() {
    let cluster = Cluster::start().expect("start cluster");
    let bouncer = PgBouncer::builder(&cluster)
        .pool_mode(PoolMode::Transaction)
        .pool_size(1)
        .start()
        .expect("start pgbouncer");
    assert_eq!(bouncer.pool_mode(), PoolMode::Transaction);
    assert_eq!(bouncer.pool_size(), 1);
    let admin = connect(&bouncer.config("pgbouncer")).await;
    let first = connect(&bouncer.config("postgres")).await;
    let second = connect(&bouncer.config("postgres")).await;
    assert_eq!(value(&first, "SELECT 1").await, "1");
    assert_eq!(pool(&admin, "pool_mode").await, "transaction");
    assert_eq!(pool(&admin, "cl_active").await, "2", "both clients are in");

    let backend = value(&first, "SELECT pg_backend_pid()").await;
    assert_eq!(
        value(&second, "SELECT pg_backend_pid()").await,
        backend,
        "one server connection for both clients"
    );
    let servers = rows(&admin, "SHOW SERVERS").await;
    assert_eq!(
        servers
            .iter()
            .filter(|row| row.get("database") == Some("postgres"))
            .count(),
        1,
        "one server connection"
    );

    // Session state is shared: one client's prepared statement is the
    // other's.
    first
        .batch_execute("PREPARE ebb_shared AS SELECT 42")
        .await
        .unwrap();
    assert_eq!(value(&second, "EXECUTE ebb_shared").await, "42");
    second.batch_execute("DEALLOCATE ebb_shared").await.unwrap();

    // Inside a transaction a client holds the server: the other waits.
    first.batch_execute("BEGIN").await.unwrap();
    assert_eq!(value(&first, "SELECT pg_backend_pid()").await, backend);
    let waiting = tokio::spawn(async move { value(&second, "SELECT pg_backend_pid()").await });
    assert!(
        eventually(Duration::from_secs(10), || async {
            pool(&admin, "cl_waiting").await == "1"
        })
        .await,
        "the second client waits for the server connection"
    );
    assert!(!waiting.is_finished(), "no server for it yet");
    first.batch_execute("COMMIT").await.unwrap();
    assert_eq!(waiting.await.unwrap(), backend, "served after the commit");
}

/// With session pooling each client keeps its own server connection:
/// different backends, and prepared statements stay private.
#[tokio::test]
async fn session_pooling_gives_each_client_its_own_server_connection() {
    let cluster = Cluster::start().expect("start cluster");
    let bouncer = PgBouncer::builder(&cluster)
        .pool_mode(PoolMode::Session)
        .pool_size(2)
        .start()
        .expect("start pgbouncer");
    assert_eq!(bouncer.pool_mode(), PoolMode::Session);
    let admin = connect(&bouncer.config("pgbouncer")).await;
    let first = connect(&bouncer.config("postgres")).await;
    let second = connect(&bouncer.config("postgres")).await;
    assert_eq!(value(&first, "SELECT 1").await, "1");
    assert_eq!(pool(&admin, "pool_mode").await, "session");

    let backends = [
        value(&first, "SELECT pg_backend_pid()").await,
        value(&second, "SELECT pg_backend_pid()").await,
    ];
    assert_ne!(backends[0], backends[1], "a server connection each");
    // Over and over: each keeps its own.
    assert_eq!(value(&first, "SELECT pg_backend_pid()").await, backends[0]);
    assert_eq!(value(&second, "SELECT pg_backend_pid()").await, backends[1]);

    first
        .batch_execute("PREPARE ebb_private AS SELECT 42")
        .await
        .unwrap();
    let err = second
        .batch_execute("EXECUTE ebb_private")
        .await
        .expect_err("another session's statement");
    assert_eq!(err.code(), Some(&SqlState::INVALID_SQL_STATEMENT_NAME));
    assert_eq!(value(&first, "EXECUTE ebb_private").await, "42");
}

/// Extra settings reach PgBouncer; the connection string works; the
/// `options` startup parameter ebb sends is accepted and dropped; two
/// bouncers run side by side in front of one cluster.
#[tokio::test]
async fn settings_and_startup_options() {
    let cluster = Cluster::start().expect("start cluster");
    let bouncer = PgBouncer::builder(&cluster)
        .setting("max_client_conn", "7")
        .setting("query_wait_timeout", "9")
        .start()
        .expect("start pgbouncer");
    let other = PgBouncer::builder(&cluster)
        .pool_mode(PoolMode::Session)
        .start()
        .expect("start a second pgbouncer");
    assert_ne!(bouncer.port(), other.port());
    assert_ne!(bouncer.dir(), other.dir());

    let admin = connect(&bouncer.config("pgbouncer")).await;
    let config: Vec<(String, String)> = rows(&admin, "SHOW CONFIG")
        .await
        .iter()
        .map(|row| {
            (
                row.get("key").unwrap_or_default().to_owned(),
                row.get("value").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let setting = |name: &str| {
        config
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(setting("max_client_conn"), Some("7"));
    assert_eq!(setting("query_wait_timeout"), Some("9"));
    assert_eq!(setting("pool_mode"), Some("transaction"));
    assert_eq!(setting("default_pool_size"), Some("10"));
    assert_eq!(setting("unix_socket_dir"), Some(""));
    assert_eq!(
        setting("ignore_startup_parameters"),
        Some("extra_float_digits,options")
    );

    let url = bouncer.connection_string("postgres");
    assert_eq!(
        url,
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            bouncer.port()
        )
    );
    let client = connect(&url.parse().unwrap()).await;
    assert_eq!(
        value(&client, "SELECT current_user::text").await,
        "postgres"
    );

    // What ebb's store sends: accepted, but not passed on to the server.
    let mut with_options = bouncer.config("postgres");
    with_options.options("-c search_path=message_store,public");
    let client = connect(&with_options).await;
    assert_eq!(
        value(&client, "SHOW search_path").await,
        "\"$user\", public"
    );

    let client = connect(&other.config("postgres")).await;
    assert_eq!(value(&client, "SELECT 1").await, "1");
}

/// Drop and `stop` end the process and remove the directory; clients
/// through it see their connection closed; the cluster is untouched.
#[test]
fn drop_and_stop_end_pgbouncer_and_remove_its_directory() {
    let cluster = Cluster::start().expect("start cluster");
    let bouncer = PgBouncer::builder(&cluster)
        .start()
        .expect("start pgbouncer");
    let (dir, pid) = (bouncer.dir().to_path_buf(), bouncer.pid());
    assert!(dir.join("pgbouncer.ini").exists());
    assert!(alive(pid), "pgbouncer {pid} runs");
    let log = std::fs::read_to_string(bouncer.log_path()).unwrap();
    assert!(log.contains("process up"), "{log}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(connect(&bouncer.config("postgres")));
    drop(bouncer);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(!alive(pid), "pgbouncer {pid} still runs");
    runtime.block_on(async {
        let err = client
            .simple_query("SELECT 1")
            .await
            .expect_err("no pgbouncer any more");
        assert!(err.is_closed() || err.code().is_some(), "{err:?}");
        let direct = connect(&cluster.config("postgres")).await;
        assert_eq!(value(&direct, "SELECT 1").await, "1");
    });

    let bouncer = PgBouncer::builder(&cluster)
        .start()
        .expect("start pgbouncer again");
    let (dir, pid) = (bouncer.dir().to_path_buf(), bouncer.pid());
    bouncer.stop().expect("stop pgbouncer");
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(!alive(pid), "pgbouncer {pid} still runs");

    // The watchdog's main shell, PgBouncer's parent, killed: dropping
    // still cleans up.
    let bouncer = PgBouncer::builder(&cluster)
        .start()
        .expect("start pgbouncer a third time");
    let (dir, pid) = (bouncer.dir().to_path_buf(), bouncer.pid());
    let shell = parent_of(pid);
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(shell, libc::SIGKILL) }, 0);
    drop(bouncer);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(!alive(pid), "pgbouncer {pid} still runs");
}

/// The parent of `pid`, from `/proc`.
fn parent_of(pid: u32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit(") ").next().unwrap();
    after_name.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Missing program, refused settings, and a PgBouncer that exits at once:
/// typed errors that say what to do, and nothing left behind.
#[test]
fn failures_are_reported_clearly() {
    let cluster = Cluster::start().expect("start cluster");

    let missing = PathBuf::from("/nonexistent/pgbouncer");
    let err = PgBouncer::builder(&cluster)
        .bin(&missing)
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::PgBouncerNotFound { .. }), "{err:?}");
    assert!(err.is_binaries_not_found());
    let message = err.to_string();
    assert!(message.contains("apt-get install pgbouncer"), "{message}");
    assert!(message.contains("/nonexistent/pgbouncer"), "{message}");

    for (name, value, says) in [
        ("listen_port", "6432", "free port"),
        ("POOL_MODE", "session", "PgBouncerBuilder::pool_mode"),
        ("default_pool_size", "3", "PgBouncerBuilder::pool_size"),
        ("max client conn", "3", "letters, digits"),
        ("admin_users", "postgres\nlisten_port = 1", "one line"),
    ] {
        let err = PgBouncer::builder(&cluster)
            .setting(name, value)
            .start()
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidPgBouncerSetting { name: refused, .. } if refused == name),
            "{err:?}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
    let err = PgBouncer::builder(&cluster)
        .pool_size(0)
        .start()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidPgBouncerSetting { .. }),
        "{err:?}"
    );

    let err = PgBouncer::builder(&cluster)
        .setting("no_such_setting", "1")
        .start()
        .unwrap_err();
    let Error::PgBouncerStartFailed {
        reason,
        log_path,
        log_tail,
    } = &err
    else {
        panic!("expected PgBouncerStartFailed, got {err:?}");
    };
    assert_eq!(reason, "pgbouncer exited", "{err}");
    assert!(log_tail.contains("no_such_setting"), "{err}");
    let dir = log_path.parent().unwrap();
    assert!(
        dir.file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("ebb-pgb-")),
        "{}",
        log_path.display()
    );
    assert!(!dir.exists(), "{} still exists", dir.display());

    // No server behind it: PgBouncer runs but relays nothing.
    let mut cluster = cluster;
    cluster.stop_server(ShutdownMode::Fast).unwrap();
    let err = PgBouncer::builder(&cluster)
        .start_timeout(Duration::from_secs(1))
        .start()
        .unwrap_err();
    let Error::PgBouncerStartFailed {
        reason, log_path, ..
    } = &err
    else {
        panic!("expected PgBouncerStartFailed, got {err:?}");
    };
    assert!(reason.starts_with("no query relayed within 1s"), "{err}");
    assert!(reason.contains("SELECT 1"), "{err}");
    let dir = log_path.parent().unwrap();
    assert!(!dir.exists(), "{} still exists", dir.display());
}

/// Not a test of its own, so ignored in normal runs:
/// [`a_killed_process_leaves_nothing_behind`] runs it in a new process. It
/// starts a cluster and a PgBouncer, prints their directories and
/// PgBouncer's pid, and waits to be killed.
#[test]
#[ignore = "the child process of a_killed_process_leaves_nothing_behind"]
fn child_helper() {
    assert!(
        std::env::var_os("EBB_LOCALPG_PGBOUNCER_CHILD").is_some(),
        "run by a_killed_process_leaves_nothing_behind"
    );
    let cluster = Cluster::start().expect("start cluster");
    let bouncer = PgBouncer::builder(&cluster)
        .start()
        .expect("start pgbouncer");
    println!("CLUSTER={}", cluster.socket_dir().display());
    println!("DIR={}", bouncer.dir().display());
    println!("PID={}", bouncer.pid());
    std::io::stdout().flush().unwrap();
    loop {
        // Until the parent's SIGKILL.
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A test process killed with PgBouncer running leaves neither it nor its
/// directory (nor the cluster) behind.
#[test]
fn a_killed_process_leaves_nothing_behind() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EBB_LOCALPG_PGBOUNCER_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut cluster, mut dir, mut pid) = (None, None, None);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The harness may print "test child_helper ... " on the same line.
        if let Some((_, d)) = line.split_once("CLUSTER=") {
            cluster = Some(PathBuf::from(d));
        } else if let Some((_, d)) = line.split_once("DIR=") {
            dir = Some(PathBuf::from(d));
        } else if let Some((_, p)) = line.split_once("PID=") {
            pid = Some(p.parse::<u32>().unwrap());
            break;
        }
    }
    let (cluster, dir, pid) = (
        cluster.expect("child printed the cluster's dir"),
        dir.expect("child printed pgbouncer's dir"),
        pid.expect("child printed pgbouncer's pid"),
    );
    assert!(dir.exists() && alive(pid));
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    let started = Instant::now();
    while (dir.exists() || alive(pid) || cluster.exists())
        && started.elapsed() < Duration::from_secs(20)
    {
        // Polls until the child's cleanup is done.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !dir.exists() && !alive(pid) && !cluster.exists(),
        "after the child's death: dir {} exists: {}, pgbouncer {pid} alive: {}, cluster {} exists: {}",
        dir.display(),
        dir.exists(),
        alive(pid),
        cluster.display(),
        cluster.exists(),
    );
}
