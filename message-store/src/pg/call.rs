//! One call of the store on a pooled connection: bounded by the call
//! timeout, and never leaving a busy connection in the pool.
//!
//! A call that does not finish (its timeout ran out, or the caller dropped
//! its future) may leave its statement running on the server. Its
//! connection must not go back to the pool like that: the next call on it
//! would queue behind the statement, and behind a frozen server wait as
//! long as the server does. So an unfinished call's connection goes to a
//! clean-up task, which asks the server to cancel the statement (see
//! `cancel`) and then sends a probe statement: its answer comes after everything sent before
//! it, so once it arrives the connection is idle and goes back to the pool.
//! If that does not happen within the call timeout, the connection is
//! closed.
//!
//! A call that failed because its connection failed (a transient error
//! other than the timeout) closes the connection at once, so that the next
//! call opens a new one instead of being handed the broken one before the
//! pool has noticed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use deadpool_postgres::Object;
use tokio_postgres::error::SqlState;

use super::PgStoreConfig;
use super::shared::Lent;
use crate::Error;

/// The statement has not ended: cancel it before the connection is reused.
const RUNNING: u8 = 0;
/// The statement ended: the connection may be reused as it is.
const IDLE: u8 = 1;
/// The connection failed: close it.
const BROKEN: u8 = 2;

/// A pooled connection lent to one call, or a shared one (see `shared`).
pub(super) struct Call {
    /// The connection.
    connection: Connection,
    /// What becomes of the connection when the call is dropped: one of
    /// [`RUNNING`], [`IDLE`], [`BROKEN`].
    state: AtomicU8,
    /// The call timeout, and where to send a cancel request.
    config: Arc<PgStoreConfig>,
}

/// Whose connection a call runs on.
#[allow(
    clippy::large_enum_variant,
    reason = "one per call, on the stack of the call; boxing would add an allocation to every call"
)]
enum Connection {
    /// The call's own; taken out only by `drop`.
    Own(Option<Object>),
    /// Shared with the other calls of its slot.
    Shared(Arc<Lent>),
}

impl Call {
    pub(super) fn new(object: Object, config: Arc<PgStoreConfig>) -> Self {
        Self {
            connection: Connection::Own(Some(object)),
            state: AtomicU8::new(RUNNING),
            config,
        }
    }

    pub(super) fn shared(lent: Arc<Lent>, config: Arc<PgStoreConfig>) -> Self {
        Self {
            connection: Connection::Shared(lent),
            state: AtomicU8::new(RUNNING),
            config,
        }
    }

    /// The connection, for the statement of the call.
    pub(super) fn client(&self) -> &Object {
        match &self.connection {
            Connection::Own(object) => object
                .as_ref()
                .expect("a call holds its connection until it is dropped"),
            Connection::Shared(lent) => lent.client(),
        }
    }

    /// The connection, running statements as the store's settings say
    /// (prepared and kept, or unnamed).
    pub(super) fn statements(&self) -> super::client::Pooled<'_> {
        super::client::Pooled {
            client: self.client(),
            prepared: self.config.prepared_statements,
        }
    }

    /// Awaits `statement`, the call's work on [`client`](Self::client),
    /// for at most the call timeout; `operation` names it in the timeout
    /// error.
    pub(super) async fn run<T>(
        &self,
        operation: &'static str,
        statement: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let after = self.config.call_timeout;
        let result = tokio::time::timeout(after, statement)
            .await
            .unwrap_or(Err(Error::Timeout { operation, after }));
        let state = match &result {
            // A timed-out call's connection is left running: cancelled,
            // then reused or closed (see `recover`).
            Err(Error::Timeout { .. }) => RUNNING,
            Err(err) if err.is_transient() => BROKEN,
            _ => IDLE,
        };
        if let Connection::Shared(lent) = &self.connection
            && state != IDLE
        {
            lent.retire(&self.config);
        }
        self.state.store(state, Ordering::Release);
        result
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // A shared connection is never cancelled for one call (see
        // `shared`); it was retired already if it had to be.
        let Connection::Own(object) = &mut self.connection else {
            return;
        };
        let Some(object) = object.take() else {
            return;
        };
        match self.state.load(Ordering::Acquire) {
            // Back to the pool.
            IDLE => drop(object),
            RUNNING => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(recover(object, Arc::clone(&self.config)));
                }
                // No runtime to clean up on: close the connection.
                Err(_) => drop(Object::take(object)),
            },
            _ => drop(Object::take(object)),
        }
    }
}

/// Cancels what an unfinished call left running and gives the connection
/// back to the pool once it answers again; closes it if it does not within
/// the call timeout, or if the task is dropped first (its runtime shutting
/// down).
async fn recover(object: Object, config: Arc<PgStoreConfig>) {
    let mut recovering = Recovering(Some(object));
    let client = recovering.0.as_ref().expect("set just above");
    let idle = tokio::time::timeout(config.call_timeout, async {
        super::cancel::cancel_confirmed(client, &config.connection, &config.tls).await
            && answers(client).await
    })
    .await
    .unwrap_or(false);
    if idle {
        tracing::debug!("connection of an unfinished call is idle again");
        // Back to the pool.
        drop(recovering.0.take());
    } else {
        tracing::debug!("closing the connection of an unfinished call");
    }
}

/// A connection being recovered: closed when dropped, unless taken out to
/// go back to the pool.
struct Recovering(Option<Object>);

impl Drop for Recovering {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

/// True once a probe statement on the connection is answered, which
/// happens only after every statement sent before it has ended.
///
/// The probe also takes up the cancel request when the abandoned statement
/// had ended before the request arrived: the backend keeps such a request
/// pending, and drops it only if it is idle, waiting for a statement; the
/// probe may already be waiting in the connection by then. So the probe
/// must be a statement that acts on a pending request (`SELECT 1` does, an
/// empty query does not), and a probe that was cancelled is sent once
/// more: a cancel request stops one statement at most.
async fn answers(client: &tokio_postgres::Client) -> bool {
    for _ in 0..2 {
        match client.simple_query("SELECT 1").await {
            Ok(_) => return true,
            Err(err) if err.code() == Some(&SqlState::QUERY_CANCELED) => {}
            Err(_) => return false,
        }
    }
    false
}
