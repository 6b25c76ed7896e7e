//! The settings of a run: environment variables, all optional, each with its default.
//!
//! Read by the shared harness (`ebb_bench::env`): numbers may be written
//! with `_` between digits (`EBB_BENCH_READ_MESSAGES=1_000_000`); an empty
//! variable counts as unset.

use ebb_bench::{BoxError, env};

/// `EBB_BENCH_ONE_WRITER_RUNTIME`'s values, also the report's names.
const CURRENT_THREAD: &str = "current-thread";
const MULTI_THREAD: &str = "multi-thread";

/// The sizes of a run and the cases to run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `EBB_BENCH_SECONDS`, default 2: measured seconds of one slice. Short
    /// slices let many of them, interleaved, fit into a run.
    pub(crate) seconds: u64,
    /// `EBB_BENCH_WARMUP_SECONDS`, default 2: warm-up seconds per side at
    /// the start of each case. pgbench's `-T` takes whole seconds, so every
    /// duration is in whole seconds.
    pub(crate) warmup_seconds: u64,
    /// `EBB_BENCH_READ_SECONDS`, default `EBB_BENCH_SECONDS`: measured
    /// seconds of one read slice.
    pub(crate) read_seconds: u64,
    /// `EBB_BENCH_RUNS`, default 11: slices per side per case; each side's
    /// figure is the median, so one disturbed slice does not decide.
    pub(crate) runs: usize,
    /// `EBB_BENCH_READ_MESSAGES`, default 1,000,000: messages loaded into
    /// the read category; a whole number of batches.
    pub(crate) read_messages: u64,
    /// `EBB_BENCH_WRITERS`, default 8: writers in the multi-writer cases
    /// (pgbench `-c`/`-j`, ebb tasks and pool size, bare tokio-postgres
    /// connections).
    pub(crate) writers: usize,
    /// `EBB_BENCH_ENTITIES`, default 100,000: stream ids are drawn from
    /// `1..=entities`, so streams are many and short, as entity streams are.
    pub(crate) entities: u64,
    /// `EBB_BENCH_BATCH_SIZE`, default 1,000: messages per `write_batch`
    /// call and per category read.
    pub(crate) batch_size: usize,
    /// `EBB_BENCH_CASES`, default all: a comma-separated subset of
    /// `writes-1`, `writes-n`, `writes-n-each`, `batch`, `reads` and `unnamed`, to run
    /// some cases without waiting for the others.
    pub(crate) cases: Vec<Case>,
    /// `EBB_BENCH_ONE_WRITER_RUNTIME`, default `current-thread`, or
    /// `multi-thread`: the runtime of the one-writer cases. A current-thread
    /// runtime matches pgbench's one client on one thread (`-j 1`); the
    /// other shows what that choice is worth.
    pub(crate) one_writer_multi_thread: bool,
    /// `EBB_BENCH_DURABLE`: 1 runs every case on a durable cluster
    /// (`fsync`, `synchronous_commit` and `full_page_writes` on, the
    /// machine's disk), where a write's commit waits for its WAL flush, as
    /// in production; 0 runs every case with all three off, measuring CPU
    /// and round trips. Unset (the default), the single-write cases run
    /// durable, since what they compare is how writes share commits, and
    /// the others do not. Rows say which in `durable`.
    pub(crate) durable: Option<bool>,
}

/// The cases of a run, as `EBB_BENCH_CASES` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// Single writes, 1 writer, one category.
    WritesOne,
    /// Single writes, N writers, one category.
    WritesShared,
    /// Single writes, N writers, a category each.
    WritesEach,
    /// Batch writes against ebb's own single writes.
    Batch,
    /// Category reads.
    Reads,
    /// Single writes with unnamed statements against prepared ones.
    Unnamed,
}

impl Case {
    /// The single-write cases: 1 writer, N in one category, N in a
    /// category each.
    pub(crate) fn is_single_writes(self) -> bool {
        matches!(
            self,
            Case::WritesOne | Case::WritesShared | Case::WritesEach
        )
    }

    /// The name `EBB_BENCH_CASES` knows the case by.
    pub(crate) fn name(self) -> &'static str {
        Case::ALL
            .iter()
            .find(|(_, case)| *case == self)
            .map_or("", |(name, _)| *name)
    }

    pub(crate) const ALL: [(&'static str, Case); 6] = [
        ("writes-1", Case::WritesOne),
        ("writes-n", Case::WritesShared),
        ("writes-n-each", Case::WritesEach),
        ("batch", Case::Batch),
        ("reads", Case::Reads),
        ("unnamed", Case::Unnamed),
    ];
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let seconds = env::or("EBB_BENCH_SECONDS", 2)?;
        let settings = Settings {
            seconds,
            warmup_seconds: env::or("EBB_BENCH_WARMUP_SECONDS", 2)?,
            read_seconds: env::or("EBB_BENCH_READ_SECONDS", seconds)?,
            runs: env::or("EBB_BENCH_RUNS", 11)?,
            read_messages: env::or("EBB_BENCH_READ_MESSAGES", 1_000_000)?,
            writers: env::or("EBB_BENCH_WRITERS", 8)?,
            entities: env::or("EBB_BENCH_ENTITIES", 100_000)?,
            batch_size: env::or("EBB_BENCH_BATCH_SIZE", 1000)?,
            cases: env::list("EBB_BENCH_CASES", &Case::ALL)?,
            one_writer_multi_thread: env::choice(
                "EBB_BENCH_ONE_WRITER_RUNTIME",
                &[(CURRENT_THREAD, false), (MULTI_THREAD, true)],
            )?,
            durable: match env::text("EBB_BENCH_DURABLE") {
                None => None,
                Some(_) => Some(env::flag("EBB_BENCH_DURABLE", false)?),
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
        if settings.read_messages < settings.batch_size as u64
            || settings.read_messages % settings.batch_size as u64 != 0
        {
            return Err(
                "EBB_BENCH_READ_MESSAGES must be a whole number of batches (EBB_BENCH_BATCH_SIZE)"
                    .into(),
            );
        }
        Ok(settings)
    }

    /// Whether `case` runs on a durable cluster (`EBB_BENCH_DURABLE`).
    pub(crate) fn durable(&self, case: Case) -> bool {
        self.durable.unwrap_or(case.is_single_writes())
    }

    /// Whether this process's cluster is durable: it runs one case, or
    /// several that agree.
    pub(crate) fn cluster_durable(&self) -> bool {
        self.cases.iter().any(|case| self.durable(*case))
    }

    /// The runtime of the one-writer cases, as `EBB_BENCH_ONE_WRITER_RUNTIME`
    /// names it.
    pub(crate) fn one_writer_runtime(&self) -> &'static str {
        if self.one_writer_multi_thread {
            MULTI_THREAD
        } else {
            CURRENT_THREAD
        }
    }
}
