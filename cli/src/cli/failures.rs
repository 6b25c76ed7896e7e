//! `ebb failures`: the handler failures that stopped a category's
//! consumers, from their failures streams (`Failed` records).

use ebb_admin::ConsumerName;

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

pub async fn run(args: FailuresArgs) -> Result<(), CliError> {
    // A malformed name is a usage error before the settings are read.
    ConsumerName::new(&args.category, args.consumer.as_deref())?;
    let store = store()?;
    let lines = ebb_admin::failures(&store, &args.category, args.consumer.as_deref()).await?;
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
                listing::table_time(&line.failed_at),
                error,
            ]
        })
        .collect();
    listing::print_table(&columns, &rows)
}
