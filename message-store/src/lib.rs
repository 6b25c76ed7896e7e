//! A Message DB-compatible message store: stream names, message data, and
//! the store itself, in PostgreSQL or in memory.
//!
//! ebb components and Eventide (Ruby) components can share one database:
//! the schema under `sql/` implements Message DB 1.3's interface (table,
//! functions, error texts), and [`PgStore`] also works, unchanged, against a
//! database installed by Message DB's own scripts.
//!
//! ```no_run
//! # async fn example() -> Result<(), ebb_message_store::Error> {
//! use ebb_message_store::{CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, StreamName};
//! use futures_util::TryStreamExt;
//! use serde_json::json;
//!
//! let store = PgStore::from_env()?; // DATABASE_URL or PGHOST, PGUSER, ...
//!
//! let stream = StreamName::new("account", "123")?;
//! let opened = MessageData::new("Opened", json!({ "accountId": "123" }));
//! store.write(&stream, &opened, ExpectedVersion::NoStream).await?;
//!
//! let mut messages = store.read_category("account", CategoryQuery::new());
//! while let Some(message) = messages.try_next().await? {
//!     println!("{} {} {}", message.global_position, message.stream_name, message.type_name);
//! }
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! - [`stream_name`]: parse and build `category:types-id+id` names; the
//!   free functions agree with the SQL ones.
//! - [`message`]: [`MessageData`] to write, [`Message`] read back,
//!   [`Metadata`] with `follow`, [`ExpectedVersion`].
//! - [`json_text`]: [`JsonText`], a read message's data kept as text until
//!   it is decoded, once, into the type it is.
//! - [`store`]: the [`MessageStore`] trait and the read options.
//! - [`pg`]: [`PgStore`], its settings ([`PgStoreConfig`]), and
//!   [`pg::operations`], the same operations on any client or
//!   transaction.
//! - [`memory`]: [`MemoryStore`] for unit tests.
//! - [`schema`]: the embedded SQL and `install`.
//!
//! # Errors
//!
//! One [`Error`] enum. Expected-version conflicts are
//! [`Error::WrongExpectedVersion`] (`is_wrong_expected_version()`); a
//! server that could not be reached or did not answer in time answers
//! `is_transient()`. No call waits forever: see [`PgStoreConfig`] for the
//! bounds and their defaults.

pub mod error;
pub mod json_text;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod pg;
pub mod schema;
pub mod store;
pub mod stream_name;

pub use error::Error;
pub use json_text::JsonText;
pub use memory::MemoryStore;
pub use message::{ExpectedVersion, Message, MessageData, Metadata};
pub use pg::{PgStore, PgStoreConfig};
pub use store::{
    CategoryQuery, ConsumerGroup, DEFAULT_BATCH_SIZE, MessageStore, MessageStream, StreamQuery,
};
pub use stream_name::{InvalidStreamName, StreamName, hash_64};

/// Re-exported so that users name the same versions ebb was built with.
pub use deadpool_postgres;
/// Re-exported so that users name the same versions ebb was built with.
pub use tokio_postgres;
