//! TLS against a real server: a private cluster with `ssl = on`, a CA and
//! certificates made here with rcgen, and a `pg_hba.conf` that takes TCP
//! connections over TLS only (`hostssl`), one user by client certificate
//! alone (`cert`). The store's settings come from connection strings, as
//! from `DATABASE_URL`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ebb_localpg::{Cluster, ServerTls, TestDatabase, TestDatabases};
use ebb_message_store::pg::LISTENER_APPLICATION_NAME;
use ebb_message_store::{Error, MessageStore, PgStore, PgStoreConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// The user whose `pg_hba.conf` line says `cert`.
const CERT_USER: &str = "ebb_cert_user";

/// The TLS cluster of this test binary and the client's files.
struct Server {
    databases: TestDatabases,
    /// Its loopback TCP port.
    port: u16,
    /// `ca.pem` (the server's CA), `other-ca.pem` (a CA that signed
    /// nothing here), `client.pem` and `client.key` (for [`CERT_USER`]).
    files: tempfile::TempDir,
}

impl Server {
    fn file(&self, name: &str) -> PathBuf {
        self.files.path().join(name)
    }

    /// A URL for `dbname` on `host` (which resolves to 127.0.0.1 or is
    /// given `hostaddr=127.0.0.1`) with `params`.
    fn url(&self, user: &str, host: &str, dbname: &str, params: &str) -> String {
        format!(
            "postgres://{user}@{host}:{port}/{dbname}?hostaddr=127.0.0.1&connect_timeout=10&{params}",
            port = self.port
        )
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` (its common name the first), signed by `ca`,
/// and its key, in PEM.
fn signed(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn start() -> Server {
    let server_ca = ca("ebb test server CA");
    let client_ca = ca("ebb test client CA");
    let (server_cert, server_key) = signed(&server_ca, &["localhost"]);
    let (client_cert, client_key) = signed(&client_ca, &[CERT_USER]);
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(files.path().join(name), text).unwrap();
    write("ca.pem", &server_ca.pem());
    write("other-ca.pem", &ca("ebb test stranger CA").pem());
    write("client.pem", &client_cert);
    write("client.key", &client_key);

    let hba = format!(
        "local all all trust\n\
         hostssl all {CERT_USER} 127.0.0.1/32 cert\n\
         hostssl all all 127.0.0.1/32 trust\n"
    );
    let mut last = None;
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let started = Cluster::builder()
            .port(port)
            .setting("listen_addresses", "127.0.0.1")
            .tls(ServerTls {
                cert_pem: server_cert.clone(),
                key_pem: server_key.clone(),
                client_ca_pem: Some(client_ca.pem()),
            })
            .hba(hba.clone())
            .start();
        match started {
            Ok(cluster) => {
                let status = cluster
                    .command("psql")
                    .args(["-q", "-d", "postgres", "-c"])
                    .arg(format!("CREATE ROLE {CERT_USER} LOGIN"))
                    .status()
                    .unwrap();
                assert!(status.success(), "psql: {status}");
                return Server {
                    databases: TestDatabases::from_cluster(cluster),
                    port,
                    files,
                };
            }
            Err(err) => last = Some(err),
        }
    }
    panic!("no TLS cluster on a loopback port: {last:?}");
}

/// A fresh database with ebb's schema on the TLS cluster.
async fn database() -> TestDatabase {
    ebb_tests::database_on(&server().databases).await
}

/// A store for `url`, or the error its settings or first connection give.
async fn open(url: &str) -> Result<PgStore, Error> {
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        ..PgStoreConfig::from_connection_string(url)?
    })?;
    drop(store.client().await?);
    Ok(store)
}

/// Whether the session of `client` is encrypted, as the server sees it.
async fn ssl_in_use(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A refusal as an operator reads it: one line, naming host and cause.
fn one_line(err: &Error) -> String {
    let line = ebb_retry::Chain::new(err).to_string();
    assert!(!line.contains('\n'), "{line}");
    line
}

/// Opens a store at `url`, which must be refused for a reason no retry
/// helps with (`refused` says what should not have happened): its error on
/// one line.
async fn refused(url: &str, refused: &str) -> String {
    let Err(err) = open(url).await else {
        panic!("{refused}");
    };
    let line = one_line(&err);
    assert!(!err.is_transient(), "{line}");
    line
}

fn path(file: &Path) -> String {
    file.display().to_string()
}

#[tokio::test]
async fn require_encrypts_the_pool_s_and_the_listener_s_connections() {
    let db = database().await;
    let server = server();
    let store = open(&server.url("postgres", "localhost", db.name(), "sslmode=require"))
        .await
        .unwrap();
    assert!(ssl_in_use(&store.client().await.unwrap()).await);

    // The first arming opens the listener's connection.
    let wakeup = store.arm_wakeup("account").await;
    assert!(wakeup.is_armed(), "{wakeup:?}");
    let listeners = store
        .client()
        .await
        .unwrap()
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1 AND a.datname = $2",
            &[&LISTENER_APPLICATION_NAME, &db.name()],
        )
        .await
        .unwrap();
    let encrypted: Vec<bool> = listeners.iter().map(|row| row.get(0)).collect();
    assert_eq!(encrypted, [true], "the listener's connection");
}

#[tokio::test]
async fn prefer_and_allow_end_up_encrypted_on_a_server_that_requires_it() {
    let db = database().await;
    let server = server();
    for params in ["", "sslmode=prefer", "sslmode=allow"] {
        let store = open(&server.url("postgres", "localhost", db.name(), params))
            .await
            .unwrap_or_else(|err| panic!("{params:?}: {}", one_line(&err)));
        assert!(
            ssl_in_use(&store.client().await.unwrap()).await,
            "{params:?}"
        );
    }
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects_and_writes() {
    let db = database().await;
    let server = server();
    let params = format!(
        "sslmode=verify-full&sslrootcert={}",
        path(&server.file("ca.pem"))
    );
    let store = open(&server.url("postgres", "localhost", db.name(), &params))
        .await
        .unwrap();
    assert!(ssl_in_use(&store.client().await.unwrap()).await);
    let stream = ebb_message_store::StreamName::new("account", "1").unwrap();
    let data = ebb_message_store::MessageData::new("Opened", serde_json::json!({}));
    store
        .write(&stream, &data, ebb_message_store::ExpectedVersion::Any)
        .await
        .unwrap();
    // verify-ca does not look at the name: the address will do.
    let params = format!(
        "sslmode=verify-ca&sslrootcert={}",
        path(&server.file("ca.pem"))
    );
    open(&server.url("postgres", "127.0.0.1", db.name(), &params))
        .await
        .unwrap();
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_host() {
    let db = database().await;
    let server = server();
    let params = format!(
        "sslmode=verify-full&sslrootcert={}",
        path(&server.file("ca.pem"))
    );
    let line = refused(
        &server.url("postgres", "127.0.0.1", db.name(), &params),
        "connected to a server whose certificate names another host",
    )
    .await;
    assert!(line.contains("server 127.0.0.1"), "{line}");
    assert!(line.contains("not valid for name"), "{line}");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let db = database().await;
    let server = server();
    for mode in ["verify-full", "verify-ca", "require"] {
        let params = format!(
            "sslmode={mode}&sslrootcert={}",
            path(&server.file("other-ca.pem"))
        );
        let line = refused(
            &server.url("postgres", "localhost", db.name(), &params),
            &format!("{mode}: connected to a server signed by a CA not in sslrootcert"),
        )
        .await;
        assert!(line.contains("server localhost"), "{mode}: {line}");
        assert!(
            line.contains("not signed by a CA in sslrootcert"),
            "{mode}: {line}"
        );
    }
}

#[tokio::test]
async fn disable_is_refused_by_a_hostssl_only_server() {
    let db = database().await;
    let server = server();
    let line = refused(
        &server.url("postgres", "localhost", db.name(), "sslmode=disable"),
        "connected without TLS where pg_hba.conf has only hostssl",
    )
    .await;
    assert!(line.contains("127.0.0.1"), "{line}");
    assert!(line.contains("no encryption"), "{line}");
}

#[tokio::test]
async fn a_client_certificate_logs_in_where_pg_hba_says_cert() {
    let db = database().await;
    let server = server();
    let params = format!(
        "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        path(&server.file("ca.pem")),
        path(&server.file("client.pem")),
        path(&server.file("client.key")),
    );
    let store = open(&server.url(CERT_USER, "localhost", db.name(), &params))
        .await
        .unwrap();
    let client = store.client().await.unwrap();
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, CERT_USER);
    assert!(ssl_in_use(&client).await);

    // Without the certificate the same user is turned away.
    let params = format!(
        "sslmode=verify-full&sslrootcert={}",
        path(&server.file("ca.pem"))
    );
    refused(
        &server.url(CERT_USER, "localhost", db.name(), &params),
        "logged in without the certificate pg_hba.conf asks for",
    )
    .await;
}

#[tokio::test]
async fn unusable_files_are_refused_before_connecting() {
    let server = server();
    let params = "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
    let Err(err) = open(&server.url("postgres", "localhost", "postgres", params)).await else {
        panic!("a missing root certificate file was accepted");
    };
    assert!(
        matches!(
            err,
            Error::InvalidTlsSetting {
                setting: "sslrootcert",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(one_line(&err).contains("/nonexistent/ca.pem"), "{err}");
}

/// A call that times out has its statement cancelled: the cancel request
/// goes over TLS too (the server would take it without, but a
/// `hostssl`-only network may not), and is confirmed, while the lock the
/// statement waits for is still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_is_cancelled_over_tls() {
    let db = database().await;
    let server = server();
    let params = format!(
        "sslmode=verify-full&sslrootcert={}",
        path(&server.file("ca.pem"))
    );
    let store = PgStore::new(PgStoreConfig {
        max_connections: 1,
        call_timeout: std::time::Duration::from_millis(500),
        ..PgStoreConfig::from_connection_string(&server.url(
            "postgres",
            "localhost",
            db.name(),
            &params,
        ))
        .unwrap()
    })
    .unwrap();
    let stream = ebb_message_store::StreamName::new("thing", "1").unwrap();
    let data = || ebb_message_store::MessageData::new("Noted", serde_json::json!({}));
    let any = ebb_message_store::ExpectedVersion::Any;
    store.write(&stream, &data(), any).await.unwrap();

    let observer = ebb_tests::connect(&db).await;
    let mut locker = ebb_tests::connect(&db).await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE message_store.messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let err = store.write(&stream, &data(), any).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let waiting = || async {
        observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&db.name()],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let started = std::time::Instant::now();
    while waiting().await > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the timed-out statement still waits for the lock"
        );
        // Polls pg_stat_activity until the statement no longer waits.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    lock.rollback().await.unwrap();
    store.write(&stream, &data(), any).await.unwrap();
}

/// The store contract over TLS (`verify-full`).
async fn tls_store() -> (PgStore, TestDatabase) {
    let db = database().await;
    let server = server();
    let params = format!(
        "sslmode=verify-full&sslrootcert={}",
        path(&server.file("ca.pem"))
    );
    let store = open(&server.url("postgres", "localhost", db.name(), &params))
        .await
        .unwrap();
    (store, db)
}

ebb_tests::store_contract_tests!(tls_store());
