//! `ebb stats`: message counts from Message DB's summary views.

use serde_json::{Map, Value};

use super::consumer_streams;
use super::listing::{self, Column};
use super::{CliError, store};

/// What `ebb stats` counts by and how it prints it.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
The counts come from Message DB's views (message_store.category_type_summary, \
type_summary, stream_summary), which count every message of the store: on a \
large store they take as long as a scan of the whole messages table.")]
pub struct StatsArgs {
    /// What to count messages by: category (and type), type, or stream.
    #[arg(long, value_enum, default_value_t = By::Category)]
    by: By,
    /// One JSON object per line with the view's columns (category and
    /// type, type, or streamName; messageCount; percent) instead of a
    /// table.
    #[arg(long)]
    json: bool,
}

/// A summary view of Message DB's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum By {
    /// `message_store.category_type_summary`: per category and type.
    Category,
    /// `message_store.type_summary`: per type.
    Type,
    /// `message_store.stream_summary`: per stream.
    Stream,
}

impl By {
    /// The view's name and its text columns: (the column, its JSON key,
    /// its table title).
    fn view(
        self,
    ) -> (
        &'static str,
        &'static [(&'static str, &'static str, &'static str)],
    ) {
        match self {
            Self::Category => (
                "message_store.category_type_summary",
                &[
                    ("category", "category", "CATEGORY"),
                    ("type", "type", "TYPE"),
                ],
            ),
            Self::Type => ("message_store.type_summary", &[("type", "type", "TYPE")]),
            Self::Stream => (
                "message_store.stream_summary",
                &[("stream_name", "streamName", "STREAM")],
            ),
        }
    }
}

pub async fn run(args: StatsArgs) -> Result<(), CliError> {
    let (view, names) = args.by.view();
    let selected: Vec<String> = names
        .iter()
        .map(|(column, _, _)| format!("{column}::text"))
        .collect();
    // The view rounds the percentage as numeric; float8 reads as a JSON
    // number.
    let sql = format!(
        "SELECT {}, message_count, percent::float8 FROM {view}",
        selected.join(", ")
    );
    let store = store()?;
    let rows = consumer_streams::client(&store)
        .await?
        .query(&sql, &[])
        .await
        .map_err(|source| CliError::Database {
            action: format!("cannot read {view}"),
            source,
        })?;
    let count = names.len();
    if args.json {
        let lines: Vec<Map<String, Value>> = rows
            .iter()
            .map(|row| {
                let mut line = Map::new();
                for (index, (_, key, _)) in names.iter().enumerate() {
                    line.insert((*key).into(), Value::from(row.get::<_, String>(index)));
                }
                line.insert("messageCount".into(), row.get::<_, i64>(count).into());
                line.insert("percent".into(), row.get::<_, f64>(count + 1).into());
                line
            })
            .collect();
        return listing::print_json_lines(&lines);
    }
    let mut columns: Vec<Column> = names
        .iter()
        .map(|(_, _, title)| Column::text(title))
        .collect();
    columns.push(Column::number("MESSAGES"));
    columns.push(Column::number("PERCENT"));
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells: Vec<String> = (0..count).map(|index| row.get(index)).collect();
            cells.push(row.get::<_, i64>(count).to_string());
            cells.push(format!("{:.2}", row.get::<_, f64>(count + 1)));
            cells
        })
        .collect();
    listing::print_table(&columns, &table)
}
