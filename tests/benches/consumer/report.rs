//! What a run prints: progress on stderr while it runs, the figures on stdout at the end.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use crate::Rate;
use crate::settings::Settings;

/// The lowest ratio of ebb's rate to pgbench's that passes.
pub(crate) const RATIO_REQUIRED: f64 = 0.8;
/// The consumer's peak RSS must stay under this many MiB.
pub(crate) const PEAK_RSS_LIMIT_MIB: f64 = 64.0;

/// One line of progress on stderr.
pub(crate) fn progress(what: impl std::fmt::Display) {
    eprintln!("[bench] {what}");
}

/// The consumer process's result line, on its stdout, for the run to read.
pub(crate) fn result_line(line: &str) {
    println!("{line}");
}

/// Everything the report shows.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) settings: &'a Settings,
    /// PostgreSQL's version and pgbench's.
    pub(crate) server: &'a str,
    pub(crate) pgbench_version: &'a str,
    /// Every pass of each side, in the order run.
    pub(crate) pgbench: &'a [Rate],
    pub(crate) ebb: &'a [Rate],
    /// The medians.
    pub(crate) pgbench_median: Rate,
    pub(crate) ebb_median: Rate,
    /// Median CPU seconds per pass, (client, server): pgbench's, then ebb's.
    pub(crate) cpu: [(f64, f64); 2],
    /// The highest peak RSS of the consumer's processes, in KiB.
    pub(crate) peak_rss_kib: u64,
    /// The whole run, cluster start and loading included.
    pub(crate) elapsed: Duration,
}

impl Report<'_> {
    pub(crate) fn ratio(&self) -> f64 {
        self.ebb_median.per_second() / self.pgbench_median.per_second()
    }

    pub(crate) fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    pub(crate) fn ratio_passes(&self) -> bool {
        self.ratio() >= RATIO_REQUIRED
    }

    pub(crate) fn rss_passes(&self) -> bool {
        self.peak_rss_mib() < PEAK_RSS_LIMIT_MIB
    }

    /// Prints the report; true when both requirements pass.
    pub(crate) fn print(&self) -> bool {
        let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
        let settings = self.settings;
        println!();
        println!(
            "ebb consumer against pgbench: {} messages in one category, read in batches of {}",
            group(self.settings.messages as f64),
            crate::workload::BATCH_SIZE
        );
        println!(
            "PostgreSQL {} (fsync off), pgbench {}; consumer at default settings on tokio's {} runtime; \
             {} interleaved passes per side, medians; run took {:.0} s",
            self.server,
            self.pgbench_version,
            settings.runtime(),
            settings.runs,
            self.elapsed.as_secs_f64()
        );
        let passes = |rates: &[Rate]| {
            rates
                .iter()
                .map(|rate| group(rate.per_second()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!();
        println!("| | msg/s | s per pass | client CPU s | server CPU s | passes, msg/s |");
        println!("|---|---:|---:|---:|---:|---|");
        println!(
            "| pgbench, get_category_messages | {} | {:.2} | {:.2} | {:.2} | {} |",
            group(self.pgbench_median.per_second()),
            self.pgbench_median.seconds,
            self.cpu[0].0,
            self.cpu[0].1,
            passes(self.pgbench)
        );
        println!(
            "| ebb consumer, typed handler | {} | {:.2} | {:.2} | {:.2} | {} |",
            group(self.ebb_median.per_second()),
            self.ebb_median.seconds,
            self.cpu[1].0,
            self.cpu[1].1,
            passes(self.ebb)
        );
        println!();
        println!("| requirement | measured | required | result |");
        println!("|---|---:|---:|---|");
        println!(
            "| ebb / pgbench | {:.2}× | ≥ {RATIO_REQUIRED}× | {} |",
            self.ratio(),
            verdict(self.ratio_passes())
        );
        println!(
            "| consumer's peak RSS | {:.1} MiB | < {PEAK_RSS_LIMIT_MIB} MiB | {} |",
            self.peak_rss_mib(),
            verdict(self.rss_passes())
        );
        self.ratio_passes() && self.rss_passes()
    }
}

/// `1234567.8` as `1,234,568`.
fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
