//! `ebb consumers`: every consumer that has recorded a position, where it
//! stands against its category's head, and its failures and parked
//! messages.

use ebb_admin::{ConsumerName, EXACT_LAG_UP_TO};

use super::listing::{self, Column};
use super::{CliError, store};

/// What `ebb consumers` lists and how it prints it.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Consumers are found from their position streams (CATEGORY:position-ID, \
CATEGORY+position-ID when the category has a type, CATEGORY:position \
without an identifier). POSITION is the global position of the last \
message the consumer recorded as handled; HEAD the category's last global \
position; LAG the number of the category's messages after POSITION, 0 \
when caught up. A lag of up to 1000 messages is counted through the \
category index; a larger one is the planner's estimate, shown as ~N (and \
\"estimated\": true with --json), as counting it would read every one of \
those messages (--exact does). FAILURES and PARKED count the messages in \
the consumer's failures and parked streams.")]
pub struct ConsumersArgs {
    /// Only the consumers of this category (`account`, `account:command`).
    category: Option<String>,
    /// Count every lag, however large (a row read per message behind).
    #[arg(long)]
    exact: bool,
    /// One JSON object per line (category, identifier, positionStream,
    /// position, head, lag, recordedAt, failures, parked, estimated)
    /// instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ConsumersArgs) -> Result<(), CliError> {
    // A malformed category is a usage error before the settings are read.
    if let Some(category) = &args.category {
        ConsumerName::new(category, None)?;
    }
    let store = store()?;
    let lines = ebb_admin::consumers(&store, args.category.as_deref(), args.exact).await?;
    if args.json {
        return listing::print_json_lines(&lines);
    }
    let columns = [
        Column::text("CATEGORY"),
        Column::text("CONSUMER"),
        Column::number("POSITION"),
        Column::number("HEAD"),
        Column::number("LAG"),
        Column::text("RECORDED"),
        Column::number("FAILURES"),
        Column::number("PARKED"),
        Column::text("POSITION STREAM"),
    ];
    let estimated = lines.iter().any(|line| line.estimated);
    let rows: Vec<Vec<String>> = lines
        .into_iter()
        .map(|line| {
            vec![
                line.category,
                line.identifier.unwrap_or_else(|| "-".into()),
                listing::or_dash(line.position),
                listing::or_dash(line.head),
                listing::count_cell(line.lag, line.estimated),
                listing::or_dash(line.recorded_at.as_ref().map(listing::table_time)),
                line.failures.to_string(),
                line.parked.to_string(),
                line.position_stream,
            ]
        })
        .collect();
    listing::print_table(&columns, &rows)?;
    if estimated {
        listing::print_text(&format!(
            "~ estimated by PostgreSQL's planner from the table's statistics; lags of \
             up to {EXACT_LAG_UP_TO} messages are counted, and all with --exact\n"
        ))?;
    }
    Ok(())
}
