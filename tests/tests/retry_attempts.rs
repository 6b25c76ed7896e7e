//! `ebb_handler::StoredAttempts` on a real PostgreSQL: attempt counters in
//! the message store that two instances share, a keyed policy that
//! resumes its count with a new store and policy (as after a restart), and
//! a real process (`src/bin/ebb-test-retry-attempts.rs`) SIGKILLed between
//! attempts and started again, which gives up after the policy's limit in
//! total, not per process.

use std::future::{Ready, ready};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use ebb_handler::StoredAttempts;
use ebb_localpg::TestDatabase;
use ebb_message_store::{MessageStore, StreamQuery};
use ebb_retry::attempt_store::{AttemptCount, AttemptStore};
use ebb_retry::{KeyedRetryError, Retry, StopReason};
use ebb_tests::{database, store_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_counting_one_key_at_once_lose_no_count() {
    let db = database().await;
    let first = StoredAttempts::new(store_for(&db, 4));
    let second = StoredAttempts::new(store_for(&db, 4));
    let count = |attempts: StoredAttempts<_>| async move {
        for _ in 0..25 {
            attempts.record_failure("message-1").await.unwrap();
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(count(first.clone())),
        tokio::spawn(count(second.clone()))
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(first.load("message-1").await.unwrap().failures, 50);
    assert_eq!(second.load("message-1").await.unwrap().failures, 50);
    assert_eq!(
        first.load("message-2").await.unwrap(),
        AttemptCount::default()
    );
}

#[tokio::test]
async fn a_keyed_policy_resumes_its_count_after_a_restart_and_then_refuses_to_run() {
    let db = database().await;
    let policy = || {
        Retry::intervals_ms([0, 0, 0])
            .attempt_store(StoredAttempts::new(store_for(&db, 2)))
            .build()
            .unwrap()
    };

    // The first "process" is stopped (cancelled) in its second wait.
    let ran = Mutex::new(Vec::new());
    let token = ebb_retry::CancellationToken::new();
    let cancel_after_two = {
        let token = token.clone();
        let ran = &ran;
        move |cycle| {
            ran.lock().unwrap().push(cycle);
            if cycle == 1 {
                token.cancel();
            }
            async { Err::<(), _>(std::io::Error::other("down")) }
        }
    };
    let err = policy()
        .with_cancellation(token)
        .run_keyed("deposit-9", cancel_after_two)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_retry_error().map(ebb_retry::RetryError::reason),
        Some(StopReason::Cancelled)
    );
    assert_eq!(*ran.lock().unwrap(), [0, 1]);

    // A new policy and store, as after a restart: cycles 2 and 3 are left.
    let ran = Mutex::new(Vec::new());
    let err = policy()
        .run_keyed("deposit-9", failing(&ran))
        .await
        .unwrap_err();
    assert_eq!(*ran.lock().unwrap(), [2, 3]);
    let err = err.into_retry_error().unwrap();
    assert_eq!((err.attempts(), err.reason()), (2, StopReason::Depleted));

    // And after the next restart the operation does not run at all.
    let ran = Mutex::new(Vec::new());
    let err = policy()
        .run_keyed("deposit-9", failing(&ran))
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeyedRetryError::Exhausted { failures: 4, .. }),
        "{err:?}"
    );
    assert!(ran.lock().unwrap().is_empty());

    // Until the key is reset by hand; then it starts over and can succeed.
    StoredAttempts::new(store_for(&db, 1))
        .reset("deposit-9")
        .await
        .unwrap();
    let value = policy()
        .run_keyed("deposit-9", |cycle| async move {
            if cycle == 0 {
                Err(std::io::Error::other("once"))
            } else {
                Ok(cycle)
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 1);
    let store = store_for(&db, 1);
    let types: Vec<String> = store
        .get_stream_messages("retryAttempts-deposit-9", &StreamQuery::new())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.type_name)
        .collect();
    assert_eq!(
        types,
        [
            "AttemptFailed",
            "AttemptFailed",
            "AttemptFailed",
            "AttemptFailed",
            "AttemptsExhausted",
            "AttemptsReset",
            "AttemptFailed",
            "AttemptsReset",
        ]
    );
}

/// An operation that always fails, recording the cycles it ran.
fn failing(ran: &Mutex<Vec<u32>>) -> impl FnMut(u32) -> Ready<Result<(), std::io::Error>> + '_ {
    move |cycle| {
        ran.lock().unwrap().push(cycle);
        ready(Err(std::io::Error::other("down")))
    }
}

/// A run of the test binary, its stdout read line by line on a thread so
/// that the test can wait for a line with a time bound.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Run {
    fn start(db: &TestDatabase, intervals: &str) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ebb-test-retry-attempts"))
            .env("DATABASE_URL", db.connection_string())
            .env("EBB_TEST_RETRY_KEY", "job-42")
            .env("EBB_TEST_RETRY_MS", intervals)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Run { child, lines }
    }

    /// The next line; generous bound, for a slow shared machine.
    fn next_line(&self) -> Option<String> {
        self.lines.recv_timeout(Duration::from_secs(60)).ok()
    }

    /// SIGKILL, as a crash or the OOM killer would.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn exit_code(mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_attempts_gives_up_after_the_limit_in_total() {
    let db = database().await;
    // Five attempts in all, with a minute between them: every run below is
    // killed during a wait, long before the wait would end.
    let intervals = "60000,60000,60000,60000";
    tokio::task::spawn_blocking(move || {
        for cycle in 0..4 {
            let run = Run::start(&db, intervals);
            assert_eq!(
                run.next_line().as_deref(),
                Some(&*format!("attempt {cycle}"))
            );
            // Counted in the store before this line, so the kill loses nothing.
            assert_eq!(
                run.next_line().as_deref(),
                Some(&*format!("failed {cycle}"))
            );
            run.kill();
        }

        let last = Run::start(&db, intervals);
        assert_eq!(last.next_line().as_deref(), Some("attempt 4"));
        assert_eq!(
            last.next_line().as_deref(),
            Some("gave up after 1 attempts in this run")
        );
        assert_eq!(last.exit_code(), Some(3));

        // Restarted once more, it does not run the operation at all.
        let after = Run::start(&db, intervals);
        assert_eq!(
            after.next_line().as_deref(),
            Some("exhausted after 5 failures")
        );
        assert_eq!(after.exit_code(), Some(4));
        db
    })
    .await
    .unwrap();
}
