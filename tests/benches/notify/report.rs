//! What a run prints: progress on stderr while it runs, the figures on
//! stdout at the end.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use crate::settings::Settings;
use crate::workload::{Case, Mode, Pass};

/// The lowest ratio of the write rate with notifications to the rate
/// without that passes.
pub(crate) const RATIO_REQUIRED: f64 = 0.9;

/// One line of progress on stderr.
pub(crate) fn progress(what: impl std::fmt::Display) {
    eprintln!("[bench] {what}");
}

/// The passes of one case in one mode, in the order run.
#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) case: Case,
    pub(crate) mode: Mode,
    pub(crate) passes: Vec<Pass>,
}

impl Figures {
    pub(crate) fn median(&self) -> f64 {
        crate::median(self.passes.iter().map(|p| p.writes_per_second))
    }

    fn median_of(&self, figure: impl Fn(&Pass) -> f64) -> f64 {
        crate::median(self.passes.iter().map(figure))
    }
}

/// Everything the report shows.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) server: String,
    pub(crate) figures: Vec<Figures>,
    pub(crate) elapsed: Duration,
}

impl Report<'_> {
    fn figures(&self, case: Case, mode: Mode) -> Option<&Figures> {
        self.figures
            .iter()
            .find(|f| f.case == case && f.mode == mode)
    }

    /// The ratio of `mode`'s median to "off"'s, in `case`.
    fn ratio(&self, case: Case, mode: Mode) -> Option<f64> {
        self.ratio_to(case, mode, Mode::Off)
    }

    /// The ratio of `mode`'s median to `base`'s, in `case`.
    fn ratio_to(&self, case: Case, mode: Mode, base: Mode) -> Option<f64> {
        Some(self.figures(case, mode)?.median() / self.figures(case, base)?.median())
    }

    /// True when every case keeps the required ratio with notifications
    /// as ebb ships them (mode `on`, the store's default settings).
    pub(crate) fn passed(&self) -> bool {
        Case::ALL.iter().all(|&case| {
            self.ratio(case, Mode::On)
                .is_some_and(|r| r >= RATIO_REQUIRED)
        })
    }

    pub(crate) fn print(&self) {
        let s = self.settings;
        println!("# write cost of wake-ups (LISTEN/NOTIFY)");
        println!(
            "PostgreSQL {} (durable: fsync and synchronous_commit on); {} writers, \
             {} s per pass, {} rounds, poll {} ms; busy window {:?}, busy poll {:?} \
             (None: the store's default); run took {:.0} s",
            self.server,
            s.writers,
            s.seconds,
            s.rounds,
            s.poll.as_millis(),
            s.busy_window,
            s.busy_poll,
            self.elapsed.as_secs_f64()
        );
        println!();
        println!(
            "| case | notifications | writes/s (median) | passes | arm calls/s | NOTIFYs/s | reads/s | ratio to off | to off, fast poll |"
        );
        println!("|---|---|---:|---|---:|---:|---:|---:|---:|");
        for figures in &self.figures {
            let passes: Vec<String> = figures
                .passes
                .iter()
                .map(|p| format!("{:.0}", p.writes_per_second))
                .collect();
            let (ratio, to_fast) = match figures.mode {
                Mode::Off | Mode::OffFastPoll => ("-".to_owned(), "-".to_owned()),
                mode => (
                    format!("{:.2}x", self.ratio(figures.case, mode).unwrap_or(f64::NAN)),
                    format!(
                        "{:.2}x",
                        self.ratio_to(figures.case, mode, Mode::OffFastPoll)
                            .unwrap_or(f64::NAN)
                    ),
                ),
            };
            println!(
                "| {} | {} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {ratio} | {to_fast} |",
                figures.case.name(),
                figures.mode.name(),
                figures.median(),
                passes.join(", "),
                figures.median_of(|p| p.arms_per_second),
                figures.median_of(|p| p.notifications_per_second),
                figures.median_of(|p| p.reads_per_second),
            );
        }
        println!();
        for case in Case::ALL {
            for mode in [Mode::TriggerOnly, Mode::On, Mode::OnEveryArming] {
                if let Some(ratio) = self.ratio(case, mode) {
                    let verdict = if ratio >= RATIO_REQUIRED {
                        "PASS"
                    } else {
                        "FAIL"
                    };
                    println!(
                        "{}, {}: {ratio:.2}x of off (required {RATIO_REQUIRED}x): {verdict}",
                        case.name(),
                        mode.name()
                    );
                }
            }
        }
        println!(
            "requirement (each case at least {RATIO_REQUIRED}x with notifications on, as ebb ships them): {}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
    }
}
