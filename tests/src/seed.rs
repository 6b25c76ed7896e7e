//! The seed handler and its types, shared by the test that runs two
//! instances of it on PostgreSQL and by the handler benchmark.
//!
//! A `Deposit` command arrives. Inside `Retry` on the expected-version
//! error with intervals `[10]`, the handler fetches the account with its
//! version; a deposit whose sequence (the command's global position) the
//! account has applied is logged and ignored; otherwise `Deposited`,
//! following the command and carrying the sequence, is written to
//! `account-ID` with the fetched version as the expected version.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_handler::retry::on_wrong_expected_version;
use ebb_handler::{
    Entity, EntityStore, Handler, MessageType as _, Projection, Received, Writer, message,
};
use ebb_message_store::{MessageStore, StreamName};
use ebb_retry::{Event, Retry, RetryError};

/// The command.
#[message]
#[derive(Debug, Clone)]
pub struct Deposit {
    /// The deposit's own id (what a re-sent command repeats).
    pub deposit_id: String,
    /// The account it goes to.
    pub account_id: String,
    /// In cents.
    pub amount: i64,
}

/// The event.
#[message]
#[derive(Debug, Clone)]
pub struct Deposited {
    /// The deposit's id.
    pub deposit_id: String,
    /// The account.
    pub account_id: String,
    /// In cents.
    pub amount: i64,
    /// The global position of the command it applied.
    pub sequence: i64,
}

/// The account. Serde, so that it can have snapshots.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// In cents.
    pub balance: i64,
    /// The sequence of the last deposit applied.
    pub sequence: Option<i64>,
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

/// The category the commands are written to.
pub const COMMAND_CATEGORY: &str = "account:command";

/// The seed handler.
#[derive(Debug)]
pub struct Accounts<S> {
    /// The accounts, cached (the entity store's default).
    pub accounts: EntityStore<Account, S>,
    /// Writes the events.
    pub writer: Writer<S>,
    /// Intervals `[10]` on the expected-version error.
    pub retry: Retry,
}

impl<S: MessageStore> Accounts<S> {
    /// The seed handler on `store`, and the count of the expected-version
    /// conflicts its retry caught.
    pub fn new(store: &S) -> (Self, Arc<AtomicUsize>) {
        let retries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&retries);
        let retry = Retry::intervals_ms([10])
            .rule(on_wrong_expected_version())
            .on_event(move |event| {
                if let Event::Failed { .. } = event {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build()
            .expect("intervals of 10 ms are a valid policy");
        let handler = Self {
            accounts: EntityStore::new(store.clone()),
            writer: Writer::new(store.clone()),
            retry,
        };
        (handler, retries)
    }
}

impl<S: MessageStore + 'static> Handler<Deposit> for Accounts<S> {
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

/// What a run of deposits must end with, per account: the balance, and
/// the global positions of the commands applied (each exactly once).
pub type Expected = std::collections::BTreeMap<String, (i64, std::collections::BTreeSet<i64>)>;

/// Writes `commands` deposits spread over `accounts` accounts to their
/// command streams, interleaved (one per account in turn), and returns
/// what applying each exactly once gives.
pub async fn write_commands<S: MessageStore>(
    store: &S,
    commands: usize,
    accounts: usize,
) -> Expected {
    let writer = Writer::new(store.clone());
    let mut expected = Expected::new();
    for n in 0..commands.div_ceil(accounts) {
        for account in 0..accounts {
            if n * accounts + account >= commands {
                break;
            }
            let deposit = Deposit {
                deposit_id: uuid::Uuid::new_v4().to_string(),
                account_id: format!("a{account}"),
                amount: ((account * 7 + n * 13) % 100 + 1) as i64,
            };
            let stream = StreamName::new(COMMAND_CATEGORY, &deposit.account_id)
                .expect("a valid stream name");
            let position = writer
                .write(
                    &stream,
                    deposit.clone(),
                    ebb_message_store::ExpectedVersion::Any,
                )
                .await
                .expect("the command is written");
            let written = store
                .get_stream_messages(
                    stream.as_str(),
                    &ebb_message_store::StreamQuery::new().position(position),
                )
                .await
                .expect("the command reads back");
            let entry = expected.entry(deposit.account_id).or_default();
            entry.0 += deposit.amount;
            entry.1.insert(written[0].global_position);
        }
    }
    expected
}

/// Asserts that every account holds each of its deposits exactly once and
/// the balance they add up to.
pub async fn assert_applied_exactly_once<S: MessageStore>(store: &S, expected: &Expected) {
    for (account_id, (balance, sequences)) in expected {
        let events = store
            .get_stream_messages(
                &format!("account-{account_id}"),
                &ebb_message_store::StreamQuery::new().batch_size(-1),
            )
            .await
            .expect("the account's events");
        let applied: Vec<i64> = events
            .iter()
            .map(|event| event.data::<Deposited>().expect("a Deposited").sequence)
            .collect();
        let distinct: std::collections::BTreeSet<i64> = applied.iter().copied().collect();
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
            .with_cache_capacity(0)
            .fetch(account_id)
            .await
            .expect("the account");
        assert_eq!(account.balance, *balance, "{account_id}");
    }
}
