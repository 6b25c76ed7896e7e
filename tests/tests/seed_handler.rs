//! The seed handler against PostgreSQL: two instances handle the same
//! 1,000 deposits over 50 accounts at once, each also handling some
//! commands a second time, and every deposit is applied exactly once.
//!
//! That the two collide is not left to the scheduler: each instance's
//! first write waits for the other's (a barrier in front of its store),
//! so both have fetched the first account at the same version before
//! either writes, and one of them must retry.

// The test reports what it counted.
#![allow(clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ebb_handler::Dispatcher;
use ebb_message_store::{CategoryQuery, MessageStore, PgStore};
use ebb_tests::observed::Observed;
use ebb_tests::seed::{self, Accounts, COMMAND_CATEGORY};
use futures_util::TryStreamExt as _;
use tokio::sync::Barrier;

const COMMANDS: usize = 1_000;
const ACCOUNTS: usize = 50;

/// What one instance did.
#[derive(Debug, Default)]
struct Tally {
    /// Expected-version conflicts the retry caught.
    retries: Arc<AtomicUsize>,
    /// Commands handled a second time on purpose.
    redelivered: usize,
    /// Conflicts that outlasted the retry: the process would end and its
    /// supervisor start it again at the same message.
    restarts: usize,
}

/// One instance: reads the command category from the start and handles
/// every command, every seventh one a second time a few messages later.
/// Its handler's first write waits at `barrier` until the other
/// instance's first write has come there too.
async fn instance(store: PgStore, barrier: Arc<Barrier>) -> Tally {
    let gated = Observed::new(store.clone());
    let crossed = Arc::new(AtomicBool::new(false));
    gated.before_write(move || {
        let first = !crossed.swap(true, Ordering::Relaxed);
        let barrier = Arc::clone(&barrier);
        async move {
            if first {
                barrier.wait().await;
            }
        }
    });
    let (handler, retries) = Accounts::new(&gated);
    let mut tally = Tally {
        retries,
        ..Tally::default()
    };
    let dispatcher = Dispatcher::<ebb_handler::Error>::default().on(handler);
    let mut handled = Vec::new();
    let mut commands = store.read_category(COMMAND_CATEGORY, CategoryQuery::new().batch_size(100));
    while let Some(command) = commands.try_next().await.unwrap() {
        handled.push(command);
        let mut deliveries = vec![handled.len() - 1];
        if handled.len() % 7 == 0 {
            deliveries.push(handled.len() - 4);
            tally.redelivered += 1;
        }
        for index in deliveries {
            loop {
                match dispatcher.dispatch(&handled[index]).await {
                    Ok(_) => break,
                    Err(err) if err.is_wrong_expected_version() => tally.restarts += 1,
                    Err(err) => panic!("unexpected: {err}"),
                }
            }
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_apply_every_deposit_exactly_once() {
    let db = ebb_tests::database().await;
    let store = ebb_tests::store_for(&db, 8);
    let expected = seed::write_commands(&store, COMMANDS, ACCOUNTS).await;

    let barrier = Arc::new(Barrier::new(2));
    let (one, two) = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        tokio::join!(
            tokio::spawn(instance(store.clone(), Arc::clone(&barrier))),
            tokio::spawn(instance(store.clone(), barrier)),
        )
    })
    .await
    .expect("both instances done within two minutes");
    let (one, two) = (one.unwrap(), two.unwrap());

    seed::assert_applied_exactly_once(&store, &expected).await;
    let retries = one.retries.load(Ordering::Relaxed) + two.retries.load(Ordering::Relaxed);
    assert!(
        retries > 0,
        "the instances collided at their first write, and one retried: {one:?} {two:?}"
    );
    assert!(one.redelivered > 0 && two.redelivered > 0);
    eprintln!(
        "expected-version retries: {retries}; restarts: {}; re-deliveries: {}",
        one.restarts + two.restarts,
        one.redelivered + two.redelivered
    );
}
