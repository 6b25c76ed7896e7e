//! Poison messages on a real component binary (`src/bin/ebb-test-component.rs`)
//! and a real PostgreSQL, restarted as systemd's `Restart=on-failure`
//! restarts it: a note the handler always fails on ends every run (and is
//! recorded in `note:failures-component`) until it is parked in
//! `note:parked-component`.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ebb_consumer::{Failed, Parked};
use ebb_handler::{Writer, message};
use ebb_localpg::TestDatabase;
use ebb_message_store::{ExpectedVersion, Message, MessageStore, PgStore, StreamName, StreamQuery};
use ebb_tests::{database, store_for};

#[message]
struct Noted {
    n: i64,
}

fn start(db: &TestDatabase, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb-test-component"));
    command
        .env("DATABASE_URL", db.connection_string())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("EBB_TEST_HOOK_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    stderr
}

/// What a supervisor saw.
struct Supervised {
    /// The runs that ended: exit status and stderr.
    ended: Vec<(ExitStatus, String)>,
    /// The run still going when `done` became true, if it did.
    running: Option<Child>,
}

/// Runs the component as `Restart=on-failure` does: starts it, and starts
/// it again (after 50 ms) each time it exits non-zero, at most `max_runs`
/// times; stops watching once `done` holds while a run is going (the
/// whole within 20 s).
async fn supervise<F: Future<Output = bool>>(
    db: &TestDatabase,
    env: &[(&str, &str)],
    max_runs: usize,
    done: impl Fn() -> F,
) -> Supervised {
    let started = Instant::now();
    let mut ended = Vec::new();
    while ended.len() < max_runs {
        let mut child = start(db, env);
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "supervised for 20 s; runs ended: {}",
                ended.len()
            );
            if let Some(status) = child.try_wait().unwrap() {
                ended.push((status, stderr_of(&mut child)));
                break;
            }
            if done().await {
                return Supervised {
                    ended,
                    running: Some(child),
                };
            }
            // Polls the child and `done` until one of them says so.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if ended.last().is_some_and(|(status, _)| status.success()) {
            break;
        }
        // The supervisor's delay before a restart (`RestartSec`).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Supervised {
        ended,
        running: None,
    }
}

/// Stops a running component with SIGTERM; its exit status and stderr.
fn terminate(mut child: Child) -> (ExitStatus, String) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        // Polls the child until it has exited.
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, stderr_of(&mut child))
}

/// Writes notes 1..=count, each to `note-(n % 3)`; the stored messages.
async fn notes(store: &PgStore, count: i64) -> Vec<Message> {
    let mut written = Vec::new();
    for n in 1..=count {
        written.push(note(store, n).await);
    }
    written
}

/// Writes note `n` to `note-(n % 3)`; the stored message.
async fn note(store: &PgStore, n: i64) -> Message {
    let stream = StreamName::new("note", &(n % 3).to_string()).unwrap();
    let position = Writer::new(store.clone())
        .write(&stream, Noted { n }, ExpectedVersion::Any)
        .await
        .unwrap();
    let messages = store
        .get_stream_messages(stream.as_str(), &StreamQuery::new().position(position))
        .await
        .unwrap();
    messages[0].clone()
}

/// Waits until the component has handled note `n` (asked every 20 ms, at
/// most 20 s); the notes handled then, in order.
async fn until_handled(store: &PgStore, n: i64) -> Vec<i64> {
    let started = Instant::now();
    loop {
        let handled = handled(store).await;
        if handled.contains(&n) {
            return handled;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "note {n} not handled within 20 s: {handled:?}"
        );
        // Polls the handled stream until it holds the note.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stream<T: serde::de::DeserializeOwned>(store: &PgStore, name: &str) -> Vec<T> {
    store
        .get_stream_messages(name, &StreamQuery::new().batch_size(-1))
        .await
        .unwrap()
        .iter()
        .map(|message| message.data().unwrap())
        .collect()
}

/// The `n`s the component has handled, in order.
async fn handled(store: &PgStore) -> Vec<i64> {
    stream::<serde_json::Value>(store, "handled-1")
        .await
        .iter()
        .map(|data| data["n"].as_i64().unwrap())
        .collect()
}

async fn recorded_position(store: &PgStore) -> Option<i64> {
    let last = store
        .get_last_stream_message("note:position-component", None)
        .await
        .unwrap()?;
    Some(
        last.data::<serde_json::Value>().unwrap()["position"]
            .as_i64()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_parking_every_run_ends_on_the_poison_note_and_is_recorded() {
    let db = database().await;
    let store = store_for(&db, 2);
    let notes = notes(&store, 6).await;
    let poison = &notes[3];
    let supervised = supervise(&db, &[("EBB_TEST_FAIL_ON", "4")], 4, || async { false }).await;
    assert!(supervised.running.is_none());
    assert_eq!(supervised.ended.len(), 4);
    for (status, stderr) in &supervised.ended {
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("note 4 cannot be handled"), "{stderr}");
        assert!(stderr.contains("failure recorded"), "{stderr}");
    }
    // Note 3 is handled again at every start (the position is inclusive);
    // nothing after the poison note ever is.
    let handled = handled(&store).await;
    assert_eq!(handled[..3], [1, 2, 3], "{handled:?}");
    assert!(handled.iter().all(|&n| n <= 3), "{handled:?}");
    assert_eq!(
        recorded_position(&store).await,
        Some(notes[2].global_position)
    );
    let failures: Vec<Failed> = stream(&store, "note:failures-component").await;
    let expected = Failed {
        stream_name: "note-1".into(),
        position: poison.position,
        global_position: poison.global_position,
        type_name: "Noted".into(),
        error: "note 4 cannot be handled".into(),
        attempts: 1,
        transient: false,
    };
    assert_eq!(failures, vec![expected; 4]);
    assert!(
        stream::<Parked>(&store, "note:parked-component")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_k_3_the_poison_note_is_parked_at_the_fourth_start_and_the_rest_handled_once() {
    let db = database().await;
    let store = store_for(&db, 2);
    // The poison note comes first, so that no note is handled again at a
    // restart (the position is inclusive): each of the others is handled
    // exactly once.
    let notes = notes(&store, 6).await;
    let poison = &notes[0];
    let env = [
        ("EBB_TEST_FAIL_ON", "1"),
        ("EBB_TEST_PARK_AFTER_FAILURES", "3"),
    ];
    let supervised = supervise(&db, &env, 6, || async { handled(&store).await.len() >= 5 }).await;
    assert_eq!(supervised.ended.len(), 3, "three runs end on the note");
    for (status, stderr) in &supervised.ended {
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("note 1 cannot be handled"), "{stderr}");
    }
    let running = supervised.running.expect("the fourth run goes on");
    // Nothing more comes: nothing is handled twice. A note written now is
    // handled after anything the run could still handle again (it reads
    // in global order, and this note is last): once it is, nothing else
    // has been.
    let marker = note(&store, 7).await;
    assert_eq!(until_handled(&store, 7).await, [2, 3, 4, 5, 6, 7]);
    let (status, stderr) = terminate(running);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("message parked"), "{stderr}");
    assert!(!stderr.contains("handler failed"), "not handled: {stderr}");
    assert_eq!(
        recorded_position(&store).await,
        Some(marker.global_position)
    );
    let parked: Vec<Parked> = stream(&store, "note:parked-component").await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let parked = &parked[0];
    assert_eq!(
        (
            parked.id,
            parked.stream_name.as_str(),
            parked.position,
            parked.global_position,
            parked.type_name.as_str(),
        ),
        (
            poison.id,
            "note-1",
            poison.position,
            poison.global_position,
            "Noted"
        )
    );
    assert_eq!(parked.data, serde_json::json!({ "n": 1 }));
    assert_eq!(parked.metadata, poison.metadata);
    assert_eq!(
        (parked.error.as_str(), parked.failures, parked.attempts),
        ("note 1 cannot be handled", 3, 1)
    );
    let failures: Vec<Failed> = stream(&store, "note:failures-component").await;
    assert_eq!(failures.len(), 3, "parking is not a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_park_after_retries_the_note_is_tried_three_times_and_parked_in_one_run() {
    let db = database().await;
    let store = store_for(&db, 2);
    let notes = notes(&store, 5).await;
    let env = [
        ("EBB_TEST_FAIL_ON", "3"),
        ("EBB_TEST_HANDLER_RETRY_MS", "10,10"),
        ("EBB_TEST_PARK_AFTER_RETRIES", "1"),
    ];
    let supervised = supervise(&db, &env, 3, || async { handled(&store).await.len() >= 4 }).await;
    assert!(supervised.ended.is_empty(), "no run ended");
    let running = supervised.running.expect("the run goes on");
    let (status, stderr) = terminate(running);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(handled(&store).await, [1, 2, 4, 5]);
    assert_eq!(
        stderr.matches("handler failed; trying again").count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("message parked"), "{stderr}");
    let parked: Vec<Parked> = stream(&store, "note:parked-component").await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(
        (
            parked[0].global_position,
            parked[0].attempts,
            parked[0].failures,
            parked[0].error.as_str()
        ),
        (notes[2].global_position, 3, 0, "note 3 cannot be handled")
    );
    assert!(
        stream::<Failed>(&store, "note:failures-component")
            .await
            .is_empty()
    );
    assert_eq!(
        recorded_position(&store).await,
        Some(notes[4].global_position)
    );
}
