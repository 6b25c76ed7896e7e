//! The report: the rows for the shared harness to print, and every mode's figures under them.

use std::time::Duration;

use ebb_bench::{Report, Row, median};

use crate::settings::Settings;
use crate::workload::{Case, Mode, Pass};

/// The lowest ratio of the write rate with notifications to the rate
/// without that passes.
pub(crate) const RATIO_REQUIRED: f64 = 0.9;

/// The passes of one case in one mode, in the order of the rounds.
#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) case: Case,
    pub(crate) mode: Mode,
    pub(crate) passes: Vec<Pass>,
}

impl Figures {
    fn median_of(&self, figure: impl Fn(&Pass) -> f64) -> f64 {
        median(self.passes.iter().map(figure))
    }
}

/// Everything the report shows.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) server: String,
    pub(crate) figures: Vec<Figures>,
    pub(crate) elapsed: Duration,
}

impl Run<'_> {
    fn figures(&self, case: Case, mode: Mode) -> Option<&Figures> {
        self.figures
            .iter()
            .find(|f| f.case == case && f.mode == mode)
    }

    /// `mode` against "off" in `case`: medians, and the median of the
    /// per-round ratios (each round runs every mode once).
    fn row(&self, case: Case, mode: Mode) -> Option<Row> {
        let side = self.figures(case, mode)?;
        let off = self.figures(case, Mode::Off)?;
        let ratios = side
            .passes
            .iter()
            .zip(&off.passes)
            .map(|(side, off)| side.writes_per_second / off.writes_per_second);
        Some(
            Row::rate(
                format!("writes, {}, notifications {}", case.name(), mode.name()),
                "writes/s",
                side.median_of(|p| p.writes_per_second),
            )
            .against(
                "notifications off (trigger disabled)",
                off.median_of(|p| p.writes_per_second),
            )
            .paired(median(ratios))
            .durable(true),
        )
    }

    pub(crate) fn report(&self) -> Report {
        let s = self.settings;
        let mut report = Report::new("notify", "write cost of wake-ups (LISTEN/NOTIFY)");
        report.line(format!(
            "PostgreSQL {} on a durable private cluster (fsync, synchronous_commit and \
             full_page_writes on); {} writers, {} s per pass, {} rounds, modes in an order that \
             turns by one each round; medians, and medians of the per-round ratios; poll {} ms; \
             busy window {:?}, busy poll {:?} (None: the store's default); run took {:.0} s",
            self.server,
            s.writers,
            s.seconds,
            s.rounds,
            s.poll.as_millis(),
            s.busy_window,
            s.busy_poll,
            self.elapsed.as_secs_f64()
        ));
        for case in Case::ALL {
            for mode in [
                Mode::On,
                Mode::TriggerOnly,
                Mode::OffFastPoll,
                Mode::OnEveryArming,
            ] {
                if let Some(row) = self.row(case, mode) {
                    report.row(if mode == Mode::On {
                        row.required(RATIO_REQUIRED)
                    } else {
                        row
                    });
                }
            }
        }
        report.note(
            "Every mode (medians of the passes; arm calls, NOTIFYs and consumer reads per second):",
        );
        report.note(
            "| case | notifications | writes/s | passes | arm calls/s | NOTIFYs/s | reads/s |",
        );
        report.note("|---|---|---:|---|---:|---:|---:|");
        for figures in &self.figures {
            let passes: Vec<String> = figures
                .passes
                .iter()
                .map(|p| format!("{:.0}", p.writes_per_second))
                .collect();
            report.note(format!(
                "| {} | {} | {:.0} | {} | {:.0} | {:.0} | {:.0} |",
                figures.case.name(),
                figures.mode.name(),
                figures.median_of(|p| p.writes_per_second),
                passes.join(", "),
                figures.median_of(|p| p.arms_per_second),
                figures.median_of(|p| p.notifications_per_second),
                figures.median_of(|p| p.reads_per_second),
            ));
        }
        report
    }
}
