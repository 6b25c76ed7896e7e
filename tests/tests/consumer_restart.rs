//! A consumer surviving its database: a restart of the server under a
//! busy consumer and its connections being terminated are ridden out with
//! the default read retries; a server that stays down longer than the
//! retries ends the consumer's run with the store's (transient) error
//! instead of a hang, for its supervisor to restart it.

#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_consumer::{Consumer, ConsumerConfig, Control, PositionStore};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_localpg::ShutdownMode;
use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig, StreamName,
};
use ebb_tests::observed::{Event, Observed};
use ebb_tests::private::{Listen, cluster_with_schema};
use ebb_tests::{connect, database, store_for};
use serde_json::json;
use tokio::sync::watch;

const CATEGORY: &str = "note";

/// The messages the consumers handle.
#[message]
#[derive(Debug, Clone)]
struct Noted {
    n: i64,
}

/// The global positions handled, in the order handled.
type Handled = Arc<Mutex<Vec<i64>>>;

/// Writes `count` notes, round robin over streams `note-0` to `note-4`,
/// each on its own; a transient failure (a pooled connection the restart
/// closed) is tried again a few times.
async fn write_notes(store: &PgStore, from: i64, count: i64) {
    for n in from..from + count {
        let stream = StreamName::new(CATEGORY, &(n % 5).to_string()).unwrap();
        let message = MessageData::new("Noted", json!({ "n": n }));
        let mut attempts = 0;
        loop {
            match store.write(&stream, &message, ExpectedVersion::Any).await {
                Ok(_) => break,
                // A retry loop (not a wait for an event): tried again
                // after 100 ms.
                Err(err) if err.is_transient() && attempts < 20 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("writing note {n}: {err:?}"),
            }
        }
    }
}

/// Every note's global position, in order.
async fn all_notes(store: &PgStore) -> Vec<i64> {
    store
        .get_category_messages(CATEGORY, &CategoryQuery::new().batch_size(-1))
        .await
        .unwrap()
        .iter()
        .map(|message| message.global_position)
        .collect()
}

/// Holds a consumer's handler before it handles its message number `at`
/// (counting from 0) until `open` says so.
#[derive(Clone)]
struct Hold {
    at: usize,
    open: watch::Receiver<bool>,
}

/// A consumer of the notes whose handler takes `delay` per message (and
/// waits at `hold`, if any) and then notes its global position in
/// `handled`.
fn note_consumer<S: MessageStore>(
    store: &S,
    config: ConsumerConfig,
    delay: Duration,
    handled: &Handled,
    hold: Option<Hold>,
) -> Consumer<S> {
    let handled = Arc::clone(handled);
    Consumer::new(config, store.clone())
        .unwrap()
        .handler(Dispatcher::new().on(move |note: Received<Noted>| {
            let handled = Arc::clone(&handled);
            let hold = hold.clone();
            let position = note.global_position();
            async move {
                if let Some(mut hold) = hold {
                    if handled.lock().unwrap().len() == hold.at {
                        let _ = hold.open.wait_for(|open| *open).await;
                    }
                }
                // A handler that takes time, when asked to.
                tokio::time::sleep(delay).await;
                handled.lock().unwrap().push(position);
                Ok::<_, BoxError>(())
            }
        }))
}

/// A consumer's run, on a task of its own.
type Run = tokio::task::JoinHandle<Result<(), ebb_consumer::Error>>;

/// Waits until `handled` holds `position` (asked every 10 ms; the callers
/// bound the wait); panics if `run` ends first.
async fn until_handled(handled: &Handled, position: i64, run: &mut Run) {
    while !handled.lock().unwrap().contains(&position) {
        ended(run).await;
        // Polls `handled` until it holds the position.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `handled` holds `count` positions (asked every 5 ms; the
/// callers bound the wait); panics if `run` ends first.
async fn until_count(handled: &Handled, count: usize, run: &mut Run) {
    while handled.lock().unwrap().len() < count {
        ended(run).await;
        // Polls `handled` until it holds `count`.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Panics, with how it ended, if the consumer's `run` has ended.
async fn ended(run: &mut Run) {
    if run.is_finished() {
        panic!("the consumer's run ended: {:?}", run.await);
    }
}

/// The position the consumer of `config` recorded last.
async fn recorded(store: &PgStore, config: &ConsumerConfig) -> Option<i64> {
    PositionStore::new(store.clone(), config.position_stream_name().unwrap())
        .get()
        .await
        .unwrap()
}

/// The server restarts (fast shutdown) while the consumer works through a
/// backlog, recording its position every 10 messages, so that reads and
/// position records fail for a while. With the default read retries it
/// rides that out: every note, those written before and after the restart,
/// is handled once and in order (one run never reads again what it
/// handled; redeliveries would only follow a restart of the consumer), and
/// the recorded position ends at the last. The handler is held at the
/// 31st note until the server is down, and the server is started again
/// once a call of the consumer's has failed (its store is watched), so
/// that the restart comes mid-backlog and is felt however fast or slow
/// the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_rides_out_a_restart_of_its_database() {
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), async {
        let (mut cluster, config) = cluster_with_schema(Listen::Socket).await;
        let store = PgStore::new(PgStoreConfig {
            max_connections: 4,
            ..PgStoreConfig::new(config)
        })
        .unwrap();
        write_notes(&store, 0, 200).await;
        let config = ConsumerConfig {
            position_update_interval: 10,
            ..ConsumerConfig::new(CATEGORY)
        };
        assert_eq!(config.store_retry_ms, [100, 1_000, 5_000], "the default");
        let handled = Handled::default();
        let (release, open) = watch::channel(false);
        let hold = Hold { at: 30, open };
        let observed = Observed::new(store.clone());
        let consumer = note_consumer(
            &observed,
            config.clone(),
            Duration::ZERO,
            &handled,
            Some(hold),
        );
        let control = Control::new();
        let mut run = tokio::spawn({
            let control = control.clone();
            async move { consumer.run(&control).await }
        });

        // Mid-backlog: the 31st note is in hand (held) when the server
        // stops. Let go, the consumer goes on with the batch in hand while
        // the server is down, and its next position record fails.
        until_count(&handled, 30, &mut run).await;
        let restart = Instant::now();
        tokio::task::block_in_place(|| cluster.stop_server(ShutdownMode::Fast))
            .expect("the server stops");
        assert_eq!(handled.lock().unwrap().len(), 30, "held at the 31st");
        let mark = observed.mark();
        release.send_replace(true);
        observed
            .wait_for(
                "a call failing while the server is down",
                mark,
                Duration::from_secs(20),
                |events| events.contains(&Event::Failed),
            )
            .await;
        tokio::task::block_in_place(|| cluster.start_server()).expect("the server starts again");
        let during = handled.lock().unwrap().len();
        println!(
            "restart took {:?}; {during} of 200 handled by then",
            restart.elapsed()
        );
        if run.is_finished() {
            panic!(
                "the consumer stopped in the restart: {:?}",
                run.await.unwrap()
            );
        }

        write_notes(&store, 200, 50).await;
        let expected = all_notes(&store).await;
        assert_eq!(expected.len(), 250);
        let last = *expected.last().unwrap();
        until_handled(&handled, last, &mut run).await;
        control.stop();
        run.await
            .unwrap()
            .expect("the consumer rode out the restart");

        assert_eq!(
            *handled.lock().unwrap(),
            expected,
            "every note handled once, in order"
        );
        assert_eq!(recorded(&store, &config).await, Some(last));
    })
    .await
    .expect("done within a minute");
    println!("took {:?}", started.elapsed());
}

/// The server stops and stays down longer than the consumer's read
/// retries: its run ends with the store's transient error, within the
/// retries and the store's timeouts, instead of hanging. Started again
/// (as its supervisor would), a consumer resumes from the recorded
/// position, handling again what it had not recorded (at least once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_database_stays_down_stops_with_the_store_error() {
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), async {
        let (mut cluster, config) = cluster_with_schema(Listen::Socket).await;
        let store = PgStore::new(PgStoreConfig {
            max_connections: 2,
            connect_timeout: Duration::from_secs(1),
            wait_timeout: Duration::from_secs(1),
            call_timeout: Duration::from_secs(2),
            ..PgStoreConfig::new(config)
        })
        .unwrap();
        write_notes(&store, 0, 5).await;
        let expected = all_notes(&store).await;
        let config = ConsumerConfig {
            store_retry_ms: vec![50, 100],
            position_update_interval: 3,
            // Its first failed read comes at a poll, once the stop has
            // begun (woken, it would read as the shutdown drops its
            // listening connection).
            wake_on_notify: false,
            ..ConsumerConfig::new(CATEGORY)
        };
        let handled = Handled::default();
        let consumer = note_consumer(&store, config.clone(), Duration::ZERO, &handled, None);
        let control = Control::new();
        let mut run = tokio::spawn({
            let control = control.clone();
            async move { consumer.run(&control).await }
        });
        until_handled(&handled, expected[4], &mut run).await;

        // The clock starts as the stop does: the consumer's reads may fail
        // from the moment the server begins to shut down, before the stop
        // returns.
        let down = Instant::now();
        tokio::task::block_in_place(|| cluster.stop_server(ShutdownMode::Fast))
            .expect("the server stops");
        let result = tokio::time::timeout(Duration::from_secs(15), run)
            .await
            .expect("the consumer gives up within 15 s")
            .unwrap();
        let gave_up = down.elapsed();
        println!("the consumer gave up {gave_up:?} after the server stopped");
        match result {
            Err(ebb_consumer::Error::Store(err)) => {
                assert!(err.is_transient(), "{err:?}");
            }
            other => panic!("expected the store's error, got {other:?}"),
        }
        assert!(
            gave_up >= Duration::from_millis(150),
            "after both retries: {gave_up:?}"
        );
        assert_eq!(*handled.lock().unwrap(), expected);

        tokio::task::block_in_place(|| cluster.start_server()).expect("the server starts again");
        // The first three were recorded; the last two were not (the
        // record on the way out failed too), so they come again.
        assert_eq!(recorded(&store, &config).await, Some(expected[2]));
        write_notes(&store, 5, 1).await;
        let expected = all_notes(&store).await;
        let again = Handled::default();
        let consumer = note_consumer(&store, config, Duration::ZERO, &again, None);
        let control = Control::new();
        let mut run = tokio::spawn({
            let control = control.clone();
            async move { consumer.run(&control).await }
        });
        until_handled(&again, expected[5], &mut run).await;
        control.stop();
        run.await.unwrap().expect("the restarted consumer runs");
        assert_eq!(*again.lock().unwrap(), expected[2..]);
    })
    .await
    .expect("done within a minute");
    println!("took {:?}", started.elapsed());
}

/// Every connection to the consumer's database is terminated
/// (`pg_terminate_backend`), three times, while notes are written and
/// handled: the consumer rides it out and handles each once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_rides_out_its_connections_being_terminated() {
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), async {
        let db = database().await;
        let store = store_for(&db, 4);
        let admin = connect(&db).await;
        let config = ConsumerConfig {
            position_update_interval: 5,
            ..ConsumerConfig::new(CATEGORY)
        };
        let handled = Handled::default();
        let consumer = note_consumer(
            &store,
            config.clone(),
            Duration::from_millis(1),
            &handled,
            None,
        );
        let control = Control::new();
        let mut run = tokio::spawn({
            let control = control.clone();
            async move { consumer.run(&control).await }
        });
        for round in 0..3 {
            write_notes(&store, round * 40, 40).await;
            // At work on this round's notes when its connections go.
            until_count(&handled, round as usize * 40 + 1, &mut run).await;
            let terminated: i64 = admin
                .query_one(
                    // Materialized, so that no backend (ours least of
                    // all) is terminated before the filter ran.
                    "WITH others AS MATERIALIZED ( \
                         SELECT pid FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid()) \
                     SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM others",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert!(terminated > 0, "round {round}: some connections terminated");
        }
        write_notes(&store, 120, 10).await;
        let expected = all_notes(&store).await;
        assert_eq!(expected.len(), 130);
        let last = *expected.last().unwrap();
        until_handled(&handled, last, &mut run).await;
        control.stop();
        run.await
            .unwrap()
            .expect("the consumer rode out the terminations");
        assert_eq!(*handled.lock().unwrap(), expected);
        assert_eq!(recorded(&store, &config).await, Some(last));
    })
    .await
    .expect("done within a minute");
    println!("took {:?}", started.elapsed());
}
