//! The report: the rows of both cases, for the shared harness to print.

use std::time::Duration;

use ebb_bench::{Report, Rounds, Row};

use crate::fetch::{CACHED, COLD, READ_ALL, READ_NONE, SNAPSHOT};
use crate::handling::{HANDLER, HandlingFigures, STORE_CALLS};
use crate::settings::Settings;

/// The lowest ratio of cached to cold fetches that passes.
const CACHED_REQUIRED: f64 = 20.0;

/// A row of `side` against `base`: medians, and the median of the
/// per-round ratios.
fn row(case: String, unit: &str, rounds: &Rounds, side: &str, base: &str, name: &str) -> Row {
    Row::rate(case, unit, rounds.median(side))
        .against(name, rounds.median(base))
        .paired(rounds.paired_ratio(side, base))
        .durable(false)
}

/// The report of a run.
pub(crate) fn report(
    settings: &Settings,
    server: &str,
    fetches: &Rounds,
    handling: &HandlingFigures,
    elapsed: Duration,
) -> Report {
    let mut report = Report::new("entity_store", "ebb-handler entity store and seed handler");
    report.line(format!(
        "private PostgreSQL {server} cluster (fsync, synchronous_commit and full_page_writes off), \
         {} CPUs, one current-thread runtime, one connection per store",
        std::thread::available_parallelism().map_or(0, usize::from)
    ));
    report.line(format!(
        "{} rounds per side, in an order that turns by one each round; medians, and medians of \
         the per-round ratios; fetches: {} s per slice after {} s of warm-up per side; handler: \
         {} commands per slice after one warm-up slice per side; run took {:.0} s",
        settings.runs,
        settings.seconds,
        settings.warmup_seconds,
        settings.commands,
        elapsed.as_secs_f64()
    ));
    let events = settings.events;
    report.row(
        row(
            "fetch, cached, no new events (one empty read), against cold".into(),
            "fetches/s",
            fetches,
            CACHED,
            COLD,
            "fetch, cold",
        )
        .required(CACHED_REQUIRED),
    );
    report.row(row(
        "fetch from a snapshot at the last version, cache off, against cold".into(),
        "fetches/s",
        fetches,
        SNAPSHOT,
        COLD,
        "fetch, cold",
    ));
    report.row(row(
        format!("fetch, cold: cache off, {events} events read and applied"),
        "fetches/s",
        fetches,
        COLD,
        READ_ALL,
        "store only: read_stream of every event",
    ));
    report.row(row(
        "fetch, cached: the entity store's own cost".into(),
        "fetches/s",
        fetches,
        CACHED,
        READ_NONE,
        "store only: read_stream after the last event",
    ));
    report.row(row(
        format!(
            "seed handler, serial, {} commands over {} accounts",
            settings.commands, settings.accounts
        ),
        "commands/s",
        &handling.rounds,
        HANDLER,
        STORE_CALLS,
        "store only: the same read and write per command",
    ));
    report.note(format!(
        "store only: the same I/O as bare store calls, measured in the same rounds, for \
         reference, not a requirement; its ratio below 1 is the handler layer's own cost. \
         Expected-version retries in the handler: {}",
        handling.retries
    ));
    report
}
