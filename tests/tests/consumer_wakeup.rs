//! A caught-up consumer woken by a write (LISTEN/NOTIFY), against
//! PostgreSQL: at once rather than at its poll, for writes by ebb and by
//! any other client, one at a time and several in flight, after its
//! listening connection was lost, and not at all with the setting off.
//!
//! Every consumer here polls every 30 s: a message handled within a
//! second was handled because of the wake-up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_message_store::{ExpectedVersion, MessageData, MessageStore, PgStore};
use ebb_tests::{connect, database, store_for, terminate_listeners};
use tokio::task::JoinHandle;

#[message]
struct Noted {
    n: i64,
}

const CATEGORY: &str = "note";
const POLL: Duration = Duration::from_secs(30);
/// Far below the poll: a wake-up, not a poll.
const PROMPTLY: Duration = Duration::from_secs(2);

/// A consumer running in the background, and the notes it handled.
struct Running {
    control: Control,
    run: JoinHandle<Result<(), ebb_consumer::Error>>,
    handled: Arc<Mutex<Vec<i64>>>,
}

impl Running {
    async fn start(store: &PgStore, wake_on_notify: bool, concurrency: usize) -> Self {
        let handled = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&handled);
        let consumer = Consumer::new(
            ConsumerConfig {
                poll_interval: POLL,
                wake_on_notify,
                concurrency,
                ..ConsumerConfig::new(CATEGORY)
            },
            store.clone(),
        )
        .unwrap()
        .handler(Dispatcher::new().on(move |note: Received<Noted>| {
            seen.lock().unwrap().push(note.n);
            async { Ok::<_, BoxError>(()) }
        }));
        let control = Control::new();
        let (started, ready) = tokio::sync::oneshot::channel();
        let run = tokio::spawn({
            let control = control.clone();
            async move {
                consumer
                    .run_with(&control, move || {
                        let _ = started.send(());
                    })
                    .await
            }
        });
        ready.await.unwrap();
        // Its first read (of nothing) and its arming are done well within.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Self {
            control,
            run,
            handled,
        }
    }

    /// Waits until `n` is handled; how long it took, or `None` after
    /// `within`.
    async fn handles(&self, n: i64, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.handled.lock().unwrap().contains(&n) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }

    async fn stop(self) -> Vec<i64> {
        self.control.stop();
        self.run.await.unwrap().unwrap();
        std::mem::take(&mut *self.handled.lock().unwrap())
    }
}

async fn note(store: &PgStore, n: i64) {
    store
        .write(
            &format!("{CATEGORY}-{}", n % 3).parse().unwrap(),
            &MessageData::new("Noted", serde_json::json!({ "n": n })),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
}

async fn woken_by_each_write(concurrency: usize) {
    let db = database().await;
    let store = store_for(&db, 4);
    let consumer = Running::start(&store, true, concurrency).await;
    for n in 1..=5 {
        note(&store, n).await;
        let took = consumer.handles(n, PROMPTLY).await;
        assert!(took.is_some(), "note {n} not handled within {PROMPTLY:?}");
        // Caught up again and armed before the next.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(consumer.stop().await, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_write_wakes_a_caught_up_consumer_long_before_its_poll() {
    woken_by_each_write(1).await;
}

#[tokio::test]
async fn a_write_wakes_a_caught_up_consumer_with_several_in_flight() {
    woken_by_each_write(4).await;
}

#[tokio::test]
async fn a_write_by_another_client_wakes_it() {
    let db = database().await;
    let store = store_for(&db, 4);
    let consumer = Running::start(&store, true, 1).await;
    // As psql or Ruby Eventide write: write_message, on a connection of
    // their own.
    let client = connect(&db).await;
    client
        .batch_execute(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, 'note-9', \
             'Noted', '{\"n\": 9}')",
        )
        .await
        .unwrap();
    assert!(consumer.handles(9, PROMPTLY).await.is_some());
    consumer.stop().await;
}

#[tokio::test]
async fn a_lost_listening_connection_loses_nothing_and_wakes_again() {
    let db = database().await;
    let store = store_for(&db, 4);
    let consumer = Running::start(&store, true, 1).await;
    note(&store, 1).await;
    assert!(consumer.handles(1, PROMPTLY).await.is_some());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client = connect(&db).await;
    let terminated = terminate_listeners(&client).await;
    assert_eq!(terminated, 1, "the store's one listening connection");
    // Written while the listener is away: its notification is lost, and
    // the consumer, woken when the listener comes back, reads it anyway.
    note(&store, 2).await;
    assert!(
        consumer.handles(2, Duration::from_secs(10)).await.is_some(),
        "a write while the listener was away is not slept through until the poll"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    note(&store, 3).await;
    assert!(
        consumer.handles(3, PROMPTLY).await.is_some(),
        "woken again once listening again"
    );
    assert_eq!(consumer.stop().await, [1, 2, 3]);
}

#[tokio::test]
async fn with_wake_on_notify_off_the_consumer_only_polls() {
    let db = database().await;
    let store = store_for(&db, 4);
    let consumer = Running::start(&store, false, 1).await;
    note(&store, 1).await;
    assert_eq!(
        consumer.handles(1, Duration::from_secs(1)).await,
        None,
        "handled before its poll with the setting off"
    );
    consumer.stop().await;
}
