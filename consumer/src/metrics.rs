//! What consumers measure, through the `metrics` facade (the table is in
//! the crate documentation), and the histogram buckets of the host's
//! Prometheus endpoint.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

/// How often a consumer asks the store for its category's last position,
/// at most, to update its lag.
pub const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// The bucket bounds, in seconds, of the histograms the host's endpoint
/// exposes: 100 µs to 10 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// One consumer's handles on its metrics, registered once so that each
/// measurement is only an update.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMetrics {
    pub(crate) handled: Counter,
    pub(crate) errors: Counter,
    pub(crate) retries: Counter,
    pub(crate) parked: Counter,
    pub(crate) position: Gauge,
    pub(crate) lag: Gauge,
    pub(crate) handler_seconds: Histogram,
}

impl ConsumerMetrics {
    pub(crate) fn new(category: &str, identifier: Option<&str>) -> Self {
        let labels = [
            ("category", category.to_owned()),
            ("consumer", identifier.unwrap_or_default().to_owned()),
        ];
        Self {
            handled: metrics::counter!("ebb_consumer_messages_handled_total", &labels),
            errors: metrics::counter!("ebb_consumer_handler_errors_total", &labels),
            retries: metrics::counter!("ebb_consumer_handler_retries_total", &labels),
            parked: metrics::counter!("ebb_consumer_messages_parked_total", &labels),
            position: metrics::gauge!("ebb_consumer_position", &labels),
            lag: metrics::gauge!("ebb_consumer_lag", &labels),
            handler_seconds: metrics::histogram!("ebb_consumer_handler_seconds", &labels),
        }
    }
}
