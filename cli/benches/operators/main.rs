//! Run with: `cargo bench -p ebb-cli --bench operators`
//!
//! How long the operators' commands take on a large store: `ebb stats`
//! (by category, by type, by stream), `ebb consumers` (all, and one
//! category's) and `ebb parked list CATEGORY`, each required to answer in
//! under 1 s on a store of 5,000,000 messages in 50 categories.
//!
//! Method. A private cluster (ebb-localpg, `fsync` off, `shared_buffers`
//! 1 GB) holds one database with the store installed, filled as
//! `ebb_tests::large_store` describes (the dashboard's bench uses the
//! same store): the entity streams, two consumers per category
//! with their position records interleaved, failures and parked
//! messages; then `VACUUM ANALYZE` and a checkpoint. Each command runs as
//! a user runs it: the `ebb` executable built by this `cargo bench` (the
//! release profile), a process of its own with `DATABASE_URL` set, its
//! output read whole; the time is from spawning it to its exit, so it
//! includes starting the process and connecting. Each command runs once
//! untimed (it warms the server's caches and checks that it succeeds),
//! then `EBB_BENCH_OPS_RUNS` (11) times in turn with the others, so that
//! a swing in the speed of the (shared) machine falls on all alike. The
//! figures: the first (untimed) run, the median and the 95th percentile
//! (nearest rank) of the timed runs, and whether the 95th percentile is
//! under 1 s.
//!
//! Sizes come from the environment, all optional; [`settings`] lists the
//! variables and their defaults (`EBB_BENCH_OPS_MESSAGES=200000` makes a
//! quick run). Building the 5,000,000-message store takes about two
//! minutes on two cores.
//!
//! It prints progress (stderr) and the report (stdout, through the shared
//! harness, `ebb_bench`, which also writes it to `EBB_BENCH_JSON`), and
//! exits non-zero when a required command misses 1 s.

mod settings;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use ebb_bench::{BoxError, Report, Row, progress};
use ebb_tests::large_store::{self, Contents};

use crate::settings::Settings;

/// The database the store is built in.
const DATABASE: &str = "bench_operators";

/// The longest a required command may take (its 95th percentile).
const REQUIRED: Duration = Duration::from_secs(1);

/// A command timed: its arguments, and whether it must answer in under
/// [`REQUIRED`].
struct Timed {
    args: Vec<String>,
    required: bool,
    /// Timed runs; fewer for the reference commands, which are slow.
    runs: usize,
    first: Duration,
    times: Vec<Duration>,
    /// The lines of its output, for the report.
    lines: usize,
}

impl Timed {
    fn new(args: &[&str], required: bool, runs: usize) -> Self {
        Self {
            args: args.iter().map(|&arg| arg.to_owned()).collect(),
            required,
            runs,
            first: Duration::ZERO,
            times: Vec::new(),
            lines: 0,
        }
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut times = self.times.clone();
        times.sort();
        times
    }

    fn median(&self) -> Duration {
        let times = self.sorted();
        let mid = times.len() / 2;
        if times.len() % 2 == 0 {
            (times[mid - 1] + times[mid]) / 2
        } else {
            times[mid]
        }
    }

    /// The 95th percentile, nearest rank.
    fn p95(&self) -> Duration {
        let times = self.sorted();
        let rank = (times.len() * 95).div_ceil(100);
        times[rank.max(1) - 1]
    }

    fn passed(&self) -> bool {
        !self.required || self.p95() < REQUIRED
    }
}

/// Runs `ebb args` on `url` and returns how long it took and its output,
/// or an error when it fails.
fn run_ebb(ebb: &str, args: &[String], url: &str) -> Result<(Duration, String), BoxError> {
    let started = Instant::now();
    let out = Command::new(ebb)
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("EBB_LOG")
        .output()?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        return Err(format!(
            "ebb {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )
        .into());
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

fn run(settings: &Settings) -> Result<Report, BoxError> {
    let started = Instant::now();
    progress("starting a private PostgreSQL cluster");
    let cluster = large_store::cluster().start()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (server, contents, built) = runtime.block_on(async {
        let postgres = connect(&cluster.config("postgres")).await?;
        postgres
            .batch_execute(&format!(
                "CREATE DATABASE {DATABASE} {}",
                settings.database_options
            ))
            .await?;
        let client = connect(&cluster.config(DATABASE)).await?;
        ebb_message_store::schema::install(&client).await?;
        let server = large_store::server_description(&client).await?;
        progress(format!(
            "building the store: {} messages in {} categories, {} streams",
            settings.shape.messages,
            settings.shape.categories,
            settings.shape.streams()
        ));
        let building = Instant::now();
        let contents = large_store::build(&client, &settings.shape).await?;
        Ok::<_, BoxError>((server, contents, building.elapsed()))
    })?;
    progress(format!(
        "built in {:.0} s: {} messages ({} position records), {} streams; \
         table {} MB, with indexes {} MB",
        built.as_secs_f64(),
        contents.messages,
        contents.position_records,
        contents.streams,
        contents.table_bytes >> 20,
        contents.total_bytes >> 20
    ));

    let url = cluster.connection_string(DATABASE);
    let runs = settings.runs;
    let mut timed = vec![
        Timed::new(&["stats"], true, runs),
        Timed::new(&["stats", "--by", "type"], true, runs),
        Timed::new(&["stats", "--by", "stream"], true, runs),
        Timed::new(&["consumers"], true, runs),
        Timed::new(&["consumers", "category7"], true, runs),
        Timed::new(&["parked", "list", "category7"], true, runs),
    ];
    if settings.exact {
        for by in ["category", "type", "stream"] {
            timed.push(Timed::new(&["stats", "--by", by, "--exact"], false, 3));
        }
    }
    for command in &mut timed {
        let (elapsed, output) = run_ebb(&settings.ebb, &command.args, &url)?;
        command.first = elapsed;
        command.lines = output.lines().count();
        progress(format!(
            "ebb {}: {} s, {} lines; it begins:\n{}",
            command.args.join(" "),
            seconds(elapsed),
            command.lines,
            output.lines().take(4).collect::<Vec<_>>().join("\n")
        ));
    }
    progress(format!("timing, {runs} runs of each command in turn"));
    for round in 0..runs {
        for command in &mut timed {
            if round < command.runs {
                let (elapsed, _) = run_ebb(&settings.ebb, &command.args, &url)?;
                command.times.push(elapsed);
            }
        }
    }
    drop(cluster);
    Ok(report(
        settings,
        &server,
        &contents,
        &timed,
        started.elapsed(),
    ))
}

/// A connection to `config`'s database, driven by a task on the calling
/// runtime.
async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, BoxError> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn report(
    settings: &Settings,
    server: &str,
    contents: &Contents,
    timed: &[Timed],
    elapsed: Duration,
) -> Report {
    let mut report = Report::new("operators", "ebb's operator commands on a large store");
    report.line(format!(
        "PostgreSQL {server}; {} messages ({} in {} entity \
         categories of {}-message streams, {} position records of {} consumers, \
         failures and parked), {} streams; table {} MB, with indexes {} MB; \
         {} timed runs per command; run took {:.0} s",
        contents.messages,
        settings.shape.messages,
        settings.shape.categories,
        settings.shape.stream_messages,
        contents.position_records,
        settings.shape.categories * 2,
        contents.streams,
        contents.table_bytes >> 20,
        contents.total_bytes >> 20,
        settings.runs,
        elapsed.as_secs_f64()
    ));
    for command in timed {
        let case = format!("`ebb {}`, p95", command.args.join(" "));
        let row = Row::time(case, "s", command.p95().as_secs_f64()).durable(false);
        report.row(if command.required {
            row.limit(REQUIRED.as_secs_f64())
        } else {
            row
        });
    }
    report.note("Every command (seconds; the first, untimed run, and the median and p95 of the timed ones):");
    report.note("| command | lines | first s | median s | p95 s | under 1 s |");
    report.note("|---|---:|---:|---:|---:|---|");
    for command in timed {
        let verdict = match (command.required, command.passed()) {
            (false, _) => "(reference)",
            (true, true) => "PASS",
            (true, false) => "FAIL",
        };
        report.note(format!(
            "| `ebb {}` | {} | {} | {} | {} | {verdict} |",
            command.args.join(" "),
            command.lines,
            seconds(command.first),
            seconds(command.median()),
            seconds(command.p95()),
        ));
    }
    report
}

fn main() -> ExitCode {
    ebb_bench::report::main(|| run(&Settings::from_env()?))
}
