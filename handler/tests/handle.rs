//! `EntityStore::handle`, the handler pattern in one call, on the
//! in-memory store: written once, a re-delivery ignored, a conflict with
//! the other instance of a hot-failover pair retried into "applied
//! already", a command in another entity's stream refused, a rejection
//! passed on, several events written together, and the applied commands
//! kept across a snapshot.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb_handler::{
    Entity, EntityStore, Error, Events, Handled, Projection, Received, message, testing,
};
use ebb_message_store::{MemoryStore, MessageStore, StreamName};

#[message]
#[derive(Clone)]
struct Deposit {
    account_id: String,
    amount: i64,
}

#[message]
struct Deposited {
    account_id: String,
    amount: i64,
}

#[message]
struct Noted {
    text: String,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Account {
    balance: i64,
    notes: usize,
}

impl Entity for Account {
    const CATEGORY: &'static str = "account";

    fn projection() -> Projection<Self> {
        Projection::new()
            .apply(|account: &mut Account, deposited: Received<Deposited>| {
                account.balance += deposited.amount;
            })
            .apply(|account: &mut Account, _: Received<Noted>| account.notes += 1)
    }
}

async fn deposit(
    store: &MemoryStore,
    stream: &str,
    account_id: &str,
    amount: i64,
) -> Received<Deposit> {
    let command = Deposit {
        account_id: account_id.into(),
        amount,
    };
    testing::send(store, stream, command).await.unwrap()
}

fn deposited(command: &Received<Deposit>) -> Deposited {
    Deposited {
        account_id: command.account_id.clone(),
        amount: command.amount,
    }
}

#[tokio::test]
async fn a_command_is_written_once_and_its_re_delivery_ignored() {
    let store = MemoryStore::new();
    let accounts = EntityStore::<Account, _>::new(store.clone());
    let command = deposit(&store, "account:command-1", "1", 5).await;
    let decide = |_: &Account| Ok(deposited(&command));
    assert_eq!(
        accounts.handle(&command, "1", decide).await.unwrap(),
        Handled::Written { position: 0 }
    );
    // The event follows the command.
    let written: Vec<Received<Deposited>> = testing::messages(&store, "account-1").await.unwrap();
    let metadata = &written[0].metadata();
    assert_eq!(
        metadata.causation_message_global_position,
        Some(command.global_position())
    );
    // Delivered again, to this instance or to a fresh one (no cache).
    let fresh = EntityStore::<Account, _>::new(store.clone()).with_cache_capacity(0);
    for store in [&accounts, &fresh] {
        assert_eq!(
            store.handle(&command, "1", decide).await.unwrap(),
            Handled::AlreadyApplied {
                sequence: command.global_position(),
                applied: command.global_position()
            }
        );
    }
    // A later command is applied.
    let later = deposit(&store, "account:command-1", "1", 7).await;
    let decide = |_: &Account| Ok(deposited(&later));
    assert!(matches!(
        accounts.handle(&later, "1", decide).await.unwrap(),
        Handled::Written { position: 1 }
    ));
    assert_eq!(accounts.fetch("1").await.unwrap().0.balance, 12);
}

/// The other instance applies the command between this one's fetch and its
/// write: the write's expected version fails, the retry fetches again and
/// finds the command applied. The decision ran once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_with_the_other_instance_ends_in_applied_already() {
    let store = MemoryStore::new();
    let this = EntityStore::<Account, _>::new(store.clone());
    let other = EntityStore::<Account, _>::new(store.clone());
    let command = deposit(&store, "account:command-1", "1", 5).await;
    let decisions = AtomicUsize::new(0);
    let handled = this
        .handle(&command, "1", |_| {
            if decisions.fetch_add(1, Ordering::SeqCst) == 0 {
                // The other instance, on another thread, applies it now.
                let (other, command) = (other.clone(), command.clone());
                let applied = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    runtime
                        .block_on(other.handle(&command, "1", |_| Ok(deposited(&command))))
                        .unwrap()
                })
                .join()
                .unwrap();
                assert_eq!(applied, Handled::Written { position: 0 });
            }
            Ok(deposited(&command))
        })
        .await
        .unwrap();
    assert!(
        matches!(handled, Handled::AlreadyApplied { .. }),
        "{handled:?}"
    );
    assert_eq!(decisions.load(Ordering::SeqCst), 1);
    assert_eq!(
        testing::types(&store, "account-1").await.unwrap(),
        ["Deposited"]
    );
}

#[tokio::test]
async fn a_command_in_another_entity_s_stream_is_refused_with_nothing_written() {
    let store = MemoryStore::new();
    let accounts = EntityStore::<Account, _>::new(store.clone());
    let command = deposit(&store, "account:command-2", "1", 5).await;
    let err = accounts
        .handle(&command, &command.account_id, |_| Ok(deposited(&command)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongStream { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("account:command-2") && text.contains("for 1"),
        "{text}"
    );
    assert!(
        testing::types(&store, "account-1")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_rejection_is_passed_on_and_writes_nothing() {
    let store = MemoryStore::new();
    let accounts = EntityStore::<Account, _>::new(store.clone());
    let command = deposit(&store, "account:command-1", "1", -5).await;
    let err = accounts
        .handle(&command, "1", |_| {
            if command.amount <= 0 {
                return Err(Error::rejected("the amount must be above zero"));
            }
            Ok(deposited(&command))
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "command rejected: the amount must be above zero"
    );
    assert!(!err.is_transient());
    assert!(
        testing::types(&store, "account-1")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn several_events_are_written_together_and_none_is_nothing() {
    let store = MemoryStore::new();
    let accounts = EntityStore::<Account, _>::new(store.clone());
    let command = deposit(&store, "account:command-1", "1", 5).await;
    let handled = accounts
        .handle(&command, "1", |_| {
            Ok(Events::from(deposited(&command)).and(Noted {
                text: "first deposit".into(),
            }))
        })
        .await
        .unwrap();
    assert_eq!(handled, Handled::Written { position: 1 });
    assert_eq!(
        testing::types(&store, "account-1").await.unwrap(),
        ["Deposited", "Noted"]
    );
    let next = deposit(&store, "account:command-1", "1", 1).await;
    let handled = accounts
        .handle(&next, "1", |_| Ok(Events::none()))
        .await
        .unwrap();
    assert_eq!(handled, Handled::Nothing);
}

/// A fetch that starts from a snapshot knows what the snapshot's entity
/// had applied: a re-delivery of a command from before it is ignored.
#[tokio::test]
async fn the_applied_commands_survive_a_snapshot() {
    let store = MemoryStore::new();
    let writes = Mutex::new(Vec::new());
    let accounts = EntityStore::<Account, _>::new(store.clone()).with_snapshots(1);
    for amount in 1..=3 {
        let command = deposit(&store, "account:command-1", "1", amount).await;
        let handled = accounts
            .handle(&command, "1", |_| Ok(deposited(&command)))
            .await
            .unwrap();
        assert!(matches!(handled, Handled::Written { .. }));
        writes.lock().unwrap().push(command);
    }
    // One more fetch writes the snapshot of all three.
    accounts.fetch("1").await.unwrap();
    let snapshot = Account::snapshot_stream_name("1").unwrap();
    assert!(
        !testing::types(&store, snapshot.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    // Events after the snapshot are none: a fresh store starts from it.
    let fresh = EntityStore::<Account, _>::new(store.clone())
        .with_cache_capacity(0)
        .with_snapshots(1);
    let first = writes.lock().unwrap()[0].clone();
    let handled = fresh
        .handle(&first, "1", |_| Ok(deposited(&first)))
        .await
        .unwrap();
    assert!(
        matches!(handled, Handled::AlreadyApplied { .. }),
        "{handled:?}"
    );
    let stream = StreamName::new("account", "1").unwrap();
    assert_eq!(
        store.stream_version(stream.as_str()).await.unwrap(),
        Some(2)
    );
}
