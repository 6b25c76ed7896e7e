//! The handlers on the in-memory store: what each guard does, one at a
//! time. The same handlers under SIGKILL, PostgreSQL restarts and bad
//! input are `failure.rs` and `bad_input.rs`.

use std::sync::atomic::Ordering;

use account_component::verify::{self, Command};
use account_component::{
    DEPOSIT_RESERVATION_CATEGORY, Deposit, Error, Reserved, Withdraw, handlers,
};
use ebb::handler::{BoxError, MessageType as _, Writer};
use ebb::message_store::{ExpectedVersion, MemoryStore, Message, MessageStore, StreamName};

fn deposit(id: &str, account: &str, amount: i64) -> Deposit {
    Deposit {
        deposit_id: id.into(),
        account_id: account.into(),
        amount,
    }
}

fn withdraw(id: &str, account: &str, amount: i64) -> Withdraw {
    Withdraw {
        withdrawal_id: id.into(),
        account_id: account.into(),
        amount,
    }
}

async fn send(
    store: &MemoryStore,
    account: &str,
    command: impl ebb::handler::IntoMessageData,
) -> Message {
    let stream = StreamName::new("account:command", account).unwrap();
    let position = Writer::new(store.clone())
        .write(&stream, command, ExpectedVersion::Any)
        .await
        .unwrap();
    store.stream_messages(stream.as_str())[position as usize].clone()
}

async fn commands(store: &MemoryStore) -> Vec<Command> {
    let commands = verify::read_commands(store).await.unwrap();
    assert!(commands.other.is_empty(), "{:?}", commands.other);
    commands.valid
}

fn types(store: &MemoryStore, account: &str) -> Vec<String> {
    store
        .stream_messages(&format!("account-{account}"))
        .into_iter()
        .map(|m| m.type_name)
        .collect()
}

#[tokio::test]
async fn deposits_and_withdrawals_move_the_balance_and_an_uncovered_withdrawal_is_rejected()
-> Result<(), BoxError> {
    let store = MemoryStore::new();
    let (handlers, counters) = handlers(&store);
    for message in [
        send(&store, "1", deposit("d1", "1", 100)).await,
        send(&store, "1", withdraw("w1", "1", 30)).await,
        send(&store, "1", withdraw("w2", "1", 71)).await,
        send(&store, "1", withdraw("w3", "1", 70)).await,
    ] {
        handlers.dispatch(&message).await?;
    }
    assert_eq!(
        types(&store, "1"),
        ["Deposited", "Withdrawn", "WithdrawalRejected", "Withdrawn"]
    );
    let verified = verify::verify(&store, &commands(&store).await).await?;
    assert_eq!(verified.total_balance, 0);
    assert_eq!(verified.rejected, 1);
    assert_eq!(counters.applied.load(Ordering::Relaxed), 4);
    // Events follow their commands.
    let event = &store.stream_messages("account-1")[0];
    assert_eq!(
        event.metadata.causation_message_stream_name.as_deref(),
        Some("account:command-1")
    );
    Ok(())
}

#[tokio::test]
async fn a_command_delivered_twice_is_applied_once() -> Result<(), BoxError> {
    let store = MemoryStore::new();
    let (handlers, counters) = handlers(&store);
    let deposited = send(&store, "1", deposit("d1", "1", 100)).await;
    let withdrawn = send(&store, "1", withdraw("w1", "1", 100)).await;
    for message in [&deposited, &withdrawn, &deposited, &withdrawn] {
        handlers.dispatch(message).await?;
    }
    assert_eq!(types(&store, "1"), ["Deposited", "Withdrawn"]);
    assert_eq!(counters.redeliveries_ignored.load(Ordering::Relaxed), 2);
    verify::verify(&store, &commands(&store).await).await?;
    Ok(())
}

#[tokio::test]
async fn a_command_re_sent_with_the_same_id_is_ignored() -> Result<(), BoxError> {
    let store = MemoryStore::new();
    let (handlers, counters) = handlers(&store);
    for message in [
        send(&store, "1", deposit("d1", "1", 100)).await,
        send(&store, "1", deposit("d1", "1", 100)).await,
        send(&store, "1", withdraw("w1", "1", 10)).await,
        send(&store, "1", withdraw("w1", "1", 10)).await,
    ] {
        handlers.dispatch(&message).await?;
    }
    assert_eq!(types(&store, "1"), ["Deposited", "Withdrawn"]);
    assert_eq!(counters.resends_ignored.load(Ordering::Relaxed), 2);
    let verified = verify::verify(&store, &commands(&store).await).await?;
    assert_eq!((verified.resends, verified.total_balance), (2, 90));
    Ok(())
}

#[tokio::test]
async fn a_process_that_stopped_after_reserving_finishes_the_command_on_re_delivery()
-> Result<(), BoxError> {
    let store = MemoryStore::new();
    let (handlers, counters) = handlers(&store);
    let command = send(&store, "1", deposit("d1", "1", 100)).await;
    // What the reservation step of a process killed right after it left.
    Writer::new(store.clone())
        .write_initial(
            &StreamName::new(DEPOSIT_RESERVATION_CATEGORY, "d1")?,
            Reserved {
                account_id: "1".into(),
                amount: 100,
                sequence: command.global_position,
            },
        )
        .await?;
    handlers.dispatch(&command).await?;
    assert_eq!(types(&store, "1"), ["Deposited"]);
    assert_eq!(counters.resends_ignored.load(Ordering::Relaxed), 0);
    Ok(())
}

#[tokio::test]
async fn two_instances_with_their_own_caches_apply_each_command_once() -> Result<(), BoxError> {
    let store = MemoryStore::new();
    let (first, _) = handlers(&store);
    let (second, _) = handlers(&store);
    let mut messages = Vec::new();
    for n in 0..20 {
        let account = format!("{}", n % 3);
        messages.push(if n % 4 == 3 {
            send(&store, &account, withdraw(&format!("w{n}"), &account, 40)).await
        } else {
            send(&store, &account, deposit(&format!("d{n}"), &account, 25)).await
        });
    }
    // The second instance lags behind the first by a few commands, so its
    // cached accounts are stale when it gets to each command.
    for (n, message) in messages.iter().enumerate() {
        first.dispatch(message).await?;
        if n >= 3 {
            second.dispatch(&messages[n - 3]).await?;
        }
    }
    for message in &messages[messages.len() - 3..] {
        second.dispatch(message).await?;
    }
    let verified = verify::verify(&store, &commands(&store).await).await?;
    assert_eq!(verified.events, 20);
    Ok(())
}

#[tokio::test]
async fn a_command_that_is_wrong_is_an_error_and_writes_nothing() -> Result<(), BoxError> {
    let store = MemoryStore::new();
    let (handlers, _) = handlers(&store);
    for (amount, account_in_data) in [(0, "1"), (-5, "1"), (10, "2")] {
        let message = send(&store, "1", deposit("d1", account_in_data, amount)).await;
        let written = store.messages().len();
        let err = handlers.dispatch(&message).await.unwrap_err();
        let err = err.downcast_ref::<Error>().expect("the component's error");
        match err {
            Error::InvalidAmount { amount: found, .. } => assert_eq!(*found, amount),
            Error::WrongStream { account_id, .. } => assert_eq!(account_id, "2"),
            other => panic!("{other}"),
        }
        assert_eq!(store.messages().len(), written, "{err}");
    }
    Ok(())
}

#[tokio::test]
async fn an_unknown_type_is_skipped_and_data_that_does_not_fit_is_an_error() -> Result<(), BoxError>
{
    // (Data that is not a JSON object, which the stores refuse to write,
    // comes through `write_message` in `bad_input.rs`.)
    let store = MemoryStore::new();
    let (handlers, _) = handlers(&store);
    let stream = StreamName::new("account:command", "1")?;
    for (type_name, data, fits) in [
        ("Close", serde_json::json!({ "accountId": "1" }), true),
        (
            Deposit::TYPE_NAME,
            serde_json::json!({ "depositId": "d", "accountId": "1" }),
            false,
        ),
        (
            Deposit::TYPE_NAME,
            serde_json::json!({ "depositId": "d", "accountId": "1", "amount": "10" }),
            false,
        ),
    ] {
        let data = ebb::message_store::MessageData::new(type_name, data);
        let position = store.write(&stream, &data, ExpectedVersion::Any).await?;
        let message = store.stream_messages(stream.as_str())[position as usize].clone();
        let result = handlers.dispatch(&message).await;
        assert_eq!(result.is_ok(), fits, "{type_name}: {result:?}");
    }
    assert!(types(&store, "1").is_empty());
    Ok(())
}
