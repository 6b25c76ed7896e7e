//! What a run prints: progress on stderr while it runs, the figures on stdout at the end.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use crate::Rate;
use crate::settings::{Flavor, Settings};

/// The lowest ratio of ebb's rate to pgbench's that passes: the consumer
/// issue asked for 0.8, the consumer-beyond issue for 0.9 with its settings
/// at their defaults.
pub(crate) const RATIO_REQUIRED: f64 = 0.9;
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

/// One side's passes: every rate in the order run, the median, and the
/// median CPU seconds per pass (client, server).
#[derive(Debug)]
pub(crate) struct Side {
    pub(crate) rates: Vec<Rate>,
    pub(crate) median: Rate,
    pub(crate) cpu: (f64, f64),
}

/// Everything the report shows.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) settings: &'a Settings,
    /// PostgreSQL's version and pgbench's.
    pub(crate) server: &'a str,
    pub(crate) pgbench_version: &'a str,
    pub(crate) pgbench: Side,
    /// ebb on each runtime measured; the requirement applies to the first.
    pub(crate) ebb: Vec<(Flavor, Side)>,
    /// The highest peak RSS of the consumer's processes, in KiB.
    pub(crate) peak_rss_kib: u64,
    /// The whole run, cluster start and loading included.
    pub(crate) elapsed: Duration,
}

impl Report<'_> {
    fn ratio(&self, side: &Side) -> f64 {
        side.median.per_second() / self.pgbench.median.per_second()
    }

    /// True when the consumer runs at its default settings, where the
    /// requirement applies.
    fn at_defaults(&self) -> bool {
        self.settings.position_update_interval
            == ebb_consumer::ConsumerConfig::new("any").position_update_interval
    }

    fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    /// Prints the report; true when both requirements pass.
    pub(crate) fn print(&self) -> bool {
        let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
        println!();
        println!(
            "ebb consumer against pgbench: {} messages in one category, read in batches of {}",
            group(self.settings.messages as f64),
            crate::workload::BATCH_SIZE
        );
        println!(
            "PostgreSQL {} (fsync off), pgbench {}; consumer at {}; \
             {} interleaved passes per side, medians; run took {:.0} s",
            self.server,
            self.pgbench_version,
            if self.at_defaults() {
                "default settings".to_owned()
            } else {
                format!(
                    "default settings but the position recorded every {} messages \
                     (the requirement is not checked)",
                    self.settings.position_update_interval
                )
            },
            self.settings.runs,
            self.elapsed.as_secs_f64()
        );
        let row = |name: &str, side: &Side| {
            let passes = side
                .rates
                .iter()
                .map(|rate| group(rate.per_second()))
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "| {name} | {} | {:.2} | {:.2} | {:.2} | {passes} |",
                group(side.median.per_second()),
                side.median.seconds,
                side.cpu.0,
                side.cpu.1,
            );
        };
        println!();
        println!("| | msg/s | s per pass | client CPU s | server CPU s | passes, msg/s |");
        println!("|---|---:|---:|---:|---:|---|");
        row("pgbench, get_category_messages", &self.pgbench);
        for (flavor, side) in &self.ebb {
            row(
                &format!("ebb consumer, typed handler, {} runtime", flavor.name()),
                side,
            );
        }
        println!();
        println!("| requirement | measured | required | result |");
        println!("|---|---:|---:|---|");
        let mut passed = true;
        for (index, (flavor, side)) in self.ebb.iter().enumerate() {
            let ratio = self.ratio(side);
            if index == 0 && self.at_defaults() {
                passed &= ratio >= RATIO_REQUIRED;
                println!(
                    "| ebb ({}) / pgbench | {ratio:.2}× | ≥ {RATIO_REQUIRED}× | {} |",
                    flavor.name(),
                    verdict(ratio >= RATIO_REQUIRED)
                );
            } else {
                println!(
                    "| ebb ({}) / pgbench | {ratio:.2}× | (not checked) | |",
                    flavor.name()
                );
            }
        }
        let rss_passes = self.peak_rss_mib() < PEAK_RSS_LIMIT_MIB;
        println!(
            "| consumer's peak RSS, any runtime | {:.1} MiB | < {PEAK_RSS_LIMIT_MIB} MiB | {} |",
            self.peak_rss_mib(),
            verdict(rss_passes)
        );
        passed && rss_passes
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
