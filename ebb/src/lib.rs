//! ebb: event-sourced, message-driven components on a Message DB-compatible
//! PostgreSQL message store, in the style of Eventide.
//!
//! This facade re-exports ebb's crates so that one dependency brings them
//! all, at versions that fit together:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`message_store`] | `ebb-message-store` | stream names, message data, [`PgStore`], [`MemoryStore`], the schema |
//! | [`retry`] | `ebb-retry` | `Retry` with explicit intervals, schedules, budgets |
//! | [`handler`] | `ebb-handler` | typed messages (`#[message]`), handlers and dispatch, the writer, the entity store |
//! | [`consumer`] | `ebb-consumer` | the consumer with Eventide's positions, and the component host (signals, tasks, systemd) |
//!
//! ```no_run
//! # async fn example() -> Result<(), ebb::message_store::Error> {
//! use ebb::{ExpectedVersion, MessageData, MessageStore, PgStore, StreamName};
//! use serde_json::json;
//!
//! let store = PgStore::from_env()?;
//! let stream = StreamName::new("account", "123")?;
//! store.write(&stream, &MessageData::new("Opened", json!({})), ExpectedVersion::NoStream).await?;
//! # Ok(()) }
//! ```
//!
//! A message type and a handler, through the facade alone:
//!
//! ```
//! use ebb::{Dispatcher, Received, message};
//!
//! #[message]
//! pub struct Deposit { pub account_id: String, pub amount: i64 }
//!
//! let dispatcher = Dispatcher::new().on(|deposit: Received<Deposit>| async move {
//!     tracing::info!(amount = deposit.amount, "deposit");
//!     Ok::<_, ebb::handler::BoxError>(())
//! });
//! assert!(dispatcher.handles("Deposit"));
//! ```
//!
//! # The command-line tool
//!
//! The `ebb` command (`ebb db install`, `ebb db version`, `ebb demo`) is
//! its own crate, `ebb-cli` (`cargo install ebb-cli`), as `sqlx-cli` is to
//! `sqlx`. This crate is the library alone: depending on it brings no
//! argument parser, log subscriber or cluster starter.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `systemd` | off | the component host speaks systemd's readiness protocol (`Type=notify`, watchdog pings); Linux only, elsewhere it adds nothing |
//! | `prometheus` | off | `Host::metrics_endpoint`: the consumers' metrics as Prometheus text |

pub use ebb_consumer as consumer;
pub use ebb_handler as handler;
pub use ebb_message_store as message_store;
pub use ebb_retry as retry;

pub use ebb_consumer::{Consumer, ConsumerConfig, Host, Task};
pub use ebb_handler::{
    Dispatcher, Entity, EntityStore, Handler, MessageType, Projection, Received, Version, Writer,
    message,
};
pub use ebb_retry::Retry;

pub use ebb_message_store::{
    CategoryQuery, ExpectedVersion, JsonText, MemoryStore, Message, MessageData, MessageStore,
    Metadata, PgStore, StreamName, StreamQuery,
};

/// The README's examples, compiled as doctests so that they keep working
/// when copied.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
