//! Commands for `ebb demo` and the failure tests: deposits and
//! withdrawals spread over many accounts, some withdrawals more than the
//! balance, and some commands sent twice on purpose, the way a client
//! that timed out sends again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebb::handler::{IntoMessageData, Writer};
use ebb::message_store::{ExpectedVersion, MessageData, MessageStore, StreamName};

use crate::COMMAND_CATEGORY;
use crate::messages::{Deposit, Withdraw};

/// One command to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A deposit.
    Deposit(Deposit),
    /// A withdrawal.
    Withdraw(Withdraw),
}

impl Outgoing {
    /// Its account.
    pub fn account_id(&self) -> &str {
        match self {
            Self::Deposit(deposit) => &deposit.account_id,
            Self::Withdraw(withdraw) => &withdraw.account_id,
        }
    }

    fn message_data(&self) -> Result<MessageData, ebb::handler::Error> {
        match self {
            Self::Deposit(deposit) => deposit.clone().into_message_data(),
            Self::Withdraw(withdraw) => withdraw.clone().into_message_data(),
        }
    }
}

/// The shape of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Commands sent in all, re-sends included.
    pub commands: usize,
    /// Accounts they are spread over.
    pub accounts: usize,
    /// One command in this many is sent a second time, right after the
    /// first (0: none).
    pub resend_one_in: usize,
    /// Prefix of every account, deposit and withdrawal id, so that runs on
    /// one database do not mix.
    pub prefix: String,
    /// Seeds the amounts and the mix of deposits and withdrawals.
    pub seed: u64,
}

impl Workload {
    /// The commands, in the order to send them. Deterministic for a given
    /// workload.
    pub fn generate(&self) -> Vec<Outgoing> {
        let mut random = self.seed | 1;
        let mut next = move |below: u64| {
            // xorshift64: enough to vary amounts; not for anything else.
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random % below
        };
        let mut sent = Vec::with_capacity(self.commands);
        let mut n = 0;
        while sent.len() < self.commands {
            let account = n % self.accounts.max(1);
            let account_id = format!("{}{account}", self.prefix);
            let first_for_account = n < self.accounts;
            let command = if first_for_account || next(10) < 6 {
                Outgoing::Deposit(Deposit {
                    deposit_id: format!("{}d{n}", self.prefix),
                    account_id,
                    amount: 100 * (1 + next(100) as i64),
                })
            } else {
                Outgoing::Withdraw(Withdraw {
                    withdrawal_id: format!("{}w{n}", self.prefix),
                    account_id,
                    amount: 100 * (1 + next(150) as i64),
                })
            };
            n += 1;
            let resend = self.resend_one_in > 0 && n % self.resend_one_in == 0;
            if resend && sent.len() + 2 <= self.commands {
                sent.push(command.clone());
            }
            sent.push(command);
        }
        sent
    }
}

/// Sends `commands` to their accounts' command streams with `writers`
/// writers at once, each account's commands in order by one writer;
/// `sent` counts them as they are written.
pub async fn send<S: MessageStore>(
    store: &S,
    commands: &[Outgoing],
    writers: usize,
    sent: &Arc<AtomicUsize>,
) -> Result<(), ebb::handler::Error> {
    let writers = writers.max(1);
    let mut shares: Vec<Vec<(StreamName, MessageData)>> = vec![Vec::new(); writers];
    for command in commands {
        let stream = StreamName::new(COMMAND_CATEGORY, command.account_id())?;
        let share =
            ebb::message_store::hash_64(command.account_id()).unsigned_abs() as usize % writers;
        shares[share].push((stream, command.message_data()?));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for share in shares {
        let writer = Writer::new(store.clone());
        let sent = Arc::clone(sent);
        tasks.spawn(async move {
            for (stream, data) in share {
                writer.write(&stream, data, ExpectedVersion::Any).await?;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, ebb::handler::Error>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("a writer task does not panic")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_has_its_count_its_accounts_and_its_re_sends() {
        let workload = Workload {
            commands: 1_000,
            accounts: 50,
            resend_one_in: 20,
            prefix: "t".into(),
            seed: 7,
        };
        let commands = workload.generate();
        assert_eq!(commands.len(), 1_000);
        assert_eq!(commands, workload.generate());
        let accounts: std::collections::BTreeSet<&str> =
            commands.iter().map(Outgoing::account_id).collect();
        assert_eq!(accounts.len(), 50);
        let resent = commands
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .count();
        assert!((45..=50).contains(&resent), "{resent}");
        assert!(commands.iter().any(|c| matches!(c, Outgoing::Withdraw(_))));
        // Every account's first command is a deposit.
        let mut seen = std::collections::HashSet::new();
        for command in &commands {
            if seen.insert(command.account_id()) {
                assert!(matches!(command, Outgoing::Deposit(_)));
            }
        }
    }
}
