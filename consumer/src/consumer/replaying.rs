//! Carrying out the replay and discard requests of the consumer's parked
//! stream (see `replay.rs` for the records), beside the consumption.
//!
//! The consumer reads its parked stream at its start and whenever it is
//! woken for it (a wake-up armed on the parked stream's category) or its
//! poll interval ends, and carries out each pending request in the order
//! requested:
//!
//! - a replay delivers the message to the handlers as it was (read again
//!   from its stream: same id, positions, type, data, metadata and time),
//!   with the handler retries and the error hook, but not the poison
//!   checks (the message is parked: those would skip it); the outcome is
//!   [`Replayed`], or a new [`Parked`] record naming the request when the
//!   handlers failed again;
//! - a discard writes [`Discarded`].
//!
//! The outcome's id is made from the request's, so that the two consumers
//! of a hot-failover pair, which both carry a request out, write one
//! outcome between them (the handlers' idempotence makes the message's
//! effect happen once). A failure that says the store is out of reach
//! stops the consumer without an outcome: the request is carried out again
//! at the next start.

use std::sync::Arc;
use std::time::Duration;

use ebb_handler::{BoxError, MessageType as _};
use ebb_message_store::{
    ExpectedVersion, Message, MessageData, MessageStore, StreamName, StreamQuery, Wakeup,
};
use ebb_retry::{Chain, RetryError};
use futures_util::TryStreamExt as _;
use tracing::Instrument as _;

use super::{Consumer, OnError};
use crate::poison::{Failure, Parked};
use crate::replay::{
    Discarded, ParkedMessage, ParkedState, ParkedStream, Replayed, Requested, outcome_id,
};
use crate::{Control, Error};

/// How long a consumer whose wake-up for its parked stream is armed waits
/// before it reads that stream anyway (never less than its poll interval):
/// the wake-up is what takes a request up at once.
const ARMED_REREAD: Duration = Duration::from_secs(1);

impl<S, E> Consumer<S, E>
where
    S: MessageStore + Clone,
    E: Into<BoxError> + From<ebb_handler::Error> + Send + 'static,
{
    /// Reads the parked stream and carries out its requests until
    /// `control` stops the consumer; returns at once when the consumer
    /// has no identifier, or parks nothing and its parked stream is empty. An error stops the
    /// consumer.
    pub(super) async fn replays(&self, control: &Control) -> Result<(), Error> {
        // Without an identifier there is no parked stream, only a category
        // (parking needs an identifier).
        if self.config.identifier.is_none() {
            return Ok(());
        }
        let stream = self.config.parked_stream_name()?;
        let mut parked = ParkedStream::new();
        let mut wakeup: Option<Wakeup> = None;
        let mut first = true;
        loop {
            if self.config.wake_on_notify && wakeup.is_none() {
                tokio::select! {
                    armed = self.store.arm_wakeup(stream.category()) => wakeup = Some(armed),
                    () = control.stopped() => return Ok(()),
                }
            }
            let from = parked.next_position();
            let read = self.retries.store.run(|_| {
                let query = StreamQuery::new().position(from);
                self.store
                    .read_stream(stream.as_str(), query)
                    .try_collect::<Vec<_>>()
            });
            for record in read.await.map_err(RetryError::into_last)? {
                parked.apply(&record)?;
            }
            if std::mem::take(&mut first) && parked.is_empty() && !self.ledger.parks() {
                return Ok(());
            }
            for message in parked.pending() {
                if !control.proceed().await {
                    return Ok(());
                }
                self.carry_out(&stream, message).await?;
            }
            let armed = wakeup
                .as_ref()
                .is_some_and(|wakeup| wakeup.is_armed() && !wakeup.is_poll());
            let wait = if armed {
                self.config.poll_interval.max(ARMED_REREAD)
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                () = control.stopped() => return Ok(()),
                () = crate::feed::wake(&mut wakeup) => wakeup = None,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Carries out the request pending for `message` and writes its
    /// outcome to `stream`.
    async fn carry_out(&self, stream: &StreamName, message: ParkedMessage) -> Result<(), Error> {
        let ParkedState::Requested {
            request,
            position: request_position,
            id: request_id,
        } = message.state
        else {
            return Ok(());
        };
        let global_position = message.parked.global_position;
        let outcome = match request {
            Requested::Discard => {
                tracing::warn!(
                    global_position,
                    stream = %message.parked.stream_name,
                    "parked message discarded, as requested"
                );
                MessageData::serialize(
                    Discarded::TYPE_NAME,
                    &Discarded {
                        global_position,
                        request_position,
                    },
                )?
            }
            Requested::Replay => {
                let original = Arc::new(self.original(&message).await?);
                match self.replay(&original).await? {
                    None => MessageData::serialize(
                        Replayed::TYPE_NAME,
                        &Replayed {
                            global_position,
                            request_position,
                        },
                    )?,
                    Some(Failure { error, attempts }) => {
                        let parked = Parked {
                            error: Chain::new(&*error).to_string(),
                            attempts,
                            failures: 0,
                            replay_position: Some(request_position),
                            ..message.parked.clone()
                        };
                        tracing::warn!(
                            parked_stream = %stream,
                            attempts,
                            "the replayed message failed again; parking it again"
                        );
                        self.metrics().parked.increment(1);
                        MessageData::serialize(Parked::TYPE_NAME, &parked)?
                    }
                }
            }
        };
        self.write_outcome(stream, &outcome.with_id(outcome_id(request_id)))
            .await
    }

    /// The parked message as it was written, read again from its stream;
    /// rebuilt from the parked record (the time being the parking's) if
    /// the stream no longer holds it.
    async fn original(&self, message: &ParkedMessage) -> Result<Message, Error> {
        let parked = &message.parked;
        let query = StreamQuery::new().position(parked.position).batch_size(1);
        let read = self
            .retries
            .store
            .run(|_| self.store.get_stream_messages(&parked.stream_name, &query));
        let read = read.await.map_err(RetryError::into_last)?;
        if let Some(original) = read.into_iter().find(|original| original.id == parked.id) {
            return Ok(original);
        }
        tracing::warn!(
            stream = %parked.stream_name,
            position = parked.position,
            "the parked message is no longer in its stream; replaying the parked copy"
        );
        Ok(Message {
            id: parked.id,
            stream_name: parked.stream_name.clone(),
            type_name: parked.type_name.clone(),
            position: parked.position,
            global_position: parked.global_position,
            data: parked.data.clone(),
            metadata: parked.metadata.clone(),
            time: message.parked_at,
        })
    }

    /// Gives `message` to every handler, as [`dispatch`](Self::dispatch)
    /// does but without the poison checks; `Some` failure when one failed
    /// and the error hook said stop. A failure that says the store is out
    /// of reach stops the consumer instead.
    async fn replay(&self, message: &Arc<Message>) -> Result<Option<Failure>, Error> {
        let replayed = async {
            tracing::info!("replaying a parked message, as requested");
            for handlers in &self.handlers {
                let Err(failure) = self.dispatch_to(handlers, message).await else {
                    continue;
                };
                self.metrics().errors.increment(1);
                tracing::error!(
                    error = %Chain::new(&*failure.error),
                    attempts = failure.attempts,
                    "handler failed on the replayed message"
                );
                let decision = self
                    .on_error
                    .as_ref()
                    .map_or(OnError::Stop, |hook| hook(&failure.error, message));
                if decision == OnError::Continue {
                    continue;
                }
                if ebb_handler::retry::is_transient(&*failure.error) {
                    return Err(Error::Handler {
                        stream_name: message.stream_name.clone(),
                        position: message.position,
                        global_position: message.global_position,
                        type_name: message.type_name.clone(),
                        error: failure.error,
                    });
                }
                return Ok(Some(failure));
            }
            self.metrics().handled.increment(1);
            tracing::info!("parked message replayed");
            Ok(None)
        };
        replayed
            .instrument(ebb_handler::message_span(message))
            .await
    }

    /// Writes a request's outcome, retrying transient failures; an outcome
    /// with its id there already was written by the other consumer of a
    /// pair (or by this one's attempt whose answer was lost).
    async fn write_outcome(&self, stream: &StreamName, outcome: &MessageData) -> Result<(), Error> {
        let written = self
            .retries
            .store
            .run(|_| async move {
                match self
                    .store
                    .write(stream, outcome, ExpectedVersion::Any)
                    .await
                {
                    Err(err) if err.is_duplicate_message_id() => {
                        tracing::info!(
                            parked_stream = %stream,
                            "the request's outcome was written already"
                        );
                        Ok(())
                    }
                    written => written.map(drop),
                }
            })
            .await;
        written.map_err(RetryError::into_last)?;
        Ok(())
    }
}
