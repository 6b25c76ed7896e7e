//! [`Wakeup`]: what [`MessageStore::arm_wakeup`] returns, a future that
//! completes when a category may have new messages.
//!
//! A consumer that has read everything there is in its category would
//! otherwise sleep until its next poll. With a wake-up it reads again as
//! soon as something is written:
//!
//! ```no_run
//! # async fn example(store: &impl ebb_message_store::MessageStore) -> Result<(), ebb_message_store::Error> {
//! use std::time::Duration;
//! use ebb_message_store::{CategoryQuery, MessageStore};
//!
//! let mut position = 1;
//! loop {
//!     let batch = store.get_category_messages("account", &CategoryQuery::new().position(position)).await?;
//!     if let Some(last) = batch.last() {
//!         position = last.global_position + 1;
//!         // ... handle the batch ...
//!         continue;
//!     }
//!     // Caught up. Arm, then read once more: a write may have committed
//!     // between the read above and the arming.
//!     let wakeup = store.arm_wakeup("account").await;
//!     let batch = store.get_category_messages("account", &CategoryQuery::new().position(position)).await?;
//!     if batch.is_empty() {
//!         // The poll stays as the fallback.
//!         let _ = tokio::time::timeout(Duration::from_millis(100), wakeup).await;
//!     }
//!     # break;
//! }
//! # Ok(()) }
//! ```
//!
//! [`MessageStore::arm_wakeup`]: crate::MessageStore::arm_wakeup

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future a wake-up waits on. Boxed because each store completes it
/// differently (a `Notify` of its own, or a listener coming back), and the
/// caller needs one nameable type to keep in its state.
type WakeFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Completes when the category it was armed for may have new messages.
///
/// Made by [`MessageStore::arm_wakeup`](crate::MessageStore::arm_wakeup).
/// It may complete spuriously (a lost listening connection wakes every
/// waiter, since a notification may have been lost with it); the caller
/// reads the category and, finding nothing, arms again. A store that
/// cannot notify returns [`Wakeup::never`], which stays pending: the
/// caller's poll interval is then all there is.
///
/// Once complete, it stays complete: polling it again returns `Ready`.
#[must_use = "a wake-up does nothing unless awaited"]
pub struct Wakeup {
    /// `None` for a wake-up that never comes (polling only).
    future: Option<WakeFuture>,
    /// Set once `future` completed, which must not be polled again.
    done: bool,
    /// True for a poll: the store did not arm anything, so no write can
    /// have slipped between the caller's read and this wake-up.
    poll: bool,
}

impl Wakeup {
    /// A wake-up that never comes: the store cannot notify, and the caller
    /// polls.
    pub fn never() -> Self {
        Self {
            future: None,
            done: false,
            poll: false,
        }
    }

    /// A wake-up that comes when `future` completes.
    pub fn new(future: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            future: Some(Box::pin(future)),
            done: false,
            poll: false,
        }
    }

    /// A wake-up that is only a poll: `future` (a timer, say) completes
    /// when the caller should read again, and nothing was armed, so the
    /// caller need not read once more before waiting for it (see
    /// [`is_poll`](Self::is_poll)). What a store returns for a category it
    /// polls rather than arms (a busy one).
    pub fn poll(future: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            poll: true,
            ..Self::new(future)
        }
    }

    /// True for a [`poll`](Self::poll): no write can have been missed
    /// between the caller's last read and this wake-up, so the read after
    /// arming can be skipped.
    pub fn is_poll(&self) -> bool {
        self.poll
    }

    /// False for [`Wakeup::never`]: the caller knows it is polling only.
    pub fn is_armed(&self) -> bool {
        self.future.is_some()
    }
}

impl Future for Wakeup {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        match &mut this.future {
            None => Poll::Pending,
            Some(future) => {
                let ready = future.as_mut().poll(cx);
                this.done = ready.is_ready();
                ready
            }
        }
    }
}

impl fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wakeup")
            .field("armed", &self.is_armed())
            .field("poll", &self.poll)
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn never_stays_pending() {
        let mut wakeup = Wakeup::never();
        assert!(!wakeup.is_armed());
        assert!(futures_util::poll!(&mut wakeup).is_pending());
        let waited = tokio::time::timeout(Duration::from_millis(20), wakeup).await;
        assert!(waited.is_err());
    }

    #[tokio::test]
    async fn an_armed_wakeup_completes_with_its_future_and_stays_complete() {
        let notify = Arc::new(Notify::new());
        let mut wakeup = Wakeup::new(Arc::clone(&notify).notified_owned());
        assert!(wakeup.is_armed());
        assert!(futures_util::poll!(&mut wakeup).is_pending());
        notify.notify_waiters();
        (&mut wakeup).await;
        assert!(futures_util::poll!(&mut wakeup).is_ready());
        assert!(format!("{wakeup:?}").contains("done: true"));
    }
}
