//! Ready [`Rule`]s for the errors handlers expect from the store, for
//! `ebb_retry::Retry` (which knows nothing of databases).
//!
//! Both look for the store's error, or this crate's, anywhere in an
//! error's source chain, so they work on a handler's own error type as
//! well as on a boxed one (with `Retry::run_boxed`).

use std::error::Error as StdError;

use ebb_retry::{Chain, Decision, Rule};

use crate::Error;

/// Retries an expected-version conflict: another writer appended to the
/// stream first, so fetching again and handling again may succeed.
///
/// ```
/// use ebb_handler::retry::on_wrong_expected_version;
/// use ebb_retry::Retry;
///
/// // Eventide: Retry.(MessageStore::ExpectedVersion::Error, millisecond_intervals: [10])
/// let retry = Retry::intervals_ms([10]).rule(on_wrong_expected_version()).build()?;
/// # let _ = retry;
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
pub fn on_wrong_expected_version() -> Rule {
    Rule::from_fn(|err| {
        any_in_chain(err, Error::is_wrong_expected_version, |err| {
            err.is_wrong_expected_version()
        })
        .then_some(Decision::Retry)
    })
    .named("wrong expected version")
}

/// Retries what the store calls transient: a server that could not be
/// reached or did not answer in time (see
/// [`ebb_message_store::Error::is_transient`]).
pub fn on_transient() -> Rule {
    Rule::from_fn(|err| is_transient(err).then_some(Decision::Retry)).named("transient store error")
}

/// True when `err`'s chain holds a transient error of this crate or of the
/// store, or the driver's or the pool's transient error that a store error
/// carries ([`ebb_message_store::error::is_transient_in_chain`]): the last
/// is what a wrapper with `#[error(transparent)]` leaves visible of a
/// store error. What [`on_transient`] retries, and what the consumer does
/// not count against a poison message.
pub fn is_transient(err: &(dyn StdError + 'static)) -> bool {
    any_in_chain(err, Error::is_transient, |_| false)
        || ebb_message_store::error::is_transient_in_chain(err)
}

/// True when an error in `err`'s chain is this crate's error and
/// `handler` holds for it, or the store's and `store` holds for it.
fn any_in_chain(
    err: &(dyn StdError + 'static),
    handler: fn(&Error) -> bool,
    store: impl Fn(&ebb_message_store::Error) -> bool,
) -> bool {
    Chain::new(err).any(|err| {
        if let Some(err) = err.downcast_ref::<Error>() {
            handler(err)
        } else {
            err.downcast_ref::<ebb_message_store::Error>()
                .is_some_and(&store)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict() -> ebb_message_store::Error {
        ebb_message_store::Error::WrongExpectedVersion {
            stream_name: "account-1".into(),
            expected: 0,
            actual: 1,
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("handling the deposit")]
    struct Wrapped(#[source] Error);

    #[test]
    fn the_conflict_is_found_however_it_is_wrapped() {
        let rule = on_wrong_expected_version();
        let store = conflict();
        let handler = Error::from(conflict());
        let wrapped = Wrapped(Error::from(conflict()));
        assert_eq!(rule.decide(&store), Some(Decision::Retry));
        // This crate's error shows the store's error transparently: its
        // own predicate must answer.
        assert_eq!(rule.decide(&handler), Some(Decision::Retry));
        assert_eq!(rule.decide(&wrapped), Some(Decision::Retry));
        let other = Error::NoReplyStream {
            type_name: "Accepted".into(),
        };
        assert_eq!(rule.decide(&other), None);
        assert_eq!(rule.decide(&std::io::Error::other("x")), None);
        assert_eq!(on_transient().decide(&handler), None);
    }

    #[test]
    fn transient_store_errors_are_found() {
        let timeout = ebb_message_store::Error::Timeout {
            operation: "write_message",
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(on_transient().decide(&timeout), Some(Decision::Retry));
        let wrapped = Wrapped(Error::from(timeout));
        assert_eq!(on_transient().decide(&wrapped), Some(Decision::Retry));
        assert_eq!(on_wrong_expected_version().decide(&wrapped), None);
    }

    /// A handler's own error that shows this crate's transparently, as
    /// handler error types usually do.
    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct Transparent(#[from] Error);

    #[test]
    fn a_transient_error_under_a_transparent_wrapper_is_found_by_the_pools_error() {
        let pool = ebb_message_store::deadpool_postgres::PoolError::Timeout(
            ebb_message_store::deadpool_postgres::TimeoutType::Wait,
        );
        let hidden = Transparent(Error::from(ebb_message_store::Error::Pool(pool)));
        // Neither this crate's error nor the store's is in the chain.
        for err in Chain::new(&hidden) {
            assert!(err.downcast_ref::<Error>().is_none());
            assert!(err.downcast_ref::<ebb_message_store::Error>().is_none());
        }
        assert!(is_transient(&hidden));
        assert_eq!(on_transient().decide(&hidden), Some(Decision::Retry));
        let conflict = Transparent(Error::from(conflict()));
        assert!(!is_transient(&conflict));
    }
}
