//! The store's operations as functions of any client, so that they run on
//! a pooled connection or inside the caller's transaction alike.
//!
//! ```no_run
//! # async fn example(store: &ebb_message_store::PgStore, message: &ebb_message_store::MessageData) -> Result<(), Box<dyn std::error::Error>> {
//! use ebb_message_store::{pg::operations, ExpectedVersion, StreamName};
//!
//! // An event and the consumer's position commit together, or not at all.
//! let mut client = store.client().await?;
//! let transaction = client.transaction().await?;
//! let stream = StreamName::new("account", "123")?;
//! operations::write_message(&transaction, &stream, message, ExpectedVersion::Any).await?;
//! transaction.commit().await?;
//! # Ok(()) }
//! ```
//!
//! The functions run on any [`StoreClient`]: a pooled connection or
//! transaction prepares each statement once and keeps it
//! (`prepare_cached`); wrapped in [`Unprepared`](super::Unprepared) (for
//! a transaction-pooling PgBouncer), or on tokio-postgres' own clients,
//! each statement runs unnamed, in one round trip. Against a database installed by Message DB's own
//! scripts the session's search path must include `message_store` (see
//! [`with_store_search_path`](super::with_store_search_path)). Unlike
//! [`PgStore`](super::PgStore)'s own calls, these have no call timeout:
//! the caller owns the client and decides how long to wait.

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::client::StoreClient;

use crate::error::classify;
use crate::store::check_batch_size;
use crate::{
    CategoryQuery, Error, ExpectedVersion, JsonText, Message, MessageData, Metadata, StreamName,
    StreamQuery,
};

const WRITE_MESSAGE: &str = "SELECT message_store.write_message(\
    $1::varchar, $2::varchar, $3::varchar, $4::jsonb, $5::jsonb, $6::bigint)";

// One statement writes the whole batch: one round trip, and atomic without
// needing a transaction of its own (so it also runs inside the caller's).
// The function scan yields the rows in ordinality order and write_message
// runs once per row in that order; the expected version goes with the
// first message only.
const WRITE_MESSAGES: &str = "SELECT message_store.write_message(\
    m.id, $1::varchar, m.type, m.data, m.metadata, CASE WHEN m.n = 1 THEN $6::bigint END) \
    FROM unnest($2::varchar[], $3::varchar[], $4::jsonb[], $5::jsonb[]) \
    WITH ORDINALITY AS m(id, type, data, metadata, n)";

/// The parameter types of [`WRITE_MESSAGE`], as its casts give them.
const WRITE_MESSAGE_TYPES: [Type; 6] = [
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::JSONB,
    Type::JSONB,
    Type::INT8,
];

/// The parameter types of [`WRITE_MESSAGES`].
const WRITE_MESSAGES_TYPES: [Type; 6] = [
    Type::VARCHAR,
    Type::VARCHAR_ARRAY,
    Type::VARCHAR_ARRAY,
    Type::JSONB_ARRAY,
    Type::JSONB_ARRAY,
    Type::INT8,
];

/// The parameter types of both category reads (the function's has the
/// seventh, its condition).
const CATEGORY_TYPES: [Type; 7] = [
    Type::VARCHAR,
    Type::INT8,
    Type::INT8,
    Type::VARCHAR,
    Type::INT8,
    Type::INT8,
    Type::VARCHAR,
];

const COLUMNS: &str = "id, stream_name, type, position, global_position, data, metadata, time";

fn get_stream_messages_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM message_store.get_stream_messages(\
             $1::varchar, $2::bigint, $3::bigint, $4::varchar)"
        )
    })
}

fn get_category_messages_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM message_store.get_category_messages(\
             $1::varchar, $2::bigint, $3::bigint, $4::varchar, $5::bigint, $6::bigint, $7::varchar)"
        )
    })
}

fn get_last_stream_message_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM message_store.get_last_stream_message($1::varchar, $2::varchar)"
        )
    })
}

// Reads the functions would answer with rows, not an error, run as these
// queries of the table itself: the same rows in the same order, with the
// columns cast as `message_store.message` declares them, and the same
// indexes (the category expression is the messages_category index's). A
// set-returning PL/pgSQL function stores its whole result before the
// caller sees a row, which costs the server about a sixth of a 1,000-row
// batch. Anything the functions check (a category passed as a stream, a
// malformed filter, a raw SQL condition) goes to them, so their errors
// stay the server's own. Each query names the function it stands for in a
// comment, which `pg_stat_activity` and `pg_stat_statements` show.
const SELECT_MESSAGE: &str = "SELECT m.id::varchar, m.stream_name::varchar, m.type::varchar, \
    m.position::bigint, m.global_position::bigint, m.data::varchar, m.metadata::varchar, \
    m.time::timestamp FROM message_store.messages m";

fn stream_rows_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "/* ebb: get_stream_messages */ {SELECT_MESSAGE} WHERE m.stream_name = $1::varchar AND m.position >= $2::bigint \
             ORDER BY m.position \
             LIMIT CASE WHEN $3::bigint = -1 THEN NULL ELSE $3::bigint END"
        )
    })
}

fn category_rows_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "/* ebb: get_category_messages */ {SELECT_MESSAGE} \
             WHERE message_store.category(m.stream_name) = $1::varchar \
             AND m.global_position >= $2::bigint \
             AND ($4::varchar IS NULL \
               OR message_store.category(m.metadata->>'correlationStreamName') = $4::varchar) \
             AND ($6::bigint IS NULL \
               OR mod(abs(message_store.hash_64(message_store.cardinal_id(m.stream_name))), $6::bigint) = $5::bigint) \
             ORDER BY m.global_position \
             LIMIT CASE WHEN $3::bigint = -1 THEN NULL ELSE $3::bigint END"
        )
    })
}

/// The statement a category read sends when `get_category_messages`
/// would answer it with rows: its six parameters are the category, the
/// position, the batch size, the correlation category, the consumer
/// group member and size (`varchar, bigint, bigint, varchar, bigint,
/// bigint`). For the store's benchmark, whose pgbench baseline runs this
/// very statement; not part of the API.
#[doc(hidden)]
pub fn category_read_statement() -> &'static str {
    category_rows_sql()
}

/// Whether `get_stream_messages` would answer this read with rows.
fn stream_read_is_plain(stream_name: &str, query: &StreamQuery) -> bool {
    query.condition.is_none() && !crate::stream_name::is_category(stream_name)
}

/// Whether `get_category_messages` would answer this read with rows.
fn category_read_is_plain(category: &str, query: &CategoryQuery) -> bool {
    query.condition.is_none()
        && crate::stream_name::is_category(category)
        && query
            .correlation
            .as_deref()
            .is_none_or(crate::stream_name::is_category)
        && query
            .consumer_group
            .is_none_or(|group| group.size >= 1 && (0..group.size).contains(&group.member))
}

const STREAM_VERSION: &str = "SELECT message_store.stream_version($1::varchar)";

pub(crate) const ARM_CATEGORY: &str = "SELECT message_store.ebb_arm_category($1::varchar)";

pub(crate) const DISARM_CATEGORY: &str = "SELECT message_store.ebb_disarm_category($1::varchar)";

/// Writes one message; returns its stream position.
pub async fn write_message<C: StoreClient + ?Sized>(
    client: &C,
    stream_name: &StreamName,
    message: &MessageData,
    expected_version: ExpectedVersion,
) -> Result<i64, Error> {
    expected_version.validate()?;
    message.validate()?;
    write_serialized(
        client,
        &message.id,
        stream_name,
        &message.type_name,
        &message.data,
        message.metadata_json(),
        expected_version.to_sql(),
    )
    .await
}

/// Writes one message, checked already, whose data and metadata are
/// anything that encodes as `jsonb`; returns its stream position.
pub(crate) async fn write_serialized<C, D, M>(
    client: &C,
    id: &uuid::Uuid,
    stream_name: &StreamName,
    type_name: &str,
    data: D,
    metadata: Option<M>,
    expected_version: Option<i64>,
) -> Result<i64, Error>
where
    C: StoreClient + ?Sized,
    D: tokio_postgres::types::ToSql + Sync,
    M: tokio_postgres::types::ToSql + Sync,
{
    let id_text = id.to_string();
    let rows = client
        .query_rows(
            WRITE_MESSAGE,
            &[
                &id_text,
                &stream_name.as_str(),
                &type_name,
                &data,
                &metadata,
                &expected_version,
            ],
            &WRITE_MESSAGE_TYPES,
        )
        .await
        .map_err(|err| match classify(err) {
            // The one id this statement wrote is the one taken, whatever
            // the server's report says.
            Error::DuplicateMessageId { id: None, source } => Error::DuplicateMessageId {
                id: Some(*id),
                source,
            },
            other => other,
        })?;
    let position: i64 = one_row(&rows, "write_message")?.get(0);
    tracing::debug!(
        stream = %stream_name,
        r#type = %type_name,
        %id,
        position,
        "wrote message"
    );
    Ok(position)
}

/// Writes several messages to one stream in one statement (all or none);
/// returns the last one's position, or the stream's version for an empty
/// batch. The expected version applies to the first message.
pub async fn write_messages<C: StoreClient + ?Sized>(
    client: &C,
    stream_name: &StreamName,
    messages: &[MessageData],
    expected_version: ExpectedVersion,
) -> Result<Option<i64>, Error> {
    expected_version.validate()?;
    if messages.is_empty() {
        let version = stream_version(client, stream_name.as_str()).await?;
        if !expected_version.matches(version) {
            return Err(Error::WrongExpectedVersion {
                stream_name: stream_name.to_string(),
                expected: expected_version.to_sql().unwrap_or_default(),
                actual: version.unwrap_or(-1),
            });
        }
        return Ok(version);
    }
    let mut ids = Vec::with_capacity(messages.len());
    let mut types = Vec::with_capacity(messages.len());
    let mut data = Vec::with_capacity(messages.len());
    let mut metadata = Vec::with_capacity(messages.len());
    for message in messages {
        message.validate()?;
        ids.push(message.id.to_string());
        types.push(message.type_name.as_str());
        data.push(&message.data);
        metadata.push(message.metadata_json());
    }
    let rows = client
        .query_rows(
            WRITE_MESSAGES,
            &[
                &stream_name.as_str(),
                &ids,
                &types,
                &data,
                &metadata,
                &expected_version.to_sql(),
            ],
            &WRITE_MESSAGES_TYPES,
        )
        .await
        .map_err(classify)?;
    let last = rows.iter().map(|row| row.get::<_, i64>(0)).max();
    tracing::debug!(
        stream = %stream_name,
        count = messages.len(),
        last_position = last,
        "wrote batch"
    );
    Ok(last)
}

/// One batch of a stream's messages.
pub async fn get_stream_messages<C: StoreClient + ?Sized>(
    client: &C,
    stream_name: &str,
    query: &StreamQuery,
) -> Result<Vec<Message>, Error> {
    messages_from_rows(&stream_rows(client, stream_name, query).await?)
}

/// One batch of a stream's messages, not yet decoded.
pub(crate) async fn stream_rows<C: StoreClient + ?Sized>(
    client: &C,
    stream_name: &str,
    query: &StreamQuery,
) -> Result<Vec<Row>, Error> {
    check_batch_size(query.batch_size)?;
    let rows = if stream_read_is_plain(stream_name, query) {
        client
            .query_rows(
                stream_rows_sql(),
                &[&stream_name, &query.position, &query.batch_size],
                &[Type::VARCHAR, Type::INT8, Type::INT8],
            )
            .await
    } else {
        client
            .query_rows(
                get_stream_messages_sql(),
                &[
                    &stream_name,
                    &query.position,
                    &query.batch_size,
                    &query.condition,
                ],
                &[Type::VARCHAR, Type::INT8, Type::INT8, Type::VARCHAR],
            )
            .await
    }
    .map_err(classify)?;
    tracing::trace!(
        stream = stream_name,
        position = query.position,
        count = rows.len(),
        "read stream batch"
    );
    Ok(rows)
}

/// One batch of a category's messages.
pub async fn get_category_messages<C: StoreClient + ?Sized>(
    client: &C,
    category: &str,
    query: &CategoryQuery,
) -> Result<Vec<Message>, Error> {
    messages_from_rows(&category_rows(client, category, query).await?)
}

/// The global position of the category's last message, if any (an index
/// scan of `messages_category`, which is keyed by the same expression).
pub async fn category_head<C: StoreClient + ?Sized>(
    client: &C,
    category: &str,
) -> Result<Option<i64>, Error> {
    if !crate::stream_name::is_category(category) {
        return Err(Error::NotACategory(category.to_owned()));
    }
    let rows = client
        .query_rows(
            "SELECT max(global_position) FROM message_store.messages \
             WHERE message_store.category(stream_name) = $1::varchar",
            &[&category],
            &[Type::VARCHAR],
        )
        .await
        .map_err(classify)?;
    Ok(one_row(&rows, "category_head")?.get(0))
}

/// One batch of a category's messages, not yet decoded.
pub(crate) async fn category_rows<C: StoreClient + ?Sized>(
    client: &C,
    category: &str,
    query: &CategoryQuery,
) -> Result<Vec<Row>, Error> {
    check_batch_size(query.batch_size)?;
    let (member, size) = match query.consumer_group {
        Some(group) => (Some(group.member), Some(group.size)),
        None => (None, None),
    };
    let plain = category_read_is_plain(category, query);
    let arguments: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &category,
        &query.position,
        &query.batch_size,
        &query.correlation,
        &member,
        &size,
        &query.condition,
    ];
    // The table's query takes every argument but the condition.
    let (sql, arguments) = if plain {
        (category_rows_sql(), &arguments[..6])
    } else {
        (get_category_messages_sql(), &arguments[..])
    };
    let types = &CATEGORY_TYPES[..arguments.len()];
    let rows = client
        .query_rows(sql, arguments, types)
        .await
        .map_err(classify)?;
    tracing::trace!(
        category,
        position = query.position,
        count = rows.len(),
        "read category batch"
    );
    Ok(rows)
}

/// The stream's last message, or its last of `type_name`.
pub async fn get_last_stream_message<C: StoreClient + ?Sized>(
    client: &C,
    stream_name: &str,
    type_name: Option<&str>,
) -> Result<Option<Message>, Error> {
    let rows = client
        .query_rows(
            get_last_stream_message_sql(),
            &[&stream_name, &type_name],
            &[Type::VARCHAR, Type::VARCHAR],
        )
        .await
        .map_err(classify)?;
    rows.first().map(message_from_row).transpose()
}

/// The position of the stream's last message; `None` when it is empty.
pub async fn stream_version<C: StoreClient + ?Sized>(
    client: &C,
    stream_name: &str,
) -> Result<Option<i64>, Error> {
    let rows = client
        .query_rows(STREAM_VERSION, &[&stream_name], &[Type::VARCHAR])
        .await
        .map_err(classify)?;
    Ok(one_row(&rows, "stream_version")?.get(0))
}

/// Arms `category` for this session: until it is disarmed
/// (`message_store.ebb_disarm_category`) or the session ends, every write to the category
/// notifies the channel [`NOTIFY_CHANNEL`](super::NOTIFY_CHANNEL) with the
/// category as payload (ebb's schema only: against a plain Message DB
/// install it fails with SQLSTATE 42883, `undefined_function`).
///
/// It waits for the writers already in the category to commit, so a read
/// of the category after it returns sees every write that will not notify.
/// [`PgStore::arm_wakeup`](crate::MessageStore::arm_wakeup) calls it on its
/// listening connection and disarms at the notification.
pub async fn arm_category<C: StoreClient + ?Sized>(
    client: &C,
    category: &str,
) -> Result<(), Error> {
    client
        .query_rows(ARM_CATEGORY, &[&category], &[Type::VARCHAR])
        .await
        .map_err(classify)?;
    Ok(())
}

/// The one row a statement that returns one row returned.
fn one_row<'a>(rows: &'a [Row], statement: &str) -> Result<&'a Row, Error> {
    match rows {
        [row] => Ok(row),
        _ => Err(Error::UnexpectedRows {
            statement: statement.to_owned(),
            count: rows.len(),
        }),
    }
}

/// Decodes a batch of `message_store.message` rows.
pub(crate) fn messages_from_rows(rows: &[Row]) -> Result<Vec<Message>, Error> {
    rows.iter().map(message_from_row).collect()
}

/// A `message_store.message` row's stream position, read without decoding
/// the rest of the row.
pub(crate) fn row_position(row: &Row) -> i64 {
    row.get(3)
}

/// A `message_store.message` row's global position, read without decoding
/// the rest of the row.
pub(crate) fn row_global_position(row: &Row) -> i64 {
    row.get(4)
}

/// Reads a `message_store.message` row. JSON arrives as text, as the type
/// declares it.
fn message_from_row(row: &Row) -> Result<Message, Error> {
    let global_position: i64 = row.get(4);
    let malformed = |reason: String, source: Option<serde_json::Error>| Error::MalformedMessage {
        global_position,
        reason,
        source,
    };
    let id: &str = row.get(0);
    let id = id
        .parse()
        .map_err(|_| malformed(format!("id {id:?} is not a UUID"), None))?;
    // The column is jsonb: what it returns is JSON. It is kept as text
    // and decoded once, by whoever knows its type.
    let data = row
        .get::<_, Option<&str>>(5)
        .map_or_else(JsonText::null, JsonText::trusted);
    let metadata = Metadata::from_json_text(row.get(6))
        .map_err(|err| malformed("metadata does not parse".into(), Some(err)))?;
    let time: chrono::NaiveDateTime = row.get(7);
    Ok(Message {
        id,
        stream_name: row.get(1),
        type_name: row.get(2),
        position: row.get(3),
        global_position,
        data,
        metadata,
        time: time.and_utc(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_the_functions_would_answer_with_rows_skip_them() {
        let plain = StreamQuery::new();
        assert!(stream_read_is_plain("account-1", &plain));
        assert!(!stream_read_is_plain("account", &plain));
        assert!(!stream_read_is_plain(
            "account-1",
            &StreamQuery::new().condition("position > 0")
        ));

        let plain = CategoryQuery::new();
        assert!(category_read_is_plain("account", &plain));
        assert!(category_read_is_plain(
            "account",
            &CategoryQuery::new()
                .correlation("transfer")
                .consumer_group(2, 3)
        ));
        for (category, query) in [
            ("account-1", CategoryQuery::new()),
            ("account", CategoryQuery::new().correlation("transfer-1")),
            ("account", CategoryQuery::new().consumer_group(3, 3)),
            ("account", CategoryQuery::new().consumer_group(-1, 3)),
            ("account", CategoryQuery::new().consumer_group(0, 0)),
            ("account", CategoryQuery::new().condition("position > 0")),
        ] {
            assert!(
                !category_read_is_plain(category, &query),
                "{category} {query:?} goes to the function"
            );
        }
    }
}
