//! The fetch case: one account with many events, fetched cold, from the
//! cache and from a snapshot; and, for reference, the store's reads that
//! the cold and the cached fetch come down to.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ebb_handler::entity_store::SNAPSHOT_TYPE;
use ebb_handler::{EntityStore, Version, Writer};
use ebb_message_store::{ExpectedVersion, Message, MessageStore, PgStore, StreamQuery};
use futures_util::TryStreamExt as _;

use ebb_bench::{BoxError, Rounds, interleaved, progress};

use crate::Bench;
use crate::workload::{Account, amount, deposited};

/// The account every side fetches.
const ACCOUNT: &str = "fetched";

/// Events per `write_batch` call while loading (not measured).
const LOAD_BATCH: u64 = 1000;

/// The sides of the fetch case, by the names their rounds carry:
/// cache off, no snapshots (every event read and applied); the entity
/// cached at its last version (one read finding nothing); cache off, a
/// snapshot at the last version (the snapshot read, then one read finding
/// nothing); and the store's own reads the cold and the cached fetch come
/// down to (`read_stream` of every event, each decoded into a `Message`
/// and nothing more; and from the position after the last event).
pub(crate) const COLD: &str = "cold";
pub(crate) const CACHED: &str = "cached";
pub(crate) const SNAPSHOT: &str = "snapshot";
pub(crate) const READ_ALL: &str = "store read, all";
pub(crate) const READ_NONE: &str = "store read, none";

/// The three entity stores, and the store under them, over one database
/// holding the account.
pub(crate) struct FetchCase<'b> {
    /// The runtime and the settings.
    bench: &'b Bench,
    /// The store the loading, the snapshot check and the reference reads
    /// use; the entity stores are over clones of it (one pool).
    store: PgStore,
    cold: EntityStore<Account, PgStore>,
    cached: EntityStore<Account, PgStore>,
    snapshot: EntityStore<Account, PgStore>,
    /// What every fetch must return: the account with every event applied.
    expected: (Account, Version),
}

impl<'b> FetchCase<'b> {
    const DATABASE: &'static str = "bench_fetch";

    pub(crate) fn prepare(bench: &'b Bench) -> Result<Self, BoxError> {
        let events = bench.settings.events;
        progress(format!(
            "fetch: loading {events} Deposited events into account-{ACCOUNT} (not measured)"
        ));
        bench.fresh_database(Self::DATABASE)?;
        // One store, one connection, for all sides: they take turns.
        let store = bench.store(Self::DATABASE)?;
        let interval = i64::try_from(events)?;
        let case = Self {
            bench,
            cold: EntityStore::new(store.clone()).with_cache_capacity(0),
            cached: EntityStore::new(store.clone()),
            snapshot: EntityStore::new(store.clone())
                .with_cache_capacity(0)
                .with_snapshots(interval),
            store,
            expected: expected(interval),
        };
        bench.runtime.block_on(case.load())?;
        bench.checkpoint()?;

        progress("fetch: warming up");
        let warmup = Duration::from_secs(bench.settings.warmup_seconds);
        for side in [&case.cold, &case.cached, &case.snapshot] {
            case.fetches(side, warmup)?;
        }
        case.reads(0, warmup)?;
        case.reads(case.expected.1.next_position(), warmup)?;
        Ok(case)
    }

    /// Writes the events, then has the snapshotting entity store write the
    /// snapshot at the last version (its interval is the number of events,
    /// so it writes exactly one and no fetch after it writes another).
    async fn load(&self) -> Result<(), BoxError> {
        let writer = Writer::new(self.store.clone());
        let stream = EntityStore::<Account, PgStore>::stream_name(ACCOUNT)?;
        let events = self.bench.settings.events;
        let mut n = 0;
        while n < events {
            let end = (n + LOAD_BATCH).min(events);
            let batch = (n..end).map(|n| deposited(ACCOUNT, n as i64));
            writer
                .write_batch(&stream, batch, ExpectedVersion::Any)
                .await?;
            n = end;
        }
        let fetched = self.snapshot.fetch(ACCOUNT).await?;
        self.check(&fetched)?;
        self.check_one_snapshot().await
    }

    /// The snapshot stream holds one snapshot, at the last version.
    async fn check_one_snapshot(&self) -> Result<(), BoxError> {
        let stream = EntityStore::<Account, PgStore>::snapshot_stream_name(ACCOUNT)?;
        let recorded = self
            .store
            .get_last_stream_message(stream.as_str(), Some(SNAPSHOT_TYPE))
            .await?
            .ok_or("no snapshot was written")?;
        let at = recorded.data.to_value()?["entityVersion"].as_i64();
        if recorded.position != 0 || at != self.expected.1.position() {
            return Err(format!(
                "expected one snapshot at {:?}; found snapshot {} at {at:?}",
                self.expected.1, recorded.position
            )
            .into());
        }
        Ok(())
    }

    fn check(&self, fetched: &(Account, Version)) -> Result<(), BoxError> {
        if *fetched != self.expected {
            return Err(format!("fetched {fetched:?}, expected {:?}", self.expected).into());
        }
        Ok(())
    }

    /// Fetches with `side` until `duration` is up; fetches per second.
    fn fetches(
        &self,
        side: &EntityStore<Account, PgStore>,
        duration: Duration,
    ) -> Result<f64, BoxError> {
        self.bench.runtime.block_on(async {
            let started = Instant::now();
            let deadline = started + duration;
            let mut fetches = 0u64;
            while Instant::now() < deadline {
                let fetched = side.fetch(ACCOUNT).await?;
                // Next to nothing beside a fetch, and it proves that every
                // fetch of every side returned the whole account.
                self.check(black_box(&fetched))?;
                fetches += 1;
            }
            Ok(fetches as f64 / started.elapsed().as_secs_f64())
        })
    }

    /// Reads the account's stream from `from` with the store alone until
    /// `duration` is up, as a fetch reads it (`read_stream`, the default
    /// batch size); reads per second.
    fn reads(&self, from: i64, duration: Duration) -> Result<f64, BoxError> {
        let stream = EntityStore::<Account, PgStore>::stream_name(ACCOUNT)?;
        let expected = self.expected.1.next_position() - from;
        self.bench.runtime.block_on(async {
            let started = Instant::now();
            let deadline = started + duration;
            let mut reads = 0u64;
            while Instant::now() < deadline {
                let query = StreamQuery::new().position(from);
                let events: Vec<Message> = self
                    .store
                    .read_stream(stream.as_str(), query)
                    .try_collect()
                    .await?;
                if black_box(&events).len() as i64 != expected {
                    return Err(format!("read {} events, expected {expected}", events.len()).into());
                }
                reads += 1;
            }
            Ok(reads as f64 / started.elapsed().as_secs_f64())
        })
    }

    /// Every side's fetches (or reads) per second, round by round.
    pub(crate) fn measure(&self) -> Result<Rounds, BoxError> {
        let slice = Duration::from_secs(self.bench.settings.seconds);
        let case = format!("fetch of {} events", self.bench.settings.events);
        let mut cold = || self.fetches(&self.cold, slice);
        let mut cached = || self.fetches(&self.cached, slice);
        let mut snapshot = || self.fetches(&self.snapshot, slice);
        let mut read_all = || self.reads(0, slice);
        let after_last = self.expected.1.next_position();
        let mut read_none = || self.reads(after_last, slice);
        let rounds = interleaved(
            &case,
            self.bench.settings.runs,
            "fetches/s",
            &mut [
                (COLD, &mut cold as &mut dyn FnMut() -> _),
                (CACHED, &mut cached),
                (SNAPSHOT, &mut snapshot),
                (READ_ALL, &mut read_all),
                (READ_NONE, &mut read_none),
            ],
        )?;
        // Each side ends as it started: the entity is whole, and the
        // snapshot side read the one snapshot and wrote none.
        self.bench.runtime.block_on(async {
            for side in [&self.cold, &self.cached, &self.snapshot] {
                self.check(&side.fetch(ACCOUNT).await?)?;
            }
            self.check_one_snapshot().await
        })?;
        Ok(rounds)
    }
}

/// The account after events 0 to `events - 1`, at the last one's version.
fn expected(events: i64) -> (Account, Version) {
    let account = Account {
        balance: (0..events).map(amount).sum(),
        sequence: Some(events),
    };
    (account, Version::At(events - 1))
}
