//! A large store for the benchmarks that time what operators look at (the
//! `ebb` commands, the dashboard's pages): a private cluster set up for a
//! bulk load, and a store written straight into
//! `message_store.messages` by a few `INSERT ... SELECT` statements over
//! `generate_series` (the shape a store gets from its writers and
//! consumers, without writing it message by message). 5,000,000 messages
//! take about two minutes on two cores.
//!
//! - **Entity streams**: [`Shape::messages`] messages in
//!   [`Shape::categories`] categories, in streams `categoryN-UUID` of
//!   [`Shape::stream_messages`] messages each, written round-robin over
//!   the streams, so that consecutive messages belong to different
//!   streams and categories, as many writers leave them. Types `Opened`
//!   (position 0), then `Noted`, `Deposited` and `Withdrawn` in turn;
//!   small JSON data; causation metadata. One message every 10 ms from
//!   2026-01-01, so the store's newest message is old: nothing counts as
//!   written in the last minutes.
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
//! autovacuum leaves a table that has settled, and a checkpoint.

use ebb_localpg::{Cluster, ClusterBuilder};

/// Any error of building the store: it ends the bench that asked.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How large the store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The messages of the entity streams (the consumers' own streams
    /// come on top).
    pub messages: u64,
    /// The entity categories (`category1` ...), each read by two
    /// consumers.
    pub categories: u64,
    /// The messages of each entity stream, so `messages /
    /// stream_messages` streams.
    pub stream_messages: u64,
}

impl Shape {
    /// The entity streams: `stream_messages` messages each.
    pub fn streams(&self) -> u64 {
        self.messages / self.stream_messages
    }

    /// An error unless every category has at least ten streams of at
    /// least one message each; `prefix` names the settings' variables.
    pub fn check(&self, prefix: &str) -> Result<(), BoxError> {
        if self.categories == 0 || self.stream_messages == 0 {
            return Err(
                format!("{prefix}CATEGORIES and {prefix}STREAM_MESSAGES must be positive").into(),
            );
        }
        let least = self.categories * self.stream_messages * 10;
        if self.messages < least {
            return Err(format!(
                "{prefix}MESSAGES must be at least {least} (10 streams per category)"
            )
            .into());
        }
        Ok(())
    }
}

/// A private cluster's settings for a bulk load that is then read:
/// `fsync` off (nothing here needs to survive a crash), a buffer cache
/// that holds the table, and no checkpoint in the middle of the load.
pub fn cluster() -> ClusterBuilder {
    Cluster::builder()
        .fsync(false)
        .setting("shared_buffers", "1GB")
        .setting("maintenance_work_mem", "1GB")
        .setting("max_wal_size", "16GB")
        .setting("checkpoint_timeout", "1h")
}

/// The server's version and the database's collation (provider, locale,
/// encoding), for a report's header.
pub async fn server_description(client: &tokio_postgres::Client) -> Result<String, BoxError> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version'),
                    concat_ws(' ', to_jsonb(d) ->> 'datlocprovider', d.datcollate,
                              to_jsonb(d) ->> 'daticulocale',
                              pg_encoding_to_char(d.encoding))
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await?;
    Ok(format!(
        "{}, database collation (provider, locale, encoding) {}",
        row.get::<_, String>(0),
        row.get::<_, String>(1)
    ))
}

/// What the store holds, for a report.
#[derive(Debug, Clone, Copy)]
pub struct Contents {
    /// Every message, the consumers' records included.
    pub messages: i64,
    /// The distinct stream names.
    pub streams: i64,
    /// The consumers' `Recorded` messages.
    pub position_records: i64,
    /// The table's size on disk, in bytes.
    pub table_bytes: i64,
    /// The table's size with its indexes, in bytes.
    pub total_bytes: i64,
}

/// A consumer records its position every this many messages of the
/// entity streams, in turn; with two consumers per category each records
/// every 100 messages of its category.
const RECORD_EVERY: u64 = 50;
/// The consumers of each category: `w1`, caught up; `w2`, halfway.
const CONSUMERS_PER_CATEGORY: u64 = 2;

/// Builds the store in the installed, empty database of `client`.
pub async fn build(client: &tokio_postgres::Client, shape: &Shape) -> Result<Contents, BoxError> {
    client
        .batch_execute(
            "ALTER TABLE message_store.messages DISABLE TRIGGER messages_wake_category_waiters;
             DROP INDEX message_store.messages_category, message_store.messages_stream,
                        message_store.messages_id;",
        )
        .await?;
    client.batch_execute(&entity_streams(shape)).await?;
    client.batch_execute(&poison_records(shape)).await?;
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
fn entity_streams(shape: &Shape) -> String {
    let (messages, streams, categories) = (shape.messages, shape.streams(), shape.categories);
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
fn poison_records(shape: &Shape) -> String {
    let (streams, categories) = (shape.streams(), shape.categories);
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
