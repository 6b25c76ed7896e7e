//! The layer a component's code lives in: typed messages, handlers and
//! their dispatch, the writer, the two idempotence patterns, and the entity
//! store.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::BoxError> {
//! use ebb_handler::{Dispatcher, MessageType, Received, Writer};
//! use ebb_message_store::{MemoryStore, MessageStore, StreamName};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Deposit { account_id: String, amount: i64 }
//! impl MessageType for Deposit { const TYPE_NAME: &'static str = "Deposit"; }
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Deposited { account_id: String, amount: i64, sequence: i64 }
//! impl MessageType for Deposited { const TYPE_NAME: &'static str = "Deposited"; }
//!
//! let store = MemoryStore::new();
//! let writer = Writer::new(store.clone());
//! let dispatcher = Dispatcher::new().on(move |deposit: Received<Deposit>| {
//!     let writer = writer.clone();
//!     async move {
//!         let stream = StreamName::new("account", &deposit.account_id)?;
//!         let deposited = Deposited {
//!             account_id: deposit.account_id.clone(),
//!             amount: deposit.amount,
//!             sequence: deposit.global_position(),
//!         };
//!         writer.write(&stream, deposited.follow(&deposit), ebb_message_store::ExpectedVersion::Any).await?;
//!         Ok::<_, ebb_handler::BoxError>(())
//!     }
//! });
//!
//! let command = StreamName::new("account:command", "1")?;
//! Writer::new(store.clone()).write_initial(&command, Deposit { account_id: "1".into(), amount: 5 }).await?;
//! for message in store.messages() {
//!     dispatcher.dispatch(&message).await?;
//! }
//! assert_eq!(store.stream_messages("account-1")[0].type_name, "Deposited");
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! - [`message`]: [`MessageType`], [`Received`] (a message as read, with
//!   its metadata), [`Outgoing`] and `follow`.
//! - [`dispatch`]: [`Handler`] (an `async fn`, a closure or a type) and
//!   [`Dispatcher`].
//! - [`writer`]: [`Writer`]: write, write_initial, batches, reply, and
//!   [`Writer::reserve`] for the reservation pattern.
//! - [`entity`] and [`entity_store`]: [`Entity`], [`Projection`],
//!   [`Version`], and the [`EntityStore`] with its cache and snapshots.
//! - [`retry`]: ready rules for `ebb_retry::Retry`: the expected-version
//!   conflict and transient store errors.
//! - [`error`]: [`Error`] and [`BoxError`].

mod cache;
pub mod dispatch;
pub mod entity;
pub mod entity_store;
pub mod error;
pub mod message;
pub mod retry;
pub mod writer;

pub use dispatch::{Dispatched, Dispatcher, Handler};
pub use entity::{Entity, Projection, Version};
pub use entity_store::EntityStore;
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

#[doc(hidden)]
pub mod __private {
    //! What `#[message]` expands to refers to these, so that users need
    //! no serde dependency of their own.
    pub use serde;
}
