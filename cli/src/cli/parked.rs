//! `ebb parked list` and `ebb parked show`: the messages a category's
//! consumers parked, from their parked streams (`Parked` records, as
//! [`ebb_consumer::read_parked`] reads them for one consumer).

use ebb_consumer::Parked;
use ebb_handler::MessageType as _;
use ebb_message_store::{Message, PgStore};
use serde::Serialize;

use super::consumer_streams::{self, ConsumerName, PARKED};
use super::listing::{self, Column};
use super::{CliError, store};

/// What `ebb parked` does.
#[derive(Debug, clap::Subcommand)]
pub enum ParkedCommand {
    /// List the messages parked by the consumers of CATEGORY, oldest
    /// first.
    List(ListArgs),
    /// Print one parked message whole: its record, data and metadata.
    Show(ShowArgs),
}

/// Whose parked messages `ebb parked list` lists, and how.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
A consumer parks a message (a `Parked` message in CATEGORY:parked-ID, or \
CATEGORY+parked-ID when the category has a type) that its handlers failed \
on too often, and goes on without it. GLOBAL is the parked message's own \
global position, which `ebb parked show` takes.")]
pub struct ListArgs {
    /// The category the consumers read (`account`, `account:command`).
    category: String,
    /// Only the consumer with this identifier (default: every consumer of
    /// the category).
    #[arg(long, value_name = "ID")]
    consumer: Option<String>,
    /// One JSON object per line (category, identifier, globalPosition,
    /// streamName, position, type, error, failures, parkedAt) instead of
    /// a table.
    #[arg(long)]
    json: bool,
}

/// Which parked message `ebb parked show` prints.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The category the consumers read (`account`, `account:command`).
    category: String,
    /// The parked message's global position (GLOBAL in `ebb parked list`).
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    global_position: i64,
    /// Only the consumer with this identifier (default: every consumer of
    /// the category that parked the message).
    #[arg(long, value_name = "ID")]
    consumer: Option<String>,
}

/// What `list --json` prints for one parked message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ParkedLine {
    category: String,
    identifier: Option<String>,
    global_position: i64,
    stream_name: String,
    position: i64,
    #[serde(rename = "type")]
    type_name: String,
    error: String,
    failures: u32,
    /// RFC 3339, UTC: when the message was parked.
    parked_at: String,
}

pub async fn run(command: ParkedCommand) -> Result<(), CliError> {
    match command {
        ParkedCommand::List(args) => list(args).await,
        ParkedCommand::Show(args) => show(args).await,
    }
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let consumer = ConsumerName::new(&args.category, args.consumer.as_deref())?;
    let store = store()?;
    let parked = parked(&store, &consumer).await?;
    if args.json {
        let lines: Vec<ParkedLine> = parked
            .into_iter()
            .map(|(owner, record, parked)| ParkedLine {
                category: owner.category,
                identifier: owner.identifier,
                global_position: parked.global_position,
                stream_name: parked.stream_name,
                position: parked.position,
                type_name: parked.type_name,
                error: parked.error,
                failures: parked.failures,
                parked_at: listing::json_time(&record.time),
            })
            .collect();
        return listing::print_json_lines(&lines);
    }
    let columns = [
        Column::text("CONSUMER"),
        Column::number("GLOBAL"),
        Column::text("STREAM"),
        Column::number("POSITION"),
        Column::text("TYPE"),
        Column::number("FAILURES"),
        Column::text("PARKED"),
        Column::text("ERROR"),
    ];
    let rows: Vec<Vec<String>> = parked
        .into_iter()
        .map(|(owner, record, parked)| {
            vec![
                owner.identifier.unwrap_or_else(|| "-".into()),
                parked.global_position.to_string(),
                parked.stream_name,
                parked.position.to_string(),
                parked.type_name,
                parked.failures.to_string(),
                listing::table_time(&record.time),
                parked.error,
            ]
        })
        .collect();
    listing::print_table(&columns, &rows)
}

async fn show(args: ShowArgs) -> Result<(), CliError> {
    let consumer = ConsumerName::new(&args.category, args.consumer.as_deref())?;
    let store = store()?;
    let found: Vec<String> = parked(&store, &consumer)
        .await?
        .into_iter()
        .filter(|(_, _, parked)| parked.global_position == args.global_position)
        .map(|(owner, record, parked)| describe(&owner, &record, &parked))
        .collect();
    if found.is_empty() {
        let whose = match &consumer.identifier {
            Some(identifier) => format!("consumer {identifier} of {}", consumer.category),
            None => format!("any consumer of {}", consumer.category),
        };
        return Err(CliError::Other(format!(
            "no message at global position {} is parked by {whose}",
            args.global_position
        )));
    }
    listing::print_text(&found.join("\n"))
}

/// Every message parked by `consumer` (every consumer of its category
/// without an identifier), oldest first: whose, the record, and what it
/// holds.
async fn parked(
    store: &PgStore,
    consumer: &ConsumerName,
) -> Result<Vec<(ConsumerName, Message, Parked)>, CliError> {
    let records = consumer_streams::own_records(store, consumer, PARKED, Parked::TYPE_NAME).await?;
    records
        .into_iter()
        .map(|(owner, record)| {
            let parked: Parked = record.data().map_err(|source| CliError::Store {
                action: format!(
                    "the parked record at {}/{} is not a Parked record",
                    record.stream_name, record.position
                ),
                source,
            })?;
            Ok((owner, record, parked))
        })
        .collect()
}

/// A parked message whole, as `show` prints it: one `name: value` line
/// per field, then the data and metadata pretty-printed.
fn describe(owner: &ConsumerName, record: &Message, parked: &Parked) -> String {
    let data = parked
        .data
        .to_value()
        .map_or_else(|_| parked.data.as_str().to_owned(), |value| pretty(&value));
    let metadata = serde_json::to_value(&parked.metadata).map_or_else(
        |err| format!("(cannot print: {err})"),
        |value| pretty(&value),
    );
    let fields = [
        ("category", owner.category.clone()),
        ("consumer", listing::or_dash(owner.identifier.as_deref())),
        (
            "parked in",
            format!(
                "{} at position {} (global position {})",
                record.stream_name, record.position, record.global_position
            ),
        ),
        ("parked at", listing::json_time(&record.time)),
        ("id", parked.id.to_string()),
        ("stream", parked.stream_name.clone()),
        ("position", parked.position.to_string()),
        ("global position", parked.global_position.to_string()),
        ("type", parked.type_name.clone()),
        ("error", parked.error.clone()),
        ("attempts", parked.attempts.to_string()),
        ("failures", parked.failures.to_string()),
    ];
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(&format!("{:<16} {value}\n", format!("{name}:")));
    }
    text.push_str(&format!("data:\n{data}\nmetadata:\n{metadata}\n"));
    text
}

/// `value` as indented JSON.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
