//! What both cases work on: the seed handler's messages, its `Account`
//! entity and the handler itself, as `tests/tests/seed_handler.rs` has
//! them (a benchmark cannot import a test, so they are repeated here).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_handler::retry::on_wrong_expected_version;
use ebb_handler::{
    Entity, EntityStore, Handler, MessageType, Outgoing, Projection, Received, Writer,
};
use ebb_message_store::{Metadata, PgStore, StreamName};
use ebb_retry::{Event, Retry, RetryError};

use crate::BoxError;

/// The command.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Deposit {
    pub(crate) deposit_id: String,
    pub(crate) account_id: String,
    pub(crate) amount: i64,
}
impl MessageType for Deposit {
    const TYPE_NAME: &'static str = "Deposit";
}

/// The event: a realistic small payload (a UUID, an account id, two
/// numbers), written with the metadata of a command it follows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Deposited {
    pub(crate) deposit_id: String,
    pub(crate) account_id: String,
    pub(crate) amount: i64,
    pub(crate) sequence: i64,
}
impl MessageType for Deposited {
    const TYPE_NAME: &'static str = "Deposited";
}

/// The entity. Serde, so that the fetch case can snapshot it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Account {
    pub(crate) balance: i64,
    pub(crate) sequence: Option<i64>,
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
pub(crate) const COMMAND_CATEGORY: &str = "account:command";

/// The seed handler: fetch the account, skip a deposit already applied
/// (sequence guard), write `Deposited` following the command with the
/// fetched version as expected version; an expected-version conflict is
/// retried once, after 10 ms.
pub(crate) struct Accounts {
    /// The accounts, cached (the entity store's default).
    pub(crate) accounts: EntityStore<Account, PgStore>,
    /// Writes the events.
    pub(crate) writer: Writer<PgStore>,
    /// Intervals [10] on the expected-version error.
    pub(crate) retry: Retry,
}

impl Accounts {
    /// The seed handler on `store`, and the count of the conflicts its
    /// retry caught (one instance handling commands one after another
    /// should meet none).
    pub(crate) fn new(store: &PgStore) -> Result<(Self, Arc<AtomicUsize>), BoxError> {
        let retries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&retries);
        let retry = Retry::intervals_ms([10])
            .rule(on_wrong_expected_version())
            .on_event(move |event| {
                if let Event::Failed { .. } = event {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build()?;
        let handler = Self {
            accounts: EntityStore::new(store.clone()),
            writer: Writer::new(store.clone()),
            retry,
        };
        Ok((handler, retries))
    }
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

/// The `n`th of an account's `Deposited` events as the handler would have
/// written it: following command `n` of the account's command stream,
/// whose global position it records as its sequence.
pub(crate) fn deposited(account_id: &str, n: i64) -> Outgoing<Deposited> {
    let metadata = Metadata {
        causation_message_stream_name: Some(format!("{COMMAND_CATEGORY}-{account_id}")),
        causation_message_position: Some(n),
        causation_message_global_position: Some(n + 1),
        ..Metadata::default()
    };
    Outgoing::new(Deposited {
        deposit_id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.to_owned(),
        amount: amount(n),
        sequence: n + 1,
    })
    .with_metadata(metadata)
}

/// The amount of deposit `n`: 1 to 100.
pub(crate) fn amount(n: i64) -> i64 {
    n * 13 % 100 + 1
}
