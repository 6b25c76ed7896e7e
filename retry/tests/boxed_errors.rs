//! `Retry::run_boxed` and `Retry::run_blocking_boxed`: operations whose
//! error is a `Box<dyn Error + Send + Sync>` or an `anyhow::Error`, as
//! handlers commonly return. The error inside the box is what rules match
//! (in its whole source chain), and `RetryError::into_last` gives back the
//! very error the last attempt raised.

mod common;

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{Attempts, ms, network};
use ebb_retry::{Event, Retry, RetryError, Rule, StopReason, find_in_chain};

type BoxError = Box<dyn Error + Send + Sync>;

/// A database client's error: not an `io::Error`, and numbered by the
/// attempt that raised it so a test can tell which error came back.
#[derive(Debug)]
struct DbError {
    attempt: u32,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database unavailable (attempt {})", self.attempt)
    }
}

impl Error for DbError {}

/// An error no policy here retries, numbered like [`DbError`].
#[derive(Debug)]
struct Rejected {
    attempt: u32,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command rejected (attempt {})", self.attempt)
    }
}

impl Error for Rejected {}

fn reset() -> io::Error {
    io::Error::from(io::ErrorKind::ConnectionReset)
}

fn retry_io_at_100_then_200() -> Retry {
    Retry::intervals_ms([100, 200])
        .retry_on::<io::Error>()
        .build()
        .unwrap()
}

// Box<dyn Error + Send + Sync>

#[tokio::test(start_paused = true)]
async fn box_an_io_error_in_the_box_is_retried_per_the_intervals_then_succeeds() {
    let retry = retry_io_at_100_then_200();
    let attempts = Attempts::new();
    let value = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move {
                if cycle < 2 {
                    Err(BoxError::from(reset()))
                } else {
                    Ok(cycle)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(attempts.cycles(), [0, 1, 2]);
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn box_an_io_error_in_the_boxed_errors_source_chain_is_retried() {
    // The box holds an AppError; the io::Error is its source.
    let retry = retry_io_at_100_then_200();
    let attempts = Attempts::new();
    let value = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move {
                if cycle == 0 {
                    Err(BoxError::from(network()))
                } else {
                    Ok(cycle)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 1);
    assert_eq!(attempts.waits(), [ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn box_a_non_matching_error_is_returned_at_once_as_the_very_error() {
    let retry = retry_io_at_100_then_200();
    let attempts = Attempts::new();
    let raised_at = Cell::new(std::ptr::null::<()>());
    let err = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            let error: BoxError = Box::new(Rejected { attempt: cycle });
            raised_at.set(raised_at_of(&error).cast());
            async move { Err::<(), _>(error) }
        })
        .await
        .unwrap_err();

    assert_eq!(attempts.count(), 1);
    assert_eq!(attempts.elapsed(), Duration::ZERO);
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.reason(), StopReason::NotRetryable);
    let last = err.into_last();
    assert!(
        std::ptr::addr_eq(raised_at_of(&last), raised_at.get()),
        "the box raised is the box returned, not a copy or a re-boxing"
    );
    assert_eq!(last.downcast::<Rejected>().unwrap().attempt, 0);
}

/// Where a boxed error lives on the heap.
fn raised_at_of(error: &BoxError) -> *const (dyn Error + Send + Sync) {
    &**error
}

#[tokio::test(start_paused = true)]
async fn box_when_the_intervals_are_spent_every_error_comes_back_in_order() {
    let retry = Retry::new([100, 200]).unwrap();
    let attempts = Attempts::new();
    let err = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move { Err::<(), _>(BoxError::from(DbError { attempt: cycle })) }
        })
        .await
        .unwrap_err();

    assert!(err.is_depleted());
    assert_eq!(err.attempts(), 3);
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
    let order: Vec<u32> = err
        .errors()
        .map(|e| e.downcast_ref::<DbError>().unwrap().attempt)
        .collect();
    assert_eq!(order, [0, 1, 2]);
    assert_eq!(err.into_last().downcast::<DbError>().unwrap().attempt, 2);
}

/// A handler that keeps its own error type: `?` after `into_last`.
async fn handle(retry: &Retry, fail_with: fn(u32) -> BoxError) -> Result<u32, BoxError> {
    let attempt = retry
        .run_boxed(|cycle| async move { Err::<u32, _>(fail_with(cycle)) })
        .await
        .map_err(RetryError::into_last)?;
    Ok(attempt + 1)
}

#[tokio::test(start_paused = true)]
async fn box_a_handler_returns_the_last_error_as_its_own() {
    let retry = retry_io_at_100_then_200();
    let err = handle(&retry, |cycle| Box::new(Rejected { attempt: cycle }))
        .await
        .unwrap_err();
    assert_eq!(err.downcast_ref::<Rejected>().unwrap().attempt, 0);

    let err = handle(&retry, |_| reset().into()).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<io::Error>().unwrap().kind(),
        io::ErrorKind::ConnectionReset
    );
}

#[tokio::test(start_paused = true)]
async fn box_rules_with_predicates_and_their_own_limits_see_the_error_in_the_box() {
    let retry = Retry::intervals_ms([10; 5])
        .rule(
            Rule::when::<io::Error>(|e| e.kind() == io::ErrorKind::TimedOut)
                .max_retries(2)
                .named("timeout"),
        )
        .build()
        .unwrap();

    let attempts = Attempts::new();
    let err = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async { Err::<(), _>(BoxError::from(io::Error::from(io::ErrorKind::TimedOut))) }
        })
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 3, "two retries, then the rule's limit");
    assert_eq!(err.reason(), StopReason::KindBudgetExhausted);

    // An io::Error of another kind fails the predicate: not retried.
    let err = retry
        .run_boxed(|_| async { Err::<(), _>(BoxError::from(reset())) })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert!(err.is_not_retryable());
}

#[tokio::test(start_paused = true)]
async fn box_events_carry_the_error_in_the_box() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let retry = Retry::intervals_ms([100])
        .on_event(move |event| {
            if let Event::Failed { error, .. } | Event::GaveUp { error, .. } = event {
                let kind = error.downcast_ref::<io::Error>().map(io::Error::kind);
                sink.lock().unwrap().push(kind);
            }
        })
        .build()
        .unwrap();
    retry
        .run_boxed(|_| async { Err::<(), _>(BoxError::from(reset())) })
        .await
        .unwrap_err();
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(io::ErrorKind::ConnectionReset); 2],
        "the top of the chain is the io::Error itself, not a wrapper"
    );
}

#[tokio::test(start_paused = true)]
async fn box_the_future_is_send_and_runs_on_spawned_tasks() {
    let retry = Retry::new([10, 10]).unwrap();
    let handle = tokio::spawn(async move {
        retry
            .run_boxed(|cycle| async move {
                tokio::task::yield_now().await;
                if cycle < 2 {
                    Err(BoxError::from(network()))
                } else {
                    Ok(cycle)
                }
            })
            .await
            .map_err(RetryError::into_last)
    });
    assert_eq!(handle.await.unwrap().unwrap(), 2);
}

// anyhow::Error

#[tokio::test(start_paused = true)]
async fn anyhow_an_io_error_inside_is_retried_per_the_intervals_then_succeeds() {
    let retry = retry_io_at_100_then_200();
    let attempts = Attempts::new();
    let value = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move {
                if cycle < 2 {
                    Err(anyhow::Error::from(reset()))
                } else {
                    Ok(cycle)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(attempts.cycles(), [0, 1, 2]);
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn anyhow_a_custom_error_behind_context_is_retried_then_succeeds() {
    let retry = Retry::intervals_ms([100, 200])
        .retry_on::<DbError>()
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let value = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move {
                let row = if cycle < 2 {
                    Err(DbError { attempt: cycle })
                } else {
                    Ok(cycle)
                };
                row.context("loading account")
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn anyhow_an_io_error_two_sources_down_is_retried() {
    // context -> AppError::Network -> io::Error
    let retry = retry_io_at_100_then_200();
    let attempts = Attempts::new();
    let value = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move {
                let written = if cycle == 0 {
                    Err(network())
                } else {
                    Ok(cycle)
                };
                written.context("writing event")
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 1);
    assert_eq!(attempts.waits(), [ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn anyhow_a_non_matching_error_is_returned_at_once_as_the_very_error() {
    let retry = retry_io_at_100_then_200();
    let attempts = Attempts::new();
    let err = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move { Err::<(), _>(Rejected { attempt: cycle }).context("handling command") }
        })
        .await
        .unwrap_err();

    assert_eq!(attempts.count(), 1);
    assert_eq!(attempts.elapsed(), Duration::ZERO);
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.reason(), StopReason::NotRetryable);
    let last: anyhow::Error = err.into_last();
    assert_eq!(
        format!("{last:#}"),
        "handling command: command rejected (attempt 0)"
    );
    assert_eq!(last.downcast::<Rejected>().unwrap().attempt, 0);
}

#[tokio::test(start_paused = true)]
async fn anyhow_when_the_intervals_are_spent_the_last_error_comes_back() {
    let retry = Retry::intervals_ms([100, 200])
        .retry_on::<DbError>()
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = retry
        .run_boxed(|cycle| {
            attempts.record(cycle);
            async move { Err::<(), _>(DbError { attempt: cycle }).context("loading account") }
        })
        .await
        .unwrap_err();

    assert!(err.is_depleted());
    assert_eq!(err.attempts(), 3);
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
    let last = err.into_last();
    assert_eq!(last.to_string(), "loading account");
    assert_eq!(last.downcast_ref::<DbError>().unwrap().attempt, 2);
}

#[tokio::test(start_paused = true)]
async fn anyhow_events_see_the_context_with_the_error_as_its_source() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let retry = Retry::intervals_ms([100])
        .retry_on::<DbError>()
        .on_event(move |event| {
            if let Event::Failed { error, .. } = event {
                let attempt = find_in_chain::<DbError>(*error).map(|e| e.attempt);
                sink.lock().unwrap().push((error.to_string(), attempt));
            }
        })
        .build()
        .unwrap();
    retry
        .run_boxed(|cycle| async move {
            let row = if cycle == 0 {
                Err(DbError { attempt: cycle })
            } else {
                Ok(())
            };
            row.context("loading account")
        })
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [("loading account".to_owned(), Some(0))]
    );
}

// The blocking form

#[test]
fn blocking_box_an_io_error_is_retried_then_a_non_matching_one_returned_at_once() {
    let retry = Retry::intervals_ms([5, 10])
        .retry_on::<io::Error>()
        .build()
        .unwrap();

    let mut cycles = Vec::new();
    let started = Instant::now();
    let value = retry
        .run_blocking_boxed(|cycle| {
            cycles.push(cycle);
            if cycle < 2 {
                Err(BoxError::from(reset()))
            } else {
                Ok(cycle)
            }
        })
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(cycles, [0, 1, 2]);
    assert!(started.elapsed() >= ms(15), "slept 5 ms, then 10 ms");

    let mut cycles = Vec::new();
    let err = retry
        .run_blocking_boxed(|cycle| {
            cycles.push(cycle);
            if cycle == 0 {
                Err::<(), _>(BoxError::from(network()))
            } else {
                Err(Box::new(Rejected { attempt: cycle }))
            }
        })
        .unwrap_err();
    assert_eq!(cycles, [0, 1], "the io::Error in the chain was retried");
    assert_eq!(err.attempts(), 2);
    assert!(err.is_not_retryable());
    assert_eq!(err.into_last().downcast::<Rejected>().unwrap().attempt, 1);
}

#[test]
fn blocking_anyhow_a_custom_error_behind_context_is_retried_until_depleted() {
    let retry = Retry::intervals_ms([1, 1])
        .retry_on::<DbError>()
        .build()
        .unwrap();
    let mut cycles = Vec::new();
    let err = retry
        .run_blocking_boxed(|cycle| {
            cycles.push(cycle);
            Err::<(), _>(DbError { attempt: cycle }).context("loading account")
        })
        .unwrap_err();
    assert_eq!(cycles, [0, 1, 2]);
    assert!(err.is_depleted());
    assert_eq!(
        err.into_last().downcast_ref::<DbError>().unwrap().attempt,
        2
    );

    let err = retry
        .run_blocking_boxed(|_| Err::<(), _>(anyhow::anyhow!("bad request")))
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert!(err.is_not_retryable());
    assert_eq!(err.into_last().to_string(), "bad request");
}
