//! The store the commands are timed on, written straight into
//! `message_store.messages` by a few `INSERT ... SELECT` statements over
//! `generate_series` (the shape a store gets from its writers and
//! consumers, without writing it message by message).
//!
//! - **Entity streams**: `EBB_BENCH_OPS_MESSAGES` messages in
//!   `EBB_BENCH_OPS_CATEGORIES` categories, in streams
//!   `categoryN-UUID` of `EBB_BENCH_OPS_STREAM_MESSAGES` messages each,
//!   written round-robin over the streams, so that consecutive messages
//!   belong to different streams and categories, as many writers leave
//!   them. Types `Opened` (position 0), then `Noted`, `Deposited` and
//!   `Withdrawn` in turn; small JSON data; causation metadata.
//! - **Consumers**: two per category, `w1` caught up and `w2` halfway
//!   behind. Each records its position (a `Recorded` message with data
//!   `{"position": N}` in `categoryN:position-wK`, as
//!   `ebb_consumer::PositionStore` writes it) every 100 messages of its
//!   category, as a consumer at the default `position_update_interval`
//!   does: the position records are interleaved with the messages, 2 % of
//!   the store.
//! - **Failures and parked messages**: three `Failed` records per
//!   category in `categoryN:failures-w2` and five `Parked` records (the
//!   original message whole) in `categoryN:parked-w1`, shaped as
//!   `ebb_consumer::{Failed, Parked}` serialize.
//!
//! The secondary indexes are dropped while the rows go in and built again
//! after (by installing the schema again, which creates what is missing),
//! and the wake-up trigger is off meanwhile; then `VACUUM ANALYZE`, as
//! autovacuum leaves a table that has settled.

use crate::BoxError;
use crate::settings::Settings;

/// What the store holds, for the report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contents {
    pub(crate) messages: i64,
    pub(crate) streams: i64,
    pub(crate) position_records: i64,
    pub(crate) table_bytes: i64,
    pub(crate) total_bytes: i64,
}

/// A consumer records its position every this many messages of the
/// entity streams, in turn; with two consumers per category each records
/// every 100 messages of its category.
const RECORD_EVERY: u64 = 50;
/// The consumers of each category: `w1`, caught up; `w2`, halfway.
const CONSUMERS_PER_CATEGORY: u64 = 2;

/// Builds the store in the installed, empty database of `client`.
pub(crate) async fn build(
    client: &tokio_postgres::Client,
    settings: &Settings,
) -> Result<Contents, BoxError> {
    client
        .batch_execute(
            "ALTER TABLE message_store.messages DISABLE TRIGGER messages_wake_category_waiters;
             DROP INDEX message_store.messages_category, message_store.messages_stream,
                        message_store.messages_id;",
        )
        .await?;
    client.batch_execute(&entity_streams(settings)).await?;
    client.batch_execute(&poison_records(settings)).await?;
    // The schema's files create the missing indexes (and leave the
    // disabled trigger as it is).
    ebb_message_store::schema::install(client).await?;
    // One statement each: VACUUM cannot run in the transaction a
    // multi-statement query is.
    for statement in [
        "ALTER TABLE message_store.messages ENABLE TRIGGER messages_wake_category_waiters",
        "VACUUM ANALYZE message_store.messages",
        "CHECKPOINT",
    ] {
        client.batch_execute(statement).await?;
    }
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM message_store.messages),
                    (SELECT count(DISTINCT stream_name) FROM message_store.messages),
                    (SELECT count(*) FROM message_store.messages WHERE type = 'Recorded'),
                    pg_relation_size('message_store.messages'),
                    pg_total_relation_size('message_store.messages')",
            &[],
        )
        .await?;
    Ok(Contents {
        messages: row.get(0),
        streams: row.get(1),
        position_records: row.get(2),
        table_bytes: row.get(3),
        total_bytes: row.get(4),
    })
}

/// The entity streams' messages, each `RECORD_EVERY`-th followed by a
/// position record. Data message `j` is the `j / streams`-th of stream
/// `j % streams`, and lands at global position
/// `j + j / RECORD_EVERY + 1`.
fn entity_streams(settings: &Settings) -> String {
    let (messages, streams, categories) =
        (settings.messages, settings.streams(), settings.categories);
    let consumers = categories * CONSUMERS_PER_CATEGORY;
    format!(
        "INSERT INTO message_store.messages (position, time, stream_name, type, data, metadata, id)
         SELECT
           CASE WHEN k.record THEN (j / {RECORD_EVERY}) / {consumers} ELSE j / {streams} END,
           timestamp '2026-01-01' + j * interval '10 milliseconds',
           CASE WHEN k.record
             THEN 'category' || (j / {RECORD_EVERY}) % {consumers} % {categories} + 1
                  || ':position-w' || (j / {RECORD_EVERY}) % {consumers} / {categories} + 1
             ELSE e.category || '-' || e.entity
           END,
           CASE WHEN k.record THEN 'Recorded'
                WHEN j / {streams} = 0 THEN 'Opened'
                ELSE (ARRAY['Noted', 'Deposited', 'Withdrawn'])[(j / {streams}) % 3 + 1]
           END,
           CASE WHEN k.record
             THEN jsonb_build_object('position',
                    (j + j / {RECORD_EVERY} + 1) / ((j / {RECORD_EVERY}) % {consumers} / {categories} + 1))
             ELSE jsonb_build_object('accountId', e.entity, 'amount', j % 1000)
           END,
           CASE WHEN NOT k.record
             THEN jsonb_build_object(
                    'causationMessageStreamName', e.category || ':command-' || e.entity,
                    'causationMessagePosition', j / {streams},
                    'causationMessageGlobalPosition', j)
           END,
           gen_random_uuid()
         FROM generate_series(0, {messages} - 1) AS j
         CROSS JOIN LATERAL (
           SELECT 'category' || (j % {streams}) % {categories} + 1 AS category,
                  md5('entity' || j % {streams})::uuid::text AS entity
           OFFSET 0
         ) AS e
         CROSS JOIN LATERAL (
           SELECT false AS record
           UNION ALL
           SELECT true WHERE j % {RECORD_EVERY} = {RECORD_EVERY} - 1
         ) AS k"
    )
}

/// Per category, three failures of `w2` and five messages parked by `w1`,
/// each naming an entity message of the category (the fourth of a
/// stream).
fn poison_records(settings: &Settings) -> String {
    let (streams, categories) = (settings.streams(), settings.categories);
    format!(
        "INSERT INTO message_store.messages (position, stream_name, type, data, metadata, id)
         SELECT k - 1,
                'category' || c || ':failures-w2',
                'Failed',
                jsonb_build_object(
                  'streamName', 'category' || c || '-' || md5('entity' || s)::uuid,
                  'position', 3,
                  'globalPosition', j + j / {RECORD_EVERY} + 1,
                  'type', 'Noted',
                  'error', 'amount ' || k || ' is not a number of cents',
                  'attempts', 1),
                NULL,
                gen_random_uuid()
         FROM generate_series(1, {categories}) AS c, generate_series(1, 3) AS k,
              LATERAL (SELECT c - 1 + {categories} * k AS s) AS e,
              LATERAL (SELECT s + {streams} * 3 AS j) AS m
         ORDER BY c, k;
         INSERT INTO message_store.messages (position, stream_name, type, data, metadata, id)
         SELECT k - 1,
                'category' || c || ':parked-w1',
                'Parked',
                jsonb_build_object(
                  'id', gen_random_uuid(),
                  'streamName', 'category' || c || '-' || md5('entity' || s)::uuid,
                  'position', 3,
                  'globalPosition', j + j / {RECORD_EVERY} + 1,
                  'type', 'Noted',
                  'data', jsonb_build_object('accountId', md5('entity' || s)::uuid, 'amount', j % 1000),
                  'metadata', jsonb_build_object(
                    'causationMessageStreamName', 'category' || c || ':command-' || md5('entity' || s)::uuid,
                    'causationMessagePosition', 3,
                    'causationMessageGlobalPosition', j),
                  'error', 'amount ' || k || ' is not a number of cents',
                  'attempts', 3,
                  'failures', 2),
                NULL,
                gen_random_uuid()
         FROM generate_series(1, {categories}) AS c, generate_series(1, 5) AS k,
              LATERAL (SELECT c - 1 + {categories} * (k + 3) AS s) AS e,
              LATERAL (SELECT s + {streams} * 3 AS j) AS m
         ORDER BY c, k;"
    )
}
