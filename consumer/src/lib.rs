//! Eventide's consumer, with its position stream, and a host that runs
//! consumers and tasks in one process under a supervisor.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! use ebb_consumer::{Consumer, ConsumerConfig, Host};
//! use ebb_handler::{BoxError, Dispatcher, Received, message};
//! use ebb_message_store::PgStore;
//!
//! #[message]
//! struct Deposit { account_id: String, amount: i64 }
//!
//! async fn deposit(deposit: Received<Deposit>) -> Result<(), BoxError> {
//!     tracing::info!(account = %deposit.account_id, amount = deposit.amount, "deposit");
//!     Ok(())
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> ExitCode {
//!     let store = match PgStore::from_env() { // DATABASE_URL or PG*
//!         Ok(store) => store,
//!         Err(err) => { eprintln!("{err}"); return ExitCode::FAILURE; }
//!     };
//!     // CONSUMER_IDENTIFIER, CONSUMER_CONCURRENCY, ...: see `from_env`.
//!     let config = ConsumerConfig::from_env("account:command").map(|config| ConsumerConfig {
//!         handler_retry_ms: vec![100, 1_000],
//!         ..config
//!     });
//!     let consumer = match config.and_then(|config| Consumer::new(config, store)) {
//!         Ok(consumer) => consumer.handler(Dispatcher::new().on(deposit)),
//!         Err(err) => { eprintln!("{err}"); return ExitCode::FAILURE; }
//!     };
//!     // SIGTERM: finish the message in hand, record the position, exit 0.
//!     // An unexpected error: exit 1, for systemd to restart the process;
//!     // the host says why, on stderr if nothing else logs it.
//!     Host::new().consumer(consumer).run_to_exit().await
//! }
//! ```
//!
//! # What is here
//!
//! - [`ConsumerConfig`]: what a consumer reads and how, plain data with a
//!   documented default on every field, or read from the environment
//!   (`CONSUMER_IDENTIFIER` and the rest) by
//!   [`ConsumerConfig::from_env`].
//! - [`Consumer`]: reads one category from its recorded position and gives
//!   every message to its handlers ([`ebb_handler::Dispatcher`]), in
//!   order, or several streams' at once ([`concurrency`]); wakes on a
//!   write instead of waiting out its poll; retries what it expects to
//!   fail through `ebb_retry`; and decides after a handler's error with
//!   [`OnError`].
//! - [`PositionStore`]: Eventide's `Recorded {position}` messages in
//!   `CATEGORY:position-IDENTIFIER`, which Ruby Eventide consumers read
//!   too.
//! - [Poison messages](#poison-messages): [`Failed`] and [`Parked`], and
//!   parked messages [replayed or discarded](#replaying-and-discarding-parked-messages)
//!   on request.
//! - [`Host`]: runs consumers and [`Task`]s with signals, shutdown hooks,
//!   systemd's readiness protocol and a Prometheus endpoint; [`Control`]
//!   is how it stops, pauses and resumes them.
//! - [`Error`]: everything that stops a consumer or a host.
//! - `logging` (feature `logging`): `logging::init()`, the usual log
//!   subscriber in one call.
//!
//! # Poison messages
//!
//! In Eventide's model an unexpected error ends the process and its
//! supervisor restarts it at the message; a message that always fails then
//! ends the process at every start, forever. A consumer therefore:
//!
//! - records every handler failure that stops it as a [`Failed`] message
//!   in its failures stream ([`ConsumerConfig::failures_stream_name`],
//!   `CATEGORY:failures-IDENTIFIER`), written before the consumer returns
//!   the error;
//! - with [`park_after_failures`](ConsumerConfig::park_after_failures) set
//!   to K, counts those records at its start and parks a message that has
//!   already ended the process K times instead of handling it;
//! - tries a failed handler again at the
//!   [`handler_retry_ms`](ConsumerConfig::handler_retry_ms) waits, and
//!   with [`park_after_retries`](ConsumerConfig::park_after_retries) parks
//!   a message whose retries are spent instead of stopping.
//!
//! Parking writes a [`Parked`] message, the original message whole and
//! the error, to the parked stream
//! ([`ConsumerConfig::parked_stream_name`],
//! `CATEGORY:parked-IDENTIFIER`); the message then counts as handled and
//! consumption goes on. A message read again after a restart is not
//! parked twice. [`read_parked`] lists every record ever written;
//! [`read_parked_messages`] what is parked now.
//!
//! ## Replaying and discarding parked messages
//!
//! A parked message can be replayed to the consumer that parked it, or
//! discarded, by a request written to that consumer's parked stream: with
//! [`request_replay`] and [`request_discard`], with `ebb parked replay` and
//! `ebb parked discard`, or by any Message DB client (`write_message`
//! with the type and data below). A running consumer takes a request up
//! within its poll interval, or at once when woken for its parked
//! stream's category; a stopped one at its next start. Requests are
//! carried out in the order written, beside the consumption (positions
//! are not touched), and each outcome is written to the parked stream.
//!
//! - A **replay** delivers the message to the handlers as it was: read
//!   again from its stream, with its id, stream, position, global
//!   position, type, data, metadata and time. The handlers' idempotence
//!   guards therefore see a re-delivery, never a new command; a sequence
//!   guard ignores it if its entity has applied a later message of the
//!   same category since. The handler retries and the error hook apply.
//!   Handled, the outcome is `Replayed`; failed again, the message is
//!   parked again by a new `Parked` record naming the request, its
//!   failures counted anew (0), and can be asked for again. A failure that
//!   says the store is out of reach stops the consumer without an
//!   outcome: the request is carried out at the next start.
//! - A **discard** writes `Discarded`; the message is not handled.
//! - A request applies to the message as last parked before it, if
//!   nothing was asked of that parking yet: a request written twice acts
//!   once, and one for a message not parked is passed over.
//! - Both consumers of a hot-failover pair carry a request out (their
//!   handlers' idempotence makes its effect happen once); the outcome's id
//!   is made from the request's, so the store takes one outcome.
//!
//! The records, camelCase JSON in the parked stream:
//!
//! | type | written by | data |
//! |---|---|---|
//! | [`Parked`] | the consumer | `id`, `streamName`, `position`, `globalPosition`, `type`, `data`, `metadata`, `error`, `attempts`, `failures`, and `replayPosition` when parked again by a replay |
//! | [`Replay`] | anyone | `globalPosition` (the parked message's), optional `requestedBy` |
//! | [`Discard`] | anyone | `globalPosition`, optional `requestedBy` |
//! | [`Replayed`] | the consumer | `globalPosition`, `requestPosition` (the request's position in the parked stream) |
//! | [`Discarded`] | the consumer | `globalPosition`, `requestPosition` |
//!
//! ```text
//! SELECT write_message(gen_random_uuid()::varchar, 'account:command+parked-worker1',
//!                      'Replay', '{"globalPosition": 1234}');
//! ```
//!
//! # Metrics
//!
//! Consumers measure through the [`metrics`](::metrics) facade: nothing
//! is kept unless the process installs a recorder. The host installs
//! Prometheus's when given an endpoint (`Host::metrics_endpoint`,
//! feature `prometheus`); a process may install any other recorder of the
//! facade instead. Every consumer's metrics carry the labels `category`
//! and `consumer` (its identifier; empty without one):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `ebb_consumer_messages_handled_total` | counter | messages handled (by every handler) |
//! | `ebb_consumer_handler_errors_total` | counter | handler errors, whatever followed them |
//! | `ebb_consumer_handler_retries_total` | counter | messages handled again after an error, in the process |
//! | `ebb_consumer_messages_parked_total` | counter | poison messages parked |
//! | `ebb_consumer_position` | gauge | global position of the last message handled (of the lowest unfinished one's predecessor, with concurrency) |
//! | `ebb_consumer_lag` | gauge | the category's last global position minus the consumer's, sampled at most every [`LAG_SAMPLE_INTERVAL`] (with a consumer group: of the whole category) |
//! | `ebb_consumer_handler_seconds` | histogram | one message's handling, every handler |
//! | `ebb_store_category_read_seconds` | histogram | one batch read (label `category` only; see `ebb_message_store::metrics`) |
//!
//! # Tracing
//!
//! A consumer's events are inside an `info` span named `consumer` (fields
//! `category`, and `consumer` when it has an identifier), and each message is handled inside an
//! `info` span named `message` (fields `stream`, `position`,
//! `global_position`, `type` and `id`), so that every line a handler logs
//! says which message it was about.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `systemd` | off | the host speaks systemd's readiness protocol (`Type=notify`, watchdog), and `Notifier`, `watchdog_interval` and `run_watchdog` speak it for any process. Linux only; elsewhere it adds nothing |
//! | `prometheus` | off | `Host::metrics_endpoint`, a Prometheus endpoint with `metrics-exporter-prometheus` |
//! | `logging` | off | `logging::init()`, the usual log subscriber in one call: `RUST_LOG`, stderr, colour only on a terminal, JSON lines with `EBB_LOG_FORMAT=json`; with `tracing-subscriber` |
//!
//! [`concurrency`]: ConsumerConfig::concurrency

mod config;
mod consumer;
mod control;
mod env_config;
mod error;
mod feed;
mod host;
#[cfg(feature = "logging")]
pub mod logging;
mod metrics;
mod poison;
mod position;
mod replay;
mod retries;
#[cfg(all(feature = "systemd", target_os = "linux"))]
mod systemd;
mod task;

pub use config::{
    ConsumerConfig, DEFAULT_POLL_INTERVAL, DEFAULT_POSITION_UPDATE_INTERVAL, DEFAULT_STORE_RETRY_MS,
};
pub use consumer::{Consumer, OnError, WINDOW_PER_SLOT};
pub use control::{Control, State};
pub use error::Error;
pub use host::{DEFAULT_HOOK_TIMEOUT, DEFAULT_STOP_TIMEOUT, Host};
pub use metrics::{LAG_SAMPLE_INTERVAL, SECONDS_BUCKETS};
pub use poison::{Failed, Parked, read_parked};
pub use position::{POSITION_TYPE, PositionStore};
pub use replay::{
    Discard, Discarded, ParkedMessage, ParkedState, ParkedStream, Replay, Replayed, Requested,
    read_parked_messages, request_discard, request_replay,
};
#[cfg(all(feature = "systemd", target_os = "linux"))]
pub use systemd::{Notifier, run_watchdog, watchdog_interval};
pub use task::{Schedule, Task};
