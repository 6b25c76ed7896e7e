//! The settings of a run: environment variables, all optional, each with its default.
//!
//! Numbers may be written with `_` between digits
//! (`EBB_BENCH_CONSUMER_MESSAGES=1_000_000`); an empty variable counts as
//! unset.

use ebb_bench::{BoxError, env};

/// The runtime a consumer process runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `#[tokio::main(flavor = "current_thread")]`: what ebb recommends
    /// for a component (see the host's documentation).
    CurrentThread,
    /// `#[tokio::main]`'s default.
    MultiThread,
}

impl Flavor {
    /// The name `EBB_BENCH_CONSUMER_RUNTIME` and the report use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CurrentThread => "current-thread",
            Self::MultiThread => "multi-thread",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::CurrentThread, Self::MultiThread]
            .into_iter()
            .find(|flavor| flavor.name() == name)
    }
}

/// The sizes of a run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `EBB_BENCH_CONSUMER_MESSAGES`, default 1,000,000: messages loaded
    /// into the category, and consumed end to end by each run of each
    /// side; at least one batch of 1,000.
    pub(crate) messages: u64,
    /// `EBB_BENCH_CONSUMER_RUNS`, default 5: rounds, each a full pass of
    /// every side, in an order that turns by one each round; each side's
    /// figure is its median pass, each ratio the median of the per-round
    /// ratios.
    pub(crate) runs: usize,
    /// `EBB_BENCH_CONSUMER_POSITION_INTERVAL`, default 100 (the
    /// consumer's default): messages between position records. Another
    /// value shows what the records cost; the requirement is only
    /// checked at the default.
    pub(crate) position_update_interval: u64,
    /// `EBB_BENCH_CONSUMER_RUNTIME`, default `both`: the runtimes the
    /// consumer is measured on, `current-thread`, `multi-thread` or
    /// `both`.
    /// The first one measured is the one the requirement applies to.
    pub(crate) runtimes: Vec<Flavor>,
    /// `EBB_BENCH_CONSUMER_PIPELINE`, default unset (the store's default):
    /// the consumer's store's `pipeline_connections`; set, the requirement
    /// is not checked.
    pub(crate) pipeline_connections: Option<usize>,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        const BOTH: &[Flavor] = &[Flavor::CurrentThread, Flavor::MultiThread];
        let settings = Settings {
            messages: env::or("EBB_BENCH_CONSUMER_MESSAGES", 1_000_000)?,
            runs: env::or("EBB_BENCH_CONSUMER_RUNS", 5)?,
            position_update_interval: env::or(
                "EBB_BENCH_CONSUMER_POSITION_INTERVAL",
                ebb_consumer::ConsumerConfig::new("any").position_update_interval,
            )?,
            runtimes: env::choice(
                "EBB_BENCH_CONSUMER_RUNTIME",
                &[
                    ("both", BOTH),
                    ("current-thread", &BOTH[..1]),
                    ("multi-thread", &BOTH[1..]),
                ],
            )?
            .to_vec(),
            pipeline_connections: env::opt("EBB_BENCH_CONSUMER_PIPELINE")?,
        };
        if settings.position_update_interval == 0 {
            return Err("EBB_BENCH_CONSUMER_POSITION_INTERVAL must be at least 1".into());
        }
        if crate::workload::BATCH_SIZE % settings.position_update_interval != 0 {
            // pgbench writes the records the consumer writes for each
            // batch, a whole number of them.
            return Err(
                "EBB_BENCH_CONSUMER_POSITION_INTERVAL must divide the batch size (1,000)".into(),
            );
        }
        if settings.runs == 0 {
            return Err("EBB_BENCH_CONSUMER_RUNS must be at least 1".into());
        }
        if settings.messages < crate::workload::BATCH_SIZE {
            return Err("EBB_BENCH_CONSUMER_MESSAGES must be at least one batch (1,000)".into());
        }
        Ok(settings)
    }
}
