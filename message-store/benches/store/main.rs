//! Run with: `cargo bench -p ebb-message-store --bench store`
//!
//! ebb-message-store against PostgreSQL's own `pgbench` doing the same
//! work, on private clusters started by ebb-localpg, in one run:
//!
//! 1. single-message writes (expected version any): 1 writer in one
//!    category, N writers in one category, N writers in a category each;
//!    `store.write` at the store's defaults (group commit on) against
//!    pgbench calling `write_message` with the same arguments; ebb must
//!    reach 0.9x pgbench, and 3x with N writers in one category on a
//!    durable cluster (the hot category, where Message DB commits one
//!    write at a time), which also runs ebb with group commit off, and ebb
//!    on a database without `ebb_write_messages` (as Message DB's scripts
//!    install it: one by one, required 0.9x);
//! 2. ebb batch writes (`write_batch` of 1,000 messages): 3x ebb's own
//!    single writes with 1 writer;
//! 3. category reads in batches of 1,000 over 1,000,000 messages, read in
//!    order from position 1 on both sides: pgbench runs the very statement
//!    ebb sends (ebb reads the table directly where Message DB's function
//!    would answer with the same rows; `pg::operations`), and ebb must
//!    reach 0.8x of it; a second row sets ebb against pgbench calling
//!    `get_category_messages`, as a user of Message DB reads (reported).
//!
//! Fairness. Each case runs in a process of its own, on a cluster of its
//! own, so that none measures what an earlier case left in the server or
//! the client. The machines this runs on may be shared, and their speed
//! can swing within seconds, so each case is measured in many short
//! slices (`EBB_BENCH_SECONDS` each, `EBB_BENCH_RUNS` per side), in rounds
//! whose order turns by one each round (the shared harness, `ebb_bench`);
//! each side's figure is the median of its slices, and each ratio the
//! median of the per-round ratios. Every side of a write case writes into
//! its own database, cloned from an installed, empty template when the
//! case starts; the sides' tables grow at the same pace. Each side warms
//! up once (this fills ebb's pool and prepares the statements), then a
//! checkpoint precedes the slices. Each pgbench slice is a new pgbench
//! process with a new connection; pgbench's figure excludes the
//! connection time. One writer runs on a current-thread runtime, as
//! pgbench runs one client on one thread (`-j 1`); several run on tokio's
//! multi-thread runtime. The single-write cases also measure bare
//! tokio-postgres (the driver ebb uses) doing the same writes on the same
//! runtime, as a reference for ebb's own cost. All sides write the same
//! stream names (a random id of `EBB_BENCH_ENTITIES` in the case's
//! category), the same type, data and metadata: pgbench passes the JSON as
//! `-D` variables, which `-M prepared` sends as parameters, so the server
//! parses the JSON of every message on both sides. The read case reads one
//! database on every side, each slice from position 1 in batches, each
//! batch from the position after the last message of the one before, and
//! from position 1 again after the category's last message.
//!
//! The single-write cases run on a durable cluster (`fsync`,
//! `synchronous_commit` and `full_page_writes` on), so that each commit
//! waits for its WAL flush as in production: how writes share commits is
//! what they compare. The others run with all three off, measuring CPU
//! and round trips. `EBB_BENCH_DURABLE=1` or `0` puts every case on one
//! kind; rows say which in `durable`.
//!
//! Sizes come from the environment, all optional; [`settings`] lists the
//! variables and their defaults.
//!
//! Not a timed test: it prints a table (stdout) and progress (stderr), and
//! exits non-zero when a requirement is missed.
//!
//! The modules:
//!
//! - [`settings`]: the environment variables and their defaults;
//! - [`workload`]: the message, stream names and read category all sides share;
//! - [`baselines`]: pgbench and bare tokio-postgres;
//! - [`cases`]: ebb's write, batch and read cases, with their sides.
//!
//! This file holds the run: the cluster, the cases and `main`.

mod baselines;
mod cases;
mod settings;
mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ebb_bench::report::{parse_rows, print_rows};
use ebb_bench::{BoxError, Report, Row, interleaved, pgbench, progress};
use ebb_localpg::Cluster;
use ebb_message_store::{MessageData, PgStore, PgStoreConfig};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::cases::{BatchCase, ReadCase, StatementsCase, WriteCase};
use crate::settings::{Case, Settings};
use crate::workload::{Categories, payload};

/// Set in the environment of a process that runs one case for a parent
/// run: it prints its rows as JSON instead of the report.
const ROWS_ONLY: &str = "EBB_BENCH_ROWS_ONLY";

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
            // What the report's header says: a throwaway cluster, or a
            // durable one (`EBB_BENCH_DURABLE`).
            .fsync(settings.cluster_durable())
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

    /// Drops `ebb_write_messages` from `database`, leaving the schema
    /// Message DB's own scripts install (with ebb's wake-up trigger).
    fn drop_group_function(&self, database: &str) -> Result<(), BoxError> {
        self.runtime.block_on(async {
            let client = connect(&self.cluster.config(database)).await?;
            client
                .batch_execute(
                    "DROP FUNCTION message_store.ebb_write_messages(varchar[], varchar[], \
                     varchar[], jsonb[], jsonb[], bigint[])",
                )
                .await?;
            Ok::<_, BoxError>(())
        })
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

    /// [`store`](Self::store) with group commit off: each write alone,
    /// as before it.
    fn ungrouped_store(&self, database: &str, connections: usize) -> Result<PgStore, BoxError> {
        Ok(PgStore::new(PgStoreConfig {
            max_connections: connections,
            group_commit: false,
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

fn main() -> ExitCode {
    ebb_bench::report::main(|| {
        let settings = Settings::from_env()?;
        let started = Instant::now();
        if std::env::var_os(ROWS_ONLY).is_some() {
            let (_, rows) = run_cases(&settings)?;
            print_rows(&rows)?;
            std::process::exit(0);
        }
        let (pgbench, rows) = if settings.cases.len() > 1 {
            run_each_case_apart(&settings)?
        } else {
            run_cases(&settings)?
        };
        let mut report = Report::new(
            "store",
            format!("ebb-message-store against pgbench {pgbench} (-M prepared)"),
        );
        report.line(format!(
            "each case in a process and private cluster of its own (fsync, synchronous_commit and \
             full_page_writes {}), {} CPUs; {} slices per side, {} s each ({} s for reads) after {} s \
             of warm-up per side, in rounds whose order turns by one; medians, and medians of the \
             per-round ratios; one writer on a {} runtime; run took {:.0} s",
            match settings.durable {
                Some(true) => "on: durable",
                Some(false) => "off",
                None => "on for the single-write cases, off for the others",
            },
            std::thread::available_parallelism().map_or(0, usize::from),
            settings.runs,
            settings.seconds,
            settings.read_seconds,
            settings.warmup_seconds,
            settings.one_writer_runtime(),
            started.elapsed().as_secs_f64(),
        ));
        report.extend(rows);
        report.note(
            "tokio-postgres: the bare driver ebb uses, one connection and one prepared statement \
             per writer, the same writes; for reference, not a requirement",
        );
        Ok(report)
    })
}

/// Runs every case in a process of its own, with a cluster of its own, so
/// that no case measures what an earlier one left behind: in one process
/// a category read measured after the batch case, or the batch case after
/// the reads, ran up to a fifth slower than on its own, on the server's
/// and the client's side (buffers, memory) alike.
fn run_each_case_apart(settings: &Settings) -> Result<(String, Vec<Row>), BoxError> {
    let program = std::env::current_exe()?;
    let mut rows = Vec::new();
    for case in &settings.cases {
        let output = std::process::Command::new(&program)
            .args(std::env::args_os().skip(1))
            .env("EBB_BENCH_CASES", case.name())
            .env(ROWS_ONLY, "1")
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !output.status.success() {
            return Err(format!("the {} case failed: {}", case.name(), output.status).into());
        }
        rows.extend(parse_rows(&String::from_utf8(output.stdout)?)?);
    }
    Ok((pgbench_version()?, rows))
}

/// pgbench's version, from a cluster-less look at the binaries.
fn pgbench_version() -> Result<String, BoxError> {
    let bin = ebb_localpg::find_bin_dir()?;
    Ok(pgbench::version(std::process::Command::new(
        bin.join("pgbench"),
    )))
}

/// ebb with group commit off, a side of the hot-category case.
const UNGROUPED: &str = "ebb, group commit off";

/// ebb on a database without `ebb_write_messages`, a side of the
/// hot-category case.
const WITHOUT_FUNCTION: &str = "ebb, no ebb_write_messages";

/// What the hot-category case (several writers, one category, durable)
/// must reach against pgbench.
const HOT_CATEGORY_REQUIRED: f64 = 3.0;

/// What unnamed statements (`prepared_statements` off, for a
/// transaction-pooling PgBouncer) may cost at most: a fifth of the
/// prepared statements' rate. Not free, so not the default.
const UNNAMED_REQUIRED: f64 = 0.8;

/// A row of a rate case: the medians of `ebb` and `baseline`, and the
/// median of their per-round ratios.
fn rate_row(
    settings: &Settings,
    case: &str,
    rounds: &ebb_bench::Rounds,
    ebb: &str,
    baseline: &str,
    baseline_name: &str,
) -> Row {
    Row::rate(case, "msg/s", rounds.median(ebb))
        .against(baseline_name, rounds.median(baseline))
        .paired(rounds.paired_ratio(ebb, baseline))
        .durable(settings.cluster_durable())
}

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
            "1 writer, one category".to_owned(),
        ),
        (
            Case::WritesShared,
            writers,
            Categories::Shared,
            format!("{writers} writers, one category"),
        ),
        (
            Case::WritesEach,
            writers,
            Categories::PerWriter,
            format!("{writers} writers, a category each"),
        ),
    ];
    let selected = |case: Case| settings.cases.contains(&case);
    for (_, writers, categories, case) in cases.iter().filter(|(case, ..)| selected(*case)) {
        let case = format!("single writes, {case}");
        let sides = WriteCase::prepare(&bench, &case, *writers, *categories)?;
        let slice = Duration::from_secs(settings.seconds);
        let mut pgbench = || sides.pgbench(settings.seconds);
        let mut ebb = || sides.ebb(slice);
        let mut driver = || sides.driver(slice);
        let mut ungrouped = || sides.ebb_ungrouped(slice);
        let mut without_function = || sides.ebb_without_function(slice);
        let mut measured: Vec<ebb_bench::Side<'_>> = vec![
            ("pgbench", &mut pgbench),
            ("ebb", &mut ebb),
            ("tokio-postgres", &mut driver),
        ];
        let has_ungrouped = sides.has_ungrouped();
        if has_ungrouped {
            measured.push((UNGROUPED, &mut ungrouped));
        }
        let has_without_function = sides.has_without_function();
        if has_without_function {
            measured.push((WITHOUT_FUNCTION, &mut without_function));
        }
        let rounds = interleaved(&case, settings.runs, "msg/s", &mut measured)?;
        drop(measured);
        sides.finish()?;
        // Several writers in one category on a durable cluster is the case
        // group commit is for: Message DB commits one write at a time
        // there, and ebb must do three times as much.
        let required = if has_ungrouped && *writers > 1 && settings.cluster_durable() {
            HOT_CATEGORY_REQUIRED
        } else {
            0.9
        };
        rows.push(
            rate_row(
                settings,
                &case,
                &rounds,
                "ebb",
                "pgbench",
                "pgbench, write_message",
            )
            .required(required),
        );
        if has_ungrouped {
            rows.push(rate_row(
                settings,
                &format!("{case}: ebb with group commit off"),
                &rounds,
                UNGROUPED,
                "pgbench",
                "pgbench, write_message",
            ));
            let row = rate_row(
                settings,
                &format!("{case}: ebb's group commit against its writes one by one"),
                &rounds,
                "ebb",
                UNGROUPED,
                "ebb, group commit off",
            );
            // One writer alone never waits for a group: its writes must
            // cost what they cost with group commit off.
            rows.push(if *writers == 1 {
                row.required(0.9)
            } else {
                row
            });
        }
        if has_without_function {
            // On a database Message DB's own scripts installed, ebb writes
            // one by one, and must do so at Message DB's speed.
            rows.push(
                rate_row(
                    settings,
                    &format!("{case}: ebb on a database without ebb_write_messages"),
                    &rounds,
                    WITHOUT_FUNCTION,
                    "pgbench",
                    "pgbench, write_message",
                )
                .required(0.9),
            );
        }
        rows.push(rate_row(
            settings,
            &format!("{case}: ebb against bare tokio-postgres"),
            &rounds,
            "ebb",
            "tokio-postgres",
            "tokio-postgres, the same writes",
        ));
    }

    if selected(Case::Batch) {
        let case = format!("batch writes of {}, 1 writer", settings.batch_size);
        // Compared with ebb's own single writes, measured interleaved with
        // the batches like any other baseline.
        let sides = BatchCase::prepare(&bench, &case)?;
        let slice = Duration::from_secs(settings.seconds);
        let mut single = || sides.single(slice);
        let mut batch = || sides.batch(slice);
        let rounds = interleaved(
            &case,
            settings.runs,
            "msg/s",
            &mut [
                ("ebb single", &mut single as &mut dyn FnMut() -> _),
                ("ebb batch", &mut batch),
            ],
        )?;
        sides.finish()?;
        rows.push(
            rate_row(
                settings,
                &case,
                &rounds,
                "ebb batch",
                "ebb single",
                "ebb single writes, 1 writer",
            )
            .required(3.0),
        );
    }

    if selected(Case::Reads) {
        let case = format!(
            "category reads, batches of {} of {}",
            settings.batch_size, settings.read_messages
        );
        let sides = ReadCase::prepare(&bench, &case)?;
        let slice = Duration::from_secs(settings.read_seconds);
        let mut direct = || sides.pgbench(settings.read_seconds);
        let mut function = || sides.pgbench_function(settings.read_seconds);
        let mut ebb = || sides.ebb(slice);
        let mut unnamed = || sides.ebb_unnamed(slice);
        let rounds = interleaved(
            &case,
            settings.runs,
            "msg/s",
            &mut [
                ("pgbench", &mut direct as &mut dyn FnMut() -> _),
                ("ebb", &mut ebb),
                ("pgbench function", &mut function),
                ("ebb unnamed", &mut unnamed),
            ],
        )?;
        rows.push(
            rate_row(
                settings,
                &case,
                &rounds,
                "ebb",
                "pgbench",
                "pgbench, the statement ebb sends",
            )
            .required(0.8),
        );
        rows.push(rate_row(
            settings,
            &format!("{case}, as a Message DB user reads"),
            &rounds,
            "ebb",
            "pgbench function",
            "pgbench, get_category_messages",
        ));
        // What EBB_PREPARED_STATEMENTS=off costs a consumer's reads.
        rows.push(
            rate_row(
                settings,
                &format!("{case}, unnamed statements"),
                &rounds,
                "ebb unnamed",
                "ebb",
                "ebb, prepared statements",
            )
            .required(UNNAMED_REQUIRED),
        );
    }

    if selected(Case::Unnamed) {
        let case = "single writes, 1 writer, unnamed statements".to_owned();
        let sides = StatementsCase::prepare(&bench, &case)?;
        let slice = Duration::from_secs(settings.seconds);
        let mut prepared = || sides.prepared(slice);
        let mut unnamed = || sides.unnamed(slice);
        let rounds = interleaved(
            &case,
            settings.runs,
            "msg/s",
            &mut [
                ("ebb prepared", &mut prepared as &mut dyn FnMut() -> _),
                ("ebb unnamed", &mut unnamed),
            ],
        )?;
        sides.finish()?;
        rows.push(
            rate_row(
                settings,
                &case,
                &rounds,
                "ebb unnamed",
                "ebb prepared",
                "ebb, prepared statements",
            )
            .required(UNNAMED_REQUIRED),
        );
    }

    let version = pgbench::version(bench.cluster.command("pgbench"));
    Ok((version, rows))
}
