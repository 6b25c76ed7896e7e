//! [`Observed`]: a store that does what the store it wraps does and notes,
//! in order, what its user did with it: the armings and what they gave,
//! the wake-ups that came, the category reads begun and ended. A test
//! waits for the event it needs ([`Observed::wait_for`]) instead of
//! sleeping for it, and can tell a wake-up by notification from the busy
//! poll's. Calls that fail with a transient error are noted too.
//!
//! [`Observed::before_write`] also lets a test hold writes at a point of
//! its choosing (two writers that must collide, say).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use ebb_message_store::{
    CategoryQuery, Error, ExpectedVersion, Message, MessageData, MessageStore, MessageStream,
    StreamName, StreamQuery, Wakeup,
};
use futures_util::StreamExt as _;
use tokio::sync::watch;

/// What the user of an [`Observed`] store did, or what came to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `arm_wakeup` was called (noted at the call, before it is awaited).
    ArmCalled,
    /// An arming gave a wake-up: `poll` for the busy poll's (nothing
    /// armed in the database), else one a notification completes.
    Armed { poll: bool },
    /// An arming gave [`Wakeup::never`].
    Never,
    /// A wake-up completed (as its holder saw it): `poll` as it was armed.
    Woken { poll: bool },
    /// A category read was opened.
    ReadOpened,
    /// A category read ended: its reader has read all there was.
    CaughtUp,
    /// A call (a read, a write) failed with a transient error.
    Failed,
}

/// Waits a test gives a write before it goes to the store.
type BeforeWrite = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A store that notes what is done with it (see the module documentation).
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    events: Arc<watch::Sender<Vec<Event>>>,
    before_write: Arc<Mutex<Option<BeforeWrite>>>,
}

impl<S> std::fmt::Debug for Observed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("events", &self.events.borrow().len())
            .finish_non_exhaustive()
    }
}

impl<S: MessageStore> Observed<S> {
    /// `inner`, observed.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            events: Arc::new(watch::Sender::new(Vec::new())),
            before_write: Arc::default(),
        }
    }

    /// Every write (`write` and `write_batch`) awaits `wait()` first, from
    /// now on.
    pub fn before_write<F, Fut>(&self, wait: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let wait: BeforeWrite = Arc::new(move || Box::pin(wait()));
        *self.before_write.lock().unwrap() = Some(wait);
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    /// How many events so far: a mark to look at what came after it.
    pub fn mark(&self) -> usize {
        self.events.borrow().len()
    }

    /// The events since `mark`.
    pub fn since(&self, mark: usize) -> Vec<Event> {
        self.events.borrow()[mark..].to_vec()
    }

    /// Waits until `done` holds for the events since `mark`, at most
    /// `within` (then panics, naming `what` and showing the last of them);
    /// the number of events when it held.
    pub async fn wait_for(
        &self,
        what: &str,
        mark: usize,
        within: Duration,
        mut done: impl FnMut(&[Event]) -> bool,
    ) -> usize {
        let mut events = self.events.subscribe();
        let waited =
            tokio::time::timeout(within, events.wait_for(|events| done(&events[mark..]))).await;
        match waited {
            Ok(Ok(events)) => events.len(),
            Ok(Err(_)) => unreachable!("the sender lives in self"),
            Err(_) => {
                let since = self.since(mark);
                let last = &since[since.len().saturating_sub(30)..];
                panic!(
                    "{what}: not within {within:?}; {} events since, the last: {last:?}",
                    since.len()
                )
            }
        }
    }

    /// Waits until the store's user waits for a notification: its last
    /// arming armed the database (it was not the busy poll's), a category
    /// read ended after it (the read once more after arming found
    /// nothing), and neither a wake-up nor another arming came since. A
    /// store that polls a busy category instead of arming it gets there
    /// only once the busy window has passed, as the store measures it.
    /// Panics after `within`.
    pub async fn waiting_for_notification(&self, within: Duration) {
        self.wait_for(
            "armed in the database, then caught up",
            0,
            within,
            waits_for_notification,
        )
        .await;
    }

    fn note(&self, event: Event) {
        self.events.send_modify(|events| events.push(event));
    }

    /// Notes a transient failure in `result`, and gives it back.
    fn noted<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if result.as_ref().is_err_and(Error::is_transient) {
            self.note(Event::Failed);
        }
        result
    }

    async fn before_writing(&self) {
        let wait = self.before_write.lock().unwrap().clone();
        if let Some(wait) = wait {
            wait().await;
        }
    }
}

/// Whether, after `events`, their user waits for a notification (see
/// [`Observed::waiting_for_notification`]).
pub fn waits_for_notification(events: &[Event]) -> bool {
    let Some(last) = events
        .iter()
        .rposition(|event| matches!(event, Event::Armed { .. } | Event::Never))
    else {
        return false;
    };
    let after = &events[last + 1..];
    events[last] == (Event::Armed { poll: false })
        && after.contains(&Event::CaughtUp)
        && !after
            .iter()
            .any(|event| matches!(event, Event::Woken { .. } | Event::ArmCalled))
}

impl<S: MessageStore> MessageStore for Observed<S> {
    async fn write(
        &self,
        stream_name: &StreamName,
        message: &MessageData,
        expected_version: ExpectedVersion,
    ) -> Result<i64, Error> {
        self.before_writing().await;
        self.noted(
            self.inner
                .write(stream_name, message, expected_version)
                .await,
        )
    }

    async fn write_batch(
        &self,
        stream_name: &StreamName,
        messages: &[MessageData],
        expected_version: ExpectedVersion,
    ) -> Result<Option<i64>, Error> {
        self.before_writing().await;
        self.noted(
            self.inner
                .write_batch(stream_name, messages, expected_version)
                .await,
        )
    }

    async fn get_stream_messages(
        &self,
        stream_name: &str,
        query: &StreamQuery,
    ) -> Result<Vec<Message>, Error> {
        self.noted(self.inner.get_stream_messages(stream_name, query).await)
    }

    async fn get_category_messages(
        &self,
        category: &str,
        query: &CategoryQuery,
    ) -> Result<Vec<Message>, Error> {
        self.noted(self.inner.get_category_messages(category, query).await)
    }

    async fn get_last_stream_message(
        &self,
        stream_name: &str,
        type_name: Option<&str>,
    ) -> Result<Option<Message>, Error> {
        self.noted(
            self.inner
                .get_last_stream_message(stream_name, type_name)
                .await,
        )
    }

    async fn stream_version(&self, stream_name: &str) -> Result<Option<i64>, Error> {
        self.noted(self.inner.stream_version(stream_name).await)
    }

    async fn category_head(&self, category: &str) -> Result<Option<i64>, Error> {
        self.noted(self.inner.category_head(category).await)
    }

    // What an arming gives is a wake-up, itself a future: so it is meant.
    #[allow(clippy::async_yields_async)]
    fn arm_wakeup(&self, category: &str) -> impl Future<Output = Wakeup> + Send {
        // Noted at the call: what the caller does next comes after it.
        self.note(Event::ArmCalled);
        let arming = self.inner.arm_wakeup(category);
        let this = self.clone();
        async move {
            let wakeup = arming.await;
            if !wakeup.is_armed() {
                this.note(Event::Never);
                return wakeup;
            }
            let poll = wakeup.is_poll();
            this.note(Event::Armed { poll });
            let woken = async move {
                wakeup.await;
                this.note(Event::Woken { poll });
            };
            if poll {
                Wakeup::poll(woken)
            } else {
                Wakeup::new(woken)
            }
        }
    }

    fn read_stream<'a>(&'a self, stream_name: &'a str, query: StreamQuery) -> MessageStream<'a> {
        self.inner
            .read_stream(stream_name, query)
            .map(|message| self.noted(message))
            .boxed()
    }

    fn read_category<'a>(&'a self, category: &'a str, query: CategoryQuery) -> MessageStream<'a> {
        self.note(Event::ReadOpened);
        let mut noted = false;
        let ended = futures_util::stream::poll_fn(move |_| {
            if !std::mem::replace(&mut noted, true) {
                self.note(Event::CaughtUp);
            }
            Poll::Ready(None)
        });
        self.inner
            .read_category(category, query)
            .map(|message| self.noted(message))
            .chain(ended)
            .boxed()
    }
}
