//! A connection that cannot be had ends in one line that names the host
//! and the cause, within the connect timeout, and is transient only where
//! trying again can help: a wrong password (no), a port nobody listens on
//! (yes: the server may be starting), a server that does not answer (yes),
//! a standby where a primary is asked for (yes: it may be promoted), and
//! all of a list's hosts refusing (each named).

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use ebb_localpg::Cluster;
use ebb_message_store::{Error, PgStore, PgStoreConfig};
use ebb_tests::private::{Failover, start_on_loopback};

/// Password logins over TCP, as a managed server has them; the test's
/// own user still logs in over the socket.
const HBA: &str = "local all all trust\n\
                   host all app 127.0.0.1/32 scram-sha-256\n";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens a store on `url` with a 1 s connect timeout and asks it for a
/// connection: the error, on one line, and how long it took.
async fn refusal(url: &str) -> (Error, String, Duration) {
    let store = PgStore::new(PgStoreConfig {
        connect_timeout: CONNECT_TIMEOUT,
        ..PgStoreConfig::from_connection_string(url).expect("the settings")
    })
    .expect("a store");
    let started = Instant::now();
    let Err(err) = store.client().await else {
        panic!("{url}: connected");
    };
    let took = started.elapsed();
    let line = ebb_retry::Chain::new(&err).to_string();
    assert!(!line.contains('\n'), "{line}");
    (err, line, took)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn a_wrong_password_names_the_host_and_is_not_transient() {
    let cluster = tokio::task::spawn_blocking(|| start_on_loopback(|| Cluster::builder().hba(HBA)))
        .await
        .unwrap();
    let admin = ebb_tests::connect_to(&cluster.config("postgres"))
        .await
        .unwrap();
    admin
        .batch_execute("CREATE ROLE app LOGIN PASSWORD 'right'")
        .await
        .unwrap();
    let port = cluster.port();

    let (err, line, took) =
        refusal(&format!("postgres://app:wrong@127.0.0.1:{port}/postgres")).await;
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(
        line.contains("password authentication failed for user \"app\""),
        "{line}"
    );
    assert!(!err.is_transient(), "{line}");
    assert_eq!(
        err.sqlstate(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD)
    );
    assert!(took < CONNECT_TIMEOUT, "{took:?}");
    let failed = err.connect_failed().expect("the hosts tried");
    assert_eq!(failed.attempts().len(), 1);

    // The right one logs in.
    let store = PgStore::new(
        PgStoreConfig::from_connection_string(&format!(
            "postgres://app:right@127.0.0.1:{port}/postgres"
        ))
        .unwrap(),
    )
    .unwrap();
    drop(store.client().await.expect("the right password logs in"));
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_transient() {
    let port = free_port();
    let (err, line, took) = refusal(&format!("postgres://app@127.0.0.1:{port}/store")).await;
    assert!(
        line.contains(&format!("could not connect to 127.0.0.1:{port}")),
        "{line}"
    );
    assert!(line.contains("Connection refused"), "{line}");
    assert!(err.is_transient(), "{line}");
    assert!(took < CONNECT_TIMEOUT, "{took:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_on_at_the_connect_timeout() {
    // The kernel accepts the connection; nobody ever answers on it.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let (err, line, took) = refusal(&format!("postgres://app@127.0.0.1:{port}/store")).await;
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("no session within 1s"), "{line}");
    assert!(err.is_transient(), "{line}");
    assert!(
        took >= CONNECT_TIMEOUT && took < CONNECT_TIMEOUT * 2,
        "gave up after {took:?}"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_where_a_primary_is_asked_for_is_transient_and_every_host_is_named() {
    let mut failover = Failover::start().await;
    let standby = failover.standby().port();
    let only_standby =
        format!("postgres://postgres@127.0.0.1:{standby}/postgres?target_session_attrs=read-write");
    let (err, line, _) = refusal(&only_standby).await;
    assert!(
        line.contains(&format!(
            "could not connect to 127.0.0.1:{standby}: the server accepts no writes"
        )),
        "{line}"
    );
    assert!(err.is_transient(), "a standby may be promoted: {line}");

    // Both hosts, with the primary gone and the standby not promoted.
    failover.stop_primary().await;
    let (err, line, took) = refusal(&failover.connection_string()).await;
    assert!(
        line.contains("could not connect to any of 2 hosts"),
        "{line}"
    );
    assert!(line.contains(".s.PGSQL."), "the primary's socket: {line}");
    assert!(
        line.contains(&format!(
            "127.0.0.1:{standby}: the server accepts no writes"
        )),
        "{line}"
    );
    assert!(err.is_transient(), "{line}");
    assert_eq!(err.connect_failed().unwrap().attempts().len(), 2);
    assert!(took < CONNECT_TIMEOUT * 2, "{took:?}");

    // Without asking for a primary, the standby takes the session and
    // refuses the write itself: a setting to fix, not a moment to wait.
    let any = format!("postgres://postgres@127.0.0.1:{standby}/postgres");
    let store = PgStore::new(PgStoreConfig::from_connection_string(&any).unwrap()).unwrap();
    let stream = ebb_message_store::StreamName::new("account", "1").unwrap();
    let message = ebb_message_store::MessageData::new("Opened", serde_json::json!({}));
    let err = ebb_message_store::MessageStore::write(
        &store,
        &stream,
        &message,
        ebb_message_store::ExpectedVersion::Any,
    )
    .await
    .expect_err("a standby takes no writes");
    let line = ebb_retry::Chain::new(&err).to_string();
    assert!(line.contains("read-only transaction"), "{line}");
    assert!(!err.is_transient(), "{line}");
}
