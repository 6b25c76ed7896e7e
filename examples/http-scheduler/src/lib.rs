//! go-again's HTTP job scheduler on ebb: jobs that call a URL once or on
//! an interval, with a retry policy, callbacks, URL validation and a
//! concurrency limit, whose state is the message store. Jobs survive
//! restarts, and two instances on one database record exactly one
//! outcome for every run.
//!
//! # The API
//!
//! JSON, camelCase keys, times in RFC 3339, durations in milliseconds.
//!
//! | route | answer |
//! |---|---|
//! | `POST /jobs` | `201 {"id"}`; `400 {"error", "field"}` for a bad request, with nothing written |
//! | `GET /jobs/ID` | `200 {"id", "state", "runs", "runsStarted", "nextRunAt", "createdAt", "cancelledAt", "completedAt", "lastRun", "request", "schedule", "retry", "callback"}`; `404` |
//! | `GET /jobs?state=&offset=&limit=` | `200 {"jobs": [{"id", "state", "runs", "nextRunAt", "createdAt"}], "total", "offset", "limit"}`, in the order scheduled |
//! | `GET /jobs/ID/history?from=&limit=` | `200 {"id", "runs": [{"run", "dueAt", "startedAt", "claims", "finishedAt", "outcome", "status", "error", "attempts": [{"claim", "attempt", "at", "durationMs", "status", "error", "body", "bodyTruncated"}], "callback"}], "nextFrom"}` |
//! | `DELETE /jobs/ID` | `200` with the job, cancelled; `404`; `409` for a job that has ended |
//!
//! `POST /jobs` takes
//! `{"request": {"method", "url", "headers", "body"}, "schedule": {"startAt", "everyMs", "endAt", "maxRuns"}, "retry": {"intervalsMs", "retryStatus", "retryTransport"}, "callback": {"url"}}`
//! ([`spec::JobSpec`]); only `request.method` (GET, POST or PUT) and
//! `request.url` are required, and no `everyMs` means one run. `state` is
//! one of `scheduled`, `running`, `succeeded`, `failed` (a job that runs
//! once), `cancelled`, `completed` (a repeating job after its last run).
//!
//! # Messages
//!
//! Commands in `httpJob:command-JOB_ID`: `Schedule`, `Cancel`. Events in
//! `httpJob-JOB_ID`: `Scheduled`, `Cancelled`, `RunStarted` (a claim, with
//! its lease), `AttemptMade` (one call: status, error, duration, body),
//! `RunSucceeded` / `RunFailed` (exactly one per run), `CallbackDelivered`
//! / `CallbackFailed`, `Completed`. Snapshots of the job entity in
//! `httpJob:snapshot-JOB_ID`. See [`messages`].
//!
//! # Calls
//!
//! Each run's calls are made inside `ebb_retry::Retry` with the job's
//! intervals, retrying the statuses in `retryStatus` and, with
//! `retryTransport`, calls that got no answer. A `Retry-After` (seconds or
//! an HTTP date) on a retried status makes the next wait at least that
//! long (the rule answers `Decision::RetryAfter(max(Retry-After,
//! interval))`); one longer than `EBB_SCHEDULER_MAX_RETRY_AFTER_MS` ends
//! the run as failed rather than call back early. Every call carries
//! `Idempotency-Key: JOB_ID-RUN`, has the per-call timeout, and counts
//! against the process's concurrency limit. After each run the outcome
//! is posted to the callback URL, if any (`{"jobId", "run", "outcome",
//! "status", "error", "body", "bodyTruncated", "attempts", "finishedAt"}`),
//! retried on no answer, 429 and 5xx.
//!
//! # What is guaranteed
//!
//! See [`scheduler`]: every run of every job gets exactly one recorded
//! outcome, across instances and crashes; the call is made at least once
//! per run, and more than once only when a claimer stopped mid-run (its
//! lease ran out and another claim made it again), always with the run's
//! `Idempotency-Key`.
//!
//! # The binary
//!
//! `http-scheduler`, configured by its environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `DATABASE_URL`, or `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGTARGETSESSIONATTRS` | the message store (host lists, TLS and `target_session_attrs` as libpq: see `PgStoreConfig::from_env`) |
//! | `EBB_PREPARED_STATEMENTS`, `EBB_LISTEN_DATABASE_URL` | behind a transaction-pooling PgBouncer: `off`, and a direct connection for wake-ups (see the README's *Running in production*) |
//! | `EBB_SCHEDULER_ADDR` | where the API listens (default `127.0.0.1:8080`) |
//! | `EBB_SCHEDULER_ALLOW_LOOPBACK=1` | jobs may call loopback addresses |
//! | `EBB_SCHEDULER_ALLOW_PRIVATE=1` | jobs may call private addresses (never link-local or metadata) |
//! | `EBB_SCHEDULER_MAX_CONCURRENCY` | runs in flight at once (default 16) |
//! | `EBB_SCHEDULER_CALL_TIMEOUT_MS` | one call's limit (default 10,000) |
//! | `EBB_SCHEDULER_BODY_LIMIT` | response bytes kept per call (default 4,096) |
//! | `EBB_SCHEDULER_MAX_RETRY_AFTER_MS` | the longest `Retry-After` honoured (default 60,000) |
//! | `EBB_SCHEDULER_MAX_REDIRECTS` | redirects followed per call (default 5) |
//! | `EBB_SCHEDULER_CALLBACK_RETRY_MS` | the callback's retry intervals (default `100,1000,5000`) |
//! | `EBB_SCHEDULER_LEASE_MARGIN_MS` | added to a run's longest duration to make its lease (default 2,000) |
//! | `EBB_SCHEDULER_KEEP_RUNS`, `EBB_SCHEDULER_KEEP_FOR_MS` | history retention per job (default 100 runs, 7 days) |
//! | `EBB_SCHEDULER_SNAPSHOT_INTERVAL` | a job's snapshot every this many events (default 100) |
//! | `EBB_SCHEDULER_INSTANCE` | this instance's name in `RunStarted` (default `pid-PID`) |
//! | `RUST_LOG` | the log filter (default `info`) |
//!
//! # Modules
//!
//! - [`spec`]: the request's JSON and its checks.
//! - [`address`]: which addresses jobs may call.
//! - [`messages`]: commands and events.
//! - [`job`]: the job entity, its schedule and its retention.
//! - [`commands`]: the `Schedule` and `Cancel` handlers.
//! - [`call`]: one HTTP call.
//! - [`scheduler`]: the index, the timer, claims, runs and callbacks.
//! - [`api`]: the HTTP routes.
//! - [`settings`]: the [`Settings`].

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use ebb_consumer::{Consumer, ConsumerConfig, Host, Task};
use ebb_message_store::PgStore;

pub mod address;
pub mod api;
pub mod call;
pub mod commands;
pub mod job;
pub mod messages;
pub mod scheduler;
pub mod settings;
pub mod spec;

pub use job::{Job, State};
pub use scheduler::Scheduler;
pub use settings::Settings;

/// Where commands are sent: `httpJob:command-JOB_ID`.
pub const COMMAND_CATEGORY: &str = "httpJob:command";
/// Where a job's events are: `httpJob-JOB_ID`.
pub const JOB_CATEGORY: &str = "httpJob";
/// Logged (info) once the API listens, followed by its address.
pub const LOG_LISTENING: &str = "http-scheduler listening on http://";

/// What stops the scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed (beyond its own retries), or a stored message did
    /// not fit its type: the process ends, for its supervisor to start it
    /// again.
    #[error(transparent)]
    Store(#[from] ebb_handler::Error),
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
    /// A job's retry policy could not be built.
    #[error("a retry policy could not be built")]
    Retry(#[source] ebb_retry::ConfigError),
    /// The API's listener failed.
    #[error("the API's listener failed")]
    Listener(#[source] std::io::Error),
    /// A task panicked.
    #[error("a scheduler task panicked: {0}")]
    Panicked(String),
}

/// The binary's whole run: logging, settings, the store, the API, the
/// consumer of `httpJob:command` and the scheduler, on one host. The exit
/// code is the host's (0 after SIGTERM, 1 after an error), or 2 for bad
/// settings or an address that cannot be bound.
pub async fn run() -> ExitCode {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::from(2);
        }
    };
    let store = match PgStore::from_env() {
        Ok(store) => store,
        Err(err) => {
            tracing::error!(error = %err, "no message store: set DATABASE_URL or PGHOST etc.");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(error = %err, addr = %settings.addr, "cannot listen");
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().map_or(settings.addr, |addr| addr);
    let scheduler = match Scheduler::new(store.clone(), settings) {
        Ok(scheduler) => scheduler,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            return ExitCode::from(2);
        }
    };
    let consumer = match Consumer::new(ConsumerConfig::new(COMMAND_CATEGORY), store) {
        Ok(consumer) => consumer.handler(
            Arc::new(commands::Commands::new(
                &scheduler.store,
                scheduler.jobs.clone(),
                &scheduler.settings,
            ))
            .dispatcher(),
        ),
        Err(err) => {
            tracing::error!(error = %err, "bad consumer settings");
            return ExitCode::from(2);
        }
    };
    let host = Host::new().consumer(consumer);
    let control = host.control();
    let timer = {
        let (scheduler, control) = (Arc::clone(&scheduler), control.clone());
        Task::once("scheduler", move || {
            let (scheduler, control) = (Arc::clone(&scheduler), control.clone());
            async move { Ok(scheduler.run(control).await?) }
        })
    };
    // A task's work may be asked for again; the listener is handed over
    // once.
    let listener = Arc::new(Mutex::new(Some(listener)));
    let api = Task::once("api", move || {
        let listener = listener.lock().expect("the listener's lock").take();
        let (router, control) = (api::router(Arc::clone(&scheduler)), control.clone());
        async move {
            let listener = listener.ok_or("the API's listener was taken already")?;
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { control.stopped().await })
                .await
                .map_err(Error::Listener)?;
            Ok(())
        }
    });
    tracing::info!("{LOG_LISTENING}{addr}");
    host.task(timer).task(api).run_to_exit().await
}
