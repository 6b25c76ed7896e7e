//! Eventide's account component on ebb.
//!
//! Clients in any language send commands as JSON messages to
//! `account:command-ACCOUNT_ID`:
//!
//! | command | data |
//! |---|---|
//! | `Deposit` | `{"depositId", "accountId", "amount"}` |
//! | `Withdraw` | `{"withdrawalId", "accountId", "amount"}` |
//!
//! and the component writes one event per command applied to
//! `account-ACCOUNT_ID`:
//!
//! | event | data |
//! |---|---|
//! | `Deposited` | `{"depositId", "accountId", "amount", "sequence"}` |
//! | `Withdrawn` | `{"withdrawalId", "accountId", "amount", "sequence"}` |
//! | `WithdrawalRejected` | `{"withdrawalId", "accountId", "amount", "sequence"}`: the balance did not cover it |
//!
//! Amounts are integers, in cents; `sequence` is the command's global
//! position. Every command is applied exactly once, whatever happens: a
//! command delivered again after a crash (the sequence guard), the same
//! command sent twice by a client (the reservation of its `depositId` or
//! `withdrawalId`), and two instances of the component handling the same
//! commands side by side (hot failover; expected versions and `Retry`).
//! [`mod@handlers`] says how.
//!
//! The binary, `account-component`, is configured by its environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `DATABASE_URL`, or `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGTARGETSESSIONATTRS` | the message store (host lists, TLS and `target_session_attrs` as libpq: see `PgStoreConfig::from_env`) |
//! | `EBB_PREPARED_STATEMENTS`, `EBB_LISTEN_DATABASE_URL` | behind a transaction-pooling PgBouncer: `off`, and a direct connection for wake-ups (see the README's *Running in production*) |
//! | `CONSUMER_IDENTIFIER` | the consumer's identifier: its position is kept in `account:command+position-IDENTIFIER` (without it, `account:command+position`) |
//! | `ACCOUNT_COMPONENT_CONCURRENCY` | commands handled at once, across accounts (default 1) |
//! | `ACCOUNT_COMPONENT_PARK_AFTER_FAILURES` | park a command that ended the process this many times (default: never); needs `CONSUMER_IDENTIFIER` |
//! | `ACCOUNT_COMPONENT_METRICS_ADDR` | serve Prometheus metrics at this address (default: none) |
//! | `RUST_LOG` | the log filter (default `info`) |
//!
//! It runs under a supervisor: SIGTERM finishes the command in hand and
//! exits 0; an unexpected error (a command it cannot handle, the database
//! gone for longer than the read retries) exits non-zero for systemd to
//! restart it. The unit file is `account-component.service` beside this
//! crate.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use ebb::consumer::{Consumer, ConsumerConfig, Host};
use ebb::handler::Dispatcher;
use ebb::message_store::{MessageStore, PgStore};

mod account;
pub mod handlers;
mod messages;
pub mod supervise;
pub mod verify;
pub mod workload;

pub use account::Account;
pub use handlers::{Accounts, Counters, Error};
pub use messages::{Deposit, Deposited, Reserved, Withdraw, WithdrawalRejected, Withdrawn};

/// Where commands are sent: `account:command-ACCOUNT_ID`.
pub const COMMAND_CATEGORY: &str = "account:command";
/// Where events are written: `account-ACCOUNT_ID`.
pub const EVENT_CATEGORY: &str = "account";
/// Reservations of deposit ids: `accountDeposit-DEPOSIT_ID`.
pub const DEPOSIT_RESERVATION_CATEGORY: &str = "accountDeposit";
/// Reservations of withdrawal ids: `accountWithdrawal-WITHDRAWAL_ID`.
pub const WITHDRAWAL_RESERVATION_CATEGORY: &str = "accountWithdrawal";

/// Logged (info, by the entity store) for each command found applied
/// already.
pub const LOG_REDELIVERY: &str = ebb::handler::LOG_ALREADY_APPLIED;
/// Logged (info) for each command whose id another command reserved.
pub const LOG_RESEND: &str = "id reserved by another command; re-sent command ignored";
/// Logged (info, by `ebb_retry`) for each failed attempt about to be
/// retried; with [`LOG_CONFLICT_KIND`] in the line, an expected-version
/// conflict.
pub const LOG_CONFLICT: &str = "attempt failed, retrying";
/// The `kind` of the retry's line for an expected-version conflict.
pub const LOG_CONFLICT_KIND: &str = "kind=\"wrong expected version\"";

/// The component's settings, as the binary reads them from its
/// environment (see the crate documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `CONSUMER_IDENTIFIER`.
    pub identifier: Option<String>,
    /// `ACCOUNT_COMPONENT_CONCURRENCY` (default 1).
    pub concurrency: usize,
    /// `ACCOUNT_COMPONENT_PARK_AFTER_FAILURES`.
    pub park_after_failures: Option<u32>,
    /// `ACCOUNT_COMPONENT_METRICS_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
}

impl Settings {
    /// Reads the settings from the process's environment; a value that
    /// does not parse is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable's value, if set).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| lookup(name).filter(|value| !value.is_empty());
        fn parsed<T: std::str::FromStr>(
            name: &str,
            value: Option<String>,
        ) -> Result<Option<T>, String>
        where
            T::Err: std::fmt::Display,
        {
            value
                .map(|value| {
                    value
                        .parse()
                        .map_err(|err| format!("{name}={value:?} is not valid: {err}"))
                })
                .transpose()
        }
        let concurrency: usize = parsed(
            "ACCOUNT_COMPONENT_CONCURRENCY",
            var("ACCOUNT_COMPONENT_CONCURRENCY"),
        )?
        .unwrap_or(1);
        if concurrency == 0 {
            return Err("ACCOUNT_COMPONENT_CONCURRENCY must be at least 1".into());
        }
        let park_after_failures = parsed(
            "ACCOUNT_COMPONENT_PARK_AFTER_FAILURES",
            var("ACCOUNT_COMPONENT_PARK_AFTER_FAILURES"),
        )?;
        if park_after_failures == Some(0) {
            return Err("ACCOUNT_COMPONENT_PARK_AFTER_FAILURES must be at least 1".into());
        }
        Ok(Self {
            identifier: var("CONSUMER_IDENTIFIER"),
            concurrency,
            park_after_failures,
            metrics_addr: parsed(
                "ACCOUNT_COMPONENT_METRICS_ADDR",
                var("ACCOUNT_COMPONENT_METRICS_ADDR"),
            )?,
        })
    }
}

/// The component's handlers on `store`: `Deposit` and `Withdraw`, one
/// [`Accounts`] (one entity cache) behind both, and a skipped unknown
/// type logged at info. With them, what the handlers count.
pub fn handlers<S: MessageStore>(store: &S) -> (Dispatcher, Arc<Counters>) {
    let accounts = Accounts::new(store);
    let counters = accounts.counters();
    let handlers = Dispatcher::new().handlers(accounts).log_skipped(true);
    (handlers, counters)
}

/// The component's consumer of `account:command` on `store`, with its
/// [`handlers()`]. Refuses an invalid identifier (one with `-`, `:` or `+`).
pub fn consumer<S: MessageStore>(
    store: S,
    settings: &Settings,
) -> Result<Consumer<S>, ebb::consumer::Error> {
    let (handlers, _) = handlers(&store);
    Ok(Consumer::new(
        ConsumerConfig {
            identifier: settings.identifier.clone(),
            concurrency: settings.concurrency.max(1),
            park_after_failures: settings.park_after_failures,
            ..ConsumerConfig::new(COMMAND_CATEGORY)
        },
        store,
    )?
    .handler(handlers))
}

/// The binary's whole run: logging, settings, the store, the host. The
/// exit code is the host's (0 after SIGTERM, non-zero after an error),
/// or 2 for bad settings.
pub async fn run() -> ExitCode {
    ebb::logging::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::from(2);
        }
    };
    let store = match PgStore::from_env() {
        Ok(store) => store,
        Err(err) => {
            tracing::error!(error = %err, "no message store: set DATABASE_URL or PGHOST etc.");
            return ExitCode::from(2);
        }
    };
    let consumer = match consumer(store, &settings) {
        Ok(consumer) => consumer,
        Err(err) => {
            tracing::error!(error = %err, "bad consumer settings");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        identifier = settings.identifier.as_deref().unwrap_or("(none)"),
        concurrency = settings.concurrency,
        park_after_failures = settings.park_after_failures,
        "account component starting"
    );
    let mut host = Host::new().consumer(consumer);
    if let Some(addr) = settings.metrics_addr {
        host = host.metrics_endpoint(addr);
    }
    host.run_to_exit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_name_the_bad_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let settings = Settings::from_lookup(env(&[
            ("CONSUMER_IDENTIFIER", "blue"),
            ("ACCOUNT_COMPONENT_CONCURRENCY", "4"),
            ("ACCOUNT_COMPONENT_PARK_AFTER_FAILURES", "3"),
        ]))
        .unwrap();
        assert_eq!(settings.identifier.as_deref(), Some("blue"));
        assert_eq!(settings.concurrency, 4);
        assert_eq!(settings.park_after_failures, Some(3));
        assert_eq!(Settings::from_lookup(env(&[])).unwrap().concurrency, 1);
        let err =
            Settings::from_lookup(env(&[("ACCOUNT_COMPONENT_CONCURRENCY", "many")])).unwrap_err();
        assert!(err.contains("ACCOUNT_COMPONENT_CONCURRENCY"), "{err}");
        let err = Settings::from_lookup(env(&[("ACCOUNT_COMPONENT_METRICS_ADDR", "nowhere")]))
            .unwrap_err();
        assert!(err.contains("ACCOUNT_COMPONENT_METRICS_ADDR"), "{err}");
        assert!(
            Settings::from_lookup(env(&[("ACCOUNT_COMPONENT_PARK_AFTER_FAILURES", "0")])).is_err()
        );
    }
}
