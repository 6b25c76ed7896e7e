//! `Retry::run_blocking`: the same policy and decisions as the async form,
//! with the thread sleeping between attempts. Waits here are a few
//! milliseconds of real time at most, except where cancellation cuts a
//! long wait short.

mod common;

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use common::{AppError, ms, network, thread_id, until_asleep};
use ebb_retry::{
    CancellationToken, Constant, Decision, Event, Intervals, Retry, RetryError, Rule, StopReason,
};

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

/// The cancellation comes once the attempt has failed (the hook's
/// `Failed`) and the thread sleeps in the wait that follows: it is the
/// wait that ends, not a check before it.
#[test]
fn cancellation_from_another_thread_ends_the_sleep() {
    let token = CancellationToken::new();
    let (failed, waiting) = std::sync::mpsc::channel();
    let retry = Retry::intervals_ms([60_000])
        .cancel_on(token.clone())
        .on_event(move |event| {
            if let Event::Failed { .. } = event {
                let _ = failed.send(());
            }
        })
        .build()
        .unwrap();
    let sleeper = thread_id();
    let canceller = thread::spawn(move || {
        waiting.recv().unwrap();
        until_asleep(&sleeper);
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

/// How many attempts a call made and why it stopped.
fn outcome<E>(err: &RetryError<E>) -> (usize, StopReason) {
    (err.attempts(), err.reason())
}

#[test]
fn type_rules_match_the_error_itself_its_sources_and_the_error_in_a_box() {
    // `never` first, then `on`: which one matches shows where the type was
    // found, whichever way the engine looked for it.
    let retry = Retry::intervals_ms([0])
        .rule(Rule::never::<io::Error>())
        .rule(Rule::on::<AppError>())
        .build()
        .unwrap();

    // The caller's error is the type itself.
    let err = retry
        .run_blocking(|_| Err::<(), _>(io::Error::other("down")))
        .unwrap_err();
    assert_eq!(outcome(&err), (1, StopReason::NotRetryable));
    // The type is the source of the caller's error: `never` still wins.
    let err = retry.run_blocking(|_| Err::<(), _>(network())).unwrap_err();
    assert_eq!(outcome(&err), (1, StopReason::NotRetryable));
    // Neither the error nor its sources: `on::<AppError>` matches it.
    let err = retry
        .run_blocking(|_| Err::<(), _>(AppError::Conflict))
        .unwrap_err();
    assert_eq!(outcome(&err), (2, StopReason::Depleted));

    // The same through a box, where only the error inside knows its type.
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let boxed = |make: fn() -> BoxError| {
        let err = retry
            .run_blocking_boxed(|_| Err::<(), _>(make()))
            .unwrap_err();
        outcome(&err)
    };
    assert_eq!(
        boxed(|| io::Error::other("down").into()),
        (1, StopReason::NotRetryable)
    );
    assert_eq!(boxed(|| network().into()), (1, StopReason::NotRetryable));
    assert_eq!(
        boxed(|| AppError::Conflict.into()),
        (2, StopReason::Depleted)
    );
}

/// Errors of distinct types, one per rule.
#[derive(Debug)]
struct Kind(u8);

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kind {}", self.0)
    }
}

impl std::error::Error for Kind {}

#[test]
fn rules_past_the_fourth_count_and_schedule_their_own_retries() {
    // Six rules: the per-call counts of the first four are kept apart from
    // those of later rules; each rule is still counted on its own.
    let rule = |n: u8| {
        Rule::from_fn(move |e| (e.downcast_ref::<Kind>()?.0 == n).then_some(Decision::Retry))
    };
    let retry = Retry::builder()
        .rule(rule(0).intervals(Intervals::from_millis([0; 9]).unwrap()))
        .rule(rule(1).intervals(Intervals::from_millis([0; 9]).unwrap()))
        .rule(rule(2).intervals(Intervals::from_millis([0; 9]).unwrap()))
        .rule(rule(3).intervals(Intervals::from_millis([0; 9]).unwrap()))
        .rule(
            rule(4)
                .intervals(Intervals::from_millis([0; 9]).unwrap())
                .max_retries(2),
        )
        .rule(rule(5).schedule(Constant::new(Duration::ZERO).unwrap().take(3)))
        .build()
        .unwrap();

    // Kind 4 (past the inline counts) has two retries; kind 5 has three
    // from its custom schedule; neither spends the other's.
    let script = [5, 4, 5, 4, 5, 4];
    let err = retry
        .run_blocking(|cycle| Err::<(), _>(Kind(script[cycle as usize])))
        .unwrap_err();
    assert_eq!(err.attempts(), 6);
    assert_eq!(err.reason(), StopReason::KindBudgetExhausted);

    let script = [5, 4, 5, 4, 5, 5];
    let err = retry
        .run_blocking(|cycle| Err::<(), _>(Kind(script[cycle as usize])))
        .unwrap_err();
    assert_eq!(err.attempts(), 6);
    assert_eq!(err.reason(), StopReason::Depleted);

    // An inline rule next to them keeps its own count too.
    let script = [0, 5, 4, 0, 5, 4, 0];
    let value = retry.run_blocking(|cycle| match script.get(cycle as usize) {
        Some(&n) => Err(Kind(n)),
        None => Ok(cycle),
    });
    assert_eq!(value.unwrap(), 7);
}
