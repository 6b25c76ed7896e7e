//! A caught-up consumer woken by a write (LISTEN/NOTIFY), against
//! PostgreSQL: at once rather than at its poll, for writes by ebb and by
//! any other client, one at a time and several in flight, after its
//! listening connection was lost, and not at all with the setting off.
//!
//! Every consumer here polls every 30 s, and its store is watched
//! ([`Observed`]): each write is made once the consumer has armed the
//! database (outside the store's busy window, where it would poll every
//! 2 ms instead) and read once more, and the wake-up that follows is seen
//! to be the notification's, not a poll's.

use std::sync::Arc;
use std::time::Duration;

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_message_store::{ExpectedVersion, MessageData, MessageStore, PgStore};
use ebb_tests::observed::{Event, Observed};
use ebb_tests::{connect, database, store_for, terminate_listeners};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[message]
struct Noted {
    n: i64,
}

const CATEGORY: &str = "note";
const POLL: Duration = Duration::from_secs(30);
/// Far below the poll: a wake-up, not a poll.
const PROMPTLY: Duration = Duration::from_secs(2);
/// Longer than the store's busy window (1 s) with room for a loaded
/// machine: the consumer arms the database again within it.
const REARMED: Duration = Duration::from_secs(10);

/// A consumer running in the background on an observed store, and the
/// notes it handled.
struct Running {
    store: Observed<PgStore>,
    control: Control,
    run: JoinHandle<Result<(), ebb_consumer::Error>>,
    handled: Arc<watch::Sender<Vec<i64>>>,
}

impl Running {
    /// Starts the consumer and waits until it has read all there is and,
    /// with `wake_on_notify`, armed the database and read once more.
    async fn start(store: &PgStore, wake_on_notify: bool, concurrency: usize) -> Self {
        Self::start_with(store, wake_on_notify, concurrency, POLL).await
    }

    async fn start_with(
        store: &PgStore,
        wake_on_notify: bool,
        concurrency: usize,
        poll_interval: Duration,
    ) -> Self {
        let store = Observed::new(store.clone());
        let handled = Arc::new(watch::Sender::new(Vec::new()));
        let seen = Arc::clone(&handled);
        let consumer = Consumer::new(
            ConsumerConfig {
                poll_interval,
                wake_on_notify,
                concurrency,
                ..ConsumerConfig::new(CATEGORY)
            },
            store.clone(),
        )
        .unwrap()
        .handler(Dispatcher::new().on(move |note: Received<Noted>| {
            seen.send_modify(|seen| seen.push(note.n));
            async { Ok::<_, BoxError>(()) }
        }));
        let control = Control::new();
        let run = tokio::spawn({
            let control = control.clone();
            async move { consumer.run(&control).await }
        });
        if wake_on_notify {
            store.waiting_for_notification(REARMED).await;
        } else {
            store
                .wait_for("the first read", 0, REARMED, |events| {
                    events.contains(&Event::CaughtUp)
                })
                .await;
        }
        Self {
            store,
            control,
            run,
            handled,
        }
    }

    /// Waits until `n` is handled; false after `within`.
    async fn handles(&self, n: i64, within: Duration) -> bool {
        let mut handled = self.handled.subscribe();
        tokio::time::timeout(within, handled.wait_for(|handled| handled.contains(&n)))
            .await
            .is_ok()
    }

    /// Writes note `n` once the consumer waits for its notification, and
    /// checks that the notification woke it and that it handled the note
    /// long before its poll; then waits until it has armed the database
    /// again.
    async fn woken_by(&self, n: i64, write: impl Future<Output = ()>) {
        let mark = self.store.mark();
        write.await;
        assert!(
            self.handles(n, PROMPTLY).await,
            "note {n} not handled within {PROMPTLY:?}"
        );
        let since = self.store.since(mark);
        assert!(
            since.contains(&Event::Woken { poll: false }),
            "note {n}: not woken by a notification: {since:?}"
        );
        // Caught up again, and past the busy window: armed for the next.
        self.store.waiting_for_notification(REARMED).await;
    }

    async fn stop(self) -> Vec<i64> {
        self.control.stop();
        self.run.await.unwrap().unwrap();
        self.handled.borrow().clone()
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

/// Each of five notes is written while the consumer waits for its
/// notification (armed again after the last one, once the busy window
/// has passed), and the notification wakes it each time.
async fn woken_by_each_write(concurrency: usize) {
    let db = database().await;
    let store = store_for(&db, 4);
    let consumer = Running::start(&store, true, concurrency).await;
    for n in 1..=5 {
        consumer.woken_by(n, note(&store, n)).await;
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
    consumer
        .woken_by(9, async {
            client
                .batch_execute(
                    "SELECT message_store.write_message(gen_random_uuid()::varchar, 'note-9', \
                     'Noted', '{\"n\": 9}')",
                )
                .await
                .unwrap();
        })
        .await;
    consumer.stop().await;
}

#[tokio::test]
async fn a_lost_listening_connection_loses_nothing_and_wakes_again() {
    let db = database().await;
    let store = store_for(&db, 4);
    let consumer = Running::start(&store, true, 1).await;
    // Armed in the database again afterwards: from here only a wake-up
    // (not the busy poll) reads the category before the 30 s poll.
    consumer.woken_by(1, note(&store, 1)).await;
    let client = connect(&db).await;
    let terminated = terminate_listeners(&client).await;
    assert_eq!(terminated, 1, "the store's one listening connection");
    // Written while the listener is away: its notification is lost, and
    // the consumer, woken when the listener comes back, reads it anyway.
    note(&store, 2).await;
    assert!(
        consumer.handles(2, Duration::from_secs(10)).await,
        "a write while the listener was away is not slept through until the poll"
    );
    // Listening again (an arming waits for the listener), past the busy
    // window, and armed: the next notification wakes it.
    consumer.store.waiting_for_notification(REARMED).await;
    consumer.woken_by(3, note(&store, 3)).await;
    assert_eq!(consumer.stop().await, [1, 2, 3]);
}

/// With the setting off, the consumer never arms: a note is read at its
/// next poll.
#[tokio::test]
async fn with_wake_on_notify_off_the_consumer_only_polls() {
    let db = database().await;
    let store = store_for(&db, 4);
    let poll = Duration::from_millis(500);
    let consumer = Running::start_with(&store, false, 1, poll).await;
    note(&store, 1).await;
    assert!(
        consumer.handles(1, Duration::from_secs(10)).await,
        "handled at a poll"
    );
    let events = consumer.store.events();
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Event::ArmCalled | Event::Armed { .. })),
        "armed with the setting off: {events:?}"
    );
    consumer.stop().await;
}
