//! The store contract, against PostgreSQL with ebb's schema.

ebb_tests::store_contract_tests!(ebb_tests::pg_store());

use ebb_message_store::{Error, MessageStore};

#[tokio::test]
async fn a_write_wakes_an_armed_wakeup() {
    let (store, _db) = ebb_tests::pg_store().await;
    ebb_tests::contract::a_write_wakes_an_armed_wakeup(&store).await;
}

/// Another client may write SQL NULL as data (Message DB's column allows
/// it): it reads as JSON `null`, and decoding it into a struct is an error
/// that names the message, not a panic or a skipped row.
#[tokio::test]
async fn data_written_as_sql_null_reads_as_json_null() {
    let (store, db) = ebb_tests::pg_store().await;
    let client = ebb_tests::connect(&db).await;
    client
        .execute(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, 'thing-1', 'Noted', NULL)",
            &[],
        )
        .await
        .unwrap();
    let read = store
        .get_last_stream_message("thing-1", None)
        .await
        .unwrap()
        .unwrap();
    assert!(read.data.is_null(), "{:?}", read.data);
    assert_eq!(read.data::<Option<i64>>().unwrap(), None);

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Noted {
        text: String,
    }
    let err = read.data::<Noted>().unwrap_err();
    assert!(
        matches!(&err, Error::Deserialize { stream_name, position: 0, .. } if stream_name == "thing-1"),
        "{err:?}"
    );
}
