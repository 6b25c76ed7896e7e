//! The [`MessageStore`] trait both stores implement, and the read options.

use std::future::Future;

use futures_util::stream::{self, BoxStream, Stream, StreamExt as _};

use crate::{Error, ExpectedVersion, Message, MessageData, StreamName, Wakeup};

/// The default number of messages a read fetches at once (Message DB's).
pub const DEFAULT_BATCH_SIZE: i64 = 1000;

/// Options for reading one stream.
///
/// ```
/// use ebb_message_store::StreamQuery;
/// let query = StreamQuery::new().position(10).batch_size(100);
/// assert_eq!(query.position, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct StreamQuery {
    /// The first stream position to read (inclusive). Default 0.
    pub position: i64,
    /// How many messages one round trip fetches; -1 for all at once.
    /// Default 1000.
    pub batch_size: i64,
    /// Raw SQL appended to the WHERE clause; refused unless the database
    /// has `message_store.sql_condition` on. Default none.
    pub condition: Option<String>,
}

impl Default for StreamQuery {
    fn default() -> Self {
        Self {
            position: 0,
            batch_size: DEFAULT_BATCH_SIZE,
            condition: None,
        }
    }
}

impl StreamQuery {
    /// The defaults: from position 0, batches of 1000, no condition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts at this stream position (inclusive).
    pub fn position(mut self, position: i64) -> Self {
        self.position = position;
        self
    }

    /// Fetches this many messages per round trip (-1: all at once).
    pub fn batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Adds a raw SQL condition (see the field's caveat).
    pub fn condition(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
}

/// A consumer group: this reader is `member` of `size` and sees only the
/// streams whose cardinal id hashes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerGroup {
    /// This reader's place in the group, `0..size`.
    pub member: i64,
    /// How many readers share the category.
    pub size: i64,
}

/// Options for reading a category.
///
/// ```
/// use ebb_message_store::CategoryQuery;
/// let query = CategoryQuery::new()
///     .position(1_000)
///     .correlation("transfer")
///     .consumer_group(0, 2);
/// assert_eq!(query.consumer_group.unwrap().size, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CategoryQuery {
    /// The first global position to read (inclusive). Default 1.
    pub position: i64,
    /// How many messages one round trip fetches; -1 for all at once.
    /// Default 1000.
    pub batch_size: i64,
    /// Only messages whose metadata's `correlationStreamName` is in this
    /// category. Default none.
    pub correlation: Option<String>,
    /// Only this member's share of the streams. Default none.
    pub consumer_group: Option<ConsumerGroup>,
    /// Raw SQL appended to the WHERE clause; refused unless the database
    /// has `message_store.sql_condition` on. Default none.
    pub condition: Option<String>,
}

impl Default for CategoryQuery {
    fn default() -> Self {
        Self {
            position: 1,
            batch_size: DEFAULT_BATCH_SIZE,
            correlation: None,
            consumer_group: None,
            condition: None,
        }
    }
}

impl CategoryQuery {
    /// The defaults: from global position 1, batches of 1000, no filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts at this global position (inclusive).
    pub fn position(mut self, position: i64) -> Self {
        self.position = position;
        self
    }

    /// Fetches this many messages per round trip (-1: all at once).
    pub fn batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Only messages correlated to this category.
    pub fn correlation(mut self, correlation: impl Into<String>) -> Self {
        self.correlation = Some(correlation.into());
        self
    }

    /// Only member `member` of a group of `size`'s share. The store
    /// validates the pair.
    pub fn consumer_group(mut self, member: i64, size: i64) -> Self {
        self.consumer_group = Some(ConsumerGroup { member, size });
        self
    }

    /// Adds a raw SQL condition (see the field's caveat).
    pub fn condition(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
}

pub(crate) fn check_batch_size(batch_size: i64) -> Result<(), Error> {
    if batch_size == -1 || batch_size >= 1 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "batch size must be at least 1, or -1 for no limit (got {batch_size})"
        )))
    }
}

/// The messages of a read, fetched batch after batch as it is polled.
///
/// Boxed so that it is `Unpin` and has a name: callers can use
/// `try_next()` on it and keep it in a struct without pinning it themselves.
pub type MessageStream<'a> = BoxStream<'a, Result<Message, Error>>;

/// A Message DB-compatible message store.
///
/// Implemented by [`PgStore`](crate::PgStore) and
/// [`MemoryStore`](crate::MemoryStore), which behave the same (the contract
/// test suite runs against both), so handler code written against this
/// trait can be unit-tested without a database.
///
/// The methods are `async` in effect; implementors write `async fn`.
///
/// A store is a handle: cheap to clone (clones share one pool, or one
/// in-memory log), and owned, so that handlers, consumers and tasks each
/// keep a clone. That is why `Clone + 'static` are part of the trait, and
/// `S: MessageStore` is all a component's code needs to say of its store.
pub trait MessageStore: Clone + Send + Sync + 'static {
    /// Writes one message and returns its stream position.
    fn write(
        &self,
        stream_name: &StreamName,
        message: &MessageData,
        expected_version: ExpectedVersion,
    ) -> impl Future<Output = Result<i64, Error>> + Send;

    /// Writes several messages to one stream atomically (all or none) and
    /// returns the position of the last. The expected version applies to
    /// the first message. An empty batch writes nothing and returns the
    /// stream's version.
    fn write_batch(
        &self,
        stream_name: &StreamName,
        messages: &[MessageData],
        expected_version: ExpectedVersion,
    ) -> impl Future<Output = Result<Option<i64>, Error>> + Send;

    /// One batch of a stream's messages, in position order.
    fn get_stream_messages(
        &self,
        stream_name: &str,
        query: &StreamQuery,
    ) -> impl Future<Output = Result<Vec<Message>, Error>> + Send;

    /// One batch of a category's messages, in global position order.
    fn get_category_messages(
        &self,
        category: &str,
        query: &CategoryQuery,
    ) -> impl Future<Output = Result<Vec<Message>, Error>> + Send;

    /// The stream's last message, or its last of `type_name`.
    fn get_last_stream_message(
        &self,
        stream_name: &str,
        type_name: Option<&str>,
    ) -> impl Future<Output = Result<Option<Message>, Error>> + Send;

    /// The position of the stream's last message; `None` when empty.
    fn stream_version(
        &self,
        stream_name: &str,
    ) -> impl Future<Output = Result<Option<i64>, Error>> + Send;

    /// The global position of the category's last message; `None` when
    /// the category is empty. What a consumer's lag is measured against.
    fn category_head(
        &self,
        category: &str,
    ) -> impl Future<Output = Result<Option<i64>, Error>> + Send;

    /// Arms a wake-up for `category`: the returned [`Wakeup`] completes
    /// once a message written to the category after this call returned has
    /// been committed (it may also complete spuriously, e.g. after the
    /// listening connection was lost and restored).
    ///
    /// The caller reads the category again after arming and before
    /// awaiting the wake-up, since a write may have committed between its
    /// last read and the arming; and it keeps polling, with the wake-up
    /// only cutting the wait short (`tokio::time::timeout(poll, wakeup)`).
    /// A wake-up is good for one completion: arm again for the next.
    ///
    /// Infallible on purpose: a store that cannot arm (its listener is
    /// down, the database is a plain Message DB install without ebb's
    /// objects, a transient error) logs why and returns a wake-up that
    /// completes when it can arm again, or [`Wakeup::never`]; a consumer
    /// never stops over it.
    ///
    /// [`PgStore`](crate::PgStore) listens on one dedicated connection per
    /// store (shared by its clones), and the database notifies it only for
    /// a category someone has armed, once per arming, and a category
    /// notified less than a moment ago is polled instead of armed: see the
    /// crate's documentation for what that costs. [`MemoryStore`](crate::MemoryStore)
    /// wakes its waiters on every write. The default implementation
    /// returns [`Wakeup::never`].
    fn arm_wakeup(&self, category: &str) -> impl Future<Output = Wakeup> + Send {
        let _ = category;
        std::future::ready(Wakeup::never())
    }

    /// Every message of a stream from `query.position`, fetched batch
    /// after batch as the stream is polled.
    ///
    /// ```no_run
    /// # async fn example(store: &impl ebb_message_store::MessageStore) -> Result<(), ebb_message_store::Error> {
    /// use ebb_message_store::{MessageStore, StreamQuery};
    /// use futures_util::TryStreamExt;
    ///
    /// let messages: Vec<_> = store.read_stream("account-123", StreamQuery::new()).try_collect().await?;
    /// # Ok(()) }
    /// ```
    fn read_stream<'a>(&'a self, stream_name: &'a str, query: StreamQuery) -> MessageStream<'a>
    where
        Self: Sized,
    {
        paged(query, move |query| async move {
            let batch = self.get_stream_messages(stream_name, &query).await?;
            let next = batch.last().map(|m| query.clone().position(m.position + 1));
            Ok((batch, next, query.batch_size))
        })
    }

    /// Every message of a category from `query.position`, fetched batch
    /// after batch as the stream is polled.
    fn read_category<'a>(&'a self, category: &'a str, query: CategoryQuery) -> MessageStream<'a>
    where
        Self: Sized,
    {
        paged(query, move |query| async move {
            let batch = self.get_category_messages(category, &query).await?;
            let next = batch
                .last()
                .map(|m| query.clone().position(m.global_position + 1));
            Ok((batch, next, query.batch_size))
        })
    }
}

/// Turns "fetch one batch" into a stream of messages. A batch shorter than
/// the batch size is the last: asking again would only return nothing.
fn paged<'a, Q, F, Fut>(first: Q, fetch: F) -> MessageStream<'a>
where
    Q: Send + 'a,
    F: Fn(Q) -> Fut + Send + 'a,
    Fut: Future<Output = Result<(Vec<Message>, Option<Q>, i64), Error>> + Send + 'a,
{
    let batches = stream::try_unfold((Some(first), fetch), |(query, fetch)| async move {
        let Some(query) = query else {
            return Ok(None);
        };
        let (batch, next, batch_size) = fetch(query).await?;
        let full = batch_size != -1 && batch.len() as i64 >= batch_size;
        let next = if full { next } else { None };
        Ok(Some((batch, (next, fetch))))
    });
    messages_of_batches(batches)
}

/// Flattens a stream of batches into a stream of messages; an error ends
/// the stream after it is yielded.
pub(crate) fn messages_of_batches<'a>(
    batches: impl Stream<Item = Result<Vec<Message>, Error>> + Send + 'a,
) -> MessageStream<'a> {
    batches
        .map(|batch| match batch {
            Ok(batch) => stream::iter(batch.into_iter().map(Ok)).left_stream(),
            Err(err) => stream::once(async { Err(err) }).right_stream(),
        })
        .flatten()
        .boxed()
}
