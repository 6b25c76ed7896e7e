//! The store contract, against PostgreSQL with ebb's schema, over TCP: the
//! pool opens TCP connections the ordinary way and Unix-socket connections
//! its own way, and both must keep the contract.

ebb_tests::store_contract_tests!(ebb_tests::pg_store_over_tcp());

/// Without `DATABASE_URL` the connections are TCP; with it they go the
/// way its URL says.
#[tokio::test]
async fn the_connections_are_tcp() {
    let (store, _db) = ebb_tests::pg_store_over_tcp().await;
    let over_tcp = ebb_tests::assert_transport_as_configured(&store).await;
    assert!(over_tcp || ebb_tests::database_url_is_set());
}
