//! *When* to retry: schedules of waits.
//!
//! A schedule is an iterator of [`Duration`]s: the first item is the wait
//! before the second attempt, the second item the wait before the third,
//! and so on; when the iterator ends, retrying ends. A finite list of
//! intervals is Eventide's model; the other schedules here are infinite and
//! are bounded with [`Iterator::take`], a [`time limit`] or a rule's
//! [`max_retries`].
//!
//! Because a schedule is just an `Iterator<Item = Duration> + Clone`, you
//! can bring your own (see [`Schedule`]). A [`Retry`] keeps the schedule as
//! a prototype and clones it for each call, so one call's progress never
//! leaks into the next.
//!
//! | schedule | waits | promise |
//! |---|---|---|
//! | [`Intervals`] | the given list | exactly the list |
//! | [`Constant`] | `d, d, d, …` | constant |
//! | [`Exponential`] | `initial, initial·m, initial·m², …` up to `cap` | never decreasing, never above `cap` |
//! | [`Jittered`] (full) | uniform in `[0, w]` for each inner wait `w` | within bounds |
//! | [`Jittered`] (equal) | uniform in `[w/2, w]` | within bounds |
//! | [`Decorrelated`] | uniform in `[base, 3·previous]`, capped | within `[base, cap]` |
//!
//! [`time limit`]: crate::RetryBuilder::time_limit
//! [`max_retries`]: crate::Rule::max_retries
//! [`Retry`]: crate::Retry

mod constant;
mod decorrelated;
mod exponential;
mod intervals;
mod jittered;
mod rng;

use std::time::Duration;

use crate::error::ConfigError;

pub use constant::Constant;
pub use decorrelated::Decorrelated;
pub use exponential::Exponential;
pub use intervals::Intervals;
pub use jittered::{JitterKind, Jittered};

/// The longest single wait a validated schedule accepts: 24 hours.
///
/// A longer wait between attempts of one call is almost always a unit
/// mistake; the constructors reject it with a [`ConfigError`].
///
/// ```
/// use ebb_retry::{Constant, MAX_WAIT};
///
/// assert!(Constant::new(MAX_WAIT).is_ok());
/// assert!(Constant::new(MAX_WAIT * 2).is_err());
/// ```
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Anything that can serve as a schedule: a cloneable iterator of waits.
///
/// Implemented for every `Iterator<Item = Duration> + Clone + Send + Sync +
/// 'static`, so a `Vec<Duration>`'s `into_iter()`, an iterator adapter chain
/// or your own type all work. Infinite iterators are fine; bound them with
/// [`Iterator::take`] or a time limit.
///
/// ```
/// use ebb_retry::{Retry, Schedule};
/// use std::time::Duration;
///
/// // Fibonacci-style waits, bring-your-own.
/// #[derive(Clone)]
/// struct Fib(Duration, Duration);
/// impl Iterator for Fib {
///     type Item = Duration;
///     fn next(&mut self) -> Option<Duration> {
///         let next = self.0;
///         *self = Fib(self.1, self.0 + self.1);
///         Some(next)
///     }
/// }
///
/// fn takes_schedule(s: impl Schedule) -> Vec<Duration> { s.collect() }
/// let ms = Duration::from_millis;
/// assert_eq!(takes_schedule(Fib(ms(1), ms(1)).take(4)), [ms(1), ms(1), ms(2), ms(3)]);
/// let retry = Retry::with_schedule(Fib(ms(10), ms(10)).take(5)).build()?;
/// # let _ = retry;
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
pub trait Schedule: Iterator<Item = Duration> + Clone + Send + Sync + 'static {}

impl<T> Schedule for T where T: Iterator<Item = Duration> + Clone + Send + Sync + 'static {}

/// `value`, if it is no longer than [`MAX_WAIT`]; otherwise the error that
/// names `parameter`.
fn check_wait(parameter: &'static str, value: Duration) -> Result<Duration, ConfigError> {
    if value > MAX_WAIT {
        Err(ConfigError::DelayTooLong { parameter, value })
    } else {
        Ok(value)
    }
}

/// Helpers for the tests of the schedule families.
#[cfg(test)]
mod testing {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::MAX_WAIT;

    pub(super) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Any wait a validated schedule accepts, zero to [`MAX_WAIT`].
    pub(super) fn any_wait() -> impl Strategy<Value = Duration> {
        (0u64..=MAX_WAIT.as_nanos() as u64).prop_map(Duration::from_nanos)
    }
}
