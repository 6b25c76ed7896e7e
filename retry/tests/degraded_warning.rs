//! A degraded policy warns at each retry of an error nobody classified.
//! In its own binary for the reason given in tests/tracing_events.rs.

mod common;

use common::{AppError, Attempts, capture, ms, network, run_script};
use ebb_retry::{Constant, Retry, StopReason};

#[tokio::test(start_paused = true)]
async fn a_degraded_policy_retries_unknown_errors_with_a_warning_each_time() {
    let capture = capture::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let retry = Retry::builder()
        .transport(Constant::new(ms(10)).unwrap().take(5))
        .degraded(Constant::new(ms(50)).unwrap().take(2))
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let err = run_script(
        &retry,
        &attempts,
        vec![
            AppError::Fatal("a"),
            network(),
            AppError::Fatal("b"),
            AppError::Fatal("c"),
        ],
    )
    .await
    .unwrap_err();
    // Unknown, transport, unknown, then the third unknown finds the
    // degraded schedule spent; the transport retry did not use it up.
    assert_eq!(attempts.waits(), [ms(50), ms(10), ms(50)]);
    assert_eq!(err.reason(), StopReason::Depleted);

    let warnings: Vec<String> = capture
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.starts_with("WARN unclassified"))
        .cloned()
        .collect();
    assert_eq!(
        warnings,
        [
            "WARN unclassified error, retrying on the degraded schedule cycle=0 error=fatal: a wait_ms=50",
            "WARN unclassified error, retrying on the degraded schedule cycle=2 error=fatal: b wait_ms=50",
        ]
    );
}
