//! [`PgStore`](super::PgStore)'s wake-ups: a listening connection of the
//! store's own, and the armed categories its notifications are routed to.
//!
//! The database side (the schema's `ebb_arm_category`, a shared advisory
//! lock the listening session holds, and the trigger on `messages` that
//! notifies the channel [`NOTIFY_CHANNEL`] with the category while it is
//! held) is described in the crate documentation. Here:
//!
//! - One listener task per store and its clones, started by the first
//!   `arm_wakeup`. It opens a dedicated connection, runs `LISTEN`, and
//!   wakes the waiters of the category each notification names.
//! - `arm_wakeup` waits (at most the connect timeout) for the listener to
//!   listen, registers a waiter for the category, and only then arms the
//!   category in the database, on the listening connection (the arming
//!   is held by that session), so that the notification cannot come
//!   before the waiter is there to take it. A category already armed by
//!   this store is not armed again: the waiter shares the pending
//!   notification. The first notification disarms the category again, so
//!   that the writes after it do not notify.
//! - A notifying commit holds a database-wide lock through its WAL flush,
//!   so notifying commits are serialised; a consumer that keeps up with a
//!   busy category would re-arm after every message and make nearly every
//!   write notify. So for `busy_category_window` after a notification,
//!   `arm_wakeup` does not arm the database but returns a wake-up after
//!   `busy_category_poll`: the reader polls quickly while the category is
//!   busy, and each category causes at most one notifying commit per
//!   window. The store's busy categories share the polling: with `n` of
//!   them busy, each is polled every `n` busy polls.
//! - When the listening connection is lost, a notification may have been
//!   lost with it (and its armings went with the session), which would
//!   leave its waiters sleeping until their next poll; so every waiter is woken,
//!   and again once the listener listens anew (a waiter registered while
//!   it was away has missed the first). The waiters read their category
//!   and arm again.
//! - The task holds the store's state only weakly and ends when the last
//!   clone of the store is dropped. If the runtime that ran it shuts
//!   down, the next `arm_wakeup` (on another runtime) starts a new one.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::{Notify, oneshot, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Socket};

use super::{PgStore, PgStoreConfig, TlsSettings, operations};
use crate::{Error, Wakeup};

/// The channel the schema's trigger notifies, with the category as
/// payload. One channel for every category: channel names are limited to
/// 63 bytes, category names are not.
pub const NOTIFY_CHANNEL: &str = "ebb_message_store";

/// The listening connection's `application_name` (after the one in the
/// store's settings, if any), so that it can be told apart in
/// `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "ebb listener";

/// The first wait before opening the listening connection again.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The longest wait between attempts to open it; the waits double up to it.
const LAST_RETRY: Duration = Duration::from_secs(5);

/// The wake-up state a store shares with its clones.
pub(super) struct Wakeups {
    /// The store's settings: where the listener connects, and how long
    /// `arm_wakeup` waits for it.
    config: Arc<PgStoreConfig>,
    /// The waiters and the listener.
    state: Mutex<State>,
    /// Set once the database turned out to have no `ebb_arm_category` (a
    /// plain Message DB install): from then on every wake-up is
    /// [`Wakeup::never`], without asking the database again.
    unavailable: AtomicBool,
    /// Set once a failure to arm has been logged as a warning, so that a
    /// reader arming at every poll does not repeat it; cleared when arming
    /// works again.
    arm_failure_logged: AtomicBool,
}

struct State {
    /// The armed categories. An entry with no waiter left (only the map
    /// holds its `Notify`), not armed and not busy is dropped at the next
    /// arming, so the map holds the categories being waited on, not every
    /// one ever armed.
    categories: HashMap<String, Category>,
    /// The running listener; `None` before the first arming and once
    /// notifications turned out to be unavailable.
    listener: Option<Listener>,
    /// The listening connection's client, while it listens: armings are
    /// held by its session.
    client: Option<Arc<tokio_postgres::Client>>,
}

/// One armed category.
#[derive(Debug, Default)]
struct Category {
    /// Its waiters, woken by its notifications.
    waiters: Arc<Notify>,
    /// True from a successful arming in the database until its
    /// notification (or a lost connection): armings meanwhile share it
    /// instead of asking the database again.
    armed: bool,
    /// Counts the wake-ups, so that an arming that raced with one does not
    /// record `armed` for a notification that has already come.
    wakes: u64,
    /// When its last notification came: the category is busy for
    /// `busy_category_window` after it.
    notified_at: Option<Instant>,
    /// The armings the listening session holds for it, each to be
    /// released once at its next notification.
    held: u32,
}

/// The store's handle on its listener task.
struct Listener {
    /// What the task is doing. Closed (the task's sender dropped) when the
    /// task is gone with its runtime.
    status: watch::Receiver<Status>,
    /// Dropped with the store's last clone (or when notifications turn out
    /// to be unavailable), which ends the task and closes its connection.
    _stop: oneshot::Sender<()>,
}

/// What the listener task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Opening its connection and sending `LISTEN`: a notification now
    /// would be missed.
    Connecting,
    /// Listening: every notification sent from now on reaches it.
    Listening,
}

impl Wakeups {
    pub(super) fn new(config: Arc<PgStoreConfig>) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                categories: HashMap::new(),
                listener: None,
                client: None,
            }),
            unavailable: AtomicBool::new(false),
            arm_failure_logged: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under the lock can panic half way through a change.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `store`'s `arm_wakeup` (see the module documentation).
    pub(super) async fn arm(self: &Arc<Self>, store: &PgStore, category: &str) -> Wakeup {
        if self.unavailable.load(Ordering::Acquire) {
            return Wakeup::never();
        }
        if !self.config.prepared_statements && self.config.listen.is_none() {
            self.turn_off_for_pooler();
            return Wakeup::never();
        }
        let mut status = self.listener();
        let listening = tokio::time::timeout(
            self.config.connect_timeout,
            status.wait_for(|status| *status == Status::Listening),
        )
        .await
        .map(|waited| waited.is_ok());
        match listening {
            Ok(true) => {}
            // The task is gone: its runtime is shutting down.
            Ok(false) => return Wakeup::never(),
            Err(_elapsed) => {
                tracing::debug!(
                    category,
                    "not listening for notifications yet: the wake-up comes when it is"
                );
                return Wakeup::new(async move {
                    let _ = status.wait_for(|status| *status == Status::Listening).await;
                });
            }
        }
        let (waiter, arming) = match self.register(category) {
            Registered::Shared(waiter) => return Wakeup::new(waiter),
            Registered::Busy(waiter, busy) => {
                // The store's busy polling stays at one read per
                // `busy_category_poll` in all, however many of its
                // categories are busy.
                let poll = self.config.busy_category_poll.saturating_mul(busy);
                return Wakeup::poll(async move {
                    tokio::select! {
                        () = waiter => {}
                        () = tokio::time::sleep(poll) => {}
                    }
                });
            }
            Registered::Arm(waiter, wakes) => (waiter, wakes),
        };
        let Some(client) = self.lock().client.clone() else {
            // The connection was lost since: woken when it listens again.
            return Wakeup::new(waiter);
        };
        // The arming runs on a task of its own and is counted there, so
        // that a caller that gives up (a timeout, a consumer stopping) does
        // not leave the session holding an arming nobody will release.
        let arm = tokio::spawn({
            let (this, client, category) = (Arc::clone(self), client, category.to_owned());
            async move {
                let armed = on_session(&client, operations::ARM_CATEGORY, &category).await;
                if armed.is_ok() {
                    this.armed(&category, arming, &client);
                }
                armed
            }
        });
        let after = store.config().call_timeout;
        let armed = match tokio::time::timeout(after, arm).await {
            Ok(Ok(armed)) => armed,
            // The runtime is shutting down.
            Ok(Err(_)) => return Wakeup::never(),
            Err(_) => Err(Error::Timeout {
                operation: "ebb_arm_category",
                after,
            }),
        };
        match armed {
            Ok(()) => {
                self.arm_failure_logged.store(false, Ordering::Relaxed);
                Wakeup::new(waiter)
            }
            Err(err) if err.sqlstate() == Some(&SqlState::UNDEFINED_FUNCTION) => {
                self.turn_off(&err);
                Wakeup::never()
            }
            Err(err) => {
                if self.arm_failure_logged.swap(true, Ordering::Relaxed) {
                    tracing::debug!(category, error = %err, "could not arm a wake-up");
                } else {
                    tracing::warn!(
                        category,
                        error = %err,
                        "could not arm a wake-up: readers poll until it can be armed again"
                    );
                }
                if err.is_transient() {
                    // The server is out of reach, so the listener will
                    // lose its connection too, and wake this waiter once
                    // it listens again: then arming may work.
                    Wakeup::new(waiter)
                } else {
                    Wakeup::never()
                }
            }
        }
    }

    /// The listener's status, starting the listener if none runs.
    fn listener(self: &Arc<Self>) -> watch::Receiver<Status> {
        let mut state = self.lock();
        if let Some(listener) = &state.listener {
            // Closed when its task was dropped with the runtime it ran on.
            if listener.status.has_changed().is_ok() {
                return listener.status.clone();
            }
        }
        let (status_sender, status) = watch::channel(Status::Connecting);
        let (stop, stopped) = oneshot::channel();
        let task = listen(
            Arc::downgrade(self),
            Arc::clone(&self.config),
            status_sender,
        );
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                _ = stopped => {}
            }
        });
        state.listener = Some(Listener {
            status: status.clone(),
            _stop: stop,
        });
        status
    }

    /// A waiter for `category`'s next notification, registered (enabled)
    /// now, so that a notification from now on wakes it even before it is
    /// first polled; and whether the database must be armed for it.
    fn register(&self, category: &str) -> Registered {
        let busy_window = self.config.busy_category_window;
        let is_busy = |entry: &Category| {
            entry
                .notified_at
                .is_some_and(|at| at.elapsed() < busy_window)
        };
        let mut state = self.lock();
        // Forget the categories nobody waits on (only the map holds their
        // `Notify`) that are neither armed nor busy.
        state.categories.retain(|_, entry| {
            Arc::strong_count(&entry.waiters) > 1 || entry.armed || is_busy(entry)
        });
        let entry = state.categories.entry(category.to_owned()).or_default();
        let mut waiter = Box::pin(Arc::clone(&entry.waiters).notified_owned());
        waiter.as_mut().enable();
        if entry.armed {
            Registered::Shared(waiter)
        } else if is_busy(entry) {
            let busy = state
                .categories
                .values()
                .filter(|entry| is_busy(entry))
                .count();
            Registered::Busy(waiter, u32::try_from(busy).unwrap_or(u32::MAX))
        } else {
            Registered::Arm(waiter, entry.wakes)
        }
    }

    /// Records that the listening session (`client`'s) holds one more
    /// arming of `category`, and that it is armed, unless a wake-up came
    /// since `wakes` was read (which did not release this arming: it is
    /// released now, or the category would notify at every write).
    fn armed(&self, category: &str, wakes: u64, client: &Arc<tokio_postgres::Client>) {
        let mut state = self.lock();
        let Some(entry) = state.categories.get_mut(category) else {
            return;
        };
        entry.held += 1;
        if entry.wakes == wakes {
            entry.armed = true;
        } else {
            disarm(client, category, std::mem::take(&mut entry.held));
        }
    }

    /// Wakes the waiters of `category`, whose notification came, and
    /// releases the session's armings of it.
    fn wake(&self, category: &str) {
        let mut state = self.lock();
        let client = state.client.clone();
        if let Some(entry) = state.categories.get_mut(category) {
            entry.armed = false;
            entry.wakes += 1;
            entry.notified_at = Some(Instant::now());
            entry.waiters.notify_waiters();
            if let Some(client) = &client {
                disarm(client, category, std::mem::take(&mut entry.held));
            }
        }
    }

    /// Wakes every waiter of every category; whether a category is armed
    /// is not known any more, so the next armings ask the database again.
    /// With the session `lost`, its armings went with it.
    fn wake_all(&self, lost: bool) {
        let mut state = self.lock();
        if lost {
            state.client = None;
        }
        for entry in state.categories.values_mut() {
            entry.armed = false;
            entry.wakes += 1;
            if lost {
                entry.held = 0;
            }
            entry.waiters.notify_waiters();
        }
    }

    /// Prepared statements are off, which says a transaction-pooling
    /// PgBouncer may be in front, where `LISTEN` does not hold, and no
    /// connection of its own is given for listening: says so once.
    fn turn_off_for_pooler(&self) {
        if self.unavailable.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            "wake-ups are off: prepared statements are off (EBB_PREPARED_STATEMENTS=off, for \
             a transaction pooler in front, where LISTEN does not hold) and no connection to \
             listen on is given (EBB_LISTEN_DATABASE_URL); readers poll for new messages"
        );
    }

    /// The database cannot arm (`err` says `ebb_arm_category` does not
    /// exist): says so once, and stops the listener.
    fn turn_off(&self, err: &Error) {
        if self.unavailable.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!(
            error = %err,
            "the database has no message_store.ebb_arm_category (a plain Message DB \
             install?): no wake-ups, readers poll for new messages; installing ebb's \
             schema adds them"
        );
        self.lock().listener = None;
    }
}

impl fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Wakeups")
            .field("categories", &state.categories.len())
            .field(
                "listener",
                &state.listener.as_ref().map(|l| *l.status.borrow()),
            )
            .field("unavailable", &self.unavailable.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What `register` found.
enum Registered {
    /// The category is armed in the database already: its notification
    /// wakes this waiter too.
    Shared(Pin<Box<OwnedNotified>>),
    /// The category is busy: the waiter, to be woken by the next poll at
    /// the latest, without arming the database; and how many of the
    /// store's categories are busy (this one included), which share the
    /// polling.
    Busy(Pin<Box<OwnedNotified>>, u32),
    /// The database must be armed; the category's wake count before.
    Arm(Pin<Box<OwnedNotified>>, u64),
}

/// How a listening connection ended.
enum Ended {
    /// The store's last clone was dropped: the task ends.
    StoreDropped,
    /// The connection failed or closed; `listened` tells whether it got
    /// as far as listening.
    Lost { listened: bool },
}

/// The listener task: listens, and opens its connection again when it is
/// lost, until the store is dropped.
async fn listen(wakeups: Weak<Wakeups>, config: Arc<PgStoreConfig>, status: watch::Sender<Status>) {
    let mut retry = FIRST_RETRY;
    let mut failures = 0_u32;
    loop {
        let (connection, tls) = listener_connection(&config);
        let listened = match super::connect_dedicated(&config, connection, tls).await {
            Ok((client, connection)) => {
                match listen_on(Arc::new(client), connection, &wakeups, &status).await {
                    Ended::StoreDropped => return,
                    Ended::Lost { listened } => {
                        status.send_replace(Status::Connecting);
                        // A notification may have gone down with the
                        // connection, and its armings with the session: the
                        // waiters read their category again rather than
                        // sleep.
                        let Some(shared) = wakeups.upgrade() else {
                            return;
                        };
                        shared.wake_all(true);
                        listened
                    }
                }
            }
            Err(err) => {
                if failures == 0 {
                    tracing::warn!(
                        error = %err,
                        "could not open the connection that listens for notifications: \
                         readers poll until it is open"
                    );
                } else {
                    tracing::debug!(error = %err, failures, "could not open the listening connection");
                }
                false
            }
        };
        if listened {
            retry = FIRST_RETRY;
            failures = 0;
        } else {
            failures += 1;
        }
        tokio::time::sleep(retry).await;
        if !listened {
            retry = (retry * 2).min(LAST_RETRY);
        }
        if wakeups.strong_count() == 0 {
            return;
        }
    }
}

/// The listening connection's settings, with [`LISTENER_APPLICATION_NAME`],
/// and its TLS settings: its own (see [`PgStoreConfig::listen`]), or the
/// store's.
fn listener_connection(config: &PgStoreConfig) -> (tokio_postgres::Config, &TlsSettings) {
    let (mut connection, tls) = match &config.listen {
        Some(listen) => (
            config.with_store_settings(listen.connection.clone()),
            &listen.tls,
        ),
        None => (config.effective_connection(), &config.tls),
    };
    let name = match connection.get_application_name() {
        Some(name) => format!("{name} ({LISTENER_APPLICATION_NAME})"),
        None => LISTENER_APPLICATION_NAME.to_owned(),
    };
    connection.application_name(&name);
    (connection, tls)
}

/// Listens on one connection until it is lost or the store is dropped.
async fn listen_on(
    client: Arc<tokio_postgres::Client>,
    mut connection: tokio_postgres::Connection<Socket, super::TlsStream<Socket>>,
    wakeups: &Weak<Wakeups>,
    status: &watch::Sender<Status>,
) -> Ended {
    // The connection is driven here rather than spawned, to see its
    // notifications; the answer to LISTEN, too, arrives only while it is
    // polled.
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {NOTIFY_CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    loop {
        tokio::select! {
            listened = &mut listen => match listened {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN failed: readers poll until it works");
                    return Ended::Lost { listened: false };
                }
            },
            message = messages.next() => {
                if let Some(ended) = lost(message, false) {
                    return ended;
                }
            }
        }
    }
    // Whatever was written while nobody listened: a waiter registered while
    // the connection was away would otherwise sleep until its poll.
    match wakeups.upgrade() {
        Some(shared) => {
            shared.lock().client = Some(Arc::clone(&client));
            status.send_replace(Status::Listening);
            shared.wake_all(false);
        }
        None => return Ended::StoreDropped,
    }
    tracing::debug!(channel = NOTIFY_CHANNEL, "listening for notifications");
    loop {
        let message = messages.next().await;
        if let Some(Ok(AsyncMessage::Notification(notification))) = &message {
            let Some(shared) = wakeups.upgrade() else {
                return Ended::StoreDropped;
            };
            shared.wake(notification.payload());
        } else if let Some(ended) = lost(message, true) {
            return ended;
        }
    }
}

/// Runs `sql` (arming or disarming) for `category` on the listening
/// session.
async fn on_session(
    client: &tokio_postgres::Client,
    sql: &str,
    category: &str,
) -> Result<(), Error> {
    client
        .execute(sql, &[&category])
        .await
        .map(drop)
        .map_err(crate::error::classify)
}

/// Releases `count` armings of `category` held by `client`'s session, in
/// the background (the listener task drives the connection, so the answer
/// comes while it listens). A failure means the session is gone, and the
/// armings with it.
fn disarm(client: &Arc<tokio_postgres::Client>, category: &str, count: u32) {
    if count == 0 {
        return;
    }
    let (client, category) = (Arc::clone(client), category.to_owned());
    tokio::spawn(async move {
        for _ in 0..count {
            if let Err(err) = on_session(&client, operations::DISARM_CATEGORY, &category).await {
                tracing::debug!(category, error = %err, "could not disarm a category");
                return;
            }
        }
    });
}

/// What a message other than a notification means for the connection:
/// `Some` when it is lost (logged here), `None` for a notice.
fn lost(
    message: Option<Result<AsyncMessage, tokio_postgres::Error>>,
    listened: bool,
) -> Option<Ended> {
    match message {
        Some(Ok(_notice)) => None,
        Some(Err(err)) => {
            tracing::warn!(
                error = %err,
                "lost the connection that listens for notifications: waking every \
                 waiter, and listening again"
            );
            Some(Ended::Lost { listened })
        }
        None => {
            tracing::warn!(
                "the connection that listens for notifications closed: waking every \
                 waiter, and listening again"
            );
            Some(Ended::Lost { listened })
        }
    }
}
