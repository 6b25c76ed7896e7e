//! Retry an operation on failure: Eventide's `Retry`, exactly, with
//! schedules, classifiers, error categories, budgets, background runs and
//! attempts that survive restarts around it.
//!
//! ```
//! use ebb_retry::Retry;
//! use std::io;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Eventide: `Retry.(IOError, millisecond_intervals: [100, 200]) { |cycle| ... }`
//! let retry = Retry::intervals_ms([100, 200]).retry_on::<io::Error>().build()?;
//!
//! let body = retry
//!     .run(|cycle| async move {
//!         // at most 3 attempts, told their cycle: 0, 1, 2
//!         if cycle == 0 { Err(io::Error::from(io::ErrorKind::ConnectionReset)) } else { Ok("body") }
//!     })
//!     .await?;
//! assert_eq!(body, "body");
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//!
//! A [`Retry`] made from a list of millisecond intervals runs the operation
//! at most `1 + intervals.len()` times, waiting each interval in turn. An
//! error it was not told to retry is returned at once; when the intervals
//! are spent, the last error is returned; with no error filter every error
//! is retried. Errors are matched by type anywhere in their
//! [`source`](std::error::Error::source) chain, or by a predicate.
//! The error returned is a [`RetryError`] with every attempt's error;
//! [`RetryError::into_last`] is Eventide's raised error.
//!
//! Async ([`Retry::run`], on tokio) and blocking ([`Retry::run_blocking`])
//! forms share the same policy and the same decision code.
//!
//! Intervals written in the code make a policy that cannot fail:
//! [`Retry::new_ms`] retries every error, [`Retry::with_rule_ms`] the
//! errors one [`Rule`] matches. Intervals read from configuration go
//! through [`Retry::new`] or the builder, which report a negative or
//! overlong interval as a [`ConfigError`].
//!
//! ```
//! use ebb_retry::{Retry, Rule};
//!
//! // Eventide: `Retry.(IOError, millisecond_intervals: [10, 100, 1000]) { ... }`
//! let retry = Retry::with_rule_ms([10, 100, 1_000], Rule::on::<std::io::Error>());
//! # let _ = retry;
//! ```
//!
//! `?` boxes a [`RetryError`] of a `std::error::Error` as it boxes any
//! error; into the operation's own error type it needs a `From` impl
//! (see [`RetryError`]); else take Eventide's raised error out with
//! [`RetryError::into_last`].
//!
//! An operation whose error is boxed, `Box<dyn Error + Send + Sync>` or
//! `anyhow::Error` (neither is itself a [`std::error::Error`]), runs with
//! [`Retry::run_boxed`] or [`Retry::run_blocking_boxed`]: the same in
//! every respect, with rules matching the error inside the box and its
//! source chain. Such a `RetryError` is not a `std::error::Error` itself;
//! get the handler's own error back with
//! `.map_err(RetryError::into_last)?`.
//!
//! # Beyond Eventide
//!
//! Everything composes on the one builder, [`RetryBuilder`]:
//!
//! - *when*: any [`Schedule`] — [`Intervals`], [`Constant`],
//!   [`Exponential`] (multiplier and cap), [`Jittered`] (full, equal),
//!   [`Decorrelated`], or your own iterator of durations;
//! - *whether*: [`Rule`]s that match errors and return a [`Decision`]
//!   (retry with the schedule, retry after exactly a given wait such as an
//!   HTTP `Retry-After`, or do not retry), each with its own
//!   [`max_retries`](Rule::max_retries) and its own
//!   [`schedule`](Rule::schedule), counted per rule;
//! - *which kind*: error categories — [`transport`](RetryBuilder::transport)
//!   (connection and timeout errors anywhere in the source chain),
//!   `service` (HTTP 429/502/503/504 with `Retry-After`, feature `http`),
//!   your own [`category`](RetryBuilder::category) — and for an error
//!   nobody classified, either nothing (the default) or a
//!   [`degraded`](RetryBuilder::degraded) schedule with a warning;
//! - *how much overall*: a [`time_limit`](RetryBuilder::time_limit), a
//!   [`CancellationToken`] that ends
//!   a wait at once, and a [`RetryBudget`] shared across calls against
//!   retry storms;
//! - *across restarts*: an [`AttemptStore`](attempt_store::AttemptStore)
//!   that keeps the count of a keyed call ([`Retry::run_keyed`]), so that a
//!   process restarted between attempts resumes it;
//! - *in the background*: [`Retry::spawn`] and [`Retry::spawn_blocking`],
//!   with a handle to await, cancel or abort;
//! - *what happened*: tracing events and an [`Event`] hook.
//!
//! Bad configuration is a [`ConfigError`] from the constructor, never a
//! panic later.
//!
//! ## A schedule per rule, and categories
//!
//! Each kind of error waits by its own schedule and has its own count, so
//! one kind cannot use up another's retries; rules without a schedule
//! share the policy's. [`Retry::builder`] starts a policy without a
//! schedule of its own, so that only the kinds named are retried.
//!
//! ```
//! use ebb_retry::{Constant, Exponential, Retry, Rule};
//! use std::io;
//! use std::time::Duration;
//!
//! # #[derive(Debug)] struct RateLimited;
//! # impl std::fmt::Display for RateLimited {
//! #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("429") }
//! # }
//! # impl std::error::Error for RateLimited {}
//! let secs = Duration::from_secs;
//! let retry = Retry::builder()
//!     // connection reset, refused, timed out… anywhere in the chain:
//!     // 5 retries, exponential 1 s → 30 s
//!     .transport(Exponential::new(secs(1), 2.0, secs(30))?.take(5))
//!     // rate limited: 3 retries, constant 10 s
//!     .rule(Rule::on::<RateLimited>().schedule(Constant::new(secs(10))?.take(3)))
//!     // anything else: retried twice after 1 s, with a warning each time
//!     .degraded(Constant::new(secs(1))?.take(2))
//!     .build()?;
//! # let _ = retry;
//! # Ok::<(), ebb_retry::ConfigError>(())
//! ```
//!
//! ## In the background
//!
//! ```
//! use ebb_retry::Retry;
//! use std::io;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = Retry::new([10, 20])?
//!     .background(|cycle| async move {
//!         if cycle == 0 { Err(io::Error::other("refused")) } else { Ok("sent") }
//!     })
//!     .on_error(|cycle, err| tracing::warn!(cycle, error = %err, "webhook failed"))
//!     .spawn();
//! // … the caller goes on; later:
//! assert_eq!(handle.await??, "sent");
//! # Ok(())
//! # }
//! ```
//!
//! ## Across restarts
//!
//! ```
//! use ebb_retry::attempt_store::MemoryAttemptStore;
//! use ebb_retry::{KeyedRetryError, Retry};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ebb_retry::ConfigError> {
//! // In a component, `ebb_handler::StoredAttempts` keeps the counts in the
//! // message store, where they survive the process.
//! let retry = Retry::intervals_ms([0, 0]).attempt_store(MemoryAttemptStore::new()).build()?;
//! let fail = |_| async { Err::<(), _>(std::io::Error::other("poison")) };
//! assert!(retry.run_keyed("message-42", fail).await.is_err()); // 3 attempts
//! // Called again (say after a restart), it does not run the operation:
//! let err = retry.run_keyed("message-42", fail).await.unwrap_err();
//! assert!(matches!(err, KeyedRetryError::Exhausted { failures: 3, .. }));
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `http` | no | the *service* category: `http::HttpStatusError` (built from an `http::Response` or its parts, with `Retry-After` in seconds or as an HTTP date), `Rule::service`, `RetryBuilder::service`; depends on `http` 1 and `httpdate` |
//!
//! # Modules
//!
//! - [`schedule`]: when to retry — the schedules and [`MAX_WAIT`].
//! - `chain`: [`Chain`], an error and its sources, to walk or to print
//!   on one line.
//! - [`classify`]: whether to retry — [`Rule`], [`Decision`],
//!   [`find_in_chain`], and the transport classifier [`is_transport`].
//! - `http` (feature `http`): the service category.
//! - [`budget`]: how much to retry across calls — [`RetryBudget`], and why.
//! - [`attempt_store`]: attempts that survive restarts — the
//!   [`AttemptStore`](attempt_store::AttemptStore) trait and
//!   [`MemoryAttemptStore`](attempt_store::MemoryAttemptStore).
//! - [`event`]: telemetry — [`Event`] and the tracing fields.
//! - [`error`]: [`ConfigError`], [`RetryError`], [`KeyedRetryError`],
//!   [`StopReason`], and [`OperationError`], the errors a policy looks
//!   into.
//! - `policy`: the [`Retry`] type and its builder, [`RetryBuilder`].
//! - `attempts`: the per-call engine, the state of one call and the
//!   decision after each failure, shared by every runner; it sees each
//!   error through a view, so plain and boxed errors share it too.
//! - `run`, `blocking`: the async and blocking runners,
//!   [`Retry::run`] and [`Retry::run_blocking`], and their boxed forms
//!   [`Retry::run_boxed`] and [`Retry::run_blocking_boxed`].
//! - `keyed`: the runner of keyed calls, [`Retry::run_keyed`].
//! - `spawn`: background runs — [`Background`], [`RetryHandle`],
//!   [`BlockingRetryHandle`].

pub mod attempt_store;
pub mod budget;
pub mod classify;
pub mod error;
pub mod event;
#[cfg(feature = "http")]
pub mod http;
pub mod schedule;

mod attempts;
mod blocking;
mod chain;
mod keyed;
mod policy;
mod run;
mod spawn;

pub use budget::RetryBudget;
pub use chain::Chain;
pub use classify::{Decision, Rule, find_in_chain, is_transport};
pub use error::{ConfigError, KeyedRetryError, OperationError, RetryError, StopReason};
pub use event::Event;
pub use policy::{Retry, RetryBuilder};
pub use schedule::{
    Constant, Decorrelated, Exponential, Intervals, JitterKind, Jittered, MAX_WAIT, Schedule,
};
pub use spawn::{Background, BlockingRetryHandle, RetryHandle};

/// Re-exported so callers use the same `CancellationToken` type as this
/// crate without a version skew.
pub use tokio_util::sync::CancellationToken;
