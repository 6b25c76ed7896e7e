//! The policy type, [`Retry`], and its builder: what a policy holds, fixed
//! once built. The per-call engine that applies it is in `attempts`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::attempt_store::{AttemptStore, DynAttemptStore};
use crate::attempts::Attempts;
use crate::budget::RetryBudget;
use crate::classify::{Decision, Rule};
use crate::error::ConfigError;
use crate::event::Event;
use crate::schedule::{Intervals, MAX_WAIT, Schedule};

/// The caller's telemetry hook. Boxed because each caller passes its own
/// closure type and the policy is not generic over it.
type Hook = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Makes a fresh iterator of a custom schedule for one call. Boxed because
/// the policy is not generic over the schedule type: one `Retry` type for
/// every schedule keeps signatures that store a policy simple.
type ScheduleFactory = dyn Fn() -> Box<dyn Iterator<Item = Duration> + Send> + Send + Sync;

/// Where a policy's waits come from.
#[derive(Clone)]
pub(crate) enum Waits {
    /// An explicit list (Eventide's intervals), walked by index: no
    /// allocation per call on the most common path.
    Listed(Arc<[Duration]>),
    /// Any other schedule, cloned from its prototype at the first failure
    /// of a call (so a call that succeeds at once never allocates).
    Custom(Arc<ScheduleFactory>),
}

impl Waits {
    /// The waits of an explicit list, walked by index.
    pub(crate) fn listed(intervals: Intervals) -> Waits {
        Waits::Listed(intervals.into_shared())
    }

    /// The waits of any schedule, cloned from `schedule` for each call.
    pub(crate) fn custom(schedule: impl Schedule) -> Waits {
        let factory: Arc<ScheduleFactory> = Arc::new(move || Box::new(schedule.clone()));
        Waits::Custom(factory)
    }
}

impl fmt::Debug for Waits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waits::Listed(list) => f.debug_tuple("Intervals").field(list).finish(),
            Waits::Custom(_) => f.write_str("custom schedule"),
        }
    }
}

/// A retry policy: which errors to retry, how long to wait between
/// attempts, and what bounds the whole.
///
/// Build one with [`Retry::new_ms`] or [`Retry::with_rule_ms`] (Eventide's
/// intervals written in the code, every error or one kind retried; they
/// cannot fail), [`Retry::new`] (intervals read from configuration,
/// validated), [`Retry::intervals_ms`] or [`Retry::with_schedule`] (the
/// builder, for every other option), then run
/// operations with [`run`](Retry::run) (async) or
/// [`run_blocking`](Retry::run_blocking). The same policy serves any number
/// of calls, concurrently; cloning it is cheap.
///
/// ```
/// use ebb_retry::Retry;
/// use std::io;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let retry = Retry::intervals_ms([100, 200]).retry_on::<io::Error>().build()?;
/// let value = retry
///     .run(|cycle| async move {
///         if cycle < 2 { Err(io::Error::from(io::ErrorKind::ConnectionReset)) } else { Ok(42) }
///     })
///     .await?;
/// assert_eq!(value, 42);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Retry {
    /// Everything, behind one pointer: a policy is typically cloned into
    /// many tasks and read on every call, never changed.
    inner: Arc<Policy>,
}

/// What a [`Retry`] holds: the policy's parts, fixed once built. The
/// fields are read by the per-call engine in `attempts`.
#[derive(Clone)]
pub(crate) struct Policy {
    /// The waits between attempts; their number bounds the attempts.
    pub(crate) waits: Waits,
    /// Rules tried in order; empty means "retry every error".
    pub(crate) rules: Arc<[Rule]>,
    /// Bound on the time from the first attempt's start to the end of the
    /// last wait; `None` for no bound.
    pub(crate) time_limit: Option<Duration>,
    /// Ends waits at once when cancelled, e.g. on shutdown.
    pub(crate) cancel: Option<CancellationToken>,
    /// Shared cap on retries across calls.
    pub(crate) budget: Option<RetryBudget>,
    /// The caller's telemetry hook.
    pub(crate) hook: Option<Hook>,
    /// Where keyed calls count their failed attempts. Behind a trait
    /// object so that the policy is not generic over the store.
    pub(crate) attempt_store: Option<Arc<dyn DynAttemptStore>>,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &*self.inner;
        let mut d = f.debug_struct("Retry");
        match &p.waits {
            Waits::Listed(list) => d.field("intervals", list),
            Waits::Custom(_) => d.field("schedule", &"custom"),
        };
        d.field("rules", &p.rules)
            .field("time_limit", &p.time_limit)
            .field("cancel", &p.cancel)
            .field("budget", &p.budget.is_some())
            .field("hook", &p.hook.is_some())
            .field("attempt_store", &p.attempt_store.is_some())
            .finish()
    }
}

impl Retry {
    /// Eventide's `Retry`: wait each of `millis` in turn between attempts
    /// and retry every error.
    ///
    /// # Errors
    /// [`ConfigError::NegativeInterval`] or [`ConfigError::IntervalTooLong`]
    /// for an interval below zero or above [`MAX_WAIT`](crate::MAX_WAIT).
    ///
    /// ```
    /// use ebb_retry::Retry;
    ///
    /// let retry = Retry::new([100, 200])?;
    /// assert!(Retry::new([100, -200]).is_err());
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn new(millis: impl IntoIterator<Item = i64>) -> Result<Retry, ConfigError> {
        Retry::intervals_ms(millis).build()
    }

    /// Eventide's `Retry` for intervals written in the code: wait each of
    /// `millis` (milliseconds) in turn between attempts, so at most
    /// `1 + millis.len()` attempts, and retry every error.
    ///
    /// It cannot fail. Milliseconds here are unsigned, so none is
    /// negative; a wait longer than [`MAX_WAIT`](crate::MAX_WAIT) (24
    /// hours) waits `MAX_WAIT` rather than being refused, since a wait
    /// that long written in the code is in plain sight. An empty list
    /// makes one attempt and no retry. For intervals read from
    /// configuration, where a negative or overlong value is a mistake to
    /// report, use [`Retry::new`]; for more options,
    /// [`Retry::intervals_ms`].
    ///
    /// ```
    /// use ebb_retry::Retry;
    ///
    /// // Eventide: `Retry.(millisecond_intervals: [10, 100, 1000]) { ... }`
    /// let retry = Retry::new_ms([10, 100, 1_000]); // at most 4 attempts
    /// # let _ = retry;
    ///
    /// let fail = |_| Err::<(), _>(std::fmt::Error);
    /// assert_eq!(Retry::new_ms([0, 0]).run_blocking(fail).unwrap_err().attempts(), 3);
    /// assert_eq!(Retry::new_ms([]).run_blocking(fail).unwrap_err().attempts(), 1);
    /// ```
    pub fn new_ms(millis: impl IntoIterator<Item = u64>) -> Retry {
        Retry::fixed(millis, Vec::new())
    }

    /// Eventide's `Retry` on one kind of error, for intervals written in
    /// the code: errors `rule` matches are retried, waiting each of
    /// `millis` (milliseconds) in turn (or by the rule's own
    /// [`schedule`](Rule::schedule), if it has one); any other error is
    /// returned at once. The same as
    /// `Retry::intervals_ms(millis).rule(rule).build()`, and like
    /// [`Retry::new_ms`] it cannot fail: a wait longer than
    /// [`MAX_WAIT`](crate::MAX_WAIT) waits `MAX_WAIT`.
    ///
    /// ```
    /// use ebb_retry::{Retry, Rule, StopReason};
    /// use std::{fmt, io};
    ///
    /// // Eventide: `Retry.(IOError, millisecond_intervals: [10, 100, 1000]) { ... }`;
    /// // in a handler: `Retry::with_rule_ms([10], on_wrong_expected_version())`.
    /// let retry = Retry::with_rule_ms([0, 0], Rule::on::<io::Error>());
    /// let err = retry.run_blocking(|_| Err::<(), _>(io::Error::other("reset"))).unwrap_err();
    /// assert_eq!((err.attempts(), err.reason()), (3, StopReason::Depleted));
    /// let err = retry.run_blocking(|_| Err::<(), _>(fmt::Error)).unwrap_err();
    /// assert_eq!((err.attempts(), err.reason()), (1, StopReason::NotRetryable));
    /// ```
    pub fn with_rule_ms(millis: impl IntoIterator<Item = u64>, rule: Rule) -> Retry {
        Retry::fixed(millis, vec![rule])
    }

    /// The policy of [`new_ms`](Retry::new_ms) and
    /// [`with_rule_ms`](Retry::with_rule_ms): the listed waits, each at
    /// most [`MAX_WAIT`](crate::MAX_WAIT), and `rules`, with no other
    /// option, so that there is nothing to validate.
    fn fixed(millis: impl IntoIterator<Item = u64>, rules: Vec<Rule>) -> Retry {
        let waits = millis
            .into_iter()
            .map(|ms| Duration::from_millis(ms).min(MAX_WAIT))
            .collect();
        Retry {
            inner: Arc::new(Policy {
                waits: Waits::Listed(waits),
                rules: rules.into(),
                time_limit: None,
                cancel: None,
                budget: None,
                hook: None,
                attempt_store: None,
            }),
        }
    }

    /// Start a policy that waits each of `millis` (milliseconds) in turn:
    /// at most `1 + millis.len()` attempts. Errors in the list are reported
    /// by [`RetryBuilder::build`].
    ///
    /// ```
    /// use ebb_retry::Retry;
    ///
    /// let retry = Retry::intervals_ms([0]).retry_on::<std::io::Error>().build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn intervals_ms(millis: impl IntoIterator<Item = i64>) -> RetryBuilder {
        RetryBuilder::new(Intervals::from_millis(millis).map(Waits::listed))
    }

    /// Start a policy without a schedule of its own: only errors matched by
    /// rules with their own schedule ([`Rule::schedule`],
    /// [`Rule::intervals`]) are retried, each kind by its schedule and
    /// limit. This is how a policy of error categories is built (longrun's
    /// `Baseline`): [`transport`](RetryBuilder::transport),
    /// `service` (feature `http`), your own
    /// [`category`](RetryBuilder::category)s, and for everything else
    /// either nothing (an unclassified error is permanent, the default) or
    /// a [`degraded`](RetryBuilder::degraded) schedule.
    ///
    /// ```
    /// use ebb_retry::{Constant, Exponential, Retry, StopReason};
    /// use std::io;
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis;
    /// let retry = Retry::builder()
    ///     .transport(Exponential::new(ms(1), 2.0, ms(8))?.take(5))
    ///     .category("busy", |e| e.to_string().contains("busy"), Constant::new(ms(1))?.take(2))
    ///     .build()?;
    ///
    /// let reset = || io::Error::from(io::ErrorKind::ConnectionReset);
    /// let err = retry.run_blocking(|_| Err::<(), _>(reset())).unwrap_err();
    /// assert_eq!(err.attempts(), 6);
    /// let err = retry.run_blocking(|_| Err::<(), _>(io::Error::other("busy"))).unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// let err = retry.run_blocking(|_| Err::<(), _>(io::Error::other("no such user"))).unwrap_err();
    /// assert_eq!((err.attempts(), err.reason()), (1, StopReason::NotRetryable));
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn builder() -> RetryBuilder {
        RetryBuilder::new(Ok(Waits::Listed(Arc::from([]))))
    }

    /// Start a policy from a validated [`Intervals`] list.
    ///
    /// ```
    /// use ebb_retry::{Intervals, Retry};
    /// use std::time::Duration;
    ///
    /// let list = Intervals::new([Duration::from_millis(5); 3])?;
    /// let retry = Retry::with_intervals(list).build()?;
    /// let err = retry.run_blocking(|_| Err::<(), _>(std::fmt::Error)).unwrap_err();
    /// assert_eq!(err.attempts(), 4);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn with_intervals(intervals: Intervals) -> RetryBuilder {
        RetryBuilder::new(Ok(Waits::listed(intervals)))
    }

    /// Start a policy that takes its waits from `schedule`, any cloneable
    /// iterator of durations (see [`Schedule`]). The schedule ending ends
    /// retrying; an infinite schedule needs another bound (a rule's
    /// `max_retries`, a time limit, a budget) unless retrying forever is
    /// the intent.
    ///
    /// ```
    /// use ebb_retry::{Exponential, Jittered, Retry};
    /// use std::time::Duration;
    ///
    /// let backoff = Exponential::new(Duration::from_millis(50), 2.0, Duration::from_secs(5))?;
    /// let retry = Retry::with_schedule(Jittered::full(backoff).take(8)).build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn with_schedule(schedule: impl Schedule) -> RetryBuilder {
        RetryBuilder::new(Ok(Waits::custom(schedule)))
    }

    /// A copy of this policy whose waits end when `token` is cancelled,
    /// for a policy shared across tasks that each have their own token.
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let shared = Retry::new([100, 200])?;
    /// let for_this_task = shared.with_cancellation(CancellationToken::new());
    /// # let _ = for_this_task;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_cancellation(&self, token: CancellationToken) -> Retry {
        let mut policy = (*self.inner).clone();
        policy.cancel = Some(token);
        Retry {
            inner: Arc::new(policy),
        }
    }

    /// Begin the bookkeeping for one call, seeing its errors through
    /// `view`.
    #[inline]
    pub(crate) fn start<E, V>(&self, view: V) -> Attempts<'_, E, V> {
        Attempts::new(&self.inner, view)
    }

    /// The cancellation token, if any; the runners wait on it.
    pub(crate) fn cancel_token(&self) -> Option<&CancellationToken> {
        self.inner.cancel.as_ref()
    }

    /// The attempt store keyed calls count in, if any.
    pub(crate) fn attempt_store(&self) -> Option<&dyn DynAttemptStore> {
        self.inner.attempt_store.as_deref()
    }
}

/// Options for a [`Retry`], consumed by [`build`](RetryBuilder::build),
/// which validates them.
///
/// ```
/// use ebb_retry::{Retry, RetryBudget};
/// use std::time::Duration;
/// use tokio_util::sync::CancellationToken;
///
/// let retry = Retry::intervals_ms([100, 200, 400])
///     .retry_on::<std::io::Error>()
///     .time_limit(Duration::from_secs(1))
///     .cancel_on(CancellationToken::new())
///     .budget(RetryBudget::default())
///     .on_event(|event| eprintln!("{event:?}"))
///     .build()?;
/// # let _ = retry;
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[must_use]
pub struct RetryBuilder {
    /// The schedule, or the error found while reading it; reported by
    /// `build` so that the chain of options reads without `?` in between.
    waits: Result<Waits, ConfigError>,
    /// Rules added so far, in order.
    rules: Vec<Rule>,
    /// See [`RetryBuilder::time_limit`].
    time_limit: Option<Duration>,
    /// See [`RetryBuilder::cancel_on`].
    cancel: Option<CancellationToken>,
    /// See [`RetryBuilder::budget`].
    budget: Option<RetryBudget>,
    /// See [`RetryBuilder::on_event`].
    hook: Option<Hook>,
    /// See [`RetryBuilder::degraded`]; added after the other rules by
    /// `build`, since it matches every error.
    fallback: Option<Rule>,
    /// See [`RetryBuilder::attempt_store`].
    attempt_store: Option<Arc<dyn DynAttemptStore>>,
}

impl fmt::Debug for RetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("rules", &self.rules)
            .field("time_limit", &self.time_limit)
            .field("cancel", &self.cancel)
            .field("budget", &self.budget.is_some())
            .field("hook", &self.hook.is_some())
            .field("fallback", &self.fallback)
            .field("attempt_store", &self.attempt_store.is_some())
            .finish_non_exhaustive()
    }
}

impl RetryBuilder {
    fn new(waits: Result<Waits, ConfigError>) -> Self {
        RetryBuilder {
            waits,
            rules: Vec::new(),
            time_limit: None,
            cancel: None,
            budget: None,
            hook: None,
            fallback: None,
            attempt_store: None,
        }
    }

    /// Add a rule. Rules are tried in order; the first that matches an
    /// error decides. Default: no rules, so every error is retried.
    ///
    /// ```
    /// use ebb_retry::{Decision, Retry, Rule};
    /// use std::io;
    ///
    /// let retry = Retry::intervals_ms([0, 0, 0])
    ///     .rule(Rule::on::<io::Error>().max_retries(1))
    ///     .rule(Rule::from_fn(|_| Some(Decision::Retry)))
    ///     .build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Add several rules, in order: for a list of rules kept apart from
    /// any one policy, such as a registry of the errors an application
    /// deems temporary.
    ///
    /// ```
    /// use ebb_retry::{Retry, Rule};
    /// use std::{fmt, io};
    ///
    /// let temporary = vec![Rule::on::<io::Error>(), Rule::on::<fmt::Error>()];
    /// let retry = Retry::intervals_ms([0]).rules(temporary.iter().cloned()).build()?;
    /// assert_eq!(retry.run_blocking(|_| Err::<(), _>(fmt::Error)).unwrap_err().attempts(), 2);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Retry errors that are, or are caused by, a `T`: shorthand for
    /// `.rule(Rule::on::<T>())`.
    ///
    /// ```
    /// use ebb_retry::Retry;
    ///
    /// let retry = Retry::intervals_ms([10]).retry_on::<std::io::Error>().build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn retry_on<T: StdError + 'static>(self) -> Self {
        self.rule(Rule::on::<T>())
    }

    /// Retry errors with a `T` in their chain that satisfy `predicate`:
    /// shorthand for `.rule(Rule::when::<T>(predicate))`.
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use std::io;
    ///
    /// let retry = Retry::intervals_ms([10])
    ///     .retry_if::<io::Error>(|e| e.kind() == io::ErrorKind::TimedOut)
    ///     .build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn retry_if<T: StdError + 'static>(
        self,
        predicate: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.rule(Rule::when::<T>(predicate))
    }

    /// Let `classify` decide for errors with a `T` in their chain, e.g.
    /// honour a `Retry-After`: shorthand for
    /// `.rule(Rule::classify::<T>(classify))`.
    ///
    /// ```
    /// use ebb_retry::{Decision, Retry};
    /// use std::io;
    /// use std::time::Duration;
    ///
    /// let retry = Retry::intervals_ms([10, 10])
    ///     .classify::<io::Error>(|e| match e.kind() {
    ///         io::ErrorKind::WouldBlock => Decision::RetryAfter(Duration::from_secs(1)),
    ///         io::ErrorKind::TimedOut => Decision::Retry,
    ///         _ => Decision::DoNotRetry,
    ///     })
    ///     .build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn classify<T: StdError + 'static>(
        self,
        classify: impl Fn(&T) -> Decision + Send + Sync + 'static,
    ) -> Self {
        self.rule(Rule::classify::<T>(classify))
    }

    /// Retry the *transport* category ([`Rule::transport`]: connection
    /// and timeout errors anywhere in the source chain) by `schedule`:
    /// shorthand for `.rule(Rule::transport().schedule(schedule))`.
    ///
    /// ```
    /// use ebb_retry::{Exponential, Retry};
    /// use std::time::Duration;
    ///
    /// let backoff = Exponential::new(Duration::from_millis(100), 2.0, Duration::from_secs(5))?;
    /// let retry = Retry::builder().transport(backoff.take(5)).build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn transport(self, schedule: impl Schedule) -> Self {
        self.rule(Rule::transport().schedule(schedule))
    }

    /// Retry the *service* category ([`Rule::service`]: HTTP 429, 502,
    /// 503 and 504, after their `Retry-After`) by `schedule`: shorthand for
    /// `.rule(Rule::service().schedule(schedule))`. Feature `http`.
    ///
    /// ```
    /// use ebb_retry::{Constant, Retry};
    /// use std::time::Duration;
    ///
    /// let retry = Retry::builder().service(Constant::new(Duration::from_secs(10))?.take(3)).build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    #[cfg(feature = "http")]
    pub fn service(self, schedule: impl Schedule) -> Self {
        self.rule(Rule::service().schedule(schedule))
    }

    /// Retry a user-defined category, the errors for which `matches`
    /// holds, by `schedule`: shorthand for
    /// `.rule(Rule::category(name, matches).schedule(schedule))`.
    ///
    /// ```
    /// use ebb_retry::{Constant, Retry};
    /// use std::time::Duration;
    ///
    /// let retry = Retry::builder()
    ///     .category("locked", |e| e.to_string().contains("locked"), Constant::new(Duration::from_millis(50))?.take(3))
    ///     .build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn category(
        self,
        name: &'static str,
        matches: impl Fn(&(dyn StdError + 'static)) -> bool + Send + Sync + 'static,
        schedule: impl Schedule,
    ) -> Self {
        self.rule(Rule::category(name, matches).schedule(schedule))
    }

    /// A *degraded* policy: retry errors that no rule matched by
    /// `schedule`, logging a warning (target `ebb_retry`) at each such
    /// retry, instead of returning them at once. It applies after every
    /// rule, whatever the order of the calls. Named `"unknown"` in
    /// telemetry.
    ///
    /// Default: an error no rule matches is permanent
    /// ([`StopReason::NotRetryable`](crate::StopReason::NotRetryable)).
    ///
    /// ```
    /// use ebb_retry::{Constant, Retry};
    /// use std::time::Duration;
    ///
    /// let retry = Retry::builder()
    ///     .degraded(Constant::new(Duration::ZERO)?.take(2))
    ///     .build()?;
    /// let err = retry.run_blocking(|_| Err::<(), _>(std::fmt::Error)).unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn degraded(mut self, schedule: impl Schedule) -> Self {
        self.fallback = Some(
            Rule::any()
                .named("unknown")
                .schedule(schedule)
                .warning_on_retry(),
        );
        self
    }

    /// Bound the whole call: a retry whose wait would end more than `limit`
    /// after the first attempt started is not made, and the call returns
    /// its last error
    /// ([`StopReason::TimeLimit`](crate::StopReason::TimeLimit)). An
    /// attempt already running is not interrupted; wrap the operation in
    /// `tokio::time::timeout` for that.
    ///
    /// Default: no limit. A zero limit is rejected by `build`.
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use std::time::Duration;
    ///
    /// let retry = Retry::intervals_ms([100; 50]).time_limit(Duration::from_secs(2)).build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// End any wait at once when `token` is cancelled, returning the last
    /// error ([`StopReason::Cancelled`](crate::StopReason::Cancelled)).
    /// Also checked before each wait. An attempt already running is not
    /// interrupted.
    ///
    /// Default: no cancellation.
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let shutdown = CancellationToken::new();
    /// let retry = Retry::intervals_ms([1000; 10]).cancel_on(shutdown.clone()).build()?;
    /// shutdown.cancel(); // e.g. from a signal handler
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Draw retries from a budget shared with other calls and policies
    /// (see [`RetryBudget`] on retry storms). Each call deposits; each
    /// retry withdraws, and is not made if the budget is empty
    /// ([`StopReason::BudgetExhausted`](crate::StopReason::BudgetExhausted)).
    ///
    /// Default: no shared budget.
    ///
    /// ```
    /// use ebb_retry::{Retry, RetryBudget};
    ///
    /// let budget = RetryBudget::default();
    /// let reads = Retry::intervals_ms([10, 20]).budget(budget.clone()).build()?;
    /// let writes = Retry::intervals_ms([0]).budget(budget).build()?;
    /// # let _ = (reads, writes);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Call `hook` for every [`Event`], in addition to the tracing events.
    /// It runs inline, so keep it short.
    ///
    /// Default: no hook.
    ///
    /// ```
    /// use ebb_retry::{Event, Retry};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let failures = Arc::new(AtomicU32::new(0));
    /// let counter = failures.clone();
    /// let retry = Retry::intervals_ms([0])
    ///     .on_event(move |e| if let Event::Failed { .. } = e { counter.fetch_add(1, Ordering::Relaxed); })
    ///     .build()?;
    /// let _ = retry.run_blocking(|_| Err::<(), _>(std::fmt::Error));
    /// assert_eq!(failures.load(Ordering::Relaxed), 1);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn on_event(mut self, hook: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Count the failed attempts of keyed calls
    /// ([`Retry::run_keyed`]) in `store`, so that a call after a restart
    /// resumes the count instead of starting over (see
    /// [`attempt_store`](crate::attempt_store)). Unkeyed calls
    /// ([`Retry::run`] and the rest) do not use it.
    ///
    /// Default: no store; `run_keyed` is then `run`.
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use ebb_retry::attempt_store::MemoryAttemptStore;
    ///
    /// let retry = Retry::intervals_ms([100, 200]).attempt_store(MemoryAttemptStore::new()).build()?;
    /// # let _ = retry;
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn attempt_store(mut self, store: impl AttemptStore) -> Self {
        self.attempt_store = Some(Arc::new(store));
        self
    }

    /// Validate the options and make the policy.
    ///
    /// # Errors
    /// The schedule's [`ConfigError`], if it had one;
    /// [`ConfigError::ZeroTimeLimit`] for a zero time limit.
    ///
    /// ```
    /// use ebb_retry::{ConfigError, Retry};
    /// use std::time::Duration;
    ///
    /// let err = Retry::intervals_ms([10]).time_limit(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err, ConfigError::ZeroTimeLimit);
    /// ```
    pub fn build(self) -> Result<Retry, ConfigError> {
        let waits = self.waits?;
        if self.time_limit == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroTimeLimit);
        }
        let mut rules = self.rules;
        rules.extend(self.fallback);
        Ok(Retry {
            inner: Arc::new(Policy {
                waits,
                rules: rules.into(),
                time_limit: self.time_limit,
                cancel: self.cancel,
                budget: self.budget,
                hook: self.hook,
                attempt_store: self.attempt_store,
            }),
        })
    }
}
