//! Writers racing each other, readers racing writers, and store calls
//! inside the caller's transaction.

use std::time::Duration;

use ebb_message_store::pg::operations;
use ebb_message_store::{
    CategoryQuery, Error, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig,
    StreamName, StreamQuery,
};
use ebb_tests::{connect, count_messages, pg_store};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_racing_writers_with_the_same_expectation_exactly_one_wins() {
    let (store, _db) = pg_store().await;
    let stream = StreamName::new("account", "race").unwrap();
    store
        .write(
            &stream,
            &MessageData::new("Opened", json!({})),
            ExpectedVersion::NoStream,
        )
        .await
        .unwrap();
    for round in 0..25_i64 {
        let expected = ExpectedVersion::Exact(round);
        let write = |by: &'static str| {
            let store = store.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let deposited = MessageData::new("Deposited", json!({ "by": by }));
                store.write(&stream, &deposited, expected).await
            })
        };
        let (a, b) = tokio::join!(write("a"), write("b"));
        let outcomes = [a.unwrap(), b.unwrap()];
        let won: Vec<_> = outcomes.iter().filter(|r| r.is_ok()).collect();
        let lost: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(won.len(), 1, "round {round}: {outcomes:?}");
        assert!(
            lost[0].is_wrong_expected_version(),
            "round {round}: {:?}",
            lost[0]
        );
        assert_eq!(*won[0].as_ref().unwrap(), round + 1);
    }
    assert_eq!(
        store.stream_version("account-race").await.unwrap(),
        Some(25)
    );
}

/// The category lock makes writes to one category commit in global
/// position order, so a reader that polls from "last seen + 1" while
/// writers are busy never skips a message that commits later with a lower
/// position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_reader_racing_writers_never_skips_a_message() {
    let (store, _db) = pg_store().await;
    let writers = 4;
    let per_writer = 150;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..per_writer {
                // Spread over streams; some writes are batches.
                let stream = StreamName::new("ledger", &format!("{w}-{}", n % 7)).unwrap();
                if n % 10 == 0 {
                    let batch = [
                        MessageData::new("Entered", json!({ "w": w, "n": n })),
                        MessageData::new("Entered", json!({ "w": w, "n": n, "second": true })),
                    ];
                    store
                        .write_batch(&stream, &batch, ExpectedVersion::Any)
                        .await
                        .unwrap();
                } else {
                    store
                        .write(
                            &stream,
                            &MessageData::new("Entered", json!({ "w": w, "n": n })),
                            ExpectedVersion::Any,
                        )
                        .await
                        .unwrap();
                }
            }
        }));
    }
    let expected_total = writers * (per_writer + per_writer / 10);

    let seen = ebb_tests::read_racing_writers(&store, "ledger", expected_total).await;
    for task in tasks {
        task.await.unwrap();
    }
    // Everything written was seen by the racing reader, nothing more.
    let all = store
        .get_category_messages("ledger", &CategoryQuery::new().batch_size(-1))
        .await
        .unwrap();
    assert_eq!(all.len(), expected_total);
    assert_eq!(seen.len(), expected_total);
}

#[tokio::test]
async fn writes_inside_the_callers_transaction_commit_or_roll_back_with_it() {
    let (store, db) = pg_store().await;
    let stream = StreamName::new("account", "tx").unwrap();
    let mut client = store.client().await.unwrap();

    let transaction = client.transaction().await.unwrap();
    operations::write_message(
        &transaction,
        &stream,
        &MessageData::new("Opened", json!({})),
        ExpectedVersion::NoStream,
    )
    .await
    .unwrap();
    let batch = [
        MessageData::new("Deposited", json!({})),
        MessageData::new("Deposited", json!({})),
    ];
    assert_eq!(
        operations::write_messages(&transaction, &stream, &batch, ExpectedVersion::Exact(0))
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        operations::stream_version(&transaction, "account-tx")
            .await
            .unwrap(),
        Some(2)
    );
    transaction.rollback().await.unwrap();
    let plain = connect(&db).await;
    assert_eq!(
        count_messages(&plain).await,
        0,
        "rolled back with the caller"
    );

    let transaction = client.transaction().await.unwrap();
    operations::write_message(
        &transaction,
        &stream,
        &MessageData::new("Opened", json!({})),
        ExpectedVersion::NoStream,
    )
    .await
    .unwrap();
    let read = operations::get_stream_messages(&transaction, "account-tx", &StreamQuery::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 1, "visible inside the transaction");
    assert_eq!(count_messages(&plain).await, 0, "not yet visible outside");
    transaction.commit().await.unwrap();
    assert_eq!(count_messages(&plain).await, 1);
}

/// A write that fails inside the caller's transaction neither commits nor
/// rolls back on its own: the transaction is left failed (the server
/// refuses every further statement in it) for the caller to end, and the
/// caller's rollback takes the transaction's earlier writes with it.
#[tokio::test]
async fn a_failed_write_inside_a_transaction_leaves_it_to_the_caller() {
    let (store, db) = pg_store().await;
    let stream = StreamName::new("account", "tx2").unwrap();
    let earlier = StreamName::new("account", "tx3").unwrap();
    store
        .write(
            &stream,
            &MessageData::new("Opened", json!({})),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let mut client = store.client().await.unwrap();
    let transaction = client.transaction().await.unwrap();
    operations::write_message(
        &transaction,
        &earlier,
        &MessageData::new("Opened", json!({})),
        ExpectedVersion::NoStream,
    )
    .await
    .unwrap();
    let err = operations::write_message(
        &transaction,
        &stream,
        &MessageData::new("Opened", json!({})),
        ExpectedVersion::NoStream,
    )
    .await
    .unwrap_err();
    assert!(err.is_wrong_expected_version(), "{err}");

    // Still the same, failed, transaction: had the function committed or
    // rolled back, this statement would run outside of it and succeed.
    let refused = transaction
        .query_one("SELECT 1", &[])
        .await
        .expect_err("a failed transaction refuses further statements");
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION),
        "{refused:?}"
    );

    transaction.rollback().await.unwrap();
    assert_eq!(store.stream_version("account-tx2").await.unwrap(), Some(0));
    assert_eq!(
        store.stream_version("account-tx3").await.unwrap(),
        None,
        "the earlier write went with the caller's rollback"
    );
    assert_eq!(count_messages(&connect(&db).await).await, 1);
}

/// The store keeps message times in UTC whatever the session's time zone:
/// on connections set to UTC+14, a message just written is stamped with
/// the current UTC time, not the local one 14 hours ahead. (The contract
/// suite checks only that the time is recent, which on a server in UTC
/// cannot tell the two apart.)
#[tokio::test]
async fn message_times_are_utc_whatever_the_session_s_time_zone() {
    let db = ebb_tests::database().await;
    let mut config = db.config();
    config.options("-c TimeZone=Pacific/Kiritimati");
    let store = PgStore::new(PgStoreConfig {
        max_connections: 1,
        ..PgStoreConfig::new(config)
    })
    .unwrap();

    // The zone took effect, and it is far from UTC.
    let client = store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('TimeZone'),
                    extract(epoch FROM now()::timestamp - (now() AT TIME ZONE 'utc'))::bigint",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Pacific/Kiritimati");
    assert_eq!(row.get::<_, i64>(1), 14 * 60 * 60);
    drop(client);

    let stream = StreamName::new("account", "zone").unwrap();
    let before = chrono::Utc::now();
    store
        .write(
            &stream,
            &MessageData::new("Opened", json!({})),
            ExpectedVersion::NoStream,
        )
        .await
        .unwrap();
    let after = chrono::Utc::now();
    let read = store
        .get_last_stream_message("account-zone", None)
        .await
        .unwrap()
        .expect("the message just written");
    // A little slack for the server's clock, which is this machine's (or,
    // with DATABASE_URL, one that is kept in time).
    let slack = chrono::TimeDelta::seconds(5);
    assert!(
        before - slack <= read.time && read.time <= after + slack,
        "written between {before} and {after}, stamped {}",
        read.time
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(dir.path())
        .port(5432)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2));
    let store = PgStore::new(PgStoreConfig::new(config)).unwrap();
    let err = store.stream_version("account-1").await.unwrap_err();
    assert!(matches!(err, Error::Pool(_)), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert!(!err.is_wrong_expected_version());
    // The socket file is missing: that is what the error says, naming it.
    let failed = err.connect_failed().expect("the hosts tried");
    let [attempt] = failed.attempts() else {
        panic!("one host tried: {failed}");
    };
    assert!(attempt.host.ends_with("/.s.PGSQL.5432"), "{}", attempt.host);
    let cause = attempt
        .refusal
        .driver_error()
        .and_then(|driver| ebb_retry::find_in_chain::<std::io::Error>(driver))
        .map(std::io::Error::kind);
    assert_eq!(cause, Some(std::io::ErrorKind::NotFound), "{err:?}");
    let line = ebb_retry::Chain::new(&err).to_string();
    assert!(line.contains("No such file or directory"), "{line}");
}

/// `MAX_STREAM_NAME_LEN` is where the store's unique index on stream names
/// still holds a name: a name of that length is written and read back,
/// one far beyond it fails in the server, and the type refuses it first.
#[tokio::test]
async fn stream_names_are_limited_to_what_the_index_holds() {
    use ebb_message_store::stream_name::MAX_STREAM_NAME_LEN;

    // Random letters and digits, which do not compress.
    let random = |len: usize| -> String {
        let mut text = String::with_capacity(len);
        while text.len() < len {
            text.push_str(&uuid::Uuid::new_v4().simple().to_string());
        }
        text.truncate(len);
        text
    };
    let (store, db) = pg_store().await;
    let longest = StreamName::new("account", &random(MAX_STREAM_NAME_LEN - "account-".len()))
        .expect("a name of the largest length allowed");
    assert_eq!(longest.as_str().len(), MAX_STREAM_NAME_LEN);
    store
        .write(
            &longest,
            &MessageData::new("Opened", json!({})),
            ExpectedVersion::NoStream,
        )
        .await
        .expect("the longest name allowed fits the index");
    assert_eq!(
        store.stream_version(longest.as_str()).await.unwrap(),
        Some(0)
    );

    let too_long = format!("account-{}", random(6_000));
    let client = connect(&db).await;
    let refused = client
        .query_one(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, $1, 'Opened', '{}')",
            &[&too_long],
        )
        .await
        .expect_err("the server cannot index a name this long");
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::PROGRAM_LIMIT_EXCEEDED),
        "{refused:?}"
    );

    let err = StreamName::parse(too_long).unwrap_err();
    assert!(
        err.to_string().contains("more than the 2000 allowed"),
        "{err}"
    );
    assert_eq!(count_messages(&client).await, 1);
}

#[tokio::test]
async fn a_malformed_row_written_by_another_client_is_reported_not_skipped() {
    let (store, db) = pg_store().await;
    let client = connect(&db).await;
    client
        .batch_execute(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, 'odd-1', 'Odd', '{}',
               '{\"causationMessagePosition\": \"not a number\"}')",
        )
        .await
        .unwrap();
    let err = store
        .get_stream_messages("odd-1", &StreamQuery::new())
        .await
        .unwrap_err();
    match err {
        Error::MalformedMessage {
            global_position, ..
        } => assert_eq!(global_position, 1),
        other => panic!("expected a malformed message error, got {other:?}"),
    }
}
