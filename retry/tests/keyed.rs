//! `Retry::run_keyed` with the in-memory attempt store, under paused time:
//! a resumed call takes up the schedules where the earlier one left them,
//! and only a verdict on the work marks the key exhausted.

mod common;

use std::io;
use std::time::Duration;

use common::ms;
use ebb_retry::attempt_store::{AttemptStore, MemoryAttemptStore};
use ebb_retry::{Exponential, Retry, RetryBudget, Rule, StopReason};
use tokio::time::Instant;

/// Runs a keyed call whose every attempt fails; returns the cycles run,
/// the waits between them, and the error.
async fn failing_call(
    retry: &Retry,
    key: &str,
) -> (
    Vec<u32>,
    Vec<Duration>,
    ebb_retry::KeyedRetryError<io::Error>,
) {
    let started = Instant::now();
    let mut cycles = Vec::new();
    let mut starts = Vec::new();
    let err = retry
        .run_keyed(key, |cycle| {
            cycles.push(cycle);
            starts.push(started.elapsed());
            async { Err::<(), _>(io::Error::other("down")) }
        })
        .await
        .unwrap_err();
    let waits = starts.windows(2).map(|w| w[1] - w[0]).collect();
    (cycles, waits, err)
}

#[tokio::test(start_paused = true)]
async fn a_resumed_call_takes_up_the_policy_and_rule_schedules_where_they_were() {
    let store = MemoryAttemptStore::new();
    for _ in 0..2 {
        store.record_failure("k").await.unwrap();
    }
    // A rule with a custom schedule and a limit, and the policy's list for
    // everything else: both start two steps in.
    let retry = Retry::intervals_ms([1, 2, 3, 4, 5])
        .rule(
            Rule::on::<io::Error>()
                .schedule(Exponential::new(ms(100), 2.0, ms(10_000)).unwrap())
                .max_retries(4),
        )
        .attempt_store(store.clone())
        .build()
        .unwrap();
    let (cycles, waits, err) = failing_call(&retry, "k").await;
    assert_eq!(cycles, [2, 3, 4]);
    assert_eq!(waits, [ms(400), ms(800)]);
    assert_eq!(
        err.as_retry_error().map(ebb_retry::RetryError::reason),
        Some(StopReason::KindBudgetExhausted),
        "4 retries in total, 2 of them before the restart"
    );
    let count = store.load("k").await.unwrap();
    assert_eq!((count.failures, count.exhausted), (5, true));

    // Without a store, run_keyed is run: nothing is counted or resumed.
    let plain = Retry::intervals_ms([0]).build().unwrap();
    let (cycles, _, err) = failing_call(&plain, "k").await;
    assert_eq!(cycles, [0, 1]);
    assert!(!err.is_exhausted());
}

#[tokio::test(start_paused = true)]
async fn a_refusal_by_the_shared_budget_does_not_exhaust_the_key() {
    let store = MemoryAttemptStore::new();
    // No retry funded at all: every call gives up after its first attempt.
    let budget = RetryBudget::new(Duration::from_secs(1), 0, 0.0).unwrap();
    let retry = Retry::intervals_ms([0, 0])
        .budget(budget)
        .attempt_store(store.clone())
        .build()
        .unwrap();
    let (cycles, _, err) = failing_call(&retry, "k").await;
    assert_eq!(cycles, [0]);
    assert_eq!(
        err.as_retry_error().map(ebb_retry::RetryError::reason),
        Some(StopReason::BudgetExhausted)
    );
    let count = store.load("k").await.unwrap();
    assert_eq!((count.failures, count.exhausted), (1, false));

    // The next call goes on from the count.
    let (cycles, _, _) = failing_call(&retry, "k").await;
    assert_eq!(cycles, [1]);
}
