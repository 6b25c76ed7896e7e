//! An in-memory store with the PostgreSQL store's behaviour, for handler
//! unit tests: same ordering, positions, expected-version checks, error
//! variants and error texts, no database.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_message_store::Error> {
//! use ebb_message_store::{ExpectedVersion, MemoryStore, MessageData, MessageStore, StreamName};
//! use serde_json::json;
//!
//! let store = MemoryStore::new();
//! let stream = StreamName::new("account", "1")?;
//! store.write(&stream, &MessageData::new("Opened", json!({})), ExpectedVersion::NoStream).await?;
//!
//! // What did the handler write?
//! let written = store.stream_messages("account-1");
//! assert_eq!(written[0].type_name, "Opened");
//! # Ok(()) }
//! ```
//!
//! It is not a substitute for testing against PostgreSQL: it evaluates no
//! SQL (a `condition` is refused as by a database that does not allow
//! them) and keeps nothing across processes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::Notify;

use crate::store::{MessageStore, check_batch_size};
use crate::stream_name::{cardinal_id, is_category};
use crate::{
    CategoryQuery, Error, ExpectedVersion, JsonText, Message, MessageData, StreamName, StreamQuery,
    Wakeup, hash_64,
};

/// An in-memory message store. Clones share the same messages.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// Shared so that the handler under test and the test's assertions see
    /// the same messages.
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// All messages in global position order; global position N is at
    /// index N - 1.
    messages: Vec<Message>,
    /// Indexes into `messages` per stream, in stream position order.
    streams: HashMap<String, Vec<usize>>,
    /// Every id written, for the uniqueness the `messages_id` index gives.
    ids: HashSet<uuid::Uuid>,
    /// Every write accepted, in order, as the writer asked for it.
    writes: Vec<Write>,
    /// The armed wake-ups of each category (see `arm_wakeup`), woken by
    /// every write to it. Only categories with a wake-up still waiting
    /// keep their entry past the next arming.
    wakeups: HashMap<String, Arc<Notify>>,
}

/// A write the store accepted, as the writer asked for it: what a handler
/// unit test asserts on (stream, messages, expected version), as Eventide's
/// substitute writer records them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_message_store::Error> {
/// use ebb_message_store::{ExpectedVersion, MemoryStore, MessageData, MessageStore, StreamName};
/// use serde_json::json;
///
/// let store = MemoryStore::new();
/// let stream = StreamName::new("account", "1")?;
/// store.write(&stream, &MessageData::new("Opened", json!({})), ExpectedVersion::NoStream).await?;
///
/// let writes = store.writes();
/// assert_eq!(writes.len(), 1);
/// assert_eq!(writes[0].stream_name, "account-1");
/// assert_eq!(writes[0].expected_version, ExpectedVersion::NoStream);
/// assert_eq!(writes[0].messages[0].type_name, "Opened");
/// assert_eq!(writes[0].position, Some(0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The stream written to.
    pub stream_name: String,
    /// The messages, in order: one for `write`, the batch for
    /// `write_batch`.
    pub messages: Vec<MessageData>,
    /// The expectation the write was made with.
    pub expected_version: ExpectedVersion,
    /// The stream position of the last message; for an empty batch, the
    /// stream's version (`None` when the stream is empty).
    pub position: Option<i64>,
}

impl Inner {
    fn version(&self, stream_name: &str) -> Option<i64> {
        self.streams
            .get(stream_name)
            .and_then(|indexes| indexes.last())
            .map(|&i| self.messages[i].position)
    }

    fn stream(&self, stream_name: &str) -> impl Iterator<Item = &Message> {
        self.streams
            .get(stream_name)
            .into_iter()
            .flatten()
            .map(|&i| &self.messages[i])
    }

    /// Checks a whole batch before any of it is applied, so that a failing
    /// batch leaves nothing behind.
    fn check(
        &self,
        stream_name: &StreamName,
        messages: &[MessageData],
        expected_version: ExpectedVersion,
    ) -> Result<(), Error> {
        expected_version.validate()?;
        let mut batch_ids = HashSet::new();
        for message in messages {
            message.validate()?;
            if self.ids.contains(&message.id) || !batch_ids.insert(message.id) {
                return Err(Error::DuplicateMessageId {
                    id: Some(message.id),
                    source: None,
                });
            }
        }
        let version = self.version(stream_name.as_str());
        if !expected_version.matches(version) {
            return Err(Error::WrongExpectedVersion {
                stream_name: stream_name.to_string(),
                expected: expected_version.to_sql().unwrap_or_default(),
                actual: version.unwrap_or(-1),
            });
        }
        Ok(())
    }

    fn append(
        &mut self,
        stream_name: &StreamName,
        message: &MessageData,
        time: DateTime<Utc>,
    ) -> i64 {
        let position = self.version(stream_name.as_str()).map_or(0, |v| v + 1);
        let index = self.messages.len();
        let global_position = index as i64 + 1;
        self.messages.push(Message {
            id: message.id,
            stream_name: stream_name.to_string(),
            type_name: message.type_name.clone(),
            position,
            global_position,
            data: JsonText::from_value(&message.data),
            metadata: message.metadata.clone(),
            time,
        });
        self.streams
            .entry(stream_name.to_string())
            .or_default()
            .push(index);
        self.ids.insert(message.id);
        position
    }

    /// Wakes the armed wake-ups of the stream's category.
    fn wake(&self, stream_name: &StreamName) {
        if let Some(waiters) = self.wakeups.get(stream_name.category()) {
            waiters.notify_waiters();
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half updated:
        // `append` only runs after `check` passed, and it cannot fail.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every message, in global position order.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    /// The messages of one stream, in position order.
    pub fn stream_messages(&self, stream_name: &str) -> Vec<Message> {
        self.lock().stream(stream_name).cloned().collect()
    }

    /// Every write the store accepted, in order (refused writes are not
    /// recorded: they changed nothing).
    pub fn writes(&self) -> Vec<Write> {
        self.lock().writes.clone()
    }

    /// How many messages the store holds.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The store's clock: PostgreSQL keeps microseconds.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn check_consumer_group(query: &CategoryQuery) -> Result<(), Error> {
    let Some(group) = query.consumer_group else {
        return Ok(());
    };
    let reason = if group.size < 1 {
        "Consumer group size must not be less than 1"
    } else if group.member < 0 {
        "Consumer group member must not be less than 0"
    } else if group.member >= group.size {
        "Consumer group member must be less than the group size"
    } else {
        return Ok(());
    };
    Err(Error::InvalidConsumerGroup {
        reason: reason.into(),
        member: Some(group.member),
        size: Some(group.size),
    })
}

/// True when the stream is `member`'s share of a group of `size`, as
/// `get_category_messages` decides: `mod(abs(hash_64(cardinal_id)), size)`.
pub(crate) fn in_consumer_group(stream_name: &str, member: i64, size: i64) -> bool {
    cardinal_id(stream_name)
        .is_some_and(|id| (hash_64(id).unsigned_abs() % size as u64) as i64 == member)
}

impl MessageStore for MemoryStore {
    async fn write(
        &self,
        stream_name: &StreamName,
        message: &MessageData,
        expected_version: ExpectedVersion,
    ) -> Result<i64, Error> {
        let mut inner = self.lock();
        inner.check(stream_name, std::slice::from_ref(message), expected_version)?;
        let position = inner.append(stream_name, message, now());
        inner.writes.push(Write {
            stream_name: stream_name.to_string(),
            messages: vec![message.clone()],
            expected_version,
            position: Some(position),
        });
        inner.wake(stream_name);
        Ok(position)
    }

    async fn write_batch(
        &self,
        stream_name: &StreamName,
        messages: &[MessageData],
        expected_version: ExpectedVersion,
    ) -> Result<Option<i64>, Error> {
        let mut inner = self.lock();
        inner.check(stream_name, messages, expected_version)?;
        let time = now();
        let mut last = inner.version(stream_name.as_str());
        for message in messages {
            last = Some(inner.append(stream_name, message, time));
        }
        inner.writes.push(Write {
            stream_name: stream_name.to_string(),
            messages: messages.to_vec(),
            expected_version,
            position: last,
        });
        if !messages.is_empty() {
            inner.wake(stream_name);
        }
        Ok(last)
    }

    async fn get_stream_messages(
        &self,
        stream_name: &str,
        query: &StreamQuery,
    ) -> Result<Vec<Message>, Error> {
        check_batch_size(query.batch_size)?;
        if is_category(stream_name) {
            return Err(Error::NotAStreamName(stream_name.to_owned()));
        }
        if query.condition.is_some() {
            return Err(Error::ConditionNotActivated);
        }
        let inner = self.lock();
        let limit = usize::try_from(query.batch_size).unwrap_or(usize::MAX);
        Ok(inner
            .stream(stream_name)
            .filter(|m| m.position >= query.position)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn category_head(&self, category: &str) -> Result<Option<i64>, Error> {
        if !is_category(category) {
            return Err(Error::NotACategory(category.to_owned()));
        }
        let inner = self.lock();
        Ok(inner
            .messages
            .iter()
            .rev()
            .find(|m| m.category() == category)
            .map(|m| m.global_position))
    }

    async fn get_category_messages(
        &self,
        category: &str,
        query: &CategoryQuery,
    ) -> Result<Vec<Message>, Error> {
        check_batch_size(query.batch_size)?;
        // The same checks, in the same order, as get_category_messages.
        if !is_category(category) {
            return Err(Error::NotACategory(category.to_owned()));
        }
        if let Some(correlation) = &query.correlation {
            if !is_category(correlation) {
                return Err(Error::InvalidCorrelation(correlation.clone()));
            }
        }
        check_consumer_group(query)?;
        if query.condition.is_some() {
            return Err(Error::ConditionNotActivated);
        }
        let inner = self.lock();
        let limit = usize::try_from(query.batch_size).unwrap_or(usize::MAX);
        let start = usize::try_from(query.position.max(1) - 1).unwrap_or(usize::MAX);
        Ok(inner
            .messages
            .iter()
            .skip(start)
            .filter(|m| m.category() == category)
            .filter(|m| match &query.correlation {
                None => true,
                Some(correlation) => m
                    .metadata
                    .correlation_stream_name
                    .as_deref()
                    .is_some_and(|c| crate::stream_name::category(c) == correlation),
            })
            .filter(|m| match query.consumer_group {
                None => true,
                Some(group) => in_consumer_group(&m.stream_name, group.member, group.size),
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn get_last_stream_message(
        &self,
        stream_name: &str,
        type_name: Option<&str>,
    ) -> Result<Option<Message>, Error> {
        let inner = self.lock();
        let last = inner
            .stream(stream_name)
            .filter(|m| type_name.is_none_or(|t| m.type_name == t))
            .last()
            .cloned();
        Ok(last)
    }

    async fn stream_version(&self, stream_name: &str) -> Result<Option<i64>, Error> {
        Ok(self.lock().version(stream_name))
    }

    /// Wakes at the next write to the category: every write notifies, as
    /// nothing here serialises on it.
    async fn arm_wakeup(&self, category: &str) -> Wakeup {
        let mut inner = self.lock();
        // Forget the categories nobody waits on any more (only the map
        // holds their `Notify`), so the map does not grow with every
        // category ever armed.
        inner
            .wakeups
            .retain(|_, waiters| Arc::strong_count(waiters) > 1);
        let waiters = inner.wakeups.entry(category.to_owned()).or_default();
        let mut notified = Box::pin(Arc::clone(waiters).notified_owned());
        // Registered now, under the lock writes take: a write after this
        // returns wakes it even if it is first polled later.
        notified.as_mut().enable();
        Wakeup::new(notified)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn writes_are_recorded_as_asked_and_refused_ones_are_not() {
        let store = MemoryStore::new();
        let stream = StreamName::new("order", "1").unwrap();
        let batch = [
            MessageData::new("Added", json!({ "n": 1 })),
            MessageData::new("Added", json!({ "n": 2 })),
        ];
        store
            .write_batch(&stream, &batch, ExpectedVersion::NoStream)
            .await
            .unwrap();
        let refused = store
            .write(
                &stream,
                &MessageData::new("Added", json!({ "n": 3 })),
                ExpectedVersion::NoStream,
            )
            .await;
        assert!(refused.unwrap_err().is_wrong_expected_version());
        store
            .write(
                &stream,
                &MessageData::new("Checked", json!({})),
                ExpectedVersion::Exact(1),
            )
            .await
            .unwrap();

        let writes = store.writes();
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert_eq!(writes[0].messages, batch);
        assert_eq!(writes[0].expected_version, ExpectedVersion::NoStream);
        assert_eq!(writes[0].position, Some(1));
        assert_eq!(writes[1].messages[0].type_name, "Checked");
        assert_eq!(writes[1].expected_version, ExpectedVersion::Exact(1));
        assert_eq!(writes[1].position, Some(2));
    }
}
