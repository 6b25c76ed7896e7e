//! `ebb failures`: the handler failures that stopped a category's
//! consumers, from their failures streams (`Failed` records).

use ebb_consumer::Failed;
use ebb_handler::MessageType as _;
use serde::Serialize;

use super::consumer_streams::{self, ConsumerName, FAILURES};
use super::listing::{self, Column};
use super::{CliError, store};

/// Whose failures `ebb failures` lists and how it prints them.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
A consumer records a failure (a `Failed` message in CATEGORY:failures-ID, \
or CATEGORY+failures-ID when the category has a type) each time a \
message's handlers fail and the consumer stops on it. Failures are listed \
oldest first; GLOBAL is the failed message's global position.")]
pub struct FailuresArgs {
    /// The category the consumers read (`account`, `account:command`).
    category: String,
    /// Only the consumer with this identifier (default: every consumer of
    /// the category).
    #[arg(long, value_name = "ID")]
    consumer: Option<String>,
    /// One JSON object per line (category, identifier, globalPosition,
    /// streamName, position, type, error, attempts, transient, failedAt)
    /// instead of a table.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints for one failure.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FailureLine {
    category: String,
    identifier: Option<String>,
    global_position: i64,
    stream_name: String,
    position: i64,
    #[serde(rename = "type")]
    type_name: String,
    error: String,
    attempts: u32,
    /// The store was out of reach: not the message's fault.
    transient: bool,
    /// RFC 3339, UTC: when the failure was recorded.
    failed_at: String,
    /// `failed_at` as the table shows it.
    #[serde(skip)]
    failed_cell: String,
}

pub async fn run(args: FailuresArgs) -> Result<(), CliError> {
    let consumer = ConsumerName::new(&args.category, args.consumer.as_deref())?;
    let store = store()?;
    let records =
        consumer_streams::own_records(&store, &consumer, FAILURES, Failed::TYPE_NAME).await?;
    let mut lines = Vec::with_capacity(records.len());
    for (owner, message) in records {
        let failed: Failed = message.data().map_err(|source| CliError::Store {
            action: format!(
                "the failure record at {}/{} is not a Failed record",
                message.stream_name, message.position
            ),
            source,
        })?;
        lines.push(FailureLine {
            category: owner.category,
            identifier: owner.identifier,
            global_position: failed.global_position,
            stream_name: failed.stream_name,
            position: failed.position,
            type_name: failed.type_name,
            error: failed.error,
            attempts: failed.attempts,
            transient: failed.transient,
            failed_at: listing::json_time(&message.time),
            failed_cell: listing::table_time(&message.time),
        });
    }
    if args.json {
        return listing::print_json_lines(&lines);
    }
    let columns = [
        Column::text("CONSUMER"),
        Column::number("GLOBAL"),
        Column::text("STREAM"),
        Column::number("POSITION"),
        Column::text("TYPE"),
        Column::number("ATTEMPTS"),
        Column::text("TIME"),
        Column::text("ERROR"),
    ];
    let rows: Vec<Vec<String>> = lines
        .into_iter()
        .map(|line| {
            let error = if line.transient {
                format!("(store unreachable) {}", line.error)
            } else {
                line.error
            };
            vec![
                line.identifier.unwrap_or_else(|| "-".into()),
                line.global_position.to_string(),
                line.stream_name,
                line.position.to_string(),
                line.type_name,
                line.attempts.to_string(),
                line.failed_cell,
                error,
            ]
        })
        .collect();
    listing::print_table(&columns, &rows)
}
