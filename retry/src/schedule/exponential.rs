//! [`Exponential`]: waits that grow by a multiplier up to a cap.

use std::iter::FusedIterator;
use std::time::Duration;

use super::check_wait;
use crate::error::ConfigError;

/// Waits that grow by a multiplier, up to a cap, without end.
///
/// The waits never decrease and never exceed the cap; once the cap is
/// reached every further wait is the cap.
///
/// ```
/// use ebb_retry::Exponential;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let waits: Vec<_> = Exponential::new(ms(100), 2.0, ms(500))?.take(5).collect();
/// assert_eq!(waits, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponential {
    /// The wait to hand out next.
    next: Duration,
    /// Factor from one wait to the next; at least 1, so waits never shrink.
    multiplier: f64,
    /// Upper bound of every wait.
    cap: Duration,
}

impl Exponential {
    /// Waits of `initial`, then each previous wait times `multiplier`,
    /// never more than `cap`.
    ///
    /// # Errors
    /// [`ConfigError::ZeroDelay`] for a zero `initial` (it would never
    /// grow), [`ConfigError::InvalidMultiplier`] for a multiplier below 1
    /// or not finite, [`ConfigError::CapBelowInitial`] when `cap < initial`,
    /// [`ConfigError::DelayTooLong`] when `cap` is above
    /// [`MAX_WAIT`](crate::MAX_WAIT).
    ///
    /// ```
    /// use ebb_retry::{ConfigError, Exponential};
    /// use std::time::Duration;
    ///
    /// let s = Duration::from_secs;
    /// assert!(Exponential::new(s(1), 2.0, s(60)).is_ok());
    /// assert!(matches!(Exponential::new(s(1), 0.5, s(60)), Err(ConfigError::InvalidMultiplier { .. })));
    /// assert!(matches!(Exponential::new(s(10), 2.0, s(1)), Err(ConfigError::CapBelowInitial { .. })));
    /// ```
    pub fn new(initial: Duration, multiplier: f64, cap: Duration) -> Result<Self, ConfigError> {
        if initial.is_zero() {
            return Err(ConfigError::ZeroDelay {
                parameter: "initial delay",
            });
        }
        // NaN fails this comparison too.
        if !(multiplier >= 1.0 && multiplier.is_finite()) {
            return Err(ConfigError::InvalidMultiplier { multiplier });
        }
        check_wait("cap", cap)?;
        if cap < initial {
            return Err(ConfigError::CapBelowInitial { initial, cap });
        }
        Ok(Exponential {
            next: initial,
            multiplier,
            cap,
        })
    }
}

impl Iterator for Exponential {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        if current < self.cap {
            let grown = current.as_secs_f64() * self.multiplier;
            // Compare in f64 before converting: `from_secs_f64` panics on
            // values too large for a Duration, and the cap is small.
            self.next = if grown >= self.cap.as_secs_f64() {
                self.cap
            } else {
                // Float rounding could land a nanosecond below `current`;
                // the promise is "never decreasing".
                Duration::from_secs_f64(grown).clamp(current, self.cap)
            };
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl FusedIterator for Exponential {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::MAX_WAIT;
    use crate::schedule::testing::{any_wait, ms};
    use proptest::prelude::*;

    #[test]
    fn construction_rejects_nonsense() {
        assert!(matches!(
            Exponential::new(ms(1), f64::NAN, ms(2)),
            Err(ConfigError::InvalidMultiplier { .. })
        ));
        assert!(matches!(
            Exponential::new(ms(1), f64::INFINITY, ms(2)),
            Err(ConfigError::InvalidMultiplier { .. })
        ));
        assert!(matches!(
            Exponential::new(ms(1), 0.99, ms(2)),
            Err(ConfigError::InvalidMultiplier { .. })
        ));
        assert!(matches!(
            Exponential::new(Duration::ZERO, 2.0, ms(2)),
            Err(ConfigError::ZeroDelay { .. })
        ));
        assert!(matches!(
            Exponential::new(ms(1), 2.0, MAX_WAIT + ms(1)),
            Err(ConfigError::DelayTooLong {
                parameter: "cap",
                ..
            })
        ));
    }

    #[test]
    fn exponential_reaches_cap_exactly_and_stays() {
        let waits: Vec<_> = Exponential::new(ms(3), 10.0, ms(1000))
            .unwrap()
            .take(6)
            .collect();
        assert_eq!(
            waits,
            [ms(3), ms(30), ms(300), ms(1000), ms(1000), ms(1000)]
        );
    }

    proptest! {
        #[test]
        fn exponential_is_monotone_and_capped(
            initial_ns in 1u64..1_000_000_000,
            multiplier in 1.0f64..10.0,
            extra in any_wait(),
        ) {
            let initial = Duration::from_nanos(initial_ns);
            let cap = (initial + extra).min(MAX_WAIT);
            let waits: Vec<_> = Exponential::new(initial, multiplier, cap).unwrap().take(200).collect();
            prop_assert_eq!(waits[0], initial);
            for pair in waits.windows(2) {
                prop_assert!(pair[0] <= pair[1], "decreased: {:?}", pair);
                // Growth is at most the multiplier (plus float rounding).
                prop_assert!(pair[1].as_secs_f64() <= pair[0].as_secs_f64() * multiplier + 1e-9);
            }
            prop_assert!(waits.iter().all(|w| *w <= cap));
        }

        #[test]
        fn exponential_rejects_bad_shapes(
            initial in any_wait(),
            cap in any_wait(),
            multiplier in -10.0f64..10.0,
        ) {
            let result = Exponential::new(initial, multiplier, cap);
            let valid = !initial.is_zero() && multiplier >= 1.0 && cap >= initial;
            prop_assert_eq!(result.is_ok(), valid);
        }
    }
}
