//! The baseline: pgbench reading the whole category with `get_category_messages` in batches of 1,000.

use std::path::PathBuf;

use crate::workload::{BATCH_SIZE, CATEGORY};
use crate::{Bench, BoxError, DATABASE, Rate};

/// The read script: one batch per transaction, each starting after the
/// last message of the one before.
///
/// `\aset` stores the columns of the result's last row in variables, so
/// after a batch `:global_position` is the global position of its last
/// message; the next transaction reads from the one after it. pgbench
/// receives every row of every batch, as a consumer does, and keeps the
/// client variables from one transaction to the next (`-D
/// global_position=0` starts the category from position 1). A batch
/// that comes back empty leaves `:global_position` where it was, and the
/// script fails on purpose, so a run that did not read the whole category
/// cannot pass for one.
#[derive(Debug)]
pub(crate) struct Pgbench {
    /// The script file, in the cluster's own directory: the account
    /// pgbench runs as can read it, and it is removed with the cluster.
    path: PathBuf,
    /// Transactions (batches) of a full pass.
    batches: u64,
    /// Messages of a full pass.
    messages: u64,
}

impl Pgbench {
    pub(crate) fn new(bench: &Bench) -> Result<Self, BoxError> {
        use std::os::unix::fs::PermissionsExt as _;

        let path = bench.cluster.socket_dir().join("consume.sql");
        std::fs::write(
            &path,
            format!(
                "\\set pos :global_position + 1\n\
                 SELECT * FROM message_store.get_category_messages('{CATEGORY}', :pos, {BATCH_SIZE}) \\aset\n\
                 \\if :global_position < :pos\n\
                 SELECT 'an empty batch: the category ended before the pass did' :: int;\n\
                 \\endif\n"
            ),
        )?;
        // pgbench may run as another account (when we are root).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        let messages = bench.settings.messages;
        Ok(Self {
            path,
            batches: messages.div_ceil(BATCH_SIZE),
            messages,
        })
    }

    /// One full pass over the category with one client on one thread; its
    /// rate is the messages over pgbench's own time "without initial
    /// connection time".
    pub(crate) fn pass(&self, bench: &Bench) -> Result<Rate, BoxError> {
        let output = bench
            .cluster
            .command("pgbench")
            .args(["-n", "-M", "prepared", "-c", "1", "-j", "1"])
            .args(["-t", &self.batches.to_string()])
            .args(["-D", "global_position=0"])
            .arg("-f")
            .arg(&self.path)
            .arg(DATABASE)
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status).into());
        }
        let processed = format!(
            "number of transactions actually processed: {}/{}",
            self.batches, self.batches
        );
        if !stdout.contains(&processed) {
            return Err(format!("pgbench did not read every batch:\n{stdout}\n{stderr}").into());
        }
        let tps: f64 = stdout
            .lines()
            .filter(|line| line.contains("without initial connection time"))
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|tps| tps.parse().ok())
            .ok_or_else(|| format!("no tps line in pgbench's output:\n{stdout}"))?;
        Ok(Rate {
            messages: self.messages,
            seconds: self.batches as f64 / tps,
        })
    }
}

/// `pgbench --version`'s version number, for the report.
pub(crate) fn pgbench_version(bench: &Bench) -> String {
    bench
        .cluster
        .command("pgbench")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.split_whitespace().nth(2).map(str::to_owned))
        .unwrap_or_default()
}
