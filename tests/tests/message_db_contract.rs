//! The store contract, against a database installed by Message DB's own
//! install scripts (`@eventide/message-db` 1.3.1): ebb must work with it
//! unchanged.

ebb_tests::store_contract_tests!(ebb_tests::message_db::pg_store());

#[tokio::test]
async fn message_db_reports_its_version_and_ebb_reads_it() {
    let db = ebb_tests::message_db::database().await;
    let client = ebb_tests::connect(&db).await;
    let installed = ebb_message_store::schema::installed_version(&client)
        .await
        .unwrap()
        .expect("a message store");
    assert_eq!(installed.message_db, "1.3.0");
    assert_eq!(installed.ebb, None, "installed by Message DB, not ebb");
}

#[tokio::test]
async fn ebb_installs_over_a_message_db_install() {
    let db = ebb_tests::message_db::database().await;
    let client = ebb_tests::connect(&db).await;
    let installed = ebb_message_store::schema::install(&client).await.unwrap();
    assert_eq!(installed.message_db, "1.3.0");
    assert_eq!(
        installed.ebb.as_deref(),
        Some(ebb_message_store::schema::EBB_SCHEMA_VERSION)
    );
    // Still one function of each name: no overloads left behind.
    assert_eq!(ebb_tests::function_overloads(&client).await, 0);
}
