//! Calls on shared, pipelined connections (`pipeline_connections`): they
//! share the connection instead of each borrowing one, a call that times
//! out takes its connection out of the turn and cancels its statement, a
//! call dropped by its caller leaves the others alone, and a connection
//! lost under the calls is replaced, and a call takes a free shared
//! connection before it queues behind a busy one.

use std::time::{Duration, Instant};

use ebb_localpg::TestDatabase;
use ebb_message_store::{
    CategoryQuery, Error, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig,
    StreamName, StreamQuery,
};
use ebb_tests::{connect, database, eventually};
use futures_util::future::join_all;
use serde_json::json;
use tokio::time::timeout;

fn store(db: &TestDatabase, pipeline_connections: usize, call_timeout: Duration) -> PgStore {
    PgStore::new(PgStoreConfig {
        max_connections: 4,
        pipeline_connections,
        call_timeout,
        ..PgStoreConfig::new(db.config())
    })
    .unwrap()
}

async fn write(store: &PgStore, stream: &str, n: i64) -> Result<i64, Error> {
    store
        .write(
            &StreamName::parse(stream).unwrap(),
            &MessageData::new("Numbered", json!({ "n": n })),
            ExpectedVersion::Any,
        )
        .await
}

/// The store's category reads running on the server.
async fn running_reads(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND state = 'active' AND query LIKE '%get_category_messages%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Holds `ACCESS EXCLUSIVE` on the messages table until the transaction
/// ends, so that every read waits on the server.
async fn lock_messages(client: &mut tokio_postgres::Client) -> tokio_postgres::Transaction<'_> {
    let transaction = client.transaction().await.unwrap();
    transaction
        .batch_execute("LOCK TABLE message_store.messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    transaction
}

#[tokio::test]
async fn concurrent_calls_share_the_connection_instead_of_borrowing_one_each() {
    let db = database().await;
    for (pipeline_connections, expected) in [(1, 1..=1), (0, 2..=4)] {
        let store = store(&db, pipeline_connections, Duration::from_secs(30));
        let streams: Vec<String> = (0..40)
            .map(|n| format!("thing{pipeline_connections}-{n}"))
            .collect();
        let writes = join_all((0..40).map(|n| write(&store, &streams[n], n as i64))).await;
        assert!(writes.iter().all(Result::is_ok), "{writes:?}");
        let reads = join_all((0..40).map(|n| {
            let store = &store;
            async move {
                store
                    .get_stream_messages(
                        &format!("thing{pipeline_connections}-{n}"),
                        &StreamQuery::new(),
                    )
                    .await
            }
        }))
        .await;
        for (n, read) in reads.into_iter().enumerate() {
            let read = read.unwrap();
            assert_eq!(read.len(), 1);
            assert_eq!(read[0].data.to_value().unwrap()["n"], json!(n));
        }
        let opened = store.pool().status().size;
        assert!(
            expected.contains(&opened),
            "pipeline_connections {pipeline_connections}: {opened} connections opened"
        );
    }
}

/// A call takes a shared connection with nothing in flight before it
/// queues behind another call: a write held up on the server (its
/// category's lock taken by another session) holds up no write made
/// after it while another shared connection is free. Taking the shared
/// connections in turn instead would put the third write behind the
/// held one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_takes_an_idle_shared_connection_before_queueing_behind_a_busy_one() {
    let db = database().await;
    let store = store(&db, 2, Duration::from_secs(30));
    let mut locker = connect(&db).await;
    let lock = locker.transaction().await.unwrap();
    lock.execute("SELECT message_store.acquire_lock('held-1')", &[])
        .await
        .unwrap();

    let held = tokio::spawn({
        let store = store.clone();
        async move { write(&store, "held-1", 1).await }
    });
    let observer = connect(&db).await;
    eventually("the held write waits for the category's lock", async || {
        observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE '%write_message%'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    })
    .await;
    // One after the other, each on a free shared connection, while the
    // held write keeps its own busy.
    for n in 0..4 {
        timeout(
            Duration::from_secs(10),
            write(&store, &format!("free-{n}"), n),
        )
        .await
        .unwrap_or_else(|_| panic!("write {n} waited behind the held write"))
        .unwrap();
    }
    assert!(!held.is_finished());

    lock.rollback().await.unwrap();
    assert_eq!(held.await.unwrap().unwrap(), 0);
}

/// Calls queued for a shared connection the pool cannot give wait no
/// longer than the pool's wait, each: when every pooled connection is
/// held elsewhere, ten calls made at once all fail with the pool's
/// timeout within about one `wait_timeout`, not one after another (ten
/// of them, 5 s), as they did while the wait for the slot was unbounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_queued_for_a_shared_connection_wait_no_longer_than_the_pools_wait() {
    let db = database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 2,
        pipeline_connections: 1,
        wait_timeout: Duration::from_millis(500),
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();
    // Every pooled connection is held elsewhere.
    let _held = (store.client().await.unwrap(), store.client().await.unwrap());

    let started = Instant::now();
    let writes = join_all((0..10).map(|n| write(&store, "queued-1", n))).await;
    let took = started.elapsed();
    for result in &writes {
        let err = result.as_ref().unwrap_err();
        assert!(
            matches!(err, Error::Pool(deadpool_postgres::PoolError::Timeout(_))),
            "{err:?}"
        );
        assert!(err.is_transient());
    }
    // One wait for the slot and one for the pool at most (1 s), with room
    // for a loaded machine; queued one behind the other they took 5 s.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_cancels_its_statement_and_retires_its_connection() {
    let db = database().await;
    let store = store(&db, 1, Duration::from_millis(500));
    write(&store, "thing-1", 1).await.unwrap();
    let observer = connect(&db).await;
    let mut locker = connect(&db).await;
    let lock = lock_messages(&mut locker).await;

    let err = store
        .get_category_messages("thing", &CategoryQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    // Cancelled on the server while the lock is still held.
    eventually("the timed-out read is cancelled", async || {
        running_reads(&observer).await == 0
    })
    .await;
    // And closed, not given back to the pool.
    eventually("the retired connection is closed", async || {
        store.pool().status().size == 0
    })
    .await;

    lock.rollback().await.unwrap();
    let read = store
        .get_category_messages("thing", &CategoryQuery::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(store.pool().status().size, 1, "a fresh shared connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_by_its_caller_leaves_the_calls_behind_it_alone() {
    let db = database().await;
    let store = store(&db, 1, Duration::from_secs(30));
    for n in 1..=3 {
        write(&store, &format!("thing-{n}"), n).await.unwrap();
    }
    let observer = connect(&db).await;
    let mut locker = connect(&db).await;
    let lock = lock_messages(&mut locker).await;

    // Both go out on the one connection; the first waits for the lock on
    // the server, the second behind it.
    let query = CategoryQuery::new();
    let first = store.get_category_messages("thing", &query);
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .get_category_messages("thing", &CategoryQuery::new().position(2))
                .await
        }
    });
    assert!(
        timeout(Duration::from_millis(300), first).await.is_err(),
        "the read waits for the lock"
    );
    eventually("a read waits on the server", async || {
        running_reads(&observer).await == 1
    })
    .await;
    lock.rollback().await.unwrap();

    let second = second.await.unwrap().unwrap();
    assert_eq!(
        second.iter().map(|m| m.global_position).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(store.pool().status().size, 1, "the same connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_under_the_calls_is_replaced() {
    let db = database().await;
    let store = store(&db, 1, Duration::from_secs(30));
    write(&store, "thing-1", 1).await.unwrap();
    let observer = connect(&db).await;
    let terminated: i64 = observer
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(terminated, 1, "the store's one connection");

    // The call that finds the connection gone fails as a transient error
    // at most once; the next one runs on a new connection.
    let mut failures = 0;
    let position = loop {
        match write(&store, "thing-1", 2).await {
            Ok(position) => break position,
            Err(err) => {
                assert!(err.is_transient(), "{err:?}");
                failures += 1;
                assert!(failures < 2, "failed again on a fresh connection: {err:?}");
            }
        }
    };
    assert_eq!(position, 1);
}
