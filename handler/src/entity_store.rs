//! The [`EntityStore`]: fetches an entity by projecting its stream's
//! events, from its cache or its latest snapshot when it has one.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use ebb_message_store::{JsonText, MessageData, MessageStore, StreamName, StreamQuery};
use futures_util::TryStreamExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Error;
use crate::cache::{Cache, Entry};
use crate::entity::{Entity, Projection, Version};

/// The number of entities an entity store caches unless told otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The type of the messages snapshots are written as (Eventide's).
pub const SNAPSHOT_TYPE: &str = "Recorded";

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
        }
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

    /// The stream of entity `id`: `CATEGORY-id`.
    pub fn stream_name(id: &str) -> Result<StreamName, Error> {
        Ok(StreamName::new(E::CATEGORY, id)?)
    }

    /// The stream of entity `id`'s snapshots: `CATEGORY:snapshot-id` (or
    /// `CATEGORY+snapshot-id` when the category already has types).
    pub fn snapshot_stream_name(id: &str) -> Result<StreamName, Error> {
        let separator = if E::CATEGORY.contains(':') { '+' } else { ':' };
        Ok(StreamName::parse(format!(
            "{}{separator}snapshot-{id}",
            E::CATEGORY
        ))?)
    }

    /// Entity `id` and the version it is at: the position of the last
    /// message in its stream, or [`Version::NoStream`] (with a new
    /// entity) when there is none.
    pub async fn fetch(&self, id: &str) -> Result<(E, Version), Error> {
        let stream = Self::stream_name(id)?;
        let start = match self.cache.as_ref().and_then(|cache| cache.get(id)) {
            Some(entry) => entry,
            None => self.start_from_snapshot(id).await?,
        };
        let Entry {
            mut entity,
            mut version,
            mut snapshot,
        } = start;
        let from = version;
        let mut events = self.store.read_stream(
            stream.as_str(),
            StreamQuery::new().position(version.next_position()),
        );
        while let Some(event) = events.try_next().await? {
            version = Version::At(event.position);
            self.projection.apply_event(&mut entity, event)?;
        }
        drop(events);
        if let Some(snapshots) = &self.snapshots {
            let since = version.next_position() - snapshot.next_position();
            if since >= snapshots.interval {
                self.write_snapshot(id, &entity, version, snapshots).await?;
                snapshot = version;
            }
        }
        if let Some(cache) = &self.cache {
            cache.put(
                id,
                Entry {
                    entity: entity.clone(),
                    version,
                    snapshot,
                },
            );
        }
        tracing::trace!(
            category = E::CATEGORY,
            id,
            ?from,
            ?version,
            "fetched entity"
        );
        Ok((entity, version))
    }

    /// Where a fetch without a cached entity starts: the latest snapshot,
    /// or a new entity.
    async fn start_from_snapshot(&self, id: &str) -> Result<Entry<E>, Error> {
        let new = Entry {
            entity: E::default(),
            version: Version::NoStream,
            snapshot: Version::NoStream,
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
        })
    }

    async fn write_snapshot(
        &self,
        id: &str,
        entity: &E,
        version: Version,
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
}
