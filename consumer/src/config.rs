//! A consumer's settings: [`ConsumerConfig`], plain data with a documented
//! default on every field.

use std::time::Duration;

use ebb_message_store::stream_name::is_category;
use ebb_message_store::{CategoryQuery, ConsumerGroup, DEFAULT_BATCH_SIZE, StreamName};

use crate::Error;

/// The default time a caught-up consumer waits before reading again
/// (Eventide's).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The default number of messages handled between two position records
/// (Eventide's).
pub const DEFAULT_POSITION_UPDATE_INTERVAL: u64 = 100;

/// The default waits, in milliseconds, before a store call of the
/// consumer's own (a read, a position, failure or parked record) that
/// failed with a transient error is made again; when they are spent the
/// consumer stops with the error.
pub const DEFAULT_STORE_RETRY_MS: [u64; 3] = [100, 1_000, 5_000];

/// What a consumer reads and how.
///
/// ```
/// use ebb_consumer::ConsumerConfig;
///
/// let config = ConsumerConfig {
///     identifier: Some("worker1".into()),
///     ..ConsumerConfig::new("account:command")
/// };
/// config.validate()?;
/// assert_eq!(config.position_stream_name()?.as_str(), "account:command+position-worker1");
/// # Ok::<(), ebb_consumer::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The category read (`account:command`). Required.
    pub category: String,
    /// Names this consumer's position stream
    /// (`CATEGORY:position-IDENTIFIER`), so that consumers of one category
    /// keep positions of their own. Required with a consumer group, and
    /// when messages are parked. Default: none (`CATEGORY:position`).
    pub identifier: Option<String>,
    /// Messages read per query. Default: 1,000.
    pub batch_size: i64,
    /// How long a caught-up consumer waits before reading again.
    /// Default: 100 ms.
    pub poll_interval: Duration,
    /// The position is recorded after this many messages, and when the
    /// consumer stops. Default: 100.
    pub position_update_interval: u64,
    /// Only this member's share of the category's streams. Default: none.
    pub group: Option<ConsumerGroup>,
    /// Only messages whose `correlationStreamName` is in this category.
    /// Default: none.
    pub correlation: Option<String>,
    /// A raw SQL condition; the database must allow them. Default: none.
    pub condition: Option<String>,
    /// The waits, in milliseconds, before each new attempt at a call the
    /// consumer makes to the store itself (reading the category, recording
    /// the position, writing failure and parked records) that failed with
    /// a transient error (a lost connection, a server that is restarting);
    /// other errors are not retried. When they are spent, the consumer
    /// stops with the error, for the process to end and its supervisor to
    /// restart it. An empty list stops at the first failure. A read that
    /// fails part-way through the category is opened again at the message
    /// after the last one read. The handlers' own store calls are theirs
    /// to retry. Default: [`DEFAULT_STORE_RETRY_MS`] (100 ms, 1 s, 5 s).
    pub store_retry_ms: Vec<u64>,
    /// How many messages are handled at once. Messages of one stream are
    /// never handled at the same time, and always in their order; the
    /// recorded position never passes the lowest message not yet handled
    /// (so after a crash, the messages handled after it are handled again:
    /// handlers are idempotent). Beyond the store's read-ahead, the
    /// consumer holds at most 16 messages per slot past the lowest
    /// unfinished one, so one slow stream holds up a bounded number of
    /// others. Default: 1, one message at a time in global order
    /// (Eventide's). Above 1, a [`PgStore`](ebb_message_store::PgStore)
    /// at its defaults (two of its connections shared by its calls, see
    /// [`pipeline_connections`](ebb_message_store::PgStoreConfig::pipeline_connections))
    /// lets the handlers' concurrent reads and writes share connections,
    /// which costs the server much less than one connection per call.
    pub concurrency: usize,
    /// Whether a caught-up consumer is woken at once by a write to its
    /// category (LISTEN/NOTIFY, where the store supports it: see
    /// [`MessageStore::arm_wakeup`](ebb_message_store::MessageStore::arm_wakeup)),
    /// rather than at its next poll. Polling goes on beside it, as the
    /// fallback. Default: true.
    pub wake_on_notify: bool,
    /// Parks a poison message: one that has already ended the process
    /// this many times (as many `Failed` records for its global position
    /// in [`failures_stream_name`](Self::failures_stream_name)) is written
    /// to [`parked_stream_name`](Self::parked_stream_name) on the next
    /// start instead of being handled, and consumption goes on. Must be at
    /// least 1. Default: none (Eventide's model: the process ends on the
    /// message at every start, and its supervisor restarts it). Every
    /// failure that ends the process is recorded either way. Needs an
    /// [`identifier`](Self::identifier): the failures and parked streams
    /// are read at the start, and without an identifier their names
    /// (`CATEGORY:failures`) are category names, which the store refuses
    /// to read as streams. See [poison messages](crate#poison-messages).
    pub park_after_failures: Option<u32>,
    /// The waits, in milliseconds, before each new attempt at a message
    /// whose handler failed, within the process, whatever the error: the
    /// handlers that failed run again after each wait, and the message
    /// goes to the error hook only when they are spent. A stop waits for
    /// the message in hand, retries included. Default: none (the first
    /// failure counts).
    pub handler_retry_ms: Vec<u64>,
    /// Parks a message whose handling still fails once the
    /// [`handler_retry_ms`](Self::handler_retry_ms) retries are spent (and
    /// the error hook says stop), instead of stopping the consumer: it is
    /// written to [`parked_stream_name`](Self::parked_stream_name) and
    /// consumption goes on. Needs an [`identifier`](Self::identifier), as
    /// [`park_after_failures`](Self::park_after_failures) does. Default:
    /// false.
    pub park_after_retries: bool,
}

impl ConsumerConfig {
    /// The defaults, for `category`.
    pub fn new(category: impl Into<String>) -> Self {
        Self {
            category: category.into(),
            identifier: None,
            batch_size: DEFAULT_BATCH_SIZE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            position_update_interval: DEFAULT_POSITION_UPDATE_INTERVAL,
            group: None,
            correlation: None,
            condition: None,
            store_retry_ms: DEFAULT_STORE_RETRY_MS.to_vec(),
            concurrency: 1,
            wake_on_notify: true,
            park_after_failures: None,
            handler_retry_ms: Vec::new(),
            park_after_retries: false,
        }
    }

    /// Refuses what no consumer can run with: a stream name where a
    /// category is needed, a consumer group without an identifier, an
    /// invalid group, a correlation that is not a category, a batch size,
    /// interval or poll interval of zero, parking after zero failures,
    /// parking without an identifier, a retry interval too long to wait.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::invalid_config(reason));
        if let Err(err) = StreamName::category_name(&self.category) {
            return Err(Error::invalid_config_by(
                "the category to consume must be a category",
                err,
            ));
        }
        if let Some(identifier) = &self.identifier {
            if !is_identifier(identifier) {
                return invalid(format!(
                    "the identifier {identifier:?} must be non-empty and without '-', ':' or '+'"
                ));
            }
        }
        if let Some(group) = self.group {
            if self.identifier.is_none() {
                return invalid(
                    "a consumer group needs an identifier, so that each member keeps its own position"
                        .into(),
                );
            }
            if group.size < 1 || group.member < 0 || group.member >= group.size {
                return invalid(format!(
                    "consumer group member {} of {} is not in 0..size",
                    group.member, group.size
                ));
            }
        }
        if let Some(correlation) = &self.correlation {
            if !is_category(correlation) || correlation.is_empty() {
                return invalid(format!(
                    "the correlation {correlation:?} must be a category"
                ));
            }
        }
        if self.batch_size < 1 {
            return invalid(format!(
                "the batch size must be at least 1 (got {})",
                self.batch_size
            ));
        }
        if self.position_update_interval == 0 {
            return invalid("the position update interval must be at least 1".into());
        }
        if self.concurrency == 0 {
            return invalid("the concurrency must be at least 1".into());
        }
        if self.poll_interval.is_zero() {
            return invalid("the poll interval must be longer than zero".into());
        }
        if self.park_after_failures == Some(0) {
            return invalid(
                "park_after_failures must be at least 1 (none turns parking off)".into(),
            );
        }
        if (self.park_after_failures.is_some() || self.park_after_retries)
            && self.identifier.is_none()
        {
            // The failures and parked streams, read at the start, would be
            // named like categories (`account:command+failures`), which
            // the store refuses to read as streams: every start would fail.
            return invalid(
                "parking messages needs an identifier, so that the failures and parked streams are streams (CATEGORY:failures-IDENTIFIER)"
                    .into(),
            );
        }
        crate::retries::Retries::new(self)?;
        Ok(())
    }

    /// Where the position is recorded: `CATEGORY:position-IDENTIFIER`, or
    /// `CATEGORY:position` without an identifier; `+position` when the
    /// category has types already (`account:command+position-worker1`),
    /// as Eventide names them.
    pub fn position_stream_name(&self) -> Result<StreamName, Error> {
        self.own_stream_name("position")
    }

    /// Where the failures that ended the process are recorded:
    /// `CATEGORY:failures-IDENTIFIER`, named as the position stream is
    /// (`account:command+failures-worker1`).
    pub fn failures_stream_name(&self) -> Result<StreamName, Error> {
        self.own_stream_name("failures")
    }

    /// Where poison messages are parked: `CATEGORY:parked-IDENTIFIER`,
    /// named as the position stream is (`account:command+parked-worker1`).
    pub fn parked_stream_name(&self) -> Result<StreamName, Error> {
        self.own_stream_name("parked")
    }

    /// A stream of this consumer's own: the category with the type `kind`
    /// and the identifier as id.
    fn own_stream_name(&self, kind: &str) -> Result<StreamName, Error> {
        let separator = if self.category.contains(':') {
            '+'
        } else {
            ':'
        };
        let mut name = format!("{}{separator}{kind}", self.category);
        if let Some(identifier) = &self.identifier {
            name.push('-');
            name.push_str(identifier);
        }
        StreamName::parse(name)
            .map_err(|err| Error::invalid_config_by(format!("the {kind} stream's name"), err))
    }

    /// The query for the batch that starts at `position`.
    pub(crate) fn query(&self, position: i64) -> CategoryQuery {
        CategoryQuery {
            position,
            batch_size: self.batch_size,
            correlation: self.correlation.clone(),
            consumer_group: self.group,
            condition: self.condition.clone(),
        }
    }
}

/// Whether `identifier` can name a consumer's streams: the id part of
/// `CATEGORY:position-IDENTIFIER`, so non-empty and without the stream
/// name's separators.
pub(crate) fn is_identifier(identifier: &str) -> bool {
    !identifier.is_empty() && !identifier.contains(['-', ':', '+'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_streams_are_named_as_eventide_names_them() {
        let plain = ConsumerConfig::new("account");
        assert_eq!(
            plain.position_stream_name().unwrap().as_str(),
            "account:position"
        );
        let named = ConsumerConfig {
            identifier: Some("worker1".into()),
            ..ConsumerConfig::new("account")
        };
        assert_eq!(
            named.position_stream_name().unwrap().as_str(),
            "account:position-worker1"
        );
        let typed = ConsumerConfig {
            identifier: Some("w".into()),
            ..ConsumerConfig::new("account:command")
        };
        assert_eq!(
            typed.position_stream_name().unwrap().as_str(),
            "account:command+position-w"
        );
    }

    #[test]
    fn failures_and_parked_streams_are_named_as_the_position_stream() {
        let names = |config: &ConsumerConfig| {
            (
                config.failures_stream_name().unwrap().as_str().to_owned(),
                config.parked_stream_name().unwrap().as_str().to_owned(),
            )
        };
        let plain = ConsumerConfig::new("account");
        assert_eq!(
            names(&plain),
            ("account:failures".into(), "account:parked".into())
        );
        let named = ConsumerConfig {
            identifier: Some("worker1".into()),
            ..ConsumerConfig::new("account")
        };
        assert_eq!(
            names(&named),
            (
                "account:failures-worker1".into(),
                "account:parked-worker1".into()
            )
        );
        let typed = ConsumerConfig::new("account:command");
        assert_eq!(
            names(&typed),
            (
                "account:command+failures".into(),
                "account:command+parked".into()
            )
        );
        let typed_named = ConsumerConfig {
            identifier: Some("worker1".into()),
            ..typed
        };
        assert_eq!(
            names(&typed_named),
            (
                "account:command+failures-worker1".into(),
                "account:command+parked-worker1".into()
            )
        );
    }

    #[test]
    fn what_no_consumer_can_run_with_is_refused() {
        let refused = |config: ConsumerConfig, says: &str| {
            let err = config.validate().unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        };
        refused(ConsumerConfig::new("account-1"), "must be a category");
        refused(ConsumerConfig::new(""), "must be a category");
        refused(
            ConsumerConfig {
                group: Some(ConsumerGroup { member: 0, size: 2 }),
                ..ConsumerConfig::new("account")
            },
            "needs an identifier",
        );
        refused(
            ConsumerConfig {
                identifier: Some("w".into()),
                group: Some(ConsumerGroup { member: 2, size: 2 }),
                ..ConsumerConfig::new("account")
            },
            "not in 0..size",
        );
        refused(
            ConsumerConfig {
                identifier: Some("a-b".into()),
                ..ConsumerConfig::new("account")
            },
            "without '-'",
        );
        refused(
            ConsumerConfig {
                correlation: Some("transfer-1".into()),
                ..ConsumerConfig::new("account")
            },
            "correlation",
        );
        refused(
            ConsumerConfig {
                batch_size: 0,
                ..ConsumerConfig::new("account")
            },
            "batch size",
        );
        refused(
            ConsumerConfig {
                position_update_interval: 0,
                ..ConsumerConfig::new("account")
            },
            "position update interval",
        );
        refused(
            ConsumerConfig {
                poll_interval: Duration::ZERO,
                ..ConsumerConfig::new("account")
            },
            "poll interval",
        );
        refused(
            ConsumerConfig {
                identifier: Some("w".into()),
                park_after_failures: Some(0),
                ..ConsumerConfig::new("account")
            },
            "park_after_failures",
        );
        refused(
            ConsumerConfig {
                park_after_failures: Some(1),
                ..ConsumerConfig::new("account:command")
            },
            "needs an identifier",
        );
        refused(
            ConsumerConfig {
                park_after_retries: true,
                ..ConsumerConfig::new("account")
            },
            "needs an identifier",
        );
        ConsumerConfig {
            identifier: Some("w".into()),
            group: Some(ConsumerGroup { member: 1, size: 3 }),
            correlation: Some("transfer".into()),
            park_after_failures: Some(1),
            handler_retry_ms: vec![0, 10],
            park_after_retries: true,
            ..ConsumerConfig::new("account:command")
        }
        .validate()
        .unwrap();
    }
}
