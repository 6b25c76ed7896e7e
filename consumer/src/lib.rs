//! The consumer and the component host: Eventide's consumer, with its
//! position stream, and a host that runs consumers and tasks in one
//! process under a supervisor.
//!
//! # Modules
//!
//! - [`config`]: [`ConsumerConfig`], with a documented default on every
//!   field.
//! - [`consumer`]: [`Consumer`], its loop and its error hook.
//! - [`position`]: [`PositionStore`], Eventide's `Recorded {position}`
//!   messages in `CATEGORY:position-IDENTIFIER`.
//! - [`poison`]: poison messages: failure records in
//!   `CATEGORY:failures-IDENTIFIER`, parking in
//!   `CATEGORY:parked-IDENTIFIER` ([`Failed`], [`Parked`]).
//! - [`control`]: [`Control`], how a host stops, pauses and resumes its
//!   consumers.
//! - [`task`]: [`Task`], one-shot and interval tasks with their retry
//!   policies.
//! - [`host`]: [`Host`], which runs consumers and tasks with signals,
//!   shutdown hooks and systemd's readiness protocol ([`systemd`]).
//! - [`metrics`]: what consumers measure, and the host's Prometheus
//!   endpoint.
//! - [`error`]: the crate's [`Error`].

pub mod config;
pub mod consumer;
pub mod control;
pub mod error;
pub mod host;
pub mod metrics;
pub mod poison;
pub mod position;
pub mod systemd;
pub mod task;

pub use config::ConsumerConfig;
pub use consumer::{Consumer, OnError};
pub use control::{Control, State};
pub use error::Error;
pub use host::Host;
pub use poison::{Failed, Parked};
pub use position::PositionStore;
pub use task::Task;
