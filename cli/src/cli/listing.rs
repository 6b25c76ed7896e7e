//! How the operator commands (`consumers`, `stats`, `failures`,
//! `parked list`) print their rows: an aligned table for people, or one
//! JSON object per line for programs (`--json`).

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::CliError;

/// A column of a table: its title, and whether its cells are numbers
/// (aligned right) or text (aligned left).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    pub numeric: bool,
}

impl Column {
    /// A column of text.
    pub const fn text(title: &'static str) -> Self {
        Self {
            title,
            numeric: false,
        }
    }

    /// A column of numbers.
    pub const fn number(title: &'static str) -> Self {
        Self {
            title,
            numeric: true,
        }
    }
}

/// Prints `rows` under `columns`, each column as wide as its widest cell;
/// nothing at all when there are no rows, as `ebb read` prints nothing for
/// an empty stream.
pub fn print_table(columns: &[Column], rows: &[Vec<String>]) -> Result<(), CliError> {
    if rows.is_empty() {
        return Ok(());
    }
    finish(
        io::stdout()
            .lock()
            .write_all(table(columns, rows).as_bytes()),
    )
}

/// Prints each of `items` as one line of JSON.
pub fn print_json_lines<T: Serialize>(items: &[T]) -> Result<(), CliError> {
    let mut text = String::new();
    for item in items {
        let line = serde_json::to_string(item)
            .map_err(|err| CliError::Other(format!("cannot print JSON: {err}")))?;
        text.push_str(&line);
        text.push('\n');
    }
    finish(io::stdout().lock().write_all(text.as_bytes()))
}

/// Prints `text` as it is.
pub fn print_text(text: &str) -> Result<(), CliError> {
    finish(io::stdout().lock().write_all(text.as_bytes()))
}

/// A write to stdout that failed: a failure, unless the reader went away
/// (`ebb consumers | head`), which ends the command quietly.
fn finish(written: io::Result<()>) -> Result<(), CliError> {
    match written.and_then(|()| io::stdout().lock().flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(CliError::Other(format!("cannot write to stdout: {err}"))),
    }
}

/// The table's text: a header line, then one line per row; the last
/// column is not padded, so long errors do not push trailing spaces.
fn table(columns: &[Column], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|column| column.title.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let titles: Vec<String> = columns.iter().map(|c| c.title.to_owned()).collect();
    let mut text = String::new();
    for row in std::iter::once(&titles).chain(rows) {
        let mut line = String::new();
        for (index, (cell, column)) in row.iter().zip(columns).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            let width = widths[index];
            let last = index + 1 == columns.len();
            match (column.numeric, last) {
                (true, _) => line.push_str(&format!("{cell:>width$}")),
                (false, false) => line.push_str(&format!("{cell:<width$}")),
                (false, true) => line.push_str(cell),
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// A time as the tables show it: UTC, to the millisecond.
pub fn table_time(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A time as the JSON lines carry it: RFC 3339, UTC, to the microsecond.
pub fn json_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A count's cell: `~N` when it is an estimate.
pub fn count_cell(count: i64, estimated: bool) -> String {
    if estimated {
        format!("~{count}")
    } else {
        count.to_string()
    }
}

/// A cell for a value that may be missing: `-` when it is.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_align_right_text_left_and_the_last_column_is_not_padded() {
        let columns = [
            Column::text("NAME"),
            Column::number("COUNT"),
            Column::text("NOTE"),
        ];
        let rows = vec![
            vec!["account".to_owned(), "7".to_owned(), "short".to_owned()],
            vec!["a".to_owned(), "12345".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            table(&columns, &rows),
            "NAME     COUNT  NOTE\n\
             account      7  short\n\
             a        12345  x\n"
        );
    }
}
