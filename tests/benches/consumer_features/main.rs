//! Run with: `cargo bench -p ebb-tests --bench consumer_features`
//!
//! What the consumer's settings beyond Eventide's buy, on a private
//! cluster started by ebb-localpg (fsync off: a throwaway cluster), each
//! side measured in the same run as the one it is compared with:
//!
//! - **deposits** ([`deposits`]): the seed `Deposit` handler (the entity
//!   store, the sequence guard and `Retry` on the expected-version error)
//!   over `EBB_BENCH_FEATURES_COMMANDS` (10,000) commands to
//!   `EBB_BENCH_FEATURES_ACCOUNTS` (1,000) accounts, by a consumer at
//!   concurrency 1 (Eventide's) and at `EBB_BENCH_FEATURES_CONCURRENCY`
//!   (8); commands per second from the first message to the last, and
//!   every balance checked exact after each pass. Each side runs with
//!   the store's default pooled connections and with one pipelined
//!   connection (`PgStoreConfig::pipeline_connections`); concurrency
//!   with the pipelined connection must be at least 2x faster than the
//!   faster of the two serial sides.
//! - **latency** ([`latency`]): single messages written at a steady
//!   `EBB_BENCH_FEATURES_RATE` (200) per second, `EBB_BENCH_FEATURES_MESSAGES`
//!   (1,000) per pass, to a consumer that is caught up: the time from
//!   just before each write to its handler, p50 and p99, with the
//!   consumer woken by NOTIFY (the default) and with 100 ms polling only.
//!   NOTIFY's p50 must be at most 5 ms and a tenth of polling's or less.
//!
//! Each part runs `EBB_BENCH_FEATURES_ROUNDS` (5) rounds, alternating its
//! sides and starting each round with another, and reports each
//! side's median pass (latency: the percentiles of all its samples). The
//! consumers run on tokio's current-thread runtime, as ebb recommends.
//! Progress goes to stderr, the figures to stdout; the exit is non-zero
//! when a requirement is missed.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod deposits;
mod latency;

use std::process::ExitCode;

use ebb_handler::BoxError;
use ebb_localpg::Cluster;
use ebb_tests::connect_to;

/// The settings, from the environment.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) commands: usize,
    pub(crate) accounts: usize,
    pub(crate) concurrency: usize,
    pub(crate) rate: u64,
    pub(crate) messages: usize,
    pub(crate) rounds: usize,
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T, BoxError> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a valid number").into()),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let settings = Self {
            commands: setting("EBB_BENCH_FEATURES_COMMANDS", 10_000)?,
            accounts: setting("EBB_BENCH_FEATURES_ACCOUNTS", 1_000)?,
            concurrency: setting("EBB_BENCH_FEATURES_CONCURRENCY", 8)?,
            rate: setting("EBB_BENCH_FEATURES_RATE", 200)?,
            messages: setting("EBB_BENCH_FEATURES_MESSAGES", 1_000)?,
            rounds: setting("EBB_BENCH_FEATURES_ROUNDS", 5)?,
        };
        if settings.commands == 0
            || settings.accounts == 0
            || settings.concurrency == 0
            || settings.rate == 0
            || settings.messages == 0
            || settings.rounds == 0
        {
            return Err("every EBB_BENCH_FEATURES_* setting must be at least 1".into());
        }
        Ok(settings)
    }
}

/// One line of progress on stderr.
pub(crate) fn progress(what: impl std::fmt::Display) {
    eprintln!("[bench] {what}");
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

/// The median of `values` (the lower of the two middle ones).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("[bench] failed: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, BoxError> {
    let settings = Settings::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    progress("starting a private PostgreSQL cluster");
    let cluster = Cluster::builder()
        .fsync(false)
        .setting("shared_buffers", "512MB")
        .setting("max_connections", "100")
        .start()?;
    let deposits = runtime.block_on(deposits::run(&cluster, &settings))?;
    let latency = runtime.block_on(latency::run(&cluster, &settings))?;
    println!();
    println!("consumer features (ebb-localpg cluster, fsync off; current-thread runtime)");
    let deposits_pass = deposits.print(&settings);
    let latency_pass = latency.print(&settings);
    Ok(deposits_pass && latency_pass)
}
