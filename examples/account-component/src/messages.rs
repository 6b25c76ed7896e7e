//! The component's messages: its interface to every other program.
//!
//! Field names are camelCase on the wire and amounts are integers, in
//! cents, as in Eventide's account component, so that a client in any
//! language drives it by writing JSON to `account:command-ACCOUNT_ID`.

use ebb::handler::message;

/// Command: put `amount` cents into an account. `depositId` is the
/// client's own id for the deposit: sending the same command again (a
/// client retrying after a timeout, say) deposits nothing more.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    /// The client's id for this deposit.
    pub deposit_id: String,
    /// The account; the command goes to `account:command-ACCOUNT_ID`.
    pub account_id: String,
    /// In cents; more than zero.
    pub amount: i64,
}

/// Command: take `amount` cents out of an account if its balance covers
/// it. `withdrawalId` plays the part `depositId` plays for [`Deposit`].
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdraw {
    /// The client's id for this withdrawal.
    pub withdrawal_id: String,
    /// The account; the command goes to `account:command-ACCOUNT_ID`.
    pub account_id: String,
    /// In cents; more than zero.
    pub amount: i64,
}

/// Event in `account-ACCOUNT_ID`: a deposit was applied.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposited {
    /// The deposit's id.
    pub deposit_id: String,
    /// The account.
    pub account_id: String,
    /// In cents.
    pub amount: i64,
    /// The global position of the `Deposit` command applied.
    pub sequence: i64,
}

/// Event in `account-ACCOUNT_ID`: a withdrawal was applied.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    /// The withdrawal's id.
    pub withdrawal_id: String,
    /// The account.
    pub account_id: String,
    /// In cents.
    pub amount: i64,
    /// The global position of the `Withdraw` command applied.
    pub sequence: i64,
}

/// Event in `account-ACCOUNT_ID`: a withdrawal was refused because the
/// balance did not cover it. The balance is unchanged.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRejected {
    /// The withdrawal's id.
    pub withdrawal_id: String,
    /// The account.
    pub account_id: String,
    /// In cents: what was asked for.
    pub amount: i64,
    /// The global position of the `Withdraw` command refused.
    pub sequence: i64,
}

/// The reservation of a deposit's or withdrawal's id: the first message of
/// `accountDeposit-DEPOSIT_ID` or `accountWithdrawal-WITHDRAWAL_ID`,
/// written by the first command with that id. A later command with the
/// same id (a re-send) finds another command's sequence here and is
/// ignored; a re-delivery of the same command finds its own and goes on.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// The account of the command that made the reservation.
    pub account_id: String,
    /// Its amount, in cents.
    pub amount: i64,
    /// Its global position.
    pub sequence: i64,
}
