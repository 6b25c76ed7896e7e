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

use std::hash::{BuildHasher, Hasher, RandomState};
use std::iter::FusedIterator;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ConfigError;

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

fn check_wait(parameter: &'static str, value: Duration) -> Result<Duration, ConfigError> {
    if value > MAX_WAIT {
        Err(ConfigError::DelayTooLong { parameter, value })
    } else {
        Ok(value)
    }
}

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
    /// [`ConfigError::DelayTooLong`] for a delay above [`MAX_WAIT`].
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
    /// [`ConfigError::DelayTooLong`] when `cap` is above [`MAX_WAIT`].
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

/// A small, fast random number generator (SplitMix64) for jitter.
///
/// Jitter needs spread, not cryptographic quality, so a few lines beat a
/// dependency. The seed is drawn lazily on first use: a schedule prototype
/// is cloned for each call, and an unseeded clone draws its own seed, so
/// concurrent calls do not all wait the same "random" time — which would
/// defeat the point of jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rng {
    /// Current state; `None` until the first draw picks a fresh seed.
    state: Option<u64>,
}

impl Rng {
    fn fresh() -> Self {
        Rng { state: None }
    }

    fn seeded(seed: u64) -> Self {
        Rng { state: Some(seed) }
    }

    fn next_u64(&mut self) -> u64 {
        let state = self.state.get_or_insert_with(entropy);
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly drawn duration in `[lo, hi]` (nanosecond resolution).
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_ns = saturating_nanos(lo);
        let hi_ns = saturating_nanos(hi).max(lo_ns);
        let span = u128::from(hi_ns - lo_ns) + 1;
        // Multiply-shift maps 64 random bits onto [0, span) without the
        // bias of `%`; span <= 2^64 so the product fits in u128.
        let offset = ((u128::from(self.next_u64()) * span) >> 64) as u64;
        Duration::from_nanos(lo_ns + offset)
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A seed that differs between calls and processes.
fn entropy() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

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
    /// let s = Jittered::new(Constant::new(Duration::from_secs(1))?, JitterKind::Full);
    /// # let _ = s;
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
    /// [`ConfigError::DelayTooLong`] when `cap` is above [`MAX_WAIT`].
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
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

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
        assert!(matches!(
            Decorrelated::new(ms(5), ms(4)),
            Err(ConfigError::CapBelowInitial { .. })
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

    #[test]
    fn unseeded_clones_draw_their_own_waits() {
        let proto = Jittered::full(Constant::new(Duration::from_secs(3600)).unwrap());
        let a: Vec<_> = proto.clone().take(4).collect();
        let b: Vec<_> = proto.take(4).collect();
        assert_ne!(a, b, "two calls should not share one jitter sequence");
    }

    #[test]
    fn jitter_handles_huge_custom_waits() {
        let mut s = Jittered::equal(std::iter::repeat(Duration::MAX)).with_seed(3);
        let w = s.next().unwrap();
        assert!(w <= Duration::MAX);
    }

    fn any_wait() -> impl Strategy<Value = Duration> {
        (0u64..=MAX_WAIT.as_nanos() as u64).prop_map(Duration::from_nanos)
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

        #[test]
        fn constant_is_constant(d in any_wait(), n in 0usize..50) {
            let s = Constant::new(d).unwrap();
            prop_assert!(s.take(n).all(|w| w == d));
        }

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
