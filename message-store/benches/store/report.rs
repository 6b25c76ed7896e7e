//! What a run prints: progress on stderr while it runs, the table on stdout at the end.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use crate::settings::Settings;

/// One line of progress on stderr.
pub(crate) fn progress(what: impl std::fmt::Display) {
    eprintln!("[bench] {what}");
}

/// One row of the result table.
#[derive(Debug)]
pub(crate) struct Row {
    /// What was measured, as the table names it.
    pub(crate) case: String,
    /// ebb's median rate, in messages per second.
    pub(crate) ebb: f64,
    /// The figure ebb is compared with, and what it is.
    pub(crate) baseline: f64,
    pub(crate) baseline_name: String,
    /// The lowest ratio of `ebb` to `baseline` that passes.
    pub(crate) required: f64,
    /// The bare driver doing the same writes, for reference: it tells
    /// ebb's own cost apart from tokio-postgres's.
    pub(crate) driver: Option<f64>,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.ebb / self.baseline
    }

    fn passed(&self) -> bool {
        self.ratio() >= self.required
    }
}

/// Set in the environment of a process that runs one case for a parent
/// run: it prints its rows with [`print_rows`] instead of the table.
pub(crate) const ROWS_ONLY: &str = "EBB_BENCH_ROWS_ONLY";

/// pgbench's version and the rows, one line each, tab-separated, for the
/// parent run to read back with [`parse_rows`].
pub(crate) fn print_rows(pgbench: &str, rows: &[Row]) {
    println!("pgbench\t{pgbench}");
    for row in rows {
        println!(
            "row\t{}\t{}\t{}\t{}\t{}\t{}",
            row.case,
            row.ebb,
            row.baseline,
            row.baseline_name,
            row.required,
            row.driver
                .map_or_else(|| "-".to_owned(), |rate| rate.to_string()),
        );
    }
}

/// What [`print_rows`] printed.
pub(crate) fn parse_rows(text: &str) -> Result<(String, Vec<Row>), crate::BoxError> {
    let mut pgbench = String::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["pgbench", version] => pgbench = (*version).to_owned(),
            ["row", case, ebb, baseline, baseline_name, required, driver] => rows.push(Row {
                case: (*case).to_owned(),
                ebb: ebb.parse()?,
                baseline: baseline.parse()?,
                baseline_name: (*baseline_name).to_owned(),
                required: required.parse()?,
                driver: match *driver {
                    "-" => None,
                    rate => Some(rate.parse()?),
                },
            }),
            _ => return Err(format!("unexpected line from a case's process: {line:?}").into()),
        }
    }
    Ok((pgbench, rows))
}

/// The table and how it was measured, on stdout.
pub(crate) fn print_report(settings: &Settings, pgbench: &str, rows: &[Row], elapsed: Duration) {
    println!();
    println!(
        "ebb-message-store vs pgbench {pgbench} (-M prepared), each case in a process and private cluster of its own, {} CPUs, fsync off",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "each side measured in {} slices per case (interleaved A B C C B A ...; median), {}s per slice ({}s for reads) \
         after {}s warm-up per side; a fresh database per side and write case; one writer on a {} runtime",
        settings.runs,
        settings.seconds,
        settings.read_seconds,
        settings.warmup_seconds,
        settings.one_writer_runtime(),
    );
    println!();
    println!(
        "| {:<44} | {:>10} | {:>10} | {:<10} | {:>6} | {:>8} | {:<6} | {:>14} |",
        "case", "ebb msg/s", "vs msg/s", "vs", "ratio", "required", "result", "tokio-postgres"
    );
    println!(
        "|{:-<46}|{:->12}|{:->12}|{:-<12}|{:->8}|{:->10}|{:-<8}|{:->16}|",
        "", "", "", "", "", "", "", ""
    );
    for row in rows {
        println!(
            "| {:<44} | {:>10.0} | {:>10.0} | {:<10} | {:>5.2}x | {:>7.1}x | {:<6} | {:>14} |",
            row.case,
            row.ebb,
            row.baseline,
            row.baseline_name,
            row.ratio(),
            row.required,
            if row.passed() { "PASS" } else { "FAIL" },
            row.driver
                .map_or_else(|| "-".to_owned(), |rate| format!("{rate:.0}")),
        );
    }
    println!();
    println!(
        "tokio-postgres: the bare driver ebb uses, one connection and one prepared statement per writer, \
         the same writes; for reference, not a requirement"
    );
    println!();
    let failed = rows.iter().filter(|row| !row.passed()).count();
    if failed == 0 {
        println!("all {} requirements met", rows.len());
    } else {
        println!("{failed} of {} requirements NOT met", rows.len());
    }
    println!("total run time {:.0} s", elapsed.as_secs_f64());
}
