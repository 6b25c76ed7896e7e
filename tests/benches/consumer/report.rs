//! The report: the rows for the shared harness to print, and the CPU each side spent.

use std::time::Duration;

use ebb_bench::measure::figure_text;
use ebb_bench::{Report, Rounds, Row};

use crate::settings::{Flavor, Settings};

/// The lowest ratio of ebb's rate to pgbench's that passes: the consumer
/// issue asked for 0.8, the consumer-beyond issue for 0.9 with its settings
/// at their defaults.
pub(crate) const RATIO_REQUIRED: f64 = 0.9;
/// The consumer's peak RSS must stay under this many MiB.
pub(crate) const PEAK_RSS_LIMIT_MIB: f64 = 64.0;

/// pgbench running the statement the consumer sends.
pub(crate) const PGBENCH: &str = "pgbench";
/// pgbench calling `get_category_messages`.
pub(crate) const PGBENCH_FUNCTION: &str = "pgbench, function";

/// The side name of ebb on `flavor`.
pub(crate) fn ebb_side(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::CurrentThread => "ebb, current-thread",
        Flavor::MultiThread => "ebb, multi-thread",
    }
}

/// Everything the report shows.
#[derive(Debug)]
pub(crate) struct Figures<'a> {
    pub(crate) settings: &'a Settings,
    /// PostgreSQL's version and pgbench's.
    pub(crate) server: &'a str,
    pub(crate) pgbench_version: &'a str,
    /// Messages per second of every side's passes.
    pub(crate) rates: Rounds,
    /// CPU seconds per pass: the client's process and the whole server.
    pub(crate) client_cpu: Rounds,
    pub(crate) server_cpu: Rounds,
    /// The highest peak RSS of the consumer's processes, in KiB.
    pub(crate) peak_rss_kib: u64,
    /// The whole run, cluster start and loading included.
    pub(crate) elapsed: Duration,
}

impl Figures<'_> {
    /// True when the consumer runs at its default settings, where the
    /// requirement applies.
    fn at_defaults(&self) -> bool {
        self.settings.position_update_interval
            == ebb_consumer::ConsumerConfig::new("any").position_update_interval
            && self.settings.pipeline_connections.is_none()
    }

    fn row(&self, case: String, side: &str, base: &str, name: &str) -> Row {
        Row::rate(case, "msg/s", self.rates.median(side))
            .against(name, self.rates.median(base))
            .paired(self.rates.paired_ratio(side, base))
            .durable(false)
    }

    pub(crate) fn report(&self) -> Report {
        let settings = self.settings;
        let mut report = Report::new(
            "consumer",
            format!(
                "ebb consumer against pgbench {}: {} messages in one category, read in batches of {}",
                self.pgbench_version,
                figure_text(settings.messages as f64),
                crate::workload::BATCH_SIZE
            ),
        );
        report.line(format!(
            "PostgreSQL {} (fsync, synchronous_commit and full_page_writes off); consumer at {}; \
             {} rounds of a full pass per side, in an order that turns by one each round; medians, \
             and medians of the per-round ratios; run took {:.0} s",
            self.server,
            if self.at_defaults() {
                "its default settings".to_owned()
            } else {
                format!(
                    "its default settings but the position recorded every {} messages and \
                     pipeline_connections {:?} (the requirement is not checked)",
                    settings.position_update_interval, settings.pipeline_connections
                )
            },
            settings.runs,
            self.elapsed.as_secs_f64()
        ));
        for (index, &flavor) in settings.runtimes.iter().enumerate() {
            let side = ebb_side(flavor);
            let case = format!(
                "consumer, typed handler, {} runtime, against the same reads",
                flavor.name()
            );
            let row = self.row(case, side, PGBENCH, "pgbench, the statement ebb sends");
            report.row(if index == 0 && self.at_defaults() {
                row.required(RATIO_REQUIRED)
            } else {
                row
            });
            report.row(self.row(
                format!(
                    "consumer, typed handler, {} runtime, as a Message DB user reads",
                    flavor.name()
                ),
                side,
                PGBENCH_FUNCTION,
                "pgbench, get_category_messages",
            ));
        }
        report.row(
            Row::time(
                "consumer's peak RSS, any runtime",
                "MiB",
                self.peak_rss_kib as f64 / 1024.0,
            )
            .limit(PEAK_RSS_LIMIT_MIB)
            .durable(false),
        );
        report.note("CPU seconds per pass (medians; the client's process, the whole server) and every pass:");
        let mut sides = vec![PGBENCH, PGBENCH_FUNCTION];
        sides.extend(settings.runtimes.iter().map(|&flavor| ebb_side(flavor)));
        for side in sides {
            let passes: Vec<String> = self
                .rates
                .figures(side)
                .iter()
                .map(|rate| figure_text(*rate))
                .collect();
            report.note(format!(
                "- {side}: client {:.2} s, server {:.2} s; passes {} msg/s",
                self.client_cpu.median(side),
                self.server_cpu.median(side),
                passes.join(", ")
            ));
        }
        for &flavor in &settings.runtimes {
            let ratios: Vec<String> = self
                .rates
                .ratios(ebb_side(flavor), PGBENCH)
                .iter()
                .map(|ratio| format!("{ratio:.2}"))
                .collect();
            report.note(format!(
                "{} / pgbench round by round: {}",
                ebb_side(flavor),
                ratios.join(", ")
            ));
        }
        report
    }
}
