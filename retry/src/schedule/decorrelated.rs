//! [`Decorrelated`]: each wait drawn from a range that grows with the
//! last one.

use std::iter::FusedIterator;
use std::time::Duration;

use super::check_wait;
use super::rng::Rng;
use crate::error::ConfigError;

/// "Decorrelated jitter": each wait drawn uniformly between `base` and
/// three times the previous wait, capped; without end.
///
/// Waits grow on average like an exponential schedule but each depends on
/// the last draw, which spreads a herd of clients further apart than
/// jittering a shared exponential sequence does.
///
/// ```
/// use ebb_retry::Decorrelated;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let s = Decorrelated::new(ms(10), ms(1000))?;
/// assert!(s.take(100).all(|w| w >= ms(10) && w <= ms(1000)));
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decorrelated {
    /// Smallest wait, and the first "previous" wait.
    base: Duration,
    /// Largest wait.
    cap: Duration,
    /// The last wait handed out; the next is drawn up to three times it.
    previous: Duration,
    /// Source of randomness, seeded per call.
    rng: Rng,
}

impl Decorrelated {
    /// Waits between `base` and `cap`, each drawn from
    /// `[base, 3 × previous]`.
    ///
    /// # Errors
    /// [`ConfigError::ZeroDelay`] for a zero `base`,
    /// [`ConfigError::CapBelowInitial`] when `cap < base`,
    /// [`ConfigError::DelayTooLong`] when `cap` is above
    /// [`MAX_WAIT`](crate::MAX_WAIT).
    ///
    /// ```
    /// # use ebb_retry::Decorrelated;
    /// # use std::time::Duration;
    /// assert!(Decorrelated::new(Duration::ZERO, Duration::from_secs(1)).is_err());
    /// ```
    pub fn new(base: Duration, cap: Duration) -> Result<Self, ConfigError> {
        if base.is_zero() {
            return Err(ConfigError::ZeroDelay { parameter: "base" });
        }
        check_wait("cap", cap)?;
        if cap < base {
            return Err(ConfigError::CapBelowInitial { initial: base, cap });
        }
        Ok(Decorrelated {
            base,
            cap,
            previous: base,
            rng: Rng::fresh(),
        })
    }

    /// Use a fixed seed, for reproducible waits in tests.
    ///
    /// ```
    /// # use ebb_retry::Decorrelated;
    /// # use std::time::Duration;
    /// let s = Decorrelated::new(Duration::from_millis(1), Duration::from_secs(1))?.with_seed(1);
    /// assert!(s.clone().take(5).eq(s.take(5)));
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = Rng::seeded(seed);
        self
    }
}

impl Iterator for Decorrelated {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // `previous <= cap <= MAX_WAIT`, so tripling cannot overflow.
        let upper = (self.previous * 3).min(self.cap);
        let wait = self.rng.between(self.base, upper);
        self.previous = wait;
        Some(wait)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl FusedIterator for Decorrelated {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::MAX_WAIT;
    use crate::schedule::testing::{any_wait, ms};
    use proptest::prelude::*;

    #[test]
    fn construction_rejects_nonsense() {
        assert!(matches!(
            Decorrelated::new(ms(5), ms(4)),
            Err(ConfigError::CapBelowInitial { .. })
        ));
    }

    proptest! {
        #[test]
        fn decorrelated_stays_within_base_and_cap(
            base_ns in 1u64..1_000_000_000,
            extra in any_wait(),
            seed: u64,
        ) {
            let base = Duration::from_nanos(base_ns);
            let cap = (base + extra).min(MAX_WAIT);
            let waits: Vec<_> = Decorrelated::new(base, cap).unwrap().with_seed(seed).take(200).collect();
            let mut previous = base;
            for w in waits {
                prop_assert!(w >= base && w <= cap);
                prop_assert!(w <= (previous * 3).min(cap));
                previous = w;
            }
        }
    }
}
