//! Message counts by category and type, by type, or by stream: what `ebb
//! stats` prints; counted on a small store, estimated from a sample on a
//! large one, and counted whatever the size when asked to be exact
//! (Message DB's summary views).
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

use ebb_message_store::{PgStore, deadpool_postgres};
use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::consumer_streams;

/// What a summary counts by, each as a view of Message DB's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// Per category and type (`message_store.category_type_summary`).
    Category,
    /// Per type (`message_store.type_summary`).
    Type,
    /// Per stream (`message_store.stream_summary`).
    Stream,
}

impl By {
    /// The view's name and its text columns.
    fn view(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Self::Category => ("message_store.category_type_summary", &["category", "type"]),
            Self::Type => ("message_store.type_summary", &["type"]),
            Self::Stream => ("message_store.stream_summary", &["stream_name"]),
        }
    }
}

/// The store's messages counted by [`By`]: its lines, and how they were
/// counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Stats {
    /// What the messages are counted by.
    pub by: By,
    /// By category and type (in that order), by type (in order), or by
    /// stream (every stream in order when counted; from a sample, the
    /// streams it found most often, largest first).
    pub lines: Vec<StatsLine>,
    /// The total the percentages are of: counted, or, from a sample,
    /// estimated.
    pub total: i64,
    /// The share of the table's blocks sampled, in percent (0.0001 to
    /// 100), when the counts are from a sample: the store was larger than
    /// [`SAMPLE_ROWS`] by the planner's estimate. None when every message
    /// was counted (Message DB's views).
    pub sampled: Option<f64>,
}

/// One line of [`Stats`]: what it counts (the category and type, the type,
/// or the stream), the count, and its share of the total. Serialized
/// (`ebb stats --json`) with the view's columns as keys (`category` and
/// `type`, `type`, or `streamName`), and `messageCount`, `percent` and
/// `estimated`.
// The fields are in the order `ebb stats --json` has always printed its
// keys: alphabetical.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StatsLine {
    /// The category, by category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `message_count` is an estimate, not a count.
    pub estimated: bool,
    /// The messages counted, or, when `estimated`, estimated.
    pub message_count: i64,
    /// `message_count` as a percentage of the total, to two places.
    pub percent: f64,
    /// The stream, by stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// The type, by category or by type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
}

/// The store's messages counted by `by`: with Message DB's views (every
/// message counted) when the store is small or `exact` asks for it, and
/// else from a sample of the table, [`Stats::sampled`] saying so and each
/// estimated line `estimated`. With `exact`, on a large store this takes
/// seconds or minutes: the views scan the whole messages table.
///
/// On a store of more than [`SAMPLE_ROWS`] messages (by the planner's
/// estimate) the counts are estimated from a sample of the table's
/// blocks, about [`SAMPLE_ROWS`] messages, scaled up; percentages are
/// then of an estimated total. Categories the sample puts at up to
/// [`EXACT_CATEGORY_UP_TO`] messages are counted (every category of the
/// store is found by a loose scan of the `messages_category` index, one
/// probe per category). By stream, the lines are then the streams the
/// sample found at least [`STREAM_MIN_HITS`] times (at most
/// [`STREAMS_LISTED`], the largest), each counted, largest first.
pub async fn stats(store: &PgStore, by: By, exact: bool) -> Result<Stats, Error> {
    let client = consumer_streams::client(store).await?;
    let table_rows = if exact {
        0.0
    } else {
        plan_rows(&client, ESTIMATE_TABLE, &[], "the messages table").await?
    };
    let summary = if table_rows <= SAMPLE_ROWS {
        exact_summary(&client, by).await?
    } else {
        let percent = (SAMPLE_ROWS / table_rows * 100.0).clamp(0.0001, 100.0);
        match by {
            By::Stream => sampled_streams(&client, percent).await?,
            by => sampled_categories(&client, percent, by).await?,
        }
    };
    Ok(summary.into_stats(by))
}

/// A store the planner puts at up to this many messages is counted; a
/// larger one is sampled, this many rows or so.
pub const SAMPLE_ROWS: f64 = 100_000.0;
/// A category the sample puts at up to this many messages is counted.
pub const EXACT_CATEGORY_UP_TO: i64 = 1_000;
/// The messages the category counts of one run may read together (a row
/// read each, some 10-20 µs when not in PostgreSQL's buffers) ...
const COUNT_BUDGET: i64 = 20_000;
/// ... though each small category is counted up to this many, whatever
/// is left of the budget.
const COUNT_AT_LEAST: i64 = 100;
/// `--by stream` on a sample lists at most this many streams ...
pub const STREAMS_LISTED: i64 = 100;
/// ... each found at least this many times in the sample.
pub const STREAM_MIN_HITS: i64 = 3;

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
/// is estimated, the share of the table sampled.
#[derive(Debug)]
struct Summary {
    lines: Vec<Line>,
    total: i64,
    /// Percentages as the view rounded them, for the exact summaries.
    percents: Option<Vec<f64>>,
    /// The percentage of the table's blocks sampled, for the estimated
    /// ones.
    sampled: Option<f64>,
}

impl Summary {
    /// The summary as [`Stats`], each line with its percentage.
    fn into_stats(self, by: By) -> Stats {
        let Self {
            lines,
            total,
            percents,
            sampled,
        } = self;
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                let percent = match &percents {
                    Some(percents) => percents[index],
                    None => percent_of(line.count, total),
                };
                let mut keys = line.keys.into_iter();
                let (category, type_name, stream_name) = match by {
                    By::Category => (keys.next(), keys.next(), None),
                    By::Type => (None, keys.next(), None),
                    By::Stream => (None, None, keys.next()),
                };
                StatsLine {
                    category,
                    type_name,
                    stream_name,
                    message_count: line.count,
                    percent,
                    estimated: line.estimated,
                }
            })
            .collect();
        Stats {
            by,
            lines,
            total,
            sampled,
        }
    }
}

/// Message DB's view for `by`: every message counted.
async fn exact_summary(client: &deadpool_postgres::Object, by: By) -> Result<Summary, Error> {
    let (view, names) = by.view();
    let selected: Vec<String> = names
        .iter()
        .map(|column| format!("{column}::text"))
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
        .map_err(|source| Error::Statement {
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
        sampled: None,
    })
}

/// By category and type, or by type: the sample's counts scaled up, and
/// the small categories counted.
async fn sampled_categories(
    client: &deadpool_postgres::Object,
    percent: f64,
    by: By,
) -> Result<Summary, Error> {
    let scale = 100.0 / percent;
    let sample = client
        .query(SAMPLE_BY_CATEGORY_TYPE, &[&(percent as f32)])
        .await
        .map_err(|source| Error::Statement {
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
            .map_err(|source| Error::Statement {
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
    Ok(Summary {
        lines,
        total,
        percents: None,
        sampled: Some(percent),
    })
}

/// By stream: the streams a sample found most often, each counted.
async fn sampled_streams(
    client: &deadpool_postgres::Object,
    percent: f64,
) -> Result<Summary, Error> {
    let sample = client
        .query(
            SAMPLE_BY_STREAM,
            &[&(percent as f32), &STREAM_MIN_HITS, &STREAMS_LISTED],
        )
        .await
        .map_err(|source| Error::Statement {
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
        .map_err(|source| Error::Statement {
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
    Ok(Summary {
        lines,
        total,
        percents: None,
        sampled: Some(percent),
    })
}

/// The rows the planner expects `sql` (an `EXPLAIN (FORMAT JSON)`) to
/// return.
async fn plan_rows(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    what: &str,
) -> Result<f64, Error> {
    let plan: Value = client
        .query_one(sql, params)
        .await
        .map_err(|source| Error::Statement {
            action: format!("cannot estimate the size of {what}"),
            source,
        })?
        .get(0);
    Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0))
}

/// `count` as a percentage of `total`, rounded as the views round it.
fn percent_of(count: i64, total: i64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (count as f64 * 10_000.0 / total as f64).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_to_two_places() {
        assert_eq!(percent_of(1, 3), 33.33);
        assert_eq!(percent_of(2, 3), 66.67);
        assert_eq!(percent_of(5, 0), 0.0);
    }

    #[test]
    fn lines_carry_the_keys_of_what_they_count_by() {
        let summary = |keys: &[&str]| Summary {
            lines: vec![Line {
                keys: keys.iter().map(|key| (*key).to_owned()).collect(),
                count: 1,
                estimated: true,
            }],
            total: 3,
            percents: None,
            sampled: Some(2.0),
        };
        let json = |stats: Stats| serde_json::to_value(&stats.lines[0]).unwrap();
        assert_eq!(
            serde_json::to_string(
                &summary(&["account", "Opened"])
                    .into_stats(By::Category)
                    .lines
            )
            .unwrap(),
            r#"[{"category":"account","estimated":true,"messageCount":1,"percent":33.33,"type":"Opened"}]"#,
            "the keys in the order they have always been printed in"
        );
        assert_eq!(
            json(summary(&["account", "Opened"]).into_stats(By::Category)),
            serde_json::json!({
                "category": "account",
                "type": "Opened",
                "messageCount": 1,
                "percent": 33.33,
                "estimated": true,
            })
        );
        assert_eq!(
            json(summary(&["Opened"]).into_stats(By::Type)),
            serde_json::json!({ "type": "Opened", "messageCount": 1, "percent": 33.33, "estimated": true })
        );
        assert_eq!(
            json(summary(&["account-1"]).into_stats(By::Stream)),
            serde_json::json!({ "streamName": "account-1", "messageCount": 1, "percent": 33.33, "estimated": true })
        );
    }
}
