//! How `ebb read` and `ebb tail` print messages: an aligned table for
//! people, or one JSON object per line for programs (`--json`).

use std::io::{self, IsTerminal as _, Write};

use chrono::SecondsFormat;
use ebb_message_store::{JsonText, Message, Metadata};
use serde::Serialize;

use super::CliError;

/// How many characters of a message's data the table shows.
const DATA_WIDTH: usize = 60;

/// The table's column titles, in order.
const TITLES: [&str; 6] = ["GLOBAL", "POSITION", "STREAM", "TYPE", "TIME", "DATA"];

/// Where messages go and in which form.
#[derive(Debug)]
pub struct Printer {
    /// One JSON object per line instead of the table.
    json: bool,
    /// ANSI colours in the table: only when stdout is a terminal and
    /// `NO_COLOR` is not set, so that pipes and files get plain text.
    colour: bool,
    /// The widths of the table's first five columns (the data, last, is
    /// not padded). They only grow, so that `tail`, which cannot know its
    /// rows ahead, keeps its columns aligned as far as it can.
    widths: [usize; 5],
    /// Whether the table's header line has been printed.
    header_printed: bool,
}

/// What `--json` prints for one message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonLine<'a> {
    id: uuid::Uuid,
    stream_name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    position: i64,
    global_position: i64,
    /// The stored JSON as it is, not as a string.
    data: &'a JsonText,
    metadata: &'a Metadata,
    /// RFC 3339, UTC.
    time: String,
}

/// Whether stdout still has a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// Everything was printed.
    All,
    /// The reader of stdout went away (`ebb read ... | head`): the command
    /// ends, without an error.
    ReaderGone,
}

impl Printer {
    /// A printer in the form `json` asks for, coloured if stdout is a
    /// terminal.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            colour: io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            widths: [0, 1, 2, 3, 4].map(|column| TITLES[column].len()),
            header_printed: false,
        }
    }

    /// Prints `messages`, aligning the table's columns over all of them.
    /// A write error other than a reader gone away is a failure.
    pub fn print(&mut self, messages: &[Message]) -> Result<Printed, CliError> {
        if messages.is_empty() {
            return Ok(Printed::All);
        }
        let mut out = io::stdout().lock();
        let written = if self.json {
            self.write_json(&mut out, messages)
        } else {
            self.write_table(&mut out, messages)
        };
        match written.and_then(|()| out.flush()) {
            Ok(()) => Ok(Printed::All),
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(Printed::ReaderGone),
            Err(err) => Err(CliError::Other(format!("cannot write to stdout: {err}"))),
        }
    }

    fn write_json(&self, out: &mut impl Write, messages: &[Message]) -> io::Result<()> {
        for message in messages {
            let line = JsonLine {
                id: message.id,
                stream_name: &message.stream_name,
                type_name: &message.type_name,
                position: message.position,
                global_position: message.global_position,
                data: &message.data,
                metadata: &message.metadata,
                time: message.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            };
            serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn write_table(&mut self, out: &mut impl Write, messages: &[Message]) -> io::Result<()> {
        let rows: Vec<[String; 6]> = messages.iter().map(row).collect();
        for row in &rows {
            for (width, cell) in self.widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        if !self.header_printed {
            self.header_printed = true;
            let titles = TITLES.map(str::to_owned);
            self.write_row(out, &titles, Style::Header)?;
        }
        for row in &rows {
            self.write_row(out, row, Style::Body)?;
        }
        Ok(())
    }

    fn write_row(&self, out: &mut impl Write, row: &[String; 6], style: Style) -> io::Result<()> {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            let padded = match self.widths.get(column) {
                // Numbers align right, text left.
                Some(&width) if column < 2 => format!("{cell:>width$}"),
                Some(&width) if column + 1 < row.len() => format!("{cell:<width$}"),
                _ => cell.clone(),
            };
            line.push_str(&self.paint(&padded, style, column));
        }
        writeln!(out, "{}", line.trim_end())
    }

    /// `text` in the column's colour, when colour is on.
    fn paint(&self, text: &str, style: Style, column: usize) -> String {
        if !self.colour {
            return text.to_owned();
        }
        let code = match (style, column) {
            (Style::Header, _) => "1",   // bold
            (Style::Body, 2) => "36",    // stream: cyan
            (Style::Body, 3) => "1;33",  // type: bold yellow
            (Style::Body, 4) => "2",     // time: dim
            _ => return text.to_owned(), // positions and data: plain
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// Which kind of line a row is, for its colour.
#[derive(Debug, Clone, Copy)]
enum Style {
    Header,
    Body,
}

/// A message's table cells.
fn row(message: &Message) -> [String; 6] {
    [
        message.global_position.to_string(),
        message.position.to_string(),
        message.stream_name.clone(),
        message.type_name.clone(),
        message.time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        abbreviate(&compact(&message.data), DATA_WIDTH),
    ]
}

/// The data on one line without the spaces PostgreSQL's `jsonb` prints
/// (`{"a": 1}` becomes `{"a":1}`), or as stored if it does not decode.
fn compact(data: &JsonText) -> String {
    data.to_value().map_or_else(
        |_| data.as_str().replace('\n', " "),
        |value| value.to_string(),
    )
}

/// `text` cut to `width` characters, the cut marked with an ellipsis.
fn abbreviate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(global_position: i64, stream_name: &str, data: serde_json::Value) -> Message {
        Message {
            id: uuid::Uuid::nil(),
            stream_name: stream_name.into(),
            type_name: "Deposited".into(),
            position: 0,
            global_position,
            data: data.into(),
            metadata: Metadata {
                correlation_stream_name: Some("transfer-1".into()),
                ..Metadata::default()
            },
            time: "2024-05-06T07:08:09.123456Z".parse().unwrap(),
        }
    }

    fn plain(json: bool) -> Printer {
        Printer {
            colour: false,
            ..Printer::new(json)
        }
    }

    fn lines(printer: &mut Printer, messages: &[Message]) -> Vec<String> {
        let mut out = Vec::new();
        if printer.json {
            printer.write_json(&mut out, messages).unwrap();
        } else {
            printer.write_table(&mut out, messages).unwrap();
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn json_lines_carry_data_and_metadata_as_json_values() {
        let lines = lines(
            &mut plain(true),
            &[message(7, "account-1", json!({ "amount": 10 }))],
        );
        assert_eq!(lines.len(), 1);
        let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            value,
            json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "streamName": "account-1",
                "type": "Deposited",
                "position": 0,
                "globalPosition": 7,
                "data": { "amount": 10 },
                "metadata": { "correlationStreamName": "transfer-1" },
                "time": "2024-05-06T07:08:09.123456Z",
            })
        );
    }

    #[test]
    fn the_table_aligns_its_columns_and_abbreviates_the_data() {
        let long = "x".repeat(100);
        let lines = lines(
            &mut plain(false),
            &[
                message(7, "account-1", json!({ "a": 1 })),
                message(12345, "account-22", json!({ "long": long })),
            ],
        );
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].starts_with("GLOBAL  POSITION  STREAM "),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with(
                "     7         0  account-1   Deposited  2024-05-06 07:08:09.123  {\"a\":1}"
            ),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with(" 12345         0  account-22  Deposited"),
            "{lines:#?}"
        );
        let data = lines[2].rsplit("  ").next().unwrap();
        assert_eq!(data.chars().count(), DATA_WIDTH);
        assert!(data.ends_with('…'), "{data}");
    }

    #[test]
    fn columns_only_grow_across_batches() {
        let mut printer = plain(false);
        let first = lines(&mut printer, &[message(1, "account-123456789", json!({}))]);
        let second = lines(&mut printer, &[message(2, "account-1", json!({}))]);
        assert_eq!(first.len(), 2, "header and row");
        assert_eq!(second.len(), 1, "no second header");
        assert_eq!(
            first[1].find("Deposited"),
            second[0].find("Deposited"),
            "{first:#?} {second:#?}"
        );
    }
}
