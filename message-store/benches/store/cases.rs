//! The cases: ebb's single writes, batch writes and category reads, each prepared with the sides it is compared with.

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, StreamName,
};
use futures_util::TryStreamExt as _;
use tokio::runtime::Runtime;
use uuid::Uuid;

use ebb_bench::{BoxError, progress};

use ebb_bench::pgbench::CategoryRead;
use ebb_message_store::pg::operations::category_read_statement;

use crate::baselines::{DriverClients, Script, driver_clients, driver_single_writes};
use crate::settings::Settings;
use crate::workload::{Categories, Entities, READ_CATEGORY, READ_STREAMS, TYPE_NAME, json_text};
use crate::{Bench, Rate, connect, run_writers};

/// The runtime the writers of a case run on: one thread for one writer,
/// as pgbench runs one client on one thread (`-j 1`), and tokio's
/// multi-thread runtime (one worker per core) for several
/// (`EBB_BENCH_ONE_WRITER_RUNTIME` can put one writer on the latter too).
/// `PgStore`'s documentation says which runtime suits a component that
/// writes from one task.
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
struct Slices(Cell<u64>);

impl Slices {
    fn next(&self) -> u64 {
        let slice = self.0.get() + 1;
        self.0.set(slice);
        slice
    }
}

/// The three sides of a single-write case, each with its own fresh
/// database, warmed up and checkpointed once; then measured in slices,
/// interleaved, so that the machine's load falls on all sides alike. Each
/// side's database grows at the same pace.
pub(crate) struct WriteCase<'b> {
    /// The cluster and the settings.
    bench: &'b Bench,
    /// Concurrent writers on every side.
    writers: usize,
    /// Which categories the writers write to.
    categories: Categories,
    /// Where ebb's and bare tokio-postgres's writers run: the same runtime
    /// for both, so that the driver's figure isolates ebb's own cost.
    runtime: Runtime,
    /// ebb's side: a pool of one connection per writer.
    store: PgStore,
    /// ebb with group commit off, in the case of several writers in one
    /// category (the one group commit is for): ebb before it.
    ungrouped: Option<PgStore>,
    /// ebb at its defaults on a database without `ebb_write_messages`, as
    /// Message DB's own scripts install it, in the hot-category case: the
    /// store finds the function missing and writes one by one.
    without_function: Option<PgStore>,
    /// Bare tokio-postgres's side.
    driver: DriverClients,
    /// pgbench's side.
    script: Script,
    /// Seeds each slice's stream ids.
    slices: Slices,
}

impl<'b> WriteCase<'b> {
    const PGBENCH: &'static str = "bench_pgbench";
    const EBB: &'static str = "bench_ebb";
    const DRIVER: &'static str = "bench_driver";
    const UNGROUPED: &'static str = "bench_ebb_ungrouped";
    const WITHOUT_FUNCTION: &'static str = "bench_ebb_without_function";
    const DATABASES: [&'static str; 5] = [
        Self::PGBENCH,
        Self::EBB,
        Self::DRIVER,
        Self::UNGROUPED,
        Self::WITHOUT_FUNCTION,
    ];

    pub(crate) fn prepare(
        bench: &'b Bench,
        case: &str,
        writers: usize,
        categories: Categories,
    ) -> Result<Self, BoxError> {
        progress(format!("{case}: warming up"));
        bench.fresh_databases(&Self::DATABASES)?;
        let runtime = writers_runtime(&bench.settings, writers)?;
        let store = bench.store(Self::EBB, writers)?;
        // In one category: several writers share commits with group
        // commit on, and one alone must be no slower for it.
        let ungrouped = (categories == Categories::Shared)
            .then(|| bench.ungrouped_store(Self::UNGROUPED, writers))
            .transpose()?;
        let without_function = (writers > 1 && categories == Categories::Shared)
            .then(|| -> Result<PgStore, BoxError> {
                bench.drop_group_function(Self::WITHOUT_FUNCTION)?;
                bench.store(Self::WITHOUT_FUNCTION, writers)
            })
            .transpose()?;
        let driver =
            runtime.block_on(driver_clients(bench.cluster.config(Self::DRIVER), writers))?;
        let case = Self {
            bench,
            writers,
            categories,
            runtime,
            store,
            ungrouped,
            without_function,
            driver,
            script: Script::writes(bench, categories)?,
            slices: Slices::default(),
        };
        // The warm-up fills the pool, prepares the statements (pgbench's
        // are prepared again by every slice's new connection) and brings
        // the server's caches to the same state for all three.
        let warmup = bench.settings.warmup_seconds;
        case.pgbench(warmup)?;
        case.ebb(Duration::from_secs(warmup))?;
        case.driver(Duration::from_secs(warmup))?;
        if case.ungrouped.is_some() {
            case.ebb_ungrouped(Duration::from_secs(warmup))?;
        }
        if case.without_function.is_some() {
            case.ebb_without_function(Duration::from_secs(warmup))?;
        }
        bench.checkpoint()?;
        Ok(case)
    }

    /// Whether the case measures ebb with group commit off too.
    pub(crate) fn has_ungrouped(&self) -> bool {
        self.ungrouped.is_some()
    }

    pub(crate) fn pgbench(&self, seconds: u64) -> Result<f64, BoxError> {
        self.script
            .run(&self.bench.cluster, Self::PGBENCH, self.writers, seconds)
    }

    pub(crate) fn ebb(&self, duration: Duration) -> Result<f64, BoxError> {
        self.ebb_on(&self.store, duration)
    }

    /// ebb with group commit off (only in a case that has it).
    pub(crate) fn ebb_ungrouped(&self, duration: Duration) -> Result<f64, BoxError> {
        let store = self
            .ungrouped
            .as_ref()
            .ok_or("this case does not measure ebb with group commit off")?;
        self.ebb_on(store, duration)
    }

    /// Whether the case measures ebb on a database without
    /// `ebb_write_messages` too.
    pub(crate) fn has_without_function(&self) -> bool {
        self.without_function.is_some()
    }

    /// ebb on a database without `ebb_write_messages` (only in a case that
    /// has it).
    pub(crate) fn ebb_without_function(&self, duration: Duration) -> Result<f64, BoxError> {
        let store = self
            .without_function
            .as_ref()
            .ok_or("this case does not measure ebb without ebb_write_messages")?;
        self.ebb_on(store, duration)
    }

    fn ebb_on(&self, store: &PgStore, duration: Duration) -> Result<f64, BoxError> {
        let rate = self.runtime.block_on(single_writes(
            store,
            &self.bench.payload,
            self.writers,
            self.categories,
            self.slices.next(),
            self.bench.settings.entities,
            duration,
        ))?;
        Ok(rate.per_second())
    }

    pub(crate) fn driver(&self, duration: Duration) -> Result<f64, BoxError> {
        let rate = self.runtime.block_on(driver_single_writes(
            &self.driver,
            &self.bench.payload,
            self.categories,
            self.slices.next(),
            self.bench.settings.entities,
            duration,
        ))?;
        Ok(rate.per_second())
    }

    pub(crate) fn finish(self) -> Result<(), BoxError> {
        let bench = self.bench;
        drop(self.store);
        drop(self.ungrouped);
        drop(self.driver);
        drop(self.runtime);
        bench.drop_databases(&Self::DATABASES)
    }
}

/// ebb's batch writes against its own single writes (one writer each),
/// prepared and measured like a [`WriteCase`].
pub(crate) struct BatchCase<'b> {
    /// The cluster and the settings.
    bench: &'b Bench,
    /// The one-writer runtime both sides run on.
    runtime: Runtime,
    /// The baseline: single writes, into their own database.
    single: PgStore,
    /// Batch writes, into their own database.
    batch: PgStore,
    /// Seeds each slice's stream ids.
    slices: Slices,
}

impl<'b> BatchCase<'b> {
    const SINGLE: &'static str = "bench_ebb_single";
    const BATCH: &'static str = "bench_ebb_batch";
    const DATABASES: [&'static str; 2] = [Self::SINGLE, Self::BATCH];

    pub(crate) fn prepare(bench: &'b Bench, case: &str) -> Result<Self, BoxError> {
        progress(format!("{case}: warming up"));
        bench.fresh_databases(&Self::DATABASES)?;
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

    pub(crate) fn single(&self, duration: Duration) -> Result<f64, BoxError> {
        let rate = self.runtime.block_on(single_writes(
            &self.single,
            &self.bench.payload,
            1,
            Categories::Shared,
            self.slices.next(),
            self.bench.settings.entities,
            duration,
        ))?;
        Ok(rate.per_second())
    }

    pub(crate) fn batch(&self, duration: Duration) -> Result<f64, BoxError> {
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

    pub(crate) fn finish(self) -> Result<(), BoxError> {
        let bench = self.bench;
        drop(self.single);
        drop(self.batch);
        drop(self.runtime);
        bench.drop_databases(&Self::DATABASES)
    }
}

/// ebb's single writes (one writer) with unnamed statements
/// (`prepared_statements` off, as behind a transaction-pooling PgBouncer)
/// against the same with the statement cache, prepared and measured like a
/// [`WriteCase`].
pub(crate) struct StatementsCase<'b> {
    /// The cluster and the settings.
    bench: &'b Bench,
    /// The one-writer runtime both sides run on.
    runtime: Runtime,
    /// The baseline: statements prepared once per connection.
    prepared: PgStore,
    /// Unnamed statements.
    unnamed: PgStore,
    /// Seeds each slice's stream ids.
    slices: Slices,
}

impl<'b> StatementsCase<'b> {
    const PREPARED: &'static str = "bench_ebb_prepared";
    const UNNAMED: &'static str = "bench_ebb_unnamed";
    const DATABASES: [&'static str; 2] = [Self::PREPARED, Self::UNNAMED];

    pub(crate) fn prepare(bench: &'b Bench, case: &str) -> Result<Self, BoxError> {
        progress(format!("{case}: warming up"));
        bench.fresh_databases(&Self::DATABASES)?;
        let case = Self {
            bench,
            runtime: writers_runtime(&bench.settings, 1)?,
            prepared: bench.store(Self::PREPARED, 1)?,
            unnamed: bench.unnamed_store(Self::UNNAMED, 1)?,
            slices: Slices::default(),
        };
        let warmup = Duration::from_secs(bench.settings.warmup_seconds);
        case.prepared(warmup)?;
        case.unnamed(warmup)?;
        bench.checkpoint()?;
        Ok(case)
    }

    fn writes(&self, store: &PgStore, duration: Duration) -> Result<f64, BoxError> {
        let rate = self.runtime.block_on(single_writes(
            store,
            &self.bench.payload,
            1,
            Categories::Shared,
            self.slices.next(),
            self.bench.settings.entities,
            duration,
        ))?;
        Ok(rate.per_second())
    }

    pub(crate) fn prepared(&self, duration: Duration) -> Result<f64, BoxError> {
        self.writes(&self.prepared, duration)
    }

    pub(crate) fn unnamed(&self, duration: Duration) -> Result<f64, BoxError> {
        self.writes(&self.unnamed, duration)
    }

    pub(crate) fn finish(self) -> Result<(), BoxError> {
        let bench = self.bench;
        drop(self.prepared);
        drop(self.unnamed);
        drop(self.runtime);
        bench.drop_databases(&Self::DATABASES)
    }
}

/// ebb's category reads against pgbench's, all on one database loaded
/// once, each side warmed up once.
pub(crate) struct ReadCase<'b> {
    /// The cluster, the settings and the runtime ebb reads on.
    bench: &'b Bench,
    /// pgbench running the statement ebb sends.
    direct: Script,
    /// pgbench calling `get_category_messages`, as a user of Message DB.
    function: Script,
    /// ebb's side: one connection, as a single consumer has.
    store: PgStore,
    /// ebb with unnamed statements (`prepared_statements` off), measured
    /// against `store`.
    unnamed: PgStore,
}

impl<'b> ReadCase<'b> {
    const DATABASE: &'static str = "bench_read";

    pub(crate) fn prepare(bench: &'b Bench, case: &str) -> Result<Self, BoxError> {
        progress(format!(
            "loading {} messages into category {READ_CATEGORY} (not measured)",
            bench.settings.read_messages
        ));
        Self::load(bench)?;
        progress(format!("{case}: warming up"));
        let case = Self {
            bench,
            direct: Script::reads(bench, CategoryRead::Direct(category_read_statement()))?,
            function: Script::reads(bench, CategoryRead::Function)?,
            store: bench.store(Self::DATABASE, 1)?,
            unnamed: bench.unnamed_store(Self::DATABASE, 1)?,
        };
        let warmup = bench.settings.warmup_seconds;
        case.pgbench(warmup)?;
        case.pgbench_function(warmup)?;
        case.ebb(Duration::from_secs(warmup))?;
        case.ebb_unnamed(Duration::from_secs(warmup))?;
        Ok(case)
    }

    /// Fills the read database: `read_messages` messages with the same
    /// payload, spread round-robin over `READ_STREAMS` streams of one
    /// category. Inserted directly, in chunks, because loading is not what
    /// is measured; the rows are what `write_message` would have written.
    fn load(bench: &Bench) -> Result<(), BoxError> {
        bench.fresh_databases(&[Self::DATABASE])?;
        let total = bench.settings.read_messages;
        let (data, metadata) = json_text(&bench.payload)?;
        bench.runtime.block_on(async {
            let client = connect(&bench.cluster.config(Self::DATABASE)).await?;
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
        bench.checkpoint()
    }

    /// pgbench's messages per second running the statement ebb sends:
    /// one client, a batch per transaction.
    pub(crate) fn pgbench(&self, seconds: u64) -> Result<f64, BoxError> {
        let tps = self
            .direct
            .run(&self.bench.cluster, Self::DATABASE, 1, seconds)?;
        Ok(tps * self.bench.settings.batch_size as f64)
    }

    /// pgbench's messages per second calling `get_category_messages`.
    pub(crate) fn pgbench_function(&self, seconds: u64) -> Result<f64, BoxError> {
        let tps = self
            .function
            .run(&self.bench.cluster, Self::DATABASE, 1, seconds)?;
        Ok(tps * self.bench.settings.batch_size as f64)
    }

    pub(crate) fn ebb(&self, duration: Duration) -> Result<f64, BoxError> {
        let batch = self.bench.settings.batch_size as i64;
        let rate = self
            .bench
            .runtime
            .block_on(category_reads(&self.store, batch, duration))?;
        Ok(rate.per_second())
    }

    pub(crate) fn ebb_unnamed(&self, duration: Duration) -> Result<f64, BoxError> {
        let batch = self.bench.settings.batch_size as i64;
        let rate = self
            .bench
            .runtime
            .block_on(category_reads(&self.unnamed, batch, duration))?;
        Ok(rate.per_second())
    }
}

/// `writers` tasks writing one message per call until `duration` is up,
/// to streams drawn from `1..=entities` with slice `slice`'s generators.
async fn single_writes(
    store: &PgStore,
    payload: &MessageData,
    writers: usize,
    categories: Categories,
    slice: u64,
    entities: u64,
    duration: Duration,
) -> Result<Rate, BoxError> {
    run_writers(writers, duration, |writer, deadline| {
        let store = store.clone();
        let mut message = payload.clone();
        let category = categories.category(writer);
        let mut ids = Entities::for_writer(slice, writer, entities);
        async move {
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
        }
    })
    .await
}

/// One writer writing `batch_size` messages per `write_batch` call, each
/// batch to a random stream, until `duration` is up.
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
    Ok(Rate::since(started, messages))
}

/// Reads the category from the start with `read_category`, as a consumer
/// does (batch after batch; the store reads one batch ahead), starting over
/// at the end, until `duration` is up. The deadline is checked between
/// batches, so every batch fetched is counted. Every row is decoded into
/// a `Message` (its metadata parsed, its data kept as JSON text for
/// whoever knows its type) before it is counted.
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
    Ok(Rate::since(started, messages))
}
