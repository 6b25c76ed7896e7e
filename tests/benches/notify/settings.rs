//! The settings of a run: environment variables, all optional, each with
//! its default.
//!
//! Numbers may be written with `_` between digits; an empty variable counts
//! as unset.

use std::time::Duration;

use ebb_bench::{BoxError, env};

/// The sizes of a run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `EBB_BENCH_NOTIFY_WRITERS`, default 8: concurrent writers, each
    /// writing one message per transaction as fast as it can.
    pub(crate) writers: usize,
    /// `EBB_BENCH_NOTIFY_SECONDS`, default 3: how long each pass counts
    /// writes, after a warm-up of half a second.
    pub(crate) seconds: f64,
    /// `EBB_BENCH_NOTIFY_ROUNDS`, default 5: passes of each mode per case,
    /// the order of the modes turning by one each round; each figure is
    /// the median pass, each ratio the median of the per-round ratios.
    pub(crate) rounds: usize,
    /// `EBB_BENCH_NOTIFY_EVERY_ARMING`, default 1: also measure the mode
    /// without a busy window (`on, no busy window`); 0 leaves it out.
    pub(crate) every_arming: bool,
    /// `EBB_BENCH_NOTIFY_BUSY_WINDOW_MS` and `EBB_BENCH_NOTIFY_BUSY_POLL_MS`,
    /// default the store's (`PgStoreConfig::busy_category_window` and
    /// `busy_category_poll`): the store settings of the `on` mode.
    pub(crate) busy_window: Option<Duration>,
    pub(crate) busy_poll: Option<Duration>,
    /// `EBB_BENCH_NOTIFY_POLL_MS`, default 100: how long a caught-up
    /// consumer waits at most, for its wake-up or for its next poll.
    pub(crate) poll: Duration,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let settings = Settings {
            writers: env::or("EBB_BENCH_NOTIFY_WRITERS", 8)?,
            seconds: env::or("EBB_BENCH_NOTIFY_SECONDS", 3.0)?,
            rounds: env::or("EBB_BENCH_NOTIFY_ROUNDS", 5)?,
            every_arming: env::flag("EBB_BENCH_NOTIFY_EVERY_ARMING", true)?,
            poll: Duration::from_millis(env::or("EBB_BENCH_NOTIFY_POLL_MS", 100)?),
            busy_window: env::opt("EBB_BENCH_NOTIFY_BUSY_WINDOW_MS")?.map(Duration::from_millis),
            busy_poll: env::opt("EBB_BENCH_NOTIFY_BUSY_POLL_MS")?.map(Duration::from_millis),
        };
        if settings.writers == 0 || settings.rounds == 0 || settings.seconds <= 0.0 {
            return Err("writers, rounds and seconds must be positive".into());
        }
        Ok(settings)
    }
}
