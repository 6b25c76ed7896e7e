//! Run with: `cargo bench -p ebb-tests --bench notify`
//!
//! What wake-ups (LISTEN/NOTIFY, see `ebb_message_store`'s crate
//! documentation) cost writers. A transaction that sends a NOTIFY takes a
//! database-wide lock at commit and holds it through its WAL flush, so
//! notifying commits serialise; ebb's schema therefore notifies only the
//! first write to a category after a consumer armed it. This measures what
//! is left of that cost, on a durable private cluster (ebb-localpg with
//! `fsync`, `synchronous_commit` and `full_page_writes` on), where commits
//! wait for the disk as in production.
//!
//! Method. `write_message` throughput (messages per second, each write its
//! own transaction through `PgStore::write`, as fast as each writer can)
//! of `EBB_BENCH_NOTIFY_WRITERS` (8) concurrent writers, in two cases:
//! each writer in a category of its own, and all in one category. Each
//! case in each mode ([`workload::Mode`]):
//!
//! - **off**: the trigger disabled (`ALTER TABLE message_store.messages
//!   DISABLE TRIGGER messages_wake_category_waiters`); one consumer per
//!   category reads it from its position as ebb's consumer does, polling
//!   when it has caught up;
//! - **trigger on, nobody waiting**: the trigger enabled, the consumers
//!   poll as in off and never arm: what the trigger costs a write when
//!   nobody waits;
//! - **off, fast poll**: the trigger enabled but nobody arms (so nothing
//!   notifies), and each consumer polls every `busy_category_poll`
//!   (2 ms): the read load of "on" in one busy category without
//!   notifications, which tells what reading sooner costs from what
//!   notifying costs;
//! - **on**: the trigger enabled, and the consumers arm before every read
//!   (`arm_wakeup`, read, handle; after a read that found nothing or
//!   less than a batch, wait for the wake-up or the poll), so that
//!   notifications fire as often as the store lets them, on a `PgStore`
//!   at its defaults (a category notified less than
//!   `busy_category_window`, 1 s, ago is polled instead of armed again:
//!   every `busy_category_poll`, 2 ms, times the number of the store's
//!   busy categories; the 8 consumers share one store, as the consumers
//!   of one component do);
//! - **on, no busy window**: as on, with `busy_category_window` zero:
//!   every arming asks the database for a notification, so every write
//!   that finds its consumer waiting notifies (shown for comparison; set
//!   `EBB_BENCH_NOTIFY_EVERY_ARMING=0` to leave it out).
//!
//! Each pass warms up for half a second and then counts writes for
//! `EBB_BENCH_NOTIFY_SECONDS` (3). `EBB_BENCH_NOTIFY_ROUNDS` (5) rounds,
//! each running every mode of every case once, the order of the modes
//! turning by one each round, so that a swing in the speed of the (shared)
//! machine falls on every mode alike; each figure is the median pass, each
//! ratio the median of the per-round ratios (the shared harness,
//! `ebb_bench`). The requirement: with notifications ("on"), each case
//! keeps at least 0.9x of the rate without ("off"); the other modes'
//! ratios are reported beside it.
//!
//! It prints progress (stderr) and the figures (stdout), and exits
//! non-zero when the requirement is missed.
//!
//! The modules:
//!
//! - [`settings`]: the environment variables and their defaults;
//! - [`workload`]: the writers and consumers of one pass;
//! - [`report`]: the rows of the report.

mod report;
mod settings;
mod workload;

use std::process::ExitCode;
use std::time::Instant;

use ebb_bench::{BoxError, progress};
use ebb_localpg::Cluster;
use ebb_message_store::{PgStore, PgStoreConfig};
use ebb_tests::connect_to;

use crate::report::{Figures, Run};
use crate::settings::Settings;
use crate::workload::{Case, Mode};

/// The database the passes write to.
const DATABASE: &str = "bench_notify";

fn run(settings: &Settings) -> Result<Run<'_>, BoxError> {
    let started = Instant::now();
    progress("starting a durable private PostgreSQL cluster");
    let cluster = Cluster::builder().fsync(true).start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            let postgres = connect_to(&cluster.config("postgres")).await?;
            postgres
                .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
                .await?;
            let admin = connect_to(&cluster.config(DATABASE)).await?;
            ebb_message_store::schema::install(&admin).await?;
            let server: String = admin.query_one("SHOW server_version", &[]).await?.get(0);
            let config = PgStoreConfig {
                // A connection for each writer and each consumer.
                max_connections: 2 * settings.writers + 2,
                ..PgStoreConfig::new(cluster.config(DATABASE))
            };
            let mut on = config.clone();
            if let Some(window) = settings.busy_window {
                on.busy_category_window = window;
            }
            if let Some(poll) = settings.busy_poll {
                on.busy_category_poll = poll;
            }
            let store = PgStore::new(on)?;
            let every_arming = PgStore::new(PgStoreConfig {
                busy_category_window: std::time::Duration::ZERO,
                ..config
            })?;

            let mut modes = vec![Mode::Off, Mode::TriggerOnly, Mode::OffFastPoll, Mode::On];
            if settings.every_arming {
                modes.push(Mode::OnEveryArming);
            }
            let mut figures: Vec<Figures> = Case::ALL
                .iter()
                .flat_map(|&case| {
                    modes.iter().map(move |&mode| Figures {
                        case,
                        mode,
                        passes: Vec::new(),
                    })
                })
                .collect();
            for round in 0..settings.rounds {
                for case in Case::ALL {
                    for i in ebb_bench::measure::order(round, modes.len()) {
                        let mode = modes[i];
                        let store = match mode {
                            Mode::OnEveryArming => &every_arming,
                            Mode::Off | Mode::TriggerOnly | Mode::OffFastPoll | Mode::On => {
                                &store
                            }
                        };
                        let pass = workload::pass(store, &admin, settings, case, mode).await?;
                        progress(format!(
                            "round {}/{}: {}, {}: {:.0} writes/s, {:.0} arm calls/s, {:.0} NOTIFYs/s, {:.0} reads/s",
                            round + 1,
                            settings.rounds,
                            case.name(),
                            mode.name(),
                            pass.writes_per_second,
                            pass.arms_per_second,
                            pass.notifications_per_second,
                            pass.reads_per_second
                        ));
                        figures
                            .iter_mut()
                            .find(|f| f.case == case && f.mode == mode)
                            .expect("a slot for every case and mode")
                            .passes
                            .push(pass);
                    }
                }
            }
            Ok::<_, BoxError>((server, figures))
        })
        .map(|(server, figures)| Run {
            settings,
            server,
            figures,
            elapsed: started.elapsed(),
        })
}

fn main() -> ExitCode {
    ebb_bench::report::main(|| {
        let settings = Settings::from_env()?;
        Ok(run(&settings)?.report())
    })
}
