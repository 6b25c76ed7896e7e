//! The settings of a run: environment variables, all optional, each with its default.
//!
//! Numbers may be written with `_` between digits
//! (`EBB_BENCH_CONSUMER_MESSAGES=1_000_000`); an empty variable counts as
//! unset.

use std::str::FromStr;

use crate::BoxError;

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
    /// `EBB_BENCH_CONSUMER_RUNS`, default 5: full passes per side,
    /// interleaved (pgbench first, then ebb first, ...); each side's
    /// figure is the median pass.
    pub(crate) runs: usize,
    /// `EBB_BENCH_CONSUMER_POSITION_INTERVAL`, default 100 (the
    /// consumer's default): messages between position records. Another
    /// value shows what the records cost; the requirement is only
    /// checked at the default.
    pub(crate) position_update_interval: u64,
    /// `EBB_BENCH_CONSUMER_RUNTIME`, default `both`: the runtimes the
    /// consumer is measured on, `current-thread`, `multi-thread` or
    /// `both` (each pass of pgbench is then followed by one of each).
    /// The first one measured is the one the requirement applies to.
    pub(crate) runtimes: Vec<Flavor>,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let settings = Settings {
            messages: env_or("EBB_BENCH_CONSUMER_MESSAGES", 1_000_000)?,
            runs: env_or("EBB_BENCH_CONSUMER_RUNS", 5)?,
            position_update_interval: env_or(
                "EBB_BENCH_CONSUMER_POSITION_INTERVAL",
                ebb_consumer::ConsumerConfig::new("any").position_update_interval,
            )?,
            runtimes: match std::env::var("EBB_BENCH_CONSUMER_RUNTIME") {
                Err(_) => vec![Flavor::CurrentThread, Flavor::MultiThread],
                Ok(name) => match name.trim() {
                    "" | "both" => vec![Flavor::CurrentThread, Flavor::MultiThread],
                    other => match Flavor::from_name(other) {
                        Some(flavor) => vec![flavor],
                        None => {
                            return Err(format!(
                                "EBB_BENCH_CONSUMER_RUNTIME={other:?}: \
                                 expected current-thread, multi-thread or both"
                            )
                            .into());
                        }
                    },
                },
            },
        };
        if settings.position_update_interval == 0 {
            return Err("EBB_BENCH_CONSUMER_POSITION_INTERVAL must be at least 1".into());
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

/// The variable `name` parsed, or `default` when it is unset or empty.
fn env_or<T: FromStr>(name: &str, default: T) -> Result<T, BoxError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            let value = value.trim().replace('_', "");
            value
                .parse()
                .map_err(|err| format!("{name}={value:?}: {err}").into())
        }
        _ => Ok(default),
    }
}
