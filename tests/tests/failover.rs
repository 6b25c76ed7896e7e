//! A primary that fails over: a primary and its synchronous streaming
//! standby, the store's settings naming both (the primary's Unix socket
//! directory, then the standby over TCP) with
//! `target_session_attrs=read-write`. The primary is stopped as in a crash
//! (immediate mode) and the standby promoted, while a writer, a consumer,
//! the wake-up listener and a full pool are at work.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_message_store::pg::LISTENER_APPLICATION_NAME;
use ebb_message_store::{
    Error, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig, StreamName,
    StreamQuery,
};
use ebb_tests::private::Failover;

#[message]
struct Placed {
    n: i64,
}

/// Waits between a consumer's failed store calls: long enough in all to
/// ride out a promotion, as a component's own settings would be.
const RIDE_OUT_MS: [u64; 6] = [100, 200, 400, 800, 1_600, 3_200];

fn store(failover: &Failover) -> PgStore {
    PgStore::new(PgStoreConfig {
        max_connections: 4,
        ..PgStoreConfig::new(failover.config())
    })
    .expect("a store")
}

/// Writes `message` to `stream` until it is committed, trying again (the
/// same message, the same id) after each transient error: a write whose
/// answer was lost may have committed, which its id then says
/// (`DuplicateMessageId`). Returns the errors it rode out.
async fn write_until_committed(
    store: &PgStore,
    stream: &StreamName,
    message: &MessageData,
) -> usize {
    let started = Instant::now();
    let mut failures = 0;
    loop {
        match store.write(stream, message, ExpectedVersion::Any).await {
            Ok(_) | Err(Error::DuplicateMessageId { .. }) => return failures,
            Err(err) if err.is_transient() => {
                failures += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "still failing after 30 s: {}",
                    ebb_retry::Chain::new(&err)
                );
                // A retry loop: the write is tried again until it commits.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("a write failed for good: {}", ebb_retry::Chain::new(&err)),
        }
    }
}

/// What the consumer's handler did with each command.
#[derive(Default)]
struct Outcomes {
    /// How often each command's event was written and the write said so
    /// (never more than once).
    applied: BTreeMap<i64, u32>,
    /// The commands handled: written, or found written (a re-delivery, or
    /// a write that committed and reached the standby but whose answer the
    /// failover took away).
    handled: std::collections::BTreeSet<i64>,
    /// Commands found written already.
    redelivered: u32,
}

/// The consumer of `placed` commands: each writes `applied-N` expecting
/// no stream, so a re-delivery is refused and counted. Run again after
/// every error it ends with (the supervisor's restart), until stopped;
/// returns the errors that ended a run.
fn consume(
    store: PgStore,
    outcomes: Arc<Mutex<Outcomes>>,
    control: Control,
) -> tokio::task::JoinHandle<Vec<ebb_consumer::Error>> {
    tokio::spawn(async move {
        let mut ended = Vec::new();
        loop {
            let handler_store = store.clone();
            let seen = Arc::clone(&outcomes);
            let consumer = Consumer::new(
                ConsumerConfig {
                    identifier: Some("failover".into()),
                    poll_interval: Duration::from_millis(200),
                    store_retry_ms: RIDE_OUT_MS.to_vec(),
                    handler_retry_ms: RIDE_OUT_MS.to_vec(),
                    ..ConsumerConfig::new("placed")
                },
                store.clone(),
            )
            .expect("a consumer")
            .handler(Dispatcher::new().on(move |placed: Received<Placed>| {
                let (store, seen) = (handler_store.clone(), Arc::clone(&seen));
                async move {
                    let n = placed.n;
                    let applied = StreamName::new("applied", &n.to_string())?;
                    let event = MessageData::new("Applied", serde_json::json!({ "n": n }));
                    let written = store
                        .write(&applied, &event, ExpectedVersion::NoStream)
                        .await;
                    let mut seen = seen.lock().unwrap();
                    match written {
                        Ok(_) => *seen.applied.entry(n).or_default() += 1,
                        Err(Error::WrongExpectedVersion { .. }) => seen.redelivered += 1,
                        Err(err) => return Err(BoxError::from(err)),
                    }
                    seen.handled.insert(n);
                    Ok::<_, BoxError>(())
                }
            }));
            match consumer.run(&control).await {
                Ok(()) => return ended,
                Err(err) => {
                    ended.push(err);
                    // systemd's RestartSec.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
}

/// 300 commands written one after another while a consumer applies them;
/// after the 100th the primary crashes and the standby is promoted. The
/// writer rides the failover out by writing the same message again; the
/// consumer by its retries or, failing those, by being started again.
/// Every command the writer saw committed is on the new primary, and each
/// was applied exactly once: a write that returned was never lost (the
/// standby had it), so no event had to be written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_and_a_consumer_carry_on_across_a_promotion() {
    const COMMANDS: i64 = 300;
    const FAIL_OVER_AFTER: i64 = 100;
    let mut failover = Failover::start().await;
    let store = store(&failover);
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let control = Control::new();
    let consumer = consume(store.clone(), Arc::clone(&outcomes), control.clone());

    let mut applied_before = 0;
    for n in 1..=COMMANDS {
        if n == FAIL_OVER_AFTER + 1 {
            applied_before = outcomes.lock().unwrap().applied.len();
            failover.fail_over().await;
        }
        let stream = StreamName::new("placed", &(n % 10).to_string()).unwrap();
        let message = MessageData::new("Placed", serde_json::json!({ "n": n }));
        write_until_committed(&store, &stream, &message).await;
    }

    let started = Instant::now();
    while outcomes.lock().unwrap().handled.len() < COMMANDS as usize {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {COMMANDS} handled after 60 s",
            outcomes.lock().unwrap().handled.len()
        );
        // Polls the outcomes until every command is handled.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    control.stop();
    let ended = consumer.await.expect("the consumer task");
    for err in &ended {
        assert!(
            err.is_transient(),
            "the consumer ended with an error a restart cannot help: {}",
            ebb_retry::Chain::new(err)
        );
    }

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let twice: Vec<_> = outcomes
        .applied
        .iter()
        .filter(|(_, count)| **count > 1)
        .collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    assert!(
        applied_before > 0,
        "the consumer was at work when the primary went (and 200 commands came after)"
    );
    // The new primary has every command once, and every event once.
    let fresh = store_on(&failover).await;
    let mut commands = 0;
    for id in 0..10 {
        let stream = StreamName::new("placed", &id.to_string()).unwrap();
        commands += fresh
            .get_stream_messages(stream.as_str(), &StreamQuery::default().batch_size(-1))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(commands, COMMANDS as usize);
    for n in 1..=COMMANDS {
        let stream = format!("applied-{n}");
        let events = fresh
            .get_stream_messages(&stream, &StreamQuery::default())
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{stream}");
    }
    println!(
        "{} re-deliveries refused, {} consumer restarts",
        outcomes.redelivered,
        ended.len()
    );
}

/// A store of the test's own on the same settings, opened after the
/// failover (so none of its connections went to the old primary).
async fn store_on(failover: &Failover) -> PgStore {
    let store = store(failover);
    assert!(
        !in_recovery(&store).await,
        "the store's settings find the new primary"
    );
    store
}

async fn in_recovery(store: &PgStore) -> bool {
    let client = store.client().await.expect("a connection");
    client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .expect("pg_is_in_recovery")
        .get(0)
}

/// A consumer that polls every 30 s and is woken by notifications: a
/// command written after the failover is handled within seconds, so the
/// listener opened its connection again on the new primary (found through
/// the same host list) and listens there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wake_up_listener_follows_the_new_primary() {
    const POLL: Duration = Duration::from_secs(30);
    const PROMPTLY: Duration = Duration::from_secs(5);
    let mut failover = Failover::start().await;
    let store = store(&failover);
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let consumer = Consumer::new(
        ConsumerConfig {
            poll_interval: POLL,
            store_retry_ms: RIDE_OUT_MS.to_vec(),
            ..ConsumerConfig::new("placed")
        },
        store.clone(),
    )
    .unwrap()
    .handler(Dispatcher::new().on(move |placed: Received<Placed>| {
        seen.lock().unwrap().push(placed.n);
        async { Ok::<_, BoxError>(()) }
    }));
    let control = Control::new();
    let run = tokio::spawn({
        let control = control.clone();
        async move { consumer.run(&control).await }
    });
    let handled_within = |n: i64| {
        let handled = Arc::clone(&handled);
        async move {
            let started = Instant::now();
            while started.elapsed() < PROMPTLY {
                if handled.lock().unwrap().contains(&n) {
                    return true;
                }
                // Polls what was handled until the note is, or PROMPTLY has passed.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        }
    };
    let stream = StreamName::new("placed", "1").unwrap();
    let place = |n: i64| MessageData::new("Placed", serde_json::json!({ "n": n }));

    write_until_committed(&store, &stream, &place(1)).await;
    assert!(handled_within(1).await, "woken before the failover");

    failover.fail_over().await;
    write_until_committed(&store, &stream, &place(2)).await;
    assert!(
        handled_within(2).await,
        "a command written after the failover is handled within {PROMPTLY:?}, not at the {POLL:?} poll"
    );
    // Caught up and armed on the new primary: woken again.
    wait_for_listener(&failover).await;
    write_until_committed(&store, &stream, &place(3)).await;
    assert!(handled_within(3).await, "woken again on the new primary");

    control.stop();
    run.await
        .unwrap()
        .expect("the consumer rode the failover out");
    assert_eq!(*handled.lock().unwrap(), [1, 2, 3]);
}

/// Waits until the new primary shows the store's listening connection.
async fn wait_for_listener(failover: &Failover) {
    let client = ebb_tests::connect_to(&failover.standby().config("postgres"))
        .await
        .expect("a connection to the new primary");
    let started = Instant::now();
    loop {
        let listening: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&LISTENER_APPLICATION_NAME],
            )
            .await
            .unwrap()
            .get(0);
        if listening > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no listener on the new primary within 10 s"
        );
        // Polls pg_stat_activity until a listener is on the new primary.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pool whose four connections all went to the old primary: after the
/// failover the same store (no new process, no new pool) writes again,
/// losing at most one call per connection it held, and its connections
/// are then all on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_drains_its_connections_to_the_old_primary() {
    let mut failover = Failover::start().await;
    let store = store(&failover);
    let held = futures_util::future::join_all((0..4).map(|_| store.client())).await;
    for client in &held {
        let client = client.as_ref().expect("a pooled connection");
        assert!(!client.is_closed());
    }
    drop(held);
    assert_eq!(
        store.pool().status().size,
        4,
        "four connections to the old primary"
    );

    failover.fail_over().await;
    let stream = StreamName::new("placed", "1").unwrap();
    let mut failures = 0;
    for n in 1..=8 {
        let message = MessageData::new("Placed", serde_json::json!({ "n": n }));
        failures += write_until_committed(&store, &stream, &message).await;
    }
    assert!(
        failures <= 4,
        "{failures} failed writes: more than one per connection to the old primary"
    );
    let clients = futures_util::future::join_all((0..4).map(|_| store.client())).await;
    for client in clients {
        let client = client.expect("a pooled connection");
        let row = client
            .query_one("SELECT pg_is_in_recovery(), inet_server_port()", &[])
            .await
            .unwrap();
        let (recovery, port): (bool, Option<i32>) = (row.get(0), row.get(1));
        assert!(!recovery, "a pooled connection on a standby");
        assert_eq!(
            port,
            Some(i32::from(failover.standby().port())),
            "every pooled connection on the new primary, over TCP"
        );
    }
}
