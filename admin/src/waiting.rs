//! How long consumers have left messages waiting: for each, when the
//! oldest message of its category it has not handled was written. What
//! the dashboard shows as a consumer's lag in time, beside its lag in
//! messages ([`consumers`](crate::consumers)).

use chrono::{DateTime, NaiveDateTime, Utc};
use ebb_message_store::PgStore;

use crate::consumer_streams;
use crate::{ConsumerStatus, Error};

/// For each consumer (category `$1`, position `$2`), in order: the time
/// of its category's first message after its position (one probe of the
/// `messages_category` index each).
const OLDEST_UNHANDLED: &str = "\
    SELECT first.time \
    FROM unnest($1::varchar[], $2::bigint[]) WITH ORDINALITY AS c(category, position, n) \
    LEFT JOIN LATERAL ( \
      SELECT time FROM message_store.messages \
      WHERE message_store.category(stream_name) = c.category AND global_position > c.position \
      ORDER BY global_position LIMIT 1 \
    ) AS first ON true \
    ORDER BY c.n";

/// For each of `consumers`, in order: when the oldest message of its
/// category after its recorded position was written (the message it is
/// waiting to record as handled); None when it has recorded its
/// category's head. As a consumer records its position every so many
/// messages, not after each, the message may be handled already.
pub async fn oldest_unhandled(
    store: &PgStore,
    consumers: &[ConsumerStatus],
) -> Result<Vec<Option<DateTime<Utc>>>, Error> {
    if consumers.is_empty() {
        return Ok(Vec::new());
    }
    let categories: Vec<&str> = consumers.iter().map(|c| c.category.as_str()).collect();
    let positions: Vec<i64> = consumers.iter().map(|c| c.position.unwrap_or(0)).collect();
    let rows = consumer_streams::client(store)
        .await?
        .query(OLDEST_UNHANDLED, &[&categories, &positions])
        .await
        .map_err(|source| Error::Statement {
            action: "cannot read the consumers' oldest unhandled messages".into(),
            source,
        })?;
    Ok(rows
        .iter()
        .map(|row| {
            row.get::<_, Option<NaiveDateTime>>(0)
                .map(|time| time.and_utc())
        })
        .collect())
}
