//! Telemetry: what happened in a call, as tracing events and as an
//! [`Event`] handed to the caller's hook.
//!
//! Tracing events (target `ebb_retry`):
//!
//! | when | level | fields |
//! |---|---|---|
//! | an attempt failed and will be retried | `INFO` | `cycle`, `error`, `wait_ms`, `kind` |
//! | an attempt succeeded | `DEBUG` | `cycle` |
//! | the intervals are depleted | `WARN` | `cycle`, `error` |
//! | retrying stopped for another reason | `WARN` (`DEBUG` for a non-retried error or cancellation) | `cycle`, `error`, `reason` |
//! | an error no rule classified is retried ([degraded](crate::RetryBuilder::degraded) policy) | `WARN` | `cycle`, `error`, `wait_ms` |

use std::error::Error as StdError;
use std::time::Duration;

use tracing::Level;
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};

use crate::error::StopReason;

/// One thing that happened in a call, handed to the hook set with
/// [`RetryBuilder::on_event`](crate::RetryBuilder::on_event).
///
/// ```
/// use ebb_retry::{Event, Retry};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let retry = Retry::intervals_ms([0])
///     .on_event(move |event| {
///         let line = match event {
///             Event::Failed { cycle, wait, .. } => format!("failed {cycle}, waiting {wait:?}"),
///             Event::Succeeded { cycle } => format!("succeeded {cycle}"),
///             Event::GaveUp { cycle, reason, .. } => format!("gave up {cycle}: {reason}"),
///             _ => String::new(),
///         };
///         log.lock().unwrap().push(line);
///     })
///     .build()?;
/// retry.run_blocking(|cycle| if cycle == 0 { Err(std::fmt::Error) } else { Ok(()) }).unwrap();
/// assert_eq!(*seen.lock().unwrap(), ["failed 0, waiting 0ns", "succeeded 1"]);
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An attempt failed and the operation will run again after `wait`.
    Failed {
        /// The failed attempt's cycle, 0-based.
        cycle: u32,
        /// The attempt's error.
        error: &'a (dyn StdError + 'static),
        /// The wait about to start.
        wait: Duration,
        /// Name of the rule that matched, if rules are in use.
        kind: Option<&'static str>,
    },
    /// An attempt succeeded.
    Succeeded {
        /// The successful attempt's cycle, 0-based.
        cycle: u32,
    },
    /// An attempt failed and no further attempt will be made; the call
    /// returns a [`RetryError`](crate::RetryError).
    GaveUp {
        /// The last attempt's cycle, 0-based.
        cycle: u32,
        /// The last attempt's error.
        error: &'a (dyn StdError + 'static),
        /// Why retrying stopped.
        reason: StopReason,
    },
}

/// Whether tracing could record an event at `level`: one relaxed atomic
/// load, inlined, so that a call whose events nobody records does not pay
/// for building them (on the success path that would be most of the cost).
#[inline]
pub(crate) fn level_enabled(level: Level) -> bool {
    level <= STATIC_MAX_LEVEL && level <= LevelFilter::current()
}

/// Warn that an error no rule classified is retried on a degraded
/// policy's schedule. Cold and out of line: it keeps the failure path of
/// every other call small enough to inline.
#[cold]
#[inline(never)]
pub(crate) fn warn_unclassified(cycle: u32, error: &(dyn StdError + 'static), wait: Duration) {
    tracing::warn!(
        target: "ebb_retry",
        cycle,
        error = %error,
        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        "unclassified error, retrying on the degraded schedule"
    );
}

/// Log `event` to tracing. Kept in one place so the fields stay the same
/// for every caller.
pub(crate) fn trace(event: &Event<'_>) {
    match *event {
        Event::Failed {
            cycle,
            error,
            wait,
            kind,
        } => {
            tracing::info!(
                target: "ebb_retry",
                cycle,
                error = %error,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                kind = kind.unwrap_or("any"),
                "attempt failed, retrying"
            );
        }
        Event::Succeeded { cycle } => {
            tracing::debug!(target: "ebb_retry", cycle, "attempt succeeded");
        }
        Event::GaveUp {
            cycle,
            error,
            reason: StopReason::Depleted,
        } => {
            tracing::warn!(target: "ebb_retry", cycle, error = %error, "retry intervals depleted");
        }
        Event::GaveUp {
            cycle,
            error,
            reason: reason @ (StopReason::NotRetryable | StopReason::Cancelled),
        } => {
            tracing::debug!(target: "ebb_retry", cycle, error = %error, %reason, "not retrying");
        }
        Event::GaveUp {
            cycle,
            error,
            reason,
        } => {
            tracing::warn!(target: "ebb_retry", cycle, error = %error, %reason, "giving up");
        }
    }
}
