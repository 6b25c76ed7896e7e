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
//! Fairness: each case measures its sides `EBB_BENCH_RUNS` times each,
//! interleaved A B C C B A ... (pgbench first in the 1st and 3rd case, ebb
//! first in the 2nd), and reports each side's median, so that a
//! drift in the machine's load falls on all alike and one disturbed run
//! does not decide a case. Every write run gets a fresh database cloned from
//! an installed, empty template, so both sides write into a table of the
//! same size; each run warms up in its database before it is measured
//! (this also fills ebb's pool and pgbench's prepared statements), and a
//! checkpoint precedes every measurement. The single-write cases also
//! measure bare tokio-postgres (the driver ebb uses) doing the same writes,
//! as a reference for ebb's own cost. All sides write the same
//! stream names (a random id of `EBB_BENCH_ENTITIES` in the case's
//! category), the same type, data and metadata: pgbench passes the JSON as
//! `-D` variables, which `-M prepared` sends as parameters, so the server
//! parses the JSON of every message on both sides. The read case reads the
//! same database on both sides; pgbench starts at random positions, ebb
//! reads the category from the start, as a consumer does, with
//! `read_category` (which reads one batch ahead), starting over at the
//! end. pgbench reports tps without connection time.
//!
//! Sizes come from the environment (all optional):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EBB_BENCH_SECONDS` | 4 | measured seconds per run |
//! | `EBB_BENCH_RUNS` | 5 | runs per side per case (the median counts) |
//! | `EBB_BENCH_WARMUP_SECONDS` | 2 | warm-up seconds before each run |
//! | `EBB_BENCH_READ_SECONDS` | `EBB_BENCH_SECONDS` | measured seconds per read run |
//! | `EBB_BENCH_READ_MESSAGES` | 1000000 | messages in the category that is read |
//! | `EBB_BENCH_WRITERS` | 8 | concurrent writers in the multi-writer cases |
//! | `EBB_BENCH_ENTITIES` | 100000 | stream ids drawn at random per category |
//! | `EBB_BENCH_BATCH_SIZE` | 1000 | messages per `write_batch` and per read |
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
    /// Measured time of one run.
    seconds: u64,
    /// Warm-up per side before each measurement; pgbench's `-T` takes
    /// whole seconds, so everything is in whole seconds.
    warmup_seconds: u64,
    /// Measured time of one read run.
    read_seconds: u64,
    /// Runs per side per case; each side's figure is the median.
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
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let seconds = env_or("EBB_BENCH_SECONDS", 4)?;
        let settings = Settings {
            seconds,
            warmup_seconds: env_or("EBB_BENCH_WARMUP_SECONDS", 2)?,
            read_seconds: env_or("EBB_BENCH_READ_SECONDS", seconds)?,
            runs: env_or("EBB_BENCH_RUNS", 5)?,
            read_messages: env_or("EBB_BENCH_READ_MESSAGES", 1_000_000)?,
            writers: env_or("EBB_BENCH_WRITERS", 8)?,
            entities: env_or("EBB_BENCH_ENTITIES", 100_000)?,
            batch_size: env_or("EBB_BENCH_BATCH_SIZE", 1000)?,
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
        Ok(PgStore::with_max_connections(
            self.cluster.config(database),
            connections,
        )?)
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

    /// Warm-up and measurement of pgbench's single writes in a fresh
    /// database.
    fn pgbench_writes(&self, writers: usize, categories: Categories) -> Result<f64, BoxError> {
        let database = "bench_pgbench";
        self.fresh_database(database)?;
        // The data and metadata are pgbench variables, which `-M prepared`
        // sends as parameters, so the server parses the JSON of every
        // message, as it does for ebb's.
        let script = self.write_script(
            "write.sql",
            &format!(
                "\\set entity random(1, {entities})\n\
                 SELECT message_store.write_message(gen_random_uuid()::varchar, {stream}, \
                 '{TYPE_NAME}', :data::jsonb, :metadata::jsonb);\n",
                entities = self.settings.entities,
                stream = categories.sql_stream_name(),
            ),
        )?;
        let defines = self.pgbench_defines()?;
        self.pgbench(
            database,
            &script,
            writers,
            self.settings.warmup_seconds,
            &defines,
        )?;
        self.checkpoint()?;
        let tps = self.pgbench(database, &script, writers, self.settings.seconds, &defines)?;
        self.drop_database(database)?;
        Ok(tps)
    }

    /// Warm-up and measurement of ebb's single writes in a fresh database:
    /// `writers` tasks sharing a pool of as many connections.
    fn ebb_writes(&self, writers: usize, categories: Categories) -> Result<f64, BoxError> {
        let database = "bench_ebb";
        self.fresh_database(database)?;
        let store = self.store(database, writers)?;
        let warmup = Duration::from_secs(self.settings.warmup_seconds);
        let measured = Duration::from_secs(self.settings.seconds);
        let entities = self.settings.entities;
        let rate = self.runtime.block_on(async {
            single_writes(&store, &self.payload, writers, categories, entities, warmup).await?;
            self.admin.batch_execute("CHECKPOINT").await?;
            single_writes(
                &store,
                &self.payload,
                writers,
                categories,
                entities,
                measured,
            )
            .await
        })?;
        drop(store);
        self.drop_database(database)?;
        Ok(rate.per_second())
    }

    /// The same writes as [`ebb_writes`](Self::ebb_writes) with bare
    /// tokio-postgres: one connection and one prepared statement per
    /// writer, no pool, no validation. A reference for ebb's own cost.
    fn driver_writes(&self, writers: usize, categories: Categories) -> Result<f64, BoxError> {
        let database = "bench_driver";
        self.fresh_database(database)?;
        let warmup = Duration::from_secs(self.settings.warmup_seconds);
        let measured = Duration::from_secs(self.settings.seconds);
        let entities = self.settings.entities;
        let config = self.cluster.config(database);
        let rate = self.runtime.block_on(async {
            let mut clients = Vec::new();
            for _ in 0..writers {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                let statement = client.prepare(DRIVER_WRITE).await?;
                clients.push((client, statement));
            }
            let clients = std::sync::Arc::new(clients);
            driver_single_writes(&clients, &self.payload, categories, entities, warmup).await?;
            self.admin.batch_execute("CHECKPOINT").await?;
            driver_single_writes(&clients, &self.payload, categories, entities, measured).await
        })?;
        self.drop_database(database)?;
        Ok(rate.per_second())
    }

    fn ebb_batch_writes(&self) -> Result<f64, BoxError> {
        let database = "bench_ebb_batch";
        self.fresh_database(database)?;
        let store = self.store(database, 1)?;
        let warmup = Duration::from_secs(self.settings.warmup_seconds);
        let measured = Duration::from_secs(self.settings.seconds);
        let rate = self.runtime.block_on(async {
            batch_writes(&store, &self.payload, &self.settings, warmup).await?;
            self.admin.batch_execute("CHECKPOINT").await?;
            batch_writes(&store, &self.payload, &self.settings, measured).await
        })?;
        drop(store);
        self.drop_database(database)?;
        Ok(rate.per_second())
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

    fn pgbench_reads(&self, database: &str) -> Result<f64, BoxError> {
        let batch = self.settings.batch_size;
        let last_start = self.settings.read_messages - batch as u64 + 1;
        let script = self.write_script(
            "read.sql",
            &format!(
                "\\set pos random(1, {last_start})\n\
                 SELECT * FROM message_store.get_category_messages('{READ_CATEGORY}', :pos, {batch});\n"
            ),
        )?;
        self.pgbench(database, &script, 1, self.settings.warmup_seconds, &[])?;
        let tps = self.pgbench(database, &script, 1, self.settings.read_seconds, &[])?;
        Ok(tps * batch as f64)
    }

    fn ebb_reads(&self, database: &str) -> Result<f64, BoxError> {
        let store = self.store(database, 1)?;
        let batch = self.settings.batch_size as i64;
        let warmup = Duration::from_secs(self.settings.warmup_seconds);
        let measured = Duration::from_secs(self.settings.read_seconds);
        let rate = self.runtime.block_on(async {
            category_reads(&store, batch, warmup).await?;
            category_reads(&store, batch, measured).await
        })?;
        Ok(rate.per_second())
    }
}

/// `writers` tasks writing one message per call until `duration` is up.
async fn single_writes(
    store: &PgStore,
    payload: &MessageData,
    writers: usize,
    categories: Categories,
    entities: u64,
    duration: Duration,
) -> Result<Rate, BoxError> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        let mut message = payload.clone();
        let category = categories.category(writer);
        let mut ids = Entities::new(writer as u64 + 1, entities);
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
    entities: u64,
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
        let mut ids = Entities::new(writer as u64 + 1, entities);
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
    duration: Duration,
) -> Result<Rate, BoxError> {
    let mut batch = vec![payload.clone(); settings.batch_size];
    let mut ids = Entities::new(99, settings.entities);
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
        (1, Categories::Shared, "1 writer, 1 category".to_owned()),
        (
            writers,
            Categories::Shared,
            format!("{writers} writers, 1 category"),
        ),
        (
            writers,
            Categories::PerWriter,
            format!("{writers} writers, 1 category each"),
        ),
    ];
    let mut single_one_writer = f64::NAN;
    for (index, (writers, categories, case)) in cases.iter().enumerate() {
        let case = format!("single writes, {case}");
        progress(&case);
        let mut pgbench = || bench.pgbench_writes(*writers, *categories);
        let mut ebb = || bench.ebb_writes(*writers, *categories);
        let mut driver = || bench.driver_writes(*writers, *categories);
        let mut sides: [Side<'_>; 3] = [
            ("pgbench", &mut pgbench),
            ("ebb", &mut ebb),
            ("tokio-postgres", &mut driver),
        ];
        // Who goes first alternates between cases.
        if index % 2 == 1 {
            sides.swap(0, 1);
        }
        let rates = interleaved(&case, settings.runs, &mut sides)?;
        let rate_of = |name: &str| {
            sides
                .iter()
                .zip(&rates)
                .find(|((side, _), _)| *side == name)
                .map_or(f64::NAN, |(_, rate)| *rate)
        };
        let (ebb, pgbench, driver) = (
            rate_of("ebb"),
            rate_of("pgbench"),
            rate_of("tokio-postgres"),
        );
        if index == 0 {
            single_one_writer = ebb;
        }
        rows.push(Row {
            case,
            ebb,
            baseline: pgbench,
            baseline_name: "pgbench",
            required: 0.9,
            driver: Some(driver),
        });
    }

    let case = format!("batch writes of {}, 1 writer", settings.batch_size);
    progress(&case);
    let mut batch_runs = Vec::new();
    for _ in 0..settings.runs {
        let rate = bench.ebb_batch_writes()?;
        progress(format!("  {case}: ebb {rate:.0} msg/s"));
        batch_runs.push(rate);
    }
    rows.push(Row {
        case,
        ebb: median(&mut batch_runs),
        baseline: single_one_writer,
        baseline_name: "ebb single",
        required: 3.0,
        driver: None,
    });

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
    progress(&case);
    let mut pgbench = || bench.pgbench_reads(read_database);
    let mut ebb = || bench.ebb_reads(read_database);
    let rates = interleaved(
        &case,
        settings.runs,
        &mut [("pgbench", &mut pgbench), ("ebb", &mut ebb)],
    )?;
    let (pgbench, ebb) = (rates[0], rates[1]);
    rows.push(Row {
        case,
        ebb,
        baseline: pgbench,
        baseline_name: "pgbench",
        required: 0.8,
        driver: None,
    });

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
        "each side measured {} times per case (interleaved A B C C B A ...; median), {}s per run ({}s for reads) \
         after {}s warm-up; fresh database per write run",
        settings.runs, settings.seconds, settings.read_seconds, settings.warmup_seconds
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
