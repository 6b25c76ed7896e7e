//! Group commit (`PgStoreConfig::group_commit`): writes made to one
//! category while another is out go to the server together, each checked
//! against its own expected version, with Message DB's guarantees kept.
//!
//! A test that needs a group of known writes holds the category's lock
//! from a connection of its own (the lock `write_message` takes), so that
//! the first write waits on the server with the turn; it sees that wait in
//! `pg_stat_activity`, then starts the other writes and polls each once,
//! which queues it (nothing in a queued write awaits before it is queued).
//! Letting go of the lock sends the queue as one group.
//!
//! Which writes committed together is read from the rows' `xmin`: one
//! transaction, one `xmin`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use ebb_message_store::{
    CategoryQuery, Error, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig,
    StreamName,
};
use ebb_tests::{connect, database, eventually, store_for};
use serde_json::json;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

type Write = Pin<Box<dyn Future<Output = Result<i64, Error>> + Send>>;

fn write(store: &PgStore, stream: &str, expected: ExpectedVersion) -> (Uuid, Write) {
    let message = MessageData::new("Entered", json!({ "stream": stream }));
    let id = message.id;
    let (store, stream) = (store.clone(), StreamName::parse(stream).unwrap());
    let future = Box::pin(async move { store.write(&stream, &message, expected).await });
    (id, future)
}

/// Polls each write once: a write whose category's turn is held is then
/// in its queue.
async fn queue(writes: &mut [Write]) {
    for write in writes.iter_mut() {
        let polled = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        assert!(polled.is_pending(), "a queued write waits for its group");
    }
}

/// Holds the `ledger` category's write lock, then starts a first write
/// to it and waits until that write waits on the server for the lock:
/// the store's turn of the category is held, so the writes made next
/// queue behind it. Returns the lock, the first write's id and its task.
async fn hold_ledger_behind_a_first_write(
    db: &ebb_localpg::TestDatabase,
    store: &PgStore,
) -> (
    CategoryLock,
    Uuid,
    tokio::task::JoinHandle<Result<i64, Error>>,
) {
    let lock = CategoryLock::take(db, "ledger").await;
    let (id, first) = write(store, "ledger-first", ExpectedVersion::Any);
    let first = tokio::spawn(first);
    lock.wait_for_waiters(1).await;
    (lock, id, first)
}

/// A connection holding `category`'s write lock until it lets go.
struct CategoryLock {
    client: tokio_postgres::Client,
    key: i64,
}

impl CategoryLock {
    async fn take(db: &ebb_localpg::TestDatabase, category: &str) -> Self {
        let client = connect(db).await;
        let key: i64 = client
            .query_one("SELECT message_store.hash_64($1::varchar)", &[&category])
            .await
            .unwrap()
            .get(0);
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .unwrap();
        Self { client, key }
    }

    /// How many backends of this database wait for an advisory lock.
    async fn waiters(&self) -> i64 {
        self.client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' \
                 AND datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Waits until `count` backends wait for an advisory lock.
    async fn wait_for_waiters(&self, count: i64) {
        let what = format!("{count} writes waiting on the category lock");
        eventually(&what, async || self.waiters().await >= count).await;
    }

    /// Waits until no backend waits for an advisory lock.
    async fn wait_for_no_waiters(&self) {
        eventually("no write waiting on the category lock", async || {
            self.waiters().await == 0
        })
        .await;
    }

    /// Ends the server processes that wait for an advisory lock, and waits
    /// until they are gone.
    async fn terminate_waiters(&self) {
        let ended: Vec<i32> = self
            .client
            .query(
                "WITH waiting AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' \
                 AND datname = current_database()) \
                 SELECT pid FROM waiting WHERE pg_terminate_backend(pid)",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(!ended.is_empty(), "a waiting write to end");
        eventually("the ended backends gone", async || {
            let left: i64 = self
                .client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                    &[&ended],
                )
                .await
                .unwrap()
                .get(0);
            left == 0
        })
        .await;
    }

    async fn release(&self) {
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
            .await
            .unwrap();
    }
}

/// Each message's transaction (its row's `xmin`), by id.
async fn transactions(db: &ebb_localpg::TestDatabase) -> HashMap<Uuid, String> {
    connect(db)
        .await
        .query("SELECT id, xmin::text FROM message_store.messages", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Every stream's positions are 0, 1, 2, ... with no gap.
async fn assert_gapless(store: &PgStore, category: &str) {
    let all = store
        .get_category_messages(category, &CategoryQuery::new().batch_size(-1))
        .await
        .unwrap();
    let mut positions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for message in &all {
        positions
            .entry(message.stream_name.clone())
            .or_default()
            .push(message.position);
    }
    for (stream, positions) in positions {
        let expected: Vec<i64> = (0..positions.len() as i64).collect();
        assert_eq!(positions, expected, "{stream}'s positions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_behind_one_commit_together_each_checked_against_its_own_version() {
    let db = database().await;
    let store = store_for(&db, 4);
    let opened = |id: &str| StreamName::new("ledger", id).unwrap();
    for id in ["x", "y"] {
        store
            .write(
                &opened(id),
                &MessageData::new("Opened", json!({})),
                ExpectedVersion::NoStream,
            )
            .await
            .unwrap();
    }

    let (lock, first_id, first) = hold_ledger_behind_a_first_write(&db, &store).await;
    let (ids, mut queued): (Vec<Uuid>, Vec<Write>) = [
        write(&store, "ledger-x", ExpectedVersion::Exact(0)),
        // The write before it in the group made x's version 1.
        write(&store, "ledger-x", ExpectedVersion::Exact(0)),
        write(&store, "ledger-x", ExpectedVersion::Exact(1)),
        write(&store, "ledger-y", ExpectedVersion::NoStream),
        write(&store, "ledger-z", ExpectedVersion::NoStream),
        write(&store, "ledger-y", ExpectedVersion::Any),
    ]
    .into_iter()
    .unzip();
    queue(&mut queued).await;
    lock.release().await;

    assert_eq!(first.await.unwrap().unwrap(), 0);
    let results = futures_util::future::join_all(queued).await;
    assert_eq!(results[0].as_ref().unwrap(), &1);
    match &results[1] {
        Err(Error::WrongExpectedVersion {
            stream_name,
            expected,
            actual,
        }) => {
            assert_eq!(
                (stream_name.as_str(), *expected, *actual),
                ("ledger-x", 0, 1)
            );
        }
        other => panic!("a conflict for the second write to x, not {other:?}"),
    }
    assert_eq!(results[2].as_ref().unwrap(), &2);
    match &results[3] {
        Err(Error::WrongExpectedVersion {
            expected, actual, ..
        }) => assert_eq!((*expected, *actual), (-1, 0)),
        other => panic!("y is not new: a conflict, not {other:?}"),
    }
    assert_eq!(results[4].as_ref().unwrap(), &0);
    assert_eq!(results[5].as_ref().unwrap(), &1);

    // The group is one transaction, not the first write's; the writes
    // that conflicted wrote nothing.
    let transactions = transactions(&db).await;
    let written = [ids[0], ids[2], ids[4], ids[5]];
    let group: HashSet<&String> = written.iter().map(|id| &transactions[id]).collect();
    assert_eq!(group.len(), 1, "the group commits as one: {transactions:?}");
    assert_ne!(transactions[&first_id], **group.iter().next().unwrap());
    assert!(!transactions.contains_key(&ids[1]));
    assert!(!transactions.contains_key(&ids[3]));
    assert_gapless(&store, "ledger").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_the_server_refuses_as_a_whole_is_written_again_one_by_one() {
    let db = database().await;
    let store = store_for(&db, 4);
    let taken = MessageData::new("Entered", json!({}));
    store
        .write(
            &StreamName::parse("ledger-a").unwrap(),
            &taken,
            ExpectedVersion::Any,
        )
        .await
        .unwrap();

    let (lock, _, first) = hold_ledger_behind_a_first_write(&db, &store).await;
    let (before_id, before) = write(&store, "ledger-b", ExpectedVersion::Any);
    let duplicate: Write = {
        let store = store.clone();
        let taken = taken.clone();
        Box::pin(async move {
            store
                .write(
                    &StreamName::parse("ledger-c").unwrap(),
                    &taken,
                    ExpectedVersion::Any,
                )
                .await
        })
    };
    let (after_id, after) = write(&store, "ledger-b", ExpectedVersion::Any);
    let mut queued = vec![before, duplicate, after];
    queue(&mut queued).await;
    lock.release().await;

    first.await.unwrap().unwrap();
    let results = futures_util::future::join_all(queued).await;
    assert_eq!(results[0].as_ref().unwrap(), &0);
    match &results[1] {
        Err(Error::DuplicateMessageId { id, .. }) => assert_eq!(*id, Some(taken.id)),
        other => panic!("the duplicate id is reported to its writer, not {other:?}"),
    }
    assert_eq!(results[2].as_ref().unwrap(), &1);
    // Written one by one: each in a transaction of its own.
    let transactions = transactions(&db).await;
    assert_ne!(transactions[&before_id], transactions[&after_id]);
    assert_eq!(
        store.stream_version("ledger-c").await.unwrap(),
        None,
        "nothing of the refused write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ebb_write_messages_as_installed_by_message_db_writes_go_one_by_one() {
    let db = database().await;
    connect(&db)
        .await
        .batch_execute("DROP FUNCTION message_store.ebb_write_messages")
        .await
        .unwrap();
    let store = store_for(&db, 4);

    let (lock, _, first) = hold_ledger_behind_a_first_write(&db, &store).await;
    let (ids, mut queued): (Vec<Uuid>, Vec<Write>) = [
        write(&store, "ledger-x", ExpectedVersion::NoStream),
        write(&store, "ledger-x", ExpectedVersion::NoStream),
        write(&store, "ledger-x", ExpectedVersion::Exact(0)),
    ]
    .into_iter()
    .unzip();
    queue(&mut queued).await;
    lock.release().await;

    first.await.unwrap().unwrap();
    let results = futures_util::future::join_all(queued).await;
    assert_eq!(results[0].as_ref().unwrap(), &0);
    assert!(
        results[1]
            .as_ref()
            .is_err_and(Error::is_wrong_expected_version),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap(), &1);
    let transactions = transactions(&db).await;
    assert_ne!(transactions[&ids[0]], transactions[&ids[2]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_times_out_fails_each_of_its_writes_with_a_transient_error_and_writes_nothing()
{
    let db = database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        call_timeout: Duration::from_millis(500),
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();

    let (lock, _, first) = hold_ledger_behind_a_first_write(&db, &store).await;
    let (_, mut queued): (Vec<Uuid>, Vec<Write>) = (0..3)
        .map(|n| write(&store, &format!("ledger-{n}"), ExpectedVersion::Any))
        .unzip();
    queue(&mut queued).await;
    // The lock is held through both calls: the first write times out,
    // then its group does.
    let first = first.await.unwrap();
    assert!(
        matches!(first, Err(Error::Timeout { .. })),
        "the first write, alone: {first:?}"
    );
    // Each queued write gets the group's timeout as it is.
    for result in futures_util::future::join_all(queued).await {
        match result {
            Err(err @ Error::Timeout { .. }) => assert!(err.is_transient()),
            other => panic!("the group's timeout, not {other:?}"),
        }
    }

    // Both timed-out statements are cancelled: nothing waits on the lock
    // any more, and nothing was written once it is let go.
    lock.wait_for_no_waiters().await;
    lock.release().await;
    assert_eq!(ebb_tests::count_messages(&connect(&db).await).await, 0);
}

/// A group whose connection is lost on the way fails each of its writes
/// with the one error, shared in `Error::Grouped`, transient and with the
/// server's SQLSTATE; none of its messages is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_connection_is_lost_shares_the_error_and_writes_nothing() {
    let db = database().await;
    let store = store_for(&db, 4);

    let (lock, _, first) = hold_ledger_behind_a_first_write(&db, &store).await;
    let (_, mut queued): (Vec<Uuid>, Vec<Write>) = (0..3)
        .map(|n| write(&store, &format!("ledger-{n}"), ExpectedVersion::Any))
        .unzip();
    queue(&mut queued).await;
    let queued = tokio::spawn(futures_util::future::join_all(queued));

    // The first write's connection, then the group's, ended by the server
    // while each waits on the lock.
    lock.terminate_waiters().await;
    let first = first.await.unwrap();
    assert!(first.as_ref().is_err_and(Error::is_transient), "{first:?}");
    lock.wait_for_waiters(1).await;
    lock.terminate_waiters().await;

    let shared: Vec<Arc<Error>> = queued
        .await
        .unwrap()
        .into_iter()
        .map(|result| match result {
            Err(err @ Error::Grouped(_)) => {
                assert!(err.is_transient(), "{err:?}");
                assert_eq!(err.sqlstate(), Some(&SqlState::ADMIN_SHUTDOWN));
                let Error::Grouped(inner) = err else {
                    unreachable!()
                };
                assert!(matches!(*inner, Error::Database(_)), "{inner:?}");
                inner
            }
            other => panic!("the group's lost connection, shared, not {other:?}"),
        })
        .collect();
    assert_eq!(shared.len(), 3);
    assert!(shared.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));

    lock.release().await;
    assert_eq!(ebb_tests::count_messages(&connect(&db).await).await, 0);
}

/// Many writers to one category: they commit in fewer transactions than
/// writes, every stream's positions are gapless, and a reader that reads
/// the category from where it left off while they write sees every
/// message exactly once (global positions commit in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_to_one_category_share_commits_and_a_racing_reader_misses_nothing() {
    let db = database().await;
    let store = store_for(&db, 4);
    let (writers, per_writer) = (16, 60);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..per_writer {
                    let stream =
                        StreamName::new("ledger", &format!("{}", (w * 7 + n) % 23)).unwrap();
                    let message = MessageData::new("Entered", json!({ "w": w, "n": n }));
                    store
                        .write(&stream, &message, ExpectedVersion::Any)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let total = writers * per_writer;
    let seen = ebb_tests::read_racing_writers(&store, "ledger", total).await;
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(seen.len(), total);
    assert_gapless(&store, "ledger").await;
    let commits: HashSet<String> = transactions(&db).await.into_values().collect();
    assert!(
        commits.len() < total,
        "{total} writes from {writers} writers committed in {} transactions",
        commits.len()
    );
}

/// The same writers with group commit off: a transaction per write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_group_commit_off_every_write_commits_alone() {
    let db = database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        group_commit: false,
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();
    let (writers, per_writer) = (8, 20);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..per_writer {
                    let stream = StreamName::new("ledger", &format!("{w}")).unwrap();
                    let message = MessageData::new("Entered", json!({ "n": n }));
                    store
                        .write(&stream, &message, ExpectedVersion::Any)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let commits: HashSet<String> = transactions(&db).await.into_values().collect();
    assert_eq!(commits.len(), writers * per_writer);
}

/// Grouped writers and clients calling `write_message` themselves (psql,
/// Ruby Eventide) on the same streams, each reading the version and
/// writing with it as the expected version: every write that returned a
/// position holds it, right after the version it expected, conflicts are only ever version conflicts, and the
/// streams stay gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_writers_and_write_message_clients_on_the_same_streams_stay_correct() {
    let db = database().await;
    let store = store_for(&db, 6);
    let streams = 5;
    let rounds = 40;
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for n in 0..rounds {
                let stream = StreamName::new("ledger", &format!("{}", (w + n) % streams)).unwrap();
                let version = store.stream_version(stream.as_str()).await.unwrap();
                let message = MessageData::new("Entered", json!({ "by": "ebb" }));
                match store
                    .write(&stream, &message, ExpectedVersion::from_version(version))
                    .await
                {
                    Ok(position) => {
                        assert_eq!(
                            position,
                            version.map_or(0, |v| v + 1),
                            "right after the version it expected"
                        );
                        written.push((message.id, stream.to_string(), position));
                    }
                    Err(err) => assert!(err.is_wrong_expected_version(), "{err:?}"),
                }
            }
            written
        }));
    }
    for w in 0..2 {
        let client = connect(&db).await;
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for n in 0..rounds {
                let stream = format!("ledger-{}", (w + n) % streams);
                let version: Option<i64> = client
                    .query_one("SELECT message_store.stream_version($1)", &[&stream])
                    .await
                    .unwrap()
                    .get(0);
                let id = Uuid::new_v4();
                let result = client
                    .query_one(
                        "SELECT message_store.write_message($1, $2, 'Entered', '{\"by\":\"psql\"}', NULL, $3)",
                        &[&id.to_string(), &stream, &version.unwrap_or(-1)],
                    )
                    .await;
                match result {
                    Ok(row) => {
                        let position: i64 = row.get(0);
                        assert_eq!(position, version.map_or(0, |v| v + 1));
                        written.push((id, stream, position));
                    }
                    Err(err) => assert!(
                        err.as_db_error()
                            .is_some_and(|e| e.message().starts_with("Wrong expected version")),
                        "{err:?}"
                    ),
                }
            }
            written
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    let stored: HashMap<Uuid, (String, i64)> = store
        .get_category_messages("ledger", &CategoryQuery::new().batch_size(-1))
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, (m.stream_name, m.position)))
        .collect();
    assert_eq!(
        stored.len(),
        written.len(),
        "everything stored was reported written"
    );
    for (id, stream, position) in written {
        assert_eq!(stored[&id], (stream, position));
    }
    assert_gapless(&store, "ledger").await;
}
