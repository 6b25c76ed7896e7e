//! The tracing events `Retry::run` emits, captured by a subscriber.
//!
//! This test has its own binary on purpose: tracing caches each callsite's
//! interest process-wide, and a test on another thread that reaches the same
//! callsite while this one installs its subscriber can race that cache to
//! "never", dropping events here. Alone in its process, it cannot.

mod common;

use std::io;

use common::{Attempts, network, run_script};
use ebb_retry::Retry;

/// A minimal subscriber that records each event as `message field=value…`.
mod capture {
    use std::fmt::Write;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span;

    #[derive(Clone, Default)]
    pub struct Capture(pub Arc<Mutex<Vec<String>>>);

    struct Line(String);
    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0.insert_str(0, &format!("{value:?}"));
            } else {
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut line = Line(String::new());
            event.record(&mut line);
            let level = event.metadata().level();
            self.0.lock().unwrap().push(format!("{level} {}", line.0));
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }
}

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
