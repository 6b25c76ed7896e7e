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

    /// A uniformly drawn duration in `[lo, hi]` (nanosecond resolution).
    pub(super) fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
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
