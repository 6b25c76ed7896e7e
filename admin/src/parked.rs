//! The messages a category's consumers have parked now, from their parked
//! streams folded as the consumer folds them
//! ([`ebb_consumer::ParkedStream`]), and the requests that replay or
//! discard them ([`ebb_consumer::request_replay`]): what `ebb parked list`,
//! `show`, `replay` and `discard` read and write.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ebb_consumer::{ParkedMessage, ParkedState, ParkedStream, Requested};
use ebb_message_store::{CategoryQuery, Message, MessageStore as _, PgStore, StreamQuery};
use futures_util::TryStreamExt as _;
use serde::Serialize;

use crate::Error;
use crate::consumer_streams::{ConsumerName, PARKED};

/// A parked message in short, as `ebb parked list --json` prints it: the
/// fields in camelCase (`globalPosition`, `streamName`, `parkedAt`), the
/// type as `type`, times as RFC 3339, UTC, to the microsecond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ParkedSummary {
    /// The category the consumer that parked it reads.
    pub category: String,
    /// That consumer's identifier.
    pub identifier: Option<String>,
    /// The parked message's own global position: what selects it for
    /// [`select`].
    pub global_position: i64,
    /// Its stream.
    pub stream_name: String,
    /// Its position in that stream.
    pub position: i64,
    /// Its type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The last handler error and its causes, on one line.
    pub error: String,
    /// How many times it had ended the consumer's process.
    pub failures: u32,
    /// When it was parked.
    #[serde(serialize_with = "crate::time::serialize")]
    pub parked_at: DateTime<Utc>,
    /// `"replay"` or `"discard"` while one is asked and not yet carried
    /// out; None otherwise ([`requested`]).
    pub requested: Option<&'static str>,
}

impl ParkedSummary {
    /// The summary of `message`, parked by `owner`.
    pub fn new(owner: &ConsumerName, message: &ParkedMessage) -> Self {
        Self {
            category: owner.category.clone(),
            identifier: owner.identifier.clone(),
            global_position: message.parked.global_position,
            stream_name: message.parked.stream_name.clone(),
            position: message.parked.position,
            type_name: message.parked.type_name.clone(),
            error: message.parked.error.clone(),
            failures: message.parked.failures,
            parked_at: message.parked_at,
            requested: requested(message.state),
        }
    }
}

/// What is asked of a parked message: `"replay"` or `"discard"` while a
/// request is pending, None while it is only parked.
pub fn requested(state: ParkedState) -> Option<&'static str> {
    match state {
        ParkedState::Parked => None,
        ParkedState::Requested { request, .. } => Some(request_verb(request)),
    }
}

/// A request as a verb: `"replay"` or `"discard"`.
pub fn request_verb(request: Requested) -> &'static str {
    match request {
        Requested::Replay => "replay",
        Requested::Discard => "discard",
    }
}

/// The messages parked now by the consumers of `category` (`account`,
/// `account:command`), or by its consumer `consumer` only (an
/// identifier), oldest parked first, each with the consumer that parked
/// it (two consumers of a hot-failover pair may have parked the same
/// message: it is listed for each).
///
/// A consumer parks a message (a `Parked` message in `CATEGORY:parked-ID`,
/// or `CATEGORY+parked-ID` when the category has a type) that its
/// handlers failed on too often, and goes on without it; listed are those
/// not replayed or discarded since. [`Error::InvalidInput`] for a category
/// or an identifier no consumer can have, found before the store is
/// touched.
pub async fn parked(
    store: &PgStore,
    category: &str,
    consumer: Option<&str>,
) -> Result<Vec<(ConsumerName, ParkedMessage)>, Error> {
    let consumer = ConsumerName::new(category, consumer)?;
    parked_by(store, &consumer).await
}

/// The message parked now at `global_position` (its own global position,
/// [`ParkedSummary::global_position`]) by the consumers [`parked`]
/// reads, with each consumer that parked it; [`Error::NotFound`] when none
/// did.
pub async fn parked_at(
    store: &PgStore,
    category: &str,
    consumer: Option<&str>,
    global_position: i64,
) -> Result<Vec<(ConsumerName, ParkedMessage)>, Error> {
    let consumer = ConsumerName::new(category, consumer)?;
    let found: Vec<(ConsumerName, ParkedMessage)> = parked_by(store, &consumer)
        .await?
        .into_iter()
        .filter(|(_, message)| message.parked.global_position == global_position)
        .collect();
    if found.is_empty() {
        return Err(not_parked(&consumer, global_position));
    }
    Ok(found)
}

/// Nothing parked at `global_position` by `consumer`.
fn not_parked(consumer: &ConsumerName, global_position: i64) -> Error {
    Error::NotFound(format!(
        "no message at global position {global_position} is parked by {}",
        consumer.whose()
    ))
}

/// Which parked messages a replay or a discard acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// Every message parked now.
    All,
    /// The messages parked at these global positions (their own, as
    /// [`ParkedSummary::global_position`] has them).
    At(Vec<i64>),
}

/// The parked messages a replay or a discard is to act on, as [`select`]
/// chose them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Selection {
    /// The messages to act on, each with the consumer that parked it,
    /// oldest parked first (with [`Select::At`], in the order asked), at
    /// most the limit.
    pub selected: Vec<(ConsumerName, ParkedMessage)>,
    /// How many there were before the limit.
    pub total: usize,
    /// How many of the messages selected had a replay or a discard asked
    /// already, not yet carried out: left out, as they are.
    pub pending: usize,
}

/// Chooses from `parked` (as [`parked`] read it for `consumer`) the
/// messages `which` names that have nothing asked of them yet, at most
/// `limit` of them, the oldest parked first.
///
/// [`Error::NotFound`] for a global position of [`Select::At`] at which
/// `consumer` parked nothing.
pub fn select(
    consumer: &ConsumerName,
    parked: Vec<(ConsumerName, ParkedMessage)>,
    which: &Select,
    limit: Option<usize>,
) -> Result<Selection, Error> {
    let mut selected: Vec<(ConsumerName, ParkedMessage)> = Vec::new();
    let mut pending = 0;
    match which {
        Select::All => {
            for (owner, message) in parked {
                if message.state == ParkedState::Parked {
                    selected.push((owner, message));
                } else {
                    pending += 1;
                }
            }
        }
        Select::At(global_positions) => {
            for &global_position in global_positions {
                let mut found = false;
                for (owner, message) in &parked {
                    if message.parked.global_position != global_position {
                        continue;
                    }
                    found = true;
                    if message.state == ParkedState::Parked {
                        selected.push((owner.clone(), message.clone()));
                    } else {
                        pending += 1;
                    }
                }
                if !found {
                    return Err(not_parked(consumer, global_position));
                }
            }
            selected.dedup_by(|(a, x), (b, y)| {
                a == b && x.parked.global_position == y.parked.global_position
            });
        }
    }
    let total = selected.len();
    if let Some(limit) = limit {
        selected.truncate(limit);
    }
    Ok(Selection {
        selected,
        total,
        pending,
    })
}

/// What became of one replay or discard request ([`request`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct RequestOutcome {
    /// The consumer asked.
    pub consumer: ConsumerName,
    /// The parked message's global position.
    pub global_position: i64,
    /// The consumer's parked stream, where the request goes.
    pub parked_stream: String,
    /// The request's position in the parked stream, or why it was not
    /// written (the message no longer parked, a request already pending,
    /// the store's error).
    pub result: Result<i64, ebb_consumer::Error>,
}

/// Asks `consumer` to replay or discard (`request`) the message it parked
/// at `global_position`: writes the request to its parked stream through
/// [`ebb_consumer::request_replay`] or [`ebb_consumer::request_discard`],
/// recording `requested_by` (who asks). A running consumer takes it up
/// within its poll interval, a stopped one at its next start, and records
/// the outcome there.
pub async fn request(
    store: &PgStore,
    request: Requested,
    consumer: &ConsumerName,
    global_position: i64,
    requested_by: Option<&str>,
) -> RequestOutcome {
    let config = consumer.config();
    let requested_by = requested_by.map(str::to_owned);
    let result = match request {
        Requested::Replay => {
            ebb_consumer::request_replay(store, &config, global_position, requested_by).await
        }
        Requested::Discard => {
            ebb_consumer::request_discard(store, &config, global_position, requested_by).await
        }
    };
    let parked_stream = config
        .parked_stream_name()
        .map(|name| name.to_string())
        .unwrap_or_default();
    RequestOutcome {
        consumer: consumer.clone(),
        global_position,
        parked_stream,
        result,
    }
}

/// [`request`] for each of `selected` (as [`select`] chose them), one
/// after the other: one request per message and consumer. A request that
/// cannot be written does not stop the others: each outcome says what
/// became of its own.
pub async fn request_all(
    store: &PgStore,
    request: Requested,
    selected: &[(ConsumerName, ParkedMessage)],
    requested_by: Option<&str>,
) -> Vec<RequestOutcome> {
    let mut outcomes = Vec::with_capacity(selected.len());
    for (owner, message) in selected {
        let global_position = message.parked.global_position;
        outcomes.push(self::request(store, request, owner, global_position, requested_by).await);
    }
    outcomes
}

/// The messages parked now by `consumer` (every consumer of its category
/// without an identifier), oldest parked first, each with its consumer.
pub(crate) async fn parked_by(
    store: &PgStore,
    consumer: &ConsumerName,
) -> Result<Vec<(ConsumerName, ParkedMessage)>, Error> {
    let records: Vec<Message> = match &consumer.identifier {
        Some(_) => {
            let stream = consumer.stream(PARKED)?;
            let read = store.read_stream(&stream, StreamQuery::new());
            read.try_collect().await.map_err(|source| Error::Store {
                action: format!("cannot read {stream}"),
                source,
            })?
        }
        None => {
            let category = consumer.kind_category(PARKED)?;
            let read = store.read_category(&category, CategoryQuery::new());
            read.try_collect().await.map_err(|source| Error::Store {
                action: format!("cannot read {category}"),
                source,
            })?
        }
    };
    // Per parked stream, in its order (a category read keeps each
    // stream's order).
    let mut streams: BTreeMap<String, (ConsumerName, ParkedStream)> = BTreeMap::new();
    for record in &records {
        let Some(owner) = ConsumerName::from_stream(&record.stream_name, PARKED) else {
            continue;
        };
        let (_, folded) = streams
            .entry(record.stream_name.clone())
            .or_insert_with(|| (owner, ParkedStream::new()));
        folded.apply(record).map_err(|source| Error::Consumer {
            action: format!(
                "the record at position {} of {} cannot be read",
                record.position, record.stream_name
            ),
            source,
        })?;
    }
    let mut parked: Vec<(ConsumerName, ParkedMessage)> = streams
        .into_values()
        .flat_map(|(owner, folded)| {
            let messages: Vec<ParkedMessage> = folded.messages().cloned().collect();
            messages
                .into_iter()
                .map(move |message| (owner.clone(), message))
        })
        .collect();
    parked.sort_by(|(a, x), (b, y)| {
        (x.parked_at, x.parked.global_position, &a.identifier).cmp(&(
            y.parked_at,
            y.parked.global_position,
            &b.identifier,
        ))
    });
    Ok(parked)
}
