//! PostgreSQL's `pgbench`, the baseline of the store's and the consumer's
//! benches: running a script and reading its figures.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BoxError;

/// Writes a pgbench script named `name` into `dir` (a private cluster's
/// own directory: the account pgbench runs as can read it, and it is
/// removed with the cluster) and returns its path.
pub fn script(dir: &Path, name: &str, text: &str) -> Result<PathBuf, BoxError> {
    use std::os::unix::fs::PermissionsExt as _;

    let path = dir.join(name);
    std::fs::write(&path, text)?;
    // pgbench may run as another account (when we are root).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(path)
}

/// What a pgbench run printed that the benches use.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Transactions per second "without initial connection time".
    pub tps: f64,
    /// Transactions processed.
    pub transactions: u64,
}

/// Runs `command` (pgbench with its arguments) and reads its figures; an
/// error when pgbench fails, when a transaction failed, or when
/// `transactions` is given and pgbench processed another number.
pub fn run(mut command: Command, transactions: Option<u64>) -> Result<Output, BoxError> {
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status).into());
    }
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    if field("number of failed transactions: ").is_some_and(|failed| failed != "0") {
        return Err(format!("pgbench had failed transactions:\n{stdout}\n{stderr}").into());
    }
    let processed: u64 = field("number of transactions actually processed: ")
        .and_then(|text| text.split('/').next().and_then(|n| n.parse().ok()))
        .ok_or_else(|| format!("no transaction count in pgbench's output:\n{stdout}"))?;
    if transactions.is_some_and(|expected| processed != expected) {
        let expected = transactions.unwrap_or_default();
        return Err(format!(
            "pgbench processed {processed} transactions, not {expected}:\n{stdout}\n{stderr}"
        )
        .into());
    }
    let tps = stdout
        .lines()
        .filter(|line| line.contains("without initial connection time"))
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| format!("no tps line in pgbench's output:\n{stdout}"))?;
    Ok(Output {
        tps,
        transactions: processed,
    })
}

/// `pgbench --version`'s version number, for a report.
pub fn version(mut command: Command) -> String {
    command
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.split_whitespace().nth(2).map(str::to_owned))
        .unwrap_or_default()
}

/// The query that tells whether a server is durable (`fsync`,
/// `synchronous_commit` and `full_page_writes` on), for [`Row::durable`](crate::Row::durable).
pub const DURABLE_QUERY: &str = "SELECT current_setting('fsync') = 'on' \
    AND current_setting('synchronous_commit') <> 'off' \
    AND current_setting('full_page_writes') = 'on'";

/// What a category-read script runs for each batch.
#[derive(Debug, Clone, Copy)]
pub enum CategoryRead<'a> {
    /// The statement ebb sends (its text, with the six parameters of
    /// `ebb_message_store::pg::operations::category_read_statement`),
    /// prepared once per connection and run by `EXECUTE` with the values
    /// ebb binds: the category, the position, the batch size, and NULL for
    /// the correlation and the consumer group (pgbench sends variables as
    /// text, so it cannot bind a NULL parameter; `EXECUTE` passes real
    /// NULLs to the same prepared statement). Run with `-M simple`.
    Direct(&'a str),
    /// `SELECT * FROM message_store.get_category_messages(category,
    /// position, batch size)`, as a user of Message DB reads. Run with
    /// `-M prepared`.
    Function,
}

impl CategoryRead<'_> {
    /// The `-M` protocol the script runs with.
    pub fn protocol(self) -> &'static str {
        match self {
            Self::Direct(_) => "simple",
            Self::Function => "prepared",
        }
    }
}

/// A script that reads `category` in order, one batch of `batch` per
/// transaction, as ebb's reads do: each batch from the position after the
/// last message of the one before (`\aset` keeps the last row's
/// `global_position`; start it with `-D global_position=0 -D ready=0`).
/// An empty batch fails the script, so a run that did not read what it
/// should cannot pass for one. With `wrap_after`, a batch that reaches
/// that global position sends the next one back to position 1.
pub fn category_read_script(
    read: CategoryRead<'_>,
    category: &str,
    batch: u64,
    wrap_after: Option<u64>,
) -> String {
    let (prepare, statement) = match read {
        CategoryRead::Direct(sql) => (
            format!(
                "\\if :ready = 0\n\
                 PREPARE ebb_read(varchar, bigint, bigint, varchar, bigint, bigint) AS {sql};\n\
                 \\set ready 1\n\
                 \\endif\n"
            ),
            format!("EXECUTE ebb_read('{category}', :pos, {batch}, NULL, NULL, NULL)"),
        ),
        CategoryRead::Function => (
            String::new(),
            format!(
                "SELECT * FROM message_store.get_category_messages('{category}', :pos, {batch})"
            ),
        ),
    };
    let wrap = wrap_after.map_or_else(String::new, |last| {
        format!(
            "\\if :global_position >= {last}\n\
             \\set global_position 0\n\
             \\endif\n"
        )
    });
    format!(
        "{prepare}\\set pos :global_position + 1\n\
         {statement} \\aset\n\
         \\if :global_position < :pos\n\
         SELECT 'an empty batch: the category ended before the run did' :: int;\n\
         \\endif\n\
         {wrap}"
    )
}
