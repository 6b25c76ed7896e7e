//! The baseline: pgbench reading the whole category in batches of 1,000, running the statement ebb's consumer sends, or Message DB's `get_category_messages`.

use std::path::PathBuf;

use ebb_bench::BoxError;
use ebb_bench::pgbench::{self, CategoryRead};

use crate::workload::{BATCH_SIZE, CATEGORY};
use crate::{Bench, DATABASE, Rate};

/// A read script: one batch per transaction, each starting after the
/// last message of the one before, from position 1 to the category's
/// end, as the consumer reads it ([`pgbench::category_read_script`]).
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
            &pgbench::category_read_script(read, CATEGORY, BATCH_SIZE, None),
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
            .args(["-D", "global_position=0", "-D", "ready=0"])
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
