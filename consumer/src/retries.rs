//! The consumer's two retry policies, both `ebb_retry`'s, built once from
//! its settings: every retry a consumer makes goes through one of them.

use ebb_retry::{Chain, Event, Retry};

use crate::{ConsumerConfig, Error};

/// The policies of one consumer.
#[derive(Debug, Clone)]
pub(crate) struct Retries {
    /// The consumer's own store calls (reads of the category and of its
    /// streams, position, failure and parked records): the
    /// [`store_retry_ms`](ConsumerConfig::store_retry_ms) waits, on
    /// transient errors only.
    pub(crate) store: Retry,
    /// A message's handlers: the
    /// [`handler_retry_ms`](ConsumerConfig::handler_retry_ms) waits,
    /// whatever the error.
    pub(crate) handler: Retry,
}

impl Retries {
    /// The policies `config` asks for; an interval `ebb_retry` refuses is
    /// an invalid setting.
    pub(crate) fn new(config: &ConsumerConfig) -> Result<Self, Error> {
        let store = Retry::intervals_ms(millis(&config.store_retry_ms))
            .rule(ebb_handler::retry::on_transient())
            .on_event(|event| log_retry(event, "store call failed; trying again"))
            .build()
            .map_err(|err| Error::invalid_config_by("store_retry_ms", err))?;
        let handler = Retry::intervals_ms(millis(&config.handler_retry_ms))
            .on_event(|event| log_retry(event, "handler failed; trying again"))
            .build()
            .map_err(|err| Error::invalid_config_by("handler_retry_ms", err))?;
        Ok(Self { store, handler })
    }
}

/// Milliseconds as `ebb_retry` takes them; a value past `i64::MAX` is
/// refused there as too long a wait.
fn millis(intervals: &[u64]) -> Vec<i64> {
    intervals
        .iter()
        .map(|&ms| i64::try_from(ms).unwrap_or(i64::MAX))
        .collect()
}

/// Logs an attempt that is about to be made again, with the error's
/// causes, inside the span of what it was about (the consumer's, and the
/// message's for a handler).
fn log_retry(event: &Event<'_>, what: &'static str) {
    if let Event::Failed {
        cycle, error, wait, ..
    } = event
    {
        tracing::warn!(
            attempt = cycle + 1,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            error = %Chain::new(*error),
            "{what}"
        );
    }
}
