//! The baseline: pgbench doing the consumer's work on the server: reading
//! the whole category in batches of 1,000 (the statement ebb's consumer
//! sends, or Message DB's `get_category_messages`) and writing a position
//! record every `EBB_BENCH_CONSUMER_POSITION_INTERVAL` messages, as the
//! consumer does.

use std::path::PathBuf;

use ebb_bench::BoxError;
use ebb_bench::pgbench::{self, CategoryRead};

use crate::workload::{BATCH_SIZE, CATEGORY};
use crate::{Bench, DATABASE, Rate};

/// A read script: one batch per transaction, each starting after the
/// last message of the one before, from position 1 to the category's
/// end, as the consumer reads it ([`pgbench::category_read_script`]);
/// after each batch, the position records the consumer writes for it
/// ([`position_writes`]).
#[derive(Debug)]
pub(crate) struct Pgbench {
    /// The script file, in the cluster's own directory.
    path: PathBuf,
    /// `simple` for the direct read's `EXECUTE`, `prepared` for the function.
    protocol: &'static str,
    /// Transactions (batches) of a full pass.
    batches: u64,
    /// Messages of a full pass.
    messages: u64,
}

impl Pgbench {
    pub(crate) fn new(bench: &Bench, read: CategoryRead<'_>) -> Result<Self, BoxError> {
        let name = match read {
            CategoryRead::Direct(_) => "consume_direct.sql",
            CategoryRead::Function => "consume_function.sql",
        };
        let path = pgbench::script(
            bench.cluster.socket_dir(),
            name,
            &(pgbench::category_read_script(read, CATEGORY, BATCH_SIZE, None)
                + &position_writes(read, bench.settings.position_update_interval)),
        )?;
        let messages = bench.settings.messages;
        Ok(Self {
            path,
            protocol: read.protocol(),
            batches: messages.div_ceil(BATCH_SIZE),
            messages,
        })
    }

    /// One full pass over the category with one client on one thread; its
    /// rate is the messages over pgbench's own time "without initial
    /// connection time". A pass that did not run every batch fails.
    pub(crate) fn pass(&self, bench: &Bench) -> Result<Rate, BoxError> {
        let mut command = bench.cluster.command("pgbench");
        command
            .args(["-n", "-M", self.protocol, "-c", "1", "-j", "1"])
            .args(["-t", &self.batches.to_string()])
            .args([
                "-D",
                "global_position=0",
                "-D",
                "ready=0",
                "-D",
                "prepared=0",
            ])
            .arg("-f")
            .arg(&self.path)
            .arg(DATABASE);
        let output = pgbench::run(command, Some(self.batches))?;
        Ok(Rate {
            messages: self.messages,
            seconds: self.batches as f64 / output.tps,
        })
    }
}

/// The position records the consumer writes while it handles one batch:
/// one every `interval` messages (`interval` divides the batch size, as
/// the settings check), each its own `write_message` call in a
/// transaction of its own, as the consumer's `PositionStore` writes them:
/// type `Recorded`, data `{"position": N}`, no metadata, any version, to a
/// position stream of the category. The position written is the batch's
/// last global position (the consumer's is the message it reached; the
/// difference is a few digits of JSON).
///
/// The stream name's colon is `chr(58)`: pgbench takes `:position` to be
/// a variable even inside a string literal.
fn position_writes(read: CategoryRead<'_>, interval: u64) -> String {
    let write = match read {
        // Prepared once per connection like the read, run by `EXECUTE`
        // with the values the consumer binds.
        CategoryRead::Direct(_) => {
            "EXECUTE ebb_position(gen_random_uuid()::varchar, \
             'benchAccount' || chr(58) || 'position-pgbench', 'Recorded', \
             jsonb_build_object('position', :global_position::bigint), NULL, NULL);\n"
        }
        CategoryRead::Function => {
            "SELECT message_store.write_message(gen_random_uuid()::varchar, \
             'benchAccount' || chr(58) || 'position-pgbench', 'Recorded', \
             jsonb_build_object('position', :global_position::bigint), NULL, NULL);\n"
        }
    };
    let prepare = match read {
        CategoryRead::Direct(_) => {
            "\\if :prepared = 0\n\
             PREPARE ebb_position(varchar, varchar, varchar, jsonb, jsonb, bigint) AS \
             SELECT message_store.write_message($1, $2, $3, $4, $5, $6);\n\
             \\set prepared 1\n\
             \\endif\n"
        }
        CategoryRead::Function => "",
    };
    format!(
        "{prepare}{}",
        write.repeat((BATCH_SIZE / interval) as usize)
    )
}
