//! The crate's one error type.

use ebb_handler::BoxError;

/// Everything that can stop a consumer or a host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings cannot work (a stream name where a category is
    /// needed, a group without an identifier, ...). Fix them; nothing ran.
    #[error("invalid consumer settings: {0}")]
    InvalidConfig(String),

    /// The host's metrics endpoint could not start: its address could not
    /// be bound, or the process has a metrics recorder already.
    #[error("the metrics endpoint could not start: {0}")]
    Metrics(String),

    /// The store failed: reading the category or recording the position
    /// (after the read retries were spent), or reading the position at the
    /// start. The position stays where it was recorded last.
    #[error(transparent)]
    Store(#[from] ebb_message_store::Error),

    /// A handler failed on a message, or the message could not be decoded
    /// for it. The consumer stopped at it; its position is not recorded as
    /// done.
    #[error(
        "handling {type_name} at position {position} of {stream_name} \
         (global position {global_position}) failed"
    )]
    Handler {
        /// The message's stream.
        stream_name: String,
        /// Its position in that stream.
        position: i64,
        /// Its position in the store.
        global_position: i64,
        /// Its type.
        type_name: String,
        /// The handler's error, as the handler returned it.
        #[source]
        error: BoxError,
    },

    /// A task of a host failed (after its retries) or panicked.
    #[error("task {name} failed")]
    Task {
        /// The task's name.
        name: String,
        /// Its error, or the panic's message.
        #[source]
        error: BoxError,
    },
}
