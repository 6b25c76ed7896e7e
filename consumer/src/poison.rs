//! Poison messages (see the crate documentation): the [`Failed`] and
//! [`Parked`] records, and the [`Ledger`] that reads them at a consumer's
//! start and writes them.
//!
//! The failures stream holds one record per failure that ended the
//! process, so it is read whole at the start; so is the parked stream, so
//! that a message read again after a restart (its position had not been
//! recorded past it) is not parked twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use ebb_handler::{BoxError, message};
use ebb_message_store::{
    ExpectedVersion, JsonText, Message, MessageData, MessageStore, Metadata, StreamName,
    StreamQuery,
};
use ebb_retry::{Chain, Retry, RetryError};
use futures_util::TryStreamExt as _;
use uuid::Uuid;

use crate::{ConsumerConfig, Error};

/// A handler failure that ended the process, as the failures stream holds
/// it (type `Failed`).
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The failed message's stream.
    pub stream_name: String,
    /// Its position in that stream.
    pub position: i64,
    /// Its position in the store: what failures are counted by.
    pub global_position: i64,
    /// Its type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The handler's error and its causes, on one line.
    pub error: String,
    /// How many times the handlers ran on it in that process (1 plus the
    /// in-process retries).
    pub attempts: u32,
    /// The error was the store's being out of reach (a lost connection, a
    /// server restarting: see
    /// [`ebb_handler::retry::is_transient`]), not the
    /// message's fault. Recorded, but not counted toward parking, so that
    /// restarts of the database never park a good message. Absent in
    /// older records: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transient: bool,
}

/// A parked message, as the parked stream holds it (type `Parked`): the
/// original message whole, so that it can be inspected and sent again,
/// and why it was parked.
#[message]
#[derive(Debug, Clone, PartialEq)]
pub struct Parked {
    /// The original message's id.
    pub id: Uuid,
    /// Its stream.
    pub stream_name: String,
    /// Its position in that stream.
    pub position: i64,
    /// Its position in the store.
    pub global_position: i64,
    /// Its type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its data, as it was stored.
    pub data: JsonText,
    /// Its metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The last handler error and its causes, on one line.
    pub error: String,
    /// How many times the handlers ran on it in the process that last
    /// failed on it.
    pub attempts: u32,
    /// How many times it had ended the process, as counted when the
    /// consumer started (0 when
    /// [`park_after_failures`](ConsumerConfig::park_after_failures) is
    /// off, as failures are then not counted; 0 when parked again by a
    /// replay, whose failure does not end the process).
    pub failures: u32,
    /// Parked again because a replay failed: the position of the
    /// [`Replay`](crate::Replay) request in the parked stream. Absent
    /// when parked by the consumer's own reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_position: Option<i64>,
}

impl Parked {
    /// The original message, to be written again: its type, data and
    /// metadata, with a new id (the original id is still in the store).
    pub fn to_message_data(&self) -> Result<MessageData, serde_json::Error> {
        Ok(
            MessageData::new(self.type_name.clone(), self.data.to_value()?)
                .with_metadata(self.metadata.clone()),
        )
    }
}

/// Every message ever parked by the consumer that `config` describes,
/// oldest first: each `Parked` record, including those replayed or
/// discarded since ([`read_parked_messages`](crate::read_parked_messages)
/// gives what is parked now).
pub async fn read_parked<S: MessageStore>(
    store: &S,
    config: &ConsumerConfig,
) -> Result<Vec<Parked>, Error> {
    let stream = config.parked_stream_name()?;
    let mut messages = store.read_stream(stream.as_str(), StreamQuery::new());
    let mut parked = Vec::new();
    while let Some(message) = messages.try_next().await? {
        if message.type_name == <Parked as ebb_handler::MessageType>::TYPE_NAME {
            parked.push(message.data()?);
        }
    }
    Ok(parked)
}

/// What is read of a parked record at the start: the message it holds.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParkedPosition {
    global_position: i64,
}

/// The failures recorded for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failures {
    /// How many records: how many times it ended the process.
    count: u32,
    /// The last record.
    last: Failed,
}

/// Counts failure records per global position, in the order written (the
/// last one is kept).
fn count_failures(records: impl IntoIterator<Item = Failed>) -> HashMap<i64, Failures> {
    let mut counted: HashMap<i64, Failures> = HashMap::new();
    for record in records.into_iter().filter(|record| !record.transient) {
        match counted.get_mut(&record.global_position) {
            Some(failures) => {
                failures.count = failures.count.saturating_add(1);
                failures.last = record;
            }
            None => {
                counted.insert(
                    record.global_position,
                    Failures {
                        count: 1,
                        last: record,
                    },
                );
            }
        }
    }
    counted
}

/// How a handler failure ends, once the in-process retries are spent and
/// the error hook said stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// The message was parked: it counts as handled, consumption goes on.
    Parked,
    /// The consumer stops at the message; the failure has been recorded
    /// (or logged as not recorded).
    Stop,
}

/// A message's handlers failed, after the in-process retries.
pub(crate) struct Failure {
    /// The last attempt's error.
    pub(crate) error: BoxError,
    /// How many times the handlers ran on the message.
    pub(crate) attempts: u32,
}

/// A consumer's record of its poison messages: what its failures and
/// parked streams held when it started, and the writes to them.
pub(crate) struct Ledger<S> {
    store: S,
    failures_stream: StreamName,
    parked_stream: StreamName,
    /// K: park a message that has ended the process this many times.
    park_after_failures: Option<u32>,
    /// Park instead of stopping once the handler retries are spent.
    park_after_retries: bool,
    /// Retries the reads at the start and the writes of failure and
    /// parked records (the consumer's store policy): a failure record that
    /// is not written is a crash that is not counted.
    retry: Retry,
    /// What the failures and parked streams held when the consumer
    /// started. Behind a lock because it is filled in by a consumer that
    /// is borrowed shared.
    known: Mutex<Known>,
}

/// What a consumer knows of its poison messages at its start (only when
/// it parks messages).
#[derive(Debug, Default)]
struct Known {
    /// The failures recorded, per global position.
    failures: HashMap<i64, Failures>,
    /// The global positions of the messages parked: one read again (the
    /// position had not been recorded past it when the process ended) is
    /// not parked a second time.
    parked: HashSet<i64>,
}

impl<S: MessageStore> Ledger<S> {
    /// The ledger of the consumer `config` describes (validated), whose
    /// store calls `retry` retries.
    pub(crate) fn new(config: &ConsumerConfig, store: S, retry: Retry) -> Result<Self, Error> {
        Ok(Self {
            store,
            failures_stream: config.failures_stream_name()?,
            parked_stream: config.parked_stream_name()?,
            park_after_failures: config.park_after_failures,
            park_after_retries: config.park_after_retries,
            retry,
            known: Mutex::default(),
        })
    }

    /// At the start, when messages are parked (else there is nothing to
    /// read): counts the failure records per message, and notes which
    /// messages are parked already.
    pub(crate) async fn load(&self) -> Result<(), Error> {
        if !self.parks() {
            return Ok(());
        }
        let failed = <Failed as ebb_handler::MessageType>::TYPE_NAME;
        let records: Vec<Failed> = self.read_all(&self.failures_stream, failed).await?;
        let parked = <Parked as ebb_handler::MessageType>::TYPE_NAME;
        let parked: Vec<ParkedPosition> = self.read_all(&self.parked_stream, parked).await?;
        let parked: HashSet<i64> = parked.iter().map(|parked| parked.global_position).collect();
        let recorded = records.len();
        let failures = count_failures(records);
        tracing::info!(
            failures_stream = %self.failures_stream,
            records = recorded,
            messages = failures.len(),
            parked = parked.len(),
            "failures counted"
        );
        *self.known.lock().unwrap_or_else(PoisonError::into_inner) = Known { failures, parked };
        Ok(())
    }

    /// Before handling `message`: parks it if it has already ended the
    /// process K times; true when it did, or when it was parked already
    /// (the message counts as handled).
    pub(crate) async fn park_if_poisoned(&self, message: &Message) -> Result<bool, Error> {
        if !self.parks() {
            return Ok(false);
        }
        if self.is_parked(message.global_position) {
            tracing::info!("the message is parked already; skipping it");
            return Ok(true);
        }
        let Some(limit) = self.park_after_failures else {
            return Ok(false);
        };
        let Some(failures) = self
            .failures_of(message.global_position)
            .filter(|failures| failures.count >= limit)
        else {
            return Ok(false);
        };
        tracing::warn!(
            failures = failures.count,
            limit,
            error = %failures.last.error,
            "the message has ended the process too often; parking it"
        );
        self.park(
            message,
            failures.last.error,
            failures.last.attempts,
            failures.count,
        )
        .await?;
        Ok(true)
    }

    /// After `failure` on `message`, when the error hook said stop: parks
    /// the message with `park_after_retries`, else records the failure
    /// for the consumer to stop. A failure record that cannot be written
    /// is logged, and the consumer stops all the same; a message that
    /// cannot be parked stops the consumer with the store's error.
    pub(crate) async fn settle(
        &self,
        message: &Message,
        error: &BoxError,
        attempts: u32,
    ) -> Result<Settled, Error> {
        let transient = ebb_handler::retry::is_transient(&**error);
        let error = Chain::new(&**error).to_string();
        if self.park_after_retries && !transient {
            let failures = self
                .failures_of(message.global_position)
                .map_or(0, |failures| failures.count);
            tracing::warn!(
                attempts,
                error = %error,
                "the handler's retries are spent; parking the message"
            );
            self.park(message, error, attempts, failures).await?;
            return Ok(Settled::Parked);
        }
        self.record_failure(message, error, attempts, transient)
            .await;
        Ok(Settled::Stop)
    }

    /// Records that handling `message` ends the process.
    async fn record_failure(
        &self,
        message: &Message,
        error: String,
        attempts: u32,
        transient: bool,
    ) {
        let failed = Failed {
            stream_name: message.stream_name.clone(),
            position: message.position,
            global_position: message.global_position,
            type_name: message.type_name.clone(),
            error,
            attempts,
            transient,
        };
        let written = match MessageData::serialize(
            <Failed as ebb_handler::MessageType>::TYPE_NAME,
            &failed,
        ) {
            Ok(record) => self.write(&self.failures_stream, &record).await,
            Err(err) => Err(err),
        };
        match written {
            Ok(()) => tracing::warn!(
                failures_stream = %self.failures_stream,
                attempts,
                transient,
                "failure recorded"
            ),
            Err(err) => tracing::error!(
                failures_stream = %self.failures_stream,
                error = %Chain::new(&err),
                "could not record the failure"
            ),
        }
    }

    /// Writes `message` to the parked stream.
    async fn park(
        &self,
        message: &Message,
        error: String,
        attempts: u32,
        failures: u32,
    ) -> Result<(), Error> {
        let parked = Parked {
            id: message.id,
            stream_name: message.stream_name.clone(),
            position: message.position,
            global_position: message.global_position,
            type_name: message.type_name.clone(),
            data: message.data.clone(),
            metadata: message.metadata.clone(),
            error,
            attempts,
            failures,
            replay_position: None,
        };
        let record =
            MessageData::serialize(<Parked as ebb_handler::MessageType>::TYPE_NAME, &parked)?;
        self.write(&self.parked_stream, &record).await?;
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .parked
            .insert(message.global_position);
        tracing::warn!(
            parked_stream = %self.parked_stream,
            failures,
            attempts,
            "message parked"
        );
        Ok(())
    }

    /// Writes `record` to `stream`, retrying transient failures. The same
    /// id is written at every attempt, so an attempt whose answer was lost
    /// and that did write it makes the next one a duplicate: written.
    async fn write(
        &self,
        stream: &StreamName,
        record: &MessageData,
    ) -> Result<(), ebb_message_store::Error> {
        let written = self
            .retry
            .run(|cycle| async move {
                match self.store.write(stream, record, ExpectedVersion::Any).await {
                    Err(err) if cycle > 0 && err.is_duplicate_message_id() => Ok(()),
                    written => written.map(drop),
                }
            })
            .await;
        written.map_err(RetryError::into_last)
    }

    /// Every record of type `type_name` in `stream`, oldest first, the
    /// read retried as the consumer's reads are.
    async fn read_all<T>(&self, stream: &StreamName, type_name: &str) -> Result<Vec<T>, Error>
    where
        T: serde::de::DeserializeOwned,
    {
        let read = self.retry.run(|_| async {
            let mut messages = self.store.read_stream(stream.as_str(), StreamQuery::new());
            let mut records = Vec::new();
            while let Some(message) = messages.try_next().await? {
                if message.type_name == type_name {
                    records.push(message);
                }
            }
            Ok::<_, ebb_message_store::Error>(records)
        });
        let messages = read.await.map_err(RetryError::into_last)?;
        let records = messages.iter().map(Message::data::<T>);
        Ok(records.collect::<Result<_, _>>()?)
    }

    /// The failures counted for the message at `global_position`.
    fn failures_of(&self, global_position: i64) -> Option<Failures> {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failures
            .get(&global_position)
            .cloned()
    }

    /// Whether this consumer parks messages at all.
    pub(crate) fn parks(&self) -> bool {
        self.park_after_failures.is_some() || self.park_after_retries
    }

    /// Whether the message at `global_position` is parked.
    fn is_parked(&self, global_position: i64) -> bool {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .parked
            .contains(&global_position)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ebb_message_store::MemoryStore;
    use serde_json::json;

    use super::*;

    fn failed(global_position: i64, error: &str) -> Failed {
        Failed {
            stream_name: "note-1".into(),
            position: global_position - 1,
            global_position,
            type_name: "Noted".into(),
            error: error.into(),
            attempts: 1,
            transient: false,
        }
    }

    fn config() -> ConsumerConfig {
        ConsumerConfig {
            identifier: Some("w".into()),
            store_retry_ms: Vec::new(),
            ..ConsumerConfig::new("note")
        }
    }

    fn ledger(config: &ConsumerConfig, store: &MemoryStore) -> Ledger<MemoryStore> {
        Ledger::new(config, store.clone(), Retry::new([]).unwrap()).unwrap()
    }

    /// A store with notes 1..=count in `note-1`, and the messages read back.
    async fn notes(count: i64) -> (MemoryStore, Vec<Arc<Message>>) {
        let store = MemoryStore::new();
        let stream = StreamName::parse("note-1").unwrap();
        for n in 1..=count {
            let note = MessageData::new("Noted", json!({ "n": n })).with_metadata(Metadata {
                correlation_stream_name: Some("transfer-9".into()),
                ..Metadata::default()
            });
            store
                .write(&stream, &note, ExpectedVersion::Any)
                .await
                .unwrap();
        }
        let messages = store.stream_messages("note-1").into_iter().map(Arc::new);
        (store, messages.collect())
    }

    #[test]
    fn failures_are_counted_per_global_position_and_the_last_is_kept() {
        let counted = count_failures([
            failed(3, "first"),
            failed(5, "other"),
            failed(3, "second"),
            failed(3, "third"),
        ]);
        assert_eq!(counted.len(), 2);
        assert_eq!(counted[&3].count, 3);
        assert_eq!(counted[&3].last.error, "third");
        assert_eq!(counted[&5].count, 1);
        assert!(count_failures([]).is_empty());
    }

    #[test]
    fn records_are_camel_case_with_type_on_the_wire() {
        let value = serde_json::to_value(failed(3, "boom")).unwrap();
        assert_eq!(
            value,
            json!({
                "streamName": "note-1", "position": 2, "globalPosition": 3,
                "type": "Noted", "error": "boom", "attempts": 1
            })
        );
        assert_eq!(<Failed as ebb_handler::MessageType>::TYPE_NAME, "Failed");
        assert_eq!(<Parked as ebb_handler::MessageType>::TYPE_NAME, "Parked");
    }

    #[tokio::test]
    async fn failures_recorded_in_earlier_runs_park_the_message_at_k() {
        let (store, messages) = notes(2).await;
        let config = ConsumerConfig {
            park_after_failures: Some(2),
            ..config()
        };
        let poison = ledger(&config, &store);
        let error: BoxError = "cannot take 1".into();
        // Two runs that end on note 1.
        for _ in 0..2 {
            poison.load().await.unwrap();
            assert!(!poison.park_if_poisoned(&messages[0]).await.unwrap());
            let settled = poison.settle(&messages[0], &error, 1).await.unwrap();
            assert_eq!(settled, Settled::Stop);
        }
        let records = store.stream_messages("note:failures-w");
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[1].data::<Failed>().unwrap(),
            Failed {
                error: "cannot take 1".into(),
                ..failed(1, "")
            }
        );
        // The third start parks it; other messages are not touched.
        poison.load().await.unwrap();
        assert!(poison.park_if_poisoned(&messages[0]).await.unwrap());
        assert!(!poison.park_if_poisoned(&messages[1]).await.unwrap());
        let parked = read_parked(&store, &config).await.unwrap();
        assert_eq!(parked.len(), 1);
        let parked = &parked[0];
        assert_eq!(
            (
                parked.id,
                parked.global_position,
                parked.failures,
                parked.error.as_str()
            ),
            (messages[0].id, 1, 2, "cannot take 1")
        );
        assert_eq!(parked.data, json!({ "n": 1 }));
        assert_eq!(parked.metadata, messages[0].metadata);
        // Read again after a restart: not parked twice.
        poison.load().await.unwrap();
        assert!(poison.park_if_poisoned(&messages[0]).await.unwrap());
        assert_eq!(store.stream_messages("note:parked-w").len(), 1);
        let again = parked.to_message_data().unwrap();
        assert_eq!(
            (again.type_name.as_str(), &again.data),
            ("Noted", &json!({ "n": 1 }))
        );
        assert_eq!(again.metadata, messages[0].metadata);
        assert_ne!(again.id, messages[0].id);
    }

    #[tokio::test]
    async fn without_k_failures_are_recorded_but_nothing_is_parked() {
        let (store, messages) = notes(1).await;
        let poison = ledger(&config(), &store);
        let error: BoxError = "cannot take 1".into();
        for _ in 0..3 {
            poison.load().await.unwrap();
            assert!(!poison.park_if_poisoned(&messages[0]).await.unwrap());
            poison.settle(&messages[0], &error, 1).await.unwrap();
        }
        assert_eq!(store.stream_messages("note:failures-w").len(), 3);
        assert!(store.stream_messages("note:parked-w").is_empty());
    }

    #[tokio::test]
    async fn failures_of_an_unreachable_store_are_recorded_but_never_park() {
        let (store, messages) = notes(1).await;
        let unreachable = || -> BoxError {
            ebb_handler::Error::Store(ebb_message_store::Error::Timeout {
                operation: "write_message",
                after: Duration::from_secs(5),
            })
            .into()
        };
        // K = 1: a message's own failure would park it at the next start.
        let counting = ConsumerConfig {
            park_after_failures: Some(1),
            ..config()
        };
        let poison = ledger(&counting, &store);
        for _ in 0..3 {
            poison.load().await.unwrap();
            assert!(!poison.park_if_poisoned(&messages[0]).await.unwrap());
            let settled = poison.settle(&messages[0], &unreachable(), 1).await;
            assert_eq!(settled.unwrap(), Settled::Stop);
        }
        let records = store.stream_messages("note:failures-w");
        assert_eq!(records.len(), 3);
        assert!(records[0].data::<Failed>().unwrap().transient);
        // Nor does parking once the retries are spent.
        let retrying = ConsumerConfig {
            park_after_retries: true,
            ..config()
        };
        let poison = ledger(&retrying, &store);
        poison.load().await.unwrap();
        let settled = poison.settle(&messages[0], &unreachable(), 3).await;
        assert_eq!(settled.unwrap(), Settled::Stop);
        assert!(store.stream_messages("note:parked-w").is_empty());
        // A failure of the message's own still counts.
        let error: BoxError = "cannot take 1".into();
        poison.settle(&messages[0], &error, 3).await.unwrap();
        assert_eq!(store.stream_messages("note:parked-w").len(), 1);
    }

    #[tokio::test]
    async fn with_park_after_retries_a_spent_message_is_parked_not_recorded() {
        let (store, messages) = notes(1).await;
        let config = ConsumerConfig {
            park_after_retries: true,
            ..config()
        };
        let poison = ledger(&config, &store);
        let error: BoxError = "cannot take 1".into();
        let settled = poison.settle(&messages[0], &error, 3).await.unwrap();
        assert_eq!(settled, Settled::Parked);
        assert!(store.stream_messages("note:failures-w").is_empty());
        let parked = read_parked(&store, &config).await.unwrap();
        assert_eq!(
            (parked.len(), parked[0].attempts, parked[0].failures),
            (1, 3, 0)
        );
    }
}
