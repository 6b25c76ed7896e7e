//! The entity store on the in-memory store: fetches from scratch, from the
//! cache (reading only newer events) and from snapshots agree, for any
//! sequence of events.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_handler::{Entity, EntityStore, MessageType, Projection, Received, Version, Writer};
use ebb_message_store::{
    CategoryQuery, Error as StoreError, ExpectedVersion, MemoryStore, Message, MessageData,
    MessageStore, StreamName, StreamQuery,
};
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deposited {
    amount: i64,
    sequence: i64,
}
impl MessageType for Deposited {
    const TYPE_NAME: &'static str = "Deposited";
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Withdrawn {
    amount: i64,
    sequence: i64,
}
impl MessageType for Withdrawn {
    const TYPE_NAME: &'static str = "Withdrawn";
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    balance: i64,
    sequence: Option<i64>,
    events: u32,
}

impl Entity for Account {
    const CATEGORY: &'static str = "account";

    fn projection() -> Projection<Self> {
        Projection::new()
            .apply(|account: &mut Account, deposited: Received<Deposited>| {
                account.balance += deposited.amount;
                account.sequence = Some(deposited.sequence);
                account.events += 1;
            })
            .apply(|account: &mut Account, withdrawn: Received<Withdrawn>| {
                account.balance -= withdrawn.amount;
                account.sequence = Some(withdrawn.sequence);
                account.events += 1;
            })
    }
}

/// A store that counts the messages its stream reads return.
#[derive(Debug, Clone, Default)]
struct Counting {
    inner: MemoryStore,
    read: Arc<AtomicUsize>,
}

impl Counting {
    fn take_read(&self) -> usize {
        self.read.swap(0, Ordering::SeqCst)
    }
}

impl MessageStore for Counting {
    async fn write(
        &self,
        stream_name: &StreamName,
        message: &MessageData,
        expected_version: ExpectedVersion,
    ) -> Result<i64, StoreError> {
        self.inner
            .write(stream_name, message, expected_version)
            .await
    }

    async fn write_batch(
        &self,
        stream_name: &StreamName,
        messages: &[MessageData],
        expected_version: ExpectedVersion,
    ) -> Result<Option<i64>, StoreError> {
        self.inner
            .write_batch(stream_name, messages, expected_version)
            .await
    }

    async fn get_stream_messages(
        &self,
        stream_name: &str,
        query: &StreamQuery,
    ) -> Result<Vec<Message>, StoreError> {
        let messages = self.inner.get_stream_messages(stream_name, query).await?;
        if !stream_name.contains(":snapshot") {
            self.read.fetch_add(messages.len(), Ordering::SeqCst);
        }
        Ok(messages)
    }

    async fn get_category_messages(
        &self,
        category: &str,
        query: &CategoryQuery,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.get_category_messages(category, query).await
    }

    async fn get_last_stream_message(
        &self,
        stream_name: &str,
        type_name: Option<&str>,
    ) -> Result<Option<Message>, StoreError> {
        self.inner
            .get_last_stream_message(stream_name, type_name)
            .await
    }

    async fn stream_version(&self, stream_name: &str) -> Result<Option<i64>, StoreError> {
        self.inner.stream_version(stream_name).await
    }

    async fn category_head(&self, category: &str) -> Result<Option<i64>, StoreError> {
        self.inner.category_head(category).await
    }
}

fn stream(id: &str) -> StreamName {
    StreamName::new("account", id).unwrap()
}

async fn deposit(writer: &Writer<Counting>, id: &str, amount: i64) {
    writer
        .write(
            &stream(id),
            Deposited {
                amount,
                sequence: amount,
            },
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cached_fetch_reads_only_newer_events() {
    let store = Counting::default();
    let writer = Writer::new(store.clone());
    let accounts = EntityStore::<Account, _>::new(store.clone());

    let (account, version) = accounts.fetch("1").await.unwrap();
    assert_eq!((account, version), (Account::default(), Version::NoStream));

    for amount in 1..=5 {
        deposit(&writer, "1", amount).await;
    }
    let (account, version) = accounts.fetch("1").await.unwrap();
    assert_eq!((account.balance, version), (15, Version::At(4)));
    assert_eq!(store.take_read(), 5);

    let (again, version) = accounts.fetch("1").await.unwrap();
    assert_eq!((again.balance, version), (15, Version::At(4)));
    assert_eq!(store.take_read(), 0, "nothing new, nothing read");

    deposit(&writer, "1", 10).await;
    deposit(&writer, "1", 20).await;
    let (account, version) = accounts.fetch("1").await.unwrap();
    assert_eq!((account.balance, version), (45, Version::At(6)));
    assert_eq!(store.take_read(), 2, "only the two new events");

    let uncached = EntityStore::<Account, _>::new(store.clone()).with_cache_capacity(0);
    assert_eq!(uncached.fetch("1").await.unwrap(), (account, version));
    assert_eq!(store.take_read(), 7);
}

#[tokio::test]
async fn snapshots_are_written_every_interval_and_fetched_from() {
    let store = Counting::default();
    let writer = Writer::new(store.clone());
    let accounts = EntityStore::<Account, _>::new(store.clone()).with_snapshots(3);
    for amount in 1..=7 {
        deposit(&writer, "1", amount).await;
    }
    let (account, version) = accounts.fetch("1").await.unwrap();
    assert_eq!(version, Version::At(6));

    let snapshots = store.inner.stream_messages("account:snapshot-1");
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].type_name, "Recorded");
    assert_eq!(
        snapshots[0].data.to_value().unwrap()["entityVersion"],
        json!(6)
    );
    assert_eq!(
        snapshots[0].data.to_value().unwrap()["entityData"]["balance"],
        json!(28)
    );

    // Not yet three versions past the snapshot: no new one.
    deposit(&writer, "1", 100).await;
    accounts.fetch("1").await.unwrap();
    assert_eq!(store.inner.stream_messages("account:snapshot-1").len(), 1);

    // A store with an empty cache starts from the snapshot.
    store.take_read();
    let fresh = EntityStore::<Account, _>::new(store.clone()).with_snapshots(3);
    let (fetched, version) = fresh.fetch("1").await.unwrap();
    assert_eq!(version, Version::At(7));
    assert_eq!(fetched.balance, account.balance + 100);
    assert_eq!(store.take_read(), 1, "only the event after the snapshot");
}

#[tokio::test]
async fn an_event_that_does_not_decode_is_an_error() {
    let store = Counting::default();
    store
        .write(
            &stream("1"),
            &MessageData::new("Deposited", json!({ "amount": "ten" })),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let err = EntityStore::<Account, _>::new(store)
        .fetch("1")
        .await
        .unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert!(err.to_string().contains("position 0 of account-1"), "{err}");
}

/// An event of the stream, as the property test generates it.
#[derive(Debug, Clone)]
enum Event {
    Deposited(i64),
    Withdrawn(i64),
    /// A type the projection does not apply: it only moves the version.
    Noted,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (1i64..1_000).prop_map(Event::Deposited),
        (1i64..1_000).prop_map(Event::Withdrawn),
        Just(Event::Noted),
    ]
}

async fn append(store: &Counting, event: &Event, sequence: i64) {
    let writer = Writer::new(store.clone());
    let result = match event {
        Event::Deposited(amount) => {
            writer
                .write(
                    &stream("p"),
                    Deposited {
                        amount: *amount,
                        sequence,
                    },
                    ExpectedVersion::Any,
                )
                .await
        }
        Event::Withdrawn(amount) => {
            writer
                .write(
                    &stream("p"),
                    Withdrawn {
                        amount: *amount,
                        sequence,
                    },
                    ExpectedVersion::Any,
                )
                .await
        }
        Event::Noted => {
            writer
                .write(
                    &stream("p"),
                    MessageData::new("Noted", json!({})),
                    ExpectedVersion::Any,
                )
                .await
        }
    };
    result.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any events, fetched at any points along the way: a fetch from
    /// scratch, one from the cache and one from snapshots (with and
    /// without the cache) give the same entity and version.
    #[test]
    fn cold_cached_and_snapshotted_fetches_agree(
        events in prop::collection::vec((event(), any::<bool>()), 0..40),
        interval in 1i64..6,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let store = Counting::default();
            let cached = EntityStore::<Account, _>::new(store.clone());
            let snapshotted = EntityStore::<Account, _>::new(store.clone())
                .with_cache_capacity(0)
                .with_snapshots(interval);
            let both = EntityStore::<Account, _>::new(store.clone()).with_snapshots(interval);
            for (sequence, (event, fetch_now)) in events.iter().enumerate() {
                append(&store, event, sequence as i64).await;
                if !*fetch_now {
                    continue;
                }
                let cold = EntityStore::<Account, _>::new(store.clone())
                    .with_cache_capacity(0)
                    .fetch("p")
                    .await
                    .unwrap();
                prop_assert_eq!(&cached.fetch("p").await.unwrap(), &cold);
                prop_assert_eq!(&snapshotted.fetch("p").await.unwrap(), &cold);
                prop_assert_eq!(&both.fetch("p").await.unwrap(), &cold);
                prop_assert_eq!(cold.1, Version::At(sequence as i64));
            }
            Ok(())
        })?;
    }
}
