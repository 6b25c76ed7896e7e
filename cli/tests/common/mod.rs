//! Running the `ebb` binary as a user runs it, for the command tests that
//! work on a database of each test's own.

use std::process::{Command, Output};

use serde_json::Value;

/// `ebb args` on `database_url`, with no log filter or colour setting from
/// the test's own environment.
pub fn ebb(args: &[&str], database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("EBB_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("the ebb binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `ebb args` and returns its stdout, failing the test unless it
/// exits 0.
pub fn ok(args: &[&str], database_url: &str) -> String {
    let out = ebb(args, database_url);
    assert!(
        out.status.success(),
        "ebb {args:?}: {:?}: {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `ebb args --json`, each line parsed.
pub fn json_lines(args: &[&str], database_url: &str) -> Vec<Value> {
    let mut args = args.to_vec();
    args.push("--json");
    ok(&args, database_url)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{line}: {err}")))
        .collect()
}

/// The stderr of a run that must exit with `code` and print nothing on
/// stdout (clap's usage errors, which exit 2 too, are checked for the
/// status only).
pub fn fails(code: i32, args: &[&str], database_url: &str) -> String {
    let out = ebb(args, database_url);
    assert_eq!(
        out.status.code(),
        Some(code),
        "ebb {args:?}: {}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    text(&out.stderr)
}

/// [`fails`] for an error of ebb's own: one line, `ebb: ...`.
pub fn fails_in_one_line(code: i32, args: &[&str], database_url: &str) -> String {
    let err = fails(code, args, database_url);
    assert!(err.starts_with("ebb: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

pub fn server() -> &'static ebb_localpg::TestDatabases {
    ebb_localpg::TestDatabases::shared().expect("a PostgreSQL server for the tests")
}

/// A new database named `prefix` and a unique suffix, with the message
/// store installed; its connection string.
pub fn store_database(prefix: &str) -> String {
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let url = server().connection_string(&name);
    ok(&["db", "install", "--create"], &url);
    url
}
