//! The report: p50 and p95 of each page's time to first byte (the p95
//! required under 300 ms), the cold first requests, and the statements the
//! live pages cost the database.

use std::time::Duration;

use ebb_bench::{Report, Row, percentile};
use ebb_tests::large_store::Contents;

use crate::cases::{Page, ms};
use crate::http::Fetched;
use crate::live::{LIVE_PATHS, Load};
use crate::settings::Settings;

/// The longest a page's first byte may take (its 95th percentile), in ms.
pub(crate) const REQUIRED_MS: f64 = 300.0;

/// What a run found, for the report.
#[derive(Debug)]
pub(crate) struct Findings {
    pub(crate) server: String,
    pub(crate) contents: Contents,
    pub(crate) built: Duration,
    /// The first requests of `/` and `/consumers`, by path.
    pub(crate) cold: Vec<(&'static str, Fetched)>,
    pub(crate) pages: Vec<Page>,
    /// One copy of each live page, then many.
    pub(crate) loads: Vec<Load>,
    pub(crate) elapsed: Duration,
}

pub(crate) fn report(settings: &Settings, findings: &Findings) -> Report {
    let Findings {
        server,
        contents,
        built,
        cold,
        pages,
        loads,
        elapsed,
    } = findings;
    let mut report = Report::new("pages", "The dashboard's pages on a large store");
    report.line(format!(
        "PostgreSQL {server}; {} messages ({} in {} entity categories of {}-message \
         streams, {} position records of {} consumers, failures and parked), {} streams; \
         table {} MB, with indexes {} MB, built in {:.0} s; up to {} timed requests per \
         page over loopback, one connection each, with the overview and the consumers \
         page open live; run took {:.0} s",
        contents.messages,
        settings.shape.messages,
        settings.shape.categories,
        settings.shape.stream_messages,
        contents.position_records,
        settings.shape.categories * 2,
        contents.streams,
        contents.table_bytes >> 20,
        contents.total_bytes >> 20,
        built.as_secs_f64(),
        settings.requests,
        elapsed.as_secs_f64()
    ));
    for (path, fetched) in cold {
        report.row(
            Row::time(
                format!("GET {path}, cold (first request), first byte"),
                "ms",
                ms(fetched.first_byte),
            )
            .durable(false),
        );
    }
    for page in pages {
        if page.first_bytes.is_empty() {
            // Never answered in time: reported as the timeout, failed.
            report.row(
                Row::time(
                    format!("{}, first byte p95", page.name),
                    "ms",
                    ms(settings.timeout),
                )
                .limit(REQUIRED_MS)
                .durable(false),
            );
            continue;
        }
        report.row(
            Row::time(
                format!("{}, first byte p50", page.name),
                "ms",
                percentile(&page.first_bytes, 50.0),
            )
            .durable(false),
        );
        report.row(
            Row::time(
                format!("{}, first byte p95", page.name),
                "ms",
                percentile(&page.first_bytes, 95.0),
            )
            .limit(REQUIRED_MS)
            .durable(false),
        );
    }
    for load in loads {
        report.row(
            Row::time(
                format!("statements/s with {} of each live page open", load.pages),
                "stmt/s",
                load.per_second(load.statements),
            )
            .durable(false),
        );
    }
    report.note("Every page (ms; p50 and p95 of the time to the first byte and to the last):");
    report.note("| page | path | requests | bytes | first byte p50 | p95 | max | whole p50 | p95 | p95 under 300 ms |");
    report.note("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for page in pages {
        let figure = |values: &[f64], p: f64| {
            if values.is_empty() {
                "–".to_owned()
            } else {
                format!("{:.1}", percentile(values, p))
            }
        };
        let verdict = match &page.stopped {
            _ if page.first_bytes.is_empty() => "FAIL".to_owned(),
            None if percentile(&page.first_bytes, 95.0) <= REQUIRED_MS => "PASS".to_owned(),
            None => "FAIL".to_owned(),
            Some(why) => format!("FAIL (stopped: {why})"),
        };
        report.note(format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {verdict} |",
            page.name,
            page.path,
            page.first_bytes.len(),
            page.bytes,
            figure(&page.first_bytes, 50.0),
            figure(&page.first_bytes, 95.0),
            figure(&page.first_bytes, 100.0),
            figure(&page.wholes, 50.0),
            figure(&page.wholes, 95.0),
        ));
    }
    report.note("");
    report.note("The database's load from live pages (the overview's and the consumers page's event streams):");
    report.note(format!(
        "| open of each | window s | statements | statements/s | commits/s | events | first event ({}) |",
        LIVE_PATHS.join(", ")
    ));
    report.note("|---:|---:|---:|---:|---:|---:|---|");
    for load in loads {
        report.note(format!(
            "| {} | {:.1} | {} | {:.1} | {:.1} | {} | {} |",
            load.pages,
            load.window.as_secs_f64(),
            load.statements,
            load.per_second(load.statements),
            load.commits as f64 / load.commit_span.as_secs_f64(),
            load.events,
            load.first_event
                .iter()
                .map(|first| format!("{:.1} ms", ms(*first)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(load) = loads.last() {
        report.note("");
        report.note(format!(
            "The statements in the window with {} of each open (calls, text):",
            load.pages
        ));
        for (calls, text) in &load.by_statement {
            report.note(format!("- {calls}: `{text}`"));
        }
    }
    report
}
