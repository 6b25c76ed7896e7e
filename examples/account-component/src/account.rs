//! The account entity, projected from `account-ACCOUNT_ID`.

use ebb::handler::{Entity, Projection, Received};

use crate::messages::{Deposited, WithdrawalRejected, Withdrawn};

/// An account as its events leave it. The commands it has applied (the
/// sequence guard) are the entity store's to know: see
/// `EntityStore::handle`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// In cents; never below zero.
    pub balance: i64,
}

impl Account {
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
            })
            .apply(|account: &mut Account, withdrawn: Received<Withdrawn>| {
                account.balance -= withdrawn.amount;
            })
            // A rejection changes no balance; that it applied its command
            // the entity store learns from its metadata.
            .apply(|_: &mut Account, _: Received<WithdrawalRejected>| {})
    }
}
