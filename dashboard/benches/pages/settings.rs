//! The settings of a run: environment variables, all optional, each with
//! its default.
//!
//! Numbers may be written with `_` between digits; an empty variable counts
//! as unset.

use std::time::Duration;

use ebb_bench::{BoxError, env};
use ebb_tests::large_store::Shape;

/// The size of the store, how often each page is asked for, and the live
/// load.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The store: `EBB_BENCH_DASHBOARD_MESSAGES`, default 5,000,000, the
    /// messages of the entity streams (the consumers' own streams come on
    /// top); `EBB_BENCH_DASHBOARD_CATEGORIES`, default 50, the entity
    /// categories; `EBB_BENCH_DASHBOARD_STREAM_MESSAGES`, default 10, the
    /// messages of each entity stream.
    pub(crate) shape: Shape,
    /// `EBB_BENCH_DASHBOARD_REQUESTS`, default 200: the timed requests of
    /// each page, after one untimed request that warms the server's
    /// caches.
    pub(crate) requests: usize,
    /// `EBB_BENCH_DASHBOARD_PAGE_SECONDS`, default 60: the most time the
    /// timed requests of one page may take together; a page that slow is
    /// asked for fewer times (the report says how many), so that a slow
    /// page cannot hold the run for hours.
    pub(crate) page_budget: Duration,
    /// `EBB_BENCH_DASHBOARD_TIMEOUT_SECONDS`, default 30: the longest one
    /// request may take before the run gives up on that page.
    pub(crate) timeout: Duration,
    /// `EBB_BENCH_DASHBOARD_LIVE_PAGES`, default 20: the live pages held
    /// open at once for the query count, of each of the overview and the
    /// consumers page.
    pub(crate) live_pages: usize,
    /// `EBB_BENCH_DASHBOARD_LIVE_SECONDS`, default 10: how long those
    /// pages stay open while the store's queries are counted.
    pub(crate) live_window: Duration,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let settings = Settings {
            shape: Shape {
                messages: env::or("EBB_BENCH_DASHBOARD_MESSAGES", 5_000_000)?,
                categories: env::or("EBB_BENCH_DASHBOARD_CATEGORIES", 50)?,
                stream_messages: env::or("EBB_BENCH_DASHBOARD_STREAM_MESSAGES", 10)?,
            },
            requests: env::or("EBB_BENCH_DASHBOARD_REQUESTS", 200)?,
            page_budget: Duration::from_secs(env::or("EBB_BENCH_DASHBOARD_PAGE_SECONDS", 60)?),
            timeout: Duration::from_secs(env::or("EBB_BENCH_DASHBOARD_TIMEOUT_SECONDS", 30)?),
            live_pages: env::or("EBB_BENCH_DASHBOARD_LIVE_PAGES", 20)?,
            live_window: Duration::from_secs(env::or("EBB_BENCH_DASHBOARD_LIVE_SECONDS", 10)?),
        };
        if settings.requests == 0 || settings.live_pages == 0 {
            return Err("requests and live pages must be positive".into());
        }
        if settings.timeout.is_zero() || settings.live_window.is_zero() {
            return Err("the timeout and the live window must be positive".into());
        }
        settings.shape.check("EBB_BENCH_DASHBOARD_")?;
        Ok(settings)
    }
}
