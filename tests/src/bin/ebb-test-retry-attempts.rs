//! A process that retries an operation which always fails, counting its
//! attempts in the message store (`ebb_handler::StoredAttempts`), for the
//! test that kills it between attempts and starts it again
//! (`tests/tests/retry_attempts.rs`).
//!
//! | variable | meaning |
//! |---|---|
//! | `DATABASE_URL` | the store |
//! | `EBB_TEST_RETRY_KEY` | the key the attempts are counted under |
//! | `EBB_TEST_RETRY_MS` | the policy's intervals, comma-separated |
//!
//! On stdout, one line each: `attempt N` when attempt N starts, `failed N`
//! once its failure is counted and the wait begins, and at the end
//! `gave up after N attempts in this run` (exit 3) or `exhausted after N
//! failures` (exit 4, the operation not run). Exit 1 for anything else.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{self, Write as _};
use std::process::ExitCode;

use ebb_handler::StoredAttempts;
use ebb_message_store::PgStore;
use ebb_retry::{Event, KeyedRetryError, Retry};

/// One line on stdout, flushed at once: the test reads it while this
/// process runs, and may kill it right after.
fn say(line: &str) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let store = match PgStore::from_env() {
        Ok(store) => store,
        Err(err) => {
            eprintln!("no store: {err}");
            return ExitCode::FAILURE;
        }
    };
    let key = std::env::var("EBB_TEST_RETRY_KEY").unwrap_or_else(|_| "job-1".into());
    let intervals: Vec<i64> = std::env::var("EBB_TEST_RETRY_MS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|ms| ms.trim().parse().ok())
        .collect();
    let retry = Retry::intervals_ms(intervals)
        .attempt_store(StoredAttempts::new(store))
        .on_event(|event| {
            if let Event::Failed { cycle, .. } = event {
                say(&format!("failed {cycle}"));
            }
        })
        .build();
    let retry = match retry {
        Ok(retry) => retry,
        Err(err) => {
            eprintln!("bad intervals: {err}");
            return ExitCode::FAILURE;
        }
    };

    let result = retry
        .run_keyed(&key, |cycle| async move {
            say(&format!("attempt {cycle}"));
            Err::<(), _>(io::Error::other("the service is down"))
        })
        .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(KeyedRetryError::GaveUp(err)) => {
            say(&format!(
                "gave up after {} attempts in this run",
                err.attempts()
            ));
            ExitCode::from(3)
        }
        Err(KeyedRetryError::Exhausted { failures, .. }) => {
            say(&format!("exhausted after {failures} failures"));
            ExitCode::from(4)
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
