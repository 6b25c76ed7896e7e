//! The layer a component's code lives in: typed messages, handlers and
//! their dispatch, the writer, the two idempotence patterns, and the entity
//! store.
//!
//! # The seed handler
//!
//! A `Deposit` command arrives in `account:command-ID`.
//! [`EntityStore::handle`] fetches the account with its version and the
//! commands it has applied; a command applied already (a re-delivery) is
//! logged and ignored; otherwise `Deposited`, following the command (its
//! fields copied from the command's, as Eventide's `follow` does), is
//! written to `account-ID` expecting the fetched version, and the whole is
//! retried on the expected-version conflict. Any other error is returned
//! as it is, for the process to end on.
//!
//! ```
//! use ebb_handler::{Entity, EntityStore, Error, Handler, MessageType, Projection, Received, message};
//! use ebb_message_store::MessageStore;
//!
//! #[message]
//! pub struct Deposit { pub deposit_id: String, pub account_id: String, pub amount: i64 }
//!
//! #[message]
//! pub struct Deposited { pub deposit_id: String, pub account_id: String, pub amount: i64 }
//!
//! #[derive(Debug, Clone, Default)]
//! pub struct Account { pub balance: i64 }
//!
//! impl Entity for Account {
//!     const CATEGORY: &'static str = "account";
//!     fn projection() -> Projection<Self> {
//!         Projection::new().apply(|account: &mut Account, deposited: Received<Deposited>| {
//!             account.balance += deposited.amount;
//!         })
//!     }
//! }
//!
//! pub struct Accounts<S> {
//!     pub accounts: EntityStore<Account, S>,
//! }
//!
//! impl<S: MessageStore> Handler<Deposit> for Accounts<S> {
//!     type Error = Error;
//!
//!     async fn handle(&self, deposit: Received<Deposit>) -> Result<(), Error> {
//!         let deposited = |_: &Account| Deposited::following(&deposit);
//!         self.accounts.handle(&deposit, &deposit.account_id, deposited).await?;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::BoxError> {
//! // Wiring it up: one dispatcher, any store (here the in-memory one).
//! let store = ebb_message_store::MemoryStore::new();
//! let handler = Accounts { accounts: EntityStore::new(store.clone()) };
//! let dispatcher = ebb_handler::Dispatcher::new().on(handler);
//! # let command = ebb_message_store::StreamName::new("account:command", "1")?;
//! # ebb_handler::Writer::new(store.clone()).write_initial(&command, Deposit { deposit_id: "d".into(), account_id: "1".into(), amount: 5 }).await?;
//! # for message in store.messages() { dispatcher.dispatch(&message).await?; }
//! # for message in store.messages() { dispatcher.dispatch(&message).await?; }
//! # assert_eq!(store.stream_messages("account-1").len(), 1);
//! # Ok(()) }
//! ```
//!
//! By hand, `handle` is: inside a [`Retry`] on the expected-version
//! conflict ([`retry::on_wrong_expected_version`]), fetch the entity with
//! [`EntityStore::fetch_with_sequences`], return if
//! [`Sequences::has_applied`] the command, else write the events with a
//! [`Writer`] expecting the fetched version.
//!
//! The pattern written out by hand, two instances of it on 1,000 commands
//! against PostgreSQL, is `tests/tests/seed_handler.rs` at the
//! repository's root; `EntityStore::handle` against a real conflict is in
//! `handler/tests/handle.rs`, and the account component's failure tests
//! run it on PostgreSQL under SIGKILL and failover.
//!
//! # Unit-testing a handler without a database
//!
//! [`MemoryStore`](ebb_message_store::MemoryStore) behaves as PostgreSQL
//! does and records every write it accepts, with its expected version, so
//! a test runs the handler and asserts what it wrote:
//!
//! ```
//! # use ebb_handler::{Entity, EntityStore, Handler, Projection, Received, Writer, message};
//! # use ebb_message_store::{MemoryStore, MessageStore, StreamName, ExpectedVersion};
//! # #[message] #[derive(Clone)] pub struct Deposit { pub account_id: String, pub amount: i64 }
//! # #[message] pub struct Deposited { pub account_id: String, pub amount: i64, pub sequence: i64 }
//! # #[derive(Debug, Clone, Default)] pub struct Account { pub sequence: Option<i64> }
//! # impl Entity for Account {
//! #     const CATEGORY: &'static str = "account";
//! #     fn projection() -> Projection<Self> {
//! #         Projection::new().apply(|a: &mut Account, d: Received<Deposited>| a.sequence = Some(d.sequence))
//! #     }
//! # }
//! # struct Accounts { accounts: EntityStore<Account, MemoryStore>, writer: Writer<MemoryStore> }
//! # impl Handler<Deposit> for Accounts {
//! #     type Error = ebb_handler::Error;
//! #     async fn handle(&self, deposit: Received<Deposit>) -> Result<(), ebb_handler::Error> {
//! #         let (account, version) = self.accounts.fetch(&deposit.account_id).await?;
//! #         if account.sequence.is_some_and(|s| s >= deposit.global_position()) { return Ok(()); }
//! #         let deposited = Deposited { account_id: deposit.account_id.clone(), amount: deposit.amount, sequence: deposit.global_position() };
//! #         self.writer.write(&StreamName::new("account", &deposit.account_id)?, deposited.follow(&deposit), version).await?;
//! #         Ok(())
//! #     }
//! # }
//! use ebb_handler::MessageType as _;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let handler = Accounts { accounts: EntityStore::new(store.clone()), writer: Writer::new(store.clone()) };
//!
//! // The command, as the consumer would hand it over.
//! let command = StreamName::new("account:command", "7")?;
//! Writer::new(store.clone()).write_initial(&command, Deposit { account_id: "7".into(), amount: 30 }).await?;
//! let deposit: Received<Deposit> = Received::decode(store.stream_messages("account:command-7").remove(0))?;
//! handler.handle(deposit.clone()).await?;
//! handler.handle(deposit).await?; // delivered again: ignored
//!
//! let writes: Vec<_> = store.writes().into_iter().filter(|w| w.stream_name == "account-7").collect();
//! assert_eq!(writes.len(), 1);
//! assert_eq!(writes[0].expected_version, ExpectedVersion::NoStream);
//! let deposited = Deposited::from_message_data(&writes[0].messages[0]).unwrap()?;
//! assert_eq!((deposited.amount, deposited.sequence), (30, 1));
//! assert_eq!(writes[0].messages[0].metadata.causation_message_stream_name.as_deref(), Some("account:command-7"));
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! - [`message`](mod@message): [`MessageType`], [`Received`] (a message as read, with
//!   its metadata), [`Outgoing`] and `follow`.
//! - [`dispatch`]: [`Handler`] (an `async fn`, a closure or a type) and
//!   [`Dispatcher`].
//! - [`writer`]: [`Writer`]: write, write_initial, batches, reply, and
//!   [`Writer::reserve`] for the reservation pattern.
//! - [`entity`] and [`entity_store`]: [`Entity`], [`Projection`],
//!   [`Version`], and the [`EntityStore`] with its cache and snapshots.
//! - [`retry`]: ready rules for `ebb_retry::Retry`: the expected-version
//!   conflict and transient store errors.
//! - [`attempts`]: [`StoredAttempts`], `ebb_retry`'s attempt counters kept
//!   in the message store (a stream per key), so that a handler's retries
//!   resume after a restart instead of starting over.
//! - [`error`]: [`Error`] and [`BoxError`].
//! - [`message`](macro@message): the attribute that makes a struct a
//!   message type.
//!
//! [`Retry`]: ebb_retry::Retry

pub mod attempts;
mod cache;
pub mod decide;
pub mod dispatch;
pub mod entity;
pub mod entity_store;
pub mod error;
pub mod message;
pub mod retry;
pub mod testing;
pub mod writer;

pub use attempts::StoredAttempts;
pub use decide::{Events, Handled, Sequences};
pub use dispatch::{Dispatched, Dispatcher, Handler, Handlers, message_span};
pub use entity::{Entity, Projection, Version};
pub use entity_store::{DEFAULT_CONFLICT_RETRY_MS, EntityStore, LOG_ALREADY_APPLIED};
pub use error::{BoxError, Error};
pub use message::{IntoMessageData, MessageType, Outgoing, Received};
pub use writer::{Reservation, Writer};

/// Makes a struct a message type, in one line: derives serde's
/// `Serialize` and `Deserialize` with camelCase keys on the wire (no serde
/// dependency needed), and implements [`MessageType`] with the struct's
/// name as the type name.
///
/// ```
/// use ebb_handler::{IntoMessageData, MessageType, message};
///
/// #[message]
/// #[derive(Debug, Clone, PartialEq)]
/// pub struct Deposit {
///     pub deposit_id: String,
///     pub account_id: String,
///     pub amount: i64,
/// }
///
/// assert_eq!(Deposit::TYPE_NAME, "Deposit");
/// let data = Deposit { deposit_id: "d1".into(), account_id: "a1".into(), amount: 5 }
///     .into_message_data()?;
/// assert_eq!(data.data, serde_json::json!({ "depositId": "d1", "accountId": "a1", "amount": 5 }));
///
/// // Another type name than the struct's:
/// #[message(type_name = "Withdrawn")]
/// pub struct WithdrawnV1 { pub amount: i64 }
/// assert_eq!(WithdrawnV1::TYPE_NAME, "Withdrawn");
/// # Ok::<(), ebb_handler::Error>(())
/// ```
///
/// It goes on structs with named fields (or none), without generics. Do
/// not derive `Serialize`, `Deserialize` or add `rename_all` yourself;
/// other serde attributes (`#[serde(default)]` on a field, say) work as
/// usual. It finds this crate as `ebb_handler` or through the `ebb`
/// facade.
pub use ebb_handler_macros::message;

/// Implements [`Handlers`] for a type that implements [`Handler`] for each
/// of the message types named, with one error type, so that
/// [`Dispatcher::handlers`] registers one value for all of them: what
/// Eventide's handler class with several `handle` blocks is. Generic types
/// work (the impl carries their bounds). See [`Dispatcher::handlers`] for
/// an example.
pub use ebb_handler_macros::handles;

#[doc(hidden)]
pub mod __private {
    //! What `#[message]` expands to refers to these, so that users need
    //! no serde dependency of their own.
    pub use serde;
}
