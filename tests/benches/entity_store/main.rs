//! Run with: `cargo bench -p ebb-tests --bench entity_store`
//!
//! ebb-handler's entity store and the seed handler against a private
//! PostgreSQL cluster started by ebb-localpg (fsync off: a throwaway
//! cluster; the figures are CPU and round trips, not the disk):
//!
//! 1. fetching an account whose stream holds `EBB_BENCH_EVENTS` (1,000)
//!    `Deposited` events, three ways: **cold** (cache off, no snapshots:
//!    reads and applies every event), **cached** (the cache holds the
//!    entity at its last version: one read that finds nothing new) and
//!    **from a snapshot** (cache off; a snapshot at the last version: reads
//!    the snapshot and no events). The cached fetch must be at least 20x
//!    as fast as the cold one; the snapshot's ratio is reported. Measured
//!    in the same interleaving, for reference: the store's own reads that
//!    the cold and the cached fetch come down to (`read_stream` of every
//!    event, and from after the last one), so the entity store's own cost
//!    is visible;
//! 2. the seed handler (fetch the account, sequence guard, write
//!    `Deposited` with the fetched version as expected version, retried on
//!    a conflict) in one instance, dispatching `EBB_BENCH_COMMANDS` stored
//!    `Deposit` commands over `EBB_BENCH_ACCOUNTS` accounts one after
//!    another through a `Dispatcher`, as a consumer does. Measured in the
//!    same interleaving: bare store calls doing the same I/O by hand (per
//!    command one `get_stream_messages` from the version it knows and one
//!    `write`), a reference for the handler layer's own cost, not a
//!    requirement.
//!
//! Method, as in the store benchmark (the shared harness, `ebb_bench`):
//! the machine's speed can swing within seconds, so every side is
//! measured in `EBB_BENCH_RUNS` short slices, in rounds whose order turns
//! by one each round; its figure is the median slice, and a ratio is the
//! median of the per-round ratios. Everything runs on one current-thread runtime: one fetching task,
//! one handling instance, each store with a pool of one connection. Each
//! handler side has a database of its own, cloned from an installed, empty
//! template, so both sides' tables grow at the same pace.
//!
//! Sizes come from the environment, all optional; [`settings`] lists the
//! variables and their defaults.
//!
//! Not a timed test: it prints a table (stdout) and progress (stderr), and
//! exits non-zero when the requirement is missed.
//!
//! The modules:
//!
//! - [`settings`]: the environment variables and their defaults;
//! - [`workload`]: the seed handler, its messages and its entity;
//! - [`fetch`]: the fetch case, its three entity stores and the
//!   store-only reads;
//! - [`handling`]: the handler case and its bare-store reference;
//! - [`report`]: the rows of the report.
//!
//! This file holds the run: the cluster and `main`.

mod fetch;
mod handling;
mod report;
mod settings;
mod workload;

use std::process::ExitCode;
use std::time::Instant;

use ebb_bench::{BoxError, progress};
use ebb_localpg::Cluster;
use ebb_message_store::{PgStore, PgStoreConfig};
use ebb_tests::connect_to;
use tokio::runtime::Runtime;

use crate::fetch::FetchCase;
use crate::handling::HandlingCase;
use crate::settings::Settings;

/// The installed, empty database every measured database is cloned from.
const TEMPLATE: &str = "bench_template";

/// The cluster, the runtime and an admin connection.
struct Bench {
    /// The sizes of the run.
    settings: Settings,
    /// Runs everything: the admin connection and every side. One thread,
    /// because every side is one task waiting on one round trip at a
    /// time (`PgStore`'s documentation recommends it for that).
    runtime: Runtime,
    /// The private cluster every side runs against.
    cluster: Cluster,
    /// On the `postgres` database: creates and drops databases.
    admin: tokio_postgres::Client,
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
            // No checkpoint may start by itself in the middle of a slice.
            .setting("max_wal_size", "16GB")
            .setting("checkpoint_timeout", "1h")
            .start()?;
        let admin = runtime.block_on(connect_to(&cluster.config("postgres")))?;
        let bench = Self {
            settings,
            runtime,
            cluster,
            admin,
        };
        bench.create_template()?;
        Ok(bench)
    }

    fn create_template(&self) -> Result<(), BoxError> {
        progress(format!("installing the schema into {TEMPLATE}"));
        self.runtime.block_on(async {
            self.admin
                .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
                .await?;
            let client = connect_to(&self.cluster.config(TEMPLATE)).await?;
            ebb_message_store::schema::install(&client).await?;
            Ok(())
        })
    }

    /// A new database holding the installed, empty store.
    fn fresh_database(&self, name: &str) -> Result<(), BoxError> {
        self.runtime.block_on(async {
            // Two statements: DROP DATABASE cannot run in the implicit
            // transaction of a multi-statement batch.
            self.admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            self.admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
                .await
        })?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), BoxError> {
        self.runtime
            .block_on(async { self.admin.batch_execute("CHECKPOINT").await })?;
        Ok(())
    }

    /// A store on `database` with a pool of one connection: one task, one
    /// call at a time.
    fn store(&self, database: &str) -> Result<PgStore, BoxError> {
        Ok(PgStore::new(PgStoreConfig {
            max_connections: 1,
            ..PgStoreConfig::new(self.cluster.config(database))
        })?)
    }

    /// The server's version, for the report.
    fn server_version(&self) -> Result<String, BoxError> {
        let row = self
            .runtime
            .block_on(self.admin.query_one("SHOW server_version", &[]))?;
        Ok(row.get(0))
    }
}

fn main() -> ExitCode {
    ebb_bench::report::main(|| {
        let settings = Settings::from_env()?;
        let started = Instant::now();
        let bench = Bench::start(settings.clone())?;
        let server = bench.server_version()?;

        let case = FetchCase::prepare(&bench)?;
        let fetches = case.measure()?;

        let case = HandlingCase::prepare(&bench)?;
        let handling = case.measure()?;

        Ok(report::report(
            &settings,
            &server,
            &fetches,
            &handling,
            started.elapsed(),
        ))
    })
}
