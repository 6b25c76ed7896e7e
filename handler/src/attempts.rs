//! [`StoredAttempts`]: an [`AttemptStore`] that keeps `ebb_retry`'s
//! attempt counters in the message store, so that they survive a crash
//! and are shared by every instance of a component.
//!
//! It lives here because it needs both crates: `ebb-retry` knows nothing
//! of databases and the store knows nothing of retrying, and this crate
//! depends on both.
//!
//! # Streams
//!
//! One stream per key, `retryAttempts-ID`, where ID is the key itself when
//! it is a valid single stream id (not empty, no `+`, at most 200 bytes)
//! and `hashed.` with the hex of [`hash_64`] of the key otherwise. Each
//! message carries the running count, so reading the last one is enough:
//!
//! | type | data | when |
//! |---|---|---|
//! | `AttemptFailed` | `{"failures": N}` | each failed attempt |
//! | `AttemptsExhausted` | `{"failures": N}` | a call gave up on the key |
//! | `AttemptsReset` | `{}` | a call succeeded after failures, or by hand |
//!
//! A failure is appended expecting the version it was counted from, and
//! counted again from the new last message when another instance appended
//! first: two instances failing at once both count, and no count is lost
//! (which `ExpectedVersion::Any` with a running count in the data could
//! not promise). A reset is appended with no expectation: it wins whatever
//! came before it.
//!
//! [`hash_64`]: ebb_message_store::hash_64

use ebb_message_store::{
    Error as StoreError, ExpectedVersion, Message, MessageData, MessageStore, StreamName, hash_64,
};
use ebb_retry::attempt_store::{AttemptCount, AttemptStore};
use serde::Deserialize;

/// The category of the attempt streams.
pub const CATEGORY: &str = "retryAttempts";

/// Type of the message appended for each failed attempt.
pub const FAILED: &str = "AttemptFailed";
/// Type of the message appended when a call gives up on the key.
pub const EXHAUSTED: &str = "AttemptsExhausted";
/// Type of the message that starts the count over.
pub const RESET: &str = "AttemptsReset";

/// The longest key used as a stream id as it is; longer ones are hashed.
const MAX_PLAIN_KEY: usize = 200;

/// How many times a failure is counted again after another instance
/// appended first, before giving up with the conflict. Contention on one
/// key is a handful of instances, so this is never reached in practice;
/// it only keeps a pathological case from looping forever.
const MAX_CONFLICTS: u32 = 100;

/// The data of `AttemptFailed` and `AttemptsExhausted`, as read.
#[derive(Debug, Deserialize)]
struct Failures {
    /// The running count of failed attempts.
    failures: u32,
}

/// An [`AttemptStore`] on a [`MessageStore`]: see the [module docs](self).
///
/// ```
/// use ebb_handler::StoredAttempts;
/// use ebb_message_store::MemoryStore;
/// use ebb_retry::Retry;
/// use ebb_retry::attempt_store::AttemptStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let attempts = StoredAttempts::new(store.clone());
/// let retry = Retry::intervals_ms([0, 0]).attempt_store(attempts.clone()).build()?;
///
/// let err = retry.run_keyed("deposit-1", |_| async { Err::<(), _>(std::fmt::Error) }).await.unwrap_err();
/// assert_eq!(err.as_retry_error().map(|e| e.attempts()), Some(3));
/// assert_eq!(store.stream_messages("retryAttempts-deposit-1").len(), 4); // 3 failures, exhausted
/// assert!(attempts.load("deposit-1").await?.exhausted);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StoredAttempts<S> {
    /// Where the attempt streams are.
    store: S,
}

impl<S: MessageStore> StoredAttempts<S> {
    /// Counters in `store`.
    pub fn new(store: S) -> Self {
        StoredAttempts { store }
    }

    /// The stream that holds `key`'s count.
    ///
    /// ```
    /// use ebb_handler::StoredAttempts;
    /// use ebb_message_store::MemoryStore;
    ///
    /// let attempts = StoredAttempts::new(MemoryStore::new());
    /// assert_eq!(attempts.stream_name("account-1/deposit-9").as_str(), "retryAttempts-account-1/deposit-9");
    /// assert!(attempts.stream_name("a+b").as_str().starts_with("retryAttempts-hashed."));
    /// ```
    pub fn stream_name(&self, key: &str) -> StreamName {
        let plain = !key.is_empty()
            && key.len() <= MAX_PLAIN_KEY
            && !key.contains(['+', '\0'])
            && !key.starts_with("hashed.");
        let name = if plain {
            StreamName::new(CATEGORY, key)
        } else {
            StreamName::new(CATEGORY, &format!("hashed.{:016x}", hash_64(key)))
        };
        // Both ids are valid: not empty, without `+` or NUL, and short.
        name.expect("a valid attempt stream name")
    }

    /// The count the stream's last message stands for, and its position.
    async fn last(&self, stream: &StreamName) -> Result<(AttemptCount, Option<i64>), StoreError> {
        let Some(message) = self
            .store
            .get_last_stream_message(stream.as_str(), None)
            .await?
        else {
            return Ok((AttemptCount::default(), None));
        };
        Ok((count_of(&message)?, Some(message.position)))
    }

    /// Append the message `next` makes from the current count, expecting
    /// the version that count was read at; read again and retry when
    /// another writer appended first.
    async fn append_counted(
        &self,
        key: &str,
        next: impl Fn(AttemptCount) -> MessageData,
    ) -> Result<(), StoreError> {
        let stream = self.stream_name(key);
        let mut conflicts = 0;
        loop {
            let (count, version) = self.last(&stream).await?;
            let expected = ExpectedVersion::from_version(version);
            match self.store.write(&stream, &next(count), expected).await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_wrong_expected_version() && conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// The count `message`, the last of an attempt stream, stands for.
fn count_of(message: &Message) -> Result<AttemptCount, StoreError> {
    let count = match message.type_name.as_str() {
        FAILED => AttemptCount {
            failures: message.data::<Failures>()?.failures,
            exhausted: false,
        },
        EXHAUSTED => AttemptCount {
            failures: message.data::<Failures>()?.failures,
            exhausted: true,
        },
        RESET => AttemptCount::default(),
        other => {
            return Err(StoreError::MalformedMessage {
                global_position: message.global_position,
                reason: format!(
                    "{other} in {} is not a message of an attempt stream",
                    message.stream_name
                ),
                source: None,
            });
        }
    };
    Ok(count)
}

/// A message of type `type_name` carrying `failures`.
fn failures_message(type_name: &str, failures: u32) -> MessageData {
    MessageData::new(type_name, serde_json::json!({ "failures": failures }))
}

impl<S: MessageStore + 'static> AttemptStore for StoredAttempts<S> {
    type Error = StoreError;

    async fn load(&self, key: &str) -> Result<AttemptCount, StoreError> {
        Ok(self.last(&self.stream_name(key)).await?.0)
    }

    async fn record_failure(&self, key: &str) -> Result<(), StoreError> {
        self.append_counted(key, |count| {
            failures_message(FAILED, count.failures.saturating_add(1))
        })
        .await
    }

    async fn record_exhausted(&self, key: &str) -> Result<(), StoreError> {
        self.append_counted(key, |count| failures_message(EXHAUSTED, count.failures))
            .await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let reset = MessageData::new(RESET, serde_json::json!({}));
        self.store
            .write(&self.stream_name(key), &reset, ExpectedVersion::Any)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebb_message_store::MemoryStore;

    #[tokio::test]
    async fn counts_failures_marks_exhaustion_and_resets() {
        let attempts = StoredAttempts::new(MemoryStore::new());
        assert_eq!(attempts.load("k").await.unwrap(), AttemptCount::default());
        for _ in 0..3 {
            attempts.record_failure("k").await.unwrap();
        }
        assert_eq!(attempts.load("k").await.unwrap().failures, 3);
        assert_eq!(attempts.load("other").await.unwrap().failures, 0);
        attempts.record_exhausted("k").await.unwrap();
        let count = attempts.load("k").await.unwrap();
        assert_eq!((count.failures, count.exhausted), (3, true));
        attempts.reset("k").await.unwrap();
        assert_eq!(attempts.load("k").await.unwrap(), AttemptCount::default());
        attempts.record_failure("k").await.unwrap();
        assert_eq!(attempts.load("k").await.unwrap().failures, 1);
    }

    #[tokio::test]
    async fn keys_that_are_no_stream_id_are_hashed_apart() {
        let attempts = StoredAttempts::new(MemoryStore::new());
        let long = "x".repeat(MAX_PLAIN_KEY + 1);
        for key in ["a+b", "a++b", "", long.as_str()] {
            attempts.record_failure(key).await.unwrap();
        }
        for key in ["a+b", "a++b", "", long.as_str()] {
            assert_eq!(attempts.load(key).await.unwrap().failures, 1, "{key:?}");
        }
        assert_ne!(attempts.stream_name("a+b"), attempts.stream_name("a++b"));
    }

    #[tokio::test]
    async fn a_foreign_message_in_the_stream_is_an_error() {
        let store = MemoryStore::new();
        let attempts = StoredAttempts::new(store.clone());
        let stream = attempts.stream_name("k");
        let foreign = MessageData::new("Deposited", serde_json::json!({}));
        store
            .write(&stream, &foreign, ExpectedVersion::Any)
            .await
            .unwrap();
        assert!(attempts.load("k").await.is_err());
    }
}
