//! `ebb consumers`: every consumer that has recorded a position, where it
//! stands against its category's head, and its failures and parked
//! messages.

use ebb_consumer::POSITION_TYPE;
use ebb_message_store::{PgStore, deadpool_postgres};
use serde::Serialize;

use super::consumer_streams::{self, ConsumerName, FAILURES, PARKED};
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

/// What `--json` prints for one consumer; also the table's row.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerLine {
    category: String,
    /// None for a consumer without an identifier.
    identifier: Option<String>,
    position_stream: String,
    /// The last recorded position; None when nothing is recorded yet.
    position: Option<i64>,
    /// None when the category is empty.
    head: Option<i64>,
    lag: i64,
    /// RFC 3339, UTC: when the last position was recorded.
    recorded_at: Option<String>,
    failures: i64,
    parked: i64,
    /// `lag` is the planner's estimate, not a count.
    estimated: bool,
    /// `recorded_at` as the table shows it.
    #[serde(skip)]
    recorded_cell: String,
}

/// The data of a position message, as the consumer writes it.
#[derive(serde::Deserialize)]
struct Recorded {
    position: i64,
}

/// For each position stream `$1` of a consumer (its failures stream `$2`,
/// parked stream `$3`, category `$4`), in order: its last message of type
/// `$5` (data, position, time), the messages of its failures and parked
/// streams, and the category's head; each an index probe or an
/// index-only count.
const DESCRIBE_CONSUMERS: &str = "\
    SELECT last.data::text, last.position, last.time, \
           (SELECT count(*) FROM message_store.messages WHERE stream_name = s.failures), \
           (SELECT count(*) FROM message_store.messages WHERE stream_name = s.parked), \
           (SELECT max(global_position) FROM message_store.messages \
             WHERE message_store.category(stream_name) = s.category) \
    FROM unnest($1::text[], $2::text[], $3::text[], $4::varchar[]) \
         WITH ORDINALITY AS s(name, failures, parked, category, n) \
    LEFT JOIN LATERAL ( \
      SELECT data, position, time FROM message_store.messages \
      WHERE stream_name = s.name AND type = $5::text \
      ORDER BY position DESC LIMIT 1 \
    ) AS last ON true \
    ORDER BY s.n";

/// The planner's estimate of a consumer's lag: the rows it expects of the
/// category `$1` after the global position `$2` (from the statistics of
/// the `messages_category` index's category and of the global positions;
/// nothing is read).
const ESTIMATE_LAG: &str = "\
    EXPLAIN (FORMAT JSON) SELECT 1 FROM message_store.messages \
    WHERE message_store.category(stream_name) = $1::varchar AND global_position > $2::bigint";

/// A consumer's lag counted, up to `$3` messages (all when NULL): the
/// category's messages after the global position, in order through the
/// `messages_category` index (a row read each: the index is on an
/// expression, which keeps PostgreSQL from answering from the index
/// alone).
const COUNT_LAG: &str = "\
    SELECT count(*) FROM ( \
      SELECT 1 FROM message_store.messages \
      WHERE message_store.category(stream_name) = $1::varchar AND global_position > $2::bigint \
      ORDER BY global_position LIMIT $3::bigint \
    ) AS lag";

/// A lag of up to this many messages is counted exactly.
const EXACT_LAG_UP_TO: i64 = 1_000;
/// A lag the planner puts above this is not counted at all: a count
/// would stop at [`EXACT_LAG_UP_TO`] anyway.
const COUNT_LAGS_ESTIMATED_UP_TO: i64 = 10 * EXACT_LAG_UP_TO;
/// The messages all the counts of one run may read together (each a row
/// read, some 10-20 µs when the row is not in PostgreSQL's buffers).
const COUNT_BUDGET: i64 = 20_000;

pub async fn run(args: ConsumersArgs) -> Result<(), CliError> {
    let only = args
        .category
        .as_deref()
        .map(|category| ConsumerName::new(category, None))
        .transpose()?;
    let store = store()?;
    let streams = consumer_streams::position_streams(&store, only.as_ref()).await?;
    let mut lines = describe(&store, streams).await?;
    count_parked_now(&store, &mut lines).await?;
    measure_lags(&store, &mut lines, args.exact).await?;
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
                line.recorded_cell,
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

/// Each consumer's line: its last position record, its category's head,
/// and the sizes of its failures and parked streams, read for all of them
/// by one statement; their lags are left to [`measure_lags`].
async fn describe(
    store: &PgStore,
    streams: Vec<(ConsumerName, String)>,
) -> Result<Vec<ConsumerLine>, CliError> {
    let (mut names, mut failures, mut parked, mut categories) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (consumer, stream) in &streams {
        names.push(stream.clone());
        failures.push(consumer.stream(FAILURES)?);
        parked.push(consumer.stream(PARKED)?);
        categories.push(consumer.category.clone());
    }
    let rows = consumer_streams::client(store)
        .await?
        .query(
            DESCRIBE_CONSUMERS,
            &[&names, &failures, &parked, &categories, &POSITION_TYPE],
        )
        .await
        .map_err(|source| CliError::Database {
            action: "cannot read the consumers' streams".into(),
            source,
        })?;
    streams
        .into_iter()
        .zip(rows)
        .map(|((consumer, stream), row)| {
            let data: Option<String> = row.get(0);
            let (position, recorded_at) = match data {
                Some(data) => {
                    let recorded: Recorded = serde_json::from_str(&data).map_err(|err| {
                        CliError::Other(format!(
                            "the position record at {stream}/{} is not {{\"position\": N}}: {err}",
                            row.get::<_, i64>(1)
                        ))
                    })?;
                    let time: chrono::NaiveDateTime = row.get(2);
                    (Some(recorded.position), Some(time.and_utc()))
                }
                None => (None, None),
            };
            Ok(ConsumerLine {
                lag: 0,
                estimated: false,
                category: consumer.category,
                identifier: consumer.identifier,
                position_stream: stream,
                position,
                head: row.get(5),
                recorded_at: recorded_at.as_ref().map(listing::json_time),
                recorded_cell: listing::or_dash(recorded_at.as_ref().map(listing::table_time)),
                failures: row.get(3),
                parked: row.get(4),
            })
        })
        .collect()
}

/// Turns each non-empty parked stream's size into the number of messages
/// parked now: the stream also holds replay and discard requests and
/// their outcomes, so it is folded as the consumer folds it (a parked
/// stream is small: one record per parking or request).
async fn count_parked_now(store: &PgStore, lines: &mut [ConsumerLine]) -> Result<(), CliError> {
    for line in lines.iter_mut().filter(|line| line.parked > 0) {
        let Some(identifier) = &line.identifier else {
            continue;
        };
        let config = ebb_consumer::ConsumerConfig {
            identifier: Some(identifier.clone()),
            ..ebb_consumer::ConsumerConfig::new(line.category.clone())
        };
        let parked = ebb_consumer::read_parked_messages(store, &config)
            .await
            .map_err(|err| {
                CliError::Other(format!(
                    "cannot read the parked stream of consumer {identifier} of {}: {}",
                    line.category,
                    ebb_retry::Chain::new(&err)
                ))
            })?;
        line.parked = i64::try_from(parked.len()).unwrap_or(i64::MAX);
    }
    Ok(())
}

/// Fills in every consumer's lag: 0 when it has recorded the category's
/// head; else counted when it is small (or `exact`), and the planner's
/// estimate when it is large, or when the counts of this run have read
/// [`COUNT_BUDGET`] messages.
///
/// The planner's estimates come first, as they cost nothing but a plan;
/// the lags are then counted smallest estimate first, up to
/// [`EXACT_LAG_UP_TO`] each. A count that reaches that bound stops, and
/// the lag is the estimate, or the count when the estimate is lower.
async fn measure_lags(
    store: &PgStore,
    lines: &mut [ConsumerLine],
    exact: bool,
) -> Result<(), CliError> {
    let client = consumer_streams::client(store).await?;
    let behind_head: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            line.head
                .is_some_and(|head| head > line.position.unwrap_or(0))
        })
        .map(|(index, _)| index)
        .collect();
    if exact {
        for index in behind_head {
            lines[index].lag = count_lag(&client, &lines[index], None).await?;
        }
        return Ok(());
    }
    // Sent together, answered one after the other on one connection.
    let estimates = behind_head.iter().map(|&index| {
        let (line, client) = (&lines[index], &client);
        async move {
            let plan: serde_json::Value = client
                .query_one(ESTIMATE_LAG, &[&line.category, &line.position.unwrap_or(0)])
                .await
                .map_err(|source| CliError::Database {
                    action: format!("cannot estimate the lag of {}", line.position_stream),
                    source,
                })?
                .get(0);
            // The plan's rows are a float; at least 1, as the head is
            // ahead.
            let rows = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(1.0);
            Ok::<_, CliError>((index, (rows.round() as i64).max(1)))
        }
    });
    let mut behind: Vec<(usize, i64)> = futures_util::future::try_join_all(estimates).await?;
    behind.sort_by_key(|&(_, estimate)| estimate);
    let mut budget = COUNT_BUDGET;
    for (index, estimate) in behind {
        let line = &mut lines[index];
        let bound = EXACT_LAG_UP_TO.min(budget);
        if estimate > COUNT_LAGS_ESTIMATED_UP_TO || bound <= 0 {
            (line.lag, line.estimated) = (estimate, true);
            continue;
        }
        let counted = count_lag(&client, line, Some(bound + 1)).await?;
        budget -= counted;
        (line.lag, line.estimated) = if counted <= bound {
            (counted, false)
        } else {
            (estimate.max(counted), true)
        };
    }
    Ok(())
}

/// The category's messages after the consumer's position, up to `limit`
/// (all without one).
async fn count_lag(
    client: &deadpool_postgres::Object,
    line: &ConsumerLine,
    limit: Option<i64>,
) -> Result<i64, CliError> {
    Ok(client
        .query_one(
            COUNT_LAG,
            &[&line.category, &line.position.unwrap_or(0), &limit],
        )
        .await
        .map_err(|source| CliError::Database {
            action: format!("cannot count the lag of {}", line.position_stream),
            source,
        })?
        .get(0))
}
