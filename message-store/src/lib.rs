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
//! - [`wakeup`]: [`Wakeup`], what [`MessageStore::arm_wakeup`] returns so
//!   that a caught-up reader wakes at the next write instead of its next
//!   poll.
//! - [`pg`]: [`PgStore`], its settings ([`PgStoreConfig`]), and
//!   [`pg::operations`], the same operations on any client or
//!   transaction.
//! - [`memory`]: [`MemoryStore`] for unit tests.
//! - [`schema`]: the embedded SQL and `install`.
//!
//! # Wake-ups
//!
//! A reader that has caught up with a category arms a [`Wakeup`]
//! ([`MessageStore::arm_wakeup`]), reads once more, and then waits for the
//! wake-up or its next poll, whichever comes first. In PostgreSQL this is
//! LISTEN/NOTIFY, arranged so that writers do not pay for it:
//!
//! - A transaction that sends a NOTIFY takes a database-wide lock at commit
//!   and holds it through its WAL flush, so if every write notified,
//!   concurrent writers' commits would be serialised. So the database
//!   notifies only for a category a reader has *armed*
//!   (`message_store.ebb_arm_category`): arming is a shared advisory lock
//!   held by the reader's listening session on a key made of the category.
//!   A trigger on `messages` tries, in its `WHEN` clause, to take that key
//!   exclusively for the writing transaction: while nobody has armed the
//!   category it can, and the write costs that one lock and nothing more;
//!   while somebody has, it cannot, and the trigger notifies the channel
//!   `ebb_message_store` with the category as payload. The listener
//!   disarms (`ebb_disarm_category`) at the first notification. Being a
//!   trigger, it fires for writes by any client (Eventide, `psql` calling
//!   `write_message`); an armed session that disconnects leaves nothing
//!   armed behind.
//! - A reader that keeps up with a busy category would arm after every
//!   message, and nearly every write would notify. So after a
//!   notification a category counts as busy for
//!   [`PgStoreConfig::busy_category_window`] (1 s): `arm_wakeup` then
//!   returns a wake-up after [`PgStoreConfig::busy_category_poll`] (2 ms)
//!   instead of arming, and each category causes a few notifying commits
//!   per window at most. The price is the reader's reads every few
//!   milliseconds while it is busy; a store's busy categories share that
//!   polling (with `n` busy, each is polled every `n` busy polls), so a
//!   component reads about once per busy poll in all.
//! - Arming waits for the writers that found the category unarmed (they
//!   hold its key until they commit), so no write can fall between "read
//!   and found nothing" and "armed" unnoticed, provided the reader reads
//!   once more after arming.
//! - [`PgStore`] listens on one dedicated connection, opened at the first
//!   `arm_wakeup` and shared by the store's clones. When that connection is
//!   lost, every waiter is woken (a notification may have been lost with
//!   it) and again once it listens anew.
//! - Against a plain Message DB install (no `ebb_arm_category`), the store
//!   says so once in the log and returns [`Wakeup::never`]: readers poll.
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
pub mod wakeup;

pub use error::Error;
pub use json_text::JsonText;
pub use memory::MemoryStore;
pub use message::{ExpectedVersion, Message, MessageData, Metadata};
pub use pg::{PgStore, PgStoreConfig};
pub use store::{
    CategoryQuery, ConsumerGroup, DEFAULT_BATCH_SIZE, MessageStore, MessageStream, StreamQuery,
};
pub use stream_name::{InvalidStreamName, StreamName, hash_64};
pub use wakeup::Wakeup;

/// Re-exported so that users name the same versions ebb was built with.
pub use deadpool_postgres;
/// Re-exported so that users name the same versions ebb was built with.
pub use tokio_postgres;
