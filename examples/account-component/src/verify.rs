//! The exactness check `ebb demo` and the failure tests end with: every
//! account's events are exactly what applying each command once, in the
//! order of its command stream, gives.
//!
//! [`read_commands`] reads what was sent to `account:command`;
//! [`expected_events`] works out, without a database, the events those
//! commands must produce (re-sends ignored, withdrawals refused when the
//! balance does not cover them); [`verify`] reads the `account` category
//! and compares, account by account and event by event.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use ebb::handler::{MessageType, Received};
use ebb::message_store::{CategoryQuery, Message, MessageStore};
use futures_util::TryStreamExt as _;

use crate::handlers::check;
use crate::messages::{Deposit, Deposited, Withdraw, WithdrawalRejected, Withdrawn};
use crate::{COMMAND_CATEGORY, EVENT_CATEGORY};

/// A command as it was stored, with its global position (its sequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A `Deposit`.
    Deposit {
        /// Its global position.
        sequence: i64,
        /// The command.
        deposit: Deposit,
    },
    /// A `Withdraw`.
    Withdraw {
        /// Its global position.
        sequence: i64,
        /// The command.
        withdraw: Withdraw,
    },
}

impl Command {
    /// Its account.
    pub fn account_id(&self) -> &str {
        match self {
            Self::Deposit { deposit, .. } => &deposit.account_id,
            Self::Withdraw { withdraw, .. } => &withdraw.account_id,
        }
    }
}

/// The commands of `account:command`, in order, and what was there
/// besides.
#[derive(Debug, Clone, Default)]
pub struct Commands {
    /// Every `Deposit` and `Withdraw` that decodes and passes the
    /// handlers' checks (a positive amount, its own account's stream).
    pub valid: Vec<Command>,
    /// The global positions of the other messages: unknown types, and
    /// commands the component refuses (which stop it, or are parked).
    pub other: Vec<i64>,
}

/// Reads every message of `account:command`.
pub async fn read_commands<S: MessageStore>(
    store: &S,
) -> Result<Commands, ebb::message_store::Error> {
    let mut commands = Commands::default();
    let mut messages = store.read_category(COMMAND_CATEGORY, CategoryQuery::new());
    while let Some(message) = messages.try_next().await? {
        let global_position = message.global_position;
        match command(message) {
            Some(command) => commands.valid.push(command),
            None => commands.other.push(global_position),
        }
    }
    Ok(commands)
}

/// The command `message` is, if the handlers would apply it.
fn command(message: Message) -> Option<Command> {
    let sequence = message.global_position;
    let stream_name = message.stream_name.clone();
    let (command, name, id, amount) = match message.type_name.as_str() {
        Deposit::TYPE_NAME => {
            let deposit = Received::<Deposit>::decode(message).ok()?.into_data();
            let (id, amount) = (deposit.deposit_id.clone(), deposit.amount);
            (
                Command::Deposit { sequence, deposit },
                "Deposit",
                id,
                amount,
            )
        }
        Withdraw::TYPE_NAME => {
            let withdraw = Received::<Withdraw>::decode(message).ok()?.into_data();
            let (id, amount) = (withdraw.withdrawal_id.clone(), withdraw.amount);
            (
                Command::Withdraw { sequence, withdraw },
                "Withdraw",
                id,
                amount,
            )
        }
        _ => return None,
    };
    check(name, &stream_name, &id, command.account_id(), amount)
        .is_ok()
        .then_some(command)
}

/// One event of an account, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    /// `Deposited`, `Withdrawn` or `WithdrawalRejected`, or the type of
    /// anything else found.
    pub type_name: String,
    /// The deposit's or withdrawal's id.
    pub id: String,
    /// In cents.
    pub amount: i64,
    /// The command's global position.
    pub sequence: i64,
}

impl fmt::Display for AccountEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} of {} (sequence {})",
            self.type_name, self.id, self.amount, self.sequence
        )
    }
}

/// The events `commands` must produce, per account: each deposit or
/// withdrawal id applied once, by the first command that carries it (a
/// re-send repeats an id; re-sends go to the same account's command
/// stream, as a client retrying does); a withdrawal the balance does not
/// cover is rejected.
pub fn expected_events(commands: &[Command]) -> BTreeMap<String, Vec<AccountEvent>> {
    let mut events: BTreeMap<String, Vec<AccountEvent>> = BTreeMap::new();
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    let mut deposit_ids = HashSet::new();
    let mut withdrawal_ids = HashSet::new();
    let mut ordered: Vec<&Command> = commands.iter().collect();
    ordered.sort_by_key(|command| match command {
        Command::Deposit { sequence, .. } | Command::Withdraw { sequence, .. } => *sequence,
    });
    for command in ordered {
        let event = match command {
            Command::Deposit { sequence, deposit } => {
                if !deposit_ids.insert(deposit.deposit_id.clone()) {
                    continue;
                }
                *balances.entry(deposit.account_id.clone()).or_default() += deposit.amount;
                AccountEvent {
                    type_name: Deposited::TYPE_NAME.into(),
                    id: deposit.deposit_id.clone(),
                    amount: deposit.amount,
                    sequence: *sequence,
                }
            }
            Command::Withdraw { sequence, withdraw } => {
                if !withdrawal_ids.insert(withdraw.withdrawal_id.clone()) {
                    continue;
                }
                let balance = balances.entry(withdraw.account_id.clone()).or_default();
                let type_name = if *balance >= withdraw.amount {
                    *balance -= withdraw.amount;
                    Withdrawn::TYPE_NAME
                } else {
                    WithdrawalRejected::TYPE_NAME
                };
                AccountEvent {
                    type_name: type_name.into(),
                    id: withdraw.withdrawal_id.clone(),
                    amount: withdraw.amount,
                    sequence: *sequence,
                }
            }
        };
        events
            .entry(command.account_id().to_owned())
            .or_default()
            .push(event);
    }
    events
}

/// What [`verify`] found, all of it as expected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Accounts with events.
    pub accounts: usize,
    /// Commands read (valid ones).
    pub commands: usize,
    /// Commands ignored as re-sends of an id applied before.
    pub resends: usize,
    /// Events in the `account` category.
    pub events: usize,
    /// `Deposited` events.
    pub deposited: usize,
    /// `Withdrawn` events.
    pub withdrawn: usize,
    /// `WithdrawalRejected` events.
    pub rejected: usize,
    /// The sum of every account's balance, in cents.
    pub total_balance: i64,
    /// The lowest balance any account reached at any event, in cents
    /// (never below zero when the component is right).
    pub lowest_balance: i64,
}

/// What [`verify`] found wrong.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading the store failed.
    #[error("cannot read the store to verify it")]
    Store(#[from] ebb::message_store::Error),
    /// An account's events differ from what its commands must produce.
    #[error("{}", describe(.0))]
    Mismatch(Vec<Mismatch>),
}

/// One account whose events are wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The account.
    pub account_id: String,
    /// What its commands must produce.
    pub expected: Vec<AccountEvent>,
    /// What it holds.
    pub found: Vec<AccountEvent>,
}

fn describe(mismatches: &[Mismatch]) -> String {
    const SHOWN: usize = 5;
    let mut text = format!("{} account(s) are wrong", mismatches.len());
    for mismatch in mismatches.iter().take(SHOWN) {
        let index = mismatch
            .expected
            .iter()
            .zip(&mismatch.found)
            .position(|(expected, found)| expected != found)
            .unwrap_or_else(|| mismatch.expected.len().min(mismatch.found.len()));
        let show = |events: &[AccountEvent]| {
            events
                .get(index)
                .map_or_else(|| "nothing".to_owned(), ToString::to_string)
        };
        text.push_str(&format!(
            "\n  account {}: {} events expected, {} found; event {index}: expected {}, found {}",
            mismatch.account_id,
            mismatch.expected.len(),
            mismatch.found.len(),
            show(&mismatch.expected),
            show(&mismatch.found),
        ));
    }
    if mismatches.len() > SHOWN {
        text.push_str(&format!("\n  ... and {} more", mismatches.len() - SHOWN));
    }
    text
}

/// Compares every account's events in `store` with what `commands` must
/// produce.
pub async fn verify<S: MessageStore>(
    store: &S,
    commands: &[Command],
) -> Result<Verified, VerifyError> {
    let expected = expected_events(commands);
    let mut found: BTreeMap<String, Vec<AccountEvent>> = BTreeMap::new();
    let mut messages = store.read_category(EVENT_CATEGORY, CategoryQuery::new());
    while let Some(message) = messages.try_next().await? {
        let account_id = ebb::message_store::stream_name::id(&message.stream_name)
            .unwrap_or_default()
            .to_owned();
        found
            .entry(account_id)
            .or_default()
            .push(account_event(message));
    }
    let mut verified = Verified {
        accounts: found.len(),
        commands: commands.len(),
        resends: commands.len() - expected.values().map(Vec::len).sum::<usize>(),
        ..Verified::default()
    };
    let mut mismatches = Vec::new();
    let accounts: std::collections::BTreeSet<&String> =
        expected.keys().chain(found.keys()).collect();
    for account_id in accounts {
        let expected = expected.get(account_id).cloned().unwrap_or_default();
        let found = found.get(account_id).cloned().unwrap_or_default();
        let mut balance = 0;
        for event in &found {
            verified.events += 1;
            match event.type_name.as_str() {
                Deposited::TYPE_NAME => {
                    verified.deposited += 1;
                    balance += event.amount;
                }
                Withdrawn::TYPE_NAME => {
                    verified.withdrawn += 1;
                    balance -= event.amount;
                }
                WithdrawalRejected::TYPE_NAME => verified.rejected += 1,
                _ => {}
            }
            verified.lowest_balance = verified.lowest_balance.min(balance);
        }
        verified.total_balance += balance;
        if expected != found {
            mismatches.push(Mismatch {
                account_id: account_id.clone(),
                expected,
                found,
            });
        }
    }
    if mismatches.is_empty() {
        Ok(verified)
    } else {
        Err(VerifyError::Mismatch(mismatches))
    }
}

/// An account's event as compared; anything that does not decode keeps
/// its type and is shown as it is.
fn account_event(message: Message) -> AccountEvent {
    let type_name = message.type_name.clone();
    let decoded = match type_name.as_str() {
        Deposited::TYPE_NAME => Received::<Deposited>::decode(message)
            .ok()
            .map(|e| (e.deposit_id.clone(), e.amount, e.sequence)),
        Withdrawn::TYPE_NAME => Received::<Withdrawn>::decode(message)
            .ok()
            .map(|e| (e.withdrawal_id.clone(), e.amount, e.sequence)),
        WithdrawalRejected::TYPE_NAME => Received::<WithdrawalRejected>::decode(message)
            .ok()
            .map(|e| (e.withdrawal_id.clone(), e.amount, e.sequence)),
        _ => None,
    };
    let (id, amount, sequence) = decoded.unwrap_or_else(|| ("?".into(), 0, -1));
    AccountEvent {
        type_name,
        id,
        amount,
        sequence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deposit(sequence: i64, id: &str, account: &str, amount: i64) -> Command {
        Command::Deposit {
            sequence,
            deposit: Deposit {
                deposit_id: id.into(),
                account_id: account.into(),
                amount,
            },
        }
    }

    fn withdraw(sequence: i64, id: &str, account: &str, amount: i64) -> Command {
        Command::Withdraw {
            sequence,
            withdraw: Withdraw {
                withdrawal_id: id.into(),
                account_id: account.into(),
                amount,
            },
        }
    }

    #[test]
    fn re_sends_are_ignored_and_uncovered_withdrawals_rejected() {
        let commands = [
            deposit(1, "d1", "a", 100),
            withdraw(2, "w1", "a", 150),
            deposit(3, "d1", "a", 100),
            withdraw(4, "w2", "a", 60),
            withdraw(5, "w2", "a", 60),
            deposit(6, "d2", "b", 5),
        ];
        let events = expected_events(&commands);
        let types: Vec<(&str, i64)> = events["a"]
            .iter()
            .map(|e| (e.type_name.as_str(), e.sequence))
            .collect();
        assert_eq!(
            types,
            [
                ("Deposited", 1),
                ("WithdrawalRejected", 2),
                ("Withdrawn", 4)
            ]
        );
        assert_eq!(events["b"].len(), 1);
    }

    #[test]
    fn the_order_is_the_commands_sequence_not_the_slice() {
        let commands = [withdraw(2, "w1", "a", 50), deposit(1, "d1", "a", 100)];
        let events = expected_events(&commands);
        assert_eq!(events["a"][1].type_name, "Withdrawn");
    }
}
