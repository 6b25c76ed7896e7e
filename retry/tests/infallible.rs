//! The constructors that cannot fail, `Retry::new_ms` and
//! `Retry::with_rule_ms`: the waits they make (under paused tokio time),
//! what they retry, their clamp at `MAX_WAIT`; and `?` on a `Retry::run`
//! result.

mod common;

use std::{fmt, io};

use common::{AppError, Attempts, ms, network, run_script};
use ebb_retry::{MAX_WAIT, Retry, RetryError, Rule, StopReason};
use proptest::prelude::*;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::test(start_paused = true)]
async fn new_ms_waits_each_interval_and_retries_every_error() {
    let retry = Retry::new_ms([10, 100, 1_000]);
    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![
            AppError::Conflict,
            network(),
            AppError::Fatal("c"),
            AppError::Fatal("d"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(attempts.count(), 4);
    assert_eq!(attempts.waits(), [ms(10), ms(100), ms(1_000)]);
    assert_eq!(err.reason(), StopReason::Depleted);
    assert_eq!(err.last().to_string(), "fatal: d");
}

#[tokio::test(start_paused = true)]
async fn new_ms_of_nothing_makes_one_attempt() {
    let attempts = Attempts::new();
    let err = run_script(&Retry::new_ms([]), &attempts, vec![network()])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 1);
    assert_eq!(err.reason(), StopReason::Depleted);
}

#[tokio::test(start_paused = true)]
async fn with_rule_ms_retries_what_the_rule_matches_and_returns_the_rest_at_once() {
    let retry = Retry::with_rule_ms([10, 20], Rule::on::<io::Error>());

    let attempts = Attempts::new();
    let value = run_script(&retry, &attempts, vec![network(), network()])
        .await
        .unwrap();
    assert_eq!(value, 2, "the io::Error in the chain was retried");
    assert_eq!(attempts.waits(), [ms(10), ms(20)]);

    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![AppError::Conflict])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 1);
    assert_eq!(err.reason(), StopReason::NotRetryable);
}

#[tokio::test(start_paused = true)]
async fn a_wait_beyond_max_wait_waits_max_wait() {
    let retry = Retry::new_ms([u64::MAX]);
    let attempts = Attempts::new();
    run_script(&retry, &attempts, vec![network()])
        .await
        .unwrap();
    assert_eq!(attempts.waits(), [MAX_WAIT]);
}

/// An error of the caller's own, with the one-line conversion that lets
/// `?` return the last error, as Eventide raises it.
#[derive(Debug, PartialEq)]
struct Refused(u32);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused at attempt {}", self.0)
    }
}

impl std::error::Error for Refused {}

impl From<RetryError<Refused>> for Refused {
    fn from(err: RetryError<Refused>) -> Self {
        err.into_last()
    }
}

#[tokio::test(start_paused = true)]
async fn question_mark_boxes_a_retry_error_keeping_the_last_error_as_its_source() {
    async fn fetch(retry: &Retry) -> Result<(), BoxError> {
        retry
            .run(|cycle| async move { Err::<(), _>(io::Error::other(format!("refused {cycle}"))) })
            .await?;
        Ok(())
    }
    let err = fetch(&Retry::new_ms([5])).await.unwrap_err();
    let retry_error = err
        .downcast_ref::<RetryError<io::Error>>()
        .expect("the box holds the RetryError");
    assert_eq!(retry_error.attempts(), 2);
    assert_eq!(err.source().unwrap().to_string(), "refused 1");
}

#[tokio::test(start_paused = true)]
async fn question_mark_gives_the_last_error_with_the_callers_conversion() {
    async fn send(retry: &Retry) -> Result<(), Refused> {
        retry
            .run(|cycle| async move { Err::<(), _>(Refused(cycle)) })
            .await?;
        Ok(())
    }
    assert_eq!(send(&Retry::new_ms([5, 5])).await, Err(Refused(2)));
}

proptest! {
    /// For intervals `Retry::new` accepts, `new_ms` makes the same policy;
    /// beyond `MAX_WAIT` it makes the policy of `MAX_WAIT`.
    #[test]
    fn new_ms_is_new_on_valid_intervals_and_clamps_the_rest(
        list in proptest::collection::vec(0u64..2 * MAX_WAIT.as_millis() as u64, 0..8)
    ) {
        let max = MAX_WAIT.as_millis() as i64;
        let clamped: Vec<i64> = list.iter().map(|&v| (v as i64).min(max)).collect();
        let validated = Retry::new(clamped).unwrap();
        prop_assert_eq!(format!("{:?}", Retry::new_ms(list)), format!("{validated:?}"));
    }
}
