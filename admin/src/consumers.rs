//! Every consumer that has recorded a position, where it stands against
//! its category's head, and its failures and parked messages: what `ebb
//! consumers` lists.

use chrono::{DateTime, Utc};
use ebb_consumer::POSITION_TYPE;
use ebb_message_store::{PgStore, deadpool_postgres};
use serde::Serialize;

use crate::Error;
use crate::consumer_streams::{self, ConsumerName, FAILURES, PARKED};

/// One consumer: where it stands, and what it recorded of failures and
/// parked messages. Serialized (`ebb consumers --json`) with the fields
/// in camelCase (`positionStream`, `recordedAt`), times as RFC 3339, UTC,
/// to the microsecond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConsumerStatus {
    /// The category it consumes.
    pub category: String,
    /// Its identifier; None for a consumer without one.
    pub identifier: Option<String>,
    /// Its position stream (`account:position-w1`).
    pub position_stream: String,
    /// The last recorded position; None when nothing is recorded yet.
    pub position: Option<i64>,
    /// Its category's last global position; None when the category is
    /// empty.
    pub head: Option<i64>,
    /// The category's messages after `position` (0 when caught up):
    /// counted, or, when `estimated`, the planner's estimate.
    pub lag: i64,
    /// When the last position was recorded.
    #[serde(serialize_with = "crate::time::serialize_option")]
    pub recorded_at: Option<DateTime<Utc>>,
    /// The messages in its failures stream.
    pub failures: i64,
    /// The messages it has parked now (not replayed or discarded since).
    pub parked: i64,
    /// `lag` is the planner's estimate, not a count.
    pub estimated: bool,
}

/// Every consumer that has recorded a position (those of `category` only,
/// if given: `account`, `account:command`), ordered by category and
/// identifier: its position, its category's head, its lag, and how many
/// failures and parked messages it has recorded.
///
/// Consumers are found from their position streams. A lag of up to
/// [`EXACT_LAG_UP_TO`] messages is counted through the category index; a
/// larger one is the planner's estimate (`estimated`), as counting it
/// would read every one of those messages, unless `exact` asks for every
/// lag counted (a row read per message behind).
///
/// [`Error::InvalidInput`] for a category no consumer can have, found
/// before the store is touched.
pub async fn consumers(
    store: &PgStore,
    category: Option<&str>,
    exact: bool,
) -> Result<Vec<ConsumerStatus>, Error> {
    let only = category
        .map(|category| ConsumerName::new(category, None))
        .transpose()?;
    let streams = consumer_streams::position_streams(store, only.as_ref()).await?;
    let mut lines = describe(store, streams).await?;
    count_parked_now(store, &mut lines).await?;
    measure_lags(store, &mut lines, exact).await?;
    Ok(lines)
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
pub const EXACT_LAG_UP_TO: i64 = 1_000;
/// A lag the planner puts above this is not counted at all: a count
/// would stop at [`EXACT_LAG_UP_TO`] anyway.
const COUNT_LAGS_ESTIMATED_UP_TO: i64 = 10 * EXACT_LAG_UP_TO;
/// The messages all the counts of one run may read together (each a row
/// read, some 10-20 µs when the row is not in PostgreSQL's buffers).
const COUNT_BUDGET: i64 = 20_000;

/// Each consumer's line: its last position record, its category's head,
/// and the sizes of its failures and parked streams, read for all of them
/// by one statement; their lags are left to [`measure_lags`].
async fn describe(
    store: &PgStore,
    streams: Vec<(ConsumerName, String)>,
) -> Result<Vec<ConsumerStatus>, Error> {
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
        .map_err(|source| Error::Statement {
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
                    let recorded: Recorded =
                        serde_json::from_str(&data).map_err(|source| Error::Malformed {
                            what: format!(
                                "the position record at {stream}/{} is not {{\"position\": N}}",
                                row.get::<_, i64>(1)
                            ),
                            source,
                        })?;
                    let time: chrono::NaiveDateTime = row.get(2);
                    (Some(recorded.position), Some(time.and_utc()))
                }
                None => (None, None),
            };
            Ok(ConsumerStatus {
                lag: 0,
                estimated: false,
                category: consumer.category,
                identifier: consumer.identifier,
                position_stream: stream,
                position,
                head: row.get(5),
                recorded_at,
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
async fn count_parked_now(store: &PgStore, lines: &mut [ConsumerStatus]) -> Result<(), Error> {
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
            .map_err(|source| Error::Consumer {
                action: format!(
                    "cannot read the parked stream of consumer {identifier} of {}",
                    line.category
                ),
                source,
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
    lines: &mut [ConsumerStatus],
    exact: bool,
) -> Result<(), Error> {
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
                .map_err(|source| Error::Statement {
                    action: format!("cannot estimate the lag of {}", line.position_stream),
                    source,
                })?
                .get(0);
            // The plan's rows are a float; at least 1, as the head is
            // ahead.
            let rows = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(1.0);
            Ok::<_, Error>((index, (rows.round() as i64).max(1)))
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
    line: &ConsumerStatus,
    limit: Option<i64>,
) -> Result<i64, Error> {
    Ok(client
        .query_one(
            COUNT_LAG,
            &[&line.category, &line.position.unwrap_or(0), &limit],
        )
        .await
        .map_err(|source| Error::Statement {
            action: format!("cannot count the lag of {}", line.position_stream),
            source,
        })?
        .get(0))
}
