//! The host in-process, on the in-memory store (the signal and systemd
//! side runs a real child process in the tests crate).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_consumer::{Consumer, ConsumerConfig, Error, Host, Task};
use ebb_handler::{BoxError, Dispatcher, Received, Writer, message};
use ebb_message_store::{ExpectedVersion, MemoryStore, StreamName};
use ebb_retry::Retry;

#[message]
struct Noted {
    n: i64,
}

/// A one-shot task that fails its first `failures` runs.
fn flaky(name: &str, failures: u32) -> (Task, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let task = Task::once(name, move || {
        let run = counted.fetch_add(1, Ordering::Relaxed);
        async move {
            if run < failures {
                Err(BoxError::from("not yet"))
            } else {
                Ok(())
            }
        }
    });
    (task, runs)
}

#[tokio::test(start_paused = true)]
async fn the_default_retry_applies_to_tasks_that_set_none() {
    let (task, runs) = flaky("warm-up", 2);
    Host::new()
        .default_retry(Retry::new([10, 10]).unwrap())
        .task(task)
        .run()
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::Relaxed), 3);

    let (task, runs) = flaky("warm-up", 2);
    let err = Host::new()
        .default_retry(Retry::new([10, 10]).unwrap())
        .task(task.retry(Retry::new([10]).unwrap()))
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Task { ref name, .. } if name == "warm-up"),
        "{err:?}"
    );
    assert_eq!(runs.load(Ordering::Relaxed), 2, "its own policy: one retry");

    let (task, _) = flaky("warm-up", 1);
    let err = Host::new().task(task).run().await.unwrap_err();
    assert!(matches!(err, Error::Task { .. }), "no default: no retry");
}

// Paused time: the slow hook's hour and its 50 ms bound pass on the
// runtime's clock, which moves on only while every task waits.
#[tokio::test(start_paused = true)]
async fn a_failing_consumer_stops_the_others_and_the_hooks_run_in_reverse() {
    let store = MemoryStore::new();
    Writer::new(store.clone())
        .write(
            &StreamName::new("note", "1").unwrap(),
            Noted { n: 1 },
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let failing = Consumer::new(ConsumerConfig::new("note"), store.clone())
        .unwrap()
        .handler(
            Dispatcher::new()
                .on(|_: Received<Noted>| async { Err::<(), _>(BoxError::from("broken")) }),
        );
    let idle = Consumer::<_, BoxError>::new(ConsumerConfig::new("other"), store.clone()).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let hook = |name: &'static str| {
        let order = Arc::clone(&order);
        move || async move {
            order.lock().unwrap().push(name);
            Ok(())
        }
    };
    let host = Host::new()
        .consumer(idle)
        .consumer(failing)
        .task(Task::every("tick", Duration::from_millis(10), || async {
            Ok(())
        }))
        .on_shutdown("first", hook("first"))
        .on_shutdown("second", hook("second"))
        .on_shutdown_within("slow", Duration::from_millis(50), || async {
            // A hook that takes longer than its bound: the behaviour under
            // test.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .on_shutdown("third", hook("third"));
    let err = tokio::time::timeout(Duration::from_secs(10), host.run())
        .await
        .expect("the host stops")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handler {
                global_position: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(*order.lock().unwrap(), ["third", "second", "first"]);
}

#[tokio::test]
async fn stopping_through_the_control_records_positions_and_returns_ok() {
    let store = MemoryStore::new();
    for n in 1..=3 {
        Writer::new(store.clone())
            .write(
                &StreamName::new("note", "1").unwrap(),
                Noted { n },
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let seen = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&seen);
    let consumer = Consumer::new(ConsumerConfig::new("note"), store.clone())
        .unwrap()
        .handler(Dispatcher::new().on(move |_: Received<Noted>| {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, BoxError>(()) }
        }));
    let host = Host::new().consumer(consumer);
    let control = host.control();
    let running = tokio::spawn(host.run());
    while seen.load(Ordering::Relaxed) < 3 {
        // Polls the count until the three are handled.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    control.stop();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the host stops")
        .unwrap()
        .unwrap();
    let positions = store.stream_messages("note:position");
    assert_eq!(positions.len(), 1);
    assert_eq!(
        positions[0].data::<serde_json::Value>().unwrap()["position"],
        3
    );
}
