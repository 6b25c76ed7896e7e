//! Which errors are transient, each class pinned with an error a real
//! server and driver produce: only a lost connection, a pool that cannot
//! hand out a connection in time, and a server that cannot serve are worth
//! trying again; a client-side error or a statement the server refuses is
//! not.

use std::time::Duration;

use ebb_message_store::{CategoryQuery, Error, MessageStore, PgStore, PgStoreConfig};
use ebb_tests::{connect, database, store_for};
use tokio_postgres::error::SqlState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_call_is_transient() {
    let db = database().await;
    let store = store_for(&db, 1);
    let admin = connect(&db).await;
    let mut locker = connect(&db).await;
    // The call waits on the server for the lock, so that its connection
    // is lost while it is in flight.
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE message_store.messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let call = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .get_category_messages("account", &CategoryQuery::new())
                .await
        }
    });
    let terminated = loop {
        let terminated: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND query LIKE '%get_category_messages%' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if terminated > 0 || call.is_finished() {
            break terminated;
        }
        // Polls pg_stat_activity until the read waits for the lock.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(terminated, 1);
    let err = call.await.unwrap().unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    // The lost connection was closed with the call, before the pool could
    // hand it out again.
    assert_eq!(store.pool().status().size, 0);
    lock.rollback().await.unwrap();
    assert_eq!(store.stream_version("account-1").await.unwrap(), None);
}

#[tokio::test]
async fn a_server_that_takes_no_more_connections_is_transient() {
    let db = database().await;
    let admin = connect(&db).await;
    let role = format!("ebb_full_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
        .await
        .unwrap();
    let mut config = db.config();
    config.user(&role);
    let store = PgStore::new(PgStoreConfig::new(config)).unwrap();
    let err = store.stream_version("account-1").await.unwrap_err();
    assert_eq!(
        err.sqlstate(),
        Some(&SqlState::TOO_MANY_CONNECTIONS),
        "{err:?}"
    );
    assert!(err.is_transient(), "{err:?}");
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn no_connection_free_within_the_wait_is_transient() {
    let db = database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 1,
        wait_timeout: Duration::from_millis(200),
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();
    let held = store.client().await.unwrap();
    let err = store.stream_version("account-1").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Pool(deadpool_postgres::PoolError::Timeout(
                deadpool_postgres::TimeoutType::Wait
            ))
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    drop(held);
    assert_eq!(store.stream_version("account-1").await.unwrap(), None);
}

/// Errors the driver finds on its own side: repeating the call repeats
/// them.
#[tokio::test]
async fn client_side_errors_are_not_transient() {
    let db = database().await;
    let client = connect(&db).await;
    let no_row = client
        .query_one("SELECT 1 WHERE false", &[])
        .await
        .unwrap_err();
    let wrong_parameter_type = client.query("SELECT $1::int", &[&"one"]).await.unwrap_err();
    let wrong_parameter_count = client.query("SELECT $1::int", &[]).await.unwrap_err();
    let row = client.query_one("SELECT 'text'", &[]).await.unwrap();
    let wrong_column_type = row.try_get::<_, i32>(0).unwrap_err();
    let no_such_column = row.try_get::<_, String>("nope").unwrap_err();
    for err in [
        no_row,
        wrong_parameter_type,
        wrong_parameter_count,
        wrong_column_type,
        no_such_column,
    ] {
        let shown = err.to_string();
        let err = Error::from(err);
        assert!(matches!(err, Error::Database(_)), "{err:?}");
        assert!(!err.is_transient(), "{shown}");
    }
}

/// Statements the server refuses are not transient either, and keep their
/// SQLSTATE.
#[tokio::test]
async fn statements_the_server_refuses_are_not_transient() {
    let db = database().await;
    let client = connect(&db).await;
    for (sql, code) in [
        ("SELEC 1", SqlState::SYNTAX_ERROR),
        ("SELECT 1 / 0", SqlState::DIVISION_BY_ZERO),
        (
            "SELECT message_store.get_stream_messages('account', 0, -5)",
            SqlState::RAISE_EXCEPTION,
        ),
    ] {
        let err = Error::from(client.batch_execute(sql).await.unwrap_err());
        assert!(!err.is_transient(), "{sql}: {err:?}");
        if code != SqlState::RAISE_EXCEPTION {
            assert_eq!(err.sqlstate(), Some(&code), "{sql}");
        } else {
            // Message DB's own errors come back as their variants.
            assert!(matches!(err, Error::NotAStreamName(_)), "{err:?}");
        }
    }
}
