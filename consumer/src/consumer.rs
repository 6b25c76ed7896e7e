//! The [`Consumer`]: reads a category from its recorded position, gives
//! every message to its handlers in order, and records how far it got.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ebb_handler::{BoxError, Dispatcher};
use ebb_message_store::{Message, MessageStore};
use ebb_retry::Chain;
use tracing::Instrument as _;

use crate::control::Control;
use crate::feed::{Fed, Feed};
use crate::metrics::ConsumerMetrics;
use crate::poison::{Failure, Ledger, Settled};
use crate::position::PositionStore;
use crate::retries::Retries;
use crate::{ConsumerConfig, Error};
use progress::{Progress, Recorder};

mod concurrent;
mod progress;
mod replaying;

pub use concurrent::WINDOW_PER_SLOT;

/// What a consumer does after a handler failed on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Stop at the message: its position is not recorded as done, and
    /// [`Consumer::run`] returns the error (the default: the process ends
    /// and its supervisor restarts it at the message).
    Stop,
    /// Count the message as handled and go on.
    Continue,
}

/// The error hook: sees every handler error with its message and decides.
type ErrorHook = Arc<dyn Fn(&BoxError, &Message) -> OnError + Send + Sync>;

/// Reads one category and dispatches every message to its handlers, in
/// order, as Eventide's consumer does.
///
/// - It starts from the recorded position (inclusively: the message at
///   the recorded position is handled again; handlers are idempotent) or
///   from the start of the category.
/// - It reads batches of [`batch_size`](ConsumerConfig::batch_size) and,
///   when caught up, arms a wake-up ([`MessageStore::arm_wakeup`]; with
///   [`wake_on_notify`](ConsumerConfig::wake_on_notify), the default),
///   reads once more, and waits for the next write to its category or
///   [`poll_interval`](ConsumerConfig::poll_interval), whichever comes
///   first. The store reads the next batch while this one is handled
///   ([`MessageStore::read_category`]), so at most two batches are held. A
///   read that fails with a transient error is retried at the
///   [`store_retry_ms`](ConsumerConfig::store_retry_ms) intervals.
/// - It handles one message at a time, or up to
///   [`concurrency`](ConsumerConfig::concurrency) of different streams at
///   once, each stream's in order.
/// - It records the position of the last handled message every
///   [`position_update_interval`](ConsumerConfig::position_update_interval)
///   messages and when it stops; never past a message whose handling
///   failed or did not finish. A record is written while the next
///   messages are handled, one at a time, retried as a read is; one that
///   still fails stops the consumer with [`Error::Store`].
/// - A handler that fails is tried again at the
///   [`handler_retry_ms`](ConsumerConfig::handler_retry_ms) intervals.
/// - A handler's error (a message that does not decode among them) goes to
///   the error hook; by default the consumer stops there and
///   [`run`](Self::run) returns [`Error::Handler`].
/// - Poison messages (a failure that stops it is recorded; parking after
///   K such failures or after in-process retries): see
///   [poison messages](crate#poison-messages).
/// - Each message is handled inside an `info` span named `message`, with
///   the fields `stream`, `position`, `global_position`, `type` and `id`;
///   the consumer's own events are inside a span named `consumer`, with
///   `category` and `consumer` (its identifier, when it has one).
///
/// ```no_run
/// # async fn example() -> Result<(), ebb_consumer::Error> {
/// use ebb_consumer::{Consumer, ConsumerConfig, Control};
/// use ebb_handler::{BoxError, Dispatcher, Received, message};
///
/// #[message]
/// struct Deposit { account_id: String, amount: i64 }
///
/// let store = ebb_message_store::PgStore::from_env()?;
/// let handlers = Dispatcher::new().on(|deposit: Received<Deposit>| async move {
///     tracing::info!(amount = deposit.amount, "deposit");
///     Ok::<_, BoxError>(())
/// });
/// let consumer = Consumer::new(
///     ConsumerConfig { identifier: Some("worker1".into()), ..ConsumerConfig::new("account:command") },
///     store,
/// )?
/// .handler(handlers);
/// consumer.run(&Control::new()).await?;
/// # Ok(()) }
/// ```
pub struct Consumer<S, E = BoxError> {
    config: ConsumerConfig,
    store: S,
    /// In the order added; every message goes to each.
    handlers: Vec<Dispatcher<E>>,
    positions: PositionStore<S>,
    /// Decides after a handler's error; `None` stops.
    on_error: Option<ErrorHook>,
    /// The store's and the handlers' retry policies.
    retries: Retries,
    /// Registered when the consumer first runs (a host installs its
    /// recorder before it starts its consumers).
    metrics: OnceLock<ConsumerMetrics>,
    /// Poison messages: the failures and parked streams (poison.rs).
    ledger: Ledger<S>,
}

impl<S: fmt::Debug, E> fmt::Debug for Consumer<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("handlers", &self.handlers)
            .field("on_error", &self.on_error.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, E> Consumer<S, E>
where
    S: MessageStore + Clone,
    E: Into<BoxError> + From<ebb_handler::Error> + Send + 'static,
{
    /// A consumer of `config.category` in `store`, without handlers yet;
    /// settings no consumer can run with are refused.
    pub fn new(config: ConsumerConfig, store: S) -> Result<Self, Error> {
        config.validate()?;
        let retries = Retries::new(&config)?;
        let positions = PositionStore::new(store.clone(), config.position_stream_name()?);
        let ledger = Ledger::new(&config, store.clone(), retries.store.clone())?;
        Ok(Self {
            ledger,
            config,
            store,
            handlers: Vec::new(),
            positions,
            on_error: None,
            retries,
            metrics: OnceLock::new(),
        })
    }

    /// Adds handlers; every message goes to each added, in order.
    #[must_use]
    pub fn handler(mut self, handlers: Dispatcher<E>) -> Self {
        self.handlers.push(handlers);
        self
    }

    /// Decides what follows a handler's error (default: [`OnError::Stop`]).
    #[must_use]
    pub fn on_error(
        mut self,
        hook: impl Fn(&BoxError, &Message) -> OnError + Send + Sync + 'static,
    ) -> Self {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// The settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Where the position is recorded.
    pub fn positions(&self) -> &PositionStore<S> {
        &self.positions
    }

    /// Consumes until `control` says stop (then returns `Ok` after
    /// recording the position) or until an error stops it.
    pub async fn run(&self, control: &Control) -> Result<(), Error> {
        self.run_with(control, || {}).await
    }

    /// Like [`run`](Self::run), calling `started` once the consumer has
    /// read its position and is about to read its first batch.
    #[tracing::instrument(
        name = "consumer",
        skip_all,
        fields(
            category = %self.config.category,
            consumer = self.config.identifier.as_deref(),
        )
    )]
    pub async fn run_with(&self, control: &Control, started: impl FnOnce()) -> Result<(), Error> {
        let store = &self.retries.store;
        let recorded = store.run(|_| self.positions.get()).await;
        let recorded = recorded.map_err(ebb_retry::RetryError::into_last)?;
        // Poison messages: how often each message has ended the process.
        self.ledger.load().await?;
        let mut progress = Progress::starting_at(recorded.unwrap_or(1));
        // Registered now, with the recorder the host installed before it
        // started its consumers.
        self.metrics();
        tracing::info!(
            position_stream = %self.positions.stream_name(),
            start = progress.next,
            "consumer started"
        );
        started();
        let mut recorder = Recorder::default();
        let result = {
            let consuming = async {
                if self.config.concurrency > 1 {
                    self.consume_concurrently(control, &mut progress, &mut recorder)
                        .await
                } else {
                    self.consume(control, &mut progress, &mut recorder).await
                }
            };
            // Replays of parked messages are carried out beside
            // (replaying.rs); an error there stops the consumer as one
            // here does.
            let replaying = self.replays(control);
            tokio::pin!(consuming, replaying);
            tokio::select! {
                result = &mut consuming => result,
                replayed = &mut replaying => match replayed {
                    Ok(()) => consuming.await,
                    Err(err) => Err(err),
                },
            }
        };
        self.stop(result, &mut progress, &mut recorder).await
    }

    /// Stopping, or stopped by an error: records how far it got (never
    /// past a message that failed or did not finish). After an error,
    /// once only: the store may be what failed, and the process should
    /// end without waiting out the retries a second time.
    async fn stop<'a>(
        &'a self,
        result: Result<(), Error>,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        if let Err(err) = result {
            if let Err(record_err) = self.record_once(progress, recorder).await {
                tracing::warn!(
                    error = %Chain::new(&record_err),
                    "could not record the position on the way out"
                );
            }
            return Err(err);
        }
        self.record_last(progress, recorder).await?;
        tracing::info!("consumer stopped");
        Ok(())
    }

    /// Reads and handles one message at a time until stopped or failed
    /// (the protocol is the [`Feed`]'s).
    async fn consume<'a>(
        &'a self,
        control: &Control,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        let mut feed = Feed::new(
            &self.store,
            &self.config,
            &self.retries.store,
            progress.next,
        );
        loop {
            if !control.proceed().await {
                return Ok(());
            }
            let message = match feed.next(control).await? {
                Some(Fed::Message(message)) => message,
                Some(Fed::CaughtUp) => {
                    self.caught_up(progress, recorder).await?;
                    continue;
                }
                None => return Ok(()),
            };
            // Messages in hand are handled without waiting, so without
            // this a batch would hold the thread: the other tasks of the
            // runtime (the next batch's read, the position record, other
            // consumers, the host) get their turn every so often.
            tokio::task::consume_budget().await;
            if !control.proceed().await {
                return Ok(());
            }
            recorder.progress().await?;
            let message = Arc::new(message);
            self.handle(&message).await?;
            self.advance(progress, recorder, message.global_position, 1)
                .await?;
        }
    }

    /// Gives `message` to every handler, inside its span
    /// ([`ebb_handler::message_span`]), and measures it.
    pub(crate) async fn handle(&self, message: &Arc<Message>) -> Result<(), Error> {
        let metrics = self.metrics();
        let started = Instant::now();
        let result = self
            .dispatch(message)
            .instrument(ebb_handler::message_span(message))
            .await;
        metrics.handler_seconds.record(started.elapsed());
        if result.is_ok() {
            metrics.handled.increment(1);
        }
        result
    }

    /// This consumer's metrics (see the [metrics](crate#metrics)).
    pub(crate) fn metrics(&self) -> &ConsumerMetrics {
        self.metrics.get_or_init(|| {
            ConsumerMetrics::new(&self.config.category, self.config.identifier.as_deref())
        })
    }

    /// Every handler, in order, each retried by the handler policy, with
    /// the error hook's decisions.
    async fn dispatch(&self, message: &Arc<Message>) -> Result<(), Error> {
        // Poison messages: one that has ended the process K times is
        // parked instead of handled (poison.rs).
        if self.ledger.park_if_poisoned(message).await? {
            self.metrics().parked.increment(1);
            return Ok(());
        }
        for handlers in &self.handlers {
            let Err(Failure { error, attempts }) = self.dispatch_to(handlers, message).await else {
                continue;
            };
            self.metrics().errors.increment(1);
            tracing::error!(error = %Chain::new(&*error), attempts, "handler failed");
            let decision = self
                .on_error
                .as_ref()
                .map_or(OnError::Stop, |hook| hook(&error, message));
            if decision == OnError::Continue {
                continue;
            }
            // Poison messages: parked (park_after_retries), or the
            // failure recorded before stopping (poison.rs).
            if self.ledger.settle(message, &error, attempts).await? == Settled::Parked {
                self.metrics().parked.increment(1);
                return Ok(());
            }
            return Err(Error::Handler {
                stream_name: message.stream_name.clone(),
                position: message.position,
                global_position: message.global_position,
                type_name: message.type_name.clone(),
                error,
            });
        }
        Ok(())
    }

    /// Gives `message` to `handlers`, and again after each of the
    /// [`handler_retry_ms`](ConsumerConfig::handler_retry_ms) waits while
    /// they fail.
    async fn dispatch_to(
        &self,
        handlers: &Dispatcher<E>,
        message: &Arc<Message>,
    ) -> Result<(), Failure> {
        let retried = &self.metrics().retries;
        let dispatched = self
            .retries
            .handler
            .run_boxed(|cycle| async move {
                if cycle > 0 {
                    retried.increment(1);
                }
                match handlers.dispatch_shared(message).await {
                    Ok(_) => Ok(()),
                    Err(err) => Err(err.into()),
                }
            })
            .await;
        dispatched.map_err(|failed| Failure {
            attempts: u32::try_from(failed.attempts()).unwrap_or(u32::MAX),
            error: failed.into_last(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use ebb_handler::{Received, message};
    use ebb_message_store::{ExpectedVersion, MemoryStore, MessageData, StreamName};
    use serde_json::json;

    use super::*;

    #[message]
    struct Noted {
        n: i64,
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_handler_runs_again_after_each_wait() {
        let store = MemoryStore::new();
        let stream = StreamName::parse("note-1").unwrap();
        let note = MessageData::new("Noted", json!({ "n": 1 }));
        store
            .write(&stream, &note, ExpectedVersion::Any)
            .await
            .unwrap();
        let message = Arc::new(store.stream_messages("note-1").remove(0));
        let calls = Arc::new(AtomicU32::new(0));
        // Fails the first `fails` times.
        let handlers = |fails: u32| {
            let calls = Arc::clone(&calls);
            calls.store(0, Ordering::SeqCst);
            Dispatcher::new().on(move |_: Received<Noted>| {
                let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if call <= fails {
                        return Err::<(), BoxError>(format!("call {call}").into());
                    }
                    Ok(())
                }
            })
        };
        let config = ConsumerConfig {
            identifier: Some("w".into()),
            handler_retry_ms: vec![10, 20],
            ..ConsumerConfig::new("note")
        };
        let consumer = Consumer::new(config, store).unwrap();
        let started = tokio::time::Instant::now();
        let dispatched = consumer.dispatch_to(&handlers(2), &message).await;
        assert!(dispatched.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_millis(30));
        let Err(Failure { error, attempts }) = consumer.dispatch_to(&handlers(5), &message).await
        else {
            panic!("the retries are spent");
        };
        assert_eq!((attempts, error.to_string().as_str()), (3, "call 3"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
