//! A consumer's own streams (position, failures, parked), named as
//! [`ebb_consumer::ConsumerConfig`] names them, and how the operators'
//! queries find them in the store.
//!
//! A consumer of `account` with the identifier `w1` records its position
//! in `account:position-w1`, its failures in `account:failures-w1` and
//! its parked messages in `account:parked-w1`; a consumer of
//! `account:command` uses `+` instead (`account:command+position-w1`), and
//! one without an identifier has no id (`account:position`). The streams
//! of one kind for one consumed category thus make up one category
//! (`account:position`), which the `messages_category` index reads.
//!
//! Finding a category's streams by reading its messages costs a row read
//! per message, and position streams grow by a message every
//! `position_update_interval` messages their consumer handles. So they
//! are found in the `messages_stream` index instead, by a loose scan (one
//! probe per stream) of a range that holds every name beginning
//! `account:position-`, where the index's collation guarantees one: up to
//! `account:position.` where names compare byte by byte (the `C`, `POSIX`
//! and `C.UTF-8` collations, PostgreSQL's builtin provider), and up to
//! `account:position-` followed by U+FFFF under ICU, whose root collation
//! gives U+FFFF the highest primary weight for just such ranges (the
//! range may then hold other names too, equal but for case or accents,
//! which are left out). libc's other locales (`en_US.UTF-8`) guarantee no
//! such bound, as they may ignore punctuation; there the streams are read
//! from the category's messages.

use ebb_consumer::ConsumerConfig;
use ebb_message_store::deadpool_postgres;
use ebb_message_store::{CategoryQuery, Message, MessageStore as _, PgStore, StreamQuery};
use futures_util::TryStreamExt as _;

use crate::Error;

/// The position streams' category kind.
pub const POSITION: &str = "position";
/// The failures streams' category kind.
pub const FAILURES: &str = "failures";
/// The parked streams' category kind.
pub const PARKED: &str = "parked";

/// A loose index scan of `messages_category`: every category of the
/// store, in order, one index probe per category (not per message), with
/// a NULL after the last.
macro_rules! categories_scan {
    () => {
        "WITH RECURSIVE categories(category) AS ( \
          (SELECT message_store.category(stream_name) FROM message_store.messages \
            ORDER BY message_store.category(stream_name) LIMIT 1) \
          UNION ALL \
          SELECT (SELECT message_store.category(m.stream_name) FROM message_store.messages m \
                   WHERE message_store.category(m.stream_name) > c.category \
                   ORDER BY message_store.category(m.stream_name) LIMIT 1) \
          FROM categories c WHERE c.category IS NOT NULL \
        ) "
    };
}

/// The distinct categories of the store whose name ends in `:position`
/// or `+position` (`categories_scan`, filtered).
const POSITION_CATEGORIES: &str = concat!(
    categories_scan!(),
    "SELECT category::text FROM categories \
     WHERE category LIKE '%:position' OR category LIKE '%+position' \
     ORDER BY category"
);

/// Every category of the store, in order (`categories_scan`,
/// unfiltered).
const CATEGORIES: &str = concat!(
    categories_scan!(),
    "SELECT category::text FROM categories WHERE category IS NOT NULL"
);

/// How the `messages_stream` index orders stream names: its collation's
/// provider, locale and determinism, and the database's provider and
/// locale (for the default collation). `datlocprovider` is read through
/// JSON, as servers before PostgreSQL 15 have no such column (their
/// collations are all libc's).
const STREAM_INDEX_COLLATION: &str = "\
    SELECT c.collprovider::text, c.collcollate::text, coalesce(c.collisdeterministic, true), \
           d.datcollate::text, to_jsonb(d) ->> 'datlocprovider', \
           pg_encoding_to_char(d.encoding) = 'UTF8' \
    FROM pg_index i \
    LEFT JOIN pg_collation c ON c.oid = i.indcollation[0] \
    JOIN pg_database d ON d.datname = current_database() \
    WHERE i.indexrelid = 'message_store.messages_stream'::regclass";

/// The distinct stream names in a range of the `messages_stream` index,
/// `$1` inclusive to `$2` exclusive: a loose index scan, one probe per
/// stream (index-only where the table is all-visible).
const STREAMS_IN_RANGE: &str = "\
    WITH RECURSIVE streams(name) AS ( \
      (SELECT stream_name FROM message_store.messages \
        WHERE stream_name >= $1::text AND stream_name < $2::text \
        ORDER BY stream_name LIMIT 1) \
      UNION ALL \
      SELECT (SELECT m.stream_name FROM message_store.messages m \
               WHERE m.stream_name > s.name AND m.stream_name < $2::text \
               ORDER BY m.stream_name LIMIT 1) \
      FROM streams s WHERE s.name IS NOT NULL \
    ) \
    SELECT name FROM streams WHERE name IS NOT NULL";

/// Whether the stream `$1` has a message (one probe of
/// `messages_stream`).
const STREAM_EXISTS: &str = "\
    SELECT EXISTS (SELECT 1 FROM message_store.messages WHERE stream_name = $1::text)";

/// The distinct stream names of one category, from its messages (an
/// index scan of `messages_category`, a row read per message).
const STREAMS_OF_CATEGORY: &str = "\
    SELECT DISTINCT stream_name::text FROM message_store.messages \
    WHERE message_store.category(stream_name) = $1::varchar";

/// One consumer, as its own streams name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerName {
    /// The category it consumes.
    pub category: String,
    /// Its identifier, if it has one.
    pub identifier: Option<String>,
}

impl ConsumerName {
    /// The consumer of `category` identified by `identifier` (without
    /// one: the consumer without an identifier, or, where a query selects
    /// by name, every consumer of `category`), or
    /// [`Error::InvalidInput`] for a category or an identifier that no
    /// consumer can have.
    pub fn new(category: &str, identifier: Option<&str>) -> Result<Self, Error> {
        let name = Self {
            category: category.to_owned(),
            identifier: identifier.map(str::to_owned),
        };
        name.config()
            .validate()
            .map_err(|err| Error::InvalidInput(Box::new(err)))?;
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
    pub(crate) fn config(&self) -> ConsumerConfig {
        ConsumerConfig {
            identifier: self.identifier.clone(),
            ..ConsumerConfig::new(self.category.as_str())
        }
    }

    /// Its own stream of `kind` ([`POSITION`], [`FAILURES`] or
    /// [`PARKED`]), or [`Error::InvalidInput`] for a name no consumer can
    /// have.
    pub fn stream(&self, kind: &str) -> Result<String, Error> {
        let config = self.config();
        let name = match kind {
            POSITION => config.position_stream_name(),
            FAILURES => config.failures_stream_name(),
            _ => config.parked_stream_name(),
        };
        name.map(ebb_message_store::StreamName::into_string)
            .map_err(|err| Error::InvalidInput(Box::new(err)))
    }

    /// The category every consumer of this one's category keeps its
    /// streams of `kind` in (`account:command+parked`).
    pub fn kind_category(&self, kind: &str) -> Result<String, Error> {
        Self {
            category: self.category.clone(),
            identifier: None,
        }
        .stream(kind)
    }

    /// The consumers this name selects, as a message names them:
    /// "consumer w1 of account", or, without an identifier, "any consumer
    /// of account".
    pub fn whose(&self) -> String {
        match &self.identifier {
            Some(identifier) => format!("consumer {identifier} of {}", self.category),
            None => format!("any consumer of {}", self.category),
        }
    }
}

/// A pooled connection of `store`'s, for the commands' own statements.
pub(crate) async fn client(store: &PgStore) -> Result<deadpool_postgres::Object, Error> {
    store.client().await.map_err(|source| Error::Store {
        action: "cannot connect to the message store".into(),
        source,
    })
}

/// Every consumer with a position stream, of `category` only if given,
/// ordered by category and identifier, with its position stream's name.
pub(crate) async fn position_streams(
    store: &PgStore,
    category: Option<&ConsumerName>,
) -> Result<Vec<(ConsumerName, String)>, Error> {
    let client = client(store).await?;
    let categories: Vec<String> = match category {
        Some(name) => vec![name.kind_category(POSITION)?],
        None => client
            .query(POSITION_CATEGORIES, &[])
            .await
            .map_err(|source| Error::Statement {
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
    let order = stream_index_order(&client).await?;
    // Sent together, answered one after the other on one connection.
    let listed = categories.iter().map(|category| {
        let client = &client;
        async move {
            match order.range_of(category) {
                Some((from, until)) => {
                    streams_in_index_range(client, category, &from, &until).await
                }
                None => streams_from_messages(client, category).await,
            }
        }
    });
    let mut found: Vec<(ConsumerName, String)> = futures_util::future::try_join_all(listed)
        .await?
        .into_iter()
        .flatten()
        .filter_map(|stream| {
            ConsumerName::from_stream(&stream, POSITION).map(|consumer| (consumer, stream))
        })
        .collect();
    found.sort_by(|(a, _), (b, _)| (&a.category, &a.identifier).cmp(&(&b.category, &b.identifier)));
    Ok(found)
}

/// Every category of the store, in order (a loose index scan of
/// `messages_category`: one probe per category).
pub(crate) async fn categories(client: &deadpool_postgres::Object) -> Result<Vec<String>, Error> {
    Ok(client
        .query(CATEGORIES, &[])
        .await
        .map_err(|source| Error::Statement {
            action: "cannot list the categories".into(),
            source,
        })?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// How the `messages_stream` index orders stream names, as far as the
/// names beginning with a given text go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameOrder {
    /// Byte by byte.
    Bytes,
    /// ICU's, deterministic: U+FFFF after anything but itself.
    Icu,
    /// No range is known to hold them all.
    Other,
}

impl NameOrder {
    /// A range, from inclusive to until exclusive, holding every stream
    /// name of `category` but `category` itself, if one is known.
    fn range_of(self, category: &str) -> Option<(String, String)> {
        match self {
            Self::Bytes => Some((format!("{category}-"), format!("{category}."))),
            Self::Icu => Some((format!("{category}-"), format!("{category}-\u{ffff}"))),
            Self::Other => None,
        }
    }
}

pub(crate) async fn stream_index_order(
    client: &deadpool_postgres::Object,
) -> Result<NameOrder, Error> {
    let row = client
        .query_one(STREAM_INDEX_COLLATION, &[])
        .await
        .map_err(|source| Error::Statement {
            action: "cannot read the collation of the messages_stream index".into(),
            source,
        })?;
    let provider: Option<String> = row.get(0);
    let locale: Option<String> = row.get(1);
    let deterministic: bool = row.get(2);
    let (database_locale, database_provider): (String, Option<String>) = (row.get(3), row.get(4));
    let utf8: bool = row.get(5);
    let (provider, locale) = match provider.as_deref() {
        // The database's default collation (libc's before PostgreSQL 15).
        None | Some("d") => (
            database_provider.unwrap_or_else(|| "c".into()),
            Some(database_locale),
        ),
        Some(provider) => (provider.to_owned(), locale),
    };
    Ok(match provider.as_str() {
        // A nondeterministic collation finds distinct names equal, which
        // a loose scan would skip.
        _ if !deterministic => NameOrder::Other,
        "c" if locale.as_deref().is_some_and(is_bytewise_libc) => NameOrder::Bytes,
        // PostgreSQL's builtin provider (17): code point order, which is
        // byte order in UTF-8.
        "b" => NameOrder::Bytes,
        // U+FFFF is to be sent as a character of the database's.
        "i" if utf8 => NameOrder::Icu,
        _ => NameOrder::Other,
    })
}

/// Whether libc's `locale` compares strings byte by byte (in UTF-8, code
/// point order is byte order).
fn is_bytewise_libc(locale: &str) -> bool {
    let lower = locale.to_ascii_lowercase();
    matches!(lower.as_str(), "c" | "posix" | "c.utf8" | "c.utf-8")
}

/// The streams of `category`: those a loose scan finds in the range of
/// the `messages_stream` index from `from` until `until` that begin
/// `category-`, and `category` itself if it has messages.
async fn streams_in_index_range(
    client: &deadpool_postgres::Object,
    category: &str,
    from: &str,
    until: &str,
) -> Result<Vec<String>, Error> {
    let failed = |source| Error::Statement {
        action: format!("cannot list the streams of {category}"),
        source,
    };
    let prefix = format!("{category}-");
    let (in_range, bare) = futures_util::future::try_join(
        client.query(STREAMS_IN_RANGE, &[&from, &until]),
        client.query_one(STREAM_EXISTS, &[&category]),
    )
    .await
    .map_err(failed)?;
    let mut streams: Vec<String> = in_range
        .iter()
        .map(|row| row.get::<_, String>(0))
        .filter(|name| name.starts_with(&prefix))
        .collect();
    let bare: bool = bare.get(0);
    if bare {
        streams.push(category.to_owned());
    }
    Ok(streams)
}

/// The streams of `category`, from its messages.
async fn streams_from_messages(
    client: &deadpool_postgres::Object,
    category: &str,
) -> Result<Vec<String>, Error> {
    Ok(client
        .query(STREAMS_OF_CATEGORY, &[&category])
        .await
        .map_err(|source| Error::Statement {
            action: format!("cannot list the streams of {category}"),
            source,
        })?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// The messages of type `type_name` in the own streams of `kind` of
/// `consumer` (its one stream with an identifier; without one, the
/// streams of every consumer of its category, read as one category), in
/// global position order, each with the consumer whose stream held it.
pub(crate) async fn own_records(
    store: &PgStore,
    consumer: &ConsumerName,
    kind: &str,
    type_name: &str,
) -> Result<Vec<(ConsumerName, Message)>, Error> {
    let read = match &consumer.identifier {
        Some(_) => {
            let stream = consumer.stream(kind)?;
            let messages = store.read_stream(&stream, StreamQuery::new());
            messages
                .try_collect::<Vec<_>>()
                .await
                .map_err(|source| Error::Store {
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
                .map_err(|source| Error::Store {
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
    fn ranges_hold_the_names_of_a_category() {
        let (from, until) = NameOrder::Bytes.range_of("a:position").unwrap();
        for name in ["a:position-1", "a:position-", "a:position-\u{10ffff}"] {
            assert!(from.as_str() <= name && name < until.as_str(), "{name}");
        }
        for name in ["a:position", "a:position.", "a:positionx-1", "a:position+"] {
            assert!(!(from.as_str() <= name && name < until.as_str()), "{name}");
        }
        let (from, until) = NameOrder::Icu.range_of("a").unwrap();
        assert_eq!((from.as_str(), until.as_str()), ("a-", "a-\u{ffff}"));
        assert_eq!(NameOrder::Other.range_of("a"), None);
    }

    #[test]
    fn only_byte_order_locales_are_taken_for_ranges() {
        for locale in ["C", "POSIX", "C.UTF-8", "C.utf8"] {
            assert!(is_bytewise_libc(locale), "{locale}");
        }
        for locale in ["en_US.UTF-8", "de_DE", "C.ISO-8859-1", ""] {
            assert!(!is_bytewise_libc(locale), "{locale}");
        }
    }

    #[test]
    fn names_no_consumer_can_have_are_usage_errors() {
        for (category, identifier) in [
            ("account-1", None),
            ("account", Some("a-b")),
            ("account", Some("")),
        ] {
            let err = ConsumerName::new(category, identifier).unwrap_err();
            assert!(err.is_invalid_input(), "{category} {identifier:?}: {err}");
        }
    }
}
