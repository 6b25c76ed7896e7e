//! A component for the host's tests, run as a child process: a consumer of
//! `note` whose handler records each `Noted` in the stream `handled-1`, an
//! interval task, and two shutdown hooks that append their names to a
//! file. What it does wrong on purpose is set by the environment:
//!
//! | variable | effect |
//! |---|---|
//! | `DATABASE_URL` | the store |
//! | `EBB_TEST_HOOK_LOG` | the file the shutdown hooks append to |
//! | `EBB_TEST_FAIL_ON` | the handler fails on the note with this `n` |
//! | `EBB_TEST_PANIC_TASK` | a one-shot task panics |
//! | `EBB_TEST_HANDLE_MS` | the handler takes this long per note |
//! | `EBB_TEST_METRICS_ADDR` | the host serves Prometheus metrics here |
//! | `EBB_TEST_PARK_AFTER_FAILURES` | the consumer's `park_after_failures` (K) |
//! | `EBB_TEST_HANDLER_RETRY_MS` | the consumer's `handler_retry_ms`, comma-separated (`10,10`) |
//! | `EBB_TEST_PARK_AFTER_RETRIES` | set: the consumer's `park_after_retries` |

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use ebb_consumer::{Consumer, ConsumerConfig, Host, Task};
use ebb_handler::{BoxError, Dispatcher, Received, Writer, message};
use ebb_message_store::{ExpectedVersion, PgStore, StreamName};

#[message]
struct Noted {
    n: i64,
}

#[message]
struct Handled {
    n: i64,
    global_position: i64,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn hook(name: &'static str) -> impl FnOnce() -> futures_util::future::Ready<Result<(), BoxError>> {
    move || {
        let result = var("EBB_TEST_HOOK_LOG").map_or(Ok(()), |path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| writeln!(file, "{name}"))
        });
        futures_util::future::ready(result.map_err(BoxError::from))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::stderr)
        .init();
    let store = match PgStore::from_env() {
        Ok(store) => store,
        Err(err) => {
            tracing::error!(error = %err, "no store");
            return ExitCode::FAILURE;
        }
    };
    let fail_on: Option<i64> = var("EBB_TEST_FAIL_ON").and_then(|n| n.parse().ok());
    let handle_ms: u64 = var("EBB_TEST_HANDLE_MS")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    let park_after_failures: Option<u32> =
        var("EBB_TEST_PARK_AFTER_FAILURES").and_then(|k| k.parse().ok());
    let handler_retry_ms: Vec<u64> = var("EBB_TEST_HANDLER_RETRY_MS")
        .map(|list| {
            list.split(',')
                .filter_map(|ms| ms.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let writer = Writer::new(store.clone());
    let handlers = Dispatcher::new().on(move |noted: Received<Noted>| {
        let writer = writer.clone();
        async move {
            // A handler that takes time (EBB_TEST_HANDLE_MS): the message in
            // hand when a signal comes.
            tokio::time::sleep(Duration::from_millis(handle_ms)).await;
            if Some(noted.n) == fail_on {
                return Err(BoxError::from(format!(
                    "note {} cannot be handled",
                    noted.n
                )));
            }
            let handled = Handled {
                n: noted.n,
                global_position: noted.global_position(),
            };
            writer
                .write(
                    &StreamName::new("handled", "1")?,
                    handled,
                    ExpectedVersion::Any,
                )
                .await?;
            Ok(())
        }
    });
    let consumer = match Consumer::new(
        ConsumerConfig {
            identifier: Some("component".into()),
            poll_interval: Duration::from_millis(50),
            position_update_interval: 1_000,
            park_after_failures,
            handler_retry_ms,
            park_after_retries: var("EBB_TEST_PARK_AFTER_RETRIES").is_some(),
            ..ConsumerConfig::new("note")
        },
        store,
    ) {
        Ok(consumer) => consumer.handler(handlers),
        Err(err) => {
            tracing::error!(error = %err, "bad settings");
            return ExitCode::FAILURE;
        }
    };
    let mut host = Host::new()
        .consumer(consumer)
        .task(Task::every("tick", Duration::from_millis(100), || async {
            Ok(())
        }))
        .on_shutdown("first", hook("first"))
        .on_shutdown("second", hook("second"));
    if let Some(addr) = var("EBB_TEST_METRICS_ADDR") {
        match addr.parse() {
            Ok(addr) => host = host.metrics_endpoint(addr),
            Err(err) => {
                tracing::error!(%addr, error = %err, "EBB_TEST_METRICS_ADDR is not an address");
                return ExitCode::FAILURE;
            }
        }
    }
    if var("EBB_TEST_PANIC_TASK").is_some() {
        host = host.task(Task::once("doomed", || async {
            // A task that works a while before it fails: the host is up
            // and consuming when it panics.
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!("the doomed task gives up");
        }));
    }
    host.run_to_exit().await
}
