//! Run with: `cargo bench -p ebb-message-store --bench store`
//!
//! ebb-message-store against PostgreSQL's own `pgbench` calling the same
//! Message DB functions with the same payload, on one private cluster
//! started by ebb-localpg, in one run:
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
//! Fairness. The machines this runs on are shared, and their speed swings
//! by a factor of two within seconds, so each case is measured in many
//! short slices (`EBB_BENCH_SECONDS` each, `EBB_BENCH_RUNS` per side),
//! interleaved A B C C B A ... (pgbench first in the 1st and 3rd case,
//! ebb first in the 2nd), and each side's figure is the median of its
//! slices: a swing falls on all sides alike, and no single slice decides.
//! Every side of a case writes into its own database, cloned from an
//! installed, empty template when the case starts; the sides' tables grow
//! at the same pace. Each side warms up once (this fills ebb's pool and
//! prepares the statements), then a checkpoint precedes the slices.
//! Each pgbench slice is a new pgbench process with a new connection;
//! pgbench's figure excludes the connection time. One writer runs on a
//! current-thread runtime, as pgbench runs one client on one thread
//! (`-j 1`); several run on tokio's multi-thread runtime. The single-write
//! cases also measure bare tokio-postgres (the driver ebb uses) doing the
//! same writes on the same runtime, as a reference for ebb's own cost.
//! All sides write the same stream names (a random id of
//! `EBB_BENCH_ENTITIES` in the case's category), the same type, data and
//! metadata: pgbench passes the JSON as `-D` variables, which `-M prepared`
//! sends as parameters, so the server parses the JSON of every message on
//! both sides. The read case reads the same database on both sides;
//! pgbench starts at random positions, ebb reads the category from the
//! start, as a consumer does, with `read_category` (which reads one batch
//! ahead), starting over at the end.
//!
//! Sizes come from the environment (all optional):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EBB_BENCH_SECONDS` | 2 | measured seconds per slice |
//! | `EBB_BENCH_RUNS` | 11 | slices per side per case (the median counts) |
//! | `EBB_BENCH_WARMUP_SECONDS` | 2 | warm-up seconds per side per case |
//! | `EBB_BENCH_READ_SECONDS` | `EBB_BENCH_SECONDS` | measured seconds per read slice |
//! | `EBB_BENCH_READ_MESSAGES` | 1000000 | messages in the category that is read |
//! | `EBB_BENCH_WRITERS` | 8 | concurrent writers in the multi-writer cases |
//! | `EBB_BENCH_ENTITIES` | 100000 | stream ids drawn at random per category |
//! | `EBB_BENCH_BATCH_SIZE` | 1000 | messages per `write_batch` and per read |
//! | `EBB_BENCH_ONE_WRITER_RUNTIME` | `current-thread` | or `multi-thread`: the runtime of the one-writer cases |
//! | `EBB_BENCH_CASES` | all | a comma-separated subset of `writes-1`, `writes-n`, `writes-n-each`, `batch`, `reads` |
//!
//! Not a timed test: it prints a table (stdout) and progress (stderr) and
//! exits 0 even when a requirement is missed.

// A benchmark reports on the terminal; that is its whole output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use ebb_localpg::Cluster;
use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, Metadata, PgStore, StreamName,
};
use futures_util::TryStreamExt as _;
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use uuid::Uuid;

type BoxError = Box<dyn Error + Send + Sync>;

/// The installed, empty database every measurement's database is cloned
/// from.
const TEMPLATE: &str = "bench_template";
/// The one message type both sides write.
const TYPE_NAME: &str = "Benchmarked";
/// The category the read case loads and reads.
const READ_CATEGORY: &str = "benchRead";
/// How many streams the read category's messages are spread over.
const READ_STREAMS: u64 = 1000;

/// The sizes of a run, from the environment.
#[derive(Debug, Clone)]
struct Settings {
    /// Measured time of one slice.
    seconds: u64,
    /// Warm-up per side at the start of each case; pgbench's `-T` takes
    /// whole seconds, so everything is in whole seconds.
    warmup_seconds: u64,
    /// Measured time of one read run.
    read_seconds: u64,
    /// Slices per side per case; each side's figure is the median.
    runs: usize,
    /// Messages loaded into the read category.
    read_messages: u64,
    /// Writers in the multi-writer cases (pgbench `-c`/`-j`, ebb tasks and
    /// pool size).
    writers: usize,
    /// Stream ids are drawn from `1..=entities`, so streams are many and
    /// short, as entity streams are.
    entities: u64,
    /// Messages per `write_batch` call and per category read.
    batch_size: usize,
    /// The cases to run, by name (`EBB_BENCH_CASES`).
    cases: Vec<Case>,
    /// The runtime of the one-writer cases: a current-thread runtime
    /// unless `EBB_BENCH_ONE_WRITER_RUNTIME=multi-thread`.
    one_writer_multi_thread: bool,
}

/// The cases of a run, as `EBB_BENCH_CASES` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// Single writes, 1 writer, 1 category.
    WritesOne,
    /// Single writes, N writers, 1 category.
    WritesShared,
    /// Single writes, N writers, 1 category each.
    WritesEach,
    /// Batch writes against ebb's own single writes.
    Batch,
    /// Category reads.
    Reads,
}

impl Case {
    const ALL: [(&'static str, Case); 5] = [
        ("writes-1", Case::WritesOne),
        ("writes-n", Case::WritesShared),
        ("writes-n-each", Case::WritesEach),
        ("batch", Case::Batch),
        ("reads", Case::Reads),
    ];

    fn parse_list(list: &str) -> Result<Vec<Case>, BoxError> {
        let mut cases = Vec::new();
        for name in list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let case = Case::ALL
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, case)| *case)
                .ok_or_else(|| {
                    let known: Vec<_> = Case::ALL.iter().map(|(known, _)| *known).collect();
                    format!(
                        "EBB_BENCH_CASES: unknown case {name:?}; the cases are {}",
                        known.join(", ")
                    )
                })?;
            if !cases.contains(&case) {
                cases.push(case);
            }
        }
        if cases.is_empty() {
            return Err("EBB_BENCH_CASES names no case".into());
        }
        Ok(cases)
    }
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let seconds = env_or("EBB_BENCH_SECONDS", 2)?;
        let settings = Settings {
            seconds,
            warmup_seconds: env_or("EBB_BENCH_WARMUP_SECONDS", 2)?,
            read_seconds: env_or("EBB_BENCH_READ_SECONDS", seconds)?,
            runs: env_or("EBB_BENCH_RUNS", 11)?,
            read_messages: env_or("EBB_BENCH_READ_MESSAGES", 1_000_000)?,
            writers: env_or("EBB_BENCH_WRITERS", 8)?,
            entities: env_or("EBB_BENCH_ENTITIES", 100_000)?,
            batch_size: env_or("EBB_BENCH_BATCH_SIZE", 1000)?,
            cases: match std::env::var("EBB_BENCH_CASES") {
                Ok(list) => Case::parse_list(&list)?,
                Err(_) => Case::ALL.iter().map(|(_, case)| *case).collect(),
            },
            one_writer_multi_thread: match std::env::var("EBB_BENCH_ONE_WRITER_RUNTIME") {
                Err(_) => false,
                Ok(flavor) => match flavor.trim() {
                    "" | "current-thread" => false,
                    "multi-thread" => true,
                    other => {
                        return Err(format!(
                            "EBB_BENCH_ONE_WRITER_RUNTIME={other:?}: \
                             expected current-thread or multi-thread"
                        )
                        .into());
                    }
                },
            },
        };
        if settings.runs == 0 {
            return Err("EBB_BENCH_RUNS must be at least 1".into());
        }
        if settings.seconds == 0 || settings.read_seconds == 0 {
            return Err("measurements need at least one second".into());
        }
        if settings.writers == 0 || settings.entities == 0 || settings.batch_size == 0 {
            return Err("writers, entities and batch size must be at least 1".into());
        }
        if settings.read_messages < settings.batch_size as u64 {
            return Err("EBB_BENCH_READ_MESSAGES must be at least one batch".into());
        }
        Ok(settings)
    }
}

fn env_or<T: FromStr>(name: &str, default: T) -> Result<T, BoxError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            let value = value.trim().replace('_', "");
            value
                .parse()
                .map_err(|err| format!("{name}={value:?}: {err}").into())
        }
        _ => Ok(default),
    }
}

fn progress(what: impl std::fmt::Display) {
    eprintln!("[bench] {what}");
}

/// A throughput measurement.
#[derive(Debug, Clone, Copy)]
struct Rate {
    messages: u64,
    elapsed: Duration,
}

impl Rate {
    fn per_second(self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// One row of the result table.
#[derive(Debug)]
struct Row {
    case: String,
    ebb: f64,
    /// The figure ebb is compared with, and what it is.
    baseline: f64,
    baseline_name: &'static str,
    required: f64,
    /// The bare driver doing the same writes, for reference: it tells
    /// ebb's own cost apart from tokio-postgres's.
    driver: Option<f64>,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.ebb / self.baseline
    }

    fn passed(&self) -> bool {
        self.ratio() >= self.required
    }
}

/// What every written message carries: the same data and metadata on both
/// sides, sized like a typical event of an entity stream.
fn payload() -> MessageData {
    let data = json!({
        "accountId": "4f1c7a3e-2b9d-4c8e-9a7f-1e2d3c4b5a69",
        "amount": 1250,
        "currency": "EUR",
        "reference": "benchmark deposit",
        "processedTime": "2024-05-01T12:00:00.000Z",
    });
    let metadata = Metadata {
        causation_message_stream_name: Some(
            "benchCommand-4f1c7a3e-2b9d-4c8e-9a7f-1e2d3c4b5a69".into(),
        ),
        causation_message_position: Some(3),
        causation_message_global_position: Some(123_456),
        correlation_stream_name: Some("benchTransfer-9d2e".into()),
        schema_version: Some("1".into()),
        ..Metadata::default()
    };
    MessageData::new(TYPE_NAME, data).with_metadata(metadata)
}

/// xorshift64*: stream ids need to be spread, not unpredictable, and the
/// generator must cost next to nothing inside the measured loop.
#[derive(Debug)]
struct Entities {
    state: u64,
    count: u64,
}

impl Entities {
    fn new(seed: u64, count: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            count,
        }
    }

    /// One generator per writer of a slice: distinct for every slice and
    /// every writer, so that slices do not repeat each other's streams.
    fn seeds(slice: u64, count: u64) -> impl Iterator<Item = Entities> {
        (0u64..).map(move |writer| Entities::new((slice << 16) + writer + 1, count))
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.count + 1
    }
}

/// How the writers of a case spread over categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Categories {
    /// Every writer writes to `bench-<id>`.
    Shared,
    /// Writer `k` writes to `bench<k>-<id>` (pgbench's `:client_id` is k).
    PerWriter,
}

impl Categories {
    fn category(self, writer: usize) -> String {
        match self {
            Categories::Shared => "bench".to_owned(),
            Categories::PerWriter => format!("bench{writer}"),
        }
    }

    /// The stream-name expression of the pgbench script, the same names
    /// ebb writes.
    fn sql_stream_name(self) -> &'static str {
        match self {
            Categories::Shared => "'bench-' || :entity::text",
            Categories::PerWriter => "'bench' || :client_id::text || '-' || :entity::text",
        }
    }
}

/// The cluster, the runtime and an admin connection, and what a run needs
/// to compare the two sides.
struct Bench {
    settings: Settings,
    runtime: Runtime,
    cluster: Cluster,
    /// On the `postgres` database: creates, drops and checkpoints.
    admin: tokio_postgres::Client,
    payload: MessageData,
    /// Where the pgbench scripts are written: the cluster's own directory,
    /// which the account pgbench runs as can read and which is removed
    /// with the cluster.
    script_dir: PathBuf,
}

impl Bench {
    fn start(settings: Settings) -> Result<Self, BoxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        progress("starting a private PostgreSQL cluster");
        let cluster = Cluster::builder()
            .max_connections(64)
            // The read case's 1M messages and their indexes stay in memory,
            // so reads measure the store and not the disk.
            .setting("shared_buffers", "1GB")
            // No checkpoint may start by itself in the middle of one side's
            // measurement; each measurement starts after an explicit one.
            .setting("max_wal_size", "16GB")
            .setting("checkpoint_timeout", "1h")
            .start()?;
        let admin = runtime.block_on(async {
            let (client, connection) = cluster
                .config("postgres")
                .connect(tokio_postgres::NoTls)
                .await?;
            tokio::spawn(connection);
            Ok::<_, BoxError>(client)
        })?;
        let script_dir = cluster.socket_dir().to_path_buf();
        Ok(Self {
            settings,
            runtime,
            cluster,
            admin,
            payload: payload(),
            script_dir,
        })
    }

    fn create_template(&self) -> Result<(), BoxError> {
        progress(format!("installing the schema into {TEMPLATE}"));
        self.runtime.block_on(async {
            self.admin
                .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
                .await?;
            let (client, connection) = self
                .cluster
                .config(TEMPLATE)
                .connect(tokio_postgres::NoTls)
                .await?;
            tokio::spawn(connection);
            ebb_message_store::schema::install(&client).await?;
            Ok(())
        })
    }

    /// A new database holding the installed, empty store.
    fn fresh_database(&self, name: &str) -> Result<(), BoxError> {
        self.drop_database(name)?;
        self.runtime.block_on(async {
            self.admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
                .await?;
            Ok(())
        })
    }

    fn drop_database(&self, name: &str) -> Result<(), BoxError> {
        self.runtime.block_on(async {
            self.admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            Ok(())
        })
    }

    fn checkpoint(&self) -> Result<(), BoxError> {
        self.runtime
            .block_on(async { self.admin.batch_execute("CHECKPOINT").await })?;
        Ok(())
    }

    fn store(&self, database: &str, connections: usize) -> Result<PgStore, BoxError> {
        Ok(PgStore::new(ebb_message_store::PgStoreConfig {
            max_connections: connections,
            ..ebb_message_store::PgStoreConfig::new(self.cluster.config(database))
        })?)
    }

    fn write_script(&self, name: &str, text: &str) -> Result<PathBuf, BoxError> {
        use std::os::unix::fs::PermissionsExt as _;

        let path = self.script_dir.join(name);
        std::fs::write(&path, text)?;
        // pgbench may run as another account (when we are root).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        Ok(path)
    }

    /// Runs pgbench and returns its transactions per second, without
    /// connection time.
    fn pgbench(
        &self,
        database: &str,
        script: &Path,
        clients: usize,
        seconds: u64,
        defines: &[(&str, String)],
    ) -> Result<f64, BoxError> {
        let clients = clients.to_string();
        let mut command = self.cluster.command("pgbench");
        command
            .args(["-n", "-M", "prepared", "-c", &clients, "-j", &clients])
            .args(["-T", &seconds.to_string()])
            .arg("-f")
            .arg(script);
        for (name, value) in defines {
            command.arg("-D").arg(format!("{name}={value}"));
        }
        command.arg(database);
        let output = command.output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status).into());
        }
        let failed = stdout
            .lines()
            .find_map(|line| line.strip_prefix("number of failed transactions: "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("0");
        if failed != "0" {
            return Err(format!("pgbench had failed transactions:\n{stdout}\n{stderr}").into());
        }
        stdout
            .lines()
            .filter(|line| line.contains("without initial connection time"))
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|tps| tps.parse().ok())
            .ok_or_else(|| format!("no tps line in pgbench's output:\n{stdout}").into())
    }

    fn pgbench_defines(&self) -> Result<Vec<(&'static str, String)>, BoxError> {
        Ok(vec![
            ("data", serde_json::to_string(&self.payload.data)?),
            ("metadata", serde_json::to_string(&self.payload.metadata)?),
        ])
    }

    /// The pgbench script of a single-write case: the same stream names,
    /// type and payload as ebb's writes. The data and metadata are pgbench
    /// variables, which `-M prepared` sends as parameters, so the server
    /// parses the JSON of every message, as it does for ebb's.
    fn write_script_for(&self, categories: Categories) -> Result<PathBuf, BoxError> {
        self.write_script(
            "write.sql",
            &format!(
                "\\set entity random(1, {entities})\n\
                 SELECT message_store.write_message(gen_random_uuid()::varchar, {stream}, \
                 '{TYPE_NAME}', :data::jsonb, :metadata::jsonb);\n",
                entities = self.settings.entities,
                stream = categories.sql_stream_name(),
            ),
        )
    }

    /// Fills the read database: `read_messages` messages with the same
    /// payload, spread round-robin over `READ_STREAMS` streams of one
    /// category. Inserted directly, in chunks, because loading is not what
    /// is measured; the rows are what `write_message` would have written.
    fn load_read_database(&self, database: &str) -> Result<(), BoxError> {
        self.fresh_database(database)?;
        let total = self.settings.read_messages;
        let data = serde_json::to_string(&self.payload.data)?;
        let metadata = serde_json::to_string(&self.payload.metadata)?;
        self.runtime.block_on(async {
            let (client, connection) = self
                .cluster
                .config(database)
                .connect(tokio_postgres::NoTls)
                .await?;
            tokio::spawn(connection);
            let insert = client
                .prepare(&format!(
                    "INSERT INTO message_store.messages \
                       (stream_name, position, type, data, metadata) \
                     SELECT '{READ_CATEGORY}-' || (i % {READ_STREAMS} + 1), i / {READ_STREAMS}, \
                       '{TYPE_NAME}', $3::text::jsonb, $4::text::jsonb \
                     FROM generate_series($1::bigint, $2::bigint) AS i ORDER BY i"
                ))
                .await?;
            let chunk = 200_000;
            let started = Instant::now();
            let mut from = 0u64;
            while from < total {
                let to = (from + chunk).min(total) - 1;
                client
                    .execute(&insert, &[&(from as i64), &(to as i64), &data, &metadata])
                    .await?;
                from = to + 1;
                progress(format!(
                    "  loaded {from} of {total} messages ({:.0} s)",
                    started.elapsed().as_secs_f64()
                ));
            }
            // Visibility map and statistics set, so neither side pays for
            // hint bits or a first autovacuum.
            client
                .batch_execute("VACUUM (FREEZE, ANALYZE) message_store.messages")
                .await?;
            Ok::<_, BoxError>(())
        })?;
        self.checkpoint()
    }

    /// The pgbench script of the read case: a batch from a random
    /// position.
    fn read_script(&self) -> Result<PathBuf, BoxError> {
        let batch = self.settings.batch_size;
        let last_start = self.settings.read_messages - batch as u64 + 1;
        self.write_script(
            "read.sql",
            &format!(
                "\\set pos random(1, {last_start})\n\
                 SELECT * FROM message_store.get_category_messages('{READ_CATEGORY}', :pos, {batch});\n"
            ),
        )
    }

    fn pgbench_reads(&self, database: &str, script: &Path, seconds: u64) -> Result<f64, BoxError> {
        let tps = self.pgbench(database, script, 1, seconds, &[])?;
        Ok(tps * self.settings.batch_size as f64)
    }

    fn ebb_reads(&self, store: &PgStore, duration: Duration) -> Result<f64, BoxError> {
        let batch = self.settings.batch_size as i64;
        let rate = self
            .runtime
            .block_on(category_reads(store, batch, duration))?;
        Ok(rate.per_second())
    }
}

/// The runtime the writers of a case run on: one thread for one writer,
/// as pgbench runs one client on one thread (`-j 1`), and tokio's
/// multi-thread runtime (one worker per core) for several. A component
/// that writes from one task is best served by a current-thread runtime
/// too (see `PgStore`'s documentation).
fn writers_runtime(settings: &Settings, writers: usize) -> Result<Runtime, BoxError> {
    let mut builder = if writers == 1 && !settings.one_writer_multi_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    Ok(builder.enable_all().build()?)
}

/// Counts a case's slices; each slice's number seeds its stream ids, so
/// that slices do not repeat each other's streams.
#[derive(Debug, Default)]
struct Slices(std::cell::Cell<u64>);

impl Slices {
    fn next(&self) -> u64 {
        let slice = self.0.get() + 1;
        self.0.set(slice);
        slice
    }
}

/// The three sides of a single-write case, each with its own fresh
/// database, warmed up and checkpointed once; then measured in slices of
/// `EBB_BENCH_SECONDS`, interleaved, so that the machine's load falls on
/// all sides alike. Each side's database grows at the same pace.
struct WriteCase<'b> {
    bench: &'b Bench,
    writers: usize,
    categories: Categories,
    runtime: Runtime,
    store: PgStore,
    driver: DriverClients,
    script: PathBuf,
    defines: Vec<(&'static str, String)>,
    slices: Slices,
}

impl<'b> WriteCase<'b> {
    const PGBENCH: &'static str = "bench_pgbench";
    const EBB: &'static str = "bench_ebb";
    const DRIVER: &'static str = "bench_driver";

    fn prepare(bench: &'b Bench, writers: usize, categories: Categories) -> Result<Self, BoxError> {
        for database in [Self::PGBENCH, Self::EBB, Self::DRIVER] {
            bench.fresh_database(database)?;
        }
        let runtime = writers_runtime(&bench.settings, writers)?;
        let store = bench.store(Self::EBB, writers)?;
        let config = bench.cluster.config(Self::DRIVER);
        let driver = runtime.block_on(async {
            let mut clients = Vec::new();
            for _ in 0..writers {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                let statement = client.prepare(DRIVER_WRITE).await?;
                clients.push((client, statement));
            }
            Ok::<_, BoxError>(std::sync::Arc::new(clients))
        })?;
        let case = Self {
            bench,
            writers,
            categories,
            runtime,
            store,
            driver,
            script: bench.write_script_for(categories)?,
            defines: bench.pgbench_defines()?,
            slices: Slices::default(),
        };
        // The warm-up fills the pool, prepares the statements (pgbench's
        // are prepared again by every slice's new connection) and brings
        // the server's caches to the same state for all three.
        let warmup = bench.settings.warmup_seconds;
        case.pgbench(warmup)?;
        case.ebb(Duration::from_secs(warmup))?;
        case.driver(Duration::from_secs(warmup))?;
        bench.checkpoint()?;
        Ok(case)
    }

    fn pgbench(&self, seconds: u64) -> Result<f64, BoxError> {
        self.bench.pgbench(
            Self::PGBENCH,
            &self.script,
            self.writers,
            seconds,
            &self.defines,
        )
    }

    fn ebb(&self, duration: Duration) -> Result<f64, BoxError> {
        let seed = self.slices.next();
        let rate = self.runtime.block_on(single_writes(
            &self.store,
            &self.bench.payload,
            self.writers,
            self.categories,
            Entities::seeds(seed, self.bench.settings.entities),
            duration,
        ))?;
        Ok(rate.per_second())
    }

    fn driver(&self, duration: Duration) -> Result<f64, BoxError> {
        let seed = self.slices.next();
        let rate = self.runtime.block_on(driver_single_writes(
            &self.driver,
            &self.bench.payload,
            self.categories,
            Entities::seeds(seed, self.bench.settings.entities),
            duration,
        ))?;
        Ok(rate.per_second())
    }

    fn finish(self) -> Result<(), BoxError> {
        let bench = self.bench;
        drop(self.store);
        drop(self.driver);
        drop(self.runtime);
        for database in [Self::PGBENCH, Self::EBB, Self::DRIVER] {
            bench.drop_database(database)?;
        }
        Ok(())
    }
}

/// ebb's batch writes against its own single writes (one writer each),
/// prepared and measured like a [`WriteCase`].
struct BatchCase<'b> {
    bench: &'b Bench,
    runtime: Runtime,
    single: PgStore,
    batch: PgStore,
    slices: Slices,
}

impl<'b> BatchCase<'b> {
    const SINGLE: &'static str = "bench_ebb_single";
    const BATCH: &'static str = "bench_ebb_batch";

    fn prepare(bench: &'b Bench) -> Result<Self, BoxError> {
        for database in [Self::SINGLE, Self::BATCH] {
            bench.fresh_database(database)?;
        }
        let case = Self {
            bench,
            runtime: writers_runtime(&bench.settings, 1)?,
            single: bench.store(Self::SINGLE, 1)?,
            batch: bench.store(Self::BATCH, 1)?,
            slices: Slices::default(),
        };
        let warmup = Duration::from_secs(bench.settings.warmup_seconds);
        case.single(warmup)?;
        case.batch(warmup)?;
        bench.checkpoint()?;
        Ok(case)
    }

    fn single(&self, duration: Duration) -> Result<f64, BoxError> {
        let slice = self.slices.next();
        let rate = self.runtime.block_on(single_writes(
            &self.single,
            &self.bench.payload,
            1,
            Categories::Shared,
            Entities::seeds(slice, self.bench.settings.entities),
            duration,
        ))?;
        Ok(rate.per_second())
    }

    fn batch(&self, duration: Duration) -> Result<f64, BoxError> {
        let slice = self.slices.next();
        let rate = self.runtime.block_on(batch_writes(
            &self.batch,
            &self.bench.payload,
            &self.bench.settings,
            Entities::new(slice, self.bench.settings.entities),
            duration,
        ))?;
        Ok(rate.per_second())
    }

    fn finish(self) -> Result<(), BoxError> {
        let bench = self.bench;
        drop(self.single);
        drop(self.batch);
        drop(self.runtime);
        for database in [Self::SINGLE, Self::BATCH] {
            bench.drop_database(database)?;
        }
        Ok(())
    }
}

/// `writers` tasks writing one message per call until `duration` is up.
async fn single_writes(
    store: &PgStore,
    payload: &MessageData,
    writers: usize,
    categories: Categories,
    mut seeds: impl Iterator<Item = Entities>,
    duration: Duration,
) -> Result<Rate, BoxError> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        let mut message = payload.clone();
        let category = categories.category(writer);
        let mut ids = seeds.next().expect("a stream-id generator per writer");
        tasks.push(async move {
            let mut written = 0u64;
            while Instant::now() < deadline {
                // A new message each time, as an application writes them;
                // the data is reused because building it is not ebb's cost.
                message.id = Uuid::new_v4();
                let stream = StreamName::new(&category, &ids.next().to_string())?;
                store.write(&stream, &message, ExpectedVersion::Any).await?;
                written += 1;
            }
            Ok::<_, BoxError>(written)
        });
    }
    count_written(started, tasks).await
}

/// One writer writing `batch_size` messages per `write_batch` call, each
/// batch to a random stream, until `duration` is up.
/// Runs the writers' loops as concurrent tasks and adds up what they
/// wrote since `started`.
async fn count_written<F>(started: Instant, writers: Vec<F>) -> Result<Rate, BoxError>
where
    F: std::future::Future<Output = Result<u64, BoxError>> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for writer in writers {
        tasks.spawn(writer);
    }
    let mut messages = 0;
    while let Some(written) = tasks.join_next().await {
        messages += written??;
    }
    Ok(Rate {
        messages,
        elapsed: started.elapsed(),
    })
}

/// The statement ebb's `write` sends, prepared once per connection.
const DRIVER_WRITE: &str = "SELECT message_store.write_message(\
    $1::varchar, $2::varchar, $3::varchar, $4::jsonb, $5::jsonb, $6::bigint)";

type DriverClients = std::sync::Arc<Vec<(tokio_postgres::Client, tokio_postgres::Statement)>>;

/// One task per connection writing single messages until `duration` is
/// over, with the same ids, stream names and payload as `single_writes`.
async fn driver_single_writes(
    clients: &DriverClients,
    payload: &MessageData,
    categories: Categories,
    mut seeds: impl Iterator<Item = Entities>,
    duration: Duration,
) -> Result<Rate, BoxError> {
    let started = Instant::now();
    let deadline = started + duration;
    let metadata = serde_json::to_value(&payload.metadata)?;
    let mut tasks = Vec::new();
    for writer in 0..clients.len() {
        let clients = clients.clone();
        let data = payload.data.clone();
        let metadata = metadata.clone();
        let type_name = payload.type_name.clone();
        let category = categories.category(writer);
        let mut ids = seeds.next().expect("a stream-id generator per writer");
        tasks.push(async move {
            let (client, statement) = &clients[writer];
            let mut written = 0u64;
            while Instant::now() < deadline {
                let id = Uuid::new_v4().to_string();
                let stream = format!("{category}-{}", ids.next());
                let expected: Option<i64> = None;
                client
                    .query_one(
                        statement,
                        &[&id, &stream, &type_name, &data, &metadata, &expected],
                    )
                    .await?;
                written += 1;
            }
            Ok::<_, BoxError>(written)
        });
    }
    count_written(started, tasks).await
}

async fn batch_writes(
    store: &PgStore,
    payload: &MessageData,
    settings: &Settings,
    mut ids: Entities,
    duration: Duration,
) -> Result<Rate, BoxError> {
    let mut batch = vec![payload.clone(); settings.batch_size];
    let started = Instant::now();
    let deadline = started + duration;
    let mut messages = 0;
    while Instant::now() < deadline {
        for message in &mut batch {
            message.id = Uuid::new_v4();
        }
        let stream = StreamName::new("benchBatch", &ids.next().to_string())?;
        store
            .write_batch(&stream, &batch, ExpectedVersion::Any)
            .await?;
        messages += batch.len() as u64;
    }
    Ok(Rate {
        messages,
        elapsed: started.elapsed(),
    })
}

/// Reads the category from the start with `read_category`, as a consumer
/// does (batch after batch; the store reads one batch ahead), starting over
/// at the end, until `duration` is up. The deadline is checked between
/// batches, so every batch fetched is counted. Every message is fully
/// decoded by the store (JSON parsed) before it is counted.
async fn category_reads(store: &PgStore, batch: i64, duration: Duration) -> Result<Rate, BoxError> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut messages = 0u64;
    'passes: loop {
        let query = CategoryQuery::new().batch_size(batch);
        let mut read = store.read_category(READ_CATEGORY, query);
        while let Some(message) = read.try_next().await? {
            black_box(&message);
            messages += 1;
            if messages % batch as u64 == 0 && Instant::now() >= deadline {
                break 'passes;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(Rate {
        messages,
        elapsed: started.elapsed(),
    })
}

/// A side of a comparison: its name and one measured run.
type Side<'a> = (&'static str, &'a mut dyn FnMut() -> Result<f64, BoxError>);

/// Measures every side of a case `runs` times, interleaved in the order
/// A B C, C B A, A B C ..., so that a drift in the machine's load (another
/// process on a shared machine, say) falls on all sides alike; each side's
/// figure is the median of its runs, so one disturbed run does not decide
/// the case.
fn interleaved(case: &str, runs: usize, sides: &mut [Side<'_>]) -> Result<Vec<f64>, BoxError> {
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
    Ok(results.iter_mut().map(|runs| median(runs)).collect())
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
        progress(format!("{case}: warming up"));
        let sides = WriteCase::prepare(&bench, *writers, *categories)?;
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
        let rate_of = |name: &str| {
            sides_of_case
                .iter()
                .zip(&rates)
                .find(|((side, _), _)| *side == name)
                .map_or(f64::NAN, |(_, rate)| *rate)
        };
        let row = Row {
            case,
            ebb: rate_of("ebb"),
            baseline: rate_of("pgbench"),
            baseline_name: "pgbench",
            required: 0.9,
            driver: Some(rate_of("tokio-postgres")),
        };
        drop(sides_of_case);
        sides.finish()?;
        rows.push(row);
    }

    if selected(Case::Batch) {
        let case = format!("batch writes of {}, 1 writer", settings.batch_size);
        progress(format!("{case}: warming up"));
        // Compared with ebb's own single writes, measured interleaved with
        // the batches like any other baseline.
        let sides = BatchCase::prepare(&bench)?;
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
            ebb: rates[1],
            baseline: rates[0],
            baseline_name: "ebb single",
            required: 3.0,
            driver: None,
        });
    }

    if selected(Case::Reads) {
        let read_database = "bench_read";
        progress(format!(
            "loading {} messages into category {READ_CATEGORY} (not measured)",
            settings.read_messages
        ));
        bench.load_read_database(read_database)?;
        let case = format!(
            "category reads, batches of {} of {}",
            settings.batch_size, settings.read_messages
        );
        progress(format!("{case}: warming up"));
        let script = bench.read_script()?;
        let store = bench.store(read_database, 1)?;
        bench.pgbench_reads(read_database, &script, settings.warmup_seconds)?;
        bench.ebb_reads(&store, Duration::from_secs(settings.warmup_seconds))?;
        let slice = Duration::from_secs(settings.read_seconds);
        let mut pgbench = || bench.pgbench_reads(read_database, &script, settings.read_seconds);
        let mut ebb = || bench.ebb_reads(&store, slice);
        let rates = interleaved(
            &case,
            settings.runs,
            &mut [("pgbench", &mut pgbench), ("ebb", &mut ebb)],
        )?;
        rows.push(Row {
            case,
            ebb: rates[1],
            baseline: rates[0],
            baseline_name: "pgbench",
            required: 0.8,
            driver: None,
        });
    }

    let version = pgbench_version(&bench.cluster);
    print_report(&settings, &version, &rows, run_started.elapsed());
    Ok(())
}

fn print_report(settings: &Settings, pgbench: &str, rows: &[Row], elapsed: Duration) {
    println!();
    println!(
        "ebb-message-store vs pgbench {pgbench} (-M prepared) on one private cluster, {} CPUs, fsync off",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "each side measured in {} slices per case (interleaved A B C C B A ...; median), {}s per slice ({}s for reads) \
         after {}s warm-up per side; a fresh database per side and write case; one writer on a {} runtime",
        settings.runs,
        settings.seconds,
        settings.read_seconds,
        settings.warmup_seconds,
        if settings.one_writer_multi_thread {
            "multi-thread"
        } else {
            "current-thread"
        }
    );
    println!();
    println!(
        "| {:<44} | {:>10} | {:>10} | {:<10} | {:>6} | {:>8} | {:<6} | {:>14} |",
        "case", "ebb msg/s", "vs msg/s", "vs", "ratio", "required", "result", "tokio-postgres"
    );
    println!(
        "|{:-<46}|{:->12}|{:->12}|{:-<12}|{:->8}|{:->10}|{:-<8}|{:->16}|",
        "", "", "", "", "", "", "", ""
    );
    for row in rows {
        println!(
            "| {:<44} | {:>10.0} | {:>10.0} | {:<10} | {:>5.2}x | {:>7.1}x | {:<6} | {:>14} |",
            row.case,
            row.ebb,
            row.baseline,
            row.baseline_name,
            row.ratio(),
            row.required,
            if row.passed() { "PASS" } else { "FAIL" },
            row.driver
                .map_or_else(|| "-".to_owned(), |rate| format!("{rate:.0}")),
        );
    }
    println!();
    println!(
        "tokio-postgres: the bare driver ebb uses, one connection and one prepared statement per writer, \
         the same writes; for reference, not a requirement"
    );
    println!();
    let failed = rows.iter().filter(|row| !row.passed()).count();
    if failed == 0 {
        println!("all {} requirements met", rows.len());
    } else {
        println!("{failed} of {} requirements NOT met", rows.len());
    }
    println!("total run time {:.0} s", elapsed.as_secs_f64());
}

/// `pgbench --version`'s version number, for the report.
fn pgbench_version(cluster: &Cluster) -> String {
    cluster
        .command("pgbench")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.split_whitespace().nth(2).map(str::to_owned))
        .unwrap_or_default()
}
