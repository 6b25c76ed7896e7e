//! `Retry::run_blocking`: the same policy and decisions as the async form,
//! with the thread sleeping between attempts. Waits here are a few
//! milliseconds of real time at most, except where cancellation cuts a
//! long wait short.

mod common;

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use common::{AppError, ms, network};
use ebb_retry::{CancellationToken, Retry, Rule, StopReason};

#[test]
fn eventide_semantics_hold_in_the_blocking_form() {
    let retry = Retry::new([0, 0]).unwrap();
    let mut cycles = Vec::new();
    let err = retry
        .run_blocking(|cycle| {
            cycles.push(cycle);
            Err::<(), _>(AppError::Fatal(["a", "b", "c", "d"][cycle as usize]))
        })
        .unwrap_err();
    assert_eq!(cycles, [0, 1, 2]);
    assert!(err.is_depleted());
    let all: Vec<_> = err.into_errors().iter().map(ToString::to_string).collect();
    assert_eq!(all, ["fatal: a", "fatal: b", "fatal: c"]);
}

#[test]
fn the_thread_sleeps_each_interval() {
    let retry = Retry::new([5, 10]).unwrap();
    let started = Instant::now();
    let value = retry
        .run_blocking(|cycle| if cycle < 2 { Err(network()) } else { Ok(cycle) })
        .unwrap();
    assert_eq!(value, 2);
    assert!(started.elapsed() >= ms(15));
}

#[test]
fn an_error_not_listed_is_returned_at_once() {
    let retry = Retry::intervals_ms([1000])
        .retry_on::<io::Error>()
        .build()
        .unwrap();
    let started = Instant::now();
    let err = retry
        .run_blocking(|_| Err::<(), _>(AppError::Conflict))
        .unwrap_err();
    assert!(err.is_not_retryable());
    assert_eq!(err.attempts(), 1);
    assert!(started.elapsed() < ms(500));
}

#[test]
fn cancellation_from_another_thread_ends_the_sleep() {
    let token = CancellationToken::new();
    let retry = Retry::intervals_ms([60_000])
        .cancel_on(token.clone())
        .build()
        .unwrap();
    let canceller = thread::spawn(move || {
        thread::sleep(ms(20));
        token.cancel();
    });
    let started = Instant::now();
    let err = retry.run_blocking(|_| Err::<(), _>(network())).unwrap_err();
    canceller.join().unwrap();
    assert!(err.is_cancelled());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_time_limit_prevents_a_wait_that_would_overrun() {
    let retry = Retry::intervals_ms([5_000])
        .time_limit(ms(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = retry.run_blocking(|_| Err::<(), _>(network())).unwrap_err();
    assert_eq!(err.reason(), StopReason::TimeLimit);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn per_kind_budgets_apply_too() {
    let retry = Retry::intervals_ms([0; 10])
        .rule(Rule::when::<AppError>(|e| matches!(e, AppError::Conflict)).max_retries(1))
        .build()
        .unwrap();
    let err = retry
        .run_blocking(|_| Err::<(), _>(AppError::Conflict))
        .unwrap_err();
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.reason(), StopReason::KindBudgetExhausted);
}

#[test]
fn one_policy_serves_both_forms() {
    let retry = Retry::intervals_ms([0])
        .retry_on::<io::Error>()
        .build()
        .unwrap();
    let blocking = retry.run_blocking(|cycle| {
        if cycle == 0 {
            Err(network())
        } else {
            Ok(cycle)
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let non_blocking = rt.block_on(retry.run(|cycle| async move {
        if cycle == 0 {
            Err(network())
        } else {
            Ok(cycle)
        }
    }));
    // One retry each: both succeed on cycle 1.
    assert_eq!(blocking.unwrap(), 1);
    assert_eq!(non_blocking.unwrap(), 1);
}

#[test]
fn bad_configuration_is_a_typed_error_at_construction() {
    use ebb_retry::{ConfigError, Decorrelated, Exponential, RetryBudget};

    assert_eq!(
        Retry::new([100, -1]).unwrap_err(),
        ConfigError::NegativeInterval {
            index: 1,
            millis: -1
        }
    );
    assert!(matches!(
        Retry::intervals_ms([i64::MAX])
            .retry_on::<io::Error>()
            .build(),
        Err(ConfigError::IntervalTooLong { index: 0, .. })
    ));
    assert_eq!(
        Retry::intervals_ms([10])
            .time_limit(Duration::ZERO)
            .build()
            .unwrap_err(),
        ConfigError::ZeroTimeLimit
    );
    assert!(matches!(
        Exponential::new(ms(100), 0.5, ms(1000)),
        Err(ConfigError::InvalidMultiplier { .. })
    ));
    assert!(matches!(
        Exponential::new(ms(100), 2.0, ms(10)),
        Err(ConfigError::CapBelowInitial { .. })
    ));
    assert!(matches!(
        Decorrelated::new(ms(100), Duration::from_secs(7 * 24 * 3600)),
        Err(ConfigError::DelayTooLong {
            parameter: "cap",
            ..
        })
    ));
    assert!(matches!(
        RetryBudget::new(Duration::from_secs(10), 1, f64::NAN),
        Err(ConfigError::InvalidRetryRatio { .. })
    ));
    assert!(matches!(
        RetryBudget::new(Duration::from_secs(600), 1, 0.2),
        Err(ConfigError::InvalidBudgetWindow { .. })
    ));
}
