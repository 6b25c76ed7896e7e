//! Calls that do not finish: a read or a call dropped while its statement
//! runs, a call past its timeout, and a server that stops answering. None
//! may leave a statement running on a pooled connection, and none may wait
//! longer than the store's bounds.

use std::time::{Duration, Instant};

use ebb_message_store::{
    CategoryQuery, Error, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig,
    StreamName,
};
use ebb_tests::private::{Frozen, Listen, cluster_with_schema};
use ebb_tests::{connect, database, store_for};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::json;
use tokio::time::timeout;

async fn write(store: &PgStore, stream: &str, n: i64) {
    store
        .write(
            &StreamName::parse(stream).unwrap(),
            &MessageData::new("Numbered", json!({ "n": n })),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
}

/// The store's reads running on the server (the one asking excepted), and
/// how many of them wait for a lock. The client must not be in a
/// transaction: the activity view is read once per transaction.
async fn reads(client: &tokio_postgres::Client) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock')
             FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND state = 'active' AND query LIKE '%get_category_messages%'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn running_reads(client: &tokio_postgres::Client) -> i64 {
    reads(client).await.0
}

/// Waits until no read runs on the server and the pool has every
/// connection it holds free, with at least one held: the connection came
/// back rather than being closed. Panics after ten seconds.
async fn wait_until_idle_and_back(store: &PgStore, observer: &tokio_postgres::Client) {
    let started = Instant::now();
    loop {
        let running = running_reads(observer).await;
        let status = store.pool().status();
        if running == 0 && status.size >= 1 && status.available == status.size {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "after 10 s: {running} reads still running, pool {status:?}"
        );
        // Polls the server and the pool until both are idle.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Holds `ACCESS EXCLUSIVE` on the messages table, so that every read of
/// the store waits on the server, until the transaction ends.
async fn lock_messages(client: &mut tokio_postgres::Client) -> tokio_postgres::Transaction<'_> {
    let transaction = client.transaction().await.unwrap();
    transaction
        .batch_execute("LOCK TABLE message_store.messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    transaction
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_dropped_mid_fetch_cancels_it_and_gives_the_connection_back() {
    let db = database().await;
    // One connection: the one the fetch ahead runs on must come back.
    let store = store_for(&db, 1);
    for n in 1..=6 {
        write(&store, &format!("thing-{n}"), n).await;
    }
    let mut read = store.read_category("thing", CategoryQuery::new().batch_size(1));
    assert!(read.try_next().await.unwrap().is_some());

    let observer = connect(&db).await;
    let mut locker = connect(&db).await;
    let lock = lock_messages(&mut locker).await;
    // Batches fetched before the lock come through; the first fetch after
    // it waits for the lock, on the server.
    let started = Instant::now();
    let mut taken = 1;
    while reads(&observer).await.1 == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no fetch waited for the lock"
        );
        if let Ok(next) = timeout(Duration::from_millis(50), read.try_next()).await {
            assert!(next.unwrap().is_some(), "6 messages, batches of 1");
            taken += 1;
            assert!(taken < 6, "the last fetch should have waited for the lock");
        }
    }
    assert_eq!(reads(&observer).await, (1, 1), "the fetch ahead waits");

    drop(read);
    wait_until_idle_and_back(&store, &observer).await;
    lock.rollback().await.unwrap();

    // The connection that came back serves the next call.
    let all: Vec<_> = store
        .read_category("thing", CategoryQuery::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_or_timed_out_mid_statement_cancels_it() {
    let db = database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 1,
        call_timeout: Duration::from_millis(500),
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();
    write(&store, "thing-1", 1).await;
    let observer = connect(&db).await;
    let mut locker = connect(&db).await;
    let lock = lock_messages(&mut locker).await;

    // Dropped by its caller.
    let dropped = timeout(
        Duration::from_millis(200),
        store.get_category_messages("thing", &CategoryQuery::new()),
    )
    .await;
    assert!(dropped.is_err(), "the read waits for the lock");
    wait_until_idle_and_back(&store, &observer).await;

    // Past the call timeout: the store's, not the default.
    let started = Instant::now();
    let err = store
        .get_category_messages("thing", &CategoryQuery::new())
        .await
        .unwrap_err();
    let Error::Timeout { operation, after } = &err else {
        panic!("a timeout, not {err:?}");
    };
    assert_eq!(*operation, "get_category_messages");
    assert_eq!(*after, Duration::from_millis(500));
    assert!(err.is_transient());
    assert!(started.elapsed() < PROMPTLY, "{:?}", started.elapsed());
    wait_until_idle_and_back(&store, &observer).await;

    lock.rollback().await.unwrap();
    // The pool's one connection is fine.
    let read = store
        .get_category_messages("thing", &CategoryQuery::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
}

/// Reads dropped mid-fetch, again and again, on the connections the next
/// reads use: the cancel request each one sends must stop only the
/// statement it was meant for, never a later one on the same connection.
async fn cancelled_fetches_never_cancel_the_next_call_on_their_connection(store: PgStore) {
    for stream in ["thing-1", "thing-2"] {
        let batch: Vec<_> = (0..500)
            .map(|n| MessageData::new("Numbered", json!({ "n": n })))
            .collect();
        store
            .write_batch(
                &StreamName::parse(stream).unwrap(),
                &batch,
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    for round in 0..300_usize {
        let mut read = store.read_category("thing", CategoryQuery::new().batch_size(50));
        // Stop after a few messages, while the fetch ahead may be in
        // flight, finishing, or done.
        for _ in 0..(round % 3 + 1) {
            read.try_next()
                .await
                .unwrap_or_else(|err| panic!("round {round}: {err:?}"))
                .expect("a message");
        }
        drop(read);
        let version = store
            .stream_version("thing-1")
            .await
            .unwrap_or_else(|err| panic!("round {round}: {err:?}"));
        assert_eq!(version, Some(499));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_fetch_never_cancels_the_next_call_over_the_socket() {
    let db = database().await;
    cancelled_fetches_never_cancel_the_next_call_on_their_connection(store_for(&db, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_fetch_never_cancels_the_next_call_over_tcp() {
    let (config, _db) = ebb_tests::tcp_database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 2,
        ..PgStoreConfig::new(config)
    })
    .unwrap();
    cancelled_fetches_never_cancel_the_next_call_on_their_connection(store).await;
}

/// A store whose every bound is one second.
fn impatient(config: tokio_postgres::Config) -> PgStore {
    let second = Duration::from_secs(1);
    PgStore::new(PgStoreConfig {
        max_connections: 2,
        wait_timeout: second,
        connect_timeout: second,
        recycle_timeout: second,
        call_timeout: second,
        ..PgStoreConfig::new(config)
    })
    .unwrap()
}

/// Well beyond a one-second bound, and well below forever.
const PROMPTLY: Duration = Duration::from_secs(8);

/// A frozen server: calls on an established connection, new connections
/// and dedicated connections each fail within their bound as transient;
/// once the server runs again so do the calls, and the write whose outcome
/// was unknown is stored at most once.
async fn a_frozen_server_is_a_transient_error_within_the_bounds(listen: Listen) {
    let (cluster, config) = cluster_with_schema(listen).await;
    let store = impatient(config.clone());
    let stream = StreamName::new("account", "1").unwrap();
    store
        .write(
            &stream,
            &MessageData::new("Opened", json!({})),
            ExpectedVersion::NoStream,
        )
        .await
        .unwrap();

    let frozen = Frozen::freeze(&cluster);
    let deposited = MessageData::new("Deposited", json!({ "amount": 5 }));
    let started = Instant::now();
    let err = store
        .write(&stream, &deposited, ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(started.elapsed() < PROMPTLY, "{:?}", started.elapsed());
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());

    // No new connection can be opened either.
    let fresh = impatient(config.clone());
    let started = Instant::now();
    let err = fresh.stream_version(stream.as_str()).await.unwrap_err();
    assert!(started.elapsed() < PROMPTLY, "{:?}", started.elapsed());
    assert!(matches!(err, Error::Pool(_)), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    let started = Instant::now();
    let Err(err) = store.connect_dedicated().await else {
        panic!("a dedicated connection to a frozen server");
    };
    assert!(started.elapsed() < PROMPTLY, "{:?}", started.elapsed());
    assert!(err.is_transient(), "{err:?}");

    frozen.thaw();
    let started = Instant::now();
    let outcome = loop {
        match store.write(&stream, &deposited, ExpectedVersion::Any).await {
            Err(err) if err.is_transient() && started.elapsed() < PROMPTLY => {
                // A retry loop: the write is tried again while the server wakes up.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            outcome => break outcome,
        }
    };
    match outcome {
        Ok(_) => {}
        Err(err) if err.is_duplicate_message_id() => {}
        Err(err) => panic!("after the thaw: {err:?}"),
    }
    let messages: Vec<_> = store
        .read_stream(stream.as_str(), Default::default())
        .map(Result::unwrap)
        .collect()
        .await;
    let deposits = messages.iter().filter(|m| m.id == deposited.id).count();
    assert_eq!(deposits, 1, "{messages:?}");
    assert_eq!(messages.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_over_its_socket() {
    a_frozen_server_is_a_transient_error_within_the_bounds(Listen::Socket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_over_tcp() {
    a_frozen_server_is_a_transient_error_within_the_bounds(Listen::Tcp).await;
}

/// A dedicated connection has the store's settings (its search path among
/// them) and delivers notifications.
#[tokio::test]
async fn a_dedicated_connection_listens() {
    let db = database().await;
    let store = store_for(&db, 1);
    let (client, mut connection) = store.connect_dedicated().await.unwrap();
    let (notifications, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(note) = message {
                let _ = notifications.send(note.payload().to_owned());
            }
        }
    });
    let search_path: String = client
        .query_one("SHOW search_path", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(search_path, "message_store,public");
    client.batch_execute("LISTEN ebb_test").await.unwrap();
    store
        .client()
        .await
        .unwrap()
        .batch_execute("NOTIFY ebb_test, 'hello'")
        .await
        .unwrap();
    let payload = timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the notification arrives");
    assert_eq!(payload.as_deref(), Some("hello"));
}
