//! Run with: `cargo bench -p ebb-tests --bench consumer`
//!
//! ebb's consumer against PostgreSQL's own `pgbench`, both reading the
//! same category end to end, in the same order, on a private cluster
//! started by ebb-localpg (fsync off: a throwaway cluster; the figures are
//! CPU and round trips, not the disk):
//!
//! - **pgbench** runs the statement ebb's consumer sends for each batch
//!   (the store reads the table directly where Message DB's function
//!   would answer with the same rows), one batch of 1,000 per
//!   transaction, each starting after the last message of the one before,
//!   until it has read every message, and writes the position records the
//!   consumer writes (one every 100 messages, each a `write_message` call
//!   of its own: the consumer's work on the server is both) ([`baseline`]);
//!   and, as a second
//!   baseline, the same passes calling `get_category_messages`, as a user
//!   of Message DB reads;
//! - **ebb** runs `ebb_consumer::Consumer` at its default settings
//!   (batches of 1,000, the position recorded every 100 messages, a
//!   `PgStore` at its defaults) with a `Dispatcher` whose only handler
//!   decodes each message into its typed struct (`Received<Deposited>`)
//!   and does nothing else, until it has handled every message and
//!   recorded its position ([`ebb`]), on tokio's current-thread runtime
//!   (what ebb recommends for a component) and on the multi-thread one.
//!
//! ebb on the current-thread runtime must reach 0.9x of pgbench running
//! the same statement (the median of the per-round ratios), and the
//! consumer's process must peak under 64 MiB resident.
//!
//! Method. The category, `EBB_BENCH_CONSUMER_MESSAGES` (1,000,000)
//! `Deposited` events over 1,000 streams, is loaded directly with SQL, not
//! measured ([`workload`]), then vacuumed and checkpointed, and one
//! unmeasured pgbench pass brings it into the server's buffers. Then
//! `EBB_BENCH_CONSUMER_RUNS` (5) rounds, each a full pass of every side,
//! in an order that turns by one each round (the shared harness,
//! `ebb_bench`); each side's figure is its median pass, and each ratio the
//! median of the per-round ratios, so a swing in the speed of the
//! (shared) machine falls on every side alike. Each ebb pass is a new
//! process (this program, started again), with a new consumer
//! identifier, so it starts at the beginning of the category and its
//! peak RSS is its own; its clock starts once the consumer has read its
//! position (so its connection is open) and stops when the consumer
//! returns, its last position record written. pgbench's figure is its
//! own time "without initial connection time".
//!
//! Sizes come from the environment, all optional; [`settings`] lists the
//! variables and their defaults.
//!
//! It prints progress (stderr) and the report (stdout), and exits
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
//! - [`report`]: the rows of the report.
//!
//! This file holds the run: the cluster, the interleaving and `main`.

mod baseline;
mod cpu;
mod ebb;
mod report;
mod settings;
mod workload;

use std::process::ExitCode;
use std::time::Instant;

use ebb_bench::pgbench::{self, CategoryRead};
use ebb_bench::{BoxError, Rounds, measure, progress};
use ebb_localpg::Cluster;
use ebb_message_store::pg::operations::category_read_statement;
use ebb_tests::connect_to;
use tokio::runtime::Runtime;

use crate::baseline::Pgbench;
use crate::report::{Figures, PGBENCH, PGBENCH_FUNCTION, ebb_side};
use crate::settings::{Flavor, Settings};

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

fn main() -> ExitCode {
    ebb_bench::report::main(|| {
        let settings = Settings::from_env()?;
        if let Ok(conninfo) = std::env::var(ebb::CHILD) {
            ebb::child_main(&conninfo, &settings)?;
            std::process::exit(0);
        }
        run(settings)
    })
}

/// One side of a round: pgbench with the direct statement, pgbench with
/// the function, or ebb on a runtime.
#[derive(Debug, Clone, Copy)]
enum Turn {
    Pgbench,
    PgbenchFunction,
    Ebb(Flavor),
}

fn run(settings: Settings) -> Result<ebb_bench::Report, BoxError> {
    let run_started = Instant::now();
    let bench = Bench::start(settings)?;
    workload::load(&bench)?;
    let direct = Pgbench::new(&bench, CategoryRead::Direct(category_read_statement()))?;
    let function = Pgbench::new(&bench, CategoryRead::Function)?;
    progress("warming up: one pgbench pass of each kind (not measured)");
    for script in [&direct, &function] {
        let warmup = script.pass(&bench)?;
        progress(format!("  pgbench {:.0} msg/s", warmup.per_second()));
    }

    let runs = bench.settings.runs;
    let mut turns = vec![Turn::Pgbench, Turn::PgbenchFunction];
    turns.extend(
        bench
            .settings
            .runtimes
            .iter()
            .map(|&flavor| Turn::Ebb(flavor)),
    );
    let name = |turn: Turn| match turn {
        Turn::Pgbench => PGBENCH,
        Turn::PgbenchFunction => PGBENCH_FUNCTION,
        Turn::Ebb(flavor) => ebb_side(flavor),
    };
    let names: Vec<&'static str> = turns.iter().map(|&turn| name(turn)).collect();
    let (mut rates, mut client_cpu, mut server_cpu) = (
        Rounds::new(&names),
        Rounds::new(&names),
        Rounds::new(&names),
    );
    let mut peak_rss_kib = 0;
    for round in 0..runs {
        for turn in measure::order(round, turns.len()).map(|index| turns[index]) {
            let mut rss = 0;
            let pass = measured(&bench, || match turn {
                Turn::Pgbench => direct.pass(&bench),
                Turn::PgbenchFunction => function.pass(&bench),
                Turn::Ebb(flavor) => {
                    let pass = ebb::pass(&bench, round, flavor)?;
                    rss = pass.peak_rss_kib;
                    Ok(pass.rate)
                }
            })?;
            progress(format!(
                "round {}/{runs}: {} {:.0} msg/s ({:.2} s; CPU: client {:.2} s, server {:.2} s){}",
                round + 1,
                name(turn),
                pass.rate.per_second(),
                pass.rate.seconds,
                pass.client_cpu,
                pass.server_cpu,
                if rss > 0 {
                    format!(", peak RSS {:.1} MiB", rss as f64 / 1024.0)
                } else {
                    String::new()
                }
            ));
            peak_rss_kib = peak_rss_kib.max(rss);
            rates.push(name(turn), pass.rate.per_second());
            client_cpu.push(name(turn), pass.client_cpu);
            server_cpu.push(name(turn), pass.server_cpu);
        }
    }

    let server = bench.server_version()?;
    let version = pgbench::version(bench.cluster.command("pgbench"));
    let report = Figures {
        settings: &bench.settings,
        server: &server,
        pgbench_version: &version,
        rates,
        client_cpu,
        server_cpu,
        peak_rss_kib,
        elapsed: run_started.elapsed(),
    }
    .report();
    drop(bench);
    Ok(report)
}
