//! The crate's two errors: [`ConfigError`] for a policy that cannot be
//! built, and [`RetryError`] for a call that gave up; and
//! [`OperationError`], the errors a [`Retry`](crate::Retry) looks into.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A retry policy, schedule or budget was configured with a value that
/// makes no sense.
///
/// Every constructor in this crate validates its input and returns this
/// error instead of panicking later, at run time, in the middle of a
/// retry. Each variant says which value to fix.
///
/// ```
/// use ebb_retry::{ConfigError, Retry};
///
/// let err = Retry::new([100, -5]).unwrap_err();
/// assert_eq!(err, ConfigError::NegativeInterval { index: 1, millis: -5 });
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An interval in a millisecond list is below zero. Fix the list; a
    /// wait of zero (retry at once) is written `0`.
    #[error("interval {index} is negative ({millis} ms)")]
    NegativeInterval {
        /// Position of the offending interval in the list, 0-based.
        index: usize,
        /// The value as given.
        millis: i64,
    },
    /// An interval in an explicit list is longer than
    /// [`MAX_WAIT`](crate::MAX_WAIT). Such a wait is almost always a unit
    /// mistake (seconds given as milliseconds, or microseconds); use a
    /// shorter wait.
    #[error("interval {index} ({value:?}) is longer than the maximum wait")]
    IntervalTooLong {
        /// Position of the offending interval in the list, 0-based.
        index: usize,
        /// The value as given.
        value: Duration,
    },
    /// A delay parameter (named by `parameter`) is longer than
    /// [`MAX_WAIT`](crate::MAX_WAIT). Use a shorter delay.
    #[error("{parameter} ({value:?}) is longer than the maximum wait")]
    DelayTooLong {
        /// Which parameter: `"delay"`, `"initial delay"`, `"cap"`, `"base"`.
        parameter: &'static str,
        /// The value as given.
        value: Duration,
    },
    /// A growing schedule starts at zero, so it would never grow: every
    /// wait would be zero. Give a positive starting delay, or use
    /// [`Constant`](crate::Constant) with zero if that is what you want.
    #[error("{parameter} must be above zero")]
    ZeroDelay {
        /// Which parameter: `"initial delay"` or `"base"`.
        parameter: &'static str,
    },
    /// An exponential multiplier is below 1 (the waits would shrink) or is
    /// not a finite number. Use a value of at least 1; 2 is usual.
    #[error("multiplier {multiplier} must be a finite number of at least 1")]
    InvalidMultiplier {
        /// The value as given.
        multiplier: f64,
    },
    /// The cap of a growing schedule is below its first delay, so the cap
    /// could never be honoured. Raise the cap or lower the first delay.
    #[error("cap {cap:?} is below the initial delay {initial:?}")]
    CapBelowInitial {
        /// The first delay as given.
        initial: Duration,
        /// The cap as given.
        cap: Duration,
    },
    /// A total time limit of zero would forbid every retry. Give a positive
    /// limit, or use an empty interval list if no retry is wanted.
    #[error("time limit must be above zero")]
    ZeroTimeLimit,
    /// The retry ratio of a [`RetryBudget`](crate::RetryBudget) is negative,
    /// above 1000 or not a number. Use a fraction such as `0.2` (retries may
    /// add 20% to the calls).
    #[error("retry ratio {ratio} must be between 0 and 1000")]
    InvalidRetryRatio {
        /// The value as given.
        ratio: f64,
    },
    /// The window of a [`RetryBudget`](crate::RetryBudget) is outside 1 s to
    /// 60 s. Shorter windows forget too fast to damp a storm, longer ones
    /// remember calls that no longer say anything about the service.
    #[error("budget window {window:?} must be between 1 s and 60 s")]
    InvalidBudgetWindow {
        /// The value as given.
        window: Duration,
    },
}

/// An error a [`Retry`](crate::Retry) can look into: any
/// [`std::error::Error`] that is `'static`, so that rules can match it
/// and its [`source`](StdError::source) chain by type.
///
/// Implemented for every such type; there is nothing to implement. It is
/// the bound of [`Retry::run`](crate::Retry::run) and the other runners
/// of plain errors, and of `RetryError<E>`'s own `std::error::Error`
/// impl, so that the compiler's error for a type that is not one says
/// what to do instead: a boxed error (`Box<dyn Error + Send + Sync>`,
/// `anyhow::Error`) is not itself a `std::error::Error`; an operation
/// that returns one runs with [`Retry::run_boxed`](crate::Retry::run_boxed)
/// or [`Retry::run_blocking_boxed`](crate::Retry::run_blocking_boxed), and
/// the error of such a run is returned with `?` after
/// `.map_err(RetryError::into_last)`.
///
/// ```
/// use ebb_retry::OperationError;
///
/// fn looks_into<E: OperationError>() {}
/// looks_into::<std::io::Error>();
/// looks_into::<std::fmt::Error>();
/// ```
///
/// ```compile_fail,E0277
/// // A boxed error is not a `std::error::Error`: `run_boxed` takes it.
/// let retry = ebb_retry::Retry::new_ms([]);
/// let _ = retry.run_blocking(|_| Err::<(), Box<dyn std::error::Error + Send + Sync>>("no".into()));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `std::error::Error`, so a `Retry` cannot look into it",
    label = "not a `std::error::Error`: for a boxed error, retry with `run_boxed` and return its error with `.map_err(RetryError::into_last)?`",
    note = "an operation whose error is boxed (`Box<dyn Error + Send + Sync>`, `anyhow::Error`) runs with `Retry::run_boxed` or `Retry::run_blocking_boxed`",
    note = "the `RetryError` of such a run is not a `std::error::Error` either: take the last error out with `.map_err(RetryError::into_last)` before `?`"
)]
pub trait OperationError: StdError + 'static {}

// Not recommended, so that the compiler reports the bound on
// `OperationError` itself (with the message above) rather than the bound
// this impl adds, which for `Box<dyn Error>` ends in an unhelpful
// "`dyn Error` is not `Sized`".
#[diagnostic::do_not_recommend]
impl<E: StdError + 'static> OperationError for E {}

/// Why a call stopped retrying and returned an error.
///
/// ```
/// use ebb_retry::StopReason;
///
/// assert_eq!(StopReason::Depleted.to_string(), "retry intervals depleted");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The error is not one the policy retries (no rule matched it, or a
    /// rule decided [`Decision::DoNotRetry`](crate::Decision::DoNotRetry)).
    /// This is Eventide's "error it was not told to retry": returned after
    /// the first attempt that raised it.
    NotRetryable,
    /// The schedule has no interval left. Eventide's "intervals depleted".
    Depleted,
    /// The rule that matched the error has used up its own
    /// [`max_retries`](crate::Rule::max_retries).
    KindBudgetExhausted,
    /// The shared [`RetryBudget`](crate::RetryBudget) refused the retry: too
    /// many retries across all calls lately.
    BudgetExhausted,
    /// The next wait would end after the policy's total time limit.
    TimeLimit,
    /// The policy's cancellation token was cancelled before or during a wait.
    Cancelled,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::NotRetryable => "error is not retried",
            StopReason::Depleted => "retry intervals depleted",
            StopReason::KindBudgetExhausted => "retries for this kind of error used up",
            StopReason::BudgetExhausted => "shared retry budget exhausted",
            StopReason::TimeLimit => "retry time limit reached",
            StopReason::Cancelled => "retry cancelled",
        })
    }
}

/// A call that gave up: the error of every attempt, in order, with the
/// last one as the primary error.
///
/// Eventide's `Retry` raises the last error; [`RetryError::into_last`] gives
/// exactly that. The earlier errors are kept because a call that failed with
/// a timeout, then a reset connection, then a 503 tells a different story
/// from three timeouts.
///
/// [`Display`](fmt::Display) says why retrying stopped; the last error is
/// the [`source`](StdError::source), so it is printed once by whatever walks
/// the chain.
///
/// # With `?`
///
/// When `E` is a [`std::error::Error`] (an [`OperationError`]) that is
/// `Send + Sync`, so is `RetryError<E>`, and `?` converts it as any
/// such error: into `Box<dyn Error + Send + Sync>`, `Box<dyn Error>` or
/// `anyhow::Error`, keeping every attempt's error (the box holds the
/// `RetryError`, whose source is the last error). Into the operation's
/// own error type `E`, `?` needs `impl From<RetryError<E>> for E`, which
/// only the crate that defines `E` can write (`ebb_handler` does for its
/// `Error`); a one-line impl calling [`into_last`](Self::into_last) is
/// Eventide's behaviour. Elsewhere, and for boxed errors (whose
/// `RetryError` is no `std::error::Error`), write
/// `.map_err(RetryError::into_last)?`.
///
/// ```
/// use ebb_retry::{Retry, RetryError};
/// use std::{fmt, io};
///
/// type BoxError = Box<dyn std::error::Error + Send + Sync>;
///
/// fn fetch(retry: &Retry) -> Result<u32, BoxError> {
///     // `?` boxes the RetryError<io::Error>.
///     Ok(retry.run_blocking(|_| Err::<u32, _>(io::Error::other("refused")))?)
/// }
/// let err = fetch(&Retry::new_ms([0])).unwrap_err();
/// assert_eq!(err.to_string(), "gave up after 2 attempts: retry intervals depleted");
/// assert!(err.downcast_ref::<RetryError<io::Error>>().is_some());
///
/// // A type of your own: one impl, and `?` gives back the last error.
/// #[derive(Debug, PartialEq)]
/// struct Refused;
/// impl fmt::Display for Refused {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("refused") }
/// }
/// impl std::error::Error for Refused {}
/// impl From<RetryError<Refused>> for Refused {
///     fn from(err: RetryError<Refused>) -> Self { err.into_last() }
/// }
/// fn send(retry: &Retry) -> Result<(), Refused> {
///     retry.run_blocking(|_| Err(Refused))?;
///     Ok(())
/// }
/// assert_eq!(send(&Retry::new_ms([0])), Err(Refused));
/// ```
///
/// ```
/// use ebb_retry::{Retry, StopReason};
/// use std::io;
///
/// let retry = Retry::new([0, 0])?;
/// let err = retry
///     .run_blocking(|cycle| Err::<(), _>(io::Error::other(format!("attempt {cycle}"))))
///     .unwrap_err();
/// assert_eq!(err.attempts(), 3);
/// assert_eq!(err.reason(), StopReason::Depleted);
/// assert_eq!(err.last().to_string(), "attempt 2");
/// let all: Vec<String> = err.errors().map(|e| e.to_string()).collect();
/// assert_eq!(all, ["attempt 0", "attempt 1", "attempt 2"]);
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryError<E> {
    /// The error of the last attempt; the one Eventide would raise.
    last: E,
    /// Errors of the attempts before the last, oldest first. Kept apart
    /// from `last` so that getting the primary error never searches.
    earlier: Vec<E>,
    /// Why no further attempt was made.
    reason: StopReason,
}

impl<E> RetryError<E> {
    pub(crate) fn new(last: E, earlier: Vec<E>, reason: StopReason) -> Self {
        RetryError {
            last,
            earlier,
            reason,
        }
    }

    /// The error of the last attempt.
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// let err = Retry::new([])?.run_blocking(|_| Err::<(), _>(std::fmt::Error)).unwrap_err();
    /// assert_eq!(*err.last(), std::fmt::Error);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn last(&self) -> &E {
        &self.last
    }

    /// The error of the last attempt, by value: what Eventide's `Retry`
    /// would raise. Use it to keep your own error type at the call site:
    /// `retry.run(op).await.map_err(RetryError::into_last)?`.
    ///
    /// ```
    /// # use ebb_retry::{Retry, RetryError};
    /// let result: Result<(), std::fmt::Error> = Retry::new([0])?
    ///     .run_blocking(|_| Err(std::fmt::Error))
    ///     .map_err(RetryError::into_last);
    /// assert_eq!(result, Err(std::fmt::Error));
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn into_last(self) -> E {
        self.last
    }

    /// Errors of the attempts before the last, oldest first.
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// # use std::io;
    /// let err = Retry::new([0])?
    ///     .run_blocking(|c| Err::<(), _>(io::Error::other(c.to_string())))
    ///     .unwrap_err();
    /// assert_eq!(err.earlier().len(), 1);
    /// assert_eq!(err.earlier()[0].to_string(), "0");
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn earlier(&self) -> &[E] {
        &self.earlier
    }

    /// Every attempt's error in order; the last item is [`last`](Self::last).
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// # use std::io;
    /// let err = Retry::new([0])?
    ///     .run_blocking(|c| Err::<(), _>(io::Error::other(c.to_string())))
    ///     .unwrap_err();
    /// assert_eq!(err.errors().count(), 2);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn errors(&self) -> impl DoubleEndedIterator<Item = &E> {
        self.earlier.iter().chain(std::iter::once(&self.last))
    }

    /// Every attempt's error in order, by value; the last item is the
    /// primary error.
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// # use std::io;
    /// let err = Retry::new([0, 0])?
    ///     .run_blocking(|c| Err::<(), _>(io::Error::other(c.to_string())))
    ///     .unwrap_err();
    /// let all = err.into_errors();
    /// assert_eq!(all.len(), 3);
    /// assert_eq!(all[2].to_string(), "2");
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn into_errors(self) -> Vec<E> {
        let mut all = self.earlier;
        all.push(self.last);
        all
    }

    /// How many times the operation ran.
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// # use std::io;
    /// let err = Retry::new([0, 0, 0])?
    ///     .run_blocking(|_| Err::<(), _>(io::Error::other("down")))
    ///     .unwrap_err();
    /// assert_eq!(err.attempts(), 4);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn attempts(&self) -> usize {
        self.earlier.len() + 1
    }

    /// Why retrying stopped.
    ///
    /// ```
    /// # use ebb_retry::{Retry, StopReason};
    /// # use std::io;
    /// let err = Retry::intervals_ms([0])
    ///     .retry_on::<std::fmt::Error>()
    ///     .build()?
    ///     .run_blocking(|_| Err::<(), _>(io::Error::other("not a fmt::Error")))
    ///     .unwrap_err();
    /// assert_eq!(err.reason(), StopReason::NotRetryable);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn reason(&self) -> StopReason {
        self.reason
    }

    /// True when the schedule ran out of intervals.
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// let err = Retry::new([0])?.run_blocking(|_| Err::<(), _>(std::fmt::Error)).unwrap_err();
    /// assert!(err.is_depleted());
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn is_depleted(&self) -> bool {
        self.reason == StopReason::Depleted
    }

    /// True when the error was not one to retry, so it was returned at once.
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// let err = Retry::intervals_ms([0])
    ///     .retry_if::<std::io::Error>(|e| e.kind() == std::io::ErrorKind::TimedOut)
    ///     .build()?
    ///     .run_blocking(|_| Err::<(), _>(std::io::Error::other("bad request")))
    ///     .unwrap_err();
    /// assert!(err.is_not_retryable());
    /// assert_eq!(err.attempts(), 1);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn is_not_retryable(&self) -> bool {
        self.reason == StopReason::NotRetryable
    }

    /// True when the policy's cancellation token ended the retrying.
    ///
    /// ```
    /// # use ebb_retry::Retry;
    /// # use tokio_util::sync::CancellationToken;
    /// let token = CancellationToken::new();
    /// token.cancel();
    /// let err = Retry::intervals_ms([1000])
    ///     .cancel_on(token)
    ///     .build()?
    ///     .run_blocking(|_| Err::<(), _>(std::fmt::Error))
    ///     .unwrap_err();
    /// assert!(err.is_cancelled());
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.reason == StopReason::Cancelled
    }
}

impl<E> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attempts = self.attempts();
        let plural = if attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {attempts} attempt{plural}: {}",
            self.reason
        )
    }
}

impl<E: OperationError> StdError for RetryError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.last)
    }
}

/// A keyed call ([`Retry::run_keyed`](crate::Retry::run_keyed)) that
/// did not succeed.
///
/// ```
/// use ebb_retry::attempt_store::MemoryAttemptStore;
/// use ebb_retry::{KeyedRetryError, Retry};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ebb_retry::ConfigError> {
/// let retry = Retry::intervals_ms([0]).attempt_store(MemoryAttemptStore::new()).build()?;
/// let fail = |_| async { Err::<(), _>(std::fmt::Error) };
///
/// let err = retry.run_keyed("job-1", fail).await.unwrap_err();
/// assert_eq!(err.as_retry_error().map(|e| e.attempts()), Some(2));
///
/// // A later call, in this process or the next, does not run it again.
/// let err = retry.run_keyed("job-1", fail).await.unwrap_err();
/// assert!(err.is_exhausted());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyedRetryError<E> {
    /// This call's attempts failed and retrying stopped, as for
    /// [`Retry::run`](crate::Retry::run). The key is marked exhausted
    /// unless the call was cancelled or the shared budget refused the
    /// retry. Handle it as the error of an unkeyed call.
    GaveUp(RetryError<E>),
    /// An earlier call gave up on this key (in this process or an earlier
    /// one), so the operation was not run. Park the work (a dead letter)
    /// or give up on it; reset the key in the store to try it again.
    Exhausted {
        /// The call's key.
        key: String,
        /// The failed attempts recorded for it.
        failures: u32,
    },
    /// The attempt store failed, so the attempts could not be counted and
    /// the call stopped. Usually transient: retry the call later.
    Store {
        /// The call's key.
        key: String,
        /// The store's error.
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl<E> KeyedRetryError<E> {
    /// The retry error, if this call's attempts ran and failed.
    pub fn as_retry_error(&self) -> Option<&RetryError<E>> {
        match self {
            KeyedRetryError::GaveUp(err) => Some(err),
            _ => None,
        }
    }

    /// The retry error, by value, if this call's attempts ran and failed.
    pub fn into_retry_error(self) -> Option<RetryError<E>> {
        match self {
            KeyedRetryError::GaveUp(err) => Some(err),
            _ => None,
        }
    }

    /// True when the operation was not run because an earlier call gave
    /// up on the key.
    pub fn is_exhausted(&self) -> bool {
        matches!(self, KeyedRetryError::Exhausted { .. })
    }

    /// True when the attempt store failed.
    pub fn is_store(&self) -> bool {
        matches!(self, KeyedRetryError::Store { .. })
    }
}

impl<E> fmt::Display for KeyedRetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyedRetryError::GaveUp(err) => fmt::Display::fmt(err, f),
            KeyedRetryError::Exhausted { key, failures } => write!(
                f,
                "retries for {key:?} used up by an earlier call ({failures} failed attempts)"
            ),
            KeyedRetryError::Store { key, .. } => {
                write!(f, "could not count the attempts for {key:?}")
            }
        }
    }
}

impl<E: OperationError> StdError for KeyedRetryError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            // Display says what RetryError's says; its source is next.
            KeyedRetryError::GaveUp(err) => err.source(),
            KeyedRetryError::Exhausted { .. } => None,
            KeyedRetryError::Store { source, .. } => Some(&**source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_does_not_repeat_the_cause() {
        let err = RetryError::new(std::fmt::Error, vec![std::fmt::Error], StopReason::Depleted);
        assert_eq!(
            err.to_string(),
            "gave up after 2 attempts: retry intervals depleted"
        );
        assert!(err.source().is_some());
        let one = RetryError::new(std::fmt::Error, Vec::new(), StopReason::NotRetryable);
        assert_eq!(
            one.to_string(),
            "gave up after 1 attempt: error is not retried"
        );
    }
}
