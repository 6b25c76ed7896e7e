//! `ebb stats`: message counts by category and type, by type, or by
//! stream; counted on a small store, estimated from a sample on a large
//! one, and counted whatever the size with `--exact` (Message DB's
//! summary views), as [`ebb_admin::stats`] counts them.

use ebb_admin::{EXACT_CATEGORY_UP_TO, STREAM_MIN_HITS, STREAMS_LISTED, Stats};

use super::listing::{self, Column};
use super::{CliError, store};

/// What `ebb stats` counts by and how it prints it.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
On a store of more than 100000 messages (by the planner's estimate) the \
counts are estimated from a sample of the table's blocks, about 100000 \
messages, and shown as ~N (\"estimated\": true with --json); percentages \
are then of an estimated total. Categories the sample puts at up to 1000 \
messages are counted. --by stream then lists the streams the sample found \
most often (the 100 largest, more or less), each counted, largest first. \
--exact counts every message with Message DB's views \
(message_store.category_type_summary, type_summary, stream_summary), \
which scan the whole messages table: on a large store that takes seconds \
or minutes.")]
pub struct StatsArgs {
    /// What to count messages by: category (and type), type, or stream.
    #[arg(long, value_enum, default_value_t = By::Category)]
    by: By,
    /// Count every message, however large the store (Message DB's
    /// summary views: a scan of the whole table).
    #[arg(long)]
    exact: bool,
    /// One JSON object per line with the view's columns (category and
    /// type, type, or streamName; messageCount; percent) and estimated
    /// (true when messageCount is an estimate) instead of a table.
    #[arg(long)]
    json: bool,
}

/// What a summary counts by, each as a view of Message DB's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum By {
    /// Per category and type (`message_store.category_type_summary`).
    Category,
    /// Per type (`message_store.type_summary`).
    Type,
    /// Per stream (`message_store.stream_summary`).
    Stream,
}

impl By {
    /// What the library counts by.
    fn counted(self) -> ebb_admin::By {
        match self {
            Self::Category => ebb_admin::By::Category,
            Self::Type => ebb_admin::By::Type,
            Self::Stream => ebb_admin::By::Stream,
        }
    }

    /// The titles of the table's text columns.
    fn titles(self) -> &'static [&'static str] {
        match self {
            Self::Category => &["CATEGORY", "TYPE"],
            Self::Type => &["TYPE"],
            Self::Stream => &["STREAM"],
        }
    }
}

pub async fn run(args: StatsArgs) -> Result<(), CliError> {
    let store = store()?;
    let stats = ebb_admin::stats(&store, args.by.counted(), args.exact).await?;
    print(args.by, args.json, &stats)
}

/// What the table says after its rows of how the counts were estimated,
/// if they were.
fn note(by: By, stats: &Stats) -> Option<String> {
    let percent = stats.sampled?;
    let total = stats.total;
    Some(match by {
        By::Stream => format!(
            "The streams found at least {STREAM_MIN_HITS} times in a sample of {} of the \
             table's blocks (those of some {} messages or more), at most {STREAMS_LISTED}, \
             largest first, each counted. Percentages are of an estimated total of ~{total} \
             messages; --exact lists every stream.",
            percent_text(percent),
            (STREAM_MIN_HITS as f64 * 100.0 / percent).round() as i64
        ),
        _ => format!(
            "~ estimated from a sample of {} of the table's blocks; categories of up to \
             {EXACT_CATEGORY_UP_TO} messages are counted. Percentages are of an estimated \
             total of ~{total} messages; --exact counts every message.",
            percent_text(percent)
        ),
    })
}

/// A sample's size as a percentage, to two significant figures.
fn percent_text(percent: f64) -> String {
    if percent >= 10.0 {
        format!("{percent:.0}%")
    } else if percent >= 1.0 {
        format!("{percent:.1}%")
    } else {
        format!("{percent:.2}%")
    }
}

fn print(by: By, json: bool, stats: &Stats) -> Result<(), CliError> {
    if json {
        return listing::print_json_lines(&stats.lines);
    }
    let mut columns: Vec<Column> = by.titles().iter().copied().map(Column::text).collect();
    columns.push(Column::number("MESSAGES"));
    columns.push(Column::number("PERCENT"));
    let table: Vec<Vec<String>> = stats
        .lines
        .iter()
        .map(|line| {
            let mut cells: Vec<String> = [&line.category, &line.type_name, &line.stream_name]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            cells.push(listing::count_cell(line.message_count, line.estimated));
            cells.push(format!("{:.2}", line.percent));
            cells
        })
        .collect();
    listing::print_table(&columns, &table)?;
    match note(by, stats) {
        Some(note) if !table.is_empty() => listing::print_text(&format!("{note}\n")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_to_two_places() {
        assert_eq!(percent_text(1.96), "2.0%");
        assert_eq!(percent_text(0.196), "0.20%");
        assert_eq!(percent_text(66.6), "67%");
    }
}
