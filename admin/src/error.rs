//! What the operators' queries can fail with.

/// A boxed error, as [`Error::InvalidInput`] holds it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an operators' query or request can fail with.
///
/// Each variant's message says what was being done ("cannot list the
/// categories") and its [`source`](std::error::Error::source) says why,
/// so that the message and its causes read as one line
/// (`ebb_retry::Chain`), each cause once; [`InvalidInput`] is the one
/// that is the caller's to fix, before anything is read (a command line
/// reports it as a usage error).
///
/// [`InvalidInput`]: Error::InvalidInput
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statement of this crate's own failed (or no connection could be
    /// had for it).
    #[error("{action}")]
    Statement {
        /// What the statement was for: "cannot list the categories".
        action: String,
        /// The driver's or the server's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The store refused or failed: reading a stream or a category,
    /// connecting, decoding a message's data.
    #[error("{action}")]
    Store {
        /// What was being done: "cannot read account:parked-w1".
        action: String,
        /// The store's error.
        #[source]
        source: ebb_message_store::Error,
    },

    /// A consumer's own stream could not be read as the consumer writes
    /// it (a parked stream that does not fold), or the consumer's
    /// operation failed.
    #[error("{action}")]
    Consumer {
        /// What was being done: "cannot read the parked stream of
        /// consumer w1 of account".
        action: String,
        /// The consumer's error.
        #[source]
        source: ebb_consumer::Error,
    },

    /// A record in a consumer's own stream is not what the consumer
    /// writes (a position record without a position).
    #[error("{what}")]
    Malformed {
        /// Which record, and what it should be.
        what: String,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },

    /// The input names nothing that can be looked at: a category or an
    /// identifier no consumer can have, a malformed stream name or
    /// message id. Found before the store is touched; the caller's to fix
    /// (a usage error). Its message is the refusing error's own, with
    /// that error's causes as its sources.
    #[error(transparent)]
    InvalidInput(BoxError),

    /// What was asked for is not in the store: no message with the id, no
    /// message parked at the position.
    #[error("{0}")]
    NotFound(String),
}

impl Error {
    /// A refusal of input, said as `message`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into().into())
    }

    /// Whether the error is the caller's input's ([`InvalidInput`]):
    /// nothing was read, and asking again the same way fails the same.
    ///
    /// [`InvalidInput`]: Error::InvalidInput
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::InvalidInput(_))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The messages of `err` and of each of its sources.
    fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut messages = vec![err.to_string()];
        let mut next = err.source();
        while let Some(err) = next {
            messages.push(err.to_string());
            next = err.source();
        }
        messages
    }

    #[test]
    fn invalid_input_reads_as_the_refusing_error() {
        let refused = ebb_consumer::ConsumerConfig::new("account-1")
            .validate()
            .unwrap_err();
        let expected = chain(&refused);
        let err = Error::InvalidInput(Box::new(refused));
        assert_eq!(chain(&err), expected);
        assert!(err.is_invalid_input());
        let said = Error::invalid("\"x\" is not a message id");
        assert_eq!(chain(&said), ["\"x\" is not a message id"]);
        assert!(said.source().is_none());
    }
}
