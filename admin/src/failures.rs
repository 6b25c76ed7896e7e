//! The handler failures that stopped a category's consumers, from their
//! failures streams (`Failed` records): what `ebb failures` lists.

use chrono::{DateTime, Utc};
use ebb_consumer::Failed;
use ebb_handler::MessageType as _;
use ebb_message_store::PgStore;
use serde::Serialize;

use crate::Error;
use crate::consumer_streams::{self, ConsumerName, FAILURES};

/// One failure a consumer recorded: the message its handlers failed on,
/// and how. Serialized (`ebb failures --json`) with the fields in
/// camelCase (`globalPosition`, `streamName`, `failedAt`), the type as
/// `type`, times as RFC 3339, UTC, to the microsecond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FailureRecord {
    /// The category the consumer reads.
    pub category: String,
    /// The consumer's identifier; None for a consumer without one.
    pub identifier: Option<String>,
    /// The failed message's global position.
    pub global_position: i64,
    /// Its stream.
    pub stream_name: String,
    /// Its position in that stream.
    pub position: i64,
    /// Its type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The handler's error and its causes, on one line.
    pub error: String,
    /// How many times the handlers ran on it in that process.
    pub attempts: u32,
    /// The store was out of reach: not the message's fault.
    pub transient: bool,
    /// When the failure was recorded.
    #[serde(serialize_with = "crate::time::serialize")]
    pub failed_at: DateTime<Utc>,
}

/// The failures recorded by the consumers of `category` (`account`,
/// `account:command`), or by its consumer `consumer` only (an
/// identifier), oldest first.
///
/// A consumer records a failure (a `Failed` message in
/// `CATEGORY:failures-ID`, or `CATEGORY+failures-ID` when the category has
/// a type) each time a message's handlers fail and the consumer stops on
/// it. [`Error::InvalidInput`] for a category or an identifier no
/// consumer can have, found before the store is touched.
pub async fn failures(
    store: &PgStore,
    category: &str,
    consumer: Option<&str>,
) -> Result<Vec<FailureRecord>, Error> {
    let consumer = ConsumerName::new(category, consumer)?;
    let records =
        consumer_streams::own_records(store, &consumer, FAILURES, Failed::TYPE_NAME).await?;
    let mut lines = Vec::with_capacity(records.len());
    for (owner, message) in records {
        let failed: Failed = message.data().map_err(|source| Error::Store {
            action: format!(
                "the failure record at {}/{} is not a Failed record",
                message.stream_name, message.position
            ),
            source,
        })?;
        lines.push(FailureRecord {
            category: owner.category,
            identifier: owner.identifier,
            global_position: failed.global_position,
            stream_name: failed.stream_name,
            position: failed.position,
            type_name: failed.type_name,
            error: failed.error,
            attempts: failed.attempts,
            transient: failed.transient,
            failed_at: message.time,
        });
    }
    Ok(lines)
}
