//! The seed handler against PostgreSQL: two instances handle the same
//! 1,000 deposits over 50 accounts at once, each also handling some
//! commands a second time, and every deposit is applied exactly once.

// The test reports what it counted.
#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_handler::retry::on_wrong_expected_version;
use ebb_handler::{
    Dispatcher, Entity, EntityStore, Handler, MessageType, Projection, Received, Writer,
};
use ebb_message_store::{CategoryQuery, ExpectedVersion, MessageStore, PgStore, StreamName};
use ebb_retry::{Event, Retry, RetryError};
use futures_util::TryStreamExt as _;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deposit {
    deposit_id: String,
    account_id: String,
    amount: i64,
}
impl MessageType for Deposit {
    const TYPE_NAME: &'static str = "Deposit";
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deposited {
    deposit_id: String,
    account_id: String,
    amount: i64,
    sequence: i64,
}
impl MessageType for Deposited {
    const TYPE_NAME: &'static str = "Deposited";
}

#[derive(Debug, Clone, Default)]
struct Account {
    balance: i64,
    sequence: Option<i64>,
}

impl Entity for Account {
    const CATEGORY: &'static str = "account";
    fn projection() -> Projection<Self> {
        Projection::new().apply(|account: &mut Account, deposited: Received<Deposited>| {
            account.balance += deposited.amount;
            account.sequence = Some(deposited.sequence);
        })
    }
}

/// The seed handler.
struct Accounts {
    accounts: EntityStore<Account, PgStore>,
    writer: Writer<PgStore>,
    retry: Retry,
}

impl Handler<Deposit> for Accounts {
    type Error = ebb_handler::Error;

    async fn handle(&self, deposit: Received<Deposit>) -> Result<(), ebb_handler::Error> {
        self.retry
            .run(|_cycle| async {
                let (account, version) = self.accounts.fetch(&deposit.account_id).await?;
                let sequence = deposit.global_position();
                if account.sequence.is_some_and(|applied| applied >= sequence) {
                    tracing::info!(sequence, "deposit already applied; ignored");
                    return Ok(());
                }
                let deposited = Deposited {
                    deposit_id: deposit.deposit_id.clone(),
                    account_id: deposit.account_id.clone(),
                    amount: deposit.amount,
                    sequence,
                };
                let stream = StreamName::new("account", &deposit.account_id)?;
                self.writer
                    .write(&stream, deposited.follow(&deposit), version)
                    .await?;
                Ok(())
            })
            .await
            .map_err(RetryError::into_last)
    }
}

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
    let tally = Tally::default();
    let retries = Arc::clone(&tally.retries);
    let retry = Retry::intervals_ms([10])
        .rule(on_wrong_expected_version())
        .on_event(move |event| {
            if let Event::Failed { .. } = event {
                retries.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    let dispatcher = Dispatcher::<ebb_handler::Error>::default().on(Accounts {
        accounts: EntityStore::new(store.clone()),
        writer: Writer::new(store.clone()),
        retry,
    });
    let mut tally = tally;
    let mut handled = Vec::new();
    let mut commands = store.read_category("account:command", CategoryQuery::new().batch_size(100));
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
            let stream = StreamName::new("account:command", &deposit.account_id).unwrap();
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
