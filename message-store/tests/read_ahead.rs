//! `PgStore` reads streams and categories one batch ahead; these tests pin
//! down what that must not change: order, where a read ends, and that a
//! reader which writes with the same store between messages never waits on
//! the connection the read-ahead is using.
//!
//! Runs on `ebb_localpg::TestDatabases::shared()` (a private cluster, or
//! `DATABASE_URL`'s server), one fresh database per test.

use std::time::Duration;

use ebb_localpg::{TestDatabase, TestDatabases};
use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig, StreamName,
    StreamQuery, schema,
};
use futures_util::TryStreamExt as _;
use serde_json::json;

async fn store(max_connections: usize) -> (PgStore, TestDatabase) {
    let databases = TestDatabases::shared().expect("a PostgreSQL server for the tests");
    let hash = ebb_message_store::hash_64(&schema::install_script());
    let db = databases
        .fresh_database(
            &format!("ebb_schema_{:016x}", hash as u64),
            |config| async move {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                schema::install(&client).await?;
                Ok(())
            },
        )
        .await
        .expect("a fresh test database");
    let store = PgStore::new(PgStoreConfig {
        max_connections,
        ..PgStoreConfig::new(db.config())
    })
    .expect("a store");
    (store, db)
}

async fn write(store: &PgStore, stream: &str, n: i64) {
    let stream = StreamName::parse(stream).unwrap();
    store
        .write(
            &stream,
            &MessageData::new("Numbered", json!({ "n": n })),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_writes_between_messages_shares_a_pool_of_one() {
    let (store, _db) = store(1).await;
    for n in 0..10 {
        write(&store, &format!("thing-{}", n % 3), n).await;
    }
    let read = async {
        let mut seen = Vec::new();
        let mut messages = store.read_category("thing", CategoryQuery::new().batch_size(3));
        while let Some(message) = messages.try_next().await? {
            // A handler writing its event: needs the pool's only
            // connection while the next batch may be in flight.
            write(
                &store,
                "handled-1",
                message.data.to_value().unwrap()["n"].as_i64().unwrap(),
            )
            .await;
            seen.push(message.data.to_value().unwrap()["n"].as_i64().unwrap());
        }
        Ok::<_, ebb_message_store::Error>(seen)
    };
    let seen = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the read finishes (no wait on its own connection)")
        .unwrap();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn reads_end_after_a_full_last_batch_and_keep_their_order() {
    let (store, _db) = store(2).await;
    for n in 0..6 {
        write(&store, "thing-1", n).await;
    }
    // 6 messages in batches of 3: two full batches, then an empty one.
    let positions: Vec<i64> = store
        .read_stream("thing-1", StreamQuery::new().batch_size(3))
        .map_ok(|m| m.position)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(positions, vec![0, 1, 2, 3, 4, 5]);

    let numbers: Vec<i64> = store
        .read_category("thing", CategoryQuery::new().position(2).batch_size(2))
        .map_ok(|m| m.data.to_value().unwrap()["n"].as_i64().unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn an_invalid_read_fails_on_its_first_batch() {
    let (store, _db) = store(1).await;
    let err = store
        .read_category("thing-1", CategoryQuery::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ebb_message_store::Error::NotACategory(_)),
        "{err}"
    );
    let err = store
        .read_stream("thing-1", StreamQuery::new().batch_size(0))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ebb_message_store::Error::InvalidArgument(_)),
        "{err}"
    );
}
