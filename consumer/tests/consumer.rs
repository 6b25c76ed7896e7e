//! The consumer on the in-memory store: order, positions, resuming,
//! polling, errors. (Against PostgreSQL: the tests crate.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_consumer::{Consumer, ConsumerConfig, Control, Error, OnError};
use ebb_handler::{BoxError, Dispatcher, Received, Writer, message};
use ebb_message_store::{ExpectedVersion, MemoryStore, MessageData, MessageStore, StreamName};
use serde_json::json;

#[message]
#[derive(Debug, Clone)]
struct Noted {
    n: i64,
}

async fn note(store: &MemoryStore, stream: &str, n: i64) {
    Writer::new(store.clone())
        .write(
            &StreamName::parse(stream).unwrap(),
            Noted { n },
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
}

/// Handlers that record every `n` they see, and fail on `fail_on`.
fn recording(seen: &Arc<Mutex<Vec<i64>>>, fail_on: Option<i64>) -> Dispatcher {
    let seen = Arc::clone(seen);
    Dispatcher::new().on(move |noted: Received<Noted>| {
        let seen = Arc::clone(&seen);
        async move {
            if Some(noted.n) == fail_on {
                return Err::<(), BoxError>(format!("cannot take {}", noted.n).into());
            }
            seen.lock().unwrap().push(noted.n);
            Ok(())
        }
    })
}

fn config(batch_size: i64, interval: u64) -> ConsumerConfig {
    ConsumerConfig {
        identifier: Some("test".into()),
        batch_size,
        position_update_interval: interval,
        ..ConsumerConfig::new("note")
    }
}

async fn recorded_positions(store: &MemoryStore) -> Vec<i64> {
    store
        .stream_messages("note:position-test")
        .iter()
        .map(|m| {
            assert_eq!(m.type_name, "Recorded");
            m.data.to_value().unwrap()["position"].as_i64().unwrap()
        })
        .collect()
}

/// Runs `consumer` until it has seen `count` messages, then stops it.
async fn consume_until(
    consumer: &Consumer<MemoryStore>,
    seen: &Arc<Mutex<Vec<i64>>>,
    count: usize,
) -> Result<(), Error> {
    let control = Control::new();
    let stopper = {
        let (control, seen) = (control.clone(), Arc::clone(seen));
        tokio::spawn(async move {
            while seen.lock().unwrap().len() < count {
                // Polls what was handled until there are `count`.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            control.stop();
        })
    };
    let result = tokio::time::timeout(Duration::from_secs(10), consumer.run(&control))
        .await
        .expect("the consumer stops when told");
    stopper.abort();
    result
}

#[tokio::test]
async fn messages_are_handled_in_order_and_positions_recorded_every_interval_and_on_stop() {
    let store = MemoryStore::new();
    for n in 1..=25 {
        note(&store, &format!("note-{}", n % 4), n).await;
    }
    // A message of a type nobody handles is passed over, and counts.
    store
        .write(
            &StreamName::parse("note-9").unwrap(),
            &MessageData::new("Ignored", json!({})),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::new(config(7, 10), store.clone())
        .unwrap()
        .handler(recording(&seen, None));
    consume_until(&consumer, &seen, 25).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), (1..=25).collect::<Vec<_>>());
    // Every 10 messages, and the last one on stop (the ignored one, 26).
    let positions = recorded_positions(&store).await;
    assert_eq!(positions[..2], [10, 20], "{positions:?}");
    assert_eq!(*positions.last().unwrap(), 26, "{positions:?}");
}

#[tokio::test]
async fn a_consumer_resumes_from_the_recorded_position_inclusively() {
    let store = MemoryStore::new();
    for n in 1..=10 {
        note(&store, "note-1", n).await;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let first = Consumer::new(config(100, 1_000), store.clone())
        .unwrap()
        .handler(recording(&seen, None));
    consume_until(&first, &seen, 10).await.unwrap();
    assert_eq!(recorded_positions(&store).await, [10]);

    for n in 11..=12 {
        note(&store, "note-1", n).await;
    }
    let again = Arc::new(Mutex::new(Vec::new()));
    let second = Consumer::new(config(100, 1_000), store.clone())
        .unwrap()
        .handler(recording(&again, None));
    consume_until(&second, &again, 3).await.unwrap();
    assert_eq!(
        *again.lock().unwrap(),
        [10, 11, 12],
        "from the recorded one on"
    );
}

#[tokio::test]
async fn a_handler_error_stops_the_consumer_before_the_message() {
    let store = MemoryStore::new();
    for n in 1..=6 {
        note(&store, "note-1", n).await;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::new(config(100, 2), store.clone())
        .unwrap()
        .handler(recording(&seen, Some(5)));
    let err = tokio::time::timeout(Duration::from_secs(10), consumer.run(&Control::new()))
        .await
        .expect("the error stops it")
        .unwrap_err();
    let Error::Handler {
        global_position,
        type_name,
        ref error,
        ..
    } = err
    else {
        panic!("a handler error: {err:?}");
    };
    assert_eq!((global_position, type_name.as_str()), (5, "Noted"));
    assert_eq!(error.to_string(), "cannot take 5");
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4]);
    // Never past the failed message.
    assert_eq!(recorded_positions(&store).await, [2, 4]);
}

#[tokio::test]
async fn a_message_that_does_not_decode_stops_the_consumer_and_names_it() {
    let store = MemoryStore::new();
    note(&store, "note-1", 1).await;
    store
        .write(
            &StreamName::parse("note-1").unwrap(),
            &MessageData::new("Noted", json!({ "n": "two" })),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::new(config(100, 100), store.clone())
        .unwrap()
        .handler(recording(&seen, None));
    let err = consumer.run(&Control::new()).await.unwrap_err();
    let text = ebb_retry::Chain::new(&err).to_string();
    assert!(text.contains("Noted at position 1 of note-1"), "{text}");
    assert!(text.contains("invalid type"), "{text}");
    assert_eq!(recorded_positions(&store).await, [1]);
}

#[tokio::test]
async fn the_error_hook_may_go_on() {
    let store = MemoryStore::new();
    for n in 1..=4 {
        note(&store, "note-1", n).await;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::new(config(100, 100), store.clone())
        .unwrap()
        .handler(recording(&seen, Some(2)))
        .on_error({
            let hooked = Arc::clone(&hooked);
            move |err, message| {
                hooked
                    .lock()
                    .unwrap()
                    .push((message.global_position, err.to_string()));
                OnError::Continue
            }
        });
    consume_until(&consumer, &seen, 3).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 3, 4]);
    assert_eq!(*hooked.lock().unwrap(), [(2, "cannot take 2".to_owned())]);
}

/// Runs `consumer` on a task of its own: the control that stops it, and
/// the task, which gives back how the run ended.
fn in_background(
    consumer: Consumer<MemoryStore>,
) -> (
    Control,
    tokio::task::JoinHandle<Result<(), ebb_consumer::Error>>,
) {
    let control = Control::new();
    let running = tokio::spawn({
        let control = control.clone();
        async move { consumer.run(&control).await }
    });
    (control, running)
}

#[tokio::test(start_paused = true)]
async fn a_caught_up_consumer_polls_at_its_interval() {
    let store = MemoryStore::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (control, running) = in_background(
        Consumer::new(
            ConsumerConfig {
                poll_interval: Duration::from_secs(5),
                wake_on_notify: false,
                ..config(100, 100)
            },
            store.clone(),
        )
        .unwrap()
        .handler(recording(&seen, None)),
    );
    // Paused time: returns once every task is idle, the consumer caught up.
    tokio::time::sleep(Duration::from_millis(10)).await;
    note(&store, "note-1", 1).await;
    // Paused time: 4 s, short of the 5 s poll interval under test.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "not before the poll interval"
    );
    // Paused time: past the 5 s poll interval, the behaviour under test.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(*seen.lock().unwrap(), [1]);
    control.stop();
    running.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_caught_up_consumer_is_woken_by_a_write_before_its_poll() {
    for concurrency in [1, 4] {
        let store = MemoryStore::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (control, running) = in_background(
            Consumer::new(
                ConsumerConfig {
                    poll_interval: Duration::from_secs(5),
                    concurrency,
                    ..config(100, 100)
                },
                store.clone(),
            )
            .unwrap()
            .handler(recording(&seen, None)),
        );
        // Paused time: returns once every task is idle, the consumer caught up and armed.
        tokio::time::sleep(Duration::from_millis(10)).await;
        for n in 1..=3 {
            note(&store, &format!("note-{n}"), n).await;
            // Paused time: returns once every task is idle, the write's wake-up handled.
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(
                seen.lock().unwrap().len(),
                n as usize,
                "concurrency {concurrency}: woken at once, not at the poll"
            );
        }
        control.stop();
        running.await.unwrap().unwrap();
    }
}

#[test]
fn a_stream_name_is_refused_where_a_category_is_needed() {
    let err = Consumer::<MemoryStore>::new(ConsumerConfig::new("note-1"), MemoryStore::new())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}
