//! A consumer's own streams (position, failures, parked), named as
//! [`ebb_consumer::ConsumerConfig`] names them, and how the operator
//! commands find them in the store.
//!
//! A consumer of `account` with the identifier `w1` records its position
//! in `account:position-w1`, its failures in `account:failures-w1` and
//! its parked messages in `account:parked-w1`; a consumer of
//! `account:command` uses `+` instead (`account:command+position-w1`), and
//! one without an identifier has no id (`account:position`). The streams
//! of one kind for one consumed category thus make up one category
//! (`account:position`), which the `messages_category` index reads.

use ebb_consumer::ConsumerConfig;
use ebb_message_store::deadpool_postgres;
use ebb_message_store::{CategoryQuery, Message, MessageStore as _, PgStore, StreamQuery};
use futures_util::TryStreamExt as _;

use super::CliError;

/// The position streams' category kind.
pub const POSITION: &str = "position";
/// The failures streams' category kind.
pub const FAILURES: &str = "failures";
/// The parked streams' category kind.
pub const PARKED: &str = "parked";

/// The distinct categories of the store whose name ends in `:position`
/// or `+position`: a loose index scan of `messages_category`, one index
/// probe per category of the store (not per message).
const POSITION_CATEGORIES: &str = "\
    WITH RECURSIVE categories(category) AS ( \
      (SELECT message_store.category(stream_name) FROM message_store.messages \
        ORDER BY message_store.category(stream_name) LIMIT 1) \
      UNION ALL \
      SELECT (SELECT message_store.category(m.stream_name) FROM message_store.messages m \
               WHERE message_store.category(m.stream_name) > c.category \
               ORDER BY message_store.category(m.stream_name) LIMIT 1) \
      FROM categories c WHERE c.category IS NOT NULL \
    ) \
    SELECT category::text FROM categories \
    WHERE category LIKE '%:position' OR category LIKE '%+position' \
    ORDER BY category";

/// The distinct stream names of the given categories (an index scan of
/// `messages_category` over those categories' messages).
const STREAMS_OF_CATEGORIES: &str = "\
    SELECT DISTINCT stream_name::text FROM message_store.messages \
    WHERE message_store.category(stream_name) = ANY($1::varchar[]) \
    ORDER BY 1";

/// One consumer, as its own streams name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerName {
    /// The category it consumes.
    pub category: String,
    /// Its identifier, if it has one.
    pub identifier: Option<String>,
}

impl ConsumerName {
    /// The consumer of `category` identified by `identifier`, or a usage
    /// error for a category or an identifier that no consumer can have.
    pub fn new(category: &str, identifier: Option<&str>) -> Result<Self, CliError> {
        let name = Self {
            category: category.to_owned(),
            identifier: identifier.map(str::to_owned),
        };
        name.config()
            .validate()
            .map_err(|err| CliError::Usage(super::one_line(&err)))?;
        Ok(name)
    }

    /// The consumer whose own stream of `kind` is `stream`
    /// (`account:command+parked-w1`), if it is one.
    pub fn from_stream(stream: &str, kind: &str) -> Option<Self> {
        let (category, identifier) = match stream.split_once('-') {
            Some((category, identifier)) => (category, Some(identifier.to_owned())),
            None => (stream, None),
        };
        let consumed = category
            .strip_suffix(kind)
            .and_then(|rest| rest.strip_suffix([':', '+']))
            .filter(|consumed| !consumed.is_empty())?;
        Some(Self {
            category: consumed.to_owned(),
            identifier,
        })
    }

    /// The consumer's settings, as far as its streams' names go.
    fn config(&self) -> ConsumerConfig {
        ConsumerConfig {
            identifier: self.identifier.clone(),
            ..ConsumerConfig::new(self.category.as_str())
        }
    }

    /// Its own stream of `kind` ([`POSITION`], [`FAILURES`] or
    /// [`PARKED`]).
    pub fn stream(&self, kind: &str) -> Result<String, CliError> {
        let config = self.config();
        let name = match kind {
            POSITION => config.position_stream_name(),
            FAILURES => config.failures_stream_name(),
            _ => config.parked_stream_name(),
        };
        name.map(ebb_message_store::StreamName::into_string)
            .map_err(|err| CliError::Usage(super::one_line(&err)))
    }

    /// The category every consumer of this one's category keeps its
    /// streams of `kind` in (`account:command+parked`).
    pub fn kind_category(&self, kind: &str) -> Result<String, CliError> {
        Self {
            category: self.category.clone(),
            identifier: None,
        }
        .stream(kind)
    }
}

/// A pooled connection of `store`'s, for the commands' own statements.
pub async fn client(store: &PgStore) -> Result<deadpool_postgres::Object, CliError> {
    store.client().await.map_err(|source| CliError::Store {
        action: "cannot connect to the message store".into(),
        source,
    })
}

/// Every consumer with a position stream, of `category` only if given,
/// ordered by category and identifier, with its position stream's name.
pub async fn position_streams(
    store: &PgStore,
    category: Option<&ConsumerName>,
) -> Result<Vec<(ConsumerName, String)>, CliError> {
    let client = client(store).await?;
    let categories: Vec<String> = match category {
        Some(name) => vec![name.kind_category(POSITION)?],
        None => client
            .query(POSITION_CATEGORIES, &[])
            .await
            .map_err(|source| CliError::Database {
                action: "cannot list the position streams' categories".into(),
                source,
            })?
            .iter()
            .map(|row| row.get(0))
            .collect(),
    };
    if categories.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(STREAMS_OF_CATEGORIES, &[&categories])
        .await
        .map_err(|source| CliError::Database {
            action: "cannot list the position streams".into(),
            source,
        })?;
    let mut found: Vec<(ConsumerName, String)> = rows
        .iter()
        .map(|row| row.get::<_, String>(0))
        .filter_map(|stream| {
            ConsumerName::from_stream(&stream, POSITION).map(|consumer| (consumer, stream))
        })
        .collect();
    found.sort_by(|(a, _), (b, _)| (&a.category, &a.identifier).cmp(&(&b.category, &b.identifier)));
    Ok(found)
}

/// The messages of type `type_name` in the own streams of `kind` of
/// `consumer` (its one stream with an identifier; without one, the
/// streams of every consumer of its category, read as one category), in
/// global position order, each with the consumer whose stream held it.
pub async fn own_records(
    store: &PgStore,
    consumer: &ConsumerName,
    kind: &str,
    type_name: &str,
) -> Result<Vec<(ConsumerName, Message)>, CliError> {
    let read = match &consumer.identifier {
        Some(_) => {
            let stream = consumer.stream(kind)?;
            let messages = store.read_stream(&stream, StreamQuery::new());
            messages
                .try_collect::<Vec<_>>()
                .await
                .map_err(|source| CliError::Store {
                    action: format!("cannot read {stream}"),
                    source,
                })?
        }
        None => {
            let category = consumer.kind_category(kind)?;
            let messages = store.read_category(&category, CategoryQuery::new());
            messages
                .try_collect::<Vec<_>>()
                .await
                .map_err(|source| CliError::Store {
                    action: format!("cannot read {category}"),
                    source,
                })?
        }
    };
    Ok(read
        .into_iter()
        .filter(|message| message.type_name == type_name)
        .filter_map(|message| {
            ConsumerName::from_stream(&message.stream_name, kind).map(|owner| (owner, message))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_streams_are_named_as_the_consumer_names_them() {
        let typed = ConsumerName::new("account:command", Some("w1")).unwrap();
        assert_eq!(
            typed.stream(POSITION).unwrap(),
            "account:command+position-w1"
        );
        assert_eq!(
            typed.stream(FAILURES).unwrap(),
            "account:command+failures-w1"
        );
        assert_eq!(
            typed.kind_category(PARKED).unwrap(),
            "account:command+parked"
        );
        let plain = ConsumerName::new("account", None).unwrap();
        assert_eq!(plain.stream(POSITION).unwrap(), "account:position");
        assert_eq!(plain.kind_category(FAILURES).unwrap(), "account:failures");
    }

    #[test]
    fn stream_names_give_back_their_consumer() {
        for (category, identifier) in [
            ("account", Some("w1")),
            ("account", None),
            ("account:command", Some("failover")),
            ("account:command", None),
        ] {
            let name = ConsumerName::new(category, identifier).unwrap();
            for kind in [POSITION, FAILURES, PARKED] {
                let stream = name.stream(kind).unwrap();
                assert_eq!(
                    ConsumerName::from_stream(&stream, kind).as_ref(),
                    Some(&name),
                    "{stream}"
                );
            }
        }
        assert_eq!(ConsumerName::from_stream("account-1", POSITION), None);
        assert_eq!(ConsumerName::from_stream(":position-1", POSITION), None);
        assert_eq!(
            ConsumerName::from_stream("account:positional-1", POSITION),
            None
        );
    }

    #[test]
    fn names_no_consumer_can_have_are_usage_errors() {
        for (category, identifier) in [
            ("account-1", None),
            ("account", Some("a-b")),
            ("account", Some("")),
        ] {
            let err = ConsumerName::new(category, identifier).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{category} {identifier:?}: {err}");
        }
    }
}
