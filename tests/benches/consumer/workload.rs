//! What both sides read: one category of `Deposited` events, loaded directly with SQL.

use std::time::Instant;

use ebb_handler::MessageType as _;
use ebb_tests::seed::Deposited;

use ebb_bench::{BoxError, progress};

use crate::{Bench, DATABASE};

/// The category both sides read end to end.
pub(crate) const CATEGORY: &str = "benchAccount";
/// How many streams (accounts) the category's messages are spread over.
pub(crate) const STREAMS: u64 = 1000;
/// Messages per read on both sides: pgbench's `get_category_messages`
/// batch, and `ConsumerConfig`'s default batch size.
pub(crate) const BATCH_SIZE: u64 = 1000;
/// Rows per `INSERT` while loading, for progress lines.
const CHUNK: u64 = 100_000;

/// Fills the category with `messages` `Deposited` events, round-robin over
/// `STREAMS` streams `benchAccount-<n>`, global positions 1..=messages.
/// Inserted directly, in chunks, because loading is not what is measured;
/// the rows are what `write_message` would have written (stream position
/// counting from 0 in each stream, a new id and the current time by the
/// table's defaults), with data that differs from row to row as real
/// events' does: a UUID deposit id, the account's id, an amount and a
/// sequence, and the causation and correlation metadata a handler's write
/// carries.
pub(crate) fn load(bench: &Bench) -> Result<(), BoxError> {
    let total = bench.settings.messages;
    progress(format!(
        "loading {total} messages into category {CATEGORY} (not measured)"
    ));
    bench.runtime.block_on(async {
        let client = ebb_tests::connect_to(&bench.cluster.config(DATABASE)).await?;
        let type_name = Deposited::TYPE_NAME;
        let insert = client
            .prepare(&format!(
                "INSERT INTO message_store.messages \
                   (stream_name, position, type, data, metadata) \
                 SELECT '{CATEGORY}-' || (i % {STREAMS}), i / {STREAMS}, '{type_name}', \
                   jsonb_build_object( \
                     'depositId', gen_random_uuid()::text, \
                     'accountId', md5('account' || (i % {STREAMS}))::uuid::text, \
                     'amount', 100 + i % 9900, \
                     'sequence', i + 1), \
                   jsonb_build_object( \
                     'causationMessageStreamName', \
                       'benchAccount:command-' || md5('account' || (i % {STREAMS}))::uuid::text, \
                     'causationMessagePosition', i / {STREAMS}, \
                     'causationMessageGlobalPosition', i + 1, \
                     'correlationStreamName', 'benchTransfer-' || (i % 97), \
                     'schemaVersion', '1') \
                 FROM generate_series($1::bigint, $2::bigint) AS i ORDER BY i"
            ))
            .await?;
        let started = Instant::now();
        let mut from = 0u64;
        while from < total {
            let to = (from + CHUNK).min(total) - 1;
            client
                .execute(&insert, &[&(from as i64), &(to as i64)])
                .await?;
            from = to + 1;
            progress(format!(
                "  loaded {from} of {total} messages ({:.0} s)",
                started.elapsed().as_secs_f64()
            ));
        }
        // The loaded category must be global positions 1..=total, in
        // order, with no gap: pgbench's script and the consumer's stop
        // both count on it.
        let row = client
            .query_one(
                "SELECT count(*), min(global_position), max(global_position) \
                 FROM message_store.messages WHERE message_store.category(stream_name) = $1",
                &[&CATEGORY],
            )
            .await?;
        let (count, min, max): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if count as u64 != total || min != 1 || max as u64 != total {
            return Err(format!(
                "the loaded category holds {count} messages at {min}..={max}, \
                 expected {total} at 1..={total}"
            )
            .into());
        }
        // Visibility map and statistics set, so neither side pays for hint
        // bits or a first autovacuum.
        progress("  vacuuming");
        client
            .batch_execute("VACUUM (FREEZE, ANALYZE) message_store.messages")
            .await?;
        client.batch_execute("CHECKPOINT").await?;
        Ok::<_, BoxError>(())
    })
}
