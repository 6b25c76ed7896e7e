//! Shared pieces of ebb's cross-crate tests: a fresh database with the
//! schema for each test, and the store contract suite that runs against
//! both stores.
//!
//! Every database comes from `ebb_localpg::TestDatabases::shared()`: on
//! the server in `DATABASE_URL` when it is set, else on a private cluster
//! started once per test binary, which listens on a Unix socket only.
//! [`tcp_test_databases`] is a second harness whose cluster also listens
//! on a loopback TCP port, so that both of the store's ways to open a
//! connection are tested. Tests that stop or freeze their server have one
//! of their own ([`private`]). Tests that wait for what a store's user
//! did (an arming, a wake-up, a read caught up) watch it through
//! [`observed::Observed`]. Tests that look at a page as a person would
//! drive headless Chromium through [`browser::Browser`]. The benches that
//! time what operators look at share a store of millions of messages
//! ([`large_store`]).

pub mod browser;
pub mod contract;
pub mod large_store;
pub mod message_db;
pub mod observed;
pub mod private;
pub mod seed;

use ebb_localpg::{TestDatabase, TestDatabases};
use ebb_message_store::{MessageStore as _, PgStore, PgStoreConfig, schema};

/// The shared test databases harness, or a panic that says why there is
/// none.
pub fn test_databases() -> &'static TestDatabases {
    match TestDatabases::shared() {
        Ok(databases) => databases,
        Err(err) => panic!("no PostgreSQL server for the tests: {err}"),
    }
}

/// The template's name changes whenever the schema does, so a long-lived
/// server (DATABASE_URL) never hands out a stale schema.
fn template_name() -> String {
    let hash = ebb_message_store::hash_64(&schema::install_script());
    format!("ebb_schema_{:016x}", hash as u64)
}

/// A fresh database with ebb's schema installed.
pub async fn database() -> TestDatabase {
    database_on(test_databases()).await
}

/// A fresh database with ebb's schema installed from `databases`.
pub async fn database_on(databases: &TestDatabases) -> TestDatabase {
    databases
        .fresh_database(&template_name(), |config| async move {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            schema::install(&client).await?;
            Ok(())
        })
        .await
        .expect("a fresh test database")
}

/// Where the TCP-side tests get their databases: on the server in
/// `DATABASE_URL` when it is set, else on a private cluster listening on
/// 127.0.0.1, started once per test binary.
pub fn tcp_test_databases() -> &'static TestDatabases {
    static TCP: std::sync::OnceLock<TestDatabases> = std::sync::OnceLock::new();
    TCP.get_or_init(|| {
        if database_url_is_set() {
            return TestDatabases::from_env().expect("DATABASE_URL's server");
        }
        TestDatabases::from_cluster(private::start_cluster(private::Listen::Tcp))
    })
}

/// Whether the tests run on `DATABASE_URL`'s server (set and not empty,
/// as `ebb_localpg` reads it) rather than on private clusters.
pub fn database_url_is_set() -> bool {
    std::env::var("DATABASE_URL").is_ok_and(|url| !url.trim().is_empty())
}

/// Checks that `store`'s connections go over TCP when its settings name a
/// TCP host and over a Unix socket otherwise, as the server sees them;
/// returns whether they are TCP.
pub async fn assert_transport_as_configured(store: &PgStore) -> bool {
    let over_tcp = matches!(
        store.config().connection.get_hosts(),
        [tokio_postgres::config::Host::Tcp(_), ..]
    );
    let client = store.client().await.expect("a pooled connection");
    let peer: Option<String> = client
        .query_one("SELECT host(inet_client_addr())", &[])
        .await
        .expect("the client's address")
        .get(0);
    assert_eq!(peer.is_some(), over_tcp, "peer address {peer:?}");
    over_tcp
}

/// A fresh database with ebb's schema from [`tcp_test_databases`], and
/// connection settings for it over TCP (when the server is a private
/// cluster).
pub async fn tcp_database() -> (tokio_postgres::Config, TestDatabase) {
    let databases = tcp_test_databases();
    let db = database_on(databases).await;
    let config = match databases.cluster() {
        Some(cluster) => private::tcp_config(cluster, db.name()),
        None => db.config(),
    };
    (config, db)
}

/// A store over TCP on a fresh database.
pub async fn pg_store_over_tcp() -> (PgStore, TestDatabase) {
    let (config, db) = tcp_database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        ..PgStoreConfig::new(config)
    })
    .expect("a store");
    (store, db)
}

/// A store whose calls share one pipelined connection (see
/// `PgStoreConfig::pipeline_connections`), over a fresh database.
pub async fn pg_store_pipelined() -> (PgStore, TestDatabase) {
    let db = database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        pipeline_connections: 1,
        ..PgStoreConfig::new(db.config())
    })
    .expect("a store");
    (store, db)
}

/// A fresh empty database (no schema).
pub async fn empty_database() -> TestDatabase {
    test_databases()
        .fresh_database("ebb_empty", |_| async { Ok(()) })
        .await
        .expect("a fresh empty database")
}

/// A store over a fresh database; keep the database alive as long as the
/// store is used.
pub async fn pg_store() -> (PgStore, TestDatabase) {
    let db = database().await;
    let store = store_for(&db, 4);
    (store, db)
}

/// A store of at most `max_connections` connections to `db`, with the
/// default settings otherwise.
pub fn store_for(db: &TestDatabase, max_connections: usize) -> PgStore {
    PgStore::new(PgStoreConfig {
        max_connections,
        ..PgStoreConfig::new(db.config())
    })
    .expect("a store")
}

/// Writes `message` to `stream` (any version) and reads it back as the
/// store keeps it, with its positions and time.
pub async fn write_and_read_back(
    store: &PgStore,
    stream: &str,
    message: &ebb_message_store::MessageData,
) -> ebb_message_store::Message {
    let name = ebb_message_store::StreamName::parse(stream).expect("a valid stream name");
    store
        .write(&name, message, ebb_message_store::ExpectedVersion::Any)
        .await
        .expect("the message is written");
    store
        .get_last_stream_message(stream, None)
        .await
        .expect("the stream is read")
        .expect("the message just written")
}

/// Reads `category` from its first message on, in batches of 50, each from
/// the position after the last message read, while writers are still
/// writing, until `total` messages are read: a reader racing the writers,
/// as a consumer reads. Fails on a message read twice or out of order,
/// and when no new message comes for 60 s. Returns the ids read.
pub async fn read_racing_writers(
    store: &PgStore,
    category: &str,
    total: usize,
) -> std::collections::HashSet<uuid::Uuid> {
    let mut seen = std::collections::HashSet::new();
    let mut next = 1;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reader stalled at {}",
            seen.len()
        );
        let batch = store
            .get_category_messages(
                category,
                &ebb_message_store::CategoryQuery::new()
                    .position(next)
                    .batch_size(50),
            )
            .await
            .expect("the category is read");
        for message in &batch {
            assert!(message.global_position >= next);
            assert!(
                seen.insert(message.id),
                "read twice: {}",
                message.global_position
            );
            next = message.global_position + 1;
        }
        if batch.is_empty() {
            // Lets the writers' tasks run before reading again.
            tokio::task::yield_now().await;
        }
    }
    seen
}

/// Polls `check` every 20 ms until it holds; fails, saying `what` was
/// awaited, when it has not within 30 s. For states only a query shows
/// (`pg_stat_activity`, a pool's size), which nothing notifies.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "after 30 s: {what}"
        );
        // Polls `check` until it holds.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A plain client on a test database.
pub async fn connect(db: &TestDatabase) -> tokio_postgres::Client {
    connect_to(&db.config())
        .await
        .expect("a connection to the test database")
}

/// A plain client on `config`'s database, its connection driven by a task
/// on the calling runtime (the benchmarks' connection to their clusters).
pub async fn connect_to(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The number of rows in message_store.messages.
pub async fn count_messages(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM message_store.messages", &[])
        .await
        .expect("count")
        .get(0)
}

/// How many functions in the `message_store` schema share a name with
/// another (an install that left an old signature behind).
pub async fn function_overloads(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) - count(DISTINCT proname) FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'message_store'",
            &[],
        )
        .await
        .expect("count overloads")
        .get(0)
}

/// How many installs ebb has recorded in the database.
pub async fn install_records(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM message_store.ebb_schema_versions",
            &[],
        )
        .await
        .expect("count install records")
        .get(0)
}

/// Terminates the store's listening connection(s) (by their
/// `application_name`) in `client`'s database; returns how many.
pub async fn terminate_listeners(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "WITH listening AS MATERIALIZED (
                 SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = $1)
             SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM listening",
            &[&ebb_message_store::pg::LISTENER_APPLICATION_NAME],
        )
        .await
        .expect("pg_stat_activity answers")
        .get(0)
}

/// Runs `consumer` until `done` says so (asked every 5 ms), then stops it
/// and gives back how its run ended; panics if it has not ended within a
/// minute.
pub async fn run_until<S, E>(
    consumer: &ebb_consumer::Consumer<S, E>,
    done: impl Fn() -> bool + Send + 'static,
) -> Result<(), ebb_consumer::Error>
where
    S: ebb_message_store::MessageStore,
    E: Into<ebb_handler::BoxError> + From<ebb_handler::Error> + Send + 'static,
{
    let control = ebb_consumer::Control::new();
    let stopper = tokio::spawn({
        let control = control.clone();
        async move {
            while !done() {
                // Polls `done` until it holds.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            control.stop();
        }
    });
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), consumer.run(&control))
        .await
        .expect("the consumer finishes within a minute");
    stopper.abort();
    result
}
