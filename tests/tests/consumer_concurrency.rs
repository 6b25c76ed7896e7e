//! The consumer with several messages in flight, against PostgreSQL:
//! messages of one stream never overlap and never reorder, nothing is lost
//! when a handler fails and the consumer is started again, and with a
//! consumer group each member keeps its streams' order.
//!
//! The handler's delays and failures come from a seeded generator, printed
//! on failure, so a failing run can be replayed (`EBB_TEST_SEED`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_consumer::{Consumer, ConsumerConfig};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_message_store::{ConsumerGroup, ExpectedVersion, MessageData, MessageStore, PgStore};
use ebb_tests::{database, run_until, store_for};

#[message]
struct Noted {
    n: u64,
}

const CATEGORY: &str = "note";

/// A small deterministic generator (xorshift64*), so that no test depends
/// on the clock for its randomness.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("EBB_TEST_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        #[allow(clippy::print_stderr, reason = "the seed, to replay a failing run")]
        {
            eprintln!("EBB_TEST_SEED={seed}");
        }
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `count` notes spread at random over `streams` streams; returns
/// the stream names.
async fn write_notes(store: &PgStore, rng: &mut Rng, streams: u64, count: u64) -> Vec<String> {
    let names: Vec<String> = (0..streams).map(|i| format!("{CATEGORY}-{i}")).collect();
    for n in 0..count {
        let stream = names[rng.below(streams) as usize].parse().unwrap();
        store
            .write(
                &stream,
                &MessageData::new("Noted", serde_json::json!({ "n": n })),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    names
}

/// What the handlers saw: every (stream, position) handled, in the order
/// each stream's were handled, the streams being handled right now, and
/// the most handled at once.
#[derive(Debug, Default)]
struct Seen {
    by_stream: BTreeMap<String, Vec<i64>>,
    in_hand: HashSet<String>,
    most_at_once: usize,
    overlaps: Vec<String>,
    count: usize,
}

/// A handler that waits a random while (0–3 ms) and fails on the notes
/// `fail_on` says; it records what it saw in `seen`.
fn handlers(
    seen: &Arc<Mutex<Seen>>,
    rng: &Rng,
    fail_on: impl Fn(u64) -> bool + Send + Sync + 'static,
) -> Dispatcher {
    let seen = Arc::clone(seen);
    let rng = Arc::new(Mutex::new(rng.clone()));
    let fail_on = Arc::new(fail_on);
    Dispatcher::new().on(move |note: Received<Noted>| {
        let seen = Arc::clone(&seen);
        let fail_on = Arc::clone(&fail_on);
        let delay = Duration::from_micros(rng.lock().unwrap().below(3_000));
        async move {
            let stream = note.stream_name().to_owned();
            {
                let mut seen = seen.lock().unwrap();
                if !seen.in_hand.insert(stream.clone()) {
                    seen.overlaps.push(stream.clone());
                }
                seen.most_at_once = seen.most_at_once.max(seen.in_hand.len());
            }
            // A handler that takes time (0–3 ms): the behaviour under test.
            tokio::time::sleep(delay).await;
            let mut seen = seen.lock().unwrap();
            seen.in_hand.remove(&stream);
            if fail_on(note.n) {
                return Err(BoxError::from(format!("note {} fails", note.n)));
            }
            seen.by_stream
                .entry(stream)
                .or_default()
                .push(note.position());
            seen.count += 1;
            Ok(())
        }
    })
}

fn config(identifier: &str, concurrency: usize) -> ConsumerConfig {
    ConsumerConfig {
        identifier: Some(identifier.into()),
        concurrency,
        // Records often, so that a stop lands between records too.
        position_update_interval: 7,
        ..ConsumerConfig::new(CATEGORY)
    }
}

/// Each stream's positions handled, as they must be: 0, 1, 2, … each once.
fn assert_in_order_and_complete(seen: &Seen, store_counts: &BTreeMap<String, i64>) {
    assert!(seen.overlaps.is_empty(), "overlapping: {:?}", seen.overlaps);
    for (stream, &count) in store_counts {
        let handled = seen.by_stream.get(stream).cloned().unwrap_or_default();
        assert_eq!(
            handled,
            (0..count).collect::<Vec<_>>(),
            "{stream}: every message once, in order"
        );
    }
}

async fn stream_counts(store: &PgStore, names: &[String]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for name in names {
        let version = store.stream_version(name).await.unwrap();
        counts.insert(name.clone(), version.map_or(0, |v| v + 1));
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_in_flight_keep_each_stream_in_order_and_lose_nothing() {
    let db = database().await;
    let store = store_for(&db, 8);
    let mut rng = Rng::from_env();
    let names = write_notes(&store, &mut rng, 24, 600).await;
    let counts = stream_counts(&store, &names).await;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let consumer = Consumer::new(config("c8", 8), store.clone())
        .unwrap()
        .handler(handlers(&seen, &rng, |_| false));
    let done = Arc::clone(&seen);
    run_until(&consumer, move || done.lock().unwrap().count == 600)
        .await
        .unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_in_order_and_complete(&seen, &counts);
    assert!(
        seen.most_at_once > 1,
        "several streams were handled at once (at most {})",
        seen.most_at_once
    );
    assert!(seen.most_at_once <= 8, "never more than the setting");
    let recorded = consumer.positions().get().await.unwrap();
    assert_eq!(recorded, Some(600), "the last message's position, on stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_stops_at_the_lowest_unfinished_message_and_a_restart_loses_nothing() {
    let db = database().await;
    let store = store_for(&db, 8);
    let mut rng = Rng::from_env();
    let names = write_notes(&store, &mut rng, 16, 400).await;
    let counts = stream_counts(&store, &names).await;
    let notes = note_positions(&store).await;
    // Each round the handler fails on one note chosen at random, further
    // along each time, and the consumer stops; the next round starts a new
    // consumer where the last one recorded, as a restarted process does.
    // The last round has no failure and finishes the category.
    let mut failing: Vec<u64> = (0..4).map(|_| 40 + rng.below(340)).collect();
    failing.sort_unstable();
    let mut handled: BTreeMap<String, HashSet<i64>> = BTreeMap::new();
    for round in 0..=failing.len() {
        let fail_on = failing.get(round).copied();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let consumer = Consumer::new(config("c4", 4), store.clone())
            .unwrap()
            .handler(handlers(&seen, &rng, move |n| Some(n) == fail_on));
        let resumed_at = consumer.positions().get().await.unwrap().unwrap_or(1);
        let done = Arc::clone(&seen);
        let handled_before = handled.clone();
        let all = counts.clone();
        let result = run_until(&consumer, move || {
            // Only the last round gets here: every message handled in
            // some round.
            let seen = done.lock().unwrap();
            all.iter().all(|(stream, &count)| {
                let now = seen.by_stream.get(stream);
                let before = handled_before.get(stream);
                (0..count).all(|p| {
                    now.is_some_and(|now| now.contains(&p))
                        || before.is_some_and(|before| before.contains(&p))
                })
            })
        })
        .await;
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        assert!(seen.overlaps.is_empty(), "overlapping: {:?}", seen.overlaps);
        for positions in seen.by_stream.values() {
            assert!(
                positions.windows(2).all(|pair| pair[0] < pair[1]),
                "round {round}: a stream's messages in order: {positions:?}"
            );
        }
        match fail_on {
            Some(n) => {
                let err = result.expect_err("the handler's failure stops the consumer");
                let cause = std::error::Error::source(&err).map(ToString::to_string);
                assert_eq!(cause, Some(format!("note {n} fails")), "{err}");
            }
            None => result.unwrap(),
        }
        // The recorded position never passes a message this round did not
        // finish: every note from where the round resumed (inclusive: it
        // is handled again) up to the recorded position was handled in
        // this round. Every round has a position recorded, by now or
        // before (the first fails past note 40, recording every 7), and
        // it never goes back, so the range holds a note at least.
        let recorded = consumer
            .positions()
            .get()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: no position recorded"));
        assert!(
            recorded >= resumed_at,
            "round {round}: recorded {recorded}, before where it resumed ({resumed_at})"
        );
        let mut checked = 0;
        for (global, stream, position) in &notes {
            if (resumed_at..=recorded).contains(global) {
                checked += 1;
                assert!(
                    seen.by_stream
                        .get(stream)
                        .is_some_and(|handled| handled.contains(position)),
                    "round {round}: {global} ({stream}/{position}) is recorded as done \
                     but was not handled (resumed at {resumed_at}, recorded {recorded})"
                );
            }
        }
        assert!(
            checked > 0,
            "round {round}: no note up to {recorded} checked"
        );
        if let Some(n) = fail_on {
            let (failed_at, ..) = notes[n as usize];
            assert!(
                recorded < failed_at,
                "round {round}: recorded {recorded}, past the failed note at {failed_at}"
            );
        }
        for (stream, positions) in seen.by_stream {
            handled.entry(stream).or_default().extend(positions);
        }
    }
    for (stream, &count) in &counts {
        assert_eq!(
            handled.get(stream).cloned().unwrap_or_default(),
            (0..count).collect::<HashSet<_>>(),
            "{stream}: nothing lost"
        );
    }
}

/// Every note of the category in global order: (global position, stream,
/// position); the note `n` is at index `n`.
async fn note_positions(store: &PgStore) -> Vec<(i64, String, i64)> {
    store
        .get_category_messages(
            CATEGORY,
            &ebb_message_store::CategoryQuery::new().batch_size(-1),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.global_position, m.stream_name, m.position))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_concurrent_members_keeps_each_stream_in_order() {
    let db = database().await;
    let store = store_for(&db, 12);
    let mut rng = Rng::from_env();
    let names = write_notes(&store, &mut rng, 30, 450).await;
    let counts = stream_counts(&store, &names).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut runs = Vec::new();
    for member in 0..3 {
        let consumer = Consumer::new(
            ConsumerConfig {
                group: Some(ConsumerGroup { member, size: 3 }),
                ..config(&format!("g{member}"), 4)
            },
            store.clone(),
        )
        .unwrap()
        .handler(handlers(&seen, &rng, |_| false));
        let done = Arc::clone(&seen);
        runs.push(tokio::spawn(async move {
            run_until(&consumer, move || done.lock().unwrap().count == 450).await
        }));
    }
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert_in_order_and_complete(&seen.lock().unwrap(), &counts);
}
