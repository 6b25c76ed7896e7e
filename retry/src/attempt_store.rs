//! Attempts that survive restarts: an [`AttemptStore`] counts the failed
//! attempts of a call by key, so that a process killed between attempts
//! and restarted (by systemd, say) resumes the count instead of starting
//! over, and gives up after the policy's limits *in total*.
//!
//! Give a policy a store with
//! [`RetryBuilder::attempt_store`](crate::RetryBuilder::attempt_store) and
//! run calls with [`Retry::run_keyed`](crate::Retry::run_keyed), keyed by
//! what identifies the work across restarts (a message's id or global
//! position). A keyed call:
//!
//! 1. loads the key's count; if an earlier process already gave up on the
//!    key, it returns [`KeyedRetryError::Exhausted`](crate::KeyedRetryError::Exhausted)
//!    without running the operation, so that the caller can park the work
//!    instead of crash-looping on it;
//! 2. otherwise starts at cycle = the failures so far, with the policy's
//!    schedule and every rule's count and schedule that far in (which rule
//!    matched the earlier failures is not stored, so each counts against
//!    every rule: the limits hold in total);
//! 3. records each failure *before* waiting, so a kill during the wait
//!    loses nothing;
//! 4. records that it gave up when it does (but not when cancelled, a
//!    shutdown, nor when the shared [`RetryBudget`](crate::RetryBudget)
//!    refused, a retry storm elsewhere: neither is a verdict on the work,
//!    and the count still bounds the calls that follow), and resets the key
//!    when an attempt after a failure succeeds.
//!
//! The attempt after a restart runs at once: the restart delay
//! (systemd's `RestartSec`) stands in for the wait it interrupted.
//!
//! Two implementations: [`MemoryAttemptStore`] here, for tests and for
//! work that only needs to survive a task's restart within the process,
//! and `ebb_handler::StoredAttempts`, which keeps the counters in the
//! message store (a stream per key), so that they survive a crash and are
//! shared by two instances of a component. It lives in `ebb-handler`
//! because this crate knows nothing of databases and the store knows
//! nothing of retrying; the handler crate depends on both.

use std::collections::HashMap;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

/// What an [`AttemptStore`] knows of one key.
///
/// ```
/// use ebb_retry::attempt_store::AttemptCount;
///
/// let fresh = AttemptCount::default();
/// assert_eq!((fresh.failures, fresh.exhausted), (0, false));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AttemptCount {
    /// Failed attempts recorded since the key was new or last reset.
    pub failures: u32,
    /// Whether a call gave up on the key: no further attempt is to be
    /// made until it is reset.
    pub exhausted: bool,
}

/// Counts failed attempts per key, somewhere that outlives a call.
///
/// Implementors write `async fn`s. Each method is one step a keyed call
/// takes (see the [module docs](self)); an error from any of them ends
/// the call with
/// [`KeyedRetryError::Store`](crate::KeyedRetryError::Store).
pub trait AttemptStore: Send + Sync + 'static {
    /// Why the store could not answer.
    type Error: StdError + Send + Sync + 'static;

    /// The key's count; the default value for a key never seen.
    fn load(&self, key: &str) -> impl Future<Output = Result<AttemptCount, Self::Error>> + Send;

    /// Count one more failed attempt for `key`. Two processes counting
    /// the same key at once must both be counted.
    fn record_failure(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Mark `key` exhausted: a call gave up on it.
    fn record_exhausted(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Forget `key`'s failures and exhaustion: its next call starts over.
    fn reset(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// An [`AttemptStore`] in memory: counts survive the call and the task,
/// not the process. Clones share the counts.
///
/// ```
/// use ebb_retry::attempt_store::{AttemptStore, MemoryAttemptStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryAttemptStore::new();
/// store.record_failure("message-1").await.unwrap();
/// store.record_failure("message-1").await.unwrap();
/// assert_eq!(store.load("message-1").await.unwrap().failures, 2);
/// store.reset("message-1").await.unwrap();
/// assert_eq!(store.load("message-1").await.unwrap().failures, 0);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryAttemptStore {
    /// The counts by key. A plain mutex: it is held for one map operation.
    counts: Arc<Mutex<HashMap<String, AttemptCount>>>,
}

impl MemoryAttemptStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Change `key`'s count with `f`.
    fn update(&self, key: &str, f: impl FnOnce(&mut AttemptCount)) {
        // A panic while holding the lock leaves a map of plain counts,
        // still consistent: keep going rather than panic too.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        f(counts.entry(key.to_owned()).or_default());
    }
}

impl AttemptStore for MemoryAttemptStore {
    type Error = Infallible;

    async fn load(&self, key: &str) -> Result<AttemptCount, Infallible> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(counts.get(key).copied().unwrap_or_default())
    }

    async fn record_failure(&self, key: &str) -> Result<(), Infallible> {
        self.update(key, |count| {
            count.failures = count.failures.saturating_add(1);
        });
        Ok(())
    }

    async fn record_exhausted(&self, key: &str) -> Result<(), Infallible> {
        self.update(key, |count| count.exhausted = true);
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), Infallible> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        Ok(())
    }
}

/// A store's error, boxed: the policy holds a store of any type.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A store's future, boxed: the policy holds a store of any type behind
/// [`DynAttemptStore`], and a trait object's methods cannot return
/// `impl Future`.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// [`AttemptStore`] as a trait object, for the policy to hold.
pub(crate) trait DynAttemptStore: Send + Sync {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, AttemptCount>;
    fn record_failure<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
    fn record_exhausted<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
    fn reset<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
}

impl<S: AttemptStore> DynAttemptStore for S {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, AttemptCount> {
        Box::pin(async move { Ok(AttemptStore::load(self, key).await?) })
    }

    fn record_failure<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { Ok(AttemptStore::record_failure(self, key).await?) })
    }

    fn record_exhausted<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { Ok(AttemptStore::record_exhausted(self, key).await?) })
    }

    fn reset<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { Ok(AttemptStore::reset(self, key).await?) })
    }
}
