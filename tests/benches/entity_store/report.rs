//! What a run prints: progress on stderr while it runs, the table on stdout at the end.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use crate::fetch::FetchFigures;
use crate::handling::HandlingFigures;
use crate::settings::Settings;

/// The lowest ratio of cached to cold fetches that passes.
const CACHED_REQUIRED: f64 = 20.0;

/// One line of progress on stderr.
pub(crate) fn progress(what: impl std::fmt::Display) {
    eprintln!("[bench] {what}");
}

/// Everything the table shows.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) settings: &'a Settings,
    /// PostgreSQL's version.
    pub(crate) server: &'a str,
    pub(crate) fetches: FetchFigures,
    pub(crate) handling: HandlingFigures,
    /// The whole run, cluster start included.
    pub(crate) elapsed: Duration,
}

/// One row of the table.
struct Row {
    case: String,
    /// Median operations per second.
    rate: f64,
    /// What the rate is compared with, and that side's rate.
    compared: Option<(&'static str, f64)>,
    /// The lowest ratio that passes; `None`: reported, not required.
    required: Option<f64>,
    /// The same I/O done with bare store calls, per second: a reference
    /// that tells the handler layer's own cost apart from the store's.
    store_only: Option<f64>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.compared.map(|(_, baseline)| self.rate / baseline)
    }

    fn result(&self) -> &'static str {
        match (self.ratio(), self.required) {
            (Some(ratio), Some(required)) if ratio >= required => "PASS",
            (Some(_), Some(_)) => "FAIL",
            _ => "-",
        }
    }
}

impl Report<'_> {
    fn rows(&self) -> Vec<Row> {
        let settings = self.settings;
        let (fetches, handling) = (self.fetches, self.handling);
        vec![
            Row {
                case: format!(
                    "fetch, cold: cache off, {} events read and applied",
                    settings.events
                ),
                rate: fetches.cold,
                compared: None,
                required: None,
                store_only: Some(fetches.read_all),
            },
            Row {
                case: "fetch, cached, no new events: one empty read".into(),
                rate: fetches.cached,
                compared: Some(("cold", fetches.cold)),
                required: Some(CACHED_REQUIRED),
                store_only: Some(fetches.read_none),
            },
            Row {
                case: "fetch from a snapshot at the last version, cache off".into(),
                rate: fetches.snapshot,
                compared: Some(("cold", fetches.cold)),
                required: None,
                store_only: None,
            },
            Row {
                case: format!(
                    "seed handler, serial, {} commands over {} accounts",
                    settings.commands, settings.accounts
                ),
                rate: handling.handler,
                compared: None,
                required: None,
                store_only: Some(handling.store_calls),
            },
        ]
    }

    /// The table and how it was measured, on stdout.
    pub(crate) fn print(&self) {
        let settings = self.settings;
        println!();
        println!(
            "ebb-handler entity store and seed handler, private PostgreSQL {} cluster (fsync off), {} CPUs, \
             one current-thread runtime, one connection per store",
            self.server,
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        println!(
            "each side measured in {} slices (interleaved A B C C B A ...; median); fetches: {}s per slice after {}s \
             warm-up per side; handler: {} commands per slice after one warm-up slice per side",
            settings.runs, settings.seconds, settings.warmup_seconds, settings.commands,
        );
        println!();
        println!(
            "| {:<56} | {:>8} | {:>8} | {:<4} | {:>6} | {:>8} | {:<6} | {:>13} | {:>7} |",
            "case",
            "per s",
            "µs each",
            "vs",
            "ratio",
            "required",
            "result",
            "store only µs",
            "own µs"
        );
        println!(
            "|{:-<58}|{:->10}|{:->10}|{:-<6}|{:->8}|{:->10}|{:-<8}|{:->15}|{:->9}|",
            "", "", "", "", "", "", "", "", ""
        );
        let rows = self.rows();
        for row in &rows {
            let micros = 1e6 / row.rate;
            println!(
                "| {:<56} | {:>8.0} | {:>8.1} | {:<4} | {:>6} | {:>8} | {:<6} | {:>13} | {:>7} |",
                row.case,
                row.rate,
                micros,
                row.compared.map_or("", |(name, _)| name),
                row.ratio()
                    .map_or_else(String::new, |ratio| format!("{ratio:.2}x")),
                row.required
                    .map_or_else(|| "-".to_owned(), |required| format!("{required:.0}x")),
                row.result(),
                row.store_only
                    .map_or_else(|| "-".to_owned(), |rate| format!("{:.1}", 1e6 / rate)),
                row.store_only.map_or_else(
                    || "-".to_owned(),
                    |rate| format!("{:+.1}", micros - 1e6 / rate)
                ),
            );
        }
        println!();
        println!(
            "per s: fetches, or commands for the handler row. store only: the same I/O as bare store calls, measured in \
             the same interleaving, for reference, not a requirement (fetches: read_stream of all events, or from \
             after the last; handler: per command one get_stream_messages from the known version and one write); \
             own µs: the difference, what the handler layer adds"
        );
        println!(
            "expected-version retries in the handler: {}",
            self.handling.retries
        );
        println!();
        if rows.iter().any(|row| row.result() == "FAIL") {
            println!(
                "requirement NOT met: cached fetches at least {CACHED_REQUIRED:.0}x as fast as cold ones"
            );
        } else {
            println!(
                "requirement met: cached fetches at least {CACHED_REQUIRED:.0}x as fast as cold ones"
            );
        }
        println!("total run time {:.0} s", self.elapsed.as_secs_f64());
    }
}
