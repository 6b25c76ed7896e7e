//! The settings of a run: environment variables, all optional, each with its default.
//!
//! Numbers may be written with `_` between digits
//! (`EBB_BENCH_CONSUMER_MESSAGES=1_000_000`); an empty variable counts as
//! unset.

use std::str::FromStr;

use crate::BoxError;

/// `EBB_BENCH_CONSUMER_RUNTIME`'s values, also the report's names.
const MULTI_THREAD: &str = "multi-thread";
const CURRENT_THREAD: &str = "current-thread";

/// The sizes of a run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `EBB_BENCH_CONSUMER_MESSAGES`, default 1,000,000: messages loaded
    /// into the category, and consumed end to end by each run of each
    /// side; at least one batch of 1,000.
    pub(crate) messages: u64,
    /// `EBB_BENCH_CONSUMER_RUNS`, default 3: full passes per side,
    /// interleaved (pgbench first, then ebb first, ...); each side's
    /// figure is the median pass.
    pub(crate) runs: usize,
    /// `EBB_BENCH_CONSUMER_RUNTIME`, default `multi-thread` (what
    /// `#[tokio::main]` gives), or `current-thread`: the runtime the
    /// consumer process runs on.
    pub(crate) multi_thread: bool,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let settings = Settings {
            messages: env_or("EBB_BENCH_CONSUMER_MESSAGES", 1_000_000)?,
            runs: env_or("EBB_BENCH_CONSUMER_RUNS", 3)?,
            multi_thread: match std::env::var("EBB_BENCH_CONSUMER_RUNTIME") {
                Err(_) => true,
                Ok(flavor) => match flavor.trim() {
                    "" | MULTI_THREAD => true,
                    CURRENT_THREAD => false,
                    other => {
                        return Err(format!(
                            "EBB_BENCH_CONSUMER_RUNTIME={other:?}: \
                             expected {MULTI_THREAD} or {CURRENT_THREAD}"
                        )
                        .into());
                    }
                },
            },
        };
        if settings.runs == 0 {
            return Err("EBB_BENCH_CONSUMER_RUNS must be at least 1".into());
        }
        if settings.messages < crate::workload::BATCH_SIZE {
            return Err("EBB_BENCH_CONSUMER_MESSAGES must be at least one batch (1,000)".into());
        }
        Ok(settings)
    }

    /// The consumer's runtime, as `EBB_BENCH_CONSUMER_RUNTIME` names it.
    pub(crate) fn runtime(&self) -> &'static str {
        if self.multi_thread {
            MULTI_THREAD
        } else {
            CURRENT_THREAD
        }
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
