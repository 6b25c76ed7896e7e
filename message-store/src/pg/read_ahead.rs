//! Reading a stream or a category batch after batch, one batch ahead.
//!
//! A reader that fetches, decodes and hands out one batch before asking for
//! the next leaves the server idle while it decodes, and itself idle while
//! the server runs the query. Here the query for batch N+1 is sent as soon
//! as batch N's rows have arrived (its start position is read from the last
//! raw row), and batch N is decoded and handed out while the server works.
//! Only one query is ever ahead, so memory stays at two batches.
//!
//! The query runs in a spawned task that holds its pooled connection only
//! until the rows are in: a caller that handles messages with the same
//! store (a consumer writing events) can never wait on a connection that a
//! paused read is sitting on, even with a pool of one.

use std::future::Future;

use futures_util::stream;
use tokio::task::JoinHandle;
use tokio_postgres::Row;

use super::sql::messages_from_rows;
use crate::Error;
use crate::store::{MessageStream, messages_of_batches};

/// Where the read stands between two polls.
enum Next<Q> {
    /// Nothing sent yet; the first query is sent on the first poll, so that
    /// making the stream does not need a runtime.
    Start(Q),
    /// This batch's query is running in its task.
    Fetching(Q, JoinHandle<Result<Vec<Row>, Error>>),
    /// The last batch was short (or empty): the read is over.
    Done,
}

/// Every message from `first` on, fetched with `fetch` batch after batch,
/// one batch ahead. `after` gives the query for the batch that follows a
/// full batch ending in the given row. A batch shorter than `batch_size`
/// ends the read (-1: the first batch is everything).
pub(super) fn read_ahead<Q, F, Fut>(
    first: Q,
    batch_size: i64,
    fetch: F,
    after: fn(&Q, &Row) -> Q,
) -> MessageStream<'static>
where
    Q: Send + 'static,
    F: Fn(&Q) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<Row>, Error>> + Send + 'static,
{
    let batches = stream::try_unfold(
        (Next::Start(first), fetch),
        move |(next, fetch)| async move {
            let (query, rows) = match next {
                Next::Start(query) => {
                    let rows = fetch(&query).await?;
                    (query, rows)
                }
                Next::Fetching(query, task) => (query, joined(task.await)?),
                Next::Done => return Ok(None),
            };
            let full = batch_size != -1 && rows.len() as i64 >= batch_size;
            let next = match rows.last() {
                Some(last) if full => {
                    let query = after(&query, last);
                    let task = tokio::spawn(fetch(&query));
                    Next::Fetching(query, task)
                }
                _ => Next::Done,
            };
            let messages = messages_from_rows(&rows)?;
            Ok(Some((messages, (next, fetch))))
        },
    );
    messages_of_batches(batches)
}

/// The task's result; a panic in it is the caller's panic.
fn joined(
    result: Result<Result<Vec<Row>, Error>, tokio::task::JoinError>,
) -> Result<Vec<Row>, Error> {
    match result {
        Ok(rows) => rows,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels the task; no connection
        // will be had from it any more.
        Err(_) => Err(Error::Pool(deadpool_postgres::PoolError::Closed)),
    }
}
