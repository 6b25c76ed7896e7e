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
