//! The seed handler against PostgreSQL: two instances handle the same
//! 1,000 deposits over 50 accounts at once, each also handling some
//! commands a second time, and every deposit is applied exactly once.

// The test reports what it counted.
#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_handler::{Dispatcher, EntityStore, Writer};
use ebb_message_store::{CategoryQuery, ExpectedVersion, MessageStore, PgStore, StreamName};
use ebb_tests::seed::{Account, Accounts, COMMAND_CATEGORY, Deposit, Deposited};
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
    let writer = Writer::new(store.clone());
    let mut expected: BTreeMap<String, (i64, BTreeSet<i64>)> = BTreeMap::new();
    let batch_per_account: Vec<Vec<Deposit>> = (0..ACCOUNTS)
        .map(|account| {
            (0..COMMANDS / ACCOUNTS)
                .map(|n| Deposit {
                    deposit_id: uuid::Uuid::new_v4().to_string(),
                    account_id: format!("a{account}"),
                    amount: (account * 7 + n * 13) as i64 % 100 + 1,
                })
                .collect()
        })
        .collect();
    // Interleave the accounts, one command at a time, so that both
    // instances keep moving between accounts.
    for n in 0..COMMANDS / ACCOUNTS {
        for commands in &batch_per_account {
            let deposit = commands[n].clone();
            let stream = StreamName::new(COMMAND_CATEGORY, &deposit.account_id).unwrap();
            let position = writer
                .write(&stream, deposit.clone(), ExpectedVersion::Any)
                .await
                .unwrap();
            let stored = store
                .get_stream_messages(
                    stream.as_str(),
                    &ebb_message_store::StreamQuery::new().position(position),
                )
                .await
                .unwrap();
            let entry = expected.entry(deposit.account_id).or_default();
            entry.0 += deposit.amount;
            entry.1.insert(stored[0].global_position);
        }
    }

    let (one, two) = tokio::join!(
        tokio::spawn(instance(store.clone())),
        tokio::spawn(instance(store.clone())),
    );
    let (one, two) = (one.unwrap(), two.unwrap());

    for (account_id, (balance, sequences)) in &expected {
        let events = store
            .get_stream_messages(
                &format!("account-{account_id}"),
                &ebb_message_store::StreamQuery::new().batch_size(-1),
            )
            .await
            .unwrap();
        let applied: Vec<i64> = events
            .iter()
            .map(|event| event.data::<Deposited>().unwrap().sequence)
            .collect();
        let distinct: BTreeSet<i64> = applied.iter().copied().collect();
        assert_eq!(
            applied.len(),
            distinct.len(),
            "{account_id}: a deposit applied twice"
        );
        assert_eq!(
            &distinct, sequences,
            "{account_id}: deposits lost or foreign"
        );
        let (account, _) = EntityStore::<Account, _>::new(store.clone())
            .fetch(account_id)
            .await
            .unwrap();
        assert_eq!(account.balance, *balance, "{account_id}");
    }
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
