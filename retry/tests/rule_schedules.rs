//! A schedule per rule and error categories, under paused tokio time:
//! each kind of error waits by its own schedule and has its own count.

mod common;

use std::io;
use std::time::Duration;

use common::{AppError, Attempts, ClientError, ms, network, run_script};
use ebb_retry::http::HttpStatusError;
use ebb_retry::{Constant, Decision, Exponential, Intervals, Retry, Rule, StopReason};
use http::StatusCode;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn each_rule_waits_by_its_own_schedule_and_counts_its_own_retries() {
    // longrun's TransientRule: "connection reset: 5 retries, exponential
    // 1 s → 30 s; conflict: 3 retries, constant 10 s".
    let retry = Retry::builder()
        .rule(
            Rule::on::<io::Error>()
                .schedule(Exponential::new(secs(1), 2.0, secs(30)).unwrap())
                .max_retries(5),
        )
        .rule(
            Rule::from_fn(|e| {
                matches!(e.downcast_ref(), Some(AppError::Conflict)).then_some(Decision::Retry)
            })
            .schedule(Constant::new(secs(10)).unwrap().take(3)),
        )
        .build()
        .unwrap();

    // Interleaved, each kind walks its own schedule from its own start.
    let attempts = Attempts::new();
    let value = run_script(
        &retry,
        &attempts,
        vec![
            network(),
            AppError::Conflict,
            network(),
            AppError::Conflict,
            network(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(value, 5);
    assert_eq!(
        attempts.waits(),
        [secs(1), secs(10), secs(2), secs(10), secs(4)]
    );

    // Three conflicts use up the conflicts' retries and nothing else's:
    // the fourth conflict stops the call even though network errors have
    // retries left.
    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![
            AppError::Conflict,
            AppError::Conflict,
            network(),
            AppError::Conflict,
            AppError::Conflict,
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(attempts.waits(), [secs(10), secs(10), secs(1), secs(10)]);
    assert_eq!(err.reason(), StopReason::Depleted);
    assert_eq!(err.attempts(), 5);

    // Six network errors: the rule's own limit of 5 stops it.
    let attempts = Attempts::new();
    let err = run_script(&retry, &attempts, (0..7).map(|_| network()).collect())
        .await
        .unwrap_err();
    assert_eq!(
        attempts.waits(),
        [secs(1), secs(2), secs(4), secs(8), secs(16)]
    );
    assert_eq!(err.reason(), StopReason::KindBudgetExhausted);
}

#[tokio::test(start_paused = true)]
async fn rules_without_a_schedule_share_the_policys_and_rule_schedules_do_not_advance_it() {
    let retry = Retry::intervals_ms([100, 200])
        .rule(Rule::on::<io::Error>().intervals(Intervals::from_millis([5, 5, 5]).unwrap()))
        .rule(Rule::any())
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![
            AppError::Fatal("a"),
            network(),
            network(),
            AppError::Fatal("b"),
            network(),
            AppError::Fatal("c"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(attempts.waits(), [ms(100), ms(5), ms(5), ms(200), ms(5)]);
    assert_eq!(
        err.reason(),
        StopReason::Depleted,
        "the policy's [100, 200] is spent"
    );
    assert_eq!(err.last().to_string(), "fatal: c");
}

#[tokio::test(start_paused = true)]
async fn the_transport_classifier_walks_the_whole_chain() {
    let kinds = [
        io::ErrorKind::ConnectionRefused,
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::UnexpectedEof,
        io::ErrorKind::TimedOut,
    ];
    for kind in kinds {
        let deep = ClientError(Box::new(AppError::Network(io::Error::from(kind))));
        assert!(ebb_retry::is_transport(&deep), "{kind:?}");
    }
    let elapsed = tokio::time::timeout(ms(1), std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(ebb_retry::is_transport(&ClientError(Box::new(elapsed))));
    // An io::Error that wraps a tokio timeout, as some clients make.
    let elapsed = tokio::time::timeout(ms(1), std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(ebb_retry::is_transport(&io::Error::other(elapsed)));

    for kind in [
        io::ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied,
        io::ErrorKind::InvalidData,
    ] {
        let deep = ClientError(Box::new(io::Error::from(kind)));
        assert!(!ebb_retry::is_transport(&deep), "{kind:?}");
    }
    assert!(!ebb_retry::is_transport(&AppError::Conflict));
}

#[tokio::test(start_paused = true)]
async fn service_errors_wait_their_retry_after_and_others_are_permanent() {
    let retry = Retry::builder()
        .transport(Constant::new(ms(10)).unwrap().take(3))
        .service(Constant::new(secs(1)).unwrap().take(3))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut seen = Vec::new();
    let err = retry
        .run(|cycle| {
            seen.push(started.elapsed());
            let err = match cycle {
                0 => HttpStatusError::new(StatusCode::TOO_MANY_REQUESTS).with_retry_after(secs(7)),
                1 => HttpStatusError::new(StatusCode::SERVICE_UNAVAILABLE),
                _ => HttpStatusError::new(StatusCode::NOT_FOUND),
            };
            async move { Err::<(), _>(ClientError(Box::new(err))) }
        })
        .await
        .unwrap_err();
    assert_eq!(seen, [Duration::ZERO, secs(7), secs(8)]);
    assert_eq!(err.reason(), StopReason::NotRetryable, "a 404 is permanent");

    // An HTTP date in the response is honoured too.
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + secs(120));
    let response = http::Response::builder()
        .status(503)
        .header("retry-after", date)
        .body(())
        .unwrap();
    let wait = HttpStatusError::from_response(&response)
        .retry_after()
        .unwrap();
    assert!(wait > secs(100) && wait <= secs(120), "{wait:?}");
}
