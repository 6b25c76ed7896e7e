//! Walking an error's [`source`](std::error::Error::source) chain: the one
//! walker the workspace uses, so that matching a type anywhere in the
//! chain and printing the causes on one line read the chain the same way.

use std::error::Error as StdError;
use std::fmt;

/// An error and its sources, outermost first.
///
/// As an [`Iterator`] it yields the error itself, then its
/// [`source`](std::error::Error::source), then that error's source, and so
/// on. As [`Display`](fmt::Display) it writes each error's own message,
/// joined by `": "` on one line. It is `Copy`: walk the same chain as many
/// times as needed.
///
/// It follows `source()` only. A `std::io::Error` that wraps another error
/// returns that error's source as its own, so the wrapped error is not in
/// the chain, though its message is the `io::Error`'s; reach it with
/// [`std::io::Error::get_ref`].
///
/// ```
/// use ebb_retry::Chain;
/// use std::io;
///
/// #[derive(Debug)]
/// struct Deposit(io::Error);
/// impl std::fmt::Display for Deposit {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("deposit failed") }
/// }
/// impl std::error::Error for Deposit {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) }
/// }
///
/// let err = Deposit(io::Error::other("connection lost"));
/// let chain = Chain::new(&err);
/// assert_eq!(chain.to_string(), "deposit failed: connection lost");
/// assert_eq!(chain.count(), 2);
/// assert!(chain.last().is_some_and(|root| root.is::<io::Error>()));
/// ```
#[derive(Clone, Copy)]
pub struct Chain<'a> {
    /// The error the next call of `next` yields; `None` once the chain's
    /// innermost error has been yielded.
    next: Option<&'a (dyn StdError + 'static)>,
}

impl<'a> Chain<'a> {
    /// The chain from `err` on: `err` first, then each of its sources.
    pub fn new(err: &'a (dyn StdError + 'static)) -> Self {
        Self { next: Some(err) }
    }
}

impl<'a> Iterator for Chain<'a> {
    type Item = &'a (dyn StdError + 'static);

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next?;
        self.next = current.source();
        Some(current)
    }
}

impl std::iter::FusedIterator for Chain<'_> {}

/// Each error's message in turn, as [`Display`](fmt::Display) writes them.
impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.map(ToString::to_string))
            .finish()
    }
}

/// `outer: inner: innermost`: each error's own message, joined by `": "`.
/// A source whose message the text written so far already ends with is
/// not written again: many errors (tokio-postgres', deadpool's) put their
/// source's message at the end of their own and return it as their source
/// too, and a log line should say each cause once.
impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The last message written, to recognise a source it repeats.
        let mut written = String::new();
        for err in *self {
            let message = err.to_string();
            if !written.is_empty() {
                if written.ends_with(&message) {
                    continue;
                }
                f.write_str(": ")?;
            }
            f.write_str(&message)?;
            written = message;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// An error with a message of its own and an optional source.
    #[derive(Debug)]
    struct Layer {
        message: &'static str,
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            let source = self.source.as_deref()?;
            Some(source)
        }
    }

    fn layer(message: &'static str, source: impl StdError + Send + Sync + 'static) -> Layer {
        Layer {
            message,
            source: Some(Box::new(source)),
        }
    }

    fn three_deep() -> Layer {
        layer("outer", layer("inner", io::Error::other("innermost")))
    }

    #[test]
    fn yields_the_error_then_each_source_outermost_first() {
        let err = three_deep();
        let messages: Vec<String> = Chain::new(&err).map(ToString::to_string).collect();
        assert_eq!(messages, ["outer", "inner", "innermost"]);
        let first = Chain::new(&err).next().expect("the error itself");
        assert!(std::ptr::addr_eq(first, &err));
    }

    #[test]
    fn an_error_without_a_source_is_a_chain_of_one() {
        let err = io::Error::other("alone");
        let mut chain = Chain::new(&err);
        assert!(chain.next().is_some_and(<dyn StdError>::is::<io::Error>));
        assert!(chain.next().is_none());
        assert!(chain.next().is_none(), "fused");
        assert_eq!(Chain::new(&err).to_string(), "alone");
    }

    #[test]
    fn displays_every_message_on_one_line_joined_by_colons() {
        let err = three_deep();
        assert_eq!(Chain::new(&err).to_string(), "outer: inner: innermost");
        assert_eq!(
            format!("{:?}", Chain::new(&err)),
            r#"["outer", "inner", "innermost"]"#
        );
    }

    #[test]
    fn a_source_whose_message_ends_its_parent_s_is_said_once() {
        // As tokio-postgres and deadpool write theirs: the parent's message
        // ends with its source's, which is also its source.
        let err = layer(
            "could not connect: handshake failed: bad certificate",
            layer(
                "handshake failed: bad certificate",
                io::Error::other("bad certificate"),
            ),
        );
        assert_eq!(
            Chain::new(&err).to_string(),
            "could not connect: handshake failed: bad certificate"
        );
        assert_eq!(Chain::new(&err).count(), 3, "the walk still sees each");
        // A source that is not repeated is written, after the ones that were.
        let err = layer("pool: timed out", layer("timed out", three_deep()));
        assert_eq!(
            Chain::new(&err).to_string(),
            "pool: timed out: outer: inner: innermost"
        );
    }

    #[test]
    fn a_copy_walks_the_chain_again_from_where_it_was() {
        let err = three_deep();
        let mut chain = Chain::new(&err);
        chain.next();
        let rest = chain;
        assert_eq!(chain.count(), 2);
        assert_eq!(rest.to_string(), "inner: innermost");
    }

    #[test]
    fn the_error_an_io_error_wraps_is_not_its_source() {
        let err = io::Error::new(io::ErrorKind::TimedOut, layer("wrapped", fmt::Error));
        // `io::Error::source` skips the wrapped error and returns its source.
        let messages: Vec<String> = Chain::new(&err).map(ToString::to_string).collect();
        assert_eq!(
            messages,
            ["wrapped", "an error occurred when formatting an argument"]
        );
    }
}
