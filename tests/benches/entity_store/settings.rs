//! The settings of a run: environment variables, all optional, each with its default.
//!
//! Numbers may be written with `_` between digits (`EBB_BENCH_COMMANDS=2_000`);
//! an empty variable counts as unset.

use ebb_bench::{BoxError, env};

/// The sizes of a run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `EBB_BENCH_SECONDS`, default 2: measured seconds of one fetch
    /// slice. Short slices let many of them, interleaved, fit into a run.
    pub(crate) seconds: u64,
    /// `EBB_BENCH_WARMUP_SECONDS`, default 2: warm-up seconds per fetch
    /// side before its slices (this opens the connection, prepares the
    /// statements and fills the cache).
    pub(crate) warmup_seconds: u64,
    /// `EBB_BENCH_RUNS`, default 11: slices per side per case; each side's
    /// figure is the median, so one disturbed slice does not decide.
    pub(crate) runs: usize,
    /// `EBB_BENCH_EVENTS`, default 1,000: `Deposited` events in the stream
    /// of the account the fetch case fetches.
    pub(crate) events: u64,
    /// `EBB_BENCH_COMMANDS`, default 2,000: `Deposit` commands one handler
    /// slice handles, one after another.
    pub(crate) commands: usize,
    /// `EBB_BENCH_ACCOUNTS`, default 100: the accounts those commands are
    /// spread over, round-robin, as the seed handler's test spreads them.
    pub(crate) accounts: usize,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let settings = Settings {
            seconds: env::or("EBB_BENCH_SECONDS", 2)?,
            warmup_seconds: env::or("EBB_BENCH_WARMUP_SECONDS", 2)?,
            runs: env::or("EBB_BENCH_RUNS", 11)?,
            events: env::or("EBB_BENCH_EVENTS", 1000)?,
            commands: env::or("EBB_BENCH_COMMANDS", 2000)?,
            accounts: env::or("EBB_BENCH_ACCOUNTS", 100)?,
        };
        if settings.runs == 0 {
            return Err("EBB_BENCH_RUNS must be at least 1".into());
        }
        if settings.seconds == 0 {
            return Err("EBB_BENCH_SECONDS must be at least 1".into());
        }
        if settings.events == 0 || settings.commands == 0 || settings.accounts == 0 {
            return Err("events, commands and accounts must be at least 1".into());
        }
        Ok(settings)
    }
}
