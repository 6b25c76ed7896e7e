//! The store and a consumer behind a transaction-pooling PgBouncer (two
//! server connections shared by every client connection): with prepared
//! statements off, every call works, and a consumer records its position,
//! a failure and a parked message through it; wake-ups listen on a direct
//! connection, or are off (readers poll) when none is given.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_localpg::{Cluster, PgBouncer, PoolMode};
use ebb_message_store::pg::{ListenConnection, TlsSettings};
use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig, StreamName,
    StreamQuery,
};
use ebb_tests::private::{Listen, cluster_with_schema};

#[message]
struct Noted {
    n: i64,
}

/// A cluster with the schema and a transaction-pooling PgBouncer in front
/// of it, with two server connections.
async fn behind_pgbouncer() -> (Cluster, PgBouncer, tokio_postgres::Config) {
    let (cluster, direct) = cluster_with_schema(Listen::Socket).await;
    let builder = PgBouncer::builder(&cluster)
        .pool_mode(PoolMode::Transaction)
        .pool_size(2);
    let bouncer = tokio::task::spawn_blocking(move || builder.start())
        .await
        .unwrap()
        .expect("a PgBouncer");
    (cluster, bouncer, direct)
}

/// A store through `bouncer` with prepared statements off, listening on
/// `listen` when given.
fn store(bouncer: &PgBouncer, listen: Option<&tokio_postgres::Config>) -> PgStore {
    PgStore::new(PgStoreConfig {
        max_connections: 4,
        prepared_statements: false,
        listen: listen.map(|connection| ListenConnection {
            connection: connection.clone(),
            tls: TlsSettings::default(),
        }),
        ..PgStoreConfig::new(bouncer.config("postgres"))
    })
    .expect("a store")
}

fn noted(n: i64) -> MessageData {
    MessageData::new("Noted", serde_json::json!({ "n": n }))
}

/// Every call of the store, from several tasks at once so that client
/// connections take turns on the two server connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_the_store_works_through_transaction_pooling() {
    let (_cluster, bouncer, _) = behind_pgbouncer().await;
    let store = store(&bouncer, None);
    let writers = (0..4).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            let stream = StreamName::new("note", &writer.to_string()).unwrap();
            for n in 0..25 {
                store
                    .write(
                        &stream,
                        &noted(n),
                        ExpectedVersion::from_version((n > 0).then_some(n - 1)),
                    )
                    .await
                    .expect("a write through the bouncer");
            }
            let batch = [noted(25), noted(26)];
            store
                .write_batch(&stream, &batch, ExpectedVersion::Exact(24))
                .await
                .expect("a batch through the bouncer");
            let read = store
                .get_stream_messages(stream.as_str(), &StreamQuery::new().batch_size(-1))
                .await
                .unwrap();
            assert_eq!(read.len(), 27);
            assert_eq!(
                store.stream_version(stream.as_str()).await.unwrap(),
                Some(26)
            );
            let last = store
                .get_last_stream_message(stream.as_str(), None)
                .await
                .unwrap()
                .expect("a last message");
            assert_eq!(last.position, 26);
        })
    });
    for writer in futures_util::future::join_all(writers).await {
        writer.expect("the writer");
    }
    let all = store
        .get_category_messages("note", &CategoryQuery::new().batch_size(-1))
        .await
        .unwrap();
    assert_eq!(all.len(), 4 * 27);
    assert_eq!(
        store.category_head("note").await.unwrap(),
        Some(all.last().unwrap().global_position)
    );
}

/// A consumer whose handler fails on note 3, parked after one failure:
/// the first run ends on it and records the failure, the second parks it
/// and handles the rest; each note promptly (the consumer polls every
/// 30 s, so by wake-ups on the direct connection), and the position is
/// recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_records_positions_failures_and_parks_through_transaction_pooling() {
    let (_cluster, bouncer, direct) = behind_pgbouncer().await;
    let store = store(&bouncer, Some(&direct));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let config = ConsumerConfig {
        identifier: Some("bouncer".into()),
        poll_interval: Duration::from_secs(30),
        position_update_interval: 1,
        park_after_failures: Some(1),
        ..ConsumerConfig::new("note")
    };
    let consumer = || {
        let seen = Arc::clone(&handled);
        Consumer::new(config.clone(), store.clone())
            .unwrap()
            .handler(Dispatcher::new().on(move |note: Received<Noted>| {
                let seen = Arc::clone(&seen);
                async move {
                    if note.n == 3 {
                        return Err(BoxError::from("note 3 cannot be handled"));
                    }
                    seen.lock().unwrap().push(note.n);
                    Ok::<_, BoxError>(())
                }
            }))
    };
    let stream = StreamName::new("note", "1").unwrap();
    let control = Control::new();
    let first = consumer();
    let (started, ready) = tokio::sync::oneshot::channel();
    let run = tokio::spawn({
        let control = control.clone();
        async move {
            first
                .run_with(&control, move || {
                    let _ = started.send(());
                })
                .await
        }
    });
    ready.await.unwrap();
    for n in 1..=5 {
        store
            .write(&stream, &noted(n), ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the first run ends on note 3 promptly, woken")
        .unwrap();
    assert!(
        ended
            .as_ref()
            .is_err_and(ebb_consumer::Error::is_handler_failure),
        "{ended:?}"
    );
    assert_eq!(*handled.lock().unwrap(), [1, 2]);

    let second = consumer();
    let run = tokio::spawn({
        let control = control.clone();
        async move { second.run(&control).await }
    });
    let started = Instant::now();
    let distinct = || {
        let mut notes = handled.lock().unwrap().clone();
        notes.dedup();
        notes
    };
    while distinct().len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "handled {:?} after 10 s",
            handled.lock().unwrap()
        );
        assert!(!run.is_finished(), "the second run ended");
        // Polls what was handled until the four notes are.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    control.stop();
    run.await.unwrap().expect("the second run stops cleanly");
    // The recorded position is inclusive: note 2 may come again.
    assert_eq!(distinct(), [1, 2, 4, 5]);

    let read = |name: StreamName| {
        let store = store.clone();
        async move {
            store
                .get_stream_messages(name.as_str(), &StreamQuery::new().batch_size(-1))
                .await
                .unwrap()
        }
    };
    let failures = read(config.failures_stream_name().unwrap()).await;
    assert_eq!(failures.len(), 1, "the failure recorded: {failures:?}");
    let parked = read(config.parked_stream_name().unwrap()).await;
    assert_eq!(parked.len(), 1, "note 3 parked: {parked:?}");
    let positions = read(config.position_stream_name().unwrap()).await;
    assert!(!positions.is_empty(), "the position recorded");
}

/// Prepared statements off and no connection to listen on: wake-ups are
/// off (a transaction pooler keeps no session to listen in), and a
/// consumer still handles what is written, at its poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_direct_connection_wake_ups_are_off_and_consumers_poll() {
    let (_cluster, bouncer, _) = behind_pgbouncer().await;
    let store = store(&bouncer, None);
    let wakeup = store.arm_wakeup("note").await;
    assert!(!wakeup.is_armed(), "{wakeup:?}");

    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let consumer = Consumer::new(
        ConsumerConfig {
            poll_interval: Duration::from_millis(100),
            ..ConsumerConfig::new("note")
        },
        store.clone(),
    )
    .unwrap()
    .handler(Dispatcher::new().on(move |note: Received<Noted>| {
        seen.lock().unwrap().push(note.n);
        async { Ok::<_, BoxError>(()) }
    }));
    let control = Control::new();
    let run = tokio::spawn({
        let control = control.clone();
        async move { consumer.run(&control).await }
    });
    let stream = StreamName::new("note", "1").unwrap();
    store
        .write(&stream, &noted(1), ExpectedVersion::Any)
        .await
        .unwrap();
    let started = Instant::now();
    while handled.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "not handled");
        // Polls what was handled until the note is.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    control.stop();
    run.await.unwrap().expect("the consumer stops cleanly");
    assert_eq!(*handled.lock().unwrap(), [1]);
}

/// Calls given up on while the server works on them (a write waiting for
/// a category's lock another session holds), twenty times: each
/// statement is cancelled through PgBouncer, which stays up (1.18 exits
/// when a cancel connection is closed early by its client), and the
/// store writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_cancelled_through_pgbouncer_leave_it_running() {
    let (_cluster, bouncer, direct) = behind_pgbouncer().await;
    let store = store(&bouncer, None);
    let locker = ebb_tests::connect_to(&direct).await.unwrap();
    let stream = StreamName::new("locked", "1").unwrap();
    for n in 0..20 {
        locker
            .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(message_store.hash_64('locked'))")
            .await
            .unwrap();
        let waiting = tokio::time::timeout(
            Duration::from_millis(100),
            store.write(&stream, &noted(n), ExpectedVersion::Any),
        )
        .await;
        assert!(
            waiting.is_err(),
            "the write waited for the lock, at {n}: {waiting:?}"
        );
        locker.batch_execute("ROLLBACK").await.unwrap();
    }
    store
        .write(&stream, &noted(20), ExpectedVersion::Any)
        .await
        .expect("a write after the cancels");
    assert!(
        std::path::Path::new(&format!("/proc/{}", bouncer.pid())).exists(),
        "PgBouncer is still running"
    );
}
