//! Pooled connections shared by many calls at once, so that calls made at
//! the same time are pipelined (see [`PgStoreConfig::pipeline_connections`]).
//!
//! tokio-postgres sends a statement as soon as it is asked to, whatever is
//! still running on the connection, and hands each answer to the call that
//! sent it. Several calls on one connection therefore reach the server one
//! behind the other, and its backend runs them back to back instead of
//! sleeping and being woken for each: on a local server that is most of a
//! short statement's cost.
//!
//! A shared connection is lent while calls hold it and goes back to the
//! pool when the last of them ends.
//!
//! A shared connection is never cancelled on behalf of one call that went
//! away (the others' statements would go with it): an abandoned statement
//! runs to its end and its answer is dropped. A call that times out, or
//! fails because the connection failed, retires the connection: the next
//! call takes a fresh one from the pool, the server is asked to cancel
//! what the old one is running, and the old one is closed once the last
//! call on it has ended.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType};

use super::PgStoreConfig;
use crate::Error;

/// The shared connections of one store (and its clones).
pub(super) struct Shared {
    slots: Vec<Slot>,
    /// Where the next call's search for the least busy slot starts,
    /// turned by each call so that ties are spread over the slots.
    next: AtomicUsize,
}

/// One shared connection while calls hold it: the first call takes it
/// from the pool, the calls made while it is held share it, and it goes
/// back to the pool when the last of them ends (the pool hands the same
/// connection out again next, with its prepared statements).
#[derive(Default)]
struct Slot {
    current: Mutex<Weak<Lent>>,
    /// Held while a connection is taken from the pool, so that calls
    /// arriving meanwhile wait for it instead of each taking one.
    opening: tokio::sync::Mutex<()>,
}

/// A pooled connection lent to every call of its slot.
pub(super) struct Lent {
    object: Option<Object>,
    retired: AtomicBool,
}

impl Shared {
    pub(super) fn new(connections: usize) -> Self {
        Self {
            slots: (0..connections).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The connection of the least busy slot, taken from `pool` if the
    /// slot has none that works.
    ///
    /// A call queues behind another on a shared connection only when
    /// every slot has calls in flight: a slot without one (no connection
    /// lent) is taken first, so that calls made at the same time, up to
    /// the number of slots, run on as many backends, as pooled calls
    /// would. Ties go to the slots in turn, starting after the last
    /// slot taken.
    ///
    /// Waits at most `wait` for another call of the slot that is taking
    /// a connection from the pool, as the pool's own wait is bounded.
    pub(super) async fn lend(&self, pool: &Pool, wait: Duration) -> Result<Arc<Lent>, Error> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.slots.len();
        let slot = (0..count)
            .map(|offset| &self.slots[(start + offset) % count])
            .min_by_key(|slot| slot.in_flight())
            .expect("a store pipelines over at least one connection");
        if let Some(lent) = slot.usable() {
            return Ok(lent);
        }
        // Bounded like a wait for a pooled connection: when the pool has
        // none to give, each call that held the lock before this one
        // waited its own `wait` for one, and behind a queue of them an
        // unbounded wait here would outlast every timeout the caller set.
        let _opening = tokio::time::timeout(wait, slot.opening.lock())
            .await
            .map_err(|_| Error::Pool(PoolError::Timeout(TimeoutType::Wait)))?;
        if let Some(lent) = slot.usable() {
            return Ok(lent);
        }
        let lent = Arc::new(Lent {
            object: Some(pool.get().await.map_err(Error::Pool)?),
            retired: AtomicBool::new(false),
        });
        *slot.lock() = Arc::downgrade(&lent);
        Ok(lent)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Weak<Lent>> {
        // The guarded value is a plain pointer, whole at every step.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The calls holding the slot's connection now (0 when it has none
    /// lent, or one that is retired).
    fn in_flight(&self) -> usize {
        match self.lock().upgrade() {
            // Less the one just made here.
            Some(lent) if lent.usable() => Arc::strong_count(&lent) - 1,
            _ => 0,
        }
    }

    fn usable(&self) -> Option<Arc<Lent>> {
        self.lock().upgrade().filter(|lent| lent.usable())
    }
}

impl Lent {
    /// The connection.
    pub(super) fn client(&self) -> &Object {
        self.object
            .as_ref()
            .expect("a lent connection is held until it is dropped")
    }

    fn usable(&self) -> bool {
        !self.retired.load(Ordering::Acquire) && !self.client().is_closed()
    }

    /// Takes the connection out of its turn: no new call gets it, the
    /// server is asked to cancel what runs on it, and it is closed when
    /// the last call holding it has ended.
    pub(super) fn retire(self: &Arc<Self>, config: &Arc<PgStoreConfig>) {
        if self.retired.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::debug!("retiring a shared connection");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (lent, config) = (Arc::clone(self), Arc::clone(config));
            runtime.spawn(async move {
                let cancelled = tokio::time::timeout(
                    config.call_timeout,
                    super::cancel::cancel_confirmed(lent.client(), &config.connection, &config.tls),
                )
                .await;
                tracing::debug!(
                    ?cancelled,
                    "asked to cancel a retired connection's statement"
                );
            });
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else {
            return;
        };
        if self.retired.load(Ordering::Acquire) {
            // Closed, never back to the pool.
            drop(Object::take(object));
        }
    }
}
