//! ebb: event-sourced, message-driven components on a Message DB-compatible
//! PostgreSQL message store, in the style of Eventide.
//!
//! One dependency, one import: [`prelude`] brings what a component's
//! code uses, and this facade re-exports ebb's crates, at versions that
//! fit together:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`message_store`](mod@message_store) | `ebb-message-store` | stream names, message data, [`PgStore`], [`MemoryStore`], the schema |
//! | [`retry`](mod@retry) | `ebb-retry` | [`Retry`] with explicit intervals, schedules, budgets |
//! | [`handler`](mod@handler) | `ebb-handler` | typed messages ([`#[message]`](macro@message)), handlers and dispatch, the writer, the entity store |
//! | [`consumer`](mod@consumer) | `ebb-consumer` | the consumer with Eventide's positions, and the component [`Host`] (signals, tasks, systemd) |
//! | [`logging`][logging] | `ebb-consumer` | the usual log subscriber in one call (feature `logging`, on by default) |
//! | [`prelude`] | | everything above that a component names, for `use ebb::prelude::*;` |
//!
//! A handler, through the prelude alone:
//!
//! ```
//! use ebb::prelude::*;
//!
//! #[message]
//! pub struct Deposit { pub account_id: String, pub amount: i64 }
//!
//! #[message]
//! pub struct Deposited { pub account_id: String, pub amount: i64 }
//!
//! pub struct Accounts<S> { writer: Writer<S>, retry: Retry }
//!
//! impl<S: MessageStore + 'static> Handler<Deposit> for Accounts<S> {
//!     type Error = HandlerError;
//!
//!     async fn handle(&self, deposit: Received<Deposit>) -> Result<(), HandlerError> {
//!         let stream = StreamName::new("account", &deposit.account_id)?;
//!         // An expected-version conflict is retried; `?` returns the last error.
//!         self.retry
//!             .run(|_cycle| async {
//!                 let deposited = Deposited { account_id: deposit.account_id.clone(), amount: deposit.amount };
//!                 self.writer.write(&stream, deposited.follow(&deposit), ExpectedVersion::Any).await
//!             })
//!             .await?;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let store = MemoryStore::new();
//! let accounts = Accounts {
//!     writer: Writer::new(store.clone()),
//!     retry: Retry::with_rule_ms([10, 100], on_wrong_expected_version()),
//! };
//! let dispatcher = Dispatcher::new().on(accounts);
//!
//! let command = StreamName::new("account:command", "1")?;
//! let sent = Deposit { account_id: "1".into(), amount: 5 };
//! Writer::new(store.clone()).write(&command, sent, ExpectedVersion::NoStream).await?;
//! for message in store.messages() {
//!     dispatcher.dispatch(&message).await?;
//! }
//! assert_eq!(store.stream_messages("account-1").len(), 1);
//! # Ok(()) }
//! ```
//!
//! and the component's `main`, its settings from the environment
//! (`DATABASE_URL`, `CONSUMER_IDENTIFIER`, `RUST_LOG`, ...: see
//! [`PgStore::from_env`], [`ConsumerConfig::from_env`] and [`logging`][logging]):
//!
//! ```no_run
//! # use ebb::prelude::*;
//! # #[message] pub struct Deposit { pub amount: i64 }
//! # async fn deposit(_: Received<Deposit>) -> Result<(), BoxError> { Ok(()) }
//! use std::process::ExitCode;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> ExitCode {
//!     # #[cfg(feature = "logging")]
//!     logging::init();
//!     match component() {
//!         // SIGTERM: exit 0. An error: reported (on stderr at least), exit 1.
//!         Ok(host) => host.run_to_exit().await,
//!         Err(err) => {
//!             tracing::error!(error = %ebb::retry::Chain::new(&*err), "cannot start");
//!             ExitCode::from(2)
//!         }
//!     }
//! }
//!
//! fn component() -> Result<Host, BoxError> {
//!     let store = PgStore::from_env()?;
//!     let config = ConsumerConfig::from_env("account:command")?;
//!     let consumer = Consumer::new(config, store)?.handler(Dispatcher::new().on(deposit));
//!     Ok(Host::new().consumer(consumer))
//! }
//! ```
//!
//! # Logging
//!
//! A [`Host`] that ends with an error always says so: as a tracing event,
//! and on stderr when no subscriber takes that event. [`logging::init`][init]
//! installs the usual subscriber: the `RUST_LOG` filter (default `info`),
//! stderr, colour only when stderr is a terminal, JSON lines when
//! `EBB_LOG_FORMAT=json`. It is the default feature `logging`; a process
//! with a subscriber of its own can leave it out with
//! `default-features = false`, and with it `tracing-subscriber`.
//!
//! # The command-line tool
//!
//! The `ebb` command (`ebb db install`, `ebb db version`, `ebb demo`) is
//! its own crate, `ebb-cli` (`cargo install ebb-cli`), as `sqlx-cli` is to
//! `sqlx`. This crate is the library alone: depending on it brings no
//! argument parser or cluster starter.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `logging` | on | `logging::init()`, the usual log subscriber in one call, with `tracing-subscriber` |
//! | `systemd` | off | the component host speaks systemd's readiness protocol (`Type=notify`, watchdog pings); Linux only, elsewhere it adds nothing |
//! | `prometheus` | off | `Host::metrics_endpoint`: the consumers' metrics as Prometheus text |
//!
// Links to the `logging` module, which is there only with its feature.
#![cfg_attr(feature = "logging", doc = "[logging]: mod@logging")]
#![cfg_attr(feature = "logging", doc = "[init]: logging::init")]
#![cfg_attr(not(feature = "logging"), doc = "[logging]: #features")]
#![cfg_attr(not(feature = "logging"), doc = "[init]: #features")]

// Inline: each crate's documentation is then part of this crate's, as
// `ebb::retry` and the rest, linked and complete in a user's `cargo doc`
// (a plain re-export is one `pub use` line).
#[doc(inline)]
pub use ebb_consumer as consumer;
#[doc(inline)]
pub use ebb_handler as handler;
#[doc(inline)]
pub use ebb_retry as retry;

/// A Message DB-compatible message store: stream names, message data,
/// the [`MessageStore`] trait, and the store itself, in PostgreSQL
/// ([`PgStore`]) or in memory ([`MemoryStore`]). The crate
/// `ebb-message-store`, whose guide (the schema, Message DB
/// compatibility, connection settings) is its crate documentation,
/// [`ebb_message_store`].
pub mod message_store {
    // The crate's items are inlined by name below, not the crate as a
    // whole: that would copy in the driver's and the pool's crates, which
    // it re-exports, and whose intra-doc links do not resolve here. They
    // stay links to their own documentation. The glob keeps whatever the
    // crate adds at the same path here until it is named.
    #[allow(
        unused_imports,
        reason = "every item is named below today; the glob is for those the crate adds"
    )]
    #[doc(no_inline)]
    pub use ebb_message_store::*;
    #[doc(inline)]
    pub use ebb_message_store::{
        CategoryQuery, ConsumerGroup, DEFAULT_BATCH_SIZE, Error, ExpectedVersion,
        InvalidStreamName, JsonText, MemoryStore, Message, MessageData, MessageStore,
        MessageStream, Metadata, PgStore, PgStoreConfig, StreamName, StreamQuery, Wakeup, error,
        hash_64, json_text, memory, message, metrics, pg, schema, store, stream_name, wakeup,
    };
    #[doc(no_inline)]
    pub use ebb_message_store::{deadpool_postgres, tokio_postgres};
}

#[cfg(feature = "logging")]
#[doc(inline)]
pub use ebb_consumer::logging;
pub use ebb_consumer::{Consumer, ConsumerConfig, Control, Host, Task};
/// The handler crate's error ([`ebb_handler::Error`]), named so beside
/// the other crates' errors.
pub use ebb_handler::Error as HandlerError;
pub use ebb_handler::retry::on_wrong_expected_version;
pub use ebb_handler::{
    BoxError, Dispatcher, Entity, EntityStore, Events, Handled, Handler, Handlers, IntoMessageData,
    MessageType, Projection, Received, Version, Writer, handles, message,
};
pub use ebb_retry::{Retry, RetryError};

pub use ebb_message_store::{
    CategoryQuery, ExpectedVersion, JsonText, MemoryStore, Message, MessageData, MessageStore,
    Metadata, PgStore, StreamName, StreamQuery,
};

/// What a component names, for one import: `use ebb::prelude::*;`.
///
/// The store's types and trait, the `#[message]` and `#[handles]`
/// attributes and the handler's types and traits, the retry policy and its conflict rule,
/// the consumer, its settings and the host, and [`logging`][logging] (feature
/// `logging`). The crates' errors are not all here, since several are
/// named `Error`: the handler's, which a handler returns, is
/// [`HandlerError`]; the others are
/// `ebb::message_store::Error`, `ebb::consumer::Error` and
/// `ebb::retry::ConfigError`.
///
/// ```
/// use ebb::prelude::*;
///
/// #[message]
/// pub struct Deposit { pub account_id: String, pub amount: i64 }
///
/// async fn deposit(deposit: Received<Deposit>) -> Result<(), BoxError> {
///     tracing::info!(amount = deposit.amount, "deposit");
///     Ok(())
/// }
///
/// let dispatcher = Dispatcher::new().on(deposit);
/// assert!(dispatcher.handles("Deposit"));
/// let retry: Retry = Retry::with_rule_ms([10, 100], on_wrong_expected_version());
/// # let _ = retry;
///
/// // One type handling several commands, as an Eventide handler class does.
/// #[message]
/// pub struct Withdraw { pub account_id: String, pub amount: i64 }
///
/// #[handles(Deposit, Withdraw)]
/// struct Accounts;
///
/// impl Handler<Deposit> for Accounts {
///     type Error = HandlerError;
///     async fn handle(&self, _: Received<Deposit>) -> Result<(), HandlerError> { Ok(()) }
/// }
/// impl Handler<Withdraw> for Accounts {
///     type Error = HandlerError;
///     async fn handle(&self, _: Received<Withdraw>) -> Result<(), HandlerError> { Ok(()) }
/// }
///
/// let dispatcher = Dispatcher::new().handlers(Accounts);
/// assert_eq!(dispatcher.type_names(), ["Deposit", "Withdraw"]);
/// ```
#[cfg_attr(feature = "logging", doc = "[logging]: mod@crate::logging")]
#[cfg_attr(not(feature = "logging"), doc = "[logging]: crate#features")]
pub mod prelude {
    #[cfg(feature = "logging")]
    #[doc(no_inline)]
    pub use crate::logging;
    #[doc(no_inline)]
    pub use crate::{
        BoxError, CategoryQuery, Consumer, ConsumerConfig, Control, Dispatcher, Entity,
        EntityStore, Events, ExpectedVersion, Handled, Handler, HandlerError, Handlers, Host,
        IntoMessageData, MemoryStore, Message, MessageData, MessageStore, MessageType, PgStore,
        Projection, Received, Retry, RetryError, StreamName, StreamQuery, Task, Version, Writer,
        handles, message, on_wrong_expected_version,
    };
}

/// The README's examples, compiled as doctests so that they keep working
/// when copied.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
