//! The harness every ebb benchmark shares, so that they measure and report
//! alike:
//!
//! - [`env`](mod@env): settings from environment variables (all optional, `_`
//!   allowed between digits, an empty variable counting as unset);
//! - [`measure`]: sides measured in interleaved rounds whose order turns
//!   by one each round, each side's median, and the median of the paired
//!   per-round ratios of two sides;
//! - [`report`]: the rows a bench reports (ebb's figure, what it is
//!   compared with, the ratio, the requirement, the unit, whether the
//!   cluster was durable), printed as one table, written as JSON to
//!   `EBB_BENCH_JSON`, and the exit code (non-zero when a requirement is
//!   missed);
//! - [`pgbench`]: running PostgreSQL's `pgbench` and reading its figures;
//! - [`instructions`]: counting the instructions the current thread
//!   retires (`perf_event_open`), where the kernel allows it.
//!
//! Benches are `harness = false` targets that only `cargo bench` runs;
//! the `ebb-bench` binary of this crate runs all of them and prints one
//! table (`cargo bench-all`).

use std::error::Error;

pub mod env;
pub mod instructions;
pub mod measure;
pub mod pgbench;
pub mod report;

pub use measure::{Rounds, Side, interleaved, median, percentile};
pub use report::{Report, Row};

/// Any error of a run: it ends the run and is printed.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// One line of progress on stderr.
#[allow(clippy::print_stderr)]
pub fn progress(what: impl std::fmt::Display) {
    eprintln!("[bench] {what}");
}
