//! The `ebb` binary, run as a user runs it.

use std::process::{Command, Output};

fn ebb(args: &[&str], database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("EBB_LOG")
        .output()
        .expect("the ebb binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn server() -> &'static ebb_localpg::TestDatabases {
    ebb_localpg::TestDatabases::shared().expect("a PostgreSQL server for the tests")
}

/// Runs one statement on the server's `postgres` database.
fn admin(statement: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = server().connect("postgres").await.unwrap();
        client
            .batch_execute(statement)
            .await
            .unwrap_or_else(|err| panic!("{statement}: {err}"));
    });
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

#[test]
fn install_creates_the_database_and_version_reports_it() {
    let name = unique_name("ebb_cli");
    let url = server().connection_string(&name);

    let out = ebb(&["db", "version"], &url);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");

    let out = ebb(&["db", "install", "--create"], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("created database {name}")),
        "{stdout}"
    );
    assert!(stdout.contains("Message DB 1.3.0 interface"), "{stdout}");

    // Again: idempotent, and the database is not created twice.
    let out = ebb(&["db", "install", "--create"], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("created database"));

    let out = ebb(&["db", "version"], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "message_db 1.3.0\nebb_schema {}\n",
            ebb_message_store::schema::EBB_SCHEMA_VERSION
        )
    );
}

#[test]
fn version_of_a_database_without_a_store_says_so() {
    let other = unique_name("ebb_cli_none");
    admin(&format!("CREATE DATABASE {other}"));
    let out = ebb(&["db", "version"], &server().connection_string(&other));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("ebb: no message store in "), "{err}");
    assert!(err.contains("run `ebb db install`"), "{err}");
}

#[test]
fn an_unreachable_server_is_one_line_a_failure_and_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "host={} port=5432 user=postgres password=hunter2 dbname=x",
        dir.path().display()
    );
    for args in [&["db", "install"][..], &["db", "version"][..]] {
        let out = ebb(args, &url);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("ebb: cannot connect to PostgreSQL at host="),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!err.contains("hunter2"), "the password is shown: {err}");
        let socket = dir.path().join(".s.PGSQL.5432");
        assert!(
            err.contains(&format!("could not connect to {}: ", socket.display())),
            "the socket tried, and why: {err}"
        );
    }
}

#[test]
fn every_host_of_a_list_is_named_with_its_cause() {
    let closed = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (a, b) = (closed(), closed());
    let url = format!("postgres://postgres@127.0.0.1:{a},127.0.0.1:{b}/x?connect_timeout=2");
    let out = ebb(&["db", "version"], &url);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("could not connect to any of 2 hosts"), "{err}");
    for port in [a, b] {
        assert!(
            err.contains(&format!("127.0.0.1:{port}: Connection refused")),
            "{err}"
        );
    }
}

#[test]
fn a_malformed_database_url_is_reported() {
    let out = ebb(&["db", "version"], "postgres://user@host:notaport/db");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("ebb: cannot use the connection settings: "),
        "{err}"
    );
    assert_eq!(
        err.matches("DATABASE_URL is not a PostgreSQL connection string")
            .count(),
        1,
        "the cause once: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn insufficient_privilege_is_reported() {
    let name = unique_name("ebb_cli_priv");
    admin(&format!("CREATE DATABASE {name}"));
    admin(
        "DO $$ BEGIN CREATE ROLE ebb_cli_nobody LOGIN; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let mut config = server().config(&name);
    config.user("ebb_cli_nobody");
    let url = ebb_localpg::conninfo::connection_string(&config);
    let out = ebb(&["db", "install"], &url);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// What every successful demo prints: the kill and restart, the table,
/// and the verification.
fn assert_demo_passed(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for expected in [
        "started two account-component instances",
        "killed green with SIGKILL",
        "started green again",
        "stopped both instances with SIGTERM: blue exit status: 0, green exit status: 0",
        "all 400 commands handled in",
        "commands written          400",
        "restarts                  1 (1 SIGKILL at",
        "verification              PASS: every balance equals its applied commands (",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    // Every command sent twice on purpose is ignored the second time.
    let resent = stdout
        .split(" of them sent twice on purpose")
        .next()
        .and_then(|before| before.rsplit('(').next())
        .expect("the count of re-sends");
    assert!(
        stdout.contains(&format!("re-sends ignored          {resent} ")),
        "{resent}: {stdout}"
    );
    stdout
}

#[test]
fn the_demo_runs_on_a_private_cluster() {
    let out = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["demo", "--commands", "400", "--accounts", "40"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("the ebb binary runs");
    let stdout = assert_demo_passed(&out);
    assert!(
        stdout.contains("starting a private PostgreSQL cluster"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).is_empty(),
        "nothing on stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn the_demo_runs_twice_on_a_database_of_ones_own() {
    let name = unique_name("ebb_demo");
    admin(&format!("CREATE DATABASE {name}"));
    let url = server().connection_string(&name);
    for _ in 0..2 {
        let out = ebb(&["demo", "--commands", "400", "--accounts", "40"], &url);
        let stdout = assert_demo_passed(&out);
        assert!(
            stdout.contains("using the database in DATABASE_URL"),
            "{stdout}"
        );
    }
}

/// Behind a transaction-pooling PgBouncer, as a component there is run:
/// prepared statements off, wake-ups on a direct connection (the demo's
/// instances inherit its environment).
#[test]
fn the_demo_runs_through_a_transaction_pooling_pgbouncer() {
    let cluster = ebb_localpg::Cluster::start().expect("a private cluster");
    let bouncer = ebb_localpg::PgBouncer::builder(&cluster)
        .pool_mode(ebb_localpg::PoolMode::Transaction)
        .pool_size(8)
        .start()
        .expect("a PgBouncer");
    let out = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["demo", "--commands", "400", "--accounts", "40"])
        .env("DATABASE_URL", bouncer.connection_string("postgres"))
        .env("EBB_PREPARED_STATEMENTS", "off")
        .env(
            "EBB_LISTEN_DATABASE_URL",
            cluster.connection_string("postgres"),
        )
        .env_remove("EBB_LOG")
        .output()
        .expect("the ebb binary runs");
    let stdout = assert_demo_passed(&out);
    assert!(
        stdout.contains("using the database in DATABASE_URL"),
        "{stdout}"
    );
}

#[test]
fn the_demo_refuses_a_size_of_zero() {
    let out = ebb(&["demo", "--accounts", "0"], "host=/nonexistent");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--accounts"),
        "{}",
        text(&out.stderr)
    );
}
