//! *How much* to retry overall: a retry budget shared across calls.
//!
//! # Retry storms
//!
//! Retries look free from one caller's seat, but they multiply load exactly
//! when a service can least take it. If a database slows down and every
//! caller retries each failed call three times, the database now receives
//! up to four times its normal traffic — which makes it slower, which makes
//! more calls fail, which makes more retries. With layers that each retry
//! (a handler retrying a store call that itself retries), the factors
//! multiply: three layers of three retries is 64 times the load. This is a
//! *retry storm*, and per-call limits cannot stop it, because each call
//! alone is behaving reasonably.
//!
//! A budget caps retries in proportion to real traffic instead: every call
//! deposits into the budget, every retry withdraws from it, and a retry
//! that finds the budget empty is not made — the call returns its error at
//! once. With a ratio of 0.2, retries can add at most about 20% to the
//! calls made in the recent window, however bad things get. A small
//! minimum per second keeps retries possible when traffic is light (one
//! call a minute that fails once should still be retried).
//!
//! This follows the design of tower's `TpsBudget` (itself after Finagle's
//! `RetryBudget`): a sliding window of buckets, so that old calls stop
//! counting once they leave the window.
//!
//! Share one [`RetryBudget`] between all the [`Retry`](crate::Retry)
//! policies that call the same dependency; cloning it shares it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ConfigError;

/// Number of buckets the window is divided into: old calls leave the
/// window one bucket (a tenth of it) at a time rather than all at once.
const SLOTS: usize = 10;

/// Tokens one call deposits when the ratio is positive. Scaled so that a
/// fractional ratio (0.2 → a retry costs 5000) stays exact in integers.
const SCALE: i64 = 1000;

/// A retry budget shared across calls: retries are allowed up to a fraction
/// of recent calls, plus a minimum per second. See the
/// [module docs](self) for why.
///
/// Cheap to clone; clones share the same budget.
///
/// ```
/// use ebb_retry::{Retry, RetryBudget};
/// use std::time::Duration;
///
/// // Retries may add 10% to the calls of the last 10 seconds,
/// // and 1 retry per second is always allowed.
/// let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.1)?;
/// let retry = Retry::intervals_ms([100, 200]).budget(budget.clone()).build()?;
/// # let _ = retry;
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RetryBudget {
    /// Shared so that every policy and every clone draw on the same tokens.
    inner: Arc<Inner>,
}

/// The budget's fixed parameters and its window of buckets.
#[derive(Debug)]
struct Inner {
    /// Tokens a call adds.
    deposit: i64,
    /// Tokens a retry takes.
    withdraw: i64,
    /// Tokens always available on top of deposits: the minimum per second
    /// times the window, in retries' worth of tokens.
    reserve: i64,
    /// Width of one bucket: the window divided by [`SLOTS`].
    slot_width: Duration,
    /// The buckets. A plain mutex: it is held for a few additions, and
    /// only by policies that opted into a budget.
    window: Mutex<Window>,
}

/// A sliding window of recent deposits and withdrawals.
#[derive(Debug)]
struct Window {
    /// Net tokens deposited (positive) and withdrawn (negative) per bucket.
    slots: [i64; SLOTS],
    /// Index of the bucket that takes current deposits and withdrawals.
    current: usize,
    /// When the current bucket started.
    current_started: Instant,
}

impl Window {
    /// Move to the bucket for `now`, emptying buckets that left the window.
    fn rotate(&mut self, now: Instant, slot_width: Duration) {
        let elapsed = now.saturating_duration_since(self.current_started);
        let steps = (elapsed.as_nanos() / slot_width.as_nanos()) as u64;
        if steps == 0 {
            return;
        }
        if steps >= SLOTS as u64 {
            self.slots = [0; SLOTS];
            self.current = 0;
            self.current_started = now;
            return;
        }
        for _ in 0..steps {
            self.current = (self.current + 1) % SLOTS;
            self.slots[self.current] = 0;
        }
        // `steps < SLOTS` and `slot_width <= 6 s`, so this fits easily.
        self.current_started += slot_width * steps as u32;
    }
}

impl RetryBudget {
    /// A budget over a sliding `window` (1 s to 60 s) that allows
    /// `min_per_sec` retries per second regardless of traffic, plus
    /// `retry_ratio` retries per call made (0.2 = 20% extra load at most).
    ///
    /// # Errors
    /// [`ConfigError::InvalidBudgetWindow`] for a window outside 1 s to
    /// 60 s; [`ConfigError::InvalidRetryRatio`] for a ratio that is
    /// negative, above 1000 or NaN.
    ///
    /// ```
    /// use ebb_retry::RetryBudget;
    /// use std::time::Duration;
    ///
    /// assert!(RetryBudget::new(Duration::from_secs(10), 10, 0.2).is_ok());
    /// assert!(RetryBudget::new(Duration::from_secs(10), 10, -0.2).is_err());
    /// assert!(RetryBudget::new(Duration::from_millis(10), 10, 0.2).is_err());
    /// ```
    pub fn new(window: Duration, min_per_sec: u32, retry_ratio: f64) -> Result<Self, ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window) {
            return Err(ConfigError::InvalidBudgetWindow { window });
        }
        // NaN fails both comparisons.
        if !(0.0..=1000.0).contains(&retry_ratio) {
            return Err(ConfigError::InvalidRetryRatio { ratio: retry_ratio });
        }
        Ok(RetryBudget::unchecked(window, min_per_sec, retry_ratio))
    }

    /// Build from parameters already known to be valid.
    fn unchecked(window: Duration, min_per_sec: u32, retry_ratio: f64) -> Self {
        let (deposit, withdraw) = if retry_ratio == 0.0 {
            // Only the reserve funds retries.
            (0, 1)
        } else {
            // Ratio in (0, 1000]: a retry costs SCALE / ratio, at least 1.
            (SCALE, ((SCALE as f64 / retry_ratio).round() as i64).max(1))
        };
        let reserve = i64::from(min_per_sec)
            .saturating_mul(window.as_secs() as i64)
            .saturating_mul(withdraw);
        RetryBudget {
            inner: Arc::new(Inner {
                deposit,
                withdraw,
                reserve,
                slot_width: window / SLOTS as u32,
                window: Mutex::new(Window {
                    slots: [0; SLOTS],
                    current: 0,
                    current_started: Instant::now(),
                }),
            }),
        }
    }

    /// The window, locked and moved up to now.
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        // A panic while holding the lock cannot leave the counters in a
        // state worse than slightly off; keep going rather than panic too.
        let mut window = self
            .inner
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        window.rotate(Instant::now(), self.inner.slot_width);
        window
    }

    /// Record a call. [`Retry`](crate::Retry) does this once per `run`;
    /// call it yourself only when using the budget by hand.
    ///
    /// ```
    /// use ebb_retry::RetryBudget;
    /// use std::time::Duration;
    ///
    /// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5)?;
    /// assert!(!budget.try_withdraw());
    /// budget.deposit();
    /// budget.deposit();
    /// assert!(budget.try_withdraw()); // two calls fund one retry at 50%
    /// assert!(!budget.try_withdraw());
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn deposit(&self) {
        let mut window = self.window();
        let current = window.current;
        window.slots[current] += self.inner.deposit;
    }

    /// Take one retry's worth from the budget; `false` if there is not
    /// enough, in which case nothing is taken and the retry should not be
    /// made.
    ///
    /// ```
    /// use ebb_retry::RetryBudget;
    /// use std::time::Duration;
    ///
    /// // 1 retry per second over 1 second, no deposits: exactly one retry.
    /// let budget = RetryBudget::new(Duration::from_secs(1), 1, 0.0)?;
    /// assert!(budget.try_withdraw());
    /// assert!(!budget.try_withdraw());
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn try_withdraw(&self) -> bool {
        let mut window = self.window();
        let balance: i64 = self.inner.reserve + window.slots.iter().sum::<i64>();
        if balance < self.inner.withdraw {
            return false;
        }
        let current = window.current;
        // The current bucket may go negative; the sum is what counts.
        window.slots[current] -= self.inner.withdraw;
        true
    }
}

impl Default for RetryBudget {
    /// tower's defaults: a 10 s window, 10 retries per second minimum, and
    /// retries up to 20% of calls.
    ///
    /// ```
    /// use ebb_retry::RetryBudget;
    ///
    /// let budget = RetryBudget::default();
    /// assert!(budget.try_withdraw());
    /// ```
    fn default() -> Self {
        RetryBudget::unchecked(Duration::from_secs(10), 10, 0.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_capped_at_the_ratio_of_calls() {
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2).unwrap();
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn the_minimum_refills_as_the_window_slides() {
        let budget = RetryBudget::new(Duration::from_secs(1), 5, 0.0).unwrap();
        let granted = (0..10).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 5);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(!budget.try_withdraw(), "withdrawals still in the window");
        tokio::time::advance(Duration::from_millis(600)).await;
        let granted = (0..10).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn old_deposits_expire() {
        let budget = RetryBudget::new(Duration::from_secs(1), 0, 1.0).unwrap();
        for _ in 0..3 {
            budget.deposit();
        }
        // In the window the deposits fund three retries; take one, so that
        // the refusal below can only come from their expiry.
        assert!(budget.try_withdraw());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!budget.try_withdraw(), "two deposits left, but expired");
    }

    #[test]
    fn ratios_above_one_allow_several_retries_per_call() {
        let budget = RetryBudget::new(Duration::from_secs(1), 0, 3.0).unwrap();
        budget.deposit();
        assert_eq!((0..10).filter(|_| budget.try_withdraw()).count(), 3);
    }
}
