//! *Whether* to retry: rules that classify errors.
//!
//! A [`Retry`](crate::Retry) with no rules retries every error, as
//! Eventide's `Retry` does without an error list. Once rules are given,
//! they are tried in order and the first one that matches an error decides
//! (a [`Decision`]); an error no rule matches is returned at once.
//!
//! Rules match by type anywhere in the error's
//! [`source`](std::error::Error::source) chain, so a `std::io::Error`
//! wrapped in your own error still matches `io::Error`; or by a predicate on
//! the matched type; or by a function of the whole error. A rule can also
//! carry its own retry budget, [`Rule::max_retries`], so that a conflict is
//! retried once while a network error gets five tries, and its own
//! schedule, [`Rule::schedule`], so that a reset connection backs off
//! exponentially while a rate limit waits a constant 10 s. Retries are
//! counted per rule: one kind of error cannot use up another's.
//!
//! Ready-made categories: [`Rule::transport`] (connection and timeout
//! errors anywhere in the source chain, see [`is_transport`]) and, with the
//! `http` feature, `Rule::service` (HTTP 429, 502, 503, 504 honouring
//! `Retry-After`, see the `http` module).

use std::any::TypeId;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::Chain;
use crate::policy::Waits;
use crate::schedule::{Intervals, Schedule};

/// What to do about one failed attempt.
///
/// ```
/// use ebb_retry::{Decision, Rule};
/// use std::time::Duration;
///
/// // An HTTP 429/503 that says when to come back.
/// #[derive(Debug)]
/// struct Throttled { retry_after: Duration }
/// # impl std::fmt::Display for Throttled {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("throttled") }
/// # }
/// # impl std::error::Error for Throttled {}
///
/// let rule = Rule::classify::<Throttled>(|t| Decision::RetryAfter(t.retry_after));
/// # let _ = rule;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// Retry after the schedule's next wait.
    Retry,
    /// Retry after exactly this wait (a `Retry-After`), instead of the
    /// schedule's next wait. It still uses up one step of the schedule, so
    /// the attempt count stays bounded by the schedule.
    RetryAfter(Duration),
    /// Do not retry; return this error now.
    DoNotRetry,
}

/// The signature every rule reduces to: `Some(decision)` if the rule
/// matches the error, `None` to let the next rule look at it. Boxed behind
/// an `Arc` because a policy holds rules of different closure types and is
/// cloned freely.
type MatchFn = dyn Fn(&(dyn StdError + 'static)) -> Option<Decision> + Send + Sync;

/// A rule's answer about one error, as the engine uses it: an
/// `Option<Decision>` with a tag of its own, so that telling the answers
/// apart is one compare rather than decoding the niche `Option` and
/// `Decision` share in a `Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Verdict {
    /// The rule does not match; the next one looks.
    Pass,
    /// Retry after the schedule's next wait.
    Retry,
    /// Retry after exactly this wait (it still takes a schedule step).
    RetryAfter(Duration),
    /// Do not retry.
    Never,
}

/// How a rule tells whether it matches an error.
#[derive(Clone)]
enum Matcher {
    /// A type anywhere in the chain, with a fixed decision
    /// ([`Rule::on`], [`Rule::never`]). Kept as data rather than a
    /// closure so that the engine, which knows the caller's error type,
    /// can match the top of the chain by comparing type ids: no call.
    Type {
        /// The type looked for.
        id: TypeId,
        /// Whether the chain from a given error on holds that type.
        in_chain: fn(&(dyn StdError + 'static)) -> bool,
        /// Whether the rule retries what it matches ([`Rule::on`]) or
        /// refuses it ([`Rule::never`]).
        retry: bool,
    },
    /// Every error, to retry ([`Rule::any`]).
    Any,
    /// Anything else: a function of the whole error.
    Fn(Arc<MatchFn>),
}

/// Whether `err`'s chain, from `err` itself on, holds a `T`: the
/// [`Matcher::Type`] test for `T`.
fn chain_holds<T: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    find_in_chain::<T>(err).is_some()
}

/// One rule of a retry policy: which errors it matches, what it decides
/// for them, and how many retries that kind of error may have.
///
/// ```
/// use ebb_retry::{Retry, Rule};
/// use std::io;
///
/// let retry = Retry::intervals_ms([10, 20, 40, 80, 160])
///     .rule(Rule::on::<io::Error>().max_retries(5).named("network"))
///     .build()?;
/// # let _ = retry;
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Rule {
    /// Decides whether the rule applies and what it says.
    matcher: Matcher,
    /// Retries this rule may grant within one call; `None` leaves the
    /// schedule as the only bound.
    max_retries: Option<u32>,
    /// The rule's own waits, walked by this rule's retries only; `None`
    /// takes the policy's schedule, shared with the other such rules.
    schedule: Option<Waits>,
    /// Log a warning at every retry this rule grants: set on the fallback
    /// of a degraded policy, whose errors nobody classified.
    warn_on_retry: bool,
    /// Name for telemetry; defaults to the matched type's name.
    name: &'static str,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("max_retries", &self.max_retries)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// The first error of type `T` in `err`'s source chain, starting with
/// `err` itself.
///
/// ```
/// use ebb_retry::find_in_chain;
/// use std::io;
///
/// #[derive(Debug)]
/// struct Wrapper(io::Error);
/// impl std::fmt::Display for Wrapper {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("wrapped") }
/// }
/// impl std::error::Error for Wrapper {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) }
/// }
///
/// let err = Wrapper(io::Error::from(io::ErrorKind::ConnectionReset));
/// let io = find_in_chain::<io::Error>(&err).unwrap();
/// assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
/// ```
pub fn find_in_chain<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    Chain::new(err).find_map(|e| e.downcast_ref::<T>())
}

/// The `std::io::ErrorKind`s of the *transport* category: the connection
/// could not be made or was lost, or the peer did not answer in time.
const TRANSPORT_KINDS: [io::ErrorKind; 6] = [
    io::ErrorKind::ConnectionRefused,
    io::ErrorKind::ConnectionReset,
    io::ErrorKind::ConnectionAborted,
    io::ErrorKind::BrokenPipe,
    io::ErrorKind::UnexpectedEof,
    io::ErrorKind::TimedOut,
];

/// True when `err` or any error in its source chain is a transport
/// failure: a `std::io::Error` of kind connection refused, reset or
/// aborted, broken pipe, unexpected EOF or timed out, or a tokio timeout
/// ([`tokio::time::error::Elapsed`]).
///
/// Database and HTTP clients (tokio-postgres, hyper, reqwest) keep such an
/// error as a source of their own, so the whole chain is walked, and so is
/// the error an `io::Error` wraps (which `io::Error::source` skips).
///
/// ```
/// use ebb_retry::classify::is_transport;
/// use std::io;
///
/// #[derive(Debug)]
/// struct DbError(io::Error);
/// impl std::fmt::Display for DbError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("db error") }
/// }
/// impl std::error::Error for DbError {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) }
/// }
///
/// assert!(is_transport(&DbError(io::Error::from(io::ErrorKind::BrokenPipe))));
/// assert!(!is_transport(&DbError(io::Error::from(io::ErrorKind::PermissionDenied))));
/// ```
pub fn is_transport(err: &(dyn StdError + 'static)) -> bool {
    any_in_chain(err, |e| {
        if e.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        let Some(io) = e.downcast_ref::<io::Error>() else {
            return false;
        };
        // `io::Error::source` is the wrapped error's source, not the
        // wrapped error itself: look at that here.
        TRANSPORT_KINDS.contains(&io.kind())
            || io.get_ref().is_some_and(|inner| is_transport(inner))
    })
}

/// Whether `f` holds for `err` or any error in its source chain.
fn any_in_chain(
    err: &(dyn StdError + 'static),
    f: impl FnMut(&(dyn StdError + 'static)) -> bool,
) -> bool {
    Chain::new(err).any(f)
}

impl Rule {
    /// The most general rule: `f` sees the whole error and returns
    /// `Some(decision)` to match it, `None` to pass it to the next rule.
    ///
    /// ```
    /// use ebb_retry::{Decision, Rule};
    /// use std::io;
    ///
    /// // Retry anything whose message mentions "try again".
    /// let rule = Rule::from_fn(|e| e.to_string().contains("try again").then_some(Decision::Retry));
    /// assert_eq!(rule.decide(&io::Error::other("busy, try again")), Some(Decision::Retry));
    /// assert_eq!(rule.decide(&io::Error::other("no such table")), None);
    /// ```
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&(dyn StdError + 'static)) -> Option<Decision> + Send + Sync + 'static,
    {
        Rule::with_matcher(Matcher::Fn(Arc::new(f)), "custom")
    }

    /// A rule with no limit or schedule of its own.
    fn with_matcher(matcher: Matcher, name: &'static str) -> Self {
        Rule {
            matcher,
            max_retries: None,
            schedule: None,
            warn_on_retry: false,
            name,
        }
    }

    /// The rule for errors with a `T` in their chain: retry them, or
    /// never.
    fn on_type<T: StdError + 'static>(retry: bool) -> Self {
        Rule::with_matcher(
            Matcher::Type {
                id: TypeId::of::<T>(),
                in_chain: chain_holds::<T>,
                retry,
            },
            std::any::type_name::<T>(),
        )
    }

    /// Retry every error. Useful to give "everything else" its own budget
    /// after more specific rules.
    ///
    /// ```
    /// use ebb_retry::{Retry, Rule};
    ///
    /// let retry = Retry::intervals_ms([0, 0, 0]).rule(Rule::any().max_retries(1)).build()?;
    /// let err = retry.run_blocking(|_| Err::<(), _>(std::fmt::Error)).unwrap_err();
    /// assert_eq!(err.attempts(), 2);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn any() -> Self {
        Rule::with_matcher(Matcher::Any, "any")
    }

    /// Retry errors that are, or are caused by, a `T` (Eventide's list of
    /// error classes).
    ///
    /// ```
    /// use ebb_retry::{Retry, Rule};
    /// use std::io;
    ///
    /// let retry = Retry::intervals_ms([0]).rule(Rule::on::<io::Error>()).build()?;
    /// let err = retry.run_blocking(|_| Err::<(), _>(io::Error::other("down"))).unwrap_err();
    /// assert_eq!(err.attempts(), 2);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn on<T: StdError + 'static>() -> Self {
        Rule::on_type::<T>(true)
    }

    /// Retry errors with a `T` in their chain for which `predicate` holds
    /// (any `T` in the chain may satisfy it).
    ///
    /// ```
    /// use ebb_retry::Rule;
    /// use std::io;
    ///
    /// let rule = Rule::when::<io::Error>(|e| e.kind() == io::ErrorKind::ConnectionRefused);
    /// # let _ = rule;
    /// ```
    pub fn when<T: StdError + 'static>(
        predicate: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        Rule::from_fn(move |e| {
            any_in_chain(e, |e| e.downcast_ref::<T>().is_some_and(&predicate))
                .then_some(Decision::Retry)
        })
        .named(std::any::type_name::<T>())
    }

    /// Let `classify` decide for errors with a `T` in their chain (the
    /// first `T` found); errors without one pass to the next rule.
    ///
    /// ```
    /// use ebb_retry::{Decision, Rule};
    /// use std::time::Duration;
    ///
    /// #[derive(Debug)]
    /// struct Status(u16, Option<Duration>);
    /// # impl std::fmt::Display for Status {
    /// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
    /// # }
    /// # impl std::error::Error for Status {}
    ///
    /// let rule = Rule::classify::<Status>(|s| match s {
    ///     Status(429 | 503, Some(after)) => Decision::RetryAfter(*after),
    ///     Status(500..=599, _) => Decision::Retry,
    ///     _ => Decision::DoNotRetry,
    /// });
    /// # let _ = rule;
    /// ```
    pub fn classify<T: StdError + 'static>(
        classify: impl Fn(&T) -> Decision + Send + Sync + 'static,
    ) -> Self {
        Rule::from_fn(move |e| find_in_chain::<T>(e).map(&classify))
            .named(std::any::type_name::<T>())
    }

    /// Never retry errors with a `T` in their chain, whatever later rules
    /// say. Put it first.
    ///
    /// ```
    /// use ebb_retry::{Retry, Rule};
    /// use std::fmt;
    ///
    /// let retry = Retry::intervals_ms([0, 0])
    ///     .rule(Rule::never::<fmt::Error>())
    ///     .rule(Rule::any())
    ///     .build()?;
    /// let err = retry.run_blocking(|_| Err::<(), _>(fmt::Error)).unwrap_err();
    /// assert_eq!(err.attempts(), 1);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn never<T: StdError + 'static>() -> Self {
        Rule::on_type::<T>(false)
    }

    /// The *transport* category: errors with a connection or timeout
    /// failure anywhere in their source chain (see [`is_transport`]), which
    /// is where database and HTTP clients keep them. Named `"transport"`.
    ///
    /// The store's own notion of transient errors plugs in beside it as a
    /// rule of its own (`ebb_handler::retry::on_transient`).
    ///
    /// ```
    /// use ebb_retry::{Decision, Rule};
    /// use std::io;
    ///
    /// let rule = Rule::transport();
    /// let reset = io::Error::from(io::ErrorKind::ConnectionReset);
    /// assert_eq!(rule.decide(&reset), Some(Decision::Retry));
    /// assert_eq!(rule.decide(&io::Error::from(io::ErrorKind::NotFound)), None);
    /// ```
    pub fn transport() -> Self {
        Rule::from_fn(|e| is_transport(e).then_some(Decision::Retry)).named("transport")
    }

    /// A user-defined category: errors for which `matches` holds for the
    /// error or any error in its source chain, named `name` in telemetry.
    /// Give it a schedule with [`Rule::schedule`] (or use
    /// [`RetryBuilder::category`](crate::RetryBuilder::category)).
    ///
    /// ```
    /// use ebb_retry::{Decision, Rule};
    /// use std::io;
    ///
    /// let busy = Rule::category("busy", |e| e.to_string().contains("busy"));
    /// assert_eq!(busy.name(), "busy");
    /// assert_eq!(busy.decide(&io::Error::other("server busy")), Some(Decision::Retry));
    /// assert_eq!(busy.decide(&io::Error::other("no such user")), None);
    /// ```
    pub fn category(
        name: &'static str,
        matches: impl Fn(&(dyn StdError + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        Rule::from_fn(move |e| any_in_chain(e, &matches).then_some(Decision::Retry)).named(name)
    }

    /// Wait by `schedule` between the retries of errors this rule matches,
    /// instead of by the policy's schedule. The rule's schedule is walked by
    /// its own retries only, so other kinds of error neither advance it nor
    /// are bounded by it; its end ends the retries of this kind
    /// ([`StopReason::Depleted`](crate::StopReason::Depleted)). Combine with
    /// [`max_retries`](Rule::max_retries) to bound an endless schedule.
    ///
    /// Default: the policy's schedule, shared with the other rules that
    /// have none of their own.
    ///
    /// ```
    /// use ebb_retry::{Constant, Exponential, Retry, Rule};
    /// use std::io::{self, ErrorKind};
    /// use std::time::Duration;
    ///
    /// # #[derive(Debug)] struct RateLimited;
    /// # impl std::fmt::Display for RateLimited {
    /// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("429") }
    /// # }
    /// # impl std::error::Error for RateLimited {}
    /// let secs = Duration::from_secs;
    /// let retry = Retry::builder()
    ///     // connection reset: 5 retries, exponential 1 s → 30 s
    ///     .rule(
    ///         Rule::when::<io::Error>(|e| e.kind() == ErrorKind::ConnectionReset)
    ///             .schedule(Exponential::new(secs(1), 2.0, secs(30))?)
    ///             .max_retries(5),
    ///     )
    ///     // rate limited: 3 retries, constant 10 s
    ///     .rule(Rule::on::<RateLimited>().schedule(Constant::new(secs(10))?.take(3)))
    ///     .build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn schedule(mut self, schedule: impl Schedule) -> Self {
        self.schedule = Some(Waits::custom(schedule));
        self
    }

    /// Wait each of `intervals` in turn between the retries of errors this
    /// rule matches: [`schedule`](Rule::schedule) for an explicit list,
    /// walked by index without an iterator per call.
    ///
    /// ```
    /// use ebb_retry::{Intervals, Retry, Rule};
    ///
    /// let retry = Retry::builder()
    ///     .rule(Rule::on::<std::io::Error>().intervals(Intervals::from_millis([0, 0])?))
    ///     .build()?;
    /// let err = retry.run_blocking(|_| Err::<(), _>(std::io::Error::other("down"))).unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn intervals(mut self, intervals: Intervals) -> Self {
        self.schedule = Some(Waits::listed(intervals));
        self
    }

    /// Mark the rule as the fallback of a degraded policy: each retry it
    /// grants logs a warning. Used by
    /// [`RetryBuilder::degraded`](crate::RetryBuilder::degraded).
    pub(crate) fn warning_on_retry(mut self) -> Self {
        self.warn_on_retry = true;
        self
    }

    /// The rule's own schedule, if it has one.
    pub(crate) fn own_waits(&self) -> Option<&Waits> {
        self.schedule.as_ref()
    }

    /// Whether each retry this rule grants logs a warning.
    pub(crate) fn warns_on_retry(&self) -> bool {
        self.warn_on_retry
    }

    /// At most `n` retries for errors this rule matches, within one call
    /// (the schedule still bounds the total). `max_retries(0)` matches the
    /// error but never retries it.
    ///
    /// Default: no limit of its own.
    ///
    /// ```
    /// use ebb_retry::{Retry, Rule, StopReason};
    /// use std::io;
    ///
    /// let retry = Retry::intervals_ms([0; 10])
    ///     .rule(Rule::on::<io::Error>().max_retries(2))
    ///     .build()?;
    /// let err = retry.run_blocking(|_| Err::<(), _>(io::Error::other("down"))).unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// assert_eq!(err.reason(), StopReason::KindBudgetExhausted);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// Name the rule in telemetry (the `kind` field and
    /// [`Event::Failed`](crate::Event::Failed)).
    ///
    /// Default: the matched type's name, `"any"` or `"custom"`.
    ///
    /// ```
    /// use ebb_retry::Rule;
    ///
    /// assert_eq!(Rule::on::<std::io::Error>().named("network").name(), "network");
    /// ```
    #[must_use]
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The rule's name in telemetry.
    ///
    /// ```
    /// use ebb_retry::Rule;
    ///
    /// assert_eq!(Rule::on::<std::io::Error>().name(), "std::io::error::Error");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The rule's own retry limit, if any.
    ///
    /// ```
    /// use ebb_retry::Rule;
    ///
    /// assert_eq!(Rule::any().max_retries(3).retry_limit(), Some(3));
    /// assert_eq!(Rule::any().retry_limit(), None);
    /// ```
    pub fn retry_limit(&self) -> Option<u32> {
        self.max_retries
    }

    /// What this rule says about `err`, if it matches.
    ///
    /// ```
    /// use ebb_retry::{Decision, Rule};
    /// use std::io;
    ///
    /// let rule = Rule::on::<io::Error>();
    /// assert_eq!(rule.decide(&io::Error::other("x")), Some(Decision::Retry));
    /// assert_eq!(rule.decide(&std::fmt::Error), None);
    /// ```
    #[inline]
    pub fn decide(&self, err: &(dyn StdError + 'static)) -> Option<Decision> {
        match self.decide_known(err, None) {
            Verdict::Pass => None,
            Verdict::Retry => Some(Decision::Retry),
            Verdict::RetryAfter(wait) => Some(Decision::RetryAfter(wait)),
            Verdict::Never => Some(Decision::DoNotRetry),
        }
    }

    /// [`decide`](Rule::decide) for an error whose type is known to be
    /// `top` (the engine knows it from the caller's error type): a rule
    /// matching by type then compares type ids rather than asking the
    /// error, and looks further down the chain only on a mismatch.
    #[inline]
    pub(crate) fn decide_known(
        &self,
        err: &(dyn StdError + 'static),
        top: Option<TypeId>,
    ) -> Verdict {
        match &self.matcher {
            Matcher::Type {
                id,
                in_chain,
                retry,
            } => {
                let found = match top {
                    Some(top) if top == *id => true,
                    // Not the top error: only its sources can be one.
                    Some(_) => err.source().is_some_and(in_chain),
                    None => in_chain(err),
                };
                match (found, retry) {
                    (false, _) => Verdict::Pass,
                    (true, true) => Verdict::Retry,
                    (true, false) => Verdict::Never,
                }
            }
            Matcher::Any => Verdict::Retry,
            Matcher::Fn(f) => match f(err) {
                None => Verdict::Pass,
                Some(Decision::Retry) => Verdict::Retry,
                Some(Decision::RetryAfter(wait)) => Verdict::RetryAfter(wait),
                Some(Decision::DoNotRetry) => Verdict::Never,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Debug)]
    struct Outer(io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn type_rules_look_through_the_source_chain() {
        let err = Outer(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(Rule::on::<io::Error>().decide(&err), Some(Decision::Retry));
        assert_eq!(
            Rule::when::<io::Error>(|e| e.kind() == io::ErrorKind::TimedOut).decide(&err),
            Some(Decision::Retry)
        );
        assert_eq!(
            Rule::when::<io::Error>(|e| e.kind() == io::ErrorKind::NotFound).decide(&err),
            None
        );
        assert_eq!(Rule::on::<fmt::Error>().decide(&err), None);
        assert_eq!(
            Rule::never::<io::Error>().decide(&err),
            Some(Decision::DoNotRetry)
        );
    }
}
