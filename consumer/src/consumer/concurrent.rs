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
use ebb_message_store::{Message, MessageStore, MessageStream};
use futures_util::stream::{FuturesUnordered, StreamExt as _};

use super::{Consumer, Progress, Recorder};
use crate::{Control, Error, State};

/// Messages taken from the read but not yet done, per slot of
/// concurrency: enough that one slow stream does not starve the others at
/// once, few enough to bound what a stuck handler holds.
pub const WINDOW_PER_SLOT: usize = 16;

/// One message being handled, and its outcome.
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
    /// The loop of [`consume`](Self::consume) with up to `concurrency`
    /// messages in flight (see the module documentation).
    ///
    /// On a handler's error, or when stopping, nothing new starts, the
    /// messages in flight are finished, and the error (or `Ok`) is returned
    /// with the progress at the lowest unfinished message.
    pub(super) async fn consume_concurrently<'a>(
        &'a self,
        control: &Control,
        progress: &mut Progress,
        recorder: &mut Recorder<'a>,
    ) -> Result<(), Error> {
        let slots = self.config.concurrency;
        let window = slots.saturating_mul(WINDOW_PER_SLOT);
        let mut taken = Taken::default();
        let mut in_flight: FuturesUnordered<Handling<'a>> = FuturesUnordered::new();
        // Where the next read starts: past everything taken.
        let mut read_next = progress.next;
        let mut reader: Option<MessageStream<'a>> = None;
        // When there is no read under way: the wait before the next.
        let mut idle: Pin<Box<tokio::time::Sleep>> =
            Box::pin(tokio::time::sleep(std::time::Duration::ZERO));
        let mut read_failures = 0;
        // Armed for the next write to the category, once caught up.
        let mut wakeup: Option<ebb_message_store::Wakeup> = None;
        // The arming under way, if any, and whether one finished while a
        // read was under way (which may have missed what came before it).
        let mut arming: Option<Arming<'a>> = None;
        let mut read_again = false;
        // Whether the read under way has found anything.
        let mut read_any = false;
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
            tokio::select! {
                biased;
                Some((message, result)) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(err) = result {
                        failure.get_or_insert(err);
                        continue;
                    }
                    if let Some((position, count)) = taken.done(&message) {
                        progress.handled = Some(position);
                        progress.next = position + 1;
                        self.metrics().position.set(position as f64);
                        progress.unrecorded += count;
                        if progress.unrecorded >= self.config.position_update_interval {
                            if let Err(err) = self.record(progress, recorder).await {
                                failure.get_or_insert(err);
                            }
                        }
                    }
                }
                result = recorder.wait(), if recorder.is_pending() => {
                    if let Err(err) = result {
                        failure.get_or_insert(err);
                    }
                }
                next = next_message(&mut reader), if reading && reader.is_some() => match next {
                    Ok(Some(message)) => {
                        read_failures = 0;
                        read_any = true;
                        read_next = message.global_position + 1;
                        taken.take(message);
                    }
                    Ok(None) => {
                        // Caught up: read again after the poll interval, or
                        // when woken by a write.
                        reader = None;
                        self.sample_lag(progress).await;
                        if std::mem::take(&mut read_any) {
                            wakeup = None;
                        }
                        if wakeup.is_none() && arming.is_none() && self.config.wake_on_notify {
                            // Armed alongside the messages in flight: it
                            // may wait for the store's listening connection.
                            arming = Some(Box::pin(self.arm_wakeup()));
                        }
                        let wait = if std::mem::take(&mut read_again) {
                            std::time::Duration::ZERO
                        } else {
                            self.config.poll_interval
                        };
                        idle.as_mut().reset(tokio::time::Instant::now() + wait);
                    }
                    Err(err) => {
                        reader = None;
                        match self.read_retry_wait(err, &mut read_failures) {
                            Ok(wait) => idle.as_mut().reset(tokio::time::Instant::now() + wait),
                            Err(err) => {
                                failure.get_or_insert(err);
                            }
                        }
                    }
                },
                () = idle.as_mut(), if reading && reader.is_none() => {
                    // This read is the one after any arming so far.
                    read_again = false;
                    reader = Some(self.store.read_category(
                        &self.config.category,
                        self.config.query(read_next),
                    ));
                }
                armed = arm(&mut arming), if arming.is_some() => {
                    arming = None;
                    if armed.is_armed() && !armed.is_poll() {
                        // A write may have come between the read and the
                        // arming: read once more, at once (or as soon as
                        // the read under way is done).
                        read_again = true;
                        idle.as_mut().reset(tokio::time::Instant::now());
                    }
                    wakeup = Some(armed);
                }
                () = super::wake(&mut wakeup), if reading && reader.is_none() => {
                    wakeup = None;
                    idle.as_mut().reset(tokio::time::Instant::now());
                }
                () = control.stopped(), if !stopping => stopping = true,
            }
        }
    }
}

/// A wake-up being armed.
type Arming<'a> = Pin<Box<dyn Future<Output = ebb_message_store::Wakeup> + Send + 'a>>;

/// The wake-up the arming under way gives (`arming` is `Some` when
/// polled).
async fn arm(arming: &mut Option<Arming<'_>>) -> ebb_message_store::Wakeup {
    match arming {
        Some(arming) => arming.await,
        None => std::future::pending().await,
    }
}

/// The next message of the read under way (`reader` is `Some` when
/// polled).
async fn next_message(
    reader: &mut Option<MessageStream<'_>>,
) -> Result<Option<Message>, ebb_message_store::Error> {
    use futures_util::TryStreamExt as _;
    match reader {
        Some(messages) => messages.try_next().await,
        None => std::future::pending().await,
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
