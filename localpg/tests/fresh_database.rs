//! One database per test, cloned from a template filled once.

use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_localpg::{Cluster, Error, TestDatabases};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

type SetupResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn client(config: tokio_postgres::Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// A setup that creates a table with one row and counts its calls.
async fn fill(config: tokio_postgres::Config, calls: &AtomicUsize) -> SetupResult {
    calls.fetch_add(1, Ordering::SeqCst);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('from template');")
        .await?;
    Ok(())
}

async fn values(client: &Client) -> Vec<String> {
    client
        .query("SELECT v FROM t ORDER BY v", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn databases_are_isolated_and_start_from_the_template() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let databases = TestDatabases::shared().expect("test databases");
    let a = databases
        .fresh_database("localpg_isolated_v1", |c| async { fill(c, &CALLS).await })
        .await
        .expect("first database");
    let b = databases
        .fresh_database("localpg_isolated_v1", |c| async { fill(c, &CALLS).await })
        .await
        .expect("second database");
    assert_ne!(a.name(), b.name());
    assert!(a.name().starts_with("ebb_test_"), "{}", a.name());

    let client_a = databases.connect(a.name()).await.unwrap();
    let client_b = client(b.config()).await;
    client_a
        .execute("INSERT INTO t VALUES ('only in a')", &[])
        .await
        .unwrap();
    assert_eq!(values(&client_a).await, ["from template", "only in a"]);
    assert_eq!(values(&client_b).await, ["from template"]);

    // The connection string names the same database.
    let via_string = client(b.connection_string().parse().unwrap()).await;
    let name: String = via_string
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, b.name());
    assert_at_most_once(&CALLS);
}

/// Setup ran at most once: not at all when a server from `DATABASE_URL`
/// already has the template from an earlier run.
fn assert_at_most_once(calls: &AtomicUsize) {
    let calls = calls.load(Ordering::SeqCst);
    if std::env::var_os("DATABASE_URL").is_some() {
        assert!(calls <= 1, "setup ran {calls} times");
    } else {
        assert_eq!(calls, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tests_fill_the_template_once() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let databases = TestDatabases::shared().expect("test databases");
    let make = || databases.fresh_database("localpg_once_v1", |c| async { fill(c, &CALLS).await });
    let (a, b, c) = tokio::join!(make(), make(), make());
    for db in [a.unwrap(), b.unwrap(), c.unwrap()] {
        assert_eq!(
            values(&databases.connect(db.name()).await.unwrap()).await,
            ["from template"]
        );
    }
    assert_at_most_once(&CALLS);
}

/// Two `TestDatabases` on one cluster stand for two test processes sharing a
/// `DATABASE_URL` server: the advisory lock and the existence check keep the
/// template from being built twice, and their test databases are dropped
/// afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_server_fill_the_template_once_and_drop_their_databases() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let cluster = Cluster::start().expect("cluster");
    let one = TestDatabases::from_config(cluster.config("postgres"));
    let two = TestDatabases::from_config(cluster.config("ignored"));
    assert!(one.cluster().is_none());
    let (a, b) = tokio::join!(
        one.fresh_database("localpg_shared_v1", |c| async { fill(c, &CALLS).await }),
        two.fresh_database("localpg_shared_v1", |c| async { fill(c, &CALLS).await }),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(
        values(&one.connect(b.name()).await.unwrap()).await,
        ["from template"]
    );

    let admin = one.connect("postgres").await.unwrap();
    let is_template: bool = admin
        .query_one(
            "SELECT datistemplate FROM pg_database WHERE datname = 'localpg_shared_v1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(is_template);
    let names = [a.name().to_owned(), b.name().to_owned()];
    // Dropping blocks briefly on its own thread; keep it off this runtime's
    // workers for good measure.
    tokio::task::spawn_blocking(move || drop((a, b)))
        .await
        .unwrap();
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = ANY($1)",
            &[&names.to_vec()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "test databases on an external server are dropped");
}

#[tokio::test]
async fn a_failed_setup_is_reported_and_tried_again() {
    // A cluster of its own: on a shared server the template could already
    // exist from an earlier run, and setup would not be called.
    let databases = TestDatabases::from_cluster(Cluster::start().expect("cluster"));
    let err = databases
        .fresh_database("localpg_flaky_v1", |_| async {
            Err("no schema today".into())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TemplateSetup { .. }), "{err:?}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(source, "no schema today");

    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let db = databases
        .fresh_database("localpg_flaky_v1", |c| async { fill(c, &CALLS).await })
        .await
        .expect("second try");
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(
        values(&databases.connect(db.name()).await.unwrap()).await,
        ["from template"]
    );
}

#[tokio::test]
async fn bad_template_names_are_refused() {
    let databases = TestDatabases::shared().expect("test databases");
    let err = databases
        .fresh_database(&"x".repeat(60), |_| async { Ok(()) })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
}

#[test]
fn the_shared_harness_is_one_per_process() {
    let a = TestDatabases::shared().expect("test databases");
    let b = TestDatabases::shared().expect("test databases");
    assert!(std::ptr::eq(a, b));
    let named: tokio_postgres::Config = a.connection_string("x").parse().unwrap();
    assert_eq!(named.get_dbname(), Some("x"));
    let uses_database_url = std::env::var("DATABASE_URL").is_ok_and(|url| !url.trim().is_empty());
    match a.cluster() {
        Some(cluster) => {
            assert!(!uses_database_url, "a private cluster despite DATABASE_URL");
            assert_eq!(
                named.get_hosts(),
                [Host::Unix(cluster.socket_dir().to_path_buf())]
            );
        }
        None => assert!(uses_database_url, "no private cluster without DATABASE_URL"),
    }
}
