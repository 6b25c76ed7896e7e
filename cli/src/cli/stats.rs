//! `ebb stats`: message counts by category and type, by type, or by
//! stream; counted on a small store, estimated from a sample on a large
//! one, and counted whatever the size with `--exact` (Message DB's
//! summary views).
//!
//! Counting a category's messages costs a row read per message, even
//! through the `messages_category` index (an index on an expression, which
//! keeps PostgreSQL from answering from the index alone), and Message DB's
//! views scan the whole table. So on a store the planner puts above
//! [`SAMPLE_ROWS`] messages, the counts come from a block sample of the
//! table (`TABLESAMPLE SYSTEM`, about [`SAMPLE_ROWS`] rows), scaled up.
//! What a sample can miss or misjudge, the small categories (consumers'
//! failures and parked streams, say), is counted: every category of the
//! store is found by a loose scan of `messages_category` (one probe per
//! category), and those the sample puts at up to [`EXACT_CATEGORY_UP_TO`]
//! messages are counted by type through the index.

use std::collections::{BTreeMap, BTreeSet};

use ebb_message_store::deadpool_postgres;
use serde_json::{Map, Value};

use super::consumer_streams;
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

/// The text columns of a summary: the view's column, its JSON key, its
/// table title.
type Names = &'static [(&'static str, &'static str, &'static str)];

impl By {
    /// The view's name and its text columns.
    fn view(self) -> (&'static str, Names) {
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

/// A store the planner puts at up to this many messages is counted; a
/// larger one is sampled, this many rows or so.
const SAMPLE_ROWS: f64 = 100_000.0;
/// A category the sample puts at up to this many messages is counted.
const EXACT_CATEGORY_UP_TO: i64 = 1_000;
/// The messages the category counts of one run may read together (a row
/// read each, some 10-20 µs when not in PostgreSQL's buffers) ...
const COUNT_BUDGET: i64 = 20_000;
/// ... though each small category is counted up to this many, whatever
/// is left of the budget.
const COUNT_AT_LEAST: i64 = 100;
/// `--by stream` on a sample lists at most this many streams ...
const STREAMS_LISTED: i64 = 100;
/// ... each found at least this many times in the sample.
const STREAM_MIN_HITS: i64 = 3;

/// The planner's estimate of the table's rows (from `reltuples`, scaled
/// to the table's present size).
const ESTIMATE_TABLE: &str = "EXPLAIN (FORMAT JSON) SELECT 1 FROM message_store.messages";

/// The planner's estimate of one category's messages.
const ESTIMATE_CATEGORY: &str = "\
    EXPLAIN (FORMAT JSON) SELECT 1 FROM message_store.messages \
    WHERE message_store.category(stream_name) = $1::varchar";

/// A sample of `$1` percent of the table's blocks, counted by category and
/// type.
const SAMPLE_BY_CATEGORY_TYPE: &str = "\
    SELECT message_store.category(stream_name)::text, type, count(*) \
    FROM message_store.messages TABLESAMPLE SYSTEM ($1::float4) \
    GROUP BY 1, 2";

/// A sample of `$1` percent of the table's blocks: its rows, and the at
/// most `$3` streams it found at least `$2` times, most found first (one
/// row with a NULL stream when none was).
const SAMPLE_BY_STREAM: &str = "\
    WITH sample AS ( \
      SELECT stream_name, count(*) AS hits \
      FROM message_store.messages TABLESAMPLE SYSTEM ($1::float4) \
      GROUP BY stream_name \
    ) \
    SELECT found.stream_name, total.rows \
    FROM (SELECT coalesce(sum(hits), 0)::bigint AS rows FROM sample) AS total \
    LEFT JOIN LATERAL ( \
      SELECT stream_name FROM sample WHERE hits >= $2::bigint \
      ORDER BY hits DESC, stream_name LIMIT $3::bigint \
    ) AS found ON true";

/// The messages of each of the streams `$1` (an index-only scan of
/// `messages_stream` each).
const COUNT_STREAMS: &str = "\
    SELECT name, (SELECT count(*) FROM message_store.messages WHERE stream_name = name) \
    FROM unnest($1::text[]) AS name";

/// The first `$2` messages of the category `$1` in order, through the
/// `messages_category` index, counted by type.
const COUNT_CATEGORY_TYPES: &str = "\
    SELECT type, count(*) FROM ( \
      SELECT type FROM message_store.messages \
      WHERE message_store.category(stream_name) = $1::varchar \
      ORDER BY global_position LIMIT $2::bigint \
    ) AS first GROUP BY type";

/// One line of a summary: its text columns, its count, and whether the
/// count is an estimate.
#[derive(Debug)]
struct Line {
    keys: Vec<String>,
    count: i64,
    estimated: bool,
}

/// A summary: its lines, the total their percentages are of, and, when it
/// is estimated, what the table says of how.
#[derive(Debug)]
struct Summary {
    lines: Vec<Line>,
    total: i64,
    /// Percentages as the view rounded them, for the exact summaries.
    percents: Option<Vec<f64>>,
    note: Option<String>,
}

pub async fn run(args: StatsArgs) -> Result<(), CliError> {
    let store = store()?;
    let client = consumer_streams::client(&store).await?;
    let table_rows = if args.exact {
        0.0
    } else {
        plan_rows(&client, ESTIMATE_TABLE, &[], "the messages table").await?
    };
    let summary = if table_rows <= SAMPLE_ROWS {
        exact(&client, args.by).await?
    } else {
        let percent = (SAMPLE_ROWS / table_rows * 100.0).clamp(0.0001, 100.0);
        match args.by {
            By::Stream => sampled_streams(&client, percent).await?,
            by => sampled_categories(&client, percent, by).await?,
        }
    };
    print(args.by, args.json, &summary)
}

/// Message DB's view for `by`: every message counted.
async fn exact(client: &deadpool_postgres::Object, by: By) -> Result<Summary, CliError> {
    let (view, names) = by.view();
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
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|source| CliError::Database {
            action: format!("cannot read {view}"),
            source,
        })?;
    let count = names.len();
    let lines: Vec<Line> = rows
        .iter()
        .map(|row| Line {
            keys: (0..count).map(|index| row.get(index)).collect(),
            count: row.get(count),
            estimated: false,
        })
        .collect();
    Ok(Summary {
        total: lines.iter().map(|line| line.count).sum(),
        percents: Some(rows.iter().map(|row| row.get(count + 1)).collect()),
        lines,
        note: None,
    })
}

/// By category and type, or by type: the sample's counts scaled up, and
/// the small categories counted.
async fn sampled_categories(
    client: &deadpool_postgres::Object,
    percent: f64,
    by: By,
) -> Result<Summary, CliError> {
    let scale = 100.0 / percent;
    let sample = client
        .query(SAMPLE_BY_CATEGORY_TYPE, &[&(percent as f32)])
        .await
        .map_err(|source| CliError::Database {
            action: "cannot sample the messages table".into(),
            source,
        })?;
    // Per category: its types and their estimated counts.
    let mut categories: BTreeMap<String, BTreeMap<String, (i64, bool)>> = BTreeMap::new();
    for row in &sample {
        let hits: i64 = row.get(2);
        categories
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1), ((hits as f64 * scale).round() as i64, true));
    }
    // Every category, the sample's or not; the smallest counted first.
    let mut all: BTreeSet<String> = consumer_streams::categories(client)
        .await?
        .into_iter()
        .collect();
    all.extend(categories.keys().cloned());
    let mut small: Vec<(i64, String)> = all
        .into_iter()
        .map(|category| {
            let estimate = categories
                .get(&category)
                .map_or(0, |types| types.values().map(|(count, _)| count).sum());
            (estimate, category)
        })
        .filter(|(estimate, _)| *estimate <= EXACT_CATEGORY_UP_TO)
        .collect();
    small.sort();
    let mut budget = COUNT_BUDGET;
    for (estimate, category) in small {
        let bound = EXACT_CATEGORY_UP_TO.min(budget).max(COUNT_AT_LEAST);
        let counted = client
            .query(COUNT_CATEGORY_TYPES, &[&category, &(bound + 1)])
            .await
            .map_err(|source| CliError::Database {
                action: format!("cannot count the messages of {category}"),
                source,
            })?;
        let by_type: Vec<(String, i64)> =
            counted.iter().map(|row| (row.get(0), row.get(1))).collect();
        let read: i64 = by_type.iter().map(|(_, count)| count).sum();
        budget -= read;
        let types = if read <= bound {
            by_type
                .into_iter()
                .map(|(type_name, count)| (type_name, (count, false)))
                .collect()
        } else {
            // More than the bound, which the sample missed: the planner's
            // estimate of the category, shared out as the first messages'
            // types were.
            let planned = plan_rows(client, ESTIMATE_CATEGORY, &[&category], &category).await?;
            let total = (planned.round() as i64).max(estimate).max(read);
            by_type
                .into_iter()
                .map(|(type_name, count)| {
                    let share = (total as f64 * count as f64 / read as f64).round() as i64;
                    (type_name, (share, true))
                })
                .collect()
        };
        categories.insert(category, types);
    }
    let mut lines: Vec<Line> = Vec::new();
    match by {
        By::Type => {
            let mut types: BTreeMap<String, (i64, bool)> = BTreeMap::new();
            for (type_name, (count, estimated)) in categories.into_values().flatten() {
                let entry = types.entry(type_name).or_insert((0, false));
                *entry = (entry.0 + count, entry.1 || estimated);
            }
            lines.extend(
                types
                    .into_iter()
                    .map(|(type_name, (count, estimated))| Line {
                        keys: vec![type_name],
                        count,
                        estimated,
                    }),
            );
        }
        _ => {
            for (category, types) in categories {
                lines.extend(
                    types
                        .into_iter()
                        .map(|(type_name, (count, estimated))| Line {
                            keys: vec![category.clone(), type_name],
                            count,
                            estimated,
                        }),
                );
            }
        }
    }
    let total = lines.iter().map(|line| line.count).sum();
    let note = format!(
        "~ estimated from a sample of {} of the table's blocks; categories of up to \
         {EXACT_CATEGORY_UP_TO} messages are counted. Percentages are of an estimated \
         total of ~{total} messages; --exact counts every message.",
        percent_text(percent)
    );
    Ok(Summary {
        lines,
        total,
        percents: None,
        note: Some(note),
    })
}

/// By stream: the streams a sample found most often, each counted.
async fn sampled_streams(
    client: &deadpool_postgres::Object,
    percent: f64,
) -> Result<Summary, CliError> {
    let sample = client
        .query(
            SAMPLE_BY_STREAM,
            &[&(percent as f32), &STREAM_MIN_HITS, &STREAMS_LISTED],
        )
        .await
        .map_err(|source| CliError::Database {
            action: "cannot sample the messages table".into(),
            source,
        })?;
    let sampled: i64 = sample.first().map_or(0, |row| row.get(1));
    let found: Vec<String> = sample
        .iter()
        .filter_map(|row| row.get::<_, Option<String>>(0))
        .collect();
    let counted = client
        .query(COUNT_STREAMS, &[&found])
        .await
        .map_err(|source| CliError::Database {
            action: "cannot count the messages of the streams found".into(),
            source,
        })?;
    let mut lines: Vec<Line> = counted
        .iter()
        .map(|row| Line {
            keys: vec![row.get(0)],
            count: row.get(1),
            estimated: false,
        })
        .collect();
    lines.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.keys.cmp(&b.keys)));
    let total = (sampled as f64 * 100.0 / percent).round() as i64;
    let note = format!(
        "The streams found at least {STREAM_MIN_HITS} times in a sample of {} of the \
         table's blocks (those of some {} messages or more), at most {STREAMS_LISTED}, \
         largest first, each counted. Percentages are of an estimated total of ~{total} \
         messages; --exact lists every stream.",
        percent_text(percent),
        (STREAM_MIN_HITS as f64 * 100.0 / percent).round() as i64
    );
    Ok(Summary {
        lines,
        total,
        percents: None,
        note: Some(note),
    })
}

/// The rows the planner expects `sql` (an `EXPLAIN (FORMAT JSON)`) to
/// return.
async fn plan_rows(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    what: &str,
) -> Result<f64, CliError> {
    let plan: Value = client
        .query_one(sql, params)
        .await
        .map_err(|source| CliError::Database {
            action: format!("cannot estimate the size of {what}"),
            source,
        })?
        .get(0);
    Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0))
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

/// `count` as a percentage of `total`, rounded as the views round it.
fn percent_of(count: i64, total: i64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (count as f64 * 10_000.0 / total as f64).round() / 100.0
}

fn print(by: By, json: bool, summary: &Summary) -> Result<(), CliError> {
    let (_, names) = by.view();
    let percent = |index: usize, line: &Line| match &summary.percents {
        Some(percents) => percents[index],
        None => percent_of(line.count, summary.total),
    };
    if json {
        let lines: Vec<Map<String, Value>> = summary
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let mut object = Map::new();
                for ((_, key, _), value) in names.iter().zip(&line.keys) {
                    object.insert((*key).into(), Value::from(value.as_str()));
                }
                object.insert("messageCount".into(), line.count.into());
                object.insert("percent".into(), percent(index, line).into());
                object.insert("estimated".into(), line.estimated.into());
                object
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
    let table: Vec<Vec<String>> = summary
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let mut cells = line.keys.clone();
            cells.push(listing::count_cell(line.count, line.estimated));
            cells.push(format!("{:.2}", percent(index, line)));
            cells
        })
        .collect();
    listing::print_table(&columns, &table)?;
    match &summary.note {
        Some(note) if !table.is_empty() => listing::print_text(&format!("{note}\n")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_to_two_places() {
        assert_eq!(percent_of(1, 3), 33.33);
        assert_eq!(percent_of(2, 3), 66.67);
        assert_eq!(percent_of(5, 0), 0.0);
        assert_eq!(percent_text(1.96), "2.0%");
        assert_eq!(percent_text(0.196), "0.20%");
        assert_eq!(percent_text(66.6), "67%");
    }
}
