//! The settings of a run: environment variables, all optional, each with
//! its default.
//!
//! Numbers may be written with `_` between digits; an empty variable counts
//! as unset.

use std::str::FromStr;
use std::time::Duration;

use crate::BoxError;

/// The sizes of a run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `EBB_BENCH_NOTIFY_WRITERS`, default 8: concurrent writers, each
    /// writing one message per transaction as fast as it can.
    pub(crate) writers: usize,
    /// `EBB_BENCH_NOTIFY_SECONDS`, default 4: how long each pass counts
    /// writes, after a warm-up of half a second.
    pub(crate) seconds: f64,
    /// `EBB_BENCH_NOTIFY_ROUNDS`, default 3: passes of each mode per case,
    /// interleaved (off first, then on first, ...); each figure is the
    /// median pass.
    pub(crate) rounds: usize,
    /// `EBB_BENCH_NOTIFY_REARM_MS`, default 2: the shortest time between
    /// two armings of one consumer in the rate-limited mode (`on, rate
    /// limited`); 0 leaves that mode out.
    pub(crate) rearm: Duration,
    /// `EBB_BENCH_NOTIFY_POLL_MS`, default 100: how long a caught-up
    /// consumer waits at most, for its wake-up or for its next poll.
    pub(crate) poll: Duration,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let settings = Settings {
            writers: env_or("EBB_BENCH_NOTIFY_WRITERS", 8)?,
            seconds: env_or("EBB_BENCH_NOTIFY_SECONDS", 4.0)?,
            rounds: env_or("EBB_BENCH_NOTIFY_ROUNDS", 3)?,
            rearm: Duration::from_millis(env_or("EBB_BENCH_NOTIFY_REARM_MS", 2)?),
            poll: Duration::from_millis(env_or("EBB_BENCH_NOTIFY_POLL_MS", 100)?),
        };
        if settings.writers == 0 || settings.rounds == 0 || settings.seconds <= 0.0 {
            return Err("writers, rounds and seconds must be positive".into());
        }
        Ok(settings)
    }
}

fn env_or<T: FromStr>(name: &str, default: T) -> Result<T, BoxError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|err| format!("{name}={value:?}: {err}").into()),
        _ => Ok(default),
    }
}
