//! `Retry::run` under paused tokio time: attempt counts, the exact waits
//! between attempts, and the error returned, for each feature.

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{AppError, Attempts, ms, network, run_script};
use ebb_retry::{
    CancellationToken, Decision, Event, Exponential, Jittered, Retry, RetryBudget, Rule, StopReason,
};

#[tokio::test(start_paused = true)]
async fn eventide_no_filter_retries_every_error_until_intervals_are_spent() {
    let retry = Retry::new([100, 200]).unwrap();
    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![
            AppError::Fatal("a"),
            network(),
            AppError::Fatal("c"),
            AppError::Conflict,
        ],
    )
    .await
    .unwrap_err();

    assert_eq!(attempts.count(), 3, "1 + len(intervals) attempts");
    assert_eq!(attempts.cycles(), [0, 1, 2]);
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
    assert_eq!(attempts.elapsed(), ms(300));
    assert_eq!(err.reason(), StopReason::Depleted);
    assert_eq!(
        err.last().to_string(),
        "fatal: c",
        "the last error is returned"
    );
    let all: Vec<_> = err.errors().map(ToString::to_string).collect();
    assert_eq!(all, ["fatal: a", "network failure", "fatal: c"]);
}

#[tokio::test(start_paused = true)]
async fn success_at_once_runs_once_and_never_waits() {
    let retry = Retry::new([100, 200]).unwrap();
    let attempts = Attempts::new();
    assert_eq!(run_script(&retry, &attempts, vec![]).await.unwrap(), 0);
    assert_eq!(attempts.count(), 1);
    assert_eq!(attempts.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn success_after_retries_returns_the_value_and_tells_the_cycle() {
    let retry = Retry::new([100, 200, 300]).unwrap();
    let attempts = Attempts::new();
    let value = run_script(&retry, &attempts, vec![network(), network()])
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(attempts.cycles(), [0, 1, 2]);
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn empty_intervals_mean_one_attempt() {
    let retry = Retry::new([]).unwrap();
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![network()])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 1);
    assert_eq!(err.reason(), StopReason::Depleted);
}

#[tokio::test(start_paused = true)]
async fn an_error_not_listed_is_returned_at_once() {
    let retry = Retry::intervals_ms([100, 200])
        .retry_on::<io::Error>()
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![network(), AppError::Fatal("boom")])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 2);
    assert_eq!(attempts.waits(), [ms(100)]);
    assert_eq!(err.reason(), StopReason::NotRetryable);
    assert_eq!(err.last().to_string(), "fatal: boom");
    assert_eq!(err.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn io_error_wrapped_in_the_callers_error_matches_by_type() {
    // `AppError::Network` is not an io::Error, but its source is.
    let retry = Retry::intervals_ms([10])
        .retry_on::<io::Error>()
        .build()
        .unwrap();
    let attempts = Attempts::new();
    assert_eq!(
        run_script(&retry, &attempts, vec![network()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(attempts.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn predicates_select_errors_by_value() {
    let retry = Retry::intervals_ms([10, 10, 10])
        .retry_if::<AppError>(|e| matches!(e, AppError::Conflict))
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![AppError::Conflict, AppError::Conflict, AppError::Fatal("x")],
    )
    .await
    .unwrap_err();
    assert_eq!(attempts.count(), 3);
    assert!(err.is_not_retryable());
}

#[tokio::test(start_paused = true)]
async fn retry_after_overrides_the_wait_but_uses_a_step() {
    let retry = Retry::intervals_ms([100, 200])
        .classify::<AppError>(|e| match e {
            AppError::Conflict => Decision::RetryAfter(ms(5000)),
            AppError::Network(_) => Decision::Retry,
            AppError::Fatal(_) => Decision::DoNotRetry,
        })
        .build()
        .unwrap();

    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![AppError::Conflict, network(), network()],
    )
    .await
    .unwrap_err();
    assert_eq!(attempts.waits(), [ms(5000), ms(200)]);
    assert!(err.is_depleted());

    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![AppError::Fatal("no")])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 1);
    assert!(err.is_not_retryable());
}

#[tokio::test(start_paused = true)]
async fn per_kind_budgets_conflict_once_network_five_times() {
    let retry = Retry::intervals_ms([10; 20])
        .rule(Rule::on::<io::Error>().max_retries(5).named("network"))
        .rule(
            Rule::when::<AppError>(|e| matches!(e, AppError::Conflict))
                .max_retries(1)
                .named("conflict"),
        )
        .build()
        .unwrap();

    // Conflicts: one retry, then the second conflict is returned.
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![AppError::Conflict; 3])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 2);
    assert_eq!(err.reason(), StopReason::KindBudgetExhausted);

    // Network errors: five retries, six tries in all.
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..10).map(|_| network()).collect())
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 6);
    assert_eq!(err.reason(), StopReason::KindBudgetExhausted);

    // Mixed: the budgets are counted separately.
    let attempts = Attempts::new();
    let value = run_script(
        &retry,
        &attempts,
        vec![network(), AppError::Conflict, network(), network()],
    )
    .await
    .unwrap();
    assert_eq!(value, 4);
}

impl Clone for AppError {
    fn clone(&self) -> Self {
        match self {
            AppError::Conflict => AppError::Conflict,
            AppError::Network(e) => AppError::Network(io::Error::from(e.kind())),
            AppError::Fatal(w) => AppError::Fatal(w),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn exponential_schedule_waits_grow_to_the_cap() {
    let schedule = Exponential::new(ms(100), 2.0, ms(500)).unwrap().take(5);
    let retry = Retry::with_schedule(schedule).build().unwrap();
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..10).map(|_| network()).collect())
        .await
        .unwrap_err();
    assert_eq!(
        attempts.waits(),
        [ms(100), ms(200), ms(400), ms(500), ms(500)]
    );
    assert_eq!(err.attempts(), 6);
}

#[tokio::test(start_paused = true)]
async fn jittered_waits_stay_within_bounds() {
    let schedule = Jittered::equal(Exponential::new(ms(100), 2.0, ms(1000)).unwrap()).take(6);
    let retry = Retry::with_schedule(schedule).build().unwrap();
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..10).map(|_| network()).collect())
        .await
        .unwrap_err();
    assert!(err.is_depleted());
    let bounds = [100, 200, 400, 800, 1000, 1000];
    assert_eq!(attempts.waits().len(), bounds.len(), "one wait per step");
    for (wait, bound) in attempts.waits().iter().zip(bounds) {
        assert!(
            *wait >= ms(bound / 2) && *wait <= ms(bound),
            "{wait:?} vs {bound}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn time_limit_stops_before_a_wait_that_would_overrun() {
    let retry = Retry::intervals_ms([100, 200, 400, 800])
        .time_limit(ms(500))
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..10).map(|_| network()).collect())
        .await
        .unwrap_err();
    // 100 + 200 = 300 fits; 300 + 400 = 700 would not.
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
    assert_eq!(attempts.elapsed(), ms(300));
    assert_eq!(err.reason(), StopReason::TimeLimit);
    assert_eq!(err.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn time_limit_counts_the_time_attempts_take() {
    let retry = Retry::intervals_ms([100, 100, 100])
        .time_limit(ms(1000))
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = retry
        .run(|cycle| {
            attempts.record(cycle);
            async {
                // An attempt that takes time (paused time): what the limit counts.
                tokio::time::sleep(ms(400)).await;
                Err::<(), _>(network())
            }
        })
        .await
        .unwrap_err();
    // 400 + 100 + 400 = 900; another 100 wait would end at 1000 (allowed),
    // the next attempt ends at 1400 but is not interrupted; then no wait fits.
    assert_eq!(attempts.count(), 3);
    assert_eq!(err.reason(), StopReason::TimeLimit);
}

#[tokio::test(start_paused = true)]
async fn cancellation_ends_a_wait_at_once() {
    let token = CancellationToken::new();
    let retry = Retry::intervals_ms([10_000, 10_000])
        .cancel_on(token.clone())
        .build()
        .unwrap();
    let canceller = tokio::spawn(async move {
        // Paused time: the cancel comes 50 ms into the first 10 s wait.
        tokio::time::sleep(ms(50)).await;
        token.cancel();
    });
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![AppError::Fatal("first"), network()])
        .await
        .unwrap_err();
    canceller.await.unwrap();
    assert_eq!(attempts.count(), 1);
    assert_eq!(
        attempts.elapsed(),
        ms(50),
        "the 10 s wait ended when cancelled"
    );
    assert!(err.is_cancelled());
    assert_eq!(err.last().to_string(), "fatal: first");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_already_cancelled_token_prevents_the_wait() {
    let token = CancellationToken::new();
    token.cancel();
    let retry = Retry::new([0, 100]).unwrap().with_cancellation(token);
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![network(), network()])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 1);
    assert_eq!(err.reason(), StopReason::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_shared_budget_caps_retries_across_calls() {
    // No minimum; retries may be 50% of calls.
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5).unwrap();
    let retry = Retry::intervals_ms([0, 0, 0])
        .budget(budget)
        .build()
        .unwrap();

    let mut total_attempts = 0;
    let mut refused = 0;
    for _ in 0..10 {
        let attempts = Attempts::new();
        let err = run_script(&retry, &attempts, (0..10).map(|_| network()).collect())
            .await
            .unwrap_err();
        total_attempts += attempts.count();
        if err.reason() == StopReason::BudgetExhausted {
            refused += 1;
        }
    }
    // A call deposits half a retry and has three intervals: odd calls find
    // half a retry and are refused at once, even calls make one retry and
    // are refused the next. So 10 calls fund 5 retries in all, and every
    // call ends on the budget, none on its intervals.
    assert_eq!(total_attempts, 10 + 5);
    assert_eq!(refused, 10);
}

#[tokio::test(start_paused = true)]
async fn the_hook_sees_each_failure_with_its_wait_and_the_outcome() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let retry = Retry::intervals_ms([100, 200])
        .on_event(move |event| {
            let line = match event {
                Event::Failed {
                    cycle, wait, error, ..
                } => format!("failed {cycle} {error} wait {}ms", wait.as_millis()),
                Event::Succeeded { cycle } => format!("succeeded {cycle}"),
                Event::GaveUp { cycle, reason, .. } => format!("gave up {cycle} {reason}"),
                _ => "other".to_owned(),
            };
            sink.lock().unwrap().push(line);
        })
        .build()
        .unwrap();

    let attempts = Attempts::new();
    run_script(&retry, &attempts, vec![network()])
        .await
        .unwrap();
    let attempts = Attempts::new();
    run_script(&retry, &attempts, vec![network(), network(), network()])
        .await
        .unwrap_err();

    assert_eq!(
        *events.lock().unwrap(),
        [
            "failed 0 network failure wait 100ms",
            "succeeded 1",
            "failed 0 network failure wait 100ms",
            "failed 1 network failure wait 200ms",
            "gave up 2 retry intervals depleted",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_future_is_send_and_runs_on_spawned_tasks() {
    let retry = Retry::new([10, 10]).unwrap();
    let handle = tokio::spawn(async move {
        retry
            .run(|cycle| async move {
                tokio::task::yield_now().await;
                if cycle < 2 { Err(network()) } else { Ok(cycle) }
            })
            .await
    });
    assert_eq!(handle.await.unwrap().unwrap(), 2);
}
