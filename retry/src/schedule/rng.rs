//! The random generator behind the jittered schedules.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A small, fast random number generator (SplitMix64) for jitter.
///
/// Jitter needs spread, not cryptographic quality, so a few lines beat a
/// dependency. The seed is drawn lazily on first use: a schedule prototype
/// is cloned for each call, and an unseeded clone draws its own seed, so
/// concurrent calls do not all wait the same "random" time — which would
/// defeat the point of jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rng {
    /// Current state; `None` until the first draw picks a fresh seed.
    state: Option<u64>,
}

impl Rng {
    pub(super) fn fresh() -> Self {
        Rng { state: None }
    }

    pub(super) fn seeded(seed: u64) -> Self {
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

    /// A uniformly drawn duration in `[lo, hi]`, or `lo` if `hi < lo`.
    ///
    /// Any two durations work, not only waits up to `MAX_WAIT`: a custom
    /// schedule under [`Jittered`](super::Jittered) can hand out waits
    /// whose nanoseconds do not fit in a `u64`. The resolution is one
    /// nanosecond for a span of up to 2^64 ns (about 584 years) and
    /// `span / 2^64` beyond.
    pub(super) fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_ns = lo.as_nanos();
        let span = hi.as_nanos().saturating_sub(lo_ns) + 1;
        from_nanos(lo_ns + scale(self.next_u64(), span))
    }
}

/// The duration of `nanos` nanoseconds, for any count a `Duration` can
/// hold (`Duration::from_nanos` takes a `u64`).
fn from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    Duration::new(
        (nanos / NANOS_PER_SEC) as u64,
        (nanos % NANOS_PER_SEC) as u32,
    )
}

/// `random` (uniform over the `u64`s) mapped onto `[0, span)`: the top 64
/// bits of `random × span`, which unlike `random % span` has no bias
/// towards small values. `span` is split into its high and low 64 bits so
/// that no product overflows a `u128` for any span of durations (at most
/// about 2^94 ns).
fn scale(random: u64, span: u128) -> u128 {
    let random = u128::from(random);
    let (high, low) = (span >> 64, span & u128::from(u64::MAX));
    random * high + ((random * low) >> 64)
}

/// A seed that differs between calls and processes.
fn entropy() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    // Not the prelude's glob: it brings a trait named `Rng` too.
    use proptest::prelude::{any, prop_assert, prop_assert_eq, prop_assert_ne, proptest};

    #[test]
    fn scale_covers_the_span_at_both_ends() {
        assert_eq!(scale(0, 10), 0);
        assert_eq!(scale(u64::MAX, 10), 9);
        assert_eq!(scale(u64::MAX, 1 << 64), u128::from(u64::MAX));
        let widest = Duration::MAX.as_nanos() + 1;
        assert_eq!(scale(0, widest), 0);
        assert!(scale(u64::MAX, widest) < widest);
        assert!(scale(u64::MAX, widest) > widest - (widest >> 63));
    }

    #[test]
    fn from_nanos_round_trips_every_duration_size() {
        for d in [
            Duration::ZERO,
            Duration::new(1, 5),
            Duration::from_nanos(u64::MAX),
            Duration::MAX / 2,
            Duration::MAX,
        ] {
            assert_eq!(from_nanos(d.as_nanos()), d);
        }
    }

    #[test]
    fn between_is_lo_when_the_range_is_empty_or_reversed() {
        let mut rng = Rng::seeded(9);
        let (lo, hi) = (Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(rng.between(lo, lo), lo);
        assert_eq!(rng.between(lo, hi), lo);
    }

    proptest! {
        #[test]
        fn seeded_generators_repeat_and_fresh_ones_differ(seed: u64) {
            let (mut a, mut b) = (Rng::seeded(seed), Rng::seeded(seed));
            let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
            prop_assert_eq!(&first, &(0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
            let mut fresh = Rng::fresh();
            prop_assert_ne!(first, (0..4).map(|_| fresh.next_u64()).collect::<Vec<_>>());
        }

        #[test]
        fn between_stays_within_any_bounds(
            a in (any::<u64>(), 0u32..1_000_000_000),
            b in (any::<u64>(), 0u32..1_000_000_000),
            seed: u64,
        ) {
            let (a, b) = (Duration::new(a.0, a.1), Duration::new(b.0, b.1));
            let (lo, hi) = (a.min(b), a.max(b));
            let got = Rng::seeded(seed).between(lo, hi);
            prop_assert!(lo <= got && got <= hi, "{:?} not in [{:?}, {:?}]", got, lo, hi);
        }
    }
}
