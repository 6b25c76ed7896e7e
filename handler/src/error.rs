//! The crate's one error type.

/// An error of any kind, boxed: what handler code commonly returns, and
/// the default error type of a [`Dispatcher`](crate::Dispatcher).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong writing, reading, decoding, dispatching or
/// projecting messages.
///
/// Each variant says what the caller should do. The store's errors come
/// through unchanged as [`Error::Store`]; the predicates look into it, so
/// that `err.is_wrong_expected_version()` works on either type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed, including a stored message whose data
    /// does not fit the type asked for
    /// ([`ebb_message_store::Error::Deserialize`], which names the stream,
    /// the position, the type and serde's cause). See the store's error
    /// for what to do.
    #[error(transparent)]
    Store(#[from] ebb_message_store::Error),

    /// A message could not be serialized to JSON (a map with keys that are
    /// not strings, say). Nothing was written; fix the message type.
    #[error("could not serialize a {type_name} message")]
    Serialize {
        /// The message's type.
        type_name: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },

    /// A reply was asked for, but the message it follows names no reply
    /// stream. Nothing was written. Reply only to messages that ask for a
    /// reply (check `metadata.reply_stream_name` first).
    #[error("a {type_name} reply has no reply stream to go to")]
    NoReplyStream {
        /// The reply's type.
        type_name: String,
    },

    /// A dispatcher in strict mode was given a message of a type none of
    /// its handlers handles. Register a handler for it, or leave strict
    /// mode to skip such messages.
    #[error(
        "no handler for {type_name} (message at position {position} of {stream_name}, \
         global position {global_position})"
    )]
    UnknownType {
        /// The message's type.
        type_name: String,
        /// Its stream.
        stream_name: String,
        /// Its position in that stream.
        position: i64,
        /// Its position in the store.
        global_position: i64,
    },

    /// A message could not be made from the one it follows
    /// ([`MessageType::following`](crate::MessageType::following)): a field
    /// of the new type is missing from the previous message's data (and
    /// has no default), or has another type there. Nothing was written.
    #[error("could not make a {type_name} following a {from}")]
    Copy {
        /// The type being made.
        type_name: &'static str,
        /// The type of the message it follows.
        from: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },

    /// The handler refused the command: it is wrong, not the moment (an
    /// amount below zero, a state the entity cannot go to). Like any
    /// handler error it ends the process, with the consumer's failure
    /// record; with parking on, the command is parked after K failures.
    /// Make one with [`Error::rejected`].
    #[error("command rejected: {reason}")]
    Rejected {
        /// Why, for the log and the failure record.
        reason: String,
    },

    /// A command was found in a stream whose id is not the entity's it is
    /// for. The sequence guard takes a command at or below the last one
    /// applied for a re-delivery, which holds only when an entity's
    /// commands come in one stream, in order: so this one is refused,
    /// with nothing written. Send an entity's commands to
    /// `CATEGORY-ENTITY_ID`.
    #[error(
        "{type_name} at position {position} of {stream_name} is for {entity_id}: \
         an entity's commands must come in a stream of its own id"
    )]
    WrongStream {
        /// The command's type.
        type_name: String,
        /// The stream it was found in.
        stream_name: String,
        /// Its position there.
        position: i64,
        /// The entity it names.
        entity_id: String,
    },
}

impl Error {
    /// A command refused for `reason` ([`Error::Rejected`]).
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
        }
    }
}

/// The last attempt's error: a retry that gave up reports what went wrong
/// the last time, so `?` works on [`Retry::run`](ebb_retry::Retry::run)'s
/// result in a handler that returns this error.
impl From<ebb_retry::RetryError<Error>> for Error {
    fn from(err: ebb_retry::RetryError<Error>) -> Self {
        err.into_last()
    }
}

impl From<ebb_message_store::InvalidStreamName> for Error {
    fn from(err: ebb_message_store::InvalidStreamName) -> Self {
        Self::Store(err.into())
    }
}

impl Error {
    /// True for an expected-version conflict from the store: another writer
    /// appended first. Fetch again and handle the message again.
    pub fn is_wrong_expected_version(&self) -> bool {
        matches!(self, Self::Store(err) if err.is_wrong_expected_version())
    }

    /// True when the store says the same call may succeed later (see
    /// [`ebb_message_store::Error::is_transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(err) if err.is_transient())
    }

    /// True when a stored message does not decode into the type asked for.
    pub fn is_decode(&self) -> bool {
        matches!(
            self,
            Self::Store(ebb_message_store::Error::Deserialize { .. })
        )
    }
}
