//! What a bench reports: rows, printed as one table on stdout, written as
//! a JSON array to the file `EBB_BENCH_JSON` names, and the exit code.
//!
//! A row is one case: ebb's figure, what it is compared with (another
//! program's figure, another setting of ebb, or a fixed limit), the ratio,
//! the lowest ratio that passes, the unit, and whether the cluster it ran
//! on was durable. The ratio says how many times better ebb did than the
//! baseline whatever the unit: ebb / baseline for rates (higher is
//! better), baseline / ebb for times and sizes (lower is better). A row
//! passes when its ratio is at least its `required`; a row without a
//! requirement is reported, not checked.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::BoxError;
use crate::measure::figure_text;

/// Set to a file name: every bench writes its rows there, as a JSON array.
pub const JSON_VARIABLE: &str = "EBB_BENCH_JSON";

/// Which way is better for a row's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// A rate: more per second is better; ratio = ebb / baseline.
    Higher,
    /// A time or a size: less is better; ratio = baseline / ebb.
    Lower,
}

/// One case of a bench.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// The bench it comes from (`store`, `consumer`, ...).
    pub bench: String,
    /// What was measured.
    pub case: String,
    /// ebb's figure (a median, or a percentile).
    pub ebb: f64,
    /// The figure ebb is compared with, if any.
    pub baseline: Option<f64>,
    /// What the baseline is: `pgbench, the same statement`, `limit`, ...
    pub baseline_name: String,
    /// How many times better ebb did than the baseline (see the module's
    /// documentation); the median of the paired per-round ratios where
    /// both were measured in the same rounds.
    pub ratio: Option<f64>,
    /// The lowest ratio that passes; `None`: reported, not required.
    pub required: Option<f64>,
    /// Whether the requirement is met; `None` without one.
    pub pass: Option<bool>,
    /// The unit of `ebb` and `baseline`.
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// Whether the cluster ran with `fsync`, `synchronous_commit` and
    /// `full_page_writes` on; `None` for a bench without a database.
    pub durable: Option<bool>,
}

impl Row {
    fn new(case: impl Into<String>, unit: &str, ebb: f64, better: Better) -> Self {
        Self {
            bench: String::new(),
            case: case.into(),
            ebb,
            baseline: None,
            baseline_name: String::new(),
            ratio: None,
            required: None,
            pass: None,
            unit: unit.to_owned(),
            better,
            durable: None,
        }
    }

    /// A rate, higher is better.
    pub fn rate(case: impl Into<String>, unit: &str, ebb: f64) -> Self {
        Self::new(case, unit, ebb, Better::Higher)
    }

    /// A time or a size, lower is better.
    pub fn time(case: impl Into<String>, unit: &str, ebb: f64) -> Self {
        Self::new(case, unit, ebb, Better::Lower)
    }

    /// Compared with `baseline`, named `name`; the ratio is that of the
    /// two figures until [`paired`](Self::paired) sets it.
    #[must_use]
    pub fn against(mut self, name: impl Into<String>, baseline: f64) -> Self {
        self.baseline_name = name.into();
        self.baseline = Some(baseline);
        self.ratio = Some(match self.better {
            Better::Higher => self.ebb / baseline,
            Better::Lower => baseline / self.ebb,
        });
        self.check();
        self
    }

    /// The ratio as measured round by round: the median of the per-round
    /// ratios `ebb / baseline` (given that way round whatever the unit;
    /// inverted here for a time).
    #[must_use]
    pub fn paired(mut self, ebb_over_baseline: f64) -> Self {
        self.ratio = Some(match self.better {
            Better::Higher => ebb_over_baseline,
            Better::Lower => 1.0 / ebb_over_baseline,
        });
        self.check();
        self
    }

    /// Required to be at least `required` times better than the baseline.
    #[must_use]
    pub fn required(mut self, required: f64) -> Self {
        self.required = Some(required);
        self.check();
        self
    }

    /// Required to stay within `limit` (at most, for a time; at least,
    /// for a rate): the baseline is the limit and the ratio must be at
    /// least 1.
    #[must_use]
    pub fn limit(self, limit: f64) -> Self {
        self.against("limit", limit).required(1.0)
    }

    /// Whether the cluster was durable.
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = Some(durable);
        self
    }

    fn check(&mut self) {
        self.pass = match (self.ratio, self.required) {
            (Some(ratio), Some(required)) => Some(ratio >= required),
            _ => None,
        };
    }

    fn result(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "",
        }
    }
}

/// A bench's report: a title, lines that say how it was measured, its
/// rows and notes.
#[derive(Debug)]
pub struct Report {
    bench: String,
    title: String,
    lines: Vec<String>,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    /// An empty report of the bench `bench` (its target's name).
    pub fn new(bench: &str, title: impl Into<String>) -> Self {
        Self {
            bench: bench.to_owned(),
            title: title.into(),
            lines: Vec::new(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A line of the header: the machine, the server, the method.
    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Adds a row.
    pub fn row(&mut self, mut row: Row) {
        row.bench.clone_from(&self.bench);
        self.rows.push(row);
    }

    /// Adds rows a case's own process printed with [`print_rows`].
    pub fn extend(&mut self, rows: impl IntoIterator<Item = Row>) {
        for row in rows {
            self.row(row);
        }
    }

    /// A line under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// True when no row misses its requirement.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|row| row.pass != Some(false))
    }

    /// Prints the report on stdout.
    pub fn print(&self) {
        println!();
        println!("# {}", self.title);
        for line in &self.lines {
            println!("{line}");
        }
        println!();
        print_table(&self.rows, false);
        if !self.notes.is_empty() {
            println!();
            for note in &self.notes {
                println!("{note}");
            }
        }
        let required = self.rows.iter().filter(|row| row.pass.is_some()).count();
        let failed = self
            .rows
            .iter()
            .filter(|row| row.pass == Some(false))
            .count();
        println!();
        if failed == 0 {
            println!("all {required} requirements met");
        } else {
            println!("{failed} of {required} requirements NOT met");
        }
    }

    /// Writes the rows to `EBB_BENCH_JSON`'s file, if it is set.
    pub fn write_json(&self) -> Result<(), BoxError> {
        if let Some(path) = std::env::var_os(JSON_VARIABLE).filter(|path| !path.is_empty()) {
            std::fs::write(&path, serde_json::to_string_pretty(&self.rows)? + "\n")
                .map_err(|err| format!("{JSON_VARIABLE}={}: {err}", path.to_string_lossy()))?;
        }
        Ok(())
    }

    /// Prints the report, writes the JSON, and gives the exit code:
    /// failure when a requirement is missed (or the JSON could not be
    /// written).
    pub fn finish(&self) -> ExitCode {
        self.print();
        if let Err(err) = self.write_json() {
            eprintln!("[bench] {err}");
            return ExitCode::FAILURE;
        }
        if self.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Runs a bench's `run`, which returns its report, and exits as
/// [`Report::finish`] says; an error is printed and fails the run.
pub fn main(run: impl FnOnce() -> Result<Report, BoxError>) -> ExitCode {
    match run() {
        Ok(report) => report.finish(),
        Err(err) => {
            eprintln!("[bench] failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Rows as one line of JSON on stdout, for a parent process to read with
/// [`parse_rows`] (a bench that runs each case in a process of its own).
pub fn print_rows(rows: &[Row]) -> Result<(), BoxError> {
    println!("{}", serde_json::to_string(rows)?);
    Ok(())
}

/// The rows a case's process printed with [`print_rows`].
pub fn parse_rows(stdout: &str) -> Result<Vec<Row>, BoxError> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('['))
        .ok_or_else(|| format!("no rows in a case's output:\n{stdout}"))?;
    Ok(serde_json::from_str(line)?)
}

/// The rows as a Markdown table on stdout, with a bench column when
/// `with_bench`.
pub fn print_table(rows: &[Row], with_bench: bool) {
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = vec![
        "case", "ebb", "baseline", "vs", "unit", "ratio", "required", "result", "durable",
    ];
    if with_bench {
        header.insert(0, "bench");
    }
    for row in rows {
        let mut cells = vec![
            row.case.clone(),
            figure_text(row.ebb),
            row.baseline.map(figure_text).unwrap_or_default(),
            row.baseline_name.clone(),
            row.unit.clone(),
            row.ratio
                .map(|ratio| format!("{ratio:.2}×"))
                .unwrap_or_default(),
            row.required
                .map(|required| format!("≥ {required}×"))
                .unwrap_or_default(),
            row.result().to_owned(),
            match row.durable {
                Some(true) => "yes".to_owned(),
                Some(false) => "no".to_owned(),
                None => String::new(),
            },
        ];
        if with_bench {
            cells.insert(0, row.bench.clone());
        }
        table.push(cells);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            table
                .iter()
                .map(|cells| cells[column].chars().count())
                .chain([header[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Numbers right-aligned, text left-aligned.
    let right = |name: &str| matches!(name, "ebb" | "baseline" | "ratio" | "required");
    let line = |cells: Vec<String>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&header)
            .map(|((cell, width), name)| {
                let pad = width - cell.chars().count();
                if right(name) {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
    };
    line(header.iter().map(|name| (*name).to_owned()).collect());
    println!(
        "|{}|",
        widths
            .iter()
            .zip(&header)
            .map(|(width, name)| if right(name) {
                format!("{}:", "-".repeat(width + 1))
            } else {
                "-".repeat(width + 2)
            })
            .collect::<Vec<_>>()
            .join("|")
    );
    for cells in table {
        line(cells);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_point_the_way_that_is_better() {
        let rate = Row::rate("reads", "msg/s", 90.0)
            .against("pgbench", 100.0)
            .required(0.9);
        assert_eq!(rate.ratio, Some(0.9));
        assert_eq!(rate.pass, Some(true));
        let time = Row::time("retry", "ns/call", 20.0)
            .against("backon", 10.0)
            .required(1.0);
        assert_eq!(time.ratio, Some(0.5));
        assert_eq!(time.pass, Some(false));
        let limit = Row::time("p50", "ms", 4.0).limit(5.0);
        assert_eq!(limit.ratio, Some(1.25));
        assert_eq!(limit.pass, Some(true));
        let paired = Row::time("retry", "ns/call", 20.0)
            .against("backon", 10.0)
            .paired(0.5);
        assert_eq!(paired.ratio, Some(2.0));
    }

    #[test]
    fn rows_travel_as_json() {
        let rows = vec![Row::rate("a case", "msg/s", 1.5).durable(false)];
        let text = serde_json::to_string(&rows).expect("serializes");
        let back = parse_rows(&format!("noise\n{text}\n")).expect("parses");
        assert_eq!(back[0].case, "a case");
        assert_eq!(back[0].durable, Some(false));
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for field in [
            "case", "ebb", "baseline", "ratio", "required", "unit", "durable",
        ] {
            assert!(value[0].get(field).is_some(), "{field} is written");
        }
    }
}
