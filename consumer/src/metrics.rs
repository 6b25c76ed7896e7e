//! What consumers measure, through the [`metrics`] facade, and the host's
//! Prometheus endpoint that exposes it ([`Host::metrics_endpoint`]).
//!
//! Nothing is kept unless the process installs a recorder: with none, each
//! measurement is a call that does nothing. The host installs
//! [`metrics-exporter-prometheus`](metrics_exporter_prometheus)'s when it is
//! given an endpoint; a process may instead install any other recorder of
//! the facade (StatsD, OpenTelemetry) and get the same figures.
//!
//! Every consumer's metrics carry the labels `category` (what it reads)
//! and `consumer` (its identifier; empty without one):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `ebb_consumer_messages_handled_total` | counter | messages handled (by every handler) |
//! | `ebb_consumer_handler_errors_total` | counter | handler errors, whatever followed them |
//! | `ebb_consumer_handler_retries_total` | counter | messages handled again after an error, in the process |
//! | `ebb_consumer_messages_parked_total` | counter | poison messages parked |
//! | `ebb_consumer_position` | gauge | global position of the last message handled (of the lowest unfinished one's predecessor, with concurrency) |
//! | `ebb_consumer_lag` | gauge | the category's last global position minus the consumer's, sampled at most every [`LAG_SAMPLE_INTERVAL`] (with a consumer group: of the whole category) |
//! | `ebb_consumer_handler_seconds` | histogram | one message's handling, every handler |
//! | `ebb_store_category_read_seconds` | histogram | one batch read (label `category` only; see [`ebb_message_store::metrics`]) |
//!
//! Each message is also handled inside a `debug`-level tracing span named
//! `message`, with the fields `stream`, `position`, `global_position` and
//! `type`, so that every log line a handler writes says which message it
//! was about, and a tracing exporter sees one span per message.
//!
//! [`Host::metrics_endpoint`]: crate::Host::metrics_endpoint

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
