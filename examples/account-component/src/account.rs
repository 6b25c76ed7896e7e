//! The account entity, projected from `account-ACCOUNT_ID`.

use ebb_handler::{Entity, Projection, Received};

use crate::messages::{Deposited, WithdrawalRejected, Withdrawn};

/// An account as its events leave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// In cents; never below zero.
    pub balance: i64,
    /// The sequence (command global position) of the last command
    /// applied, accepted or rejected.
    pub sequence: Option<i64>,
}

impl Account {
    /// True when the command at global position `sequence` was applied
    /// already: the sequence guard against re-delivery. Commands of one
    /// account arrive in the order of its command stream, so anything at
    /// or before the last one applied is a re-delivery.
    pub fn processed(&self, sequence: i64) -> bool {
        self.sequence.is_some_and(|applied| applied >= sequence)
    }

    /// True when the balance covers `amount`.
    pub fn sufficient_funds(&self, amount: i64) -> bool {
        self.balance >= amount
    }
}

impl Entity for Account {
    const CATEGORY: &'static str = "account";

    fn projection() -> Projection<Self> {
        Projection::new()
            .apply(|account: &mut Account, deposited: Received<Deposited>| {
                account.balance += deposited.amount;
                account.sequence = Some(deposited.sequence);
            })
            .apply(|account: &mut Account, withdrawn: Received<Withdrawn>| {
                account.balance -= withdrawn.amount;
                account.sequence = Some(withdrawn.sequence);
            })
            .apply(
                |account: &mut Account, rejected: Received<WithdrawalRejected>| {
                    account.sequence = Some(rejected.sequence);
                },
            )
    }
}
