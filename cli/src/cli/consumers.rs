//! `ebb consumers`: every consumer that has recorded a position, where it
//! stands against its category's head, and its failures and parked
//! messages.

use std::collections::HashMap;

use ebb_consumer::POSITION_TYPE;
use ebb_message_store::{MessageStore as _, PgStore};
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
position; LAG the number of the category's messages after POSITION, \
counted through the category index (so its cost grows with the lag), 0 \
when caught up. FAILURES and PARKED count the messages in the \
consumer's failures and parked streams.")]
pub struct ConsumersArgs {
    /// Only the consumers of this category (`account`, `account:command`).
    category: Option<String>,
    /// One JSON object per line (category, identifier, positionStream,
    /// position, head, lag, recordedAt, failures, parked) instead of a
    /// table.
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
    /// `recorded_at` as the table shows it.
    #[serde(skip)]
    recorded_cell: String,
}

/// The data of a position message, as the consumer writes it.
#[derive(serde::Deserialize)]
struct Recorded {
    position: i64,
}

/// How many messages two streams hold (an index scan of `messages_stream`
/// each).
const COUNT_TWO_STREAMS: &str = "\
    SELECT (SELECT count(*) FROM message_store.messages WHERE stream_name = $1::varchar), \
           (SELECT count(*) FROM message_store.messages WHERE stream_name = $2::varchar), \
           (SELECT count(*) FROM message_store.messages \
             WHERE message_store.category(stream_name) = $3::varchar \
               AND global_position > $4::bigint)";

pub async fn run(args: ConsumersArgs) -> Result<(), CliError> {
    let only = args
        .category
        .as_deref()
        .map(|category| ConsumerName::new(category, None))
        .transpose()?;
    let store = store()?;
    let streams = consumer_streams::position_streams(&store, only.as_ref()).await?;
    let mut heads: HashMap<String, Option<i64>> = HashMap::new();
    let mut lines = Vec::with_capacity(streams.len());
    for (consumer, stream) in streams {
        let head = match heads.get(&consumer.category) {
            Some(head) => *head,
            None => {
                let head = category_head(&store, &consumer.category).await?;
                heads.insert(consumer.category.clone(), head);
                head
            }
        };
        lines.push(describe(&store, consumer, stream, head).await?);
    }
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
    let rows: Vec<Vec<String>> = lines
        .into_iter()
        .map(|line| {
            vec![
                line.category,
                line.identifier.unwrap_or_else(|| "-".into()),
                listing::or_dash(line.position),
                listing::or_dash(line.head),
                line.lag.to_string(),
                line.recorded_cell,
                line.failures.to_string(),
                line.parked.to_string(),
                line.position_stream,
            ]
        })
        .collect();
    listing::print_table(&columns, &rows)
}

async fn category_head(store: &PgStore, category: &str) -> Result<Option<i64>, CliError> {
    store
        .category_head(category)
        .await
        .map_err(|source| CliError::Store {
            action: format!("cannot read the head of {category}"),
            source,
        })
}

/// One consumer's line: its last position record, its lag against
/// `head`, and the sizes of its failures and parked streams.
async fn describe(
    store: &PgStore,
    consumer: ConsumerName,
    stream: String,
    head: Option<i64>,
) -> Result<ConsumerLine, CliError> {
    let last = store
        .get_last_stream_message(&stream, Some(POSITION_TYPE))
        .await
        .map_err(|source| CliError::Store {
            action: format!("cannot read {stream}"),
            source,
        })?;
    let (position, recorded_at) = match last {
        Some(message) => {
            let recorded: Recorded = message.data().map_err(|source| CliError::Store {
                action: format!(
                    "the position record at {stream}/{} is not {{\"position\": N}}",
                    message.position
                ),
                source,
            })?;
            (Some(recorded.position), Some(message.time))
        }
        None => (None, None),
    };
    let (failures_stream, parked_stream) = (consumer.stream(FAILURES)?, consumer.stream(PARKED)?);
    let row = consumer_streams::client(store)
        .await?
        .query_one(
            COUNT_TWO_STREAMS,
            &[
                &failures_stream,
                &parked_stream,
                &consumer.category,
                &position.unwrap_or(0),
            ],
        )
        .await
        .map_err(|source| CliError::Database {
            action: format!("cannot count {failures_stream} and {parked_stream}"),
            source,
        })?;
    Ok(ConsumerLine {
        lag: row.get(2),
        category: consumer.category,
        identifier: consumer.identifier,
        position_stream: stream,
        position,
        head,
        recorded_at: recorded_at.as_ref().map(listing::json_time),
        recorded_cell: listing::or_dash(recorded_at.as_ref().map(listing::table_time)),
        failures: row.get(0),
        parked: row.get(1),
    })
}
