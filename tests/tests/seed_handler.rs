//! The seed handler against PostgreSQL: two instances handle the same
//! 1,000 deposits over 50 accounts at once, each also handling some
//! commands a second time, and every deposit is applied exactly once.

// The test reports what it counted.
#![allow(clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_handler::Dispatcher;
use ebb_message_store::{CategoryQuery, MessageStore, PgStore};
use ebb_tests::seed::{self, Accounts, COMMAND_CATEGORY};
use futures_util::TryStreamExt as _;

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
async fn instance(store: PgStore) -> Tally {
    let (handler, retries) = Accounts::new(&store);
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

    let (one, two) = tokio::join!(
        tokio::spawn(instance(store.clone())),
        tokio::spawn(instance(store.clone())),
    );
    let (one, two) = (one.unwrap(), two.unwrap());

    seed::assert_applied_exactly_once(&store, &expected).await;
    let retries = one.retries.load(Ordering::Relaxed) + two.retries.load(Ordering::Relaxed);
    assert!(
        retries > 0,
        "the instances raced and retried: {one:?} {two:?}"
    );
    assert!(one.redelivered > 0 && two.redelivered > 0);
    eprintln!(
        "expected-version retries: {retries}; restarts: {}; re-deliveries: {}",
        one.restarts + two.restarts,
        one.redelivered + two.redelivered
    );
}
