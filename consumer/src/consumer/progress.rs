//! How far a running consumer has got, and the position records that say
//! so while it goes on handling.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use ebb_handler::BoxError;
use ebb_message_store::MessageStore;
use ebb_retry::RetryError;

use crate::{Consumer, Error};

/// Where a running consumer stands.
#[derive(Debug)]
pub(crate) struct Progress {
    /// The global position the next read starts at.
    pub(crate) next: i64,
    /// The global position of the last message handled, if any.
    handled: Option<i64>,
    /// Messages handled since the position was last recorded.
    unrecorded: u64,
    /// When the lag was last measured.
    lag_sampled: Option<Instant>,
}

impl Progress {
    /// Starting at the global position `next`.
    pub(crate) fn starting_at(next: i64) -> Self {
        Self {
            next,
            handled: None,
            unrecorded: 0,
            lag_sampled: None,
        }
    }

    /// The position to record: the last handled message's, if any was
    /// handled since the last record.
    fn unrecorded(&self) -> Option<i64> {
        self.handled.filter(|_| self.unrecorded > 0)
    }
}

/// A position record being written while messages are handled. Polled
/// along with the messages (no task of its own, so no thread hand-offs);
/// one at a time.
#[derive(Default)]
pub(crate) struct Recorder<'a> {
    pending: Option<PendingRecord<'a>>,
}

type PendingRecord<'a> =
    Pin<Box<dyn Future<Output = Result<(), ebb_message_store::Error>> + Send + 'a>>;

impl Recorder<'_> {
    /// Polls the record in flight once, without waiting; its failure is
    /// the consumer's.
    pub(crate) async fn progress(&mut self) -> Result<(), Error> {
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
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Completes when the record in flight does (pending while there is
    /// none); its failure is the consumer's.
    pub(crate) async fn wait(&mut self) -> Result<(), Error> {
        let Some(pending) = &mut self.pending else {
            return std::future::pending().await;
        };
        let result = pending.as_mut().await;
        self.pending = None;
        Ok(result?)
    }

    /// Waits for the record in flight, if any.
    pub(crate) async fn finish(&mut self) -> Result<(), Error> {
        match self.pending.take() {
            Some(pending) => Ok(pending.await?),
            None => Ok(()),
        }
    }
}

impl<S, E> Consumer<S, E>
where
    S: MessageStore + Clone,
    E: Into<BoxError> + From<ebb_handler::Error> + Send + 'static,
{
    /// `count` more messages are handled, the last at `global_position`
    /// (every message before it is handled too): moves the progress there
    /// and, every
    /// [`position_update_interval`](crate::ConsumerConfig::position_update_interval)
    /// messages, starts recording it.
    pub(crate) async fn advance<'a>(
        &'a self,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
        global_position: i64,
        count: u64,
    ) -> Result<(), Error> {
        progress.next = global_position + 1;
        progress.handled = Some(global_position);
        progress.unrecorded += count;
        self.metrics().position.set(global_position as f64);
        if progress.unrecorded >= self.config.position_update_interval {
            self.record(progress, recorder).await?;
        }
        Ok(())
    }

    /// Caught up with the category: finishes the record in flight before
    /// the consumer waits, and measures the lag.
    pub(crate) async fn caught_up(
        &self,
        progress: &mut Progress,
        recorder: &mut Recorder<'_>,
    ) -> Result<(), Error> {
        recorder.finish().await?;
        self.sample_lag(progress).await;
        Ok(())
    }

    /// Starts recording the last handled message's position, so that
    /// handling goes on while it is written. One record at a time: the
    /// previous one is finished first (it has had a whole interval of
    /// messages to finish), and if it failed (after the store retries) the
    /// consumer stops here. Recording a position again is harmless (the
    /// last record counts), so a write whose outcome is unknown may be
    /// repeated.
    async fn record<'a>(
        &'a self,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        recorder.finish().await?;
        let Some(position) = progress.unrecorded() else {
            return Ok(());
        };
        let write = self
            .retries
            .store
            .run(move |_| self.positions.write(position));
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
    /// the last handled position and waits for it, with the store retries.
    pub(crate) async fn record_last<'a>(
        &'a self,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        self.record(progress, recorder).await?;
        recorder.finish().await
    }

    /// After an error: the record in flight is given up, and the last
    /// handled position is written once, without retrying (the store may
    /// be what failed, and the process should end without waiting out the
    /// retries a second time).
    pub(crate) async fn record_once(
        &self,
        progress: &mut Progress,
        recorder: &mut Recorder<'_>,
    ) -> Result<(), Error> {
        // Dropping a write in flight cancels it; the write below records
        // the same position or a later one.
        let position = if recorder.pending.take().is_some() {
            progress.handled
        } else {
            progress.unrecorded()
        };
        let Some(position) = position else {
            return Ok(());
        };
        self.positions.write(position).await?;
        progress.unrecorded = 0;
        Ok(())
    }

    /// Measures the lag, unless it was measured less than
    /// [`LAG_SAMPLE_INTERVAL`](crate::LAG_SAMPLE_INTERVAL) ago. A failure
    /// to measure is only logged: the reads will say if the store is gone.
    pub(crate) async fn sample_lag(&self, progress: &mut Progress) {
        if progress
            .lag_sampled
            .is_some_and(|at| at.elapsed() < crate::LAG_SAMPLE_INTERVAL)
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
                tracing::debug!(error = %ebb_retry::Chain::new(&err), "could not measure the lag");
            }
        }
    }
}
