//! The [`Consumer`]: reads a category from its recorded position, gives
//! every message to its handlers in order, and records how far it got.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use ebb_handler::{BoxError, Dispatcher};
use ebb_message_store::{Message, MessageStore, Wakeup};
use ebb_retry::{Retry, RetryError};
use futures_util::TryStreamExt as _;
use tracing::Instrument as _;

use crate::control::Control;
use crate::metrics::{ConsumerMetrics, LAG_SAMPLE_INTERVAL};
use crate::poison::{Failure, Poison, Settled};
use crate::position::PositionStore;
use crate::{ConsumerConfig, Error};

mod concurrent;

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
///   [`read_retry_ms`](ConsumerConfig::read_retry_ms) intervals.
/// - It handles one message at a time, or up to
///   [`concurrency`](ConsumerConfig::concurrency) of different streams at
///   once, each stream's in order.
/// - It records the position of the last handled message every
///   [`position_update_interval`](ConsumerConfig::position_update_interval)
///   messages and when it stops; never past a message whose handling
///   failed or did not finish. A record is written while the next
///   messages are handled, one at a time, retried as a read is; one that
///   still fails stops the consumer with [`Error::Store`].
/// - A handler's error (a message that does not decode among them) goes to
///   the error hook; by default the consumer stops there and
///   [`run`](Self::run) returns [`Error::Handler`].
/// - Poison messages (a failure that stops it is recorded; parking after
///   K such failures or after in-process retries): see [`crate::poison`].
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
    /// Retries a read that failed with a transient error.
    read_retry: Retry,
    /// Registered when the consumer first runs (a host installs its
    /// recorder before it starts its consumers).
    metrics: OnceLock<ConsumerMetrics>,
    /// Poison messages: failure records, parking, handler retries
    /// (poison.rs).
    poison: Poison<S>,
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

/// Where a running consumer stands.
#[derive(Debug)]
struct Progress {
    /// The global position the next read starts at.
    next: i64,
    /// The global position of the last message handled, if any.
    handled: Option<i64>,
    /// Messages handled since the position was last recorded.
    unrecorded: u64,
    /// When the lag was last measured.
    lag_sampled: Option<Instant>,
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
        let positions = PositionStore::new(store.clone(), config.position_stream_name()?);
        let read_retry = config.read_retry()?;
        // Poison messages (poison.rs).
        let poison = Poison::new(&config, store.clone())?;
        Ok(Self {
            poison,
            config,
            store,
            handlers: Vec::new(),
            positions,
            on_error: None,
            read_retry,
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
    pub async fn run_with(&self, control: &Control, started: impl FnOnce()) -> Result<(), Error> {
        let recorded = self.positions.get().await?;
        // Poison messages: how often each message has ended the process
        // (poison.rs).
        self.poison.load().await?;
        let mut progress = Progress {
            next: recorded.unwrap_or(1),
            handled: None,
            unrecorded: 0,
            lag_sampled: None,
        };
        // Registered now, with the recorder the host installed before it
        // started its consumers.
        self.metrics();
        tracing::info!(
            category = %self.config.category,
            position_stream = %self.positions.stream_name(),
            start = progress.next,
            "consumer started"
        );
        started();
        let mut recorder = Recorder::default();
        let result = if self.config.concurrency > 1 {
            self.consume_concurrently(control, &mut progress, &mut recorder)
                .await
        } else {
            self.consume(control, &mut progress, &mut recorder).await
        };
        // Stopping, or stopped by an error: record how far it got (never
        // past a message that failed or did not finish). After an error,
        // once only: the store may be what failed, and the process should
        // end without waiting out the retries a second time.
        let recorded = match &result {
            Ok(()) => self.record_last(&mut progress, &mut recorder).await,
            Err(_) => self.record_once(&mut progress, &mut recorder).await,
        };
        match (result, recorded) {
            (Err(err), recorded) => {
                if let Err(record_err) = recorded {
                    tracing::warn!(error = %record_err, "could not record the position on the way out");
                }
                Err(err)
            }
            (Ok(()), recorded) => {
                recorded?;
                tracing::info!(category = %self.config.category, "consumer stopped");
                Ok(())
            }
        }
    }

    /// Reads and handles until stopped or failed. The store reads one
    /// batch ahead (see [`MessageStore::read_category`]), so the next
    /// batch is on its way while this one is handled, and never more than
    /// two batches are held. A read of a short batch means caught up: the
    /// consumer waits the poll interval and reads on from where it is.
    async fn consume<'a>(
        &'a self,
        control: &Control,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        // Transient read failures in a row; a message read resets it.
        let mut failures = 0;
        // Armed for the next write to the category, once caught up.
        let mut wakeup: Option<Wakeup> = None;
        'read: loop {
            if !control.proceed().await {
                return Ok(());
            }
            let mut read_any = false;
            let mut messages = self
                .store
                .read_category(&self.config.category, self.config.query(progress.next));
            loop {
                let message = match messages.try_next().await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(err) => {
                        drop(messages);
                        self.read_failed(err, &mut failures).await?;
                        continue 'read;
                    }
                };
                failures = 0;
                read_any = true;
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
                progress.next = message.global_position + 1;
                progress.handled = Some(message.global_position);
                progress.unrecorded += 1;
                self.metrics().position.set(message.global_position as f64);
                if progress.unrecorded >= self.config.position_update_interval {
                    self.record(progress, recorder).await?;
                }
            }
            // Caught up: the record in flight is finished before waiting.
            recorder.finish().await?;
            self.sample_lag(progress).await;
            if read_any {
                // What woke it, or the write it was armed for, is read.
                wakeup = None;
            }
            if wakeup.is_none() && self.config.wake_on_notify {
                // Arming may wait for the store's listening connection (up to
                // its connect timeout): a stop does not wait for it.
                let armed = tokio::select! {
                    armed = self.arm_wakeup() => armed,
                    () = control.stopped() => return Ok(()),
                };
                // A poll (a busy category) arms nothing: no write can have
                // slipped in, and the poll comes soon.
                let read_again = armed.is_armed() && !armed.is_poll();
                wakeup = Some(armed);
                if read_again {
                    // A write may have come between the read and the
                    // arming: read once more before waiting.
                    continue 'read;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = wake(&mut wakeup) => wakeup = None,
                () = control.stopped() => return Ok(()),
            }
        }
    }

    /// Arms a wake-up for the category (a store that cannot notify says
    /// so once, and the consumer polls).
    async fn arm_wakeup(&self) -> Wakeup {
        self.store.arm_wakeup(&self.config.category).await
    }

    /// After a failed read: waits before the next attempt if the error is
    /// transient and the retries are not spent, else gives it back.
    async fn read_failed(
        &self,
        err: ebb_message_store::Error,
        failures: &mut usize,
    ) -> Result<(), Error> {
        let wait = self.read_retry_wait(err, failures)?;
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// How long to wait before reading again after a failed read, or the
    /// error if it is not transient or the retries are spent.
    fn read_retry_wait(
        &self,
        err: ebb_message_store::Error,
        failures: &mut usize,
    ) -> Result<Duration, Error> {
        let wait = self.config.read_retry_ms.get(*failures).copied();
        let Some(wait) = wait.filter(|_| err.is_transient()) else {
            return Err(Error::Store(err));
        };
        *failures += 1;
        tracing::warn!(
            category = %self.config.category,
            attempt = *failures,
            wait_ms = wait,
            error = %Chain(&err),
            "read failed; reading again"
        );
        Ok(Duration::from_millis(wait))
    }

    /// Gives `message` to every handler, inside its span, and measures it.
    async fn handle(&self, message: &Arc<Message>) -> Result<(), Error> {
        let span = tracing::debug_span!(
            "message",
            stream = %message.stream_name,
            position = message.position,
            global_position = message.global_position,
            r#type = %message.type_name,
        );
        let metrics = self.metrics();
        let started = Instant::now();
        let result = self.dispatch(message).instrument(span).await;
        metrics.handler_seconds.record(started.elapsed());
        if result.is_ok() {
            metrics.handled.increment(1);
        }
        result
    }

    /// This consumer's metrics (see [`crate::metrics`]).
    fn metrics(&self) -> &ConsumerMetrics {
        self.metrics.get_or_init(|| {
            ConsumerMetrics::new(&self.config.category, self.config.identifier.as_deref())
        })
    }

    /// Measures the lag, unless it was measured less than
    /// [`LAG_SAMPLE_INTERVAL`] ago. A failure to measure is only logged:
    /// the reads will say if the store is gone.
    async fn sample_lag(&self, progress: &mut Progress) {
        if progress
            .lag_sampled
            .is_some_and(|at| at.elapsed() < LAG_SAMPLE_INTERVAL)
        {
            return;
        }
        progress.lag_sampled = Some(Instant::now());
        match self.store.category_head(&self.config.category).await {
            Ok(head) => {
                let at = progress.handled.unwrap_or(progress.next - 1);
                let lag = head.map_or(0, |head| (head - at).max(0));
                self.metrics().lag.set(lag as f64);
            }
            Err(err) => {
                tracing::debug!(error = %Chain(&err), "could not measure the lag");
            }
        }
    }

    /// Every handler, in order, with the error hook's decisions.
    async fn dispatch(&self, message: &Arc<Message>) -> Result<(), Error> {
        // Poison messages: one that has ended the process K times is
        // parked instead of handled (poison.rs).
        if self.poison.park_if_poisoned(message).await? {
            self.metrics().parked.increment(1);
            return Ok(());
        }
        for handlers in &self.handlers {
            // Poison messages: tried again at handler_retry_ms (poison.rs).
            let Err(Failure { error, attempts }) = self
                .poison
                .dispatch(handlers, message, &self.metrics().retries)
                .await
            else {
                continue;
            };
            self.metrics().errors.increment(1);
            tracing::error!(
                stream = %message.stream_name,
                position = message.position,
                global_position = message.global_position,
                r#type = %message.type_name,
                error = %Chain(&*error),
                "handler failed"
            );
            let decision = self
                .on_error
                .as_ref()
                .map_or(OnError::Stop, |hook| hook(&error, message));
            if decision == OnError::Stop {
                // Poison messages: parked (park_after_retries), or the
                // failure recorded before stopping (poison.rs).
                if self.poison.settle(message, &error, attempts).await? == Settled::Parked {
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
        }
        Ok(())
    }

    /// Starts recording the last handled message's position, so that
    /// handling goes on while it is written: the write is polled along
    /// with the messages (no task of its own, so no thread hand-offs). One
    /// record at a time: the previous one is finished first (it has had a
    /// whole interval of messages to finish), and if it failed (after the
    /// retries, as a read) the consumer stops here. Recording a position
    /// again is harmless (the last record counts), so a write whose
    /// outcome is unknown may be repeated.
    async fn record<'a>(
        &'a self,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        recorder.finish().await?;
        let Some(position) = Self::unrecorded(progress) else {
            return Ok(());
        };
        let write = self.read_retry.run(move |_| self.positions.write(position));
        recorder.pending = Some(Box::pin(async move {
            write.await.map_err(RetryError::into_last)
        }));
        progress.unrecorded = 0;
        // The first poll sends the write.
        recorder.progress().await?;
        self.sample_lag(progress).await;
        Ok(())
    }

    /// On a graceful stop: finishes the record in flight, then records
    /// the last handled position and waits for it, retrying as a read is
    /// retried.
    async fn record_last<'a>(
        &'a self,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        self.record(progress, recorder).await?;
        recorder.finish().await
    }

    /// After an error: the record in flight is given up, and the last
    /// handled position is written once, without retrying.
    async fn record_once(
        &self,
        progress: &mut Progress,
        recorder: &mut Recorder<'_>,
    ) -> Result<(), Error> {
        // Dropping a write in flight cancels it; the write below records
        // the same position or a later one.
        let position = if recorder.pending.take().is_some() {
            progress.handled
        } else {
            Self::unrecorded(progress)
        };
        let Some(position) = position else {
            return Ok(());
        };
        self.positions.put(position).await?;
        progress.unrecorded = 0;
        Ok(())
    }

    /// The position to record: the last handled message's, if any was
    /// handled since the last record.
    fn unrecorded(progress: &Progress) -> Option<i64> {
        progress.handled.filter(|_| progress.unrecorded > 0)
    }
}

/// Completes when `wakeup` does; pending without one (a
/// [`Wakeup::never`] stays pending by itself).
async fn wake(wakeup: &mut Option<Wakeup>) {
    match wakeup {
        Some(wakeup) => wakeup.await,
        None => std::future::pending().await,
    }
}

/// A position record being written while messages are handled.
#[derive(Default)]
struct Recorder<'a> {
    pending: Option<PendingRecord<'a>>,
}

type PendingRecord<'a> =
    Pin<Box<dyn Future<Output = Result<(), ebb_message_store::Error>> + Send + 'a>>;

impl Recorder<'_> {
    /// Polls the record in flight once, without waiting; its failure is
    /// the consumer's.
    async fn progress(&mut self) -> Result<(), Error> {
        let Some(pending) = &mut self.pending else {
            return Ok(());
        };
        let polled = std::future::poll_fn(|cx| Poll::Ready(pending.as_mut().poll(cx))).await;
        match polled {
            Poll::Ready(result) => {
                self.pending = None;
                Ok(result?)
            }
            Poll::Pending => Ok(()),
        }
    }

    /// Whether a record is in flight.
    fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Completes when the record in flight does (pending while there is
    /// none); its failure is the consumer's.
    async fn wait(&mut self) -> Result<(), Error> {
        let Some(pending) = &mut self.pending else {
            return std::future::pending().await;
        };
        let result = pending.as_mut().await;
        self.pending = None;
        Ok(result?)
    }

    /// Waits for the record in flight, if any.
    async fn finish(&mut self) -> Result<(), Error> {
        match self.pending.take() {
            Some(pending) => Ok(pending.await?),
            None => Ok(()),
        }
    }
}

/// An error and its causes, on one line: what a log needs to say why.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_shows_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(Chain(&err).to_string(), "outer: inner");
    }
}
