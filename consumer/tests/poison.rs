//! Poison messages through the consumer, on the in-memory store: each
//! "process" is a consumer run that ends with its error, started again on
//! the same store. (With a real process and PostgreSQL: the tests crate.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_consumer::read_parked;
use ebb_consumer::{Consumer, ConsumerConfig, Control, Error, Failed};
use ebb_handler::{BoxError, Dispatcher, Received, Writer, message};
use ebb_message_store::{ExpectedVersion, MemoryStore, StreamName};

#[message]
struct Noted {
    n: i64,
}

/// Handlers that record every `n` they see, and fail on `fail_on`; every
/// call is counted.
fn recording(seen: &Arc<Mutex<Vec<i64>>>, calls: &Arc<Mutex<u32>>, fail_on: i64) -> Dispatcher {
    let (seen, calls) = (Arc::clone(seen), Arc::clone(calls));
    Dispatcher::new().on(move |noted: Received<Noted>| {
        *calls.lock().unwrap() += 1;
        let seen = Arc::clone(&seen);
        async move {
            if noted.n == fail_on {
                return Err::<(), BoxError>(format!("cannot take {}", noted.n).into());
            }
            seen.lock().unwrap().push(noted.n);
            Ok(())
        }
    })
}

async fn notes(store: &MemoryStore, count: i64) {
    for n in 1..=count {
        Writer::new(store.clone())
            .write(
                &StreamName::parse("note-1").unwrap(),
                Noted { n },
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        identifier: Some("test".into()),
        position_update_interval: 1,
        store_retry_ms: Vec::new(),
        ..ConsumerConfig::new("note")
    }
}

/// One "process": runs a fresh consumer until it fails or has seen the
/// last note, 5.
async fn run(
    store: &MemoryStore,
    config: &ConsumerConfig,
    seen: &Arc<Mutex<Vec<i64>>>,
    calls: &Arc<Mutex<u32>>,
) -> Result<(), Error> {
    let consumer = Consumer::new(config.clone(), store.clone())
        .unwrap()
        .handler(recording(seen, calls, 3));
    let control = Control::new();
    let stopper = {
        let (control, seen) = (control.clone(), Arc::clone(seen));
        tokio::spawn(async move {
            while !seen.lock().unwrap().contains(&5) {
                // Polls what was handled until note 5 is.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            control.stop();
        })
    };
    let result = tokio::time::timeout(Duration::from_secs(10), consumer.run(&control))
        .await
        .expect("the consumer ends");
    stopper.abort();
    result
}

fn failures(store: &MemoryStore) -> Vec<Failed> {
    store
        .stream_messages("note:failures-test")
        .iter()
        .map(|m| m.data().unwrap())
        .collect()
}

#[tokio::test]
async fn without_k_every_run_stops_at_the_poison_message_and_records_it() {
    let store = MemoryStore::new();
    notes(&store, 5).await;
    let (seen, calls) = Default::default();
    for _ in 0..3 {
        let err = run(&store, &config(), &seen, &calls).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handler {
                    global_position: 3,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let failures = failures(&store);
    assert_eq!(failures.len(), 3);
    assert!(failures.iter().all(|f| f.global_position == 3
        && f.position == 2
        && f.stream_name == "note-1"
        && f.error == "cannot take 3"
        && f.attempts == 1));
    assert!(store.stream_messages("note:parked-test").is_empty());
}

#[tokio::test]
async fn with_k_the_message_is_parked_at_the_start_after_k_failures() {
    let store = MemoryStore::new();
    notes(&store, 5).await;
    let config = ConsumerConfig {
        park_after_failures: Some(2),
        ..config()
    };
    let (seen, calls) = Default::default();
    for _ in 0..2 {
        run(&store, &config, &seen, &calls).await.unwrap_err();
    }
    // Each run starts at the last position recorded, note 2, inclusively.
    assert_eq!(*seen.lock().unwrap(), [1, 2, 2]);
    run(&store, &config, &seen, &calls).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2, 2, 2, 4, 5]);
    assert_eq!(
        *calls.lock().unwrap(),
        8,
        "note 3 handled in the first two runs only"
    );
    let parked = read_parked(&store, &config).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].global_position, parked[0].failures), (3, 2));
    assert_eq!(parked[0].error, "cannot take 3");
    assert_eq!(failures(&store).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn with_park_after_retries_the_message_is_retried_then_parked_in_one_run() {
    let store = MemoryStore::new();
    notes(&store, 5).await;
    let config = ConsumerConfig {
        handler_retry_ms: vec![10, 10],
        park_after_retries: true,
        ..config()
    };
    let (seen, calls) = Default::default();
    run(&store, &config, &seen, &calls).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2, 4, 5]);
    assert_eq!(*calls.lock().unwrap(), 4 + 3, "note 3 tried three times");
    let parked = read_parked(&store, &config).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].global_position, parked[0].attempts), (3, 3));
    assert!(failures(&store).is_empty());
}
