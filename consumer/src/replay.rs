//! Replaying and discarding parked messages (see the crate
//! documentation): the request and outcome records of the parked stream,
//! the [`ParkedStream`] that folds them into what is parked now, and the
//! functions that write requests.
//!
//! The parked stream of a consumer holds, in order: [`Parked`] records
//! (a message parked, or parked again after a replay failed), the
//! requests [`Replay`] and [`Discard`] that anyone may write, and the
//! outcomes [`Replayed`] and [`Discarded`] that the consumer writes. A
//! request applies to the message as last parked before it, and only if
//! nothing was requested of that parking yet: a request written twice
//! acts once, and a request for a message that is not parked is ignored.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ebb_handler::{MessageType as _, message};
use ebb_message_store::{
    ExpectedVersion, Message, MessageData, MessageStore, StreamName, StreamQuery,
};
use futures_util::TryStreamExt as _;
use uuid::Uuid;

use crate::poison::Parked;
use crate::{ConsumerConfig, Error};

/// A request to replay a parked message to the consumer that parked it
/// (type `Replay`, written to its parked stream). JSON:
/// `{"globalPosition": 123, "requestedBy": "ops@host"}`.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The parked message's global position (its original one, as
    /// [`Parked::global_position`] holds it).
    pub global_position: i64,
    /// Who asked, for the record (free text; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// A request to discard a parked message for good (type `Discard`,
/// written to its consumer's parked stream). JSON as [`Replay`]'s.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discard {
    /// The parked message's global position.
    pub global_position: i64,
    /// Who asked, for the record (free text; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// A replay's outcome when the handlers took the message (type
/// `Replayed`, written by the consumer). JSON:
/// `{"globalPosition": 123, "requestPosition": 4}`. When they failed
/// again, the outcome is a new [`Parked`] record instead, whose
/// [`replay_position`](Parked::replay_position) names the request.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The message's global position.
    pub global_position: i64,
    /// The [`Replay`] request's position in the parked stream.
    pub request_position: i64,
}

/// A discard's outcome (type `Discarded`, written by the consumer).
/// JSON as [`Replayed`]'s.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    /// The message's global position.
    pub global_position: i64,
    /// The [`Discard`] request's position in the parked stream.
    pub request_position: i64,
}

/// What was asked of a parked message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Deliver it again to the consumer's handlers.
    Replay,
    /// Drop it.
    Discard,
}

impl Requested {
    /// The request's message type.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Replay => Replay::TYPE_NAME,
            Self::Discard => Discard::TYPE_NAME,
        }
    }
}

/// Where a parked message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedState {
    /// Parked; nothing asked of it yet.
    Parked,
    /// A replay or a discard was asked (the request at `position` of the
    /// parked stream) and its outcome is not written yet: the consumer
    /// takes it up while it runs, or at its next start.
    Requested {
        /// Which.
        request: Requested,
        /// The request's position in the parked stream.
        position: i64,
        /// The request's id: the outcome's id is made from it, so that
        /// two consumers carrying it out (a hot-failover pair) write one.
        id: Uuid,
    },
}

/// A message parked now: its last [`Parked`] record and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedMessage {
    /// The record, with the message whole.
    pub parked: Parked,
    /// The record's position in the parked stream.
    pub record_position: i64,
    /// When it was parked (the record's time).
    pub parked_at: DateTime<Utc>,
    /// Whether a replay or a discard is pending.
    pub state: ParkedState,
}

/// A consumer's parked stream, folded: the messages parked now (not
/// replayed, not discarded), with the requests pending for them. Built by
/// [`read_parked_messages`], or record by record with
/// [`apply`](Self::apply).
#[derive(Debug, Clone, Default)]
pub struct ParkedStream {
    /// The messages parked now, by global position.
    parked: BTreeMap<i64, ParkedMessage>,
    /// The position of the next record to apply.
    next_position: i64,
}

impl ParkedStream {
    /// Nothing applied yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the next record of the parked stream (records must come in
    /// stream order; one already applied is skipped). Records of other
    /// types are ignored; a request for a message not parked, or whose
    /// parking has a request already, changes nothing; so does a second
    /// parking of a message parked already (by the other consumer of a
    /// hot-failover pair), unless it is a replay's outcome.
    pub fn apply(&mut self, record: &Message) -> Result<(), Error> {
        if record.position < self.next_position {
            return Ok(());
        }
        self.next_position = record.position + 1;
        match record.type_name.as_str() {
            Parked::TYPE_NAME => {
                let parked: Parked = record.data()?;
                // Parked while parked already: by the other consumer of a
                // hot-failover pair, which reads the same messages. What
                // was asked of the first parking stands. Parked again by a
                // replay that failed: the request is settled.
                let replaced = self.parked.get(&parked.global_position).is_none_or(|current| {
                    matches!(
                        (current.state, parked.replay_position),
                        (ParkedState::Requested { position, .. }, Some(request)) if position == request
                    )
                });
                if replaced {
                    let message = ParkedMessage {
                        record_position: record.position,
                        parked_at: record.time,
                        state: ParkedState::Parked,
                        parked,
                    };
                    self.parked.insert(message.parked.global_position, message);
                }
            }
            Replay::TYPE_NAME => {
                let request: Replay = record.data()?;
                self.request(request.global_position, Requested::Replay, record);
            }
            Discard::TYPE_NAME => {
                let request: Discard = record.data()?;
                self.request(request.global_position, Requested::Discard, record);
            }
            Replayed::TYPE_NAME => {
                let outcome: Replayed = record.data()?;
                self.settle(outcome.global_position, outcome.request_position);
            }
            Discarded::TYPE_NAME => {
                let outcome: Discarded = record.data()?;
                self.settle(outcome.global_position, outcome.request_position);
            }
            _ => {}
        }
        Ok(())
    }

    /// A request at `record` for the message at `global_position`.
    fn request(&mut self, global_position: i64, request: Requested, record: &Message) {
        let parked = self.parked.get_mut(&global_position);
        if let Some(message) = parked.filter(|message| message.state == ParkedState::Parked) {
            message.state = ParkedState::Requested {
                request,
                position: record.position,
                id: record.id,
            };
        }
    }

    /// The outcome of the request at `request_position`: the message is
    /// no longer parked (a replay that failed is parked again by a new
    /// `Parked` record instead).
    fn settle(&mut self, global_position: i64, request_position: i64) {
        let settled = self.parked.get(&global_position).is_some_and(|message| {
            matches!(message.state, ParkedState::Requested { position, .. } if position == request_position)
        });
        if settled {
            self.parked.remove(&global_position);
        }
    }

    /// The messages parked now, in global position order.
    pub fn messages(&self) -> impl Iterator<Item = &ParkedMessage> {
        self.parked.values()
    }

    /// The message parked now at `global_position`, if it is.
    pub fn get(&self, global_position: i64) -> Option<&ParkedMessage> {
        self.parked.get(&global_position)
    }

    /// How many messages are parked now.
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// Whether no message is parked now.
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// The position of the next record to apply: the stream's version
    /// plus one, once read to its end.
    pub fn next_position(&self) -> i64 {
        self.next_position
    }

    /// The messages with a request pending, in the order requested.
    pub(crate) fn pending(&self) -> Vec<ParkedMessage> {
        let mut pending: Vec<ParkedMessage> = self
            .parked
            .values()
            .filter(|message| message.state != ParkedState::Parked)
            .cloned()
            .collect();
        pending.sort_by_key(|message| match message.state {
            ParkedState::Requested { position, .. } => position,
            ParkedState::Parked => i64::MAX,
        });
        pending
    }

    /// Reads the records of `stream` after those applied, and applies
    /// them.
    pub(crate) async fn read_on<S: MessageStore>(
        &mut self,
        store: &S,
        stream: &StreamName,
    ) -> Result<(), Error> {
        let query = StreamQuery::new().position(self.next_position);
        let mut records = store.read_stream(stream.as_str(), query);
        while let Some(record) = records.try_next().await? {
            self.apply(&record)?;
        }
        Ok(())
    }
}

/// The parked stream of the consumer `config` describes, folded: what is
/// parked now and what is pending ([`ParkedStream`]).
pub async fn read_parked_messages<S: MessageStore>(
    store: &S,
    config: &ConsumerConfig,
) -> Result<ParkedStream, Error> {
    let mut parked = ParkedStream::new();
    parked.read_on(store, &config.parked_stream_name()?).await?;
    Ok(parked)
}

/// Asks the consumer `config` describes to replay the message it parked
/// at `global_position`: writes a [`Replay`] request to its parked
/// stream, and returns the request's position there. A running consumer
/// takes it up within its poll interval (at once on a wake-up), a stopped
/// one at its next start, and delivers the message to its handlers as it
/// was.
///
/// The request is written only if the message is parked now with nothing
/// asked of it, checked against the stream as read (the write expects
/// that version, and is tried again if the stream moved on); else
/// [`Error::NotParked`] or [`Error::AlreadyRequested`], and nothing is
/// written.
pub async fn request_replay<S: MessageStore>(
    store: &S,
    config: &ConsumerConfig,
    global_position: i64,
    requested_by: Option<String>,
) -> Result<i64, Error> {
    request(
        store,
        config,
        Requested::Replay,
        global_position,
        requested_by,
    )
    .await
}

/// Asks the consumer `config` describes to discard the message it parked
/// at `global_position`: writes a [`Discard`] request, as
/// [`request_replay`] writes a replay's.
pub async fn request_discard<S: MessageStore>(
    store: &S,
    config: &ConsumerConfig,
    global_position: i64,
    requested_by: Option<String>,
) -> Result<i64, Error> {
    request(
        store,
        config,
        Requested::Discard,
        global_position,
        requested_by,
    )
    .await
}

/// Writes `request` for the message at `global_position`, if it is
/// parked with nothing asked of it.
async fn request<S: MessageStore>(
    store: &S,
    config: &ConsumerConfig,
    request: Requested,
    global_position: i64,
    requested_by: Option<String>,
) -> Result<i64, Error> {
    let stream = config.parked_stream_name()?;
    let mut parked = ParkedStream::new();
    let record = match request {
        Requested::Replay => MessageData::serialize(
            Replay::TYPE_NAME,
            &Replay {
                global_position,
                requested_by,
            },
        )?,
        Requested::Discard => MessageData::serialize(
            Discard::TYPE_NAME,
            &Discard {
                global_position,
                requested_by,
            },
        )?,
    };
    // The stream moves on only when something is parked, requested or
    // settled: a few tries are plenty.
    let mut tries = 0;
    loop {
        parked.read_on(store, &stream).await?;
        match parked.get(global_position).map(|message| message.state) {
            None => {
                return Err(Error::NotParked {
                    parked_stream: stream.to_string(),
                    global_position,
                });
            }
            Some(ParkedState::Requested {
                request, position, ..
            }) => {
                return Err(Error::AlreadyRequested {
                    parked_stream: stream.to_string(),
                    global_position,
                    request: request.type_name(),
                    position,
                });
            }
            Some(ParkedState::Parked) => {}
        }
        let version = ExpectedVersion::from_version(Some(parked.next_position() - 1));
        match store.write(&stream, &record, version).await {
            Ok(position) => return Ok(position),
            Err(err) if err.is_wrong_expected_version() && tries < 10 => tries += 1,
            Err(err) => return Err(err.into()),
        }
    }
}

/// The id of the outcome of the request with id `request`: the same for
/// every consumer that carries the request out, so that the store takes
/// one outcome and refuses the others as duplicates.
pub(crate) fn outcome_id(request: Uuid) -> Uuid {
    Uuid::new_v5(&request, b"ebb-consumer: outcome")
}

#[cfg(test)]
mod tests {
    use ebb_message_store::{MemoryStore, Metadata};
    use serde_json::json;

    use super::*;

    fn config() -> ConsumerConfig {
        ConsumerConfig {
            identifier: Some("w".into()),
            ..ConsumerConfig::new("note")
        }
    }

    fn parked(global_position: i64, replay_position: Option<i64>) -> MessageData {
        let parked = Parked {
            id: Uuid::new_v4(),
            stream_name: "note-1".into(),
            position: global_position - 1,
            global_position,
            type_name: "Noted".into(),
            data: serde_json::from_value(json!({ "n": global_position })).unwrap(),
            metadata: Metadata::default(),
            error: "boom".into(),
            attempts: 1,
            failures: 0,
            replay_position,
        };
        MessageData::serialize(Parked::TYPE_NAME, &parked).unwrap()
    }

    async fn write(store: &MemoryStore, record: MessageData) -> i64 {
        let stream = config().parked_stream_name().unwrap();
        store
            .write(&stream, &record, ExpectedVersion::Any)
            .await
            .unwrap()
    }

    fn replay(global_position: i64) -> MessageData {
        MessageData::serialize(
            Replay::TYPE_NAME,
            &Replay {
                global_position,
                requested_by: None,
            },
        )
        .unwrap()
    }

    fn replayed(global_position: i64, request_position: i64) -> MessageData {
        MessageData::serialize(
            Replayed::TYPE_NAME,
            &Replayed {
                global_position,
                request_position,
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_request_written_twice_acts_once_and_an_outcome_settles_it() {
        let store = MemoryStore::new();
        write(&store, parked(3, None)).await;
        write(&store, parked(5, None)).await;
        let first = write(&store, replay(3)).await;
        write(&store, replay(3)).await;
        // For a message never parked: ignored.
        write(&store, replay(4)).await;
        let stream = read_parked_messages(&store, &config()).await.unwrap();
        assert_eq!(stream.len(), 2);
        let pending = stream.pending();
        assert_eq!(pending.len(), 1);
        assert!(matches!(
            pending[0].state,
            ParkedState::Requested { request: Requested::Replay, position, .. } if position == first
        ));
        assert_eq!(stream.get(5).unwrap().state, ParkedState::Parked);

        // An outcome for another request settles nothing; the request's does.
        write(&store, replayed(3, first + 1)).await;
        assert_eq!(
            read_parked_messages(&store, &config()).await.unwrap().len(),
            2
        );
        write(&store, replayed(3, first)).await;
        let stream = read_parked_messages(&store, &config()).await.unwrap();
        assert_eq!(
            stream
                .messages()
                .map(|m| m.parked.global_position)
                .collect::<Vec<_>>(),
            [5]
        );
        assert!(stream.pending().is_empty());
        // A request after the outcome: the message is not parked any more.
        write(&store, replay(3)).await;
        assert!(
            read_parked_messages(&store, &config())
                .await
                .unwrap()
                .pending()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_replay_that_failed_parks_again_and_takes_only_later_requests() {
        let store = MemoryStore::new();
        write(&store, parked(3, None)).await;
        let first = write(&store, replay(3)).await;
        let second = write(&store, replay(3)).await;
        // The replay failed: parked again, naming the first request.
        write(&store, parked(3, Some(first))).await;
        let stream = read_parked_messages(&store, &config()).await.unwrap();
        // The second request came before the new parking: it is spent.
        assert_eq!(stream.get(3).unwrap().state, ParkedState::Parked);
        assert!(second > first);
        let third = write(&store, replay(3)).await;
        let stream = read_parked_messages(&store, &config()).await.unwrap();
        assert!(matches!(
            stream.get(3).unwrap().state,
            ParkedState::Requested { position, .. } if position == third
        ));
    }

    #[tokio::test]
    async fn a_second_parking_by_the_other_consumer_of_a_pair_keeps_the_request() {
        let store = MemoryStore::new();
        let first = write(&store, parked(3, None)).await;
        let request = write(&store, replay(3)).await;
        write(&store, parked(3, None)).await;
        let stream = read_parked_messages(&store, &config()).await.unwrap();
        let message = stream.get(3).unwrap();
        assert_eq!(message.record_position, first);
        assert!(matches!(
            message.state,
            ParkedState::Requested { position, .. } if position == request
        ));
        // Parked again naming another request: not this request's outcome.
        write(&store, parked(3, Some(request + 10))).await;
        let stream = read_parked_messages(&store, &config()).await.unwrap();
        assert_ne!(stream.get(3).unwrap().state, ParkedState::Parked);
    }

    #[tokio::test]
    async fn requests_are_written_only_for_a_message_parked_with_nothing_asked() {
        let store = MemoryStore::new();
        let config = config();
        write(&store, parked(3, None)).await;
        let err = request_replay(&store, &config, 4, None).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotParked {
                    global_position: 4,
                    ..
                }
            ),
            "{err}"
        );
        let position = request_discard(&store, &config, 3, Some("ops".into()))
            .await
            .unwrap();
        let err = request_replay(&store, &config, 3, None).await.unwrap_err();
        assert!(
            matches!(err, Error::AlreadyRequested { request: "Discard", position: p, .. } if p == position),
            "{err}"
        );
        let records = store.stream_messages("note:parked-w");
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[1].data::<Discard>().unwrap(),
            Discard {
                global_position: 3,
                requested_by: Some("ops".into())
            }
        );
        assert_eq!(records[1].type_name, "Discard");
    }

    #[test]
    fn records_are_camel_case() {
        let value = serde_json::to_value(Replayed {
            global_position: 3,
            request_position: 4,
        })
        .unwrap();
        assert_eq!(value, json!({ "globalPosition": 3, "requestPosition": 4 }));
        let value = serde_json::to_value(Replay {
            global_position: 3,
            requested_by: None,
        })
        .unwrap();
        assert_eq!(value, json!({ "globalPosition": 3 }));
        let request = Uuid::new_v4();
        assert_eq!(outcome_id(request), outcome_id(request));
        assert_ne!(outcome_id(request), request);
    }
}
