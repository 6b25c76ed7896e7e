//! Run with: `cargo bench -p ebb-tests --bench consumer_features`
//!
//! What the consumer's settings beyond Eventide's buy, on private
//! clusters started by ebb-localpg, each
//! side measured in the same run as the one it is compared with:
//!
//! - **deposits** ([`deposits`]): the seed `Deposit` handler (the entity
//!   store, the sequence guard and `Retry` on the expected-version error)
//!   over `EBB_BENCH_FEATURES_COMMANDS` (10,000) commands to
//!   `EBB_BENCH_FEATURES_ACCOUNTS` (1,000) accounts, by a consumer at
//!   concurrency 1 (Eventide's) and at `EBB_BENCH_FEATURES_CONCURRENCY`
//!   (8), on a `PgStore` at its defaults and with group commit off, on a
//!   cluster of its own, durable unless `EBB_BENCH_FEATURES_DEPOSITS_DURABLE`
//!   is 0 (each deposit's write waits for its WAL flush, as in
//!   production); commands per second from the consumer's
//!   start to the last command handled, and every balance checked exact
//!   after each pass. Concurrency must be at least 2x serial at the
//!   store's defaults; group commit on against off is reported beside it.
//! - **latency** ([`latency`]): single messages written to a consumer
//!   that is caught up, from the write's acknowledgement to the handler's
//!   start, p50 and p99, with the consumer woken by NOTIFY (the default)
//!   and with 100 ms polling only, in two modes: **idle**, the writes
//!   spaced beyond the store's busy window, so that a notification carries
//!   each one, and **busy**, writes at a steady `EBB_BENCH_FEATURES_RATE`
//!   (200) per second, inside the busy window, where the store polls the
//!   category instead of arming it. Beside each, the category reads per
//!   second the consumer costs the server (`pg_stat_statements`). Idle
//!   NOTIFY's p50 must be at most 5 ms, and a tenth of idle polling's or
//!   less.
//!
//! Each part runs `EBB_BENCH_FEATURES_ROUNDS` (5) rounds, its sides in an
//! order that turns by one each round, and reports each side's median
//! pass (deposits; the ratio is the median of the per-round ratios) or
//! the percentiles of all its samples (latency). The consumers run on
//! tokio's current-thread runtime, as ebb recommends. Progress goes to
//! stderr, the report to stdout; the exit is non-zero when a requirement
//! is missed.

mod deposits;
mod latency;

use std::process::ExitCode;
use std::time::Instant;

use ebb_bench::{BoxError, Report, env, progress};
use ebb_localpg::Cluster;
use ebb_tests::connect_to;

/// The settings, from the environment.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `EBB_BENCH_FEATURES_COMMANDS`, default 10,000: deposit commands per pass.
    pub(crate) commands: usize,
    /// `EBB_BENCH_FEATURES_ACCOUNTS`, default 1,000: the accounts they go to.
    pub(crate) accounts: usize,
    /// `EBB_BENCH_FEATURES_CONCURRENCY`, default 8: the concurrent side's
    /// `ConsumerConfig::concurrency`.
    pub(crate) concurrency: usize,
    /// `EBB_BENCH_FEATURES_RATE`, default 200: writes per second in the
    /// busy latency mode.
    pub(crate) rate: u64,
    /// `EBB_BENCH_FEATURES_MESSAGES`, default 1,000: messages per busy
    /// latency pass.
    pub(crate) messages: usize,
    /// `EBB_BENCH_FEATURES_IDLE_MESSAGES`, default 20: messages per idle
    /// latency pass, each written `busy_category_window` + 250 ms after the
    /// one before.
    pub(crate) idle_messages: usize,
    /// `EBB_BENCH_FEATURES_ROUNDS`, default 5: rounds of each part.
    pub(crate) rounds: usize,
    /// `EBB_BENCH_FEATURES_PARTS`, default both: `deposits`, `latency`.
    pub(crate) parts: Vec<Part>,
    /// `EBB_BENCH_FEATURES_DEPOSITS_DURABLE`, default 1: the deposits run
    /// on a durable cluster; 0 runs them with `fsync`,
    /// `synchronous_commit` and `full_page_writes` off.
    pub(crate) deposits_durable: bool,
}

/// The parts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Deposits,
    Latency,
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let settings = Self {
            commands: env::or("EBB_BENCH_FEATURES_COMMANDS", 10_000)?,
            accounts: env::or("EBB_BENCH_FEATURES_ACCOUNTS", 1_000)?,
            concurrency: env::or("EBB_BENCH_FEATURES_CONCURRENCY", 8)?,
            rate: env::or("EBB_BENCH_FEATURES_RATE", 200)?,
            messages: env::or("EBB_BENCH_FEATURES_MESSAGES", 1_000)?,
            idle_messages: env::or("EBB_BENCH_FEATURES_IDLE_MESSAGES", 20)?,
            rounds: env::or("EBB_BENCH_FEATURES_ROUNDS", 5)?,
            parts: env::list(
                "EBB_BENCH_FEATURES_PARTS",
                &[("deposits", Part::Deposits), ("latency", Part::Latency)],
            )?,
            deposits_durable: env::flag("EBB_BENCH_FEATURES_DEPOSITS_DURABLE", true)?,
        };
        if settings.commands == 0
            || settings.accounts == 0
            || settings.concurrency == 0
            || settings.rate == 0
            || settings.messages == 0
            || settings.idle_messages == 0
            || settings.rounds == 0
        {
            return Err("every EBB_BENCH_FEATURES_* number must be at least 1".into());
        }
        Ok(settings)
    }
}

/// Creates `name` with ebb's schema installed (or as a copy of
/// `template`).
pub(crate) async fn create_database(
    cluster: &Cluster,
    name: &str,
    template: Option<&str>,
) -> Result<(), BoxError> {
    let admin = connect_to(&cluster.config("postgres")).await?;
    match template {
        Some(template) => {
            admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await?;
        }
        None => {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await?;
            let client = connect_to(&cluster.config(name)).await?;
            ebb_message_store::schema::install(&client).await?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    ebb_bench::report::main(run)
}

fn run() -> Result<Report, BoxError> {
    let settings = Settings::from_env()?;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    progress("starting a private PostgreSQL cluster");
    let cluster = Cluster::builder()
        .fsync(false)
        .setting("shared_buffers", "512MB")
        .setting("max_connections", "100")
        // The latency part counts the consumer's reads.
        .setting("shared_preload_libraries", "pg_stat_statements")
        .start()?;
    let mut report = Report::new(
        "consumer_features",
        "consumer features: concurrency and wake-up latency",
    );
    if settings.parts.contains(&Part::Deposits) {
        progress("starting a private PostgreSQL cluster for the deposits");
        let deposits_cluster = deposits::cluster(settings.deposits_durable)?;
        runtime.block_on(deposits::run(&deposits_cluster, &settings, &mut report))?;
    }
    if settings.parts.contains(&Part::Latency) {
        runtime.block_on(latency::run(&cluster, &settings, &mut report))?;
    }
    report.line(format!(
        "private PostgreSQL clusters, fsync, synchronous_commit and full_page_writes {} for the \
         deposits, off for the latency; {} CPUs; \
         consumers on a current-thread runtime; {} rounds per part, sides in an order that turns \
         by one each round; run took {:.0} s",
        if settings.deposits_durable {
            "on"
        } else {
            "off"
        },
        std::thread::available_parallelism().map_or(0, usize::from),
        settings.rounds,
        started.elapsed().as_secs_f64()
    ));
    Ok(report)
}
