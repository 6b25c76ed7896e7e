//! The crate's one error type.

use std::ffi::OsString;
use std::io;

use ebb_handler::BoxError;

/// Everything that can stop a consumer or a host, or refuse to start one.
///
/// Each variant says what the caller should do; the predicates answer the
/// questions a caller asks of an error it did not expect
/// ([`is_transient`](Self::is_transient),
/// [`is_handler_failure`](Self::is_handler_failure), ...). Causes are kept
/// as the error's [`source`](std::error::Error::source), never copied into
/// its text: log it with its chain (`ebb_retry::Chain`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings cannot work (a stream name where a category is
    /// needed, a group without an identifier, a retry interval out of
    /// range, ...). Nothing ran: fix the settings.
    #[error("invalid settings: {reason}")]
    InvalidConfig {
        /// What is wrong, naming the setting.
        reason: String,
        /// The error that refused the value, if another crate's check did.
        #[source]
        source: Option<BoxError>,
    },

    /// The store failed: reading the category or recording the position
    /// (after the [`store_retry_ms`](crate::ConsumerConfig::store_retry_ms)
    /// retries, when the error was transient), or reading the position at
    /// the start. The position stays where it was recorded last; the
    /// process should end and its supervisor start it again, which resumes
    /// from there.
    #[error(transparent)]
    Store(#[from] ebb_message_store::Error),

    /// A handler failed on a message, or the message could not be decoded
    /// for it, after the in-process retries
    /// ([`handler_retry_ms`](crate::ConsumerConfig::handler_retry_ms)).
    /// The consumer stopped at it; its position is not recorded as done,
    /// and the failure was recorded in the failures stream. Let the process
    /// end: restarted, it handles the message again (or parks it, see
    /// [`park_after_failures`](crate::ConsumerConfig::park_after_failures)).
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

    /// A task of a host failed (after its retries) or panicked. Let the
    /// process end, as for a handler's failure.
    #[error("task {name} failed")]
    Task {
        /// The task's name.
        name: String,
        /// Its error, or the panic's message.
        #[source]
        error: BoxError,
    },

    /// The host's metrics endpoint could not start: its address could not
    /// be bound, or the process has a metrics recorder already. Nothing
    /// ran: choose another address, or install only one recorder.
    #[error("the metrics endpoint could not start at {addr}")]
    Metrics {
        /// The address it was to listen at.
        addr: std::net::SocketAddr,
        /// Why it could not.
        #[source]
        source: BoxError,
    },

    /// One of systemd's variables (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`) holds something the readiness protocol cannot use.
    /// The unit or the environment needs fixing; trying again will not
    /// help.
    #[error("{variable}={value:?} is not {expected}")]
    SystemdEnvironment {
        /// The variable.
        variable: &'static str,
        /// Its value (a path need not be UTF-8).
        value: OsString,
        /// What the protocol needs there.
        expected: &'static str,
        /// Why the value was refused, when the system said.
        #[source]
        source: Option<io::Error>,
    },

    /// A notification to systemd is not one the service manager would act
    /// on: empty, longer than it reads, holding a NUL byte, or a status
    /// with a newline. A bug in the caller: fix the message.
    #[error("not a valid systemd notification: {reason}")]
    InvalidNotification {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A notification could not be sent to systemd: no socket could be
    /// made, the service manager is not listening at `NOTIFY_SOCKET` (a
    /// stale address), or, for a watchdog ping, its queue was full. A
    /// ping can be tried again at the next period; a lost `READY=1` means
    /// systemd will time the start-up out.
    #[error("could not send a notification to the service manager")]
    Notify(#[source] io::Error),

    /// A replay or a discard was asked for a message the consumer has not
    /// parked (never, or it was replayed or discarded since). Nothing was
    /// written.
    #[error("no message at global position {global_position} is parked in {parked_stream}")]
    NotParked {
        /// The consumer's parked stream.
        parked_stream: String,
        /// The global position asked for.
        global_position: i64,
    },

    /// A replay or a discard was asked for a parked message that has one
    /// asked already, not yet carried out. Nothing was written: the
    /// consumer carries out the first request while it runs, or at its
    /// next start.
    #[error(
        "the message at global position {global_position} has a {request} request pending \
         (position {position} of {parked_stream})"
    )]
    AlreadyRequested {
        /// The consumer's parked stream.
        parked_stream: String,
        /// The global position asked for.
        global_position: i64,
        /// The request pending: `Replay` or `Discard`.
        request: &'static str,
        /// Its position in the parked stream.
        position: i64,
    },
}

impl Error {
    /// Settings refused for `reason`, with no other error behind it.
    pub(crate) fn invalid_config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            reason: reason.into(),
            source: None,
        }
    }

    /// Settings refused for `reason`, because `source` refused a value.
    pub(crate) fn invalid_config_by(
        reason: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::InvalidConfig {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// Whether the error says the store was out of reach (a lost
    /// connection, a server restarting, a timeout) rather than that
    /// something is wrong with a message, the settings or the code: a
    /// process restarted later may well go on. True for such a store
    /// error, and for a handler's or task's error whose chain holds one
    /// (see `ebb_handler::retry::is_transient`).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(err) => err.is_transient(),
            Self::Handler { error, .. } | Self::Task { error, .. } => {
                ebb_handler::retry::is_transient(&**error)
            }
            _ => false,
        }
    }

    /// Whether a handler failed on a message ([`Error::Handler`]).
    pub fn is_handler_failure(&self) -> bool {
        matches!(self, Self::Handler { .. })
    }

    /// Whether a host's task failed or panicked ([`Error::Task`]).
    pub fn is_task_failure(&self) -> bool {
        matches!(self, Self::Task { .. })
    }

    /// Whether the store failed ([`Error::Store`]).
    pub fn is_store(&self) -> bool {
        matches!(self, Self::Store(_))
    }

    /// Whether nothing ran because of how it was set up: invalid
    /// settings, a metrics endpoint that could not start, or systemd
    /// variables the protocol cannot use. Fix the setup; a restart alone
    /// will not help.
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            Self::InvalidConfig { .. } | Self::Metrics { .. } | Self::SystemdEnvironment { .. }
        )
    }

    /// The handler's error, for [`Error::Handler`].
    pub fn handler_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Self::Handler { error, .. } => Some(&**error),
            _ => None,
        }
    }

    /// The store's error, for [`Error::Store`].
    pub fn store_error(&self) -> Option<&ebb_message_store::Error> {
        match self {
            Self::Store(err) => Some(err),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::time::Duration;

    use super::*;

    fn timeout() -> ebb_message_store::Error {
        ebb_message_store::Error::Timeout {
            operation: "write_message",
            after: Duration::from_secs(5),
        }
    }

    fn handler(error: BoxError) -> Error {
        Error::Handler {
            stream_name: "note-1".into(),
            position: 0,
            global_position: 1,
            type_name: "Noted".into(),
            error,
        }
    }

    #[test]
    fn transient_means_the_store_was_out_of_reach_wherever_it_shows() {
        assert!(Error::Store(timeout()).is_transient());
        let from_handler: BoxError = ebb_handler::Error::Store(timeout()).into();
        assert!(handler(from_handler).is_transient());
        assert!(!handler("cannot take 1".into()).is_transient());
        assert!(!Error::invalid_config("batch size").is_transient());
    }

    #[test]
    fn predicates_name_the_variant_and_causes_stay_sources() {
        let err = handler("cannot take 1".into());
        assert!(err.is_handler_failure() && !err.is_store() && !err.is_setup());
        assert_eq!(err.handler_error().unwrap().to_string(), "cannot take 1");
        assert_eq!(err.source().unwrap().to_string(), "cannot take 1");
        assert!(!err.to_string().contains("cannot take 1"), "the cause once");

        let refused = ebb_message_store::StreamName::category_name("a-1").unwrap_err();
        let config = Error::invalid_config_by("the category must be a category", refused);
        assert!(config.is_setup());
        assert!(config.source().is_some());
        assert!(Error::Store(timeout()).store_error().is_some());
    }
}
