//! The tracing events `Retry::run` emits, captured by a subscriber.
//!
//! This test has its own binary on purpose: tracing caches each callsite's
//! interest process-wide, and a test on another thread that reaches the same
//! callsite while this one installs its subscriber can race that cache to
//! "never", dropping events here. Alone in its process, it cannot.

mod common;

use std::io;

use common::{Attempts, capture, network, run_script};
use ebb_retry::Retry;

#[tokio::test(start_paused = true)]
async fn tracing_events_for_failure_success_and_depletion() {
    let capture = capture::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let retry = Retry::intervals_ms([100])
        .retry_on::<io::Error>()
        .build()
        .unwrap();
    let attempts = Attempts::new();
    run_script(&retry, &attempts, vec![network()])
        .await
        .unwrap();
    let attempts = Attempts::new();
    run_script(&retry, &attempts, vec![network(), network()])
        .await
        .unwrap_err();

    let lines = capture.0.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "INFO attempt failed, retrying cycle=0 error=network failure wait_ms=100 kind=\"std::io::error::Error\"",
            "DEBUG attempt succeeded cycle=1",
            "INFO attempt failed, retrying cycle=0 error=network failure wait_ms=100 kind=\"std::io::error::Error\"",
            "WARN retry intervals depleted cycle=1 error=network failure",
        ]
    );
}
