//! The settings of a run: environment variables, all optional, each with
//! its default.
//!
//! Numbers may be written with `_` between digits; an empty variable counts
//! as unset.

use ebb_bench::{BoxError, env};
use ebb_tests::large_store::Shape;

/// The size of the store and how often each command runs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The store: `EBB_BENCH_OPS_MESSAGES`, default 5,000,000, the
    /// messages of the entity streams (the consumers' own streams come on
    /// top); `EBB_BENCH_OPS_CATEGORIES`, default 50, the entity
    /// categories (`category1` ...), each read by two consumers;
    /// `EBB_BENCH_OPS_STREAM_MESSAGES`, default 10, the messages of each
    /// entity stream.
    pub(crate) shape: Shape,
    /// `EBB_BENCH_OPS_RUNS`, default 11: the timed runs of each command,
    /// after one untimed run that warms the server's caches.
    pub(crate) runs: usize,
    /// `EBB_BENCH_OPS_EXACT`, default 1: also time `ebb stats --exact`
    /// (Message DB's views, which count every message), for reference,
    /// three runs; 0 leaves it out.
    pub(crate) exact: bool,
    /// `EBB_BENCH_OPS_DATABASE`, default empty: options of the store's
    /// `CREATE DATABASE`, to try another collation (`TEMPLATE template0
    /// LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`; the cluster's is `C`).
    pub(crate) database_options: String,
    /// `EBB_BENCH_OPS_EBB`, default the `ebb` this `cargo bench` built: the
    /// executable timed (another build of it, to compare).
    pub(crate) ebb: String,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let settings = Settings {
            shape: Shape {
                messages: env::or("EBB_BENCH_OPS_MESSAGES", 5_000_000)?,
                categories: env::or("EBB_BENCH_OPS_CATEGORIES", 50)?,
                stream_messages: env::or("EBB_BENCH_OPS_STREAM_MESSAGES", 10)?,
            },
            runs: env::or("EBB_BENCH_OPS_RUNS", 11)?,
            exact: env::flag("EBB_BENCH_OPS_EXACT", true)?,
            database_options: env::text("EBB_BENCH_OPS_DATABASE").unwrap_or_default(),
            ebb: env::text("EBB_BENCH_OPS_EBB")
                .unwrap_or_else(|| env!("CARGO_BIN_EXE_ebb").to_owned()),
        };
        if settings.runs == 0 {
            return Err("EBB_BENCH_OPS_RUNS must be positive".into());
        }
        settings.shape.check("EBB_BENCH_OPS_")?;
        Ok(settings)
    }
}
