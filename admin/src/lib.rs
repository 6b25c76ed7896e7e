//! The operators' view of an ebb message store, as a typed API: what the
//! `ebb` command line's operator commands print, and what the dashboard
//! shows, for them and for any program that wants the same view (a
//! health check, an alert, a report).
//!
//! It reads a Message DB-compatible store ([`PgStore`]) and the streams
//! ebb's consumers keep of their own (as [`ebb_consumer`] names and
//! writes them):
//!
//! - [`consumers`]: every consumer that has recorded a position, its
//!   category's head, its lag (counted when small, the planner's estimate
//!   when large), its failures and the messages it has parked now
//!   ([`ConsumerStatus`]);
//! - [`stats`]: message counts by category and type, by type, or by
//!   stream, counted on a small store and estimated from a sample on a
//!   large one ([`Stats`]);
//! - [`failures`]: the handler failures that stopped a category's
//!   consumers ([`FailureRecord`]);
//! - [`parked`] and [`parked_at`]: the messages they parked and that are
//!   still parked, with [`select`], [`request`] and [`request_all`] to ask
//!   for a replay or a discard of one of them or of a selection, and
//!   [`parked_categories`] for the categories whose consumers have
//!   parked any;
//! - [`trace`]: the causation tree of what followed a message, or of the
//!   messages correlated to a stream ([`Trace`]);
//! - [`Reader`]: a stream's or a category's messages, batch by batch;
//! - [`newest`]: a stream's or a category's newest messages, newest
//!   first, a page at a time;
//! - [`search_streams`]: streams and categories found by name, with a
//!   `*` wildcard (`account-*`), a page at a time ([`StreamSearch`]);
//! - [`activity`]: the messages written in the last minutes, by category,
//!   as write rates ([`Activity`]);
//! - [`oldest_unhandled`]: how long each consumer has left its oldest
//!   message waiting;
//! - [`ConsumerName`]: a consumer as its own streams name it
//!   (`account:position-w1`), both ways.
//!
//! Each query is written to stay fast on a large store (millions of
//! messages): counts that would read every message are estimated and say
//! so (`estimated`), unless asked to be exact; the figures are in the
//! repository's `BENCHMARKS.md`, "Operator commands on a large store".
//! Every query reads, except [`request`] and [`request_all`], which write
//! one replay or discard request per message to the parked stream of the
//! consumer that parked it, as [`ebb_consumer::request_replay`] does.
//!
//! The results serialize with serde as `ebb ... --json` prints them, one
//! object per line: fields in camelCase, times as RFC 3339, UTC, to the
//! microsecond.
//!
//! Errors are one [`Error`]: [`Error::InvalidInput`] for input that names
//! nothing (a malformed consumer or stream name, found before the store is
//! touched), [`Error::NotFound`], and the store's, a statement's or a
//! consumer's failure, each saying what was being done.
//!
//! ```no_run
//! use ebb_message_store::{PgStore, PgStoreConfig};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // The database DATABASE_URL (or the PG* variables) names.
//! let store = PgStore::new(PgStoreConfig::from_env()?)?;
//! for consumer in ebb_admin::consumers(&store, Some("account"), false).await? {
//!     let lag = if consumer.estimated { "about" } else { "exactly" };
//!     println!(
//!         "{} {}: {lag} {} behind, {} parked",
//!         consumer.category,
//!         consumer.identifier.as_deref().unwrap_or("-"),
//!         consumer.lag,
//!         consumer.parked,
//!     );
//! }
//! let stats = ebb_admin::stats(&store, ebb_admin::By::Category, false).await?;
//! println!("{} messages", stats.total);
//! # Ok(())
//! # }
//! ```
//!
//! [`PgStore`]: ebb_message_store::PgStore

mod activity;
mod consumer_streams;
mod consumers;
mod error;
mod failures;
mod newest;
mod parked;
mod parking;
mod read;
mod search;
mod stats;
mod time;
mod trace;
mod waiting;

pub use activity::{ACTIVITY_ROWS, Activity, CategoryActivity, activity};
pub use consumer_streams::{ConsumerName, FAILURES, PARKED, POSITION};
pub use consumers::{ConsumerStatus, EXACT_LAG_UP_TO, consumers};
pub use error::{BoxError, Error};
pub use failures::{FailureRecord, failures};
pub use newest::newest;
pub use parked::{
    ParkedSummary, RequestOutcome, Select, Selection, parked, parked_at, request, request_all,
    request_verb, requested, select,
};
pub use parking::parked_categories;
pub use read::Reader;
pub use search::{FoundStream, SEARCH_PROBES, StreamSearch, search_streams};
pub use stats::{
    By, EXACT_CATEGORY_UP_TO, SAMPLE_ROWS, STREAM_MIN_HITS, STREAMS_LISTED, Stats, StatsLine, stats,
};
pub use trace::{Origin, Trace, TraceLine, trace, trace_within};
pub use waiting::oldest_unhandled;
