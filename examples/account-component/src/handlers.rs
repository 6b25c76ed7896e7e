//! The command handlers.
//!
//! Each command goes through three guards, and a crash between any two of
//! its writes leaves something the next delivery of the same command
//! finishes, never repeats:
//!
//! 1. **The command itself**: an amount of zero or less, or an account id
//!    other than its command stream's, is an [`Error`] that ends the
//!    process (the consumer records the failure; with parking on, the
//!    message is parked after K such failures).
//! 2. **The reservation** (re-sent commands): the first command with a
//!    given `depositId` writes [`Reserved`] with its sequence as the first
//!    message of `accountDeposit-DEPOSIT_ID` (`accountWithdrawal-…` for
//!    withdrawals). A command that finds the stream taken by another
//!    sequence is a re-send and is ignored; one that finds its own
//!    sequence is a re-delivery (the process stopped after reserving, or
//!    the other instance of a hot-failover pair reserved first) and goes
//!    on.
//! 3. **The sequence guard** (re-delivery): `EntityStore::handle` fetches
//!    the account with its version and the commands it has applied, ignores
//!    a command applied already, and writes the event expecting the fetched
//!    version, retried on the expected-version error: so of two instances
//!    applying the same command one wins, and the other retries, finds it
//!    applied, and ignores it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ebb::handler::{
    EntityStore, Events, Handled, Handler, MessageType as _, Received, Reservation, Writer, handles,
};
use ebb::message_store::{MessageStore, StreamName, StreamQuery};

use crate::account::Account;
use crate::messages::{Deposit, Deposited, Reserved, Withdraw, WithdrawalRejected, Withdrawn};
use crate::{DEPOSIT_RESERVATION_CATEGORY, LOG_RESEND, WITHDRAWAL_RESERVATION_CATEGORY};

/// Why a command could not be handled. Each one ends the process: the
/// command is wrong, not the moment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed, a stored message did not fit its type, or the
    /// expected-version conflict outlasted its retries.
    #[error(transparent)]
    Handler(#[from] ebb::handler::Error),

    /// A command's amount was zero or negative.
    #[error(
        "{command} {id} for account {account_id}: amount {amount} is not a positive number of cents"
    )]
    InvalidAmount {
        /// `Deposit` or `Withdraw`.
        command: &'static str,
        /// Its deposit or withdrawal id.
        id: String,
        /// Its account.
        account_id: String,
        /// The amount it asked for.
        amount: i64,
    },

    /// A command named an account other than the one of its command
    /// stream. Commands of one account must share one stream, or the
    /// sequence guard cannot tell a re-delivery from a late command.
    #[error(
        "{command} in {stream_name} names account {account_id}: commands go to account:command-ACCOUNT_ID"
    )]
    WrongStream {
        /// `Deposit` or `Withdraw`.
        command: &'static str,
        /// The stream it was found in.
        stream_name: String,
        /// The account it names.
        account_id: String,
    },

    /// A reservation stream refused its first message but then read back
    /// empty: the store lost or hid a message.
    #[error("{stream_name} refused a reservation but holds none")]
    ReservationMissing {
        /// The reservation stream.
        stream_name: String,
    },
}

/// What the handlers counted since they were made, for code that runs
/// them in process (the unit tests read them). `ebb demo` counts the
/// instances' log lines instead, since a killed process takes its
/// counters with it.
#[derive(Debug, Default)]
pub struct Counters {
    /// Commands that wrote their event.
    pub applied: AtomicU64,
    /// Commands found applied already (the sequence guard).
    pub redeliveries_ignored: AtomicU64,
    /// Commands whose id another command had reserved (re-sends).
    pub resends_ignored: AtomicU64,
}

/// The handlers of `Deposit` and `Withdraw`; see the module
/// documentation.
#[derive(Debug)]
#[handles(Deposit, Withdraw)]
pub struct Accounts<S> {
    accounts: EntityStore<Account, S>,
    writer: Writer<S>,
    counters: Arc<Counters>,
}

impl<S: MessageStore> Accounts<S> {
    /// The handlers on `store`, with the entity store's cache, and its
    /// retry of expected-version conflicts (10, 100 and 1,000 ms, as
    /// Eventide's examples).
    pub fn new(store: &S) -> Self {
        Self {
            accounts: EntityStore::new(store.clone()),
            writer: Writer::new(store.clone()),
            counters: Arc::default(),
        }
    }

    /// What the handlers have counted so far.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// The reservation guard: true when the command at `sequence` holds
    /// the reservation of `id` (it made it now, or it made it before and
    /// this is a re-delivery), false when another command holds it.
    async fn reserve(
        &self,
        category: &str,
        id: &str,
        reserved: Reserved,
        command: &Received<impl ebb::handler::MessageType>,
    ) -> Result<bool, Error> {
        let stream = StreamName::new(category, id).map_err(ebb::handler::Error::from)?;
        let sequence = reserved.sequence;
        match self
            .writer
            .reserve(&stream, reserved.follow(command))
            .await?
        {
            Reservation::Made => Ok(true),
            Reservation::AlreadyMade => {
                let first = self
                    .writer
                    .store()
                    .get_stream_messages(stream.as_str(), &StreamQuery::new().batch_size(1))
                    .await
                    .map_err(ebb::handler::Error::from)?;
                let holder = match first.into_iter().next() {
                    Some(message) => Received::<Reserved>::decode(message)?.sequence,
                    // Reserved streams are never deleted; a store that
                    // refused the write and then shows nothing is wrong.
                    None => {
                        return Err(Error::ReservationMissing {
                            stream_name: stream.into_string(),
                        });
                    }
                };
                if holder == sequence {
                    Ok(true)
                } else {
                    self.counters
                        .resends_ignored
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(sequence, reserved_by = holder, id, "{LOG_RESEND}");
                    Ok(false)
                }
            }
        }
    }

    /// The sequence guard and the write, in one call of the entity store
    /// (see the module documentation), counted.
    async fn apply<F, R>(
        &self,
        command: &Received<impl ebb::handler::MessageType>,
        account_id: &str,
        decide: F,
    ) -> Result<(), Error>
    where
        F: Fn(&Account) -> Result<R, ebb::handler::Error>,
        R: Into<Events>,
    {
        let counter = match self.accounts.handle(command, account_id, decide).await? {
            Handled::Written { .. } => &self.counters.applied,
            Handled::AlreadyApplied { .. } => &self.counters.redeliveries_ignored,
            Handled::Nothing => return Ok(()),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The checks every command passes before anything is written (also what
/// [`verify`](crate::verify) counts as a command the handlers apply).
pub(crate) fn check(
    command: &'static str,
    stream_name: &str,
    id: &str,
    account_id: &str,
    amount: i64,
) -> Result<(), Error> {
    if amount <= 0 {
        return Err(Error::InvalidAmount {
            command,
            id: id.to_owned(),
            account_id: account_id.to_owned(),
            amount,
        });
    }
    let own_stream = StreamName::parse(stream_name)
        .ok()
        .and_then(|name| name.id().map(|stream_id| stream_id == account_id))
        .unwrap_or(false);
    if !own_stream {
        return Err(Error::WrongStream {
            command,
            stream_name: stream_name.to_owned(),
            account_id: account_id.to_owned(),
        });
    }
    Ok(())
}

/// What the first two guards need of a command.
struct Guard<'a> {
    /// `Deposit` or `Withdraw`.
    command: &'static str,
    /// The category its id is reserved in.
    reservations: &'static str,
    /// Its deposit or withdrawal id.
    id: &'a str,
    account_id: &'a str,
    amount: i64,
}

impl<S: MessageStore> Accounts<S> {
    /// The checks and the reservation of `command`'s id: true when the
    /// command goes on to be applied, false for a re-send.
    async fn guard(
        &self,
        command: &Received<impl ebb::handler::MessageType>,
        guard: Guard<'_>,
    ) -> Result<bool, Error> {
        check(
            guard.command,
            command.stream_name(),
            guard.id,
            guard.account_id,
            guard.amount,
        )?;
        let reserved = Reserved {
            account_id: guard.account_id.to_owned(),
            amount: guard.amount,
            sequence: command.global_position(),
        };
        self.reserve(guard.reservations, guard.id, reserved, command)
            .await
    }
}

impl<S: MessageStore> Handler<Deposit> for Accounts<S> {
    type Error = Error;

    async fn handle(&self, deposit: Received<Deposit>) -> Result<(), Error> {
        let guard = Guard {
            command: "Deposit",
            reservations: DEPOSIT_RESERVATION_CATEGORY,
            id: &deposit.deposit_id,
            account_id: &deposit.account_id,
            amount: deposit.amount,
        };
        if !self.guard(&deposit, guard).await? {
            return Ok(());
        }
        let sequence = deposit.global_position();
        self.apply(&deposit, &deposit.account_id, |_account| {
            Ok(Deposited {
                deposit_id: deposit.deposit_id.clone(),
                account_id: deposit.account_id.clone(),
                amount: deposit.amount,
                sequence,
            })
        })
        .await
    }
}

impl<S: MessageStore> Handler<Withdraw> for Accounts<S> {
    type Error = Error;

    async fn handle(&self, withdraw: Received<Withdraw>) -> Result<(), Error> {
        let guard = Guard {
            command: "Withdraw",
            reservations: WITHDRAWAL_RESERVATION_CATEGORY,
            id: &withdraw.withdrawal_id,
            account_id: &withdraw.account_id,
            amount: withdraw.amount,
        };
        if !self.guard(&withdraw, guard).await? {
            return Ok(());
        }
        let sequence = withdraw.global_position();
        self.apply(&withdraw, &withdraw.account_id, |account| {
            let (withdrawal_id, account_id, amount) = (
                withdraw.withdrawal_id.clone(),
                withdraw.account_id.clone(),
                withdraw.amount,
            );
            Ok(if account.sufficient_funds(amount) {
                Events::from(Withdrawn {
                    withdrawal_id,
                    account_id,
                    amount,
                    sequence,
                })
            } else {
                Events::from(WithdrawalRejected {
                    withdrawal_id,
                    account_id,
                    amount,
                    sequence,
                })
            })
        })
        .await
    }
}
