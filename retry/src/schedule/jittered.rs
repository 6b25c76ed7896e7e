//! [`Jittered`]: random spread applied to each wait of another schedule.

use std::time::Duration;

use super::rng::Rng;

/// Which kind of jitter a [`Jittered`] schedule applies.
///
/// ```
/// use ebb_retry::{Constant, JitterKind, Jittered};
/// use std::time::Duration;
///
/// let s = Jittered::new(Constant::new(Duration::from_millis(100))?, JitterKind::Equal);
/// assert_eq!(s.kind(), JitterKind::Equal);
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JitterKind {
    /// Uniform in `[0, w]`: the most spread, so the best at breaking up a
    /// herd of clients, at the cost of sometimes retrying almost at once.
    Full,
    /// Uniform in `[w/2, w]`: keeps at least half of each wait.
    Equal,
}

/// Random spread applied to each wait of an inner schedule, so that many
/// clients failing together do not all retry together.
///
/// ```
/// use ebb_retry::{Exponential, Jittered};
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let inner = Exponential::new(ms(100), 2.0, ms(1000))?;
/// for (wait, bound) in Jittered::full(inner).zip(inner).take(10) {
///     assert!(wait <= bound);
/// }
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Jittered<S> {
    /// The schedule whose waits are spread.
    inner: S,
    /// Full or equal.
    kind: JitterKind,
    /// Source of randomness, seeded per call.
    rng: Rng,
}

impl<S> Jittered<S> {
    /// Apply `kind` of jitter to each wait of `inner`.
    ///
    /// ```
    /// # use ebb_retry::{Constant, JitterKind, Jittered};
    /// # use std::time::Duration;
    /// let w = Duration::from_secs(1);
    /// let s = Jittered::new(Constant::new(w)?, JitterKind::Equal);
    /// assert!(s.take(50).all(|d| d >= w / 2 && d <= w));
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn new(inner: S, kind: JitterKind) -> Self {
        Jittered {
            inner,
            kind,
            rng: Rng::fresh(),
        }
    }

    /// Full jitter: each wait uniform in `[0, w]`.
    ///
    /// ```
    /// # use ebb_retry::{Constant, Jittered};
    /// # use std::time::Duration;
    /// let w = Duration::from_millis(100);
    /// assert!(Jittered::full(Constant::new(w)?).take(50).all(|d| d <= w));
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn full(inner: S) -> Self {
        Self::new(inner, JitterKind::Full)
    }

    /// Equal jitter: each wait uniform in `[w/2, w]`.
    ///
    /// ```
    /// # use ebb_retry::{Constant, Jittered};
    /// # use std::time::Duration;
    /// let w = Duration::from_millis(100);
    /// assert!(Jittered::equal(Constant::new(w)?).take(50).all(|d| d >= w / 2 && d <= w));
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn equal(inner: S) -> Self {
        Self::new(inner, JitterKind::Equal)
    }

    /// Use a fixed seed, for reproducible waits in tests. Every clone then
    /// produces the same waits.
    ///
    /// ```
    /// # use ebb_retry::{Constant, Jittered};
    /// # use std::time::Duration;
    /// let s = Jittered::full(Constant::new(Duration::from_secs(1))?).with_seed(7);
    /// assert!(s.clone().take(5).eq(s.take(5)));
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = Rng::seeded(seed);
        self
    }

    /// The kind of jitter applied.
    ///
    /// ```
    /// # use ebb_retry::{Constant, JitterKind, Jittered};
    /// # use std::time::Duration;
    /// assert_eq!(Jittered::full(Constant::new(Duration::ZERO)?).kind(), JitterKind::Full);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn kind(&self) -> JitterKind {
        self.kind
    }
}

impl<S: Iterator<Item = Duration>> Iterator for Jittered<S> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.inner.next()?;
        Some(match self.kind {
            JitterKind::Full => self.rng.between(Duration::ZERO, wait),
            JitterKind::Equal => self.rng.between(wait / 2, wait),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::any_wait;
    use crate::schedule::{Constant, Exponential, MAX_WAIT};
    use proptest::prelude::*;

    #[test]
    fn unseeded_clones_draw_their_own_waits() {
        let proto = Jittered::full(Constant::new(Duration::from_secs(3600)).unwrap());
        let a: Vec<_> = proto.clone().take(4).collect();
        let b: Vec<_> = proto.take(4).collect();
        assert_ne!(a, b, "two calls should not share one jitter sequence");
    }

    // A custom schedule is not held to MAX_WAIT, so the jitter must keep
    // its promise for any wait, including ones whose nanoseconds do not
    // fit in a u64 (about 584 years).

    #[test]
    fn equal_jitter_keeps_half_of_a_huge_custom_wait() {
        for seed in 0..100 {
            let mut s = Jittered::equal(std::iter::repeat(Duration::MAX)).with_seed(seed);
            let w = s.next().unwrap();
            assert!(
                w >= Duration::MAX / 2,
                "seed {seed}: {w:?} is below half of the wait"
            );
        }
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_of_a_huge_custom_wait() {
        // Uniform over [0, Duration::MAX]: about half the draws land in the
        // upper half (30 to 70 of 100 but for a chance of about 1e-4; the
        // seeds are fixed, so the count is too).
        let upper = (0..100)
            .filter(|&seed| {
                let mut s = Jittered::full(std::iter::repeat(Duration::MAX)).with_seed(seed);
                s.next().unwrap() >= Duration::MAX / 2
            })
            .count();
        assert!(
            (30..=70).contains(&upper),
            "{upper} of 100 in the upper half"
        );
    }

    proptest! {
        #[test]
        fn full_jitter_stays_within_zero_and_wait(waits in proptest::collection::vec(any_wait(), 0..50), seed: u64) {
            let got: Vec<_> = Jittered::full(waits.clone().into_iter()).with_seed(seed).collect();
            prop_assert_eq!(got.len(), waits.len());
            for (g, w) in got.iter().zip(&waits) {
                prop_assert!(g <= w);
            }
        }

        #[test]
        fn equal_jitter_stays_within_half_and_wait(waits in proptest::collection::vec(any_wait(), 0..50), seed: u64) {
            let got: Vec<_> = Jittered::equal(waits.clone().into_iter()).with_seed(seed).collect();
            prop_assert_eq!(got.len(), waits.len());
            for (g, w) in got.iter().zip(&waits) {
                prop_assert!(*g >= *w / 2 && g <= w, "{:?} not in [{:?}, {:?}]", g, *w / 2, w);
            }
        }

        #[test]
        fn jitter_stays_within_bounds_for_any_duration(secs: u64, nanos in 0u32..1_000_000_000, seed: u64) {
            let w = Duration::new(secs, nanos);
            let full = Jittered::full(std::iter::once(w)).with_seed(seed).next().unwrap();
            prop_assert!(full <= w, "full: {:?} above {:?}", full, w);
            let equal = Jittered::equal(std::iter::once(w)).with_seed(seed).next().unwrap();
            prop_assert!(equal >= w / 2 && equal <= w, "equal: {:?} not in [{:?}, {:?}]", equal, w / 2, w);
        }

        #[test]
        fn jittered_exponential_never_exceeds_cap(
            initial_ns in 1u64..1_000_000_000,
            multiplier in 1.0f64..4.0,
            extra in any_wait(),
            seed: u64,
        ) {
            let initial = Duration::from_nanos(initial_ns);
            let cap = (initial + extra).min(MAX_WAIT);
            let inner = Exponential::new(initial, multiplier, cap).unwrap();
            prop_assert!(Jittered::full(inner).with_seed(seed).take(100).all(|w| w <= cap));
        }
    }
}
