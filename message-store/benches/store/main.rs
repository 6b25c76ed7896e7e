//! Run with: `cargo bench -p ebb-message-store --bench store`
//!
//! ebb-message-store against PostgreSQL's own `pgbench` calling the same
//! Message DB functions with the same payload, on private clusters started
//! by ebb-localpg, in one run:
//!
//! 1. single-message writes (`write_message`, expected version any): 1
//!    writer / 1 category, N writers / 1 category, N writers / one category
//!    each; ebb must reach 0.9x pgbench;
//! 2. ebb batch writes (`write_batch` of 1,000 messages): 3x ebb's own
//!    single writes with 1 writer;
//! 3. category reads in batches of 1,000 over 1,000,000 messages (ebb
//!    decodes every row into a `Message` with parsed JSON; pgbench only
//!    receives the text): ebb must reach 0.8x pgbench.
//!
//! Fairness. Each case runs in a process of its own, on a cluster of its
//! own, so that none measures what an earlier case left in the server or
//! the client. The machines this runs on may be shared, and their speed can
//! swing within seconds, so each case is measured in many short slices
//! (`EBB_BENCH_SECONDS` each, `EBB_BENCH_RUNS` per side), interleaved
//! A B C C B A ... (pgbench first in the 1st and 3rd case, ebb first in
//! the 2nd), and each side's figure is the median of its slices: a swing
//! falls on all sides alike, and no single slice decides. Every side of a
//! case writes into its own database, cloned from an installed, empty
//! template when the case starts; the sides' tables grow at the same pace.
//! Each side warms up once (this fills ebb's pool and prepares the
//! statements), then a checkpoint precedes the slices. Each pgbench slice
//! is a new pgbench process with a new connection; pgbench's figure
//! excludes the connection time. One writer runs on a current-thread
//! runtime, as pgbench runs one client on one thread (`-j 1`); several run
//! on tokio's multi-thread runtime. The single-write cases also measure
//! bare tokio-postgres (the driver ebb uses) doing the same writes on the
//! same runtime, as a reference for ebb's own cost. All sides write the
//! same stream names (a random id of `EBB_BENCH_ENTITIES` in the case's
//! category), the same type, data and metadata: pgbench passes the JSON as
//! `-D` variables, which `-M prepared` sends as parameters, so the server
//! parses the JSON of every message on both sides. The read case reads the
//! same database on both sides; pgbench starts at random positions, ebb
//! reads the category from the start, as a consumer does, with
//! `read_category` (which reads one batch ahead), starting over at the end.
//!
//! Sizes come from the environment, all optional; [`settings`] lists the
//! variables and their defaults.
//!
//! Not a timed test: it prints a table (stdout) and progress (stderr) and
//! exits 0 even when a requirement is missed.
//!
//! The modules:
//!
//! - [`settings`]: the environment variables and their defaults;
//! - [`workload`]: the message, stream names and read category all sides share;
//! - [`baselines`]: pgbench and bare tokio-postgres;
//! - [`cases`]: ebb's write, batch and read cases, with their sides;
//! - [`report`]: progress and the result table.
//!
//! This file holds the run: the cluster, the interleaving and `main`.

mod baselines;
mod cases;
mod report;
mod settings;
mod workload;

use std::error::Error;
use std::time::{Duration, Instant};

use ebb_localpg::Cluster;
use ebb_message_store::{MessageData, PgStore, PgStoreConfig};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::baselines::pgbench_version;
use crate::cases::{BatchCase, ReadCase, StatementsCase, WriteCase};
use crate::report::{Row, print_report, progress};
use crate::settings::{Case, Settings};
use crate::workload::{Categories, payload};

/// Any error of a run: it ends the run and is printed.
type BoxError = Box<dyn Error + Send + Sync>;

/// The installed, empty database every measurement's database is cloned
/// from.
const TEMPLATE: &str = "bench_template";

/// The cluster, the runtime and an admin connection, and what a run needs
/// to compare the sides.
struct Bench {
    /// The sizes of the run.
    settings: Settings,
    /// Runs the admin connection, the read case's ebb side and the loading.
    runtime: Runtime,
    /// The private cluster every side runs against.
    cluster: Cluster,
    /// On the `postgres` database: creates, drops and checkpoints.
    admin: tokio_postgres::Client,
    /// The message every side writes.
    payload: MessageData,
}

impl Bench {
    fn start(settings: Settings) -> Result<Self, BoxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        progress("starting a private PostgreSQL cluster");
        let cluster = Cluster::builder()
            // What the report's header says: a throwaway cluster.
            .fsync(false)
            .max_connections(64)
            // The read case's 1M messages and their indexes stay in memory,
            // so reads measure the store and not the disk.
            .setting("shared_buffers", "1GB")
            // No checkpoint may start by itself in the middle of one side's
            // measurement; each measurement starts after an explicit one.
            .setting("max_wal_size", "16GB")
            .setting("checkpoint_timeout", "1h")
            .start()?;
        let admin = runtime.block_on(connect(&cluster.config("postgres")))?;
        Ok(Self {
            settings,
            runtime,
            cluster,
            admin,
            payload: payload(),
        })
    }

    fn create_template(&self) -> Result<(), BoxError> {
        progress(format!("installing the schema into {TEMPLATE}"));
        self.runtime.block_on(async {
            self.admin
                .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
                .await?;
            let client = connect(&self.cluster.config(TEMPLATE)).await?;
            ebb_message_store::schema::install(&client).await?;
            Ok(())
        })
    }

    /// New databases, each holding the installed, empty store.
    fn fresh_databases(&self, names: &[&str]) -> Result<(), BoxError> {
        for name in names {
            self.drop_databases(&[name])?;
            self.runtime.block_on(
                self.admin
                    .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")),
            )?;
        }
        Ok(())
    }

    fn drop_databases(&self, names: &[&str]) -> Result<(), BoxError> {
        for name in names {
            self.runtime.block_on(
                self.admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
            )?;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), BoxError> {
        self.runtime
            .block_on(async { self.admin.batch_execute("CHECKPOINT").await })?;
        Ok(())
    }

    fn store(&self, database: &str, connections: usize) -> Result<PgStore, BoxError> {
        Ok(PgStore::new(PgStoreConfig {
            max_connections: connections,
            ..PgStoreConfig::new(self.cluster.config(database))
        })?)
    }

    /// [`store`](Self::store) with unnamed statements, as behind a
    /// transaction-pooling PgBouncer.
    fn unnamed_store(&self, database: &str, connections: usize) -> Result<PgStore, BoxError> {
        Ok(PgStore::new(PgStoreConfig {
            max_connections: connections,
            prepared_statements: false,
            ..PgStoreConfig::new(self.cluster.config(database))
        })?)
    }
}

/// A connection to `config`'s database, driven by a task on the calling
/// runtime.
async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, BoxError> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A throughput measurement.
#[derive(Debug, Clone, Copy)]
struct Rate {
    messages: u64,
    elapsed: Duration,
}

impl Rate {
    /// `messages` handled between `started` and now.
    fn since(started: Instant, messages: u64) -> Self {
        Self {
            messages,
            elapsed: started.elapsed(),
        }
    }

    fn per_second(self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `writers` write loops as concurrent tasks on the calling runtime
/// and adds up what they wrote. `writer(k, deadline)` is writer k's loop,
/// which writes until `deadline`, `duration` from the start, and returns
/// how many messages it wrote.
async fn run_writers<W, F>(
    writers: usize,
    duration: Duration,
    mut writer: W,
) -> Result<Rate, BoxError>
where
    W: FnMut(usize, Instant) -> F,
    F: Future<Output = Result<u64, BoxError>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let loops: Vec<F> = (0..writers).map(|k| writer(k, deadline)).collect();
    let mut tasks = JoinSet::new();
    for task in loops {
        tasks.spawn(task);
    }
    let mut messages = 0;
    while let Some(written) = tasks.join_next().await {
        messages += written??;
    }
    Ok(Rate::since(started, messages))
}

/// A side of a comparison: its name and one measured run.
type Side<'a> = (&'static str, &'a mut dyn FnMut() -> Result<f64, BoxError>);

/// Each side's median rate, by the side's name.
#[derive(Debug)]
struct Medians(Vec<(&'static str, f64)>);

impl Medians {
    fn of(&self, side: &str) -> f64 {
        self.0
            .iter()
            .find(|(name, _)| *name == side)
            .map(|(_, rate)| *rate)
            .expect("a side of this name in the case")
    }
}

/// Measures every side of a case `runs` times, interleaved in the order
/// A B C, C B A, A B C ..., so that a drift in the machine's load (another
/// process on a shared machine, say) falls on all sides alike; each side's
/// figure is the median of its runs, so one disturbed run does not decide
/// the case.
fn interleaved(case: &str, runs: usize, sides: &mut [Side<'_>]) -> Result<Medians, BoxError> {
    let mut results = vec![Vec::new(); sides.len()];
    for round in 0..runs {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..sides.len()).collect()
        } else {
            (0..sides.len()).rev().collect()
        };
        for side in order {
            let (name, measure) = &mut sides[side];
            let rate = measure()?;
            progress(format!("  {case}: {name} {rate:.0} msg/s"));
            results[side].push(rate);
        }
    }
    Ok(Medians(
        sides
            .iter()
            .zip(&mut results)
            .map(|((name, _), runs)| (*name, median(runs)))
            .collect(),
    ))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn main() -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    let run_started = Instant::now();
    if std::env::var_os(report::ROWS_ONLY).is_some() {
        let (pgbench, rows) = run_cases(&settings)?;
        report::print_rows(&pgbench, &rows);
    } else if settings.cases.len() > 1 {
        let (pgbench, rows) = run_each_case_apart(&settings)?;
        print_report(&settings, &pgbench, &rows, run_started.elapsed());
    } else {
        let (pgbench, rows) = run_cases(&settings)?;
        print_report(&settings, &pgbench, &rows, run_started.elapsed());
    }
    Ok(())
}

/// Runs every case in a process of its own, with a cluster of its own, so
/// that no case measures what an earlier one left behind: in one process
/// a category read measured after the batch case, or the batch case after
/// the reads, ran up to a fifth slower than on its own, on the server's
/// and the client's side (buffers, memory) alike.
fn run_each_case_apart(settings: &Settings) -> Result<(String, Vec<Row>), BoxError> {
    let program = std::env::current_exe()?;
    let mut pgbench = String::new();
    let mut rows = Vec::new();
    for case in &settings.cases {
        let output = std::process::Command::new(&program)
            .args(std::env::args_os().skip(1))
            .env("EBB_BENCH_CASES", case.name())
            .env(report::ROWS_ONLY, "1")
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !output.status.success() {
            return Err(format!("the {} case failed: {}", case.name(), output.status).into());
        }
        let (version, case_rows) = report::parse_rows(&String::from_utf8(output.stdout)?)?;
        pgbench = version;
        rows.extend(case_rows);
    }
    Ok((pgbench, rows))
}

/// What unnamed statements (`prepared_statements` off, for a
/// transaction-pooling PgBouncer) may cost at most: a fifth of the
/// prepared statements' rate. Not free, so not the default.
const UNNAMED_REQUIRED: f64 = 0.8;

/// Runs the selected cases in this process, on one cluster; returns
/// pgbench's version and the rows.
fn run_cases(settings: &Settings) -> Result<(String, Vec<Row>), BoxError> {
    let bench = Bench::start(settings.clone())?;
    bench.create_template()?;
    let writers = settings.writers;
    let mut rows = Vec::new();

    let cases = [
        (
            Case::WritesOne,
            1,
            Categories::Shared,
            "1 writer, 1 category".to_owned(),
        ),
        (
            Case::WritesShared,
            writers,
            Categories::Shared,
            format!("{writers} writers, 1 category"),
        ),
        (
            Case::WritesEach,
            writers,
            Categories::PerWriter,
            format!("{writers} writers, 1 category each"),
        ),
    ];
    let selected = |case: Case| settings.cases.contains(&case);
    for (index, (_, writers, categories, case)) in cases
        .iter()
        .enumerate()
        .filter(|(_, (case, ..))| selected(*case))
    {
        let case = format!("single writes, {case}");
        let sides = WriteCase::prepare(&bench, &case, *writers, *categories)?;
        let slice = Duration::from_secs(settings.seconds);
        let mut pgbench = || sides.pgbench(settings.seconds);
        let mut ebb = || sides.ebb(slice);
        let mut driver = || sides.driver(slice);
        let mut sides_of_case: [Side<'_>; 3] = [
            ("pgbench", &mut pgbench),
            ("ebb", &mut ebb),
            ("tokio-postgres", &mut driver),
        ];
        // Who goes first alternates between cases.
        if index % 2 == 1 {
            sides_of_case.swap(0, 1);
        }
        let rates = interleaved(&case, settings.runs, &mut sides_of_case)?;
        sides.finish()?;
        rows.push(Row {
            case,
            ebb: rates.of("ebb"),
            baseline: rates.of("pgbench"),
            baseline_name: "pgbench".into(),
            required: 0.9,
            driver: Some(rates.of("tokio-postgres")),
        });
    }

    if selected(Case::Batch) {
        let case = format!("batch writes of {}, 1 writer", settings.batch_size);
        // Compared with ebb's own single writes, measured interleaved with
        // the batches like any other baseline.
        let sides = BatchCase::prepare(&bench, &case)?;
        let slice = Duration::from_secs(settings.seconds);
        let mut single = || sides.single(slice);
        let mut batch = || sides.batch(slice);
        let rates = interleaved(
            &case,
            settings.runs,
            &mut [("ebb single", &mut single), ("ebb batch", &mut batch)],
        )?;
        sides.finish()?;
        rows.push(Row {
            case,
            ebb: rates.of("ebb batch"),
            baseline: rates.of("ebb single"),
            baseline_name: "ebb single".into(),
            required: 3.0,
            driver: None,
        });
    }

    if selected(Case::Reads) {
        let case = format!(
            "category reads, batches of {} of {}",
            settings.batch_size, settings.read_messages
        );
        let sides = ReadCase::prepare(&bench, &case)?;
        let slice = Duration::from_secs(settings.read_seconds);
        let mut pgbench = || sides.pgbench(settings.read_seconds);
        let mut ebb = || sides.ebb(slice);
        let mut unnamed = || sides.ebb_unnamed(slice);
        let rates = interleaved(
            &case,
            settings.runs,
            &mut [
                ("pgbench", &mut pgbench),
                ("ebb", &mut ebb),
                ("ebb unnamed", &mut unnamed),
            ],
        )?;
        rows.push(Row {
            case: case.clone(),
            ebb: rates.of("ebb"),
            baseline: rates.of("pgbench"),
            baseline_name: "pgbench".into(),
            required: 0.8,
            driver: None,
        });
        // What EBB_PREPARED_STATEMENTS=off costs a consumer's reads.
        rows.push(Row {
            case: format!("{case}, unnamed statements"),
            ebb: rates.of("ebb unnamed"),
            baseline: rates.of("ebb"),
            baseline_name: "ebb prepared".into(),
            required: UNNAMED_REQUIRED,
            driver: None,
        });
    }

    if selected(Case::Unnamed) {
        let case = "single writes, 1 writer, unnamed statements".to_owned();
        let sides = StatementsCase::prepare(&bench, &case)?;
        let slice = Duration::from_secs(settings.seconds);
        let mut prepared = || sides.prepared(slice);
        let mut unnamed = || sides.unnamed(slice);
        let rates = interleaved(
            &case,
            settings.runs,
            &mut [
                ("ebb prepared", &mut prepared),
                ("ebb unnamed", &mut unnamed),
            ],
        )?;
        sides.finish()?;
        rows.push(Row {
            case,
            ebb: rates.of("ebb unnamed"),
            baseline: rates.of("ebb prepared"),
            baseline_name: "ebb prepared".into(),
            required: UNNAMED_REQUIRED,
            driver: None,
        });
    }

    Ok((pgbench_version(&bench.cluster), rows))
}
