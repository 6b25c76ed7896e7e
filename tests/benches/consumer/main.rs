//! Run with: `cargo bench -p ebb-tests --bench consumer`
//!
//! ebb's consumer against PostgreSQL's own `pgbench`, both reading the
//! same category end to end, on a private cluster started by ebb-localpg
//! (fsync off: a throwaway cluster; the figures are CPU and round trips,
//! not the disk):
//!
//! - **pgbench** calls `get_category_messages(category, position, 1000)`
//!   one batch per transaction, each batch starting after the last message
//!   of the one before, until it has read every message ([`baseline`]);
//! - **ebb** runs `ebb_consumer::Consumer` at its default settings
//!   (batches of 1,000, the position recorded every 100 messages, a
//!   `PgStore` at its defaults) with a `Dispatcher` whose only handler
//!   decodes each message into its typed struct (`Received<Deposited>`)
//!   and does nothing else, until it has handled every message ([`ebb`]),
//!   on tokio's current-thread runtime (what ebb recommends for a
//!   component) and on the multi-thread one.
//!
//! ebb on the current-thread runtime must reach 0.9x pgbench's messages
//! per second (the multi-thread figure is shown beside it), and the
//! consumer's process must peak under 64 MiB resident.
//!
//! Method. The category, `EBB_BENCH_CONSUMER_MESSAGES` (1,000,000)
//! `Deposited` events over 1,000 streams, is loaded directly with SQL, not
//! measured ([`workload`]), then vacuumed and checkpointed, and one
//! unmeasured pgbench pass brings it into the server's buffers. Then
//! `EBB_BENCH_CONSUMER_RUNS` (5) rounds: in each, a full pass of pgbench
//! and one of ebb on each runtime, each round starting one side later
//! than the one before; each side's figure is its median pass, so a swing
//! in the speed of the (shared) machine falls on every side alike. Each
//! ebb pass is a new process (this program, started again), with a new
//! consumer identifier, so it starts at the beginning of the category and
//! its peak RSS is its own; its clock starts once the consumer has read
//! its position (so its connection is open) and stops at the last message
//! handled. pgbench's figure is its own time "without initial connection
//! time".
//!
//! Sizes come from the environment, all optional; [`settings`] lists the
//! variables and their defaults.
//!
//! It prints progress (stderr) and the figures (stdout), and exits
//! non-zero when a requirement is missed.
//!
//! The modules:
//!
//! - [`settings`]: the environment variables and their defaults;
//! - [`workload`]: the category, its message type and its loading;
//! - [`baseline`]: pgbench reading the category;
//! - [`ebb`]: the consumer's process;
//! - [`cpu`]: the CPU time of the client and of the server around each
//!   pass, which tells where the time goes on a machine whose wall time
//!   swings;
//! - [`report`]: progress and the figures.
//!
//! This file holds the run: the cluster, the interleaving and `main`.

mod baseline;
mod cpu;
mod ebb;
mod report;
mod settings;
mod workload;

use std::error::Error;
use std::time::Instant;

use ebb_localpg::Cluster;
use ebb_tests::connect_to;
use tokio::runtime::Runtime;

use crate::baseline::{Pgbench, pgbench_version};
use crate::report::{Report, Side, progress};
use crate::settings::Settings;

/// Any error of a run: it ends the run and is printed.
type BoxError = Box<dyn Error + Send + Sync>;

/// The database both sides read.
const DATABASE: &str = "bench_consumer";

/// The cluster, a runtime and an admin connection.
struct Bench {
    /// The sizes of the run.
    settings: Settings,
    /// Runs the admin connection and the loading.
    runtime: Runtime,
    /// The private cluster both sides read from.
    cluster: Cluster,
}

impl Bench {
    fn start(settings: Settings) -> Result<Self, BoxError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        progress("starting a private PostgreSQL cluster");
        let cluster = Cluster::builder()
            // What the report's header says: a throwaway cluster.
            .fsync(false)
            // The category and its indexes stay in memory, so the passes
            // measure the store and not the disk.
            .setting("shared_buffers", "1GB")
            // No checkpoint may start by itself in the middle of a pass.
            .setting("max_wal_size", "16GB")
            .setting("checkpoint_timeout", "1h")
            .start()?;
        let bench = Self {
            settings,
            runtime,
            cluster,
        };
        progress(format!("installing the schema into {DATABASE}"));
        bench.runtime.block_on(async {
            let admin = connect_to(&bench.cluster.config("postgres")).await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
                .await?;
            let client = connect_to(&bench.cluster.config(DATABASE)).await?;
            ebb_message_store::schema::install(&client).await?;
            Ok::<_, BoxError>(())
        })?;
        Ok(bench)
    }

    fn server_version(&self) -> Result<String, BoxError> {
        self.runtime.block_on(async {
            let client = connect_to(&self.cluster.config(DATABASE)).await?;
            let row = client.query_one("SHOW server_version", &[]).await?;
            Ok(row.get(0))
        })
    }
}

/// A full pass: the messages read and how long it took.
#[derive(Debug, Clone, Copy)]
struct Rate {
    messages: u64,
    seconds: f64,
}

impl Rate {
    fn per_second(self) -> f64 {
        self.messages as f64 / self.seconds
    }
}

/// A measured pass: its rate and the CPU seconds the client process and
/// the server spent on it.
#[derive(Debug, Clone, Copy)]
struct Measured {
    rate: Rate,
    client_cpu: f64,
    server_cpu: f64,
}

/// Runs `pass` and measures the CPU time around it. The pass's client
/// process has exited when it returns; a moment's wait lets the server
/// reap the backend that served it, so that its time counts.
fn measured(
    bench: &Bench,
    pass: impl FnOnce() -> Result<Rate, BoxError>,
) -> Result<Measured, BoxError> {
    let socket_dir = bench.cluster.socket_dir();
    let (client_before, server_before) =
        (cpu::children_seconds(), cpu::server_seconds(socket_dir)?);
    let rate = pass()?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    Ok(Measured {
        rate,
        client_cpu: cpu::children_seconds() - client_before,
        server_cpu: cpu::server_seconds(socket_dir)? - server_before,
    })
}

/// The median of `values`.
fn median_of(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        f64::midpoint(values[mid - 1], values[mid])
    } else {
        values[mid]
    }
}

/// The median pass by rate.
fn median(rates: &[Rate]) -> Rate {
    let mut sorted = rates.to_vec();
    sorted.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        // The mean time of the middle two, over the same messages.
        Rate {
            messages: sorted[mid].messages,
            seconds: f64::midpoint(sorted[mid - 1].seconds, sorted[mid].seconds),
        }
    } else {
        sorted[mid]
    }
}

fn main() -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    if let Ok(conninfo) = std::env::var(ebb::CHILD) {
        return ebb::child_main(&conninfo, &settings);
    }
    let run_started = Instant::now();
    let bench = Bench::start(settings)?;
    workload::load(&bench)?;
    let pgbench = Pgbench::new(&bench)?;
    progress("warming up: one pgbench pass (not measured)");
    let warmup = pgbench.pass(&bench)?;
    progress(format!("  pgbench {:.0} msg/s", warmup.per_second()));

    let runs = bench.settings.runs;
    let flavors = bench.settings.runtimes.clone();
    // The sides of a round: pgbench, then ebb on each runtime; each round
    // starts one side later than the one before.
    // `Some(i)` is ebb on `flavors[i]`.
    let sides: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..flavors.len()).map(Some))
        .collect();
    let mut pgbench_passes: Vec<Measured> = Vec::new();
    let mut ebb_passes: Vec<Vec<Measured>> = vec![Vec::new(); flavors.len()];
    let mut peak_rss_kib = 0;
    for round in 0..runs {
        for turn in 0..sides.len() {
            match sides[(round + turn) % sides.len()] {
                None => {
                    let pass = measured(&bench, || pgbench.pass(&bench))?;
                    progress(format!(
                        "pass {}/{runs}: pgbench {:.0} msg/s ({:.2} s; CPU: pgbench {:.2} s, server {:.2} s)",
                        round + 1,
                        pass.rate.per_second(),
                        pass.rate.seconds,
                        pass.client_cpu,
                        pass.server_cpu
                    ));
                    pgbench_passes.push(pass);
                }
                Some(index) => {
                    let flavor = flavors[index];
                    let mut rss = 0;
                    let pass = measured(&bench, || {
                        let pass = ebb::pass(&bench, round, flavor)?;
                        rss = pass.peak_rss_kib;
                        Ok(pass.rate)
                    })?;
                    progress(format!(
                        "pass {}/{runs}: ebb, {} {:.0} msg/s ({:.2} s; CPU: consumer {:.2} s, \
                         server {:.2} s), peak RSS {:.1} MiB",
                        round + 1,
                        flavor.name(),
                        pass.rate.per_second(),
                        pass.rate.seconds,
                        pass.client_cpu,
                        pass.server_cpu,
                        rss as f64 / 1024.0
                    ));
                    peak_rss_kib = peak_rss_kib.max(rss);
                    ebb_passes[index].push(pass);
                }
            }
        }
    }
    let side = |passes: &[Measured]| {
        let rates: Vec<Rate> = passes.iter().map(|pass| pass.rate).collect();
        Side {
            median: median(&rates),
            cpu: (
                median_of(passes.iter().map(|pass| pass.client_cpu)),
                median_of(passes.iter().map(|pass| pass.server_cpu)),
            ),
            rates,
        }
    };

    let server = bench.server_version()?;
    let version = pgbench_version(&bench);
    let report = Report {
        settings: &bench.settings,
        server: &server,
        pgbench_version: &version,
        pgbench: side(&pgbench_passes),
        ebb: flavors
            .iter()
            .zip(&ebb_passes)
            .map(|(flavor, passes)| (*flavor, side(passes)))
            .collect(),
        peak_rss_kib,
        elapsed: run_started.elapsed(),
    };
    let passed = report.print();
    drop(bench);
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}
