//! The store contract, against PostgreSQL with ebb's schema, over TCP: the
//! pool opens TCP connections the ordinary way and Unix-socket connections
//! its own way, and both must keep the contract.

ebb_tests::store_contract_tests!(ebb_tests::pg_store_over_tcp());

/// Over TCP the server sees the client's address; over a Unix socket
/// (a `DATABASE_URL` naming one) it sees none.
#[tokio::test]
async fn the_connections_go_the_way_the_settings_say() {
    let (store, _db) = ebb_tests::pg_store_over_tcp().await;
    let over_tcp = matches!(
        store.config().connection.get_hosts(),
        [tokio_postgres::config::Host::Tcp(_), ..]
    );
    if std::env::var_os("DATABASE_URL").is_none() {
        assert!(over_tcp, "the private TCP server is reached over TCP");
    }
    let client = store.client().await.unwrap();
    let peer: Option<String> = client
        .query_one("SELECT host(inet_client_addr())", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(peer.is_some(), over_tcp, "{peer:?}");
}
