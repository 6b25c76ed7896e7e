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
//! paused read is sitting on, even with a pool of one. The task belongs to
//! the read: when the read is dropped, or ends with an error, the task is
//! aborted, and its unfinished call cancels its statement (see `call`).

use std::future::Future;

use futures_util::stream;
use tokio::task::JoinHandle;

use crate::store::{MessageStream, messages_of_batches};
use crate::{Error, Message};

/// Where the read stands between two polls.
enum Next<Q, R> {
    /// Nothing sent yet; the first query is sent on the first poll, so that
    /// making the stream does not need a runtime.
    Start(Q),
    /// This batch's query is running in its task.
    Fetching(Q, Fetch<R>),
    /// The last batch was short (or empty): the read is over.
    Done,
}

/// A batch being fetched in its own task, which is aborted when this is
/// dropped before the batch is taken: nobody wants the rows any more.
struct Fetch<R>(JoinHandle<Result<Vec<R>, Error>>);

impl<R> Fetch<R> {
    /// The batch; a panic in the task is the caller's panic.
    async fn rows(mut self) -> Result<Vec<R>, Error> {
        match (&mut self.0).await {
            Ok(rows) => rows,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Only a runtime shutting down cancels the task (an abort comes
            // from dropping `self`, after which nobody awaits it).
            Err(_) => Err(Error::Cancelled),
        }
    }
}

impl<R> Drop for Fetch<R> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every message from `first` on, fetched with `fetch` batch after batch,
/// one batch ahead, and decoded with `decode`. `after` gives the query for
/// the batch that follows a full batch ending in the given row. A batch
/// shorter than `batch_size` ends the read (-1: the first batch is
/// everything).
pub(super) fn read_ahead<Q, R, F, Fut>(
    first: Q,
    batch_size: i64,
    fetch: F,
    after: fn(&Q, &R) -> Q,
    decode: fn(&[R]) -> Result<Vec<Message>, Error>,
) -> MessageStream<'static>
where
    Q: Send + 'static,
    R: Send + 'static,
    F: Fn(&Q) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<R>, Error>> + Send + 'static,
{
    let batches = stream::try_unfold(
        (Next::Start(first), fetch),
        move |(next, fetch)| async move {
            let (query, rows) = match next {
                Next::Start(query) => {
                    let rows = fetch(&query).await?;
                    (query, rows)
                }
                Next::Fetching(query, task) => (query, task.rows().await?),
                Next::Done => return Ok(None),
            };
            let full = batch_size != -1 && rows.len() as i64 >= batch_size;
            let next = match rows.last() {
                Some(last) if full => {
                    let query = after(&query, last);
                    let task = Fetch(tokio::spawn(fetch(&query)));
                    Next::Fetching(query, task)
                }
                _ => Next::Done,
            };
            if matches!(next, Next::Fetching(..)) {
                // A spawned task first runs when this one waits, and the
                // decoding and the handling of this batch do not wait
                // (the consumer yields every 128 messages): on a
                // current-thread runtime the next query would leave only
                // after a batch's decoding and 128 messages' handling, and
                // the server would sit idle that long every batch (a sixth
                // of the consumer benchmark's pass). Yielding once here
                // lets the fetch take its connection and hand its query to
                // the connection's task, which sends it, before this batch
                // is decoded.
                tokio::task::yield_now().await;
            }
            // On an error here `next` is dropped, and with it the fetch
            // just started.
            let messages = decode(&rows)?;
            Ok(Some((messages, (next, fetch))))
        },
    );
    messages_of_batches(batches)
}

#[cfg(test)]
mod tests {
    //! The read with fake rows (each row is a global position, a negative
    //! one does not decode) and fetches the tests control.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use futures_util::{FutureExt as _, StreamExt as _, TryStreamExt as _};
    use serde_json::json;
    use tokio::sync::Notify;

    use super::*;
    use crate::Metadata;

    fn message(global_position: i64) -> Message {
        Message {
            id: uuid::Uuid::new_v4(),
            stream_name: "thing-1".into(),
            type_name: "Numbered".into(),
            position: global_position - 1,
            global_position,
            data: json!({}).into(),
            metadata: Metadata::default(),
            time: chrono::Utc::now(),
        }
    }

    fn decode(rows: &[i64]) -> Result<Vec<Message>, Error> {
        rows.iter()
            .map(|&row| {
                if row < 0 {
                    Err(Error::MalformedMessage {
                        global_position: -row,
                        reason: "does not decode".into(),
                        source: None,
                    })
                } else {
                    Ok(message(row))
                }
            })
            .collect()
    }

    fn after(_: &i64, last: &i64) -> i64 {
        last.abs() + 1
    }

    /// A fetch that hangs (from `hang_from` on) keeps its guard alive
    /// while it runs; `gone` is told when it is dropped.
    struct Hanging {
        gone: Arc<Notify>,
    }

    impl Drop for Hanging {
        fn drop(&mut self) {
            self.gone.notify_one();
        }
    }

    /// Rows of a store holding `rows`, in batches of `batch`; fetches from
    /// position `hang_from` on never finish.
    fn fetcher(
        rows: Vec<i64>,
        batch: usize,
        hang_from: i64,
        gone: Arc<Notify>,
        started: Arc<Mutex<Vec<i64>>>,
    ) -> impl Fn(&i64) -> futures_util::future::BoxFuture<'static, Result<Vec<i64>, Error>>
    + Send
    + 'static {
        move |&from| {
            started.lock().unwrap().push(from);
            let rows: Vec<i64> = rows
                .iter()
                .copied()
                .filter(|row| row.abs() >= from)
                .take(batch)
                .collect();
            // Made here, so that it goes with the future even if that is
            // dropped before its first poll.
            let hanging = (from >= hang_from).then(|| Hanging {
                gone: Arc::clone(&gone),
            });
            async move {
                if let Some(_hanging) = hanging {
                    std::future::pending::<()>().await;
                }
                Ok(rows)
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn batches_follow_each_other_in_order() {
        let gone = Arc::new(Notify::new());
        let started = Arc::new(Mutex::new(Vec::new()));
        let fetch = fetcher((1..=7).collect(), 3, i64::MAX, gone, Arc::clone(&started));
        let read: Vec<i64> = read_ahead(1, 3, fetch, after, decode)
            .map_ok(|m| m.global_position)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(read, (1..=7).collect::<Vec<_>>());
        // The third batch (7) is short: nothing is fetched after it.
        assert_eq!(*started.lock().unwrap(), [1, 4, 7]);
    }

    thread_local! {
        /// The batches whose fetch has been polled, by first position, on
        /// this test's thread.
        static POLLED: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
        /// What [`POLLED`] held each time a batch was decoded.
        static POLLED_AT_DECODE: std::cell::RefCell<Vec<Vec<i64>>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn decode_noting_polled(rows: &[i64]) -> Result<Vec<Message>, Error> {
        let polled = POLLED.with(|polled| polled.borrow().clone());
        POLLED_AT_DECODE.with(|at| at.borrow_mut().push(polled));
        decode(rows)
    }

    /// On a current-thread runtime (the test's), where the spawned fetch
    /// runs only when the read lets it.
    #[tokio::test]
    async fn the_next_batch_is_asked_for_before_this_one_is_decoded() {
        let fetch = |&from: &i64| async move {
            POLLED.with(|polled| polled.borrow_mut().push(from));
            Ok((from..=7).take(3).collect::<Vec<i64>>())
        };
        let read: Vec<i64> = read_ahead(1, 3, fetch, after, decode_noting_polled)
            .map_ok(|m| m.global_position)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(read, (1..=7).collect::<Vec<_>>());
        let at_decode = POLLED_AT_DECODE.with(|at| at.borrow().clone());
        assert_eq!(at_decode, [vec![1, 4], vec![1, 4, 7], vec![1, 4, 7]]);
    }

    #[tokio::test]
    async fn dropping_the_read_aborts_the_fetch_ahead() {
        let gone = Arc::new(Notify::new());
        let started = Arc::new(Mutex::new(Vec::new()));
        let fetch = fetcher((1..=6).collect(), 3, 4, Arc::clone(&gone), started);
        let mut read = read_ahead(1, 3, fetch, after, decode);
        assert_eq!(read.try_next().await.unwrap().unwrap().global_position, 1);
        // The second batch's fetch is running (and hangs).
        drop(read);
        tokio::time::timeout(Duration::from_secs(10), gone.notified())
            .await
            .expect("the fetch ahead is dropped with the read");
    }

    #[tokio::test]
    async fn a_batch_that_does_not_decode_ends_the_read_and_its_fetch_ahead() {
        let gone = Arc::new(Notify::new());
        let started = Arc::new(Mutex::new(Vec::new()));
        let fetch = fetcher(
            vec![1, -2, 3, 4, 5, 6],
            3,
            4,
            Arc::clone(&gone),
            Arc::clone(&started),
        );
        let mut read = read_ahead(1, 3, fetch, after, decode);
        let err = read.try_next().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::MalformedMessage {
                    global_position: 2,
                    ..
                }
            ),
            "{err}"
        );
        // The fetch of the next batch had started; it is gone while the
        // read itself is still held.
        assert_eq!(*started.lock().unwrap(), [1, 4]);
        tokio::time::timeout(Duration::from_secs(10), gone.notified())
            .await
            .expect("the fetch ahead ends with the failed batch");
        assert!(read.next().await.is_none(), "nothing after the error");
    }
}
