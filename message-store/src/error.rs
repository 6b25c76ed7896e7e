//! The crate's one error type, and how database errors map onto it.

use std::sync::Arc;
use std::time::Duration;

use ebb_retry::{Chain, find_in_chain};
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

    /// An argument is out of range (a batch size of 0, an expected version
    /// below 0). Nothing was sent; fix the argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The connection settings (`DATABASE_URL`, `PG*` variables, pool
    /// options) are unusable. Fix the setting named in the message.
    #[error("invalid connection settings: {0}")]
    InvalidConfig(String),

    /// A TLS setting (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) is
    /// unusable: an unknown mode, a mode that checks certificates without
    /// roots to check them against, a file that cannot be read or holds no
    /// certificate or key. Nothing was connected; fix the setting named.
    #[error("invalid TLS setting {setting}: {problem}")]
    InvalidTlsSetting {
        /// The setting, by its libpq name.
        setting: &'static str,
        /// What is wrong with it.
        problem: String,
        /// The error reading or using the file, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// `DATABASE_URL` is set but is neither a `postgres://` URL nor a
    /// `key=value` connection string. Fix or unset it.
    #[error("DATABASE_URL is not a PostgreSQL connection string")]
    InvalidDatabaseUrl(#[source] tokio_postgres::Error),

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
    #[error("{}", duplicate_id_text(*id))]
    DuplicateMessageId {
        /// The id that is taken; `None` when the server's report of a
        /// batch write did not say which (its detail was withheld or in an
        /// unknown form).
        id: Option<Uuid>,
        /// The database's error, when the store is PostgreSQL.
        #[source]
        source: Option<tokio_postgres::Error>,
    },

    /// Message data could not be serialized to JSON.
    #[error("could not serialize message data")]
    Serialize(#[source] serde_json::Error),

    /// A stored message's data does not fit the type asked for. The message
    /// is fine in the store; the reader's type is wrong or out of date.
    #[error(
        "{type_name} message at position {position} of {stream_name} \
         (global position {global_position}) does not deserialize"
    )]
    Deserialize {
        /// The stream the message is in.
        stream_name: String,
        /// Its position in that stream.
        position: i64,
        /// Its position in the store.
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

    /// A statement that answers with one row answered with another count:
    /// the schema is not the one ebb expects (a bug, not worth repeating).
    #[error("{statement} answered with {count} rows where it answers with one")]
    UnexpectedRows {
        /// The store function or query.
        statement: String,
        /// How many rows came.
        count: usize,
    },

    /// No connection could be had from the pool: none came free within the
    /// wait timeout, a new one could not be opened (or not within the
    /// connect timeout), or the pool was closed. See
    /// [`is_transient`](Self::is_transient).
    #[error("could not get a database connection")]
    Pool(#[source] deadpool_postgres::PoolError),

    /// The server did not finish the call within the store's call timeout
    /// ([`PgStoreConfig::call_timeout`](crate::pg::PgStoreConfig::call_timeout)):
    /// it is frozen, overloaded or out of reach. Transient. Whether a write
    /// took effect is unknown: writing the same [`MessageData`] again (same
    /// id) either succeeds or fails with [`Error::DuplicateMessageId`],
    /// never stores it twice. The connection the call ran on is not reused.
    ///
    /// [`MessageData`]: crate::MessageData
    #[error("{operation} did not finish within {after:?}")]
    Timeout {
        /// The store function that was running (`write_message`, ...).
        operation: &'static str,
        /// The call timeout that ran out.
        after: Duration,
    },

    /// The call was cancelled before it finished because the tokio runtime
    /// it ran on is shutting down. Not transient: nothing more can run on
    /// that runtime. Whether a write took effect is unknown, as for
    /// [`Error::Timeout`].
    #[error("the call was cancelled: its runtime is shutting down")]
    Cancelled,

    /// The connection pool could not be built from settings that passed
    /// validation. The store always gives the pool the runtime its
    /// timeouts need, so this is a bug in ebb: report it with the source.
    #[error("could not build the connection pool")]
    PoolBuild(#[source] deadpool_postgres::BuildError),

    /// Any other database error. See [`is_transient`](Self::is_transient)
    /// and [`sqlstate`](Self::sqlstate).
    #[error("database error")]
    Database(#[source] tokio_postgres::Error),

    /// The write went to the server in one call with other writes to its
    /// category ([group commit](crate::pg::PgStoreConfig::group_commit)),
    /// and that call failed with a database error none of them caused,
    /// the connection lost on the way for one. Every write of the call
    /// gets this error around the one shared error (a timeout, a closed
    /// pool or one that gave no connection in time is given to each write
    /// as it is: [`Error::Timeout`], [`Error::Pool`]);
    /// [`is_transient`](Self::is_transient) and
    /// [`sqlstate`](Self::sqlstate) answer as for it. Whether the write
    /// took effect is unknown, as for [`Error::Timeout`]. (An error the
    /// server reports for the call as a whole, such as a message id
    /// already taken, is never shared: the call wrote nothing, and each
    /// write is sent again alone for an answer of its own.)
    #[error("a write sent together with others to its category failed with them")]
    Grouped(#[source] Arc<Error>),
}

/// Formats an optional argument as PL/pgSQL's `RAISE` does, so the
/// in-memory store's messages read exactly like the database's.
fn display_opt(value: Option<i64>) -> String {
    value.map_or_else(|| "<NULL>".to_owned(), |v| v.to_string())
}

fn duplicate_id_text(id: Option<Uuid>) -> String {
    match id {
        Some(id) => format!("a message with id {id} is already in the store"),
        None => "a message id of this write is already in the store \
                 (the server's report does not say which)"
            .to_owned(),
    }
}

impl Error {
    /// An [`Error::InvalidTlsSetting`] with no source.
    pub(crate) fn invalid_tls(setting: &'static str, problem: String) -> Self {
        Self::InvalidTlsSetting {
            setting,
            problem,
            source: None,
        }
    }

    /// The same error again, for errors that carry nothing but their kind
    /// (a timeout, a pool that gave no connection, a runtime shutting
    /// down), so that writes that failed together each get it as it is,
    /// not wrapped in [`Error::Grouped`].
    pub(crate) fn copy_plain(&self) -> Option<Self> {
        use deadpool_postgres::PoolError;
        Some(match self {
            Self::Timeout { operation, after } => Self::Timeout {
                operation,
                after: *after,
            },
            Self::Cancelled => Self::Cancelled,
            Self::Pool(PoolError::Timeout(kind)) => Self::Pool(PoolError::Timeout(*kind)),
            Self::Pool(PoolError::Closed) => Self::Pool(PoolError::Closed),
            _ => return None,
        })
    }

    /// True for an expected-version conflict.
    pub fn is_wrong_expected_version(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }

    /// True when the message's id was already taken.
    pub fn is_duplicate_message_id(&self) -> bool {
        matches!(self, Self::DuplicateMessageId { .. })
    }

    /// True when the same call may succeed if tried again later, because
    /// the server could not be reached or did not answer: the connection
    /// was lost (an I/O error on the way, a closed connection, SQLSTATE
    /// class 08), no pooled connection came free or could be opened in
    /// time, the call timed out, or the server is shutting down, starting
    /// up or full (57P01, 57P02, 57P03, 53300).
    ///
    /// Everything else is not: a version conflict (retrying the same write
    /// fails the same way; the handler must run again on fresh state),
    /// invalid input, settings or data, and every error the client finds
    /// on its own side (a parameter that does not encode, a row that does
    /// not decode, a row count that is not what the statement promised):
    /// those are bugs, and repeating them only repeats them. A deadlock or
    /// serialization failure (40P01, 40001) is not transient either: it
    /// ends the transaction it happened in, which only its owner can run
    /// again (see [`sqlstate`](Self::sqlstate)).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Grouped(err) => err.is_transient(),
            Self::Pool(err) => match err {
                deadpool_postgres::PoolError::Timeout(_) => true,
                deadpool_postgres::PoolError::Backend(err) => db_error_is_transient(err),
                _ => false,
            },
            Self::Database(err) => db_error_is_transient(err),
            _ => false,
        }
    }

    /// The SQLSTATE of the database error behind this one, if any.
    pub fn sqlstate(&self) -> Option<&tokio_postgres::error::SqlState> {
        let driver = match self {
            Self::Grouped(err) => return err.sqlstate(),
            Self::Database(err) => err,
            Self::DuplicateMessageId {
                source: Some(err), ..
            } => err,
            Self::Pool(deadpool_postgres::PoolError::Backend(err)) => err,
            _ => return None,
        };
        match crate::pg::hosts_connect_failed(driver) {
            Some(failed) => failed.code(),
            None => driver.code(),
        }
    }

    /// The hosts a connection was tried on and why each refused, when no
    /// host would have it: a server that could not be reached, refused the
    /// login or the TLS handshake, or was not the kind of server
    /// `target_session_attrs` asks for.
    pub fn connect_failed(&self) -> Option<&crate::pg::ConnectFailed> {
        match self {
            Self::Database(err) | Self::Pool(deadpool_postgres::PoolError::Backend(err)) => {
                crate::pg::hosts_connect_failed(err)
            }
            Self::Grouped(err) => err.connect_failed(),
            _ => None,
        }
    }
}

/// True when `err` or any error in its source chain is one
/// [`Error::is_transient`] calls transient: a store error, or the driver's
/// or the pool's error that a store error carries. Wrappers that forward
/// their source (`#[error(transparent)]`, as handler errors usually do)
/// hide the store's error itself but not the driver's below it, which is
/// why the driver's and the pool's errors are looked at too.
pub fn is_transient_in_chain(err: &(dyn std::error::Error + 'static)) -> bool {
    Chain::new(err).any(|err| {
        if let Some(err) = err.downcast_ref::<Error>() {
            err.is_transient()
        } else if let Some(err) = err.downcast_ref::<tokio_postgres::Error>() {
            db_error_is_transient(err)
        } else if let Some(err) = err.downcast_ref::<deadpool_postgres::PoolError>() {
            match err {
                deadpool_postgres::PoolError::Timeout(_) => true,
                deadpool_postgres::PoolError::Backend(err) => db_error_is_transient(err),
                _ => false,
            }
        } else {
            false
        }
    })
}

/// Whether a driver error means the server could not be reached or did
/// not answer (see [`Error::is_transient`]).
pub(crate) fn db_error_is_transient(err: &tokio_postgres::Error) -> bool {
    if let Some(failed) = crate::pg::hosts_connect_failed(err) {
        return failed.is_transient();
    }
    if err.is_closed() {
        return true;
    }
    if let Some(db) = err.as_db_error() {
        return server_unavailable(db.code());
    }
    // On the client's side only an I/O error on the way to the server is
    // worth repeating; the driver keeps it as the error's source.
    find_in_chain::<std::io::Error>(err).is_some_and(|io| transport_failure(io.kind()))
}

/// SQLSTATEs that say the server cannot serve anyone right now.
fn server_unavailable(code: &tokio_postgres::error::SqlState) -> bool {
    use tokio_postgres::error::SqlState;
    // Class 08: connection exception.
    code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code)
}

/// I/O errors of a connection that failed or went away, as opposed to
/// ones that say the settings are wrong (an address that does not parse, a
/// permission refused).
fn transport_failure(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
            | Interrupted
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
            // A Unix socket file is missing while its server restarts.
            | NotFound
    )
}

/// Turns a driver error into the typed error for it, as the store's own
/// functions do: for statements of your own run beside them (in the same
/// transaction, say), so that one error type and its predicates cover both.
impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        classify(err)
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
        // The detail reads "Key (id)=(<uuid>) already exists."
        let id = db
            .detail()
            .and_then(|detail| detail.split(['(', ')']).nth(3))
            .and_then(|id| id.parse().ok());
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

    /// A driver error caused by an I/O error of `kind`, as the pool's
    /// connector makes them.
    async fn io_driver_error(kind: std::io::ErrorKind) -> tokio_postgres::Error {
        let mut config = tokio_postgres::Config::new();
        config.user("postgres");
        crate::pg::connect::driver_error(&config, std::io::Error::from(kind)).await
    }

    #[tokio::test]
    async fn io_errors_are_transient_when_the_transport_failed() {
        use std::io::ErrorKind::*;
        for kind in [
            ConnectionRefused,
            ConnectionReset,
            ConnectionAborted,
            NotConnected,
            BrokenPipe,
            TimedOut,
            UnexpectedEof,
            NotFound,
            HostUnreachable,
            NetworkUnreachable,
        ] {
            let err = Error::from(io_driver_error(kind).await);
            assert!(matches!(err, Error::Database(_)), "{err:?}");
            assert!(err.is_transient(), "{kind:?}: {err:?}");
        }
        for kind in [
            PermissionDenied,
            InvalidInput,
            InvalidData,
            Unsupported,
            Other,
        ] {
            let err = Error::from(io_driver_error(kind).await);
            assert!(!err.is_transient(), "{kind:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn pool_errors_are_transient_only_when_waiting_or_connecting_failed() {
        use deadpool_postgres::{PoolError, TimeoutType};
        for timeout in [TimeoutType::Wait, TimeoutType::Create, TimeoutType::Recycle] {
            assert!(Error::Pool(PoolError::Timeout(timeout)).is_transient());
        }
        let refused = io_driver_error(std::io::ErrorKind::ConnectionRefused).await;
        assert!(Error::Pool(PoolError::Backend(refused)).is_transient());
        let denied = io_driver_error(std::io::ErrorKind::PermissionDenied).await;
        assert!(!Error::Pool(PoolError::Backend(denied)).is_transient());
        assert!(!Error::Pool(PoolError::Closed).is_transient());
        assert!(!Error::Pool(PoolError::NoRuntimeSpecified).is_transient());
    }

    #[test]
    fn timeouts_are_transient_and_cancellation_is_not() {
        let timeout = Error::Timeout {
            operation: "write_message",
            after: Duration::from_secs(2),
        };
        assert!(timeout.is_transient());
        assert_eq!(
            timeout.to_string(),
            "write_message did not finish within 2s"
        );
        assert!(!Error::Cancelled.is_transient());
    }

    #[test]
    fn client_side_errors_are_not_transient() {
        let unparsable: tokio_postgres::Error = "postgres://x:notaport/"
            .parse::<tokio_postgres::Config>()
            .unwrap_err();
        assert!(!Error::from(unparsable).is_transient());
        for err in [
            Error::InvalidConfig("max_connections must be at least 1".into()),
            Error::InvalidArgument("batch size".into()),
            Error::ConditionNotActivated,
            Error::PoolBuild(deadpool_postgres::BuildError::NoRuntimeSpecified),
            Error::MalformedMessage {
                global_position: 1,
                reason: "id is not a UUID".into(),
                source: None,
            },
        ] {
            assert!(!err.is_transient(), "{err:?}");
        }
    }

    #[test]
    fn the_pool_s_build_error_is_the_source_not_the_message() {
        let err = Error::PoolBuild(deadpool_postgres::BuildError::NoRuntimeSpecified);
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.is::<deadpool_postgres::BuildError>());
        assert!(!err.to_string().contains(&source.to_string()), "{err}");
    }

    #[test]
    fn a_duplicate_id_the_server_did_not_name_says_so() {
        let id = Uuid::new_v4();
        let named = Error::DuplicateMessageId {
            id: Some(id),
            source: None,
        };
        assert_eq!(
            named.to_string(),
            format!("a message with id {id} is already in the store")
        );
        let unnamed = Error::DuplicateMessageId {
            id: None,
            source: None,
        };
        let text = unnamed.to_string();
        assert!(text.contains("does not say which"), "{text}");
        assert!(!text.contains(&Uuid::nil().to_string()), "{text}");
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
