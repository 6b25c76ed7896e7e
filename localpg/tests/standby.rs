//! Streaming standbys: started from a primary, made synchronous, promoted
//! after the primary crashed, and cleaned up; and the clear refusals.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

use ebb_localpg::{Cluster, ClusterBuilder, Error, ShutdownMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// Starts `builder`'s cluster listening on 127.0.0.1 as well, on a free
/// port (tried again on another one if it is taken meanwhile).
fn start_on_tcp(builder: &ClusterBuilder) -> Cluster {
    let mut last = None;
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        match builder
            .clone()
            .port(port)
            .setting("listen_addresses", "127.0.0.1")
            .start()
        {
            Ok(cluster) => return cluster,
            Err(err) => last = Some(err),
        }
    }
    panic!("no cluster on a loopback port: {last:?}");
}

/// Settings for the `postgres` database of `cluster` over TCP.
fn tcp_config(cluster: &Cluster) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(cluster.port())
        .user(cluster.user())
        .dbname("postgres");
    config
}

async fn connect(config: &tokio_postgres::Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

async fn text(client: &Client, sql: &str) -> String {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

async fn count(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("count the rows")
        .get(0)
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The failover a test of ours goes through, over TCP: every commit on the
/// primary is on the synchronous standby when the commit returns; the
/// primary crashes; the standby is promoted and takes writes, with all
/// the primary's commits; dropping both removes everything.
#[test]
fn a_synchronous_standby_has_every_commit_and_takes_over_after_a_crash() {
    let mut primary =
        start_on_tcp(&Cluster::builder().setting("synchronous_commit", "remote_apply"));
    let standby = start_on_tcp(&Cluster::builder().standby_of(&primary));
    assert_ne!(primary.port(), standby.port());
    assert_ne!(primary.socket_dir(), standby.socket_dir());
    assert_eq!(primary.standby_name(), None);
    let name = standby
        .standby_name()
        .expect("a standby has a name")
        .to_owned();
    assert!(!primary.is_in_recovery().unwrap());
    assert!(
        standby.is_in_recovery().unwrap(),
        "a standby is in recovery"
    );

    primary
        .make_synchronous(&standby)
        .expect("make it synchronous");
    let runtime = current_thread_runtime();
    runtime.block_on(async {
        let on_primary = connect(&tcp_config(&primary)).await;
        let on_standby = connect(&tcp_config(&standby)).await;
        let state: String = on_primary
            .query_one(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(state, "sync");
        assert_eq!(
            text(&on_standby, "SELECT current_setting('cluster_name')").await,
            name
        );
        // Both are reached over TCP, each on its own port.
        for (client, cluster) in [(&on_primary, &primary), (&on_standby, &standby)] {
            let port: i32 = client
                .query_one("SELECT inet_server_port()", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(port, i32::from(cluster.port()));
        }

        on_primary
            .batch_execute("CREATE TABLE t (n int)")
            .await
            .unwrap();
        // With remote_apply a commit returns once the standby has applied
        // it, so a read there right after must see it.
        for n in 1..=20_i32 {
            on_primary
                .execute("INSERT INTO t VALUES ($1)", &[&n])
                .await
                .unwrap();
            assert_eq!(count(&on_standby).await, i64::from(n), "after commit {n}");
        }
        let refused = on_standby
            .batch_execute("INSERT INTO t VALUES (0)")
            .await
            .expect_err("a standby takes no writes");
        assert_eq!(refused.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
    });

    primary
        .stop_server(ShutdownMode::Immediate)
        .expect("crash the primary");
    assert!(standby.is_in_recovery().unwrap(), "not promoted by itself");
    standby.promote().expect("promote the standby");
    assert!(!standby.is_in_recovery().unwrap(), "promoted");
    standby.promote().expect("promoting again does nothing");
    runtime.block_on(async {
        let client = connect(&tcp_config(&standby)).await;
        assert_eq!(count(&client).await, 20, "every commit survived");
        client
            .execute("INSERT INTO t VALUES (21)", &[])
            .await
            .expect("the promoted standby takes writes");
        assert_eq!(count(&client).await, 21);
    });

    let dirs: Vec<PathBuf> = [&primary, &standby]
        .map(|cluster| cluster.socket_dir().to_path_buf())
        .into();
    drop(standby);
    drop(primary);
    for dir in dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}

/// What would not be a synchronous standby is refused, before anything
/// changes; a standby matches its primary's limits, does not take over
/// its `synchronous_standby_names`, and can be promoted while the primary
/// still runs; a failed copy is reported; all from inside a runtime.
#[tokio::test]
async fn replication_calls_refuse_what_they_cannot_do() {
    // More connections than a builder's default: the standby must match.
    let primary = Cluster::builder()
        .max_connections(250)
        .start()
        .expect("start the primary");
    let standby = Cluster::builder()
        .standby_of(&primary)
        .start()
        .expect("start the standby");
    let on_primary = connect(&primary.config("postgres")).await;
    let on_standby = connect(&standby.config("postgres")).await;
    assert_eq!(
        text(&on_standby, "SELECT current_setting('max_connections')").await,
        "250"
    );

    // Clusters start with synchronous_commit off: commits would not wait.
    let err = primary.make_synchronous(&standby).unwrap_err();
    assert!(
        matches!(&err, Error::AsynchronousCommit { setting } if setting == "off"),
        "{err:?}"
    );
    assert!(err.to_string().contains("remote_apply"), "{err}");
    assert_eq!(
        text(
            &on_primary,
            "SELECT current_setting('synchronous_standby_names')"
        )
        .await,
        "",
        "nothing changed"
    );

    // Not a standby of this primary, or no standby at all.
    let other = Cluster::start().expect("start another cluster");
    for (upstream, downstream) in [(&other, &standby), (&primary, &other)] {
        let err = upstream.make_synchronous(downstream).unwrap_err();
        assert!(matches!(err, Error::WrongRole { .. }), "{err:?}");
        assert!(err.to_string().contains("standby_of"), "{err}");
    }
    let err = primary.promote().unwrap_err();
    assert!(matches!(err, Error::WrongRole { .. }), "{err:?}");

    // A standby started after its primary named a synchronous standby
    // does not wait for that one once promoted itself.
    on_primary
        .batch_execute("ALTER SYSTEM SET synchronous_standby_names = 'someone'")
        .await
        .unwrap();
    on_primary
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    let second = Cluster::builder()
        .standby_of(&primary)
        .start()
        .expect("start a second standby");
    assert_ne!(second.standby_name(), standby.standby_name());
    let on_second = connect(&second.config("postgres")).await;
    assert_eq!(
        text(
            &on_second,
            "SELECT current_setting('synchronous_standby_names')"
        )
        .await,
        ""
    );
    second
        .promote()
        .expect("promote while the primary still runs");
    on_second
        .batch_execute("CREATE TABLE t (n int); INSERT INTO t VALUES (1)")
        .await
        .expect("writes on the promoted standby do not wait");
    assert!(
        standby.is_in_recovery().unwrap(),
        "the first one follows on"
    );

    // No primary to copy: pg_basebackup's failure, and no directory left.
    let mut gone = other;
    gone.stop_server(ShutdownMode::Fast).unwrap();
    let err = Cluster::builder().standby_of(&gone).start().unwrap_err();
    let Error::StartFailed {
        stage, log_path, ..
    } = &err
    else {
        panic!("expected StartFailed, got {err:?}");
    };
    assert_eq!(stage, "pg_basebackup failed", "{err}");
    assert!(err.to_string().contains("pg_basebackup"), "{err}");
    let dir = log_path.parent().unwrap();
    assert!(!dir.exists(), "{} still exists", dir.display());

    // The primary goes first, with its standbys still running.
    let dirs: Vec<PathBuf> = [&primary, &standby, &second]
        .map(|cluster| cluster.socket_dir().to_path_buf())
        .into();
    drop(primary);
    drop(standby);
    drop(second);
    for dir in dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}
