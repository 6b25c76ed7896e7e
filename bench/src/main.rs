//! Runs every ebb benchmark and prints one table: `cargo bench-all`
//! (an alias of `cargo run -p ebb-bench --release --`).
//!
//! ```text
//! cargo bench-all                     # every bench, in the order below
//! cargo bench-all retry consumer      # some of them, by name
//! cargo bench-all --table DIR/*.json  # only the table of earlier results
//! ```
//!
//! Each bench runs as `cargo bench -p PACKAGE --bench NAME` with
//! `EBB_BENCH_JSON` set to `target/bench-results/NAME.json`; its own
//! report goes to this program's stdout as it finishes, its progress to
//! stderr. A bench that fails (or misses a requirement) does not stop
//! the others. At the end, the rows of all of them in one table, also
//! written to `target/bench-results/all.json` (or to `EBB_BENCH_JSON`,
//! when set); the exit is non-zero when a bench failed or missed a
//! requirement. The benches' own settings (`EBB_BENCH_*`, see each
//! bench's documentation and BENCHMARKS.md) pass through.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use ebb_bench::report::{JSON_VARIABLE, Row, print_table};

/// Every bench: its name and its package, in the order run.
const BENCHES: [(&str, &str); 8] = [
    ("overhead", "ebb-retry"),
    ("store", "ebb-message-store"),
    ("entity_store", "ebb-tests"),
    ("consumer", "ebb-tests"),
    ("consumer_features", "ebb-tests"),
    ("notify", "ebb-tests"),
    ("operators", "ebb-cli"),
    ("pages", "ebb-dashboard"),
];

/// Other names the benches are known by on the command line.
const ALIASES: [(&str, &str); 3] = [
    ("retry", "overhead"),
    ("features", "consumer_features"),
    ("dashboard", "pages"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn results_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("bench-results")
}

fn read_rows(path: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|arg| arg == "--table") {
        let mut rows = Vec::new();
        for path in &args[1..] {
            match read_rows(Path::new(path)) {
                Ok(more) => rows.extend(more),
                Err(err) => {
                    eprintln!("[bench] {err}");
                    return ExitCode::FAILURE;
                }
            }
        }
        print_table(&rows, true);
        return ExitCode::SUCCESS;
    }
    let mut selected = Vec::new();
    for arg in &args {
        let name = ALIASES
            .iter()
            .find(|(alias, _)| alias == arg)
            .map_or(arg.as_str(), |(_, name)| name);
        match BENCHES.iter().find(|(bench, _)| *bench == name) {
            Some(bench) => selected.push(*bench),
            None => {
                let names: Vec<&str> = BENCHES.iter().map(|(name, _)| *name).collect();
                eprintln!(
                    "[bench] unknown bench {arg:?}; the benches are {}",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if selected.is_empty() {
        selected = BENCHES.to_vec();
    }
    let dir = results_dir();
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("[bench] {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (name, package) in selected {
        let json = dir.join(format!("{name}.json"));
        let _ = std::fs::remove_file(&json);
        eprintln!("[bench] == cargo bench -p {package} --bench {name}");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(workspace())
            .args(["bench", "-p", package, "--bench", name])
            .env(JSON_VARIABLE, &json)
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => failed.push(format!("{name} ({status})")),
            Err(err) => failed.push(format!("{name} ({err})")),
        }
        match read_rows(&json) {
            Ok(more) => rows.extend(more),
            Err(err) => eprintln!("[bench] {name} left no results: {err}"),
        }
    }
    println!();
    println!("# All benchmarks");
    println!();
    print_table(&rows, true);
    let all = std::env::var_os(JSON_VARIABLE)
        .filter(|path| !path.is_empty())
        .map_or_else(|| dir.join("all.json"), PathBuf::from);
    match serde_json::to_string_pretty(&rows) {
        Ok(text) => {
            if let Err(err) = std::fs::write(&all, text + "\n") {
                eprintln!("[bench] {}: {err}", all.display());
            }
        }
        Err(err) => eprintln!("[bench] {err}"),
    }
    println!();
    if failed.is_empty() {
        println!(
            "every bench met its requirements; rows in {}",
            all.display()
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "failed or missed a requirement: {}; rows in {}",
            failed.join(", "),
            all.display()
        );
        ExitCode::FAILURE
    }
}
