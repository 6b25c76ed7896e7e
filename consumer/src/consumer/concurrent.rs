//! Handling several messages at once: up to
//! [`concurrency`](crate::ConsumerConfig::concurrency) in flight, never two
//! of one stream, each stream's in the order read.
//!
//! Messages are taken from the read in global position order. One whose
//! stream has nothing in flight is ready; one whose stream is busy waits
//! behind it. Ready messages start as slots free up. The consumer keeps
//! every message it has taken, in order, until it is done, and counts as
//! handled only the run of done messages at the front: the position it
//! records never passes the lowest message not yet done, so a crash at
//! any moment loses nothing (what was done after that message is handled
//! again on restart, as handlers are idempotent).
//!
//! How far the consumer reads ahead of the lowest unfinished message is
//! bounded ([`WINDOW_PER_SLOT`] messages per slot), so a slow handler on one
//! stream holds a bounded number of others, beside the store's read-ahead
//! of one batch.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{Hash as _, Hasher as _};
use std::pin::Pin;
use std::sync::Arc;

use ebb_handler::BoxError;
use ebb_message_store::{Message, MessageStore};
use futures_util::stream::{FuturesUnordered, StreamExt as _};

use super::progress::{Progress, Recorder};
use crate::feed::{Fed, Feed};
use crate::{Consumer, Control, Error, State};

/// Messages taken from the read but not yet done, per slot of
/// concurrency: enough that one slow stream does not starve the others at
/// once, few enough to bound what a stuck handler holds.
pub const WINDOW_PER_SLOT: usize = 16;

/// One message being handled, and its outcome. Boxed: the futures of
/// one `FuturesUnordered` need one type.
type Handling<'a> = Pin<Box<dyn Future<Output = (Arc<Message>, Result<(), Error>)> + Send + 'a>>;

/// The messages taken from the read and not yet done.
#[derive(Debug, Default)]
struct Taken {
    /// Global positions in the order read, and whether each is done.
    order: VecDeque<(i64, bool)>,
    /// Per stream (by a hash of its name) with a message in flight or
    /// ready: the messages of that stream waiting behind it. Two streams
    /// whose names hash alike share an entry, which only orders them
    /// together.
    busy: HashMap<u64, VecDeque<Arc<Message>>>,
    /// Messages whose stream is free, waiting for a slot.
    ready: VecDeque<Arc<Message>>,
}

fn stream_key(message: &Message) -> u64 {
    let mut hasher = DefaultHasher::new();
    message.stream_name.hash(&mut hasher);
    hasher.finish()
}

impl Taken {
    /// Takes a message just read: ready if its stream is free, else
    /// queued behind its stream's.
    fn take(&mut self, message: Message) {
        self.order.push_back((message.global_position, false));
        let message = Arc::new(message);
        match self.busy.entry(stream_key(&message)) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push_back(message),
            Entry::Vacant(free) => {
                free.insert(VecDeque::new());
                self.ready.push_back(message);
            }
        }
    }

    /// Marks `message` done: the next of its stream becomes ready. Returns
    /// the global position of the last message of the run of done messages
    /// at the front, and how many it took off the front, if it moved.
    fn done(&mut self, message: &Message) -> Option<(i64, u64)> {
        if let Ok(index) = self
            .order
            .binary_search_by_key(&message.global_position, |&(position, _)| position)
        {
            self.order[index].1 = true;
        }
        if let Entry::Occupied(mut waiting) = self.busy.entry(stream_key(message)) {
            match waiting.get_mut().pop_front() {
                Some(next) => self.ready.push_back(next),
                None => {
                    waiting.remove();
                }
            }
        }
        let mut front = None;
        let mut count = 0;
        while let Some(&(position, true)) = self.order.front() {
            self.order.pop_front();
            front = Some(position);
            count += 1;
        }
        front.map(|position| (position, count))
    }
}

impl<S, E> Consumer<S, E>
where
    S: MessageStore + Clone,
    E: Into<BoxError> + From<ebb_handler::Error> + Send + 'static,
{
    /// Reads and handles up to `concurrency` messages at once (see the
    /// module documentation) until stopped or failed; the read protocol is
    /// the [`Feed`]'s, polled beside the handlers.
    ///
    /// On a handler's error, or when stopping, nothing new starts, the
    /// messages in flight are finished, and the error (or `Ok`) is returned
    /// with the progress at the lowest unfinished message.
    pub(crate) async fn consume_concurrently<'a>(
        &'a self,
        control: &Control,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        let slots = self.config.concurrency;
        let window = slots.saturating_mul(WINDOW_PER_SLOT);
        let mut feed = Feed::new(
            &self.store,
            &self.config,
            &self.retries.store,
            progress.next,
        );
        let mut taken = Taken::default();
        let mut in_flight: FuturesUnordered<Handling<'a>> = FuturesUnordered::new();
        let mut failure: Option<Error> = None;
        let mut stopping = false;
        loop {
            let starting = failure.is_none() && !stopping;
            if starting && control.state() == State::Paused && in_flight.is_empty() {
                // Paused with nothing in hand: wait here until resumed.
                stopping = !control.proceed().await;
                continue;
            }
            if starting && control.state() == State::Running {
                while in_flight.len() < slots {
                    let Some(message) = taken.ready.pop_front() else {
                        break;
                    };
                    in_flight.push(Box::pin(async move {
                        let result = self.handle(&message).await;
                        (message, result)
                    }));
                }
            }
            if !starting && in_flight.is_empty() {
                return failure.map_or(Ok(()), Err);
            }
            let reading = starting && taken.order.len() < window;
            let step = tokio::select! {
                biased;
                Some((message, result)) = in_flight.next(), if !in_flight.is_empty() => {
                    match result {
                        Ok(()) => self.done(&mut taken, &message, progress, recorder).await,
                        Err(err) => Err(err),
                    }
                }
                result = recorder.wait(), if recorder.is_pending() => result,
                fed = feed.next(control), if reading => match fed {
                    Ok(Some(Fed::Message(message))) => {
                        taken.take(message);
                        Ok(())
                    }
                    Ok(Some(Fed::CaughtUp)) => {
                        self.sample_lag(progress).await;
                        Ok(())
                    }
                    Ok(None) => {
                        stopping = true;
                        Ok(())
                    }
                    Err(err) => Err(err),
                },
                () = control.stopped(), if !stopping => {
                    stopping = true;
                    Ok(())
                }
            };
            if let Err(err) = step {
                failure.get_or_insert(err);
            }
        }
    }

    /// `message` is done: if that moves the front of done messages, the
    /// progress goes there.
    async fn done<'a>(
        &'a self,
        taken: &mut Taken,
        message: &Message,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        match taken.done(message) {
            Some((position, count)) => self.advance(progress, recorder, position, count).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(stream: &str, global_position: i64) -> Message {
        Message {
            id: uuid::Uuid::new_v4(),
            stream_name: stream.into(),
            type_name: "Noted".into(),
            position: 0,
            global_position,
            data: ebb_message_store::JsonText::null(),
            metadata: ebb_message_store::Metadata::default(),
            time: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_stream_waits_behind_its_message_in_flight_and_the_front_moves_in_order() {
        let mut taken = Taken::default();
        taken.take(message("a-1", 1));
        taken.take(message("b-1", 2));
        taken.take(message("a-1", 3));
        let ready: Vec<i64> = taken.ready.iter().map(|m| m.global_position).collect();
        assert_eq!(ready, [1, 2], "a-1's second message waits behind its first");
        let first = taken.ready.pop_front().unwrap();
        let second = taken.ready.pop_front().unwrap();
        // The second finishes first: the front cannot move past 1.
        assert_eq!(taken.done(&second), None);
        assert_eq!(taken.ready.len(), 0);
        assert_eq!(taken.done(&first), Some((2, 2)));
        let third = taken.ready.pop_front().expect("a-1's next is ready");
        assert_eq!(third.global_position, 3);
        assert_eq!(taken.done(&third), Some((3, 1)));
        assert!(taken.busy.is_empty() && taken.order.is_empty());
    }
}
