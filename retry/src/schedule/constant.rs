//! [`Constant`]: the same wait every time.

use std::iter::FusedIterator;
use std::time::Duration;

use super::check_wait;
use crate::error::ConfigError;

/// The same wait every time, without end.
///
/// ```
/// use ebb_retry::Constant;
/// use std::time::Duration;
///
/// let waits: Vec<_> = Constant::new(Duration::from_millis(50))?.take(3).collect();
/// assert_eq!(waits, [Duration::from_millis(50); 3]);
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Constant {
    /// The wait handed out each time.
    delay: Duration,
}

impl Constant {
    /// A schedule that waits `delay` before every retry. Zero is allowed
    /// (retry at once) but then bound the schedule with
    /// [`Iterator::take`]: an endless run of instant retries is a busy loop.
    ///
    /// # Errors
    /// [`ConfigError::DelayTooLong`] for a delay above
    /// [`MAX_WAIT`](crate::MAX_WAIT).
    ///
    /// ```
    /// # use ebb_retry::Constant;
    /// # use std::time::Duration;
    /// assert!(Constant::new(Duration::from_secs(90_000)).is_err());
    /// ```
    pub fn new(delay: Duration) -> Result<Self, ConfigError> {
        Ok(Constant {
            delay: check_wait("delay", delay)?,
        })
    }
}

impl Iterator for Constant {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl FusedIterator for Constant {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::any_wait;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn constant_is_constant(d in any_wait(), n in 0usize..50) {
            let s = Constant::new(d).unwrap();
            prop_assert!(s.take(n).all(|w| w == d));
        }
    }
}
