//! The libraries teams move to ebb from, one test each: what a user of
//! that library wrote, written with `ebb_retry`, under paused tokio time
//! where there are waits.
//!
//! - Eventide's `Retry` (Ruby): explicit millisecond intervals;
//! - go-again: max retries with interval, jitter and timeout; the registry
//!   of temporary errors, and retry-all when none is given; `DoWithResult`,
//!   hooks and the error trace;
//! - longrun: baselines per error category;
//! - the Go background retrier: fire-and-forget with a max attempt count
//!   and an error logger;
//! - the mini job runner: worker retries with `attempts × 200 ms` backoff
//!   and a dead letter after the last attempt.

mod common;

use std::cell::RefCell;
use std::error::Error;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{AppError, Attempts, ClientError, ms, network, run_script};
use ebb_retry::http::HttpStatusError;
use ebb_retry::{Constant, Event, Jittered, Retry, RetryError, Rule, StopReason};
use http::StatusCode;
use tokio::time::Instant;

/// Eventide:
///
/// ```ruby
/// Retry.(ConnectionError, millisecond_intervals: [10, 20, 30]) do |retry_count|
///   fetch
/// end
/// ```
#[tokio::test(start_paused = true)]
async fn eventide_retry_with_explicit_millisecond_intervals() {
    let retry = Retry::intervals_ms([10, 20, 30])
        .retry_on::<io::Error>()
        .build()
        .unwrap();

    let attempts = Attempts::new();
    let cycle = run_script(&retry, &attempts, vec![network(), network()])
        .await
        .unwrap();
    assert_eq!(cycle, 2, "the block is told its retry count");
    assert_eq!(attempts.waits(), [ms(10), ms(20)]);

    // Intervals spent: the last error is raised, after 1 + 3 attempts.
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..5).map(|_| network()).collect())
        .await
        .unwrap_err();
    assert_eq!(attempts.waits(), [ms(10), ms(20), ms(30)]);
    assert!(err.is_depleted());
    assert_eq!(err.into_last().to_string(), "network failure");

    // An error it was not told to retry is raised at once.
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, vec![AppError::Conflict])
        .await
        .unwrap_err();
    assert_eq!(
        (attempts.count(), err.reason()),
        (1, StopReason::NotRetryable)
    );
}

/// go-again:
///
/// ```go
/// retrier, _ := again.NewRetrier(ctx,
///     again.WithMaxRetries(3), again.WithInterval(400*time.Millisecond),
///     again.WithJitter(50*time.Millisecond), again.WithTimeout(time.Second))
/// errs := retrier.Do(ctx, fetch)
/// ```
///
/// Each wait is the interval plus a random jitter of up to `jitter`.
#[tokio::test(start_paused = true)]
async fn go_again_max_retries_with_interval_jitter_and_timeout() {
    let go_again = |max_retries: usize, interval: Duration, jitter: Duration, timeout: Duration| {
        let interval = Constant::new(interval).unwrap();
        let jitter = Jittered::full(Constant::new(jitter).unwrap());
        Retry::with_schedule(interval.zip(jitter).map(|(i, j)| i + j).take(max_retries))
            .time_limit(timeout)
            .build()
            .unwrap()
    };

    // Max retries bounds the call; every wait is interval + [0, jitter].
    let retry = go_again(3, ms(100), ms(50), Duration::from_secs(10));
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..10).map(|_| network()).collect())
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 4, "1 attempt + 3 retries");
    assert_eq!(err.reason(), StopReason::Depleted);
    for wait in attempts.waits() {
        assert!((ms(100)..=ms(150)).contains(&wait), "{wait:?}");
    }

    // The timeout bounds it first: a third wait would end after 1 s.
    let retry = go_again(10, ms(400), ms(50), Duration::from_secs(1));
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..10).map(|_| network()).collect())
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 3);
    assert_eq!(err.reason(), StopReason::TimeLimit);
}

/// go-again's registry: temporary errors registered once and used as the
/// filter when a call gives none; an empty registry retries everything.
///
/// ```go
/// retrier.Registry.RegisterTemporaryError(ErrTimeout)
/// retrier.Do(ctx, fetch)                 // retries ErrTimeout only
/// retrier.Do(ctx, fetch, ErrConflict)    // the call's own list wins
/// ```
#[tokio::test(start_paused = true)]
async fn go_again_temporary_error_registry_and_retry_all_when_none_given() {
    /// The registry, kept by the application.
    #[derive(Default)]
    struct Registry(Vec<Rule>);

    /// `Do`: the call's list, else the registry, else every error.
    fn retrier(registry: &Registry, temporary: &[Rule]) -> Retry {
        let list = if temporary.is_empty() {
            &registry.0
        } else {
            temporary
        };
        Retry::intervals_ms([0, 0, 0])
            .rules(list.iter().cloned())
            .build()
            .unwrap()
    }

    let conflict_rule = || {
        Rule::from_fn(|e| {
            matches!(e.downcast_ref(), Some(AppError::Conflict))
                .then_some(ebb_retry::Decision::Retry)
        })
    };
    let script = || vec![AppError::Conflict, network(), AppError::Fatal("x")];

    // Nothing registered, nothing given: every error is retried.
    let empty = Registry::default();
    let attempts = Attempts::new();
    run_script(&retrier(&empty, &[]), &attempts, script())
        .await
        .unwrap();
    assert_eq!(attempts.count(), 4);

    // Registered: only the network error (io::Error) is temporary.
    let registry = Registry(vec![Rule::on::<io::Error>()]);
    let attempts = Attempts::new();
    let err = run_script(
        &retrier(&registry, &[]),
        &attempts,
        vec![network(), AppError::Conflict],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (attempts.count(), err.reason()),
        (2, StopReason::NotRetryable)
    );

    // The call's own list replaces the registry.
    let attempts = Attempts::new();
    let err = run_script(&retrier(&registry, &[conflict_rule()]), &attempts, script())
        .await
        .unwrap_err();
    assert_eq!(
        (attempts.count(), err.reason()),
        (2, StopReason::NotRetryable)
    );
    assert_eq!(err.last().to_string(), "network failure");
}

/// go-again's `DoWithResult` with hooks, and its `Errors` trace:
///
/// ```go
/// retrier, _ := again.NewRetrier(ctx, again.WithHooks(again.Hooks{
///     OnRetry: func(attempt int, err error) { log.Printf("retry %d: %v", attempt, err) },
/// }))
/// result, errs := again.DoWithResult(retrier, ctx, fetch)
/// // errs.Attempts: each attempt's error; errs.Last: the last one
/// ```
#[tokio::test(start_paused = true)]
async fn go_again_do_with_result_hooks_and_the_error_trace() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let on_retry = log.clone();
    let retry = Retry::intervals_ms([5, 5, 5])
        .on_event(move |event| {
            if let Event::Failed { cycle, error, .. } = event {
                on_retry
                    .lock()
                    .unwrap()
                    .push(format!("retry {cycle}: {error}"));
            }
        })
        .build()
        .unwrap();

    // The result of the attempt that succeeded.
    let attempts = Attempts::new();
    let result = run_script(&retry, &attempts, vec![network(), AppError::Conflict]).await;
    assert_eq!(result.unwrap(), 2);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "retry 0: network failure",
            "retry 1: expected version conflict"
        ]
    );

    // On failure, the trace of every attempt and the last error.
    log.lock().unwrap().clear();
    let attempts = Attempts::new();
    let err: RetryError<AppError> = run_script(
        &retry,
        &attempts,
        vec![
            network(),
            AppError::Conflict,
            network(),
            AppError::Fatal("disk"),
        ],
    )
    .await
    .unwrap_err();
    let trace: Vec<String> = err.errors().map(ToString::to_string).collect();
    assert_eq!(
        trace,
        [
            "network failure",
            "expected version conflict",
            "network failure",
            "fatal: disk"
        ]
    );
    assert_eq!(err.last().to_string(), "fatal: disk");
    assert_eq!(
        log.lock().unwrap().len(),
        3,
        "no hook call for the last attempt, which is not retried"
    );
    assert!(err.source().is_some(), "the last error is the source");
}

/// longrun's baselines: a policy maps error categories to schedules.
///
/// ```go
/// policy := longrun.Baseline{
///     Transport: longrun.Exponential(1*time.Second, 30*time.Second, 5),
///     Service:   longrun.Constant(10*time.Second, 3),
///     Rules:     []longrun.TransientRule{{Match: isLocked, Backoff: longrun.Constant(50*time.Millisecond, 2)}},
/// }
/// ```
#[tokio::test(start_paused = true)]
async fn longrun_per_category_baselines() {
    let secs = Duration::from_secs;
    let baseline = || {
        Retry::builder()
            .transport(
                ebb_retry::Exponential::new(secs(1), 2.0, secs(30))
                    .unwrap()
                    .take(5),
            )
            .service(Constant::new(secs(10)).unwrap().take(3))
            .category(
                "locked",
                |e| e.to_string() == "row locked",
                Constant::new(ms(50)).unwrap().take(2),
            )
    };

    // Each category by its own schedule, interleaved.
    let retry = baseline().build().unwrap();
    let errors = RefCell::new(vec![
        ClientError(Box::new(io::Error::from(io::ErrorKind::ConnectionRefused))),
        ClientError(Box::new(HttpStatusError::new(StatusCode::BAD_GATEWAY))),
        ClientError(Box::new(io::Error::other("row locked"))),
        ClientError(Box::new(io::Error::from(io::ErrorKind::TimedOut))),
        ClientError(Box::new(io::Error::other("syntax error"))),
    ]);
    errors.borrow_mut().reverse();
    let started = Instant::now();
    let starts = RefCell::new(Vec::new());
    let err = retry
        .run(|_| {
            starts.borrow_mut().push(started.elapsed());
            let next = errors.borrow_mut().pop();
            async move { next.map_or(Ok(()), Err) }
        })
        .await
        .unwrap_err();
    let waits: Vec<Duration> = starts.borrow().windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(waits, [secs(1), secs(10), ms(50), secs(2)]);
    assert_eq!(
        err.reason(),
        StopReason::NotRetryable,
        "an unknown error is permanent"
    );
    assert_eq!(err.attempts(), 5);

    // Degraded: the unknown error is retried on a default schedule.
    let retry = baseline()
        .degraded(Constant::new(secs(5)).unwrap().take(1))
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![AppError::Fatal("?"), AppError::Fatal("?")],
    )
    .await
    .unwrap_err();
    assert_eq!(attempts.waits(), [secs(5)]);
    assert_eq!(err.reason(), StopReason::Depleted);
}

/// The Go background retrier: fire and forget, with a max attempt count
/// and an error logger.
///
/// ```go
/// r := retrier.New(retrier.MaxAttempts(3), retrier.Interval(time.Second),
///     retrier.OnError(func(attempt int, err error) { log.Println(attempt, err) }))
/// r.Go(ctx, sendWebhook)
/// ```
#[tokio::test(start_paused = true)]
async fn go_background_retrier_with_max_attempts_and_an_error_logger() {
    let max_attempts = 3;
    let retry = Retry::with_schedule(
        Constant::new(Duration::from_secs(1))
            .unwrap()
            .take(max_attempts - 1),
    )
    .build()
    .unwrap();
    let logged = Arc::new(Mutex::new(Vec::new()));
    let logger = logged.clone();
    let started = Instant::now();
    let handle = retry
        .background(|_| async { Err::<(), _>(io::Error::other("webhook refused")) })
        .on_error(move |attempt, err| logger.lock().unwrap().push(format!("{attempt} {err}")))
        .spawn();

    // The caller goes on; the handle says how it ended.
    let err = handle.await.unwrap().unwrap_err();
    assert_eq!(err.attempts(), max_attempts);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(
        *logged.lock().unwrap(),
        [
            "0 webhook refused",
            "1 webhook refused",
            "2 webhook refused"
        ]
    );
}

/// The mini job runner: a worker retries a job with `attempts × 200 ms`
/// backoff and moves it to the dead letter queue after its last attempt.
///
/// ```go
/// for attempt := 1; attempt <= job.MaxAttempts; attempt++ {
///     if err = job.Run(); err == nil { break }
///     time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
/// }
/// if err != nil { deadLetter <- job }
/// ```
#[tokio::test(start_paused = true)]
async fn mini_job_runner_worker_retry_with_linear_backoff_and_dead_letter() {
    /// A job: its name and how many times it fails before succeeding.
    struct Job {
        name: &'static str,
        failures: u32,
    }

    let max_attempts: u64 = 4;
    let backoff = (1..max_attempts).map(|attempt| ms(attempt * 200));
    let retry = Retry::with_schedule(backoff).build().unwrap();

    let queue = vec![
        Job {
            name: "ok",
            failures: 0,
        },
        Job {
            name: "flaky",
            failures: 2,
        },
        Job {
            name: "poison",
            failures: u32::MAX,
        },
    ];
    let mut done = Vec::new();
    let mut dead_letter = Vec::new();
    let mut waits = Vec::new();
    for job in queue {
        let attempts = Attempts::new();
        let result = retry
            .run(|attempt| {
                attempts.record(attempt);
                let failed = attempt < job.failures;
                async move {
                    if failed {
                        Err(io::Error::other("job failed"))
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
        waits.push(attempts.waits());
        match result {
            Ok(()) => done.push(job.name),
            Err(err) => dead_letter.push((job.name, err.attempts(), err.into_last().to_string())),
        }
    }

    assert_eq!(done, ["ok", "flaky"]);
    assert_eq!(dead_letter, [("poison", 4, "job failed".to_owned())]);
    assert_eq!(waits[1], [ms(200), ms(400)]);
    assert_eq!(waits[2], [ms(200), ms(400), ms(600)]);
}
