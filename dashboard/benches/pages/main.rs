//! Run with: `cargo bench -p ebb-dashboard --bench pages`
//!
//! How fast the dashboard's pages answer on a large store: each page's
//! time to the first byte, its 95th percentile required under 300 ms on a
//! store of 5,000,000 messages in 50 categories; and what live pages cost
//! the database, with one and with many of them open.
//!
//! Method. A private cluster (ebb-localpg, `fsync` off, `shared_buffers`
//! 1 GB, `pg_stat_statements` loaded) holds one database with the store
//! `ebb_tests::large_store` builds (the operators' bench's): the entity
//! streams, two consumers per category with their position records
//! interleaved, failures and parked messages; then `VACUUM ANALYZE` and a
//! checkpoint. The dashboard (`ebb_dashboard::router`, default
//! [`Options`](ebb_dashboard::Options)) serves it on a loopback port of
//! this process, as `ebb dashboard` would; the requests come from a
//! client in the same process, one connection per request, each timed
//! from connecting to the response's first byte (and to its last).
//!
//! First, cold: the first requests of `/` and `/consumers`, before any
//! figure has been read. Then an operator's view: one copy of the
//! overview and of the consumers page stays open live (their event
//! streams read), so the shared refreshers run as they would; each page
//! ([`cases::pages`]) is asked for once untimed, then
//! `EBB_BENCH_DASHBOARD_REQUESTS` (200) times, each page once per round
//! in turn. The figures: p50 and p95 (nearest rank) of the time to the
//! first byte, the p95 required under 300 ms. Last, the live load
//! ([`live`]): 1 and then `EBB_BENCH_DASHBOARD_LIVE_PAGES` (20) copies of
//! each live page open for `EBB_BENCH_DASHBOARD_LIVE_SECONDS` (10 s), the
//! statements the database ran meanwhile counted by
//! `pg_stat_statements`: the same however many pages are open.
//!
//! Sizes come from the environment, all optional; [`settings`] lists the
//! variables and their defaults (`EBB_BENCH_DASHBOARD_MESSAGES=200000`
//! makes a quick run). Building the 5,000,000-message store takes about
//! two minutes on two cores.
//!
//! It prints progress (stderr) and the report (stdout, through the shared
//! harness, `ebb_bench`, which also writes it to `EBB_BENCH_JSON`), and
//! exits non-zero when a page's p95 misses 300 ms.

mod cases;
mod http;
mod live;
mod report;
mod settings;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ebb_bench::{BoxError, Report, progress};
use ebb_message_store::{PgStore, PgStoreConfig};
use ebb_tests::large_store;

use crate::http::Events;
use crate::report::Findings;
use crate::settings::Settings;
use crate::store::Targets;

/// The database the store is built in.
const DATABASE: &str = "bench_dashboard";

fn run(settings: &Settings) -> Result<Report, BoxError> {
    let started = Instant::now();
    progress("starting a private PostgreSQL cluster");
    let cluster = large_store::cluster()
        .setting("shared_preload_libraries", "pg_stat_statements")
        .start()?;
    // Two workers, as many as the machine the figures were taken on has
    // cores: the server and the client share them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let postgres = ebb_tests::connect_to(&cluster.config("postgres")).await?;
        postgres
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await?;
        let client = ebb_tests::connect_to(&cluster.config(DATABASE)).await?;
        ebb_message_store::schema::install(&client).await?;
        client
            .batch_execute("CREATE EXTENSION pg_stat_statements")
            .await?;
        let server = large_store::server_description(&client).await?;
        progress(format!(
            "building the store: {} messages in {} categories, {} streams",
            settings.shape.messages,
            settings.shape.categories,
            settings.shape.streams()
        ));
        let building = Instant::now();
        let contents = large_store::build(&client, &settings.shape).await?;
        let built = building.elapsed();
        progress(format!(
            "built in {:.0} s: {} messages, {} streams; table {} MB, with indexes {} MB",
            built.as_secs_f64(),
            contents.messages,
            contents.streams,
            contents.table_bytes >> 20,
            contents.total_bytes >> 20
        ));
        let targets = Targets::find(&client).await?;

        let store = PgStore::new(PgStoreConfig::new(cluster.config(DATABASE)))?;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address: SocketAddr = listener.local_addr()?;
        let app = ebb_dashboard::router(store, ebb_dashboard::Options::default());
        let server_task = tokio::spawn(async move { axum::serve(listener, app).await });
        progress(format!("the dashboard listens on http://{address}/"));

        let mut cold = Vec::new();
        for path in ["/", "/consumers"] {
            let fetched = cases::cold(address, path, settings).await?;
            progress(format!(
                "cold {path}: first byte {:.1} ms",
                cases::ms(fetched.first_byte)
            ));
            cold.push((path, fetched));
        }

        // The pages an operator keeps open: their refreshers run while
        // the other pages are timed.
        let mut watching = Vec::new();
        for path in live::LIVE_PATHS {
            let mut events = Events::open(address, path).await?;
            watching.push(tokio::spawn(async move {
                while let Ok(true) = events.next().await {}
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut pages = cases::pages(&targets);
        cases::measure(address, &mut pages, settings).await?;
        for task in &watching {
            task.abort();
        }
        // The refreshers end within an interval of their last watcher.
        tokio::time::sleep(Duration::from_secs(3)).await;

        let mut loads = Vec::new();
        for open in [1, settings.live_pages] {
            loads.push(live::measure(address, &client, open, settings.live_window).await?);
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        server_task.abort();
        Ok(report::report(
            settings,
            &Findings {
                server,
                contents,
                built,
                cold,
                pages,
                loads,
                elapsed: started.elapsed(),
            },
        ))
    })
}

fn main() -> ExitCode {
    ebb_bench::report::main(|| run(&Settings::from_env()?))
}
