//! Wake-ups (`MessageStore::arm_wakeup`) against PostgreSQL: a write to an
//! armed category, by ebb or by any other client, wakes the waiter at once;
//! other categories do not; only the first write after an arming notifies;
//! a lost listening connection, a server restart and a dropped store lose
//! nothing and leak nothing; a plain Message DB install polls and says so
//! once.
//!
//! "At once" is checked against [`PROMPT`], far below any poll interval and
//! far above a notification's latency, so that a loaded machine does not
//! fail the tests. "Does not wake" is checked once a write made after the
//! one that must not wake has woken a waiter of its own ([`not_woken`]):
//! the listener takes notifications in commit order. A wake-up armed
//! again after a notification is awaited only once the store arms the
//! database rather than poll the busy category
//! ([`armed_outside_the_busy_window`]), so that only a notification can
//! complete it.

#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_localpg::TestDatabase;
use ebb_message_store::pg::{LISTENER_APPLICATION_NAME, NOTIFY_CHANNEL};
use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig, StreamName,
    Wakeup,
};
use ebb_tests::private::{Listen, cluster_with_schema};
use ebb_tests::{connect, pg_store, terminate_listeners};
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::json;

/// The longest a wake-up may take after its write.
const PROMPT: Duration = Duration::from_secs(1);

async fn write(store: &PgStore, stream: &str) -> i64 {
    let stream = StreamName::parse(stream).unwrap();
    let mut attempts = 0;
    loop {
        let message = MessageData::new("Noted", json!({}));
        match store.write(&stream, &message, ExpectedVersion::Any).await {
            Ok(position) => return position,
            // A pooled connection a restart or termination closed: the
            // write is tried again (a retry loop, not a wait for an event).
            Err(err) if err.is_transient() && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("writing to {stream}: {err:?}"),
        }
    }
}

/// Waits for `wakeup` at most `PROMPT`; returns how long it took.
async fn woken(wakeup: Wakeup, what: &str) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(PROMPT, wakeup)
        .await
        .unwrap_or_else(|_| panic!("{what}: no wake-up within {PROMPT:?}"));
    let took = started.elapsed();
    println!("{what}: woken after {took:?}");
    took
}

/// Asserts that `wakeup` has not come, once a write made now to a marker
/// category of its own has woken that category's waiter; gives it back.
/// The store's one listening connection takes the notifications in the
/// order their writes committed, and wakes a notification's waiters as it
/// takes it: had anything written before the marker woken `wakeup`, it
/// would have by then.
async fn not_woken(store: &PgStore, mut wakeup: Wakeup, what: &str) -> Wakeup {
    static MARKERS: AtomicUsize = AtomicUsize::new(0);
    let marker = format!("marker{}", MARKERS.fetch_add(1, Ordering::Relaxed));
    let marked = store.arm_wakeup(&marker).await;
    assert!(marked.is_armed() && !marked.is_poll(), "{marked:?}");
    write(store, &format!("{marker}-1")).await;
    woken(marked, &format!("{what}: the marker written after")).await;
    assert!((&mut wakeup).now_or_never().is_none(), "{what}: woken");
    wakeup
}

/// Arms `category` until the store arms the database: a category notified
/// less than the store's busy window ago is polled instead, and each of
/// those wake-ups (`is_poll`) is awaited, as the store times it, before
/// arming again. The wake-up returned is one only a notification (or a
/// lost listening connection) completes.
async fn armed_outside_the_busy_window(store: &PgStore, category: &str) -> Wakeup {
    let started = Instant::now();
    loop {
        let wakeup = store.arm_wakeup(category).await;
        assert!(wakeup.is_armed(), "{wakeup:?}");
        if !wakeup.is_poll() {
            return wakeup;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{category}: polled instead of armed for 30 s"
        );
        tokio::time::timeout(Duration::from_secs(10), wakeup)
            .await
            .expect("the busy poll comes");
    }
}

/// The backends listening on the store's channel in `client`'s database.
async fn listeners(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1",
            &[&LISTENER_APPLICATION_NAME],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_write_wakes_an_armed_wakeup_at_once() {
    let (store, _db) = pg_store().await;
    let wakeup = store.arm_wakeup("note").await;
    assert!(wakeup.is_armed(), "{wakeup:?}");
    let wakeup = not_woken(&store, wakeup, "nothing written yet").await;
    write(&store, "note-1").await;
    woken(wakeup, "a write through PgStore").await;

    // Good for one wake-up: armed again (once the busy window has passed),
    // the next write's notification wakes it again.
    let wakeup = armed_outside_the_busy_window(&store, "note").await;
    write(&store, "note-2").await;
    woken(wakeup, "the next write").await;
}

/// Writes by other clients (Eventide, psql) go through `write_message`
/// too, and the trigger notifies for them alike.
#[tokio::test]
async fn a_write_by_another_client_wakes_it() {
    let (store, db) = pg_store().await;
    let other = connect(&db).await;
    let wakeup = store.arm_wakeup("note").await;
    other
        .execute(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, 'note-1', 'Noted', '{}')",
            &[],
        )
        .await
        .unwrap();
    woken(wakeup, "a write with plain SQL").await;
}

#[tokio::test]
async fn a_write_to_another_category_does_not_wake_it() {
    let (store, _db) = pg_store().await;
    let wakeup = store.arm_wakeup("note").await;
    write(&store, "other-1").await;
    // A category with types is a category of its own.
    write(&store, "note:command-1").await;
    let wakeup = not_woken(&store, wakeup, "writes to other categories").await;
    write(&store, "note-1").await;
    woken(wakeup, "then a write to its own").await;
}

/// A write that commits between a reader's last read and its arming does
/// not wake it: the reader must read again after arming, and that read
/// sees the write. A write after the arming wakes it.
#[tokio::test]
async fn the_read_after_arming_sees_a_write_from_before_it() {
    let (store, _db) = pg_store().await;
    let read = |position| {
        let store = store.clone();
        async move {
            store
                .get_category_messages("note", &CategoryQuery::new().position(position))
                .await
                .unwrap()
        }
    };
    assert!(read(1).await.is_empty(), "caught up");
    write(&store, "note-1").await; // between the read and the arming
    let wakeup = store.arm_wakeup("note").await;
    let again = read(1).await;
    assert_eq!(again.len(), 1, "the read after arming sees it");
    let wakeup = not_woken(&store, wakeup, "a write from before the arming").await;
    write(&store, "note-2").await;
    woken(wakeup, "a write after the arming").await;
}

/// A NOTIFY serialises commits, so writers pay for it only when someone
/// waits: nothing notifies while nobody is armed, a write after an arming
/// notifies, and once the listener has disarmed at that notification the
/// writes after it do not.
#[tokio::test]
async fn only_the_first_write_after_an_arming_notifies() {
    let (store, db) = pg_store().await;
    let (listener, mut connection) = db.config().connect(tokio_postgres::NoTls).await.unwrap();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let collect = {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = message {
                    received.lock().unwrap().push(n.payload().to_owned());
                }
            }
        })
    };
    listener
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await
        .unwrap();

    write(&store, "note-1").await; // nobody armed
    let wakeup = store.arm_wakeup("note").await;
    write(&store, "note-2").await;
    woken(wakeup, "the first write").await;
    let admin = connect(&db).await;
    assert!(!armed(&admin, "note", false).await, "disarmed");
    for n in 3..5 {
        write(&store, &format!("note-{n}")).await;
    }
    write(&store, "note-5").await; // woken, not armed again
    // A round trip on the listening connection: every notification sent
    // before it (by a write that returned before it was sent) has been
    // received once it returns, since the server sends a session its
    // notifications before its answers.
    listener.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(*received.lock().unwrap(), ["note"]);
    drop(listener);
    collect.await.unwrap();
}

/// Whether `category` is armed in the database: a session holds its
/// arming key shared (see `ebb_arm_category`). The key is released by the
/// listener in the background after a notification, so the answer is
/// asked again (every 10 ms) until it is `expected`, for up to 2 s.
async fn armed(client: &tokio_postgres::Client, category: &str, expected: bool) -> bool {
    let started = std::time::Instant::now();
    loop {
        let held: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_locks
                 WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted
                   AND classid = 1700946551::oid AND objsubid = 2
                   AND objid = hashtext($1)::oid",
                &[&category],
            )
            .await
            .unwrap()
            .get(0);
        if (held > 0) == expected || started.elapsed() > Duration::from_secs(2) {
            return held > 0;
        }
        // Polls pg_locks: asked again until it holds.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// After a notification the category is busy for the busy window: arming
/// it then does not ask the database for another notification (writers
/// would pay a notifying commit for nearly every message) but returns a
/// wake-up after the busy poll. After the window it arms the database
/// again. Two armings meanwhile share one notification.
#[tokio::test]
async fn a_busy_category_is_polled_instead_of_armed() {
    let db = ebb_tests::database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        busy_category_window: Duration::from_millis(400),
        busy_category_poll: Duration::from_millis(20),
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();
    let admin = connect(&db).await;

    let first = store.arm_wakeup("note").await;
    let second = store.arm_wakeup("note").await;
    assert!(armed(&admin, "note", true).await);
    write(&store, "note-1").await;
    woken(first, "the first of two armings").await;
    woken(second, "the second, sharing its notification").await;
    assert!(
        !armed(&admin, "note", false).await,
        "disarmed at its notification"
    );

    // Busy: polled, not armed.
    let busy = store.arm_wakeup("note").await;
    assert!(busy.is_armed());
    assert!(
        busy.is_poll(),
        "a poll: nothing to read again before waiting"
    );
    let took = woken(busy, "the busy poll").await;
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert!(!armed(&admin, "note", false).await, "not armed");

    // Polled until the window has passed, as the store measures it; then
    // armed in the database again.
    let quiet = armed_outside_the_busy_window(&store, "note").await;
    assert!(armed(&admin, "note", true).await, "armed again");
    let quiet = not_woken(&store, quiet, "quiet, armed").await;
    write(&store, "note-2").await;
    woken(quiet, "a write after the window").await;
}

/// A store's busy categories share its busy polling: with two busy, each
/// is polled every two busy polls, so that the reads a store makes while
/// its categories are busy stay at one per busy poll in all. A quiet
/// category is armed as before.
#[tokio::test]
async fn busy_categories_share_the_stores_polling() {
    let db = ebb_tests::database().await;
    let poll = Duration::from_millis(150);
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        busy_category_window: Duration::from_secs(30),
        busy_category_poll: poll,
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();

    // One busy category: its poll comes after one busy poll.
    let first = store.arm_wakeup("alpha").await;
    write(&store, "alpha-1").await;
    woken(first, "alpha's notification").await;
    let started = Instant::now();
    let alone = store.arm_wakeup("alpha").await;
    assert!(alone.is_poll());
    woken(alone, "alpha's poll, alone").await;
    let alone = started.elapsed();
    assert!(alone >= poll, "{alone:?}");

    // Two: each is polled after two.
    let second = store.arm_wakeup("beta").await;
    assert!(!second.is_poll(), "beta is not busy yet: armed");
    write(&store, "beta-1").await;
    woken(second, "beta's notification").await;
    for category in ["alpha", "beta"] {
        let started = Instant::now();
        let shared = store.arm_wakeup(category).await;
        assert!(shared.is_poll(), "{category} is busy");
        woken(shared, "a poll shared by two busy categories").await;
        let took = started.elapsed();
        assert!(took >= 2 * poll, "{category}: polled after {took:?}");
    }

    // A quiet category is still armed, and its write wakes it: not a
    // poll, so only the write's notification can.
    let quiet = store.arm_wakeup("gamma").await;
    assert!(!quiet.is_poll());
    write(&store, "gamma-1").await;
    woken(quiet, "gamma's notification").await;
}

/// With no busy window, every arming asks the database.
#[tokio::test]
async fn without_a_busy_window_every_arming_arms() {
    let db = ebb_tests::database().await;
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        busy_category_window: Duration::ZERO,
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();
    let admin = connect(&db).await;
    let wakeup = store.arm_wakeup("note").await;
    write(&store, "note-1").await;
    woken(wakeup, "the first write").await;
    let wakeup = store.arm_wakeup("note").await;
    assert!(armed(&admin, "note", true).await, "armed again at once");
    let wakeup = not_woken(&store, wakeup, "nothing written").await;
    write(&store, "note-2").await;
    woken(wakeup, "the next write").await;
}

/// The listening connection is terminated: the waiter is woken though
/// nothing was written (the notification of a write may have been lost
/// with the connection), and the store listens again, so a write after
/// arming anew wakes again.
#[tokio::test]
async fn a_lost_listening_connection_wakes_the_waiters_and_listens_again() {
    let (store, db) = pg_store().await;
    let admin = connect(&db).await;
    let wakeup = store.arm_wakeup("note").await;
    assert_eq!(listeners(&admin).await, 1, "one listening connection");
    assert_eq!(terminate_listeners(&admin).await, 1);
    woken(wakeup, "the listening connection lost").await;

    // Arming waits for the listener to listen again.
    let wakeup = store.arm_wakeup("note").await;
    assert!(wakeup.is_armed());
    write(&store, "note-1").await;
    woken(wakeup, "a write after listening again").await;
    assert_eq!(listeners(&admin).await, 1, "still one");
}

/// A notification lost with the connection, and its arming with the
/// session: the write is made while the listener is away, and the waiter
/// still wakes (when the connection is lost, and again when it listens
/// anew) and finds it.
#[tokio::test]
async fn a_write_while_the_listener_is_away_is_not_slept_through() {
    let (store, db) = pg_store().await;
    let admin = connect(&db).await;
    let wakeup = store.arm_wakeup("note").await;
    terminate_listeners(&admin).await;
    write(&store, "note-1").await;
    woken(wakeup, "the write while the listener was away").await;
    let read = store
        .get_category_messages("note", &CategoryQuery::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
}

/// The server restarts: the waiter is woken, and once the server is back
/// the store listens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_the_server_wakes_the_waiters_and_listens_again() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (mut cluster, config) = cluster_with_schema(Listen::Socket).await;
        let store = PgStore::new(PgStoreConfig {
            max_connections: 2,
            ..PgStoreConfig::new(config)
        })
        .unwrap();
        let mut wakeup = store.arm_wakeup("note").await;
        let restart = Instant::now();
        tokio::task::block_in_place(|| cluster.restart()).expect("the cluster restarts");
        println!("restart took {:?}", restart.elapsed());
        tokio::time::timeout(PROMPT, &mut wakeup)
            .await
            .expect("woken by the restart");

        let wakeup = store.arm_wakeup("note").await;
        assert!(wakeup.is_armed());
        write(&store, "note-1").await;
        woken(wakeup, "a write after the restart").await;
    })
    .await
    .expect("done within a minute");
}

/// The listener lives as long as the store: dropping the last clone
/// closes its connection.
#[tokio::test]
async fn dropping_the_store_closes_the_listening_connection() {
    let (store, db) = pg_store().await;
    let admin = connect(&db).await;
    let clone = store.clone();
    let _wakeup = store.arm_wakeup("note").await;
    let _other = clone.arm_wakeup("other").await;
    assert_eq!(
        listeners(&admin).await,
        1,
        "one for the store and its clone"
    );
    drop(store);
    drop(clone);
    let started = Instant::now();
    while listeners(&admin).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the listener outlived its store"
        );
        // Polls pg_stat_activity until the backend has gone.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tests (and programs) may use one store on several runtimes, one after
/// another: the listener dies with the runtime that ran it, and the next
/// arming starts another.
#[test]
fn a_store_outlives_the_runtime_its_listener_ran_on() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let db: TestDatabase = runtime().block_on(ebb_tests::database());
    // No busy window, so that the second arming asks the new listener's
    // database session for a notification rather than polling.
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        busy_category_window: Duration::ZERO,
        ..PgStoreConfig::new(db.config())
    })
    .unwrap();
    runtime().block_on(async {
        let wakeup = store.arm_wakeup("note").await;
        write(&store, "note-1").await;
        woken(wakeup, "on the first runtime").await;
    });
    runtime().block_on(async {
        let wakeup = store.arm_wakeup("note").await;
        assert!(wakeup.is_armed());
        write(&store, "note-2").await;
        woken(wakeup, "on the second runtime").await;
        // The first runtime's listener was dropped with it; its backend
        // ends as soon as the server sees the socket closed.
        let admin = connect(&db).await;
        let started = Instant::now();
        while listeners(&admin).await != 1 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the first listener outlived its runtime"
            );
            // Polls pg_stat_activity until the backend has gone.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// A database installed by Message DB's own scripts has no
/// `ebb_arm_category`: the store never wakes, says so once, and goes on
/// working.
#[tokio::test]
async fn a_plain_message_db_install_polls_and_says_so_once() {
    let log = Log::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish(),
    );
    // The role message_store is the cluster's, and both installers create
    // it when it is missing: have ebb's template (made by the other tests
    // here at the same time) create it first, so that the two never race
    // to.
    drop(ebb_tests::database().await);
    let (store, _db) = ebb_tests::message_db::pg_store().await;
    for _ in 0..3 {
        let wakeup = store.arm_wakeup("note").await;
        assert!(!wakeup.is_armed(), "{wakeup:?}");
    }
    write(&store, "note-1").await;
    let text = log.text();
    assert_eq!(
        text.matches("ebb_arm_category").count(),
        1,
        "said once:\n{text}"
    );
    assert!(text.contains("poll"), "{text}");
}

/// The log lines written while a test runs.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
