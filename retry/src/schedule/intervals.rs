//! [`Intervals`]: an explicit list of waits, Eventide's model.

use std::iter::FusedIterator;
use std::sync::Arc;
use std::time::Duration;

use super::MAX_WAIT;
use crate::error::ConfigError;

/// An explicit list of waits: Eventide's `millisecond_intervals`.
///
/// ```
/// use ebb_retry::Intervals;
/// use std::time::Duration;
///
/// let waits: Vec<Duration> = Intervals::from_millis([100, 200])?.collect();
/// assert_eq!(waits, [Duration::from_millis(100), Duration::from_millis(200)]);
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Intervals {
    /// The list, shared so that cloning the prototype for each call costs
    /// a reference count, not a copy.
    waits: Arc<[Duration]>,
    /// Index of the next wait to hand out.
    next: usize,
}

impl Intervals {
    /// A list of waits in milliseconds, as Eventide takes them. Signed, so
    /// that a negative value read from configuration is reported rather
    /// than wrapped around.
    ///
    /// # Errors
    /// [`ConfigError::NegativeInterval`] for a value below zero,
    /// [`ConfigError::IntervalTooLong`] for one above [`MAX_WAIT`].
    ///
    /// ```
    /// use ebb_retry::{ConfigError, Intervals};
    ///
    /// assert_eq!(Intervals::from_millis([0, 10])?.len(), 2);
    /// assert!(matches!(
    ///     Intervals::from_millis([10, -1]),
    ///     Err(ConfigError::NegativeInterval { index: 1, millis: -1 })
    /// ));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_millis(millis: impl IntoIterator<Item = i64>) -> Result<Self, ConfigError> {
        let waits = millis
            .into_iter()
            .enumerate()
            .map(|(index, ms)| match u64::try_from(ms) {
                Ok(ms) => Ok(Duration::from_millis(ms)),
                Err(_) => Err(ConfigError::NegativeInterval { index, millis: ms }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(waits)
    }

    /// A list of waits given as durations.
    ///
    /// # Errors
    /// [`ConfigError::IntervalTooLong`] for a wait above [`MAX_WAIT`].
    ///
    /// ```
    /// use ebb_retry::Intervals;
    /// use std::time::Duration;
    ///
    /// let s = Intervals::new([Duration::from_secs(1), Duration::ZERO])?;
    /// assert_eq!(s.as_slice(), [Duration::from_secs(1), Duration::ZERO]);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn new(waits: impl IntoIterator<Item = Duration>) -> Result<Self, ConfigError> {
        let waits: Arc<[Duration]> = waits.into_iter().collect();
        if let Some((index, &value)) = waits.iter().enumerate().find(|(_, w)| **w > MAX_WAIT) {
            return Err(ConfigError::IntervalTooLong { index, value });
        }
        Ok(Intervals { waits, next: 0 })
    }

    /// The waits not yet handed out.
    ///
    /// ```
    /// # use ebb_retry::Intervals;
    /// let mut s = Intervals::from_millis([1, 2, 3])?;
    /// s.next();
    /// assert_eq!(s.as_slice().len(), 2);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn as_slice(&self) -> &[Duration] {
        &self.waits[self.next..]
    }

    /// The whole list, shared; used by [`Retry`](crate::Retry) to walk it
    /// by index without boxing.
    pub(crate) fn into_shared(self) -> Arc<[Duration]> {
        self.waits
    }
}

impl Iterator for Intervals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.waits.get(self.next).copied()?;
        self.next += 1;
        Some(wait)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.waits.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Intervals {}
impl FusedIterator for Intervals {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::ms;
    use proptest::prelude::*;

    #[test]
    fn construction_rejects_nonsense() {
        assert!(matches!(
            Intervals::from_millis([1, -1]),
            Err(ConfigError::NegativeInterval {
                index: 1,
                millis: -1
            })
        ));
        assert!(matches!(
            Intervals::from_millis([1, 90_000_000]),
            Err(ConfigError::IntervalTooLong { index: 1, .. })
        ));
    }

    proptest! {
        #[test]
        fn intervals_yield_exactly_the_list(list in proptest::collection::vec(0i64..100_000, 0..20)) {
            let got: Vec<_> = Intervals::from_millis(list.clone()).unwrap().collect();
            let want: Vec<_> = list.iter().map(|&v| ms(v as u64)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn negative_intervals_are_rejected(list in proptest::collection::vec(-1000i64..1000, 1..20)) {
            let result = Intervals::from_millis(list.clone());
            prop_assert_eq!(result.is_err(), list.iter().any(|&v| v < 0));
        }
    }
}
