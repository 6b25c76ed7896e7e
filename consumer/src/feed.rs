//! The [`Feed`]: the read side of the consume protocol, in one place for
//! both ways of handling (one message at a time, or several at once).
//!
//! The protocol, from the consumer's position on:
//!
//! 1. read the category in batches (the store reads the next batch while
//!    this one is handled: [`MessageStore::read_category`]) until a short
//!    batch says it is caught up;
//! 2. caught up, arm a wake-up for the next write to the category
//!    ([`MessageStore::arm_wakeup`], with
//!    [`wake_on_notify`](crate::ConsumerConfig::wake_on_notify)) and, once
//!    armed, read once more: a write may have come between the read and
//!    the arming;
//! 3. then wait for the wake-up or the
//!    [`poll_interval`](crate::ConsumerConfig::poll_interval), whichever
//!    comes first, and read on from step 1;
//! 4. a read that fails is opened again at the message after the last one
//!    read, by the consumer's store retry policy
//!    ([`store_retry_ms`](crate::ConsumerConfig::store_retry_ms)); an error
//!    that policy gives back stops the consumer.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ebb_message_store::{Message, MessageStore, MessageStream, Wakeup};
use ebb_retry::{Retry, RetryError};
use futures_util::TryStreamExt as _;
use tokio::time::{Instant, Sleep};

use crate::{ConsumerConfig, Control, Error};

/// What the feed gives its consumer next.
#[derive(Debug)]
// Each is moved once, from the feed to the consumer: boxing the message
// would cost an allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Fed {
    /// The next message of the category, in global position order.
    Message(Message),
    /// The read is caught up with the category: the consumer finishes
    /// what is in flight before the feed waits (a position record) and
    /// measures its lag.
    CaughtUp,
}

/// A read being opened (retried by the store policy): the stream and its
/// first message.
type Opening<'a> =
    Pin<Box<dyn Future<Output = Result<(MessageStream<'a>, Option<Message>), Error>> + Send + 'a>>;

/// A wake-up being armed.
type Arming<'a> = Pin<Box<dyn Future<Output = Wakeup> + Send + 'a>>;

/// Where the read stands.
enum Read<'a> {
    /// Messages come from this read.
    Reading(MessageStream<'a>),
    /// A read is being opened, retried on transient errors.
    Opening(Opening<'a>),
    /// Caught up (or not started): the next read opens when `idle` ends,
    /// or at once when the wake-up comes or an arming completes.
    Waiting,
}

/// The read side of the consume protocol (see the module documentation).
///
/// [`next`](Self::next) is cancel-safe: every wait it is in (a read, an
/// opening with its retries, an arming, the poll interval) lives in the
/// feed, so dropping a call loses nothing and the next call goes on where
/// it was. That is what lets the concurrent consumer poll it beside its
/// handlers.
pub(crate) struct Feed<'a, S> {
    store: &'a S,
    config: &'a ConsumerConfig,
    /// Retries opening a read (the consumer's store retry policy).
    retry: &'a Retry,
    /// The global position the next read starts at: past every message
    /// given out.
    next: i64,
    read: Read<'a>,
    /// When the next read opens, while waiting. Boxed once, reset after.
    idle: Pin<Box<Sleep>>,
    /// The arming under way, if any: it may wait for the store's listening
    /// connection, so it is polled alongside the rest.
    arming: Option<Arming<'a>>,
    /// Armed for the next write to the category, once caught up.
    wakeup: Option<Wakeup>,
    /// Whether the read under way has given out a message.
    read_any: bool,
}

impl<'a, S: MessageStore> Feed<'a, S> {
    /// A feed of `config.category` from the global position `from`; it
    /// reads at once.
    pub(crate) fn new(
        store: &'a S,
        config: &'a ConsumerConfig,
        retry: &'a Retry,
        from: i64,
    ) -> Self {
        Self {
            store,
            config,
            retry,
            next: from,
            read: Read::Waiting,
            idle: Box::pin(tokio::time::sleep(Duration::ZERO)),
            arming: None,
            wakeup: None,
            read_any: false,
        }
    }

    /// The next message, or word that the read is caught up; `None` when
    /// `control` stops the consumer while the feed waits (a read that is
    /// giving out messages is not interrupted). Cancel-safe.
    pub(crate) async fn next(&mut self, control: &Control) -> Result<Option<Fed>, Error> {
        loop {
            let read = match &mut self.read {
                Read::Reading(messages) => messages.try_next().await,
                Read::Opening(opening) => {
                    let opened = tokio::select! {
                        opened = opening.as_mut() => opened?,
                        () = control.stopped() => return Ok(None),
                    };
                    let (messages, first) = opened;
                    self.read = Read::Reading(messages);
                    Ok(first)
                }
                Read::Waiting => {
                    if !self.wait(control).await {
                        return Ok(None);
                    }
                    self.read = Read::Opening(self.open());
                    continue;
                }
            };
            return match read {
                Ok(Some(message)) => {
                    self.read_any = true;
                    self.next = message.global_position + 1;
                    Ok(Some(Fed::Message(message)))
                }
                Ok(None) => {
                    self.caught_up();
                    Ok(Some(Fed::CaughtUp))
                }
                // Part-way through: opened again past the last message
                // given out, by the retry policy.
                Err(err) if err.is_transient() => {
                    self.read = Read::Opening(self.open());
                    continue;
                }
                Err(err) => Err(err.into()),
            };
        }
    }

    /// Opens a read at [`next`](Self::next), retried on transient errors
    /// by the store policy: an attempt succeeds once the first batch has
    /// answered.
    fn open(&self) -> Opening<'a> {
        let (store, config, retry, from) = (self.store, self.config, self.retry, self.next);
        Box::pin(async move {
            let opened = retry
                .run(|_| async move {
                    let mut messages = store.read_category(&config.category, config.query(from));
                    let first = messages.try_next().await?;
                    Ok::<_, ebb_message_store::Error>((messages, first))
                })
                .await;
            Ok(opened.map_err(RetryError::into_last)?)
        })
    }

    /// Caught up: arms a wake-up (unless one is armed for a write not yet
    /// read) and waits the poll interval from now.
    fn caught_up(&mut self) {
        self.read = Read::Waiting;
        if std::mem::take(&mut self.read_any) {
            // What woke it, or the write it was armed for, is read.
            self.wakeup = None;
        }
        if self.wakeup.is_none() && self.arming.is_none() && self.config.wake_on_notify {
            let (store, category) = (self.store, self.config.category.as_str());
            self.arming = Some(Box::pin(store.arm_wakeup(category)));
        }
        let poll = Instant::now() + self.config.poll_interval;
        self.idle.as_mut().reset(poll);
    }

    /// Waits until the next read should open: the poll interval ends, the
    /// wake-up comes, or an arming completes (a write may have come
    /// between the last read and the arming: read once more). False when
    /// the consumer is stopped first.
    async fn wait(&mut self, control: &Control) -> bool {
        loop {
            tokio::select! {
                biased;
                () = control.stopped() => return false,
                armed = arm(&mut self.arming), if self.arming.is_some() => {
                    self.arming = None;
                    // A poll (a busy category) arms nothing: no write can
                    // have slipped in, and the poll comes soon.
                    let read_again = armed.is_armed() && !armed.is_poll();
                    self.wakeup = Some(armed);
                    if read_again {
                        return true;
                    }
                }
                () = wake(&mut self.wakeup) => {
                    self.wakeup = None;
                    return true;
                }
                () = self.idle.as_mut() => return true,
            }
        }
    }
}

/// The wake-up the arming under way gives (pending without one).
async fn arm(arming: &mut Option<Arming<'_>>) -> Wakeup {
    match arming {
        Some(arming) => arming.await,
        None => std::future::pending().await,
    }
}

/// Completes when `wakeup` does; pending without one (a
/// [`Wakeup::never`] stays pending by itself).
pub(crate) async fn wake(wakeup: &mut Option<Wakeup>) {
    match wakeup {
        Some(wakeup) => wakeup.await,
        None => std::future::pending().await,
    }
}
