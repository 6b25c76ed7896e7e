//! Both idempotence patterns, on the in-memory store, the way a handler's
//! unit test uses it: a command delivered again changes nothing.

use ebb_handler::{
    BoxError, Entity, EntityStore, MessageType, Projection, Received, Reservation, Writer,
};
use ebb_message_store::{
    ExpectedVersion, MemoryStore, Message, MessageStore, StreamName, memory::Write,
};

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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

fn deposited(deposit: &Received<Deposit>) -> ebb_handler::Outgoing<Deposited> {
    Deposited {
        deposit_id: deposit.deposit_id.clone(),
        account_id: deposit.account_id.clone(),
        amount: deposit.amount,
        sequence: deposit.global_position(),
    }
    .follow(deposit)
}

/// The sequence pattern: the account records the global position of the
/// last command it applied, and a command at or below it is ignored.
async fn handle_with_sequence(
    deposit: Received<Deposit>,
    accounts: &EntityStore<Account, MemoryStore>,
    writer: &Writer<MemoryStore>,
) -> Result<(), BoxError> {
    let (account, version) = accounts.fetch(&deposit.account_id).await?;
    if account
        .sequence
        .is_some_and(|sequence| sequence >= deposit.global_position())
    {
        tracing::info!(
            sequence = deposit.global_position(),
            "already applied; ignored"
        );
        return Ok(());
    }
    let stream = StreamName::new("account", &deposit.account_id)?;
    writer.write(&stream, deposited(&deposit), version).await?;
    Ok(())
}

/// The reservation pattern: the first message of a stream named by the
/// deposit's id reserves it; a command whose reservation is already made
/// is done.
async fn handle_with_reservation(
    deposit: Received<Deposit>,
    writer: &Writer<MemoryStore>,
) -> Result<(), BoxError> {
    let key = StreamName::new("depositReservation", &deposit.deposit_id)?;
    if writer.reserve(&key, deposited(&deposit)).await? == Reservation::AlreadyMade {
        tracing::info!(deposit_id = %deposit.deposit_id, "already reserved; ignored");
        return Ok(());
    }
    let stream = StreamName::new("account", &deposit.account_id)?;
    writer
        .write(&stream, deposited(&deposit), ExpectedVersion::Any)
        .await?;
    Ok(())
}

/// Writes a command and returns it as the handler receives it.
async fn command(store: &MemoryStore, deposit_id: &str, amount: i64) -> Received<Deposit> {
    let stream = StreamName::new("account:command", "1").unwrap();
    let deposit = Deposit {
        deposit_id: deposit_id.into(),
        account_id: "1".into(),
        amount,
    };
    Writer::new(store.clone())
        .write(&stream, deposit, ExpectedVersion::Any)
        .await
        .unwrap();
    let message: Message = store.stream_messages("account:command-1").pop().unwrap();
    Received::decode(message).unwrap()
}

fn account_writes(store: &MemoryStore) -> Vec<Write> {
    store
        .writes()
        .into_iter()
        .filter(|write| write.stream_name == "account-1")
        .collect()
}

#[tokio::test]
async fn the_sequence_pattern_ignores_a_command_delivered_again() {
    let store = MemoryStore::new();
    let accounts = EntityStore::<Account, _>::new(store.clone());
    let writer = Writer::new(store.clone());

    let first = command(&store, "d1", 10).await;
    handle_with_sequence(first.clone(), &accounts, &writer)
        .await
        .unwrap();
    // What the handler wrote, as Eventide's substitute writer shows it.
    let writes = account_writes(&store);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].expected_version, ExpectedVersion::NoStream);
    let event = Deposited::from_message_data(&writes[0].messages[0])
        .expect("a Deposited")
        .unwrap();
    assert_eq!(event.sequence, first.global_position());
    assert_eq!(event.amount, 10);
    let metadata = &writes[0].messages[0].metadata;
    assert_eq!(
        metadata.causation_message_global_position,
        Some(first.global_position())
    );

    // Delivered again: nothing changes.
    handle_with_sequence(first, &accounts, &writer)
        .await
        .unwrap();
    assert_eq!(account_writes(&store).len(), 1);

    let second = command(&store, "d2", 5).await;
    handle_with_sequence(second, &accounts, &writer)
        .await
        .unwrap();
    let writes = account_writes(&store);
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[1].expected_version, ExpectedVersion::Exact(0));
    let (account, _) = accounts.fetch("1").await.unwrap();
    assert_eq!(account.balance, 15);
}

#[tokio::test]
async fn the_reservation_pattern_ignores_a_command_sent_again() {
    let store = MemoryStore::new();
    let writer = Writer::new(store.clone());

    handle_with_reservation(command(&store, "d1", 10).await, &writer)
        .await
        .unwrap();
    // The same deposit sent again: a new message, a new global position,
    // which the sequence pattern could not tell from a new deposit.
    handle_with_reservation(command(&store, "d1", 10).await, &writer)
        .await
        .unwrap();
    let events = store.stream_messages("account-1");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(store.stream_messages("depositReservation-d1").len(), 1);

    handle_with_reservation(command(&store, "d2", 3).await, &writer)
        .await
        .unwrap();
    assert_eq!(store.stream_messages("account-1").len(), 2);
    assert_eq!(
        store.stream_version("depositReservation-d2").await.unwrap(),
        Some(0)
    );
}
