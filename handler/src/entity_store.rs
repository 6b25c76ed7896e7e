//! The [`EntityStore`]: fetches an entity by projecting its stream's
//! events, from its cache or its latest snapshot when it has one.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use ebb_message_store::{
    ExpectedVersion, JsonText, MessageData, MessageStore, StreamName, StreamQuery,
};
use ebb_retry::Retry;
use futures_util::TryStreamExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Error;
use crate::cache::{Cache, Entry};
use crate::decide::{Events, Handled, Sequences};
use crate::entity::{Entity, Projection, Version};
use crate::message::{MessageType, Received};

/// The number of entities an entity store caches unless told otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The type of the messages snapshots are written as (Eventide's).
pub const SNAPSHOT_TYPE: &str = "Recorded";

/// The intervals, in milliseconds, after which
/// [`EntityStore::handle`] tries again on an expected-version conflict:
/// the ones Eventide's examples use.
pub const DEFAULT_CONFLICT_RETRY_MS: [u64; 3] = [10, 100, 1_000];

/// What [`EntityStore::handle`] logs (info) for a command the entity has
/// applied already.
pub const LOG_ALREADY_APPLIED: &str = "command applied already; re-delivery ignored";

/// A retry of expected-version conflicts after `intervals`.
fn conflict_retry(intervals: &[u64]) -> Retry {
    let longest = u64::try_from(ebb_retry::MAX_WAIT.as_millis()).unwrap_or(u64::MAX);
    let millis = intervals
        .iter()
        .map(|&ms| i64::try_from(ms.min(longest)).unwrap_or(i64::MAX));
    Retry::intervals_ms(millis)
        .rule(crate::retry::on_wrong_expected_version())
        .build()
        .expect("intervals within 0..=MAX_WAIT make a valid policy")
}

/// Fetches entities of type `E` from `S`.
///
/// [`fetch`](Self::fetch) starts from the cached entity if there is one,
/// else from the latest snapshot if snapshots are on, else from a new
/// entity, and applies the events written since. The cache (on by
/// default, [`DEFAULT_CACHE_CAPACITY`] entities) holds the entity and its
/// version, so a fetch of a cached entity reads only newer events: what it
/// returns is as current as a fetch from scratch. Its eviction rule: see
/// [`with_cache_capacity`](Self::with_cache_capacity).
///
/// Cheap to clone: clones share the cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::Error> {
/// use ebb_handler::{Entity, EntityStore, MessageType, Projection, Received, Version, Writer};
/// use ebb_message_store::{MemoryStore, StreamName};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Deposited { amount: i64 }
/// impl MessageType for Deposited { const TYPE_NAME: &'static str = "Deposited"; }
///
/// #[derive(Debug, Clone, Default)]
/// struct Account { balance: i64 }
/// impl Entity for Account {
///     const CATEGORY: &'static str = "account";
///     fn projection() -> Projection<Self> {
///         Projection::new().apply(|account: &mut Account, d: Received<Deposited>| account.balance += d.amount)
///     }
/// }
///
/// let store = MemoryStore::new();
/// let accounts = EntityStore::<Account, _>::new(store.clone());
/// let (account, version) = accounts.fetch("1").await?;
/// assert_eq!((account.balance, version), (0, Version::NoStream));
///
/// let writer = Writer::new(store);
/// writer.write(&StreamName::new("account", "1")?, Deposited { amount: 7 }, version).await?;
/// let (account, version) = accounts.fetch("1").await?;
/// assert_eq!((account.balance, version), (7, Version::At(0)));
/// # Ok(()) }
/// ```
pub struct EntityStore<E, S> {
    /// Where the events are.
    store: S,
    /// How events change the entity; made once.
    projection: Arc<Projection<E>>,
    /// `None` when caching is off.
    cache: Option<Arc<Cache<E>>>,
    /// `None` when snapshots are off.
    snapshots: Option<Snapshots<E>>,
    /// How [`handle`](Self::handle) retries an expected-version conflict.
    conflict_retry: Arc<Retry>,
}

/// When snapshots are written, and how an entity becomes one and back:
/// functions, because only entities that serde can (de)serialize have
/// snapshots, and the store of any other entity must not require it.
struct Snapshots<E> {
    /// A snapshot is written once the entity is this many versions past
    /// the last one.
    interval: i64,
    encode: fn(&E) -> Result<Value, serde_json::Error>,
    decode: fn(&str) -> Result<E, serde_json::Error>,
}

impl<E> Clone for Snapshots<E> {
    fn clone(&self) -> Self {
        Self {
            interval: self.interval,
            encode: self.encode,
            decode: self.decode,
        }
    }
}

impl<E, S: Clone> Clone for EntityStore<E, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            projection: Arc::clone(&self.projection),
            cache: self.cache.clone(),
            snapshots: self.snapshots.clone(),
            conflict_retry: Arc::clone(&self.conflict_retry),
        }
    }
}

impl<E, S: fmt::Debug> fmt::Debug for EntityStore<E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityStore")
            .field("store", &self.store)
            .field("projection", &self.projection)
            .field("cache", &self.cache.is_some())
            .field(
                "snapshot_interval",
                &self.snapshots.as_ref().map(|s| s.interval),
            )
            .finish()
    }
}

impl<E: Entity, S: MessageStore> EntityStore<E, S> {
    /// An entity store over `store`, caching up to
    /// [`DEFAULT_CACHE_CAPACITY`] entities, without snapshots.
    pub fn new(store: S) -> Self {
        Self {
            store,
            projection: Arc::new(E::projection()),
            cache: Some(Arc::new(Cache::new(DEFAULT_CACHE_CAPACITY))),
            snapshots: None,
            conflict_retry: Arc::new(conflict_retry(&DEFAULT_CONFLICT_RETRY_MS)),
        }
    }

    /// Retries [`handle`](Self::handle)'s expected-version conflicts after
    /// these intervals, in milliseconds (default
    /// [`DEFAULT_CONFLICT_RETRY_MS`]); none: a conflict is returned at once.
    #[must_use]
    pub fn with_conflict_retry_ms(mut self, intervals: &[u64]) -> Self {
        self.conflict_retry = Arc::new(conflict_retry(intervals));
        self
    }

    /// Caches up to `capacity` entities (0 turns the cache off).
    ///
    /// Eviction: the cache keeps two generations of `capacity / 2`
    /// entities. Fetches fill the current generation; when it is full it
    /// becomes the previous one and the one before it is dropped; an
    /// entity fetched from the previous generation moves to the current
    /// one. An entity therefore leaves the cache once about `capacity`
    /// other entities have been fetched since it was last fetched.
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| Arc::new(Cache::new(capacity)));
        self
    }

    /// The stream of entity `id`: `CATEGORY-id` (also
    /// [`Entity::stream_name`], which needs no store type).
    pub fn stream_name(id: &str) -> Result<StreamName, Error> {
        E::stream_name(id)
    }

    /// The stream of entity `id`'s snapshots (also
    /// [`Entity::snapshot_stream_name`]).
    pub fn snapshot_stream_name(id: &str) -> Result<StreamName, Error> {
        E::snapshot_stream_name(id)
    }

    /// Entity `id` and the version it is at: the position of the last
    /// message in its stream, or [`Version::NoStream`] (with a new
    /// entity) when there is none.
    pub async fn fetch(&self, id: &str) -> Result<(E, Version), Error> {
        let entry = self.fetch_entry(id).await?;
        Ok((entry.entity, entry.version))
    }

    /// Entity `id`, its version, and the commands it has applied (see
    /// [`Sequences`]).
    pub async fn fetch_with_sequences(&self, id: &str) -> Result<(E, Version, Sequences), Error> {
        let entry = self.fetch_entry(id).await?;
        Ok((entry.entity, entry.version, entry.sequences))
    }

    async fn fetch_entry(&self, id: &str) -> Result<Entry<E>, Error> {
        let stream = Self::stream_name(id)?;
        let start = match self.cache.as_ref().and_then(|cache| cache.get(id)) {
            Some(entry) => entry,
            None => self.start_from_snapshot(id).await?,
        };
        let Entry {
            mut entity,
            mut version,
            mut snapshot,
            mut sequences,
        } = start;
        let from = version;
        let mut events = self.store.read_stream(
            stream.as_str(),
            StreamQuery::new().position(version.next_position()),
        );
        while let Some(event) = events.try_next().await? {
            version = Version::At(event.position);
            sequences.record(&event);
            self.projection.apply_event(&mut entity, event)?;
        }
        drop(events);
        if let Some(snapshots) = &self.snapshots {
            let since = version.next_position() - snapshot.next_position();
            if since >= snapshots.interval {
                self.write_snapshot(id, &entity, version, &sequences, snapshots)
                    .await?;
                snapshot = version;
            }
        }
        let entry = Entry {
            entity,
            version,
            snapshot,
            sequences,
        };
        if let Some(cache) = &self.cache {
            cache.put(id, entry.clone());
        }
        tracing::trace!(
            category = E::CATEGORY,
            id,
            ?from,
            ?version,
            "fetched entity"
        );
        Ok(entry)
    }

    /// Eventide's command handler in one call, for the command `command`
    /// to entity `entity_id`:
    ///
    /// 1. the command must come from a stream whose id is `entity_id`
    ///    (else [`Error::WrongStream`], nothing written): the guard below
    ///    needs an entity's commands in one stream, in order;
    /// 2. the entity is fetched with its version and the commands it has
    ///    applied; one it has applied already (a re-delivery) is logged
    ///    (`command applied already; re-delivery ignored`, info) and
    ///    [`Handled::AlreadyApplied`] returned;
    /// 3. `decide` makes the events of the entity as it is (return
    ///    `Err(Error::rejected(..))` to refuse the command);
    /// 4. they are written to the entity's stream, together, each
    ///    following the command (causation metadata, which is what the
    ///    next fetch learns the command was applied from), expecting the
    ///    fetched version.
    ///
    /// On an expected-version conflict (another writer, such as the other
    /// instance of a hot-failover pair, appended first) it all runs again
    /// after [`DEFAULT_CONFLICT_RETRY_MS`] (see
    /// [`with_conflict_retry_ms`](Self::with_conflict_retry_ms)): the
    /// fresh fetch then finds the command applied, or decides anew.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::Error> {
    /// use ebb_handler::{Entity, EntityStore, Handled, Projection, Received, message, testing};
    /// use ebb_message_store::MemoryStore;
    ///
    /// #[message] struct Deposit { account_id: String, amount: i64 }
    /// #[message] struct Deposited { account_id: String, amount: i64 }
    ///
    /// #[derive(Debug, Clone, Default)]
    /// struct Account { balance: i64 }
    /// impl Entity for Account {
    ///     const CATEGORY: &'static str = "account";
    ///     fn projection() -> Projection<Self> {
    ///         Projection::new().apply(|a: &mut Account, d: Received<Deposited>| a.balance += d.amount)
    ///     }
    /// }
    ///
    /// let store = MemoryStore::new();
    /// let accounts = EntityStore::<Account, _>::new(store.clone());
    /// let deposit: Received<Deposit> = testing::send(
    ///     &store, "account:command-1", Deposit { account_id: "1".into(), amount: 5 },
    /// ).await?;
    /// let decide = |_: &Account| Ok(Deposited { account_id: deposit.account_id.clone(), amount: deposit.amount });
    /// let handled = accounts.handle(&deposit, &deposit.account_id, decide).await?;
    /// assert_eq!(handled, Handled::Written { position: 0 });
    /// // Delivered again: applied already.
    /// let again = accounts.handle(&deposit, &deposit.account_id, decide).await?;
    /// assert!(matches!(again, Handled::AlreadyApplied { .. }));
    /// assert_eq!(accounts.fetch("1").await?.0.balance, 5);
    /// # Ok(()) }
    /// ```
    pub async fn handle<C, D, R>(
        &self,
        command: &Received<C>,
        entity_id: &str,
        decide: D,
    ) -> Result<Handled, Error>
    where
        C: MessageType,
        D: Fn(&E) -> Result<R, Error>,
        R: Into<Events>,
    {
        let stream_name = command.stream_name();
        if ebb_message_store::stream_name::id(stream_name) != Some(entity_id) {
            return Err(Error::WrongStream {
                type_name: C::TYPE_NAME.to_owned(),
                stream_name: stream_name.to_owned(),
                position: command.position(),
                entity_id: entity_id.to_owned(),
            });
        }
        let sequence = command.global_position();
        let stream = Self::stream_name(entity_id)?;
        let handled = self
            .conflict_retry
            .run(|_cycle| async {
                let entry = self.fetch_entry(entity_id).await?;
                if entry.sequences.has_applied(stream_name, sequence) {
                    let category = ebb_message_store::stream_name::category(stream_name);
                    let applied = entry.sequences.applied(category).unwrap_or(sequence);
                    tracing::info!(sequence, applied, "{LOG_ALREADY_APPLIED}");
                    return Ok(Handled::AlreadyApplied { sequence, applied });
                }
                let mut events = decide(&entry.entity)?.into().into_message_data()?;
                if events.is_empty() {
                    return Ok(Handled::Nothing);
                }
                for event in &mut events {
                    if event.metadata.causation_message_global_position.is_none() {
                        event.metadata.follow(command.as_ref());
                    }
                }
                let expected = ExpectedVersion::from(entry.version);
                let position = match events.as_slice() {
                    [event] => self.store.write(&stream, event, expected).await?,
                    _ => self
                        .store
                        .write_batch(&stream, &events, expected)
                        .await?
                        .unwrap_or_default(),
                };
                Ok::<_, Error>(Handled::Written { position })
            })
            .await?;
        Ok(handled)
    }

    /// Where a fetch without a cached entity starts: the latest snapshot,
    /// or a new entity.
    async fn start_from_snapshot(&self, id: &str) -> Result<Entry<E>, Error> {
        let new = Entry {
            entity: E::default(),
            version: Version::NoStream,
            snapshot: Version::NoStream,
            sequences: Sequences::default(),
        };
        let Some(snapshots) = &self.snapshots else {
            return Ok(new);
        };
        let stream = Self::snapshot_stream_name(id)?;
        let Some(recorded) = self
            .store
            .get_last_stream_message(stream.as_str(), Some(SNAPSHOT_TYPE))
            .await?
        else {
            return Ok(new);
        };
        let snapshot: Snapshot = recorded.data()?;
        let entity = (snapshots.decode)(snapshot.entity_data.as_str()).map_err(|source| {
            ebb_message_store::Error::Deserialize {
                stream_name: recorded.stream_name.clone(),
                position: recorded.position,
                global_position: recorded.global_position,
                type_name: recorded.type_name.clone(),
                source,
            }
        })?;
        let version = Version::At(snapshot.entity_version);
        Ok(Entry {
            entity,
            version,
            snapshot: version,
            sequences: Sequences::from_json(snapshot.ebb_sequences.as_ref()),
        })
    }

    async fn write_snapshot(
        &self,
        id: &str,
        entity: &E,
        version: Version,
        sequences: &Sequences,
        snapshots: &Snapshots<E>,
    ) -> Result<(), Error> {
        let Some(position) = version.position() else {
            return Ok(());
        };
        let entity_data = (snapshots.encode)(entity).map_err(|source| Error::Serialize {
            type_name: SNAPSHOT_TYPE,
            source,
        })?;
        let recorded = MessageData::new(
            SNAPSHOT_TYPE,
            json!({
                "entityData": entity_data,
                "entityVersion": position,
                "time": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "ebbSequences": sequences.to_json(),
            }),
        );
        let stream = Self::snapshot_stream_name(id)?;
        self.store
            .write(&stream, &recorded, ebb_message_store::ExpectedVersion::Any)
            .await?;
        tracing::debug!(category = E::CATEGORY, id, position, "wrote snapshot");
        Ok(())
    }
}

impl<E, S> EntityStore<E, S>
where
    E: Entity + Serialize + DeserializeOwned,
    S: MessageStore,
{
    /// Writes a snapshot of an entity to `CATEGORY:snapshot-ID` whenever a
    /// fetch finds it `interval` or more versions past its last snapshot,
    /// and starts a fetch of an entity not in the cache from its latest
    /// snapshot. Snapshots are messages of type `Recorded` with data
    /// `{"entityData": .., "entityVersion": N, "time": ..}`, as Eventide's
    /// entity snapshots are. An interval below 1 turns snapshots off.
    #[must_use]
    pub fn with_snapshots(mut self, interval: i64) -> Self {
        self.snapshots = (interval >= 1).then_some(Snapshots {
            interval,
            encode: |entity| serde_json::to_value(entity),
            decode: |text| serde_json::from_str(text),
        });
        self
    }
}

/// The data of a snapshot message; the entity stays text until it is
/// decoded into its type.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    entity_data: JsonText,
    entity_version: i64,
    /// ebb's addition to Eventide's snapshot: the commands applied (see
    /// [`Sequences`]); absent from snapshots written by other tools.
    #[serde(default)]
    ebb_sequences: Option<Value>,
}
