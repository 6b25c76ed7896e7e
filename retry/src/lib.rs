//! Retry an operation on failure: Eventide's `Retry`, exactly, with
//! schedules, classifiers and budgets around it.
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
//!   [`max_retries`](Rule::max_retries);
//! - *how much overall*: a [`time_limit`](RetryBuilder::time_limit), a
//!   [`CancellationToken`] that ends
//!   a wait at once, and a [`RetryBudget`] shared across calls against
//!   retry storms;
//! - *what happened*: tracing events and an [`Event`] hook.
//!
//! Bad configuration is a [`ConfigError`] from the constructor, never a
//! panic later.
//!
//! # Modules
//!
//! - [`schedule`]: when to retry — the schedules and [`MAX_WAIT`].
//! - [`classify`]: whether to retry — [`Rule`], [`Decision`], [`find_in_chain`].
//! - [`budget`]: how much to retry across calls — [`RetryBudget`], and why.
//! - [`event`]: telemetry — [`Event`] and the tracing fields.
//! - [`error`]: [`ConfigError`], [`RetryError`], [`StopReason`].
//! - `policy`: the [`Retry`] type and its builder, [`RetryBuilder`].
//! - `attempts`: the per-call engine, the state of one call and the
//!   decision after each failure, shared by both runners; it sees each
//!   error through a view, so plain and boxed errors share it too.
//! - `run`, `blocking`: the async and blocking runners,
//!   [`Retry::run`] and [`Retry::run_blocking`], and their boxed forms
//!   [`Retry::run_boxed`] and [`Retry::run_blocking_boxed`].

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
mod keyed;
mod policy;
mod run;
mod spawn;

pub use budget::RetryBudget;
pub use classify::{Decision, Rule, find_in_chain, is_transport};
pub use error::{ConfigError, KeyedRetryError, RetryError, StopReason};
pub use event::Event;
pub use policy::{Retry, RetryBuilder};
pub use schedule::{
    Constant, Decorrelated, Exponential, Intervals, JitterKind, Jittered, MAX_WAIT, Schedule,
};
pub use spawn::{Background, BlockingRetryHandle, RetryHandle};

/// Re-exported so callers use the same `CancellationToken` type as this
/// crate without a version skew.
pub use tokio_util::sync::CancellationToken;
