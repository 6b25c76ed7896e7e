//! The crate's one error type, and how database errors map onto it.

use uuid::Uuid;

use crate::stream_name::InvalidStreamName;

/// Everything that can go wrong reading from or writing to a store.
///
/// Each variant says what the caller should do. The two questions handlers
/// ask most have predicates: [`is_wrong_expected_version`] (retry the
/// handler: another writer got there first) and [`is_transient`] (the same
/// call may succeed later).
///
/// [`is_wrong_expected_version`]: Error::is_wrong_expected_version
/// [`is_transient`]: Error::is_transient
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream was not at the expected version: another writer appended
    /// first. Re-read the entity and handle the message again (typically
    /// inside a `Retry`); nothing was written.
    #[error("Wrong expected version: {expected} (Stream: {stream_name}, Stream Version: {actual})")]
    WrongExpectedVersion {
        /// The stream written to.
        stream_name: String,
        /// The version the write expected (-1: no stream).
        expected: i64,
        /// The stream's version at the time (-1: empty).
        actual: i64,
    },

    /// A stream name failed validation before anything was sent. Fix the
    /// name.
    #[error(transparent)]
    InvalidStreamName(#[from] InvalidStreamName),

    /// A stream read was given a category (a name without an id). Read the
    /// category instead, or add the id.
    #[error("Must be a stream name: {0}")]
    NotAStreamName(String),

    /// A category read was given a stream name (a name with an id).
    #[error("Must be a category: {0}")]
    NotACategory(String),

    /// The correlation filter must be a category, not a stream name.
    #[error("Correlation must be a category (Correlation: {0})")]
    InvalidCorrelation(String),

    /// The consumer group member and size do not make a group: both or
    /// neither, size at least 1, member in `0..size`.
    #[error("{reason} (Consumer Group Member: {member}, Consumer Group Size: {size})",
        member = display_opt(*.member), size = display_opt(*.size))]
    InvalidConsumerGroup {
        /// The store's explanation.
        reason: String,
        /// The member given.
        member: Option<i64>,
        /// The size given.
        size: Option<i64>,
    },

    /// A raw SQL condition was given but the database does not allow them
    /// (`message_store.sql_condition` is off). Turn the setting on for the
    /// session or role, deliberately, or filter in the handler.
    #[error("Retrieval with SQL condition is not activated")]
    ConditionNotActivated,

    /// A read option is out of range (a batch size of 0, say). Fix the
    /// argument.
    #[error("invalid read option: {0}")]
    InvalidArgument(String),

    /// The connection settings (`DATABASE_URL`, `PG*` variables, pool
    /// options) are unusable. Fix the setting named in the message.
    #[error("invalid connection settings: {0}")]
    InvalidConfig(String),

    /// The in-memory store cannot do this (it has no SQL to evaluate a
    /// condition with). Test that path against PostgreSQL.
    #[error("not supported by this store: {0}")]
    Unsupported(&'static str),

    /// The message is not valid (data not an object, empty type). Nothing
    /// was written; fix the message.
    #[error("invalid message {id}: {reason}")]
    InvalidMessage {
        /// The message's id.
        id: Uuid,
        /// What is wrong with it.
        reason: String,
    },

    /// A message with this id is already in the store. Either the write was
    /// retried after it had in fact succeeded (treat as done), or two
    /// different messages share an id (a bug in the writer).
    #[error("a message with id {id} is already in the store")]
    DuplicateMessageId {
        /// The id that is taken.
        id: Uuid,
        /// The database's error, when the store is PostgreSQL.
        #[source]
        source: Option<tokio_postgres::Error>,
    },

    /// Message data could not be serialized to JSON.
    #[error("could not serialize message data")]
    Serialize(#[source] serde_json::Error),

    /// A stored message's data does not fit the type asked for. The message
    /// is fine in the store; the reader's type is wrong or out of date.
    #[error("message at global position {global_position} (type {type_name}) does not deserialize")]
    Deserialize {
        /// Where the message is.
        global_position: i64,
        /// Its type.
        type_name: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },

    /// A stored row could not be read as a message (an id that is not a
    /// UUID, metadata that is not an object). Another writer put it there;
    /// it is reported, never skipped.
    #[error("malformed message at global position {global_position}: {reason}")]
    MalformedMessage {
        /// Where the row is.
        global_position: i64,
        /// What is wrong with it.
        reason: String,
        /// The parse error, when there is one.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// The schema found in the database is not one ebb can use or install
    /// over. Install into an empty database, or fix the schema by hand.
    #[error("incompatible message store schema: {0}")]
    SchemaConflict(String),

    /// No connection could be had from the pool (timed out, or the server
    /// refused). Usually transient.
    #[error("could not get a database connection")]
    Pool(#[source] deadpool_postgres::PoolError),

    /// Any other database error. See [`is_transient`](Self::is_transient)
    /// and [`sqlstate`](Self::sqlstate).
    #[error("database error")]
    Database(#[source] tokio_postgres::Error),
}

/// Formats an optional argument as PL/pgSQL's `RAISE` does, so the
/// in-memory store's messages read exactly like the database's.
fn display_opt(value: Option<i64>) -> String {
    value.map_or_else(|| "<NULL>".to_owned(), |v| v.to_string())
}

impl Error {
    /// True for an expected-version conflict.
    pub fn is_wrong_expected_version(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }

    /// True when the message's id was already taken.
    pub fn is_duplicate_message_id(&self) -> bool {
        matches!(self, Self::DuplicateMessageId { .. })
    }

    /// True when the same call may succeed if tried again later: a lost
    /// connection, a pool timeout, a server shutting down or overloaded, a
    /// serialization failure or deadlock. A version conflict is *not*
    /// transient: retrying the same write fails the same way; the handler
    /// must run again on fresh state.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pool(err) => match err {
                deadpool_postgres::PoolError::Backend(err) => db_error_is_transient(err),
                deadpool_postgres::PoolError::Timeout(_) => true,
                _ => false,
            },
            Self::Database(err) => db_error_is_transient(err),
            _ => false,
        }
    }

    /// The SQLSTATE of the database error behind this one, if any.
    pub fn sqlstate(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            Self::Database(err) => err.code(),
            Self::DuplicateMessageId {
                source: Some(err), ..
            } => err.code(),
            Self::Pool(deadpool_postgres::PoolError::Backend(err)) => err.code(),
            _ => None,
        }
    }
}

fn db_error_is_transient(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        // No code: the error came from the client side (I/O, a closed
        // socket), not from the server's judgement of the statement.
        None => err.as_db_error().is_none(),
        Some(code) => {
            let code = code.code();
            // 08: connection exception; 40001 serialization failure; 40P01
            // deadlock; 53: insufficient resources; 57P01-57P03 admin or
            // crash shutdown, cannot connect now.
            code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code.starts_with("53")
                || matches!(code, "57P01" | "57P02" | "57P03")
        }
    }
}

/// Turns a database error into the typed error for it.
///
/// Message DB raises all its errors with `RAISE EXCEPTION` (SQLSTATE P0001,
/// `raise_exception`) and no code of their own, so for those, and only
/// those, the message text is what tells them apart. That text matching
/// lives here and nowhere else.
pub(crate) fn classify(err: tokio_postgres::Error) -> Error {
    use tokio_postgres::error::SqlState;

    let Some(db) = err.as_db_error() else {
        return Error::Database(err);
    };
    if db.code() == &SqlState::RAISE_EXCEPTION {
        if let Some(classified) = classify_message_db_text(db.message()) {
            return classified;
        }
    }
    if db.code() == &SqlState::UNIQUE_VIOLATION && db.constraint() == Some("messages_id") {
        let id = db
            .detail()
            .and_then(|detail| detail.split(['(', ')']).nth(3))
            .and_then(|id| id.parse().ok())
            .unwrap_or_default();
        return Error::DuplicateMessageId {
            id,
            source: Some(err),
        };
    }
    Error::Database(err)
}

/// Parses the text of an error raised by Message DB's functions.
pub(crate) fn classify_message_db_text(message: &str) -> Option<Error> {
    if let Some(rest) = message.strip_prefix("Wrong expected version: ") {
        // "E (Stream: S, Stream Version: V)". The stream name may contain
        // ", ", so the version is taken from the end.
        let (expected, rest) = rest.split_once(" (Stream: ")?;
        let rest = rest.strip_suffix(')')?;
        let (stream_name, actual) = rest.rsplit_once(", Stream Version: ")?;
        return Some(Error::WrongExpectedVersion {
            stream_name: stream_name.to_owned(),
            expected: expected.parse().ok()?,
            actual: actual.parse().ok()?,
        });
    }
    if let Some(name) = message.strip_prefix("Must be a stream name: ") {
        return Some(Error::NotAStreamName(name.to_owned()));
    }
    if let Some(name) = message.strip_prefix("Must be a category: ") {
        return Some(Error::NotACategory(name.to_owned()));
    }
    if let Some(rest) = message.strip_prefix("Correlation must be a category (Correlation: ") {
        return Some(Error::InvalidCorrelation(
            rest.strip_suffix(')').unwrap_or(rest).to_owned(),
        ));
    }
    if message == "Retrieval with SQL condition is not activated" {
        return Some(Error::ConditionNotActivated);
    }
    if message.starts_with("Consumer group ") {
        let (reason, rest) = message.split_once(" (Consumer Group Member: ")?;
        let rest = rest.strip_suffix(')')?;
        let (member, size) = rest.split_once(", Consumer Group Size: ")?;
        return Some(Error::InvalidConsumerGroup {
            reason: reason.to_owned(),
            member: member.parse().ok(),
            size: size.parse().ok(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_expected_version_text_is_parsed_and_reproduced() {
        let text = "Wrong expected version: 3 (Stream: account-1, Stream Version: -1)";
        let err = classify_message_db_text(text).unwrap();
        match &err {
            Error::WrongExpectedVersion {
                stream_name,
                expected,
                actual,
            } => {
                assert_eq!(stream_name, "account-1");
                assert_eq!(*expected, 3);
                assert_eq!(*actual, -1);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_wrong_expected_version());
        assert!(!err.is_transient());
        assert_eq!(err.to_string(), text);
    }

    #[test]
    fn stream_names_with_separators_in_them_survive() {
        let text =
            "Wrong expected version: 0 (Stream: odd-a, Stream Version: 1, Stream Version: 2)";
        let Some(Error::WrongExpectedVersion {
            stream_name,
            actual,
            ..
        }) = classify_message_db_text(text)
        else {
            panic!()
        };
        assert_eq!(stream_name, "odd-a, Stream Version: 1");
        assert_eq!(actual, 2);
    }

    #[test]
    fn every_message_db_error_text_has_its_variant() {
        let cases = [
            "Must be a stream name: account",
            "Must be a category: account-1",
            "Correlation must be a category (Correlation: other-1)",
            "Retrieval with SQL condition is not activated",
            "Consumer group member and size must be specified (Consumer Group Member: 1, Consumer Group Size: <NULL>)",
            "Consumer group size must not be less than 1 (Consumer Group Member: 0, Consumer Group Size: 0)",
            "Consumer group member must not be less than 0 (Consumer Group Member: -1, Consumer Group Size: 2)",
            "Consumer group member must be less than the group size (Consumer Group Member: 2, Consumer Group Size: 2)",
        ];
        for text in cases {
            let err = classify_message_db_text(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(err.to_string(), text);
        }
        assert!(classify_message_db_text("something else").is_none());
    }
}
