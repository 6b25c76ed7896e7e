//! The seed `Deposit` handler at concurrency 1 and at N.
//!
//! The commands are written once, to a template database; each pass runs
//! on a fresh copy of it (`CREATE DATABASE … TEMPLATE`), so every pass
//! applies every command once, from an empty set of accounts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received};
use ebb_localpg::Cluster;
use ebb_message_store::{PgStore, PgStoreConfig};
use ebb_tests::seed::{self, Accounts, COMMAND_CATEGORY, Deposit};

use crate::{Settings, create_database, median, progress};

const TEMPLATE: &str = "deposits_template";

/// The figures of both sides.
#[derive(Debug)]
pub(crate) struct Figures {
    /// Commands per second of each pass, serial.
    serial: Vec<f64>,
    /// The same at the setting's concurrency.
    concurrent: Vec<f64>,
    /// Expected-version retries seen in every pass (none expected: each
    /// account's commands are one stream, never handled twice at once).
    retries: usize,
}

/// The lowest ratio of concurrent to serial commands per second that
/// passes.
const RATIO_REQUIRED: f64 = 2.0;

impl Figures {
    /// Prints the figures; true when the requirement is met.
    pub(crate) fn print(&self, settings: &Settings) -> bool {
        let serial = median(self.serial.clone());
        let concurrent = median(self.concurrent.clone());
        let ratio = concurrent / serial;
        let pass = ratio >= RATIO_REQUIRED;
        println!(
            "deposits: {} commands to {} accounts, {} rounds; balances exact after every pass",
            settings.commands, settings.accounts, settings.rounds
        );
        println!(
            "  concurrency 1: {serial:>9.0} commands/s (passes: {})",
            list(&self.serial)
        );
        println!(
            "  concurrency {}: {concurrent:>9.0} commands/s (passes: {})",
            settings.concurrency,
            list(&self.concurrent)
        );
        println!(
            "  ratio {ratio:.2}x (required >= {RATIO_REQUIRED:.1}x): {}; expected-version retries: {}",
            if pass { "PASS" } else { "FAIL" },
            self.retries
        );
        pass
    }
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn run(cluster: &Cluster, settings: &Settings) -> Result<Figures, BoxError> {
    progress(format!(
        "deposits: writing {} commands to {} accounts",
        settings.commands, settings.accounts
    ));
    create_database(cluster, TEMPLATE, None).await?;
    let expected = {
        let store = store(cluster, TEMPLATE)?;
        seed::write_commands(&store, settings.commands, settings.accounts).await
    };
    let mut figures = Figures {
        serial: Vec::new(),
        concurrent: Vec::new(),
        retries: 0,
    };
    let mut pass = 0;
    for round in 0..settings.rounds {
        let sides = if round % 2 == 0 {
            [1, settings.concurrency]
        } else {
            [settings.concurrency, 1]
        };
        for concurrency in sides {
            pass += 1;
            let database = format!("deposits_{pass}");
            create_database(cluster, &database, Some(TEMPLATE)).await?;
            let store = store(cluster, &database)?;
            let (rate, retries) = one_pass(&store, settings, concurrency).await?;
            seed::assert_applied_exactly_once(&store, &expected).await;
            progress(format!(
                "deposits: round {}, concurrency {concurrency}: {rate:.0} commands/s, balances exact",
                round + 1
            ));
            figures.retries += retries;
            if concurrency == 1 {
                figures.serial.push(rate);
            } else {
                figures.concurrent.push(rate);
            }
        }
    }
    Ok(figures)
}

fn store(cluster: &Cluster, database: &str) -> Result<PgStore, BoxError> {
    Ok(PgStore::new(PgStoreConfig::new(cluster.config(database)))?)
}

/// Runs the consumer until it has handled every command; commands per
/// second from its start, and the retries.
async fn one_pass(
    store: &PgStore,
    settings: &Settings,
    concurrency: usize,
) -> Result<(f64, usize), BoxError> {
    let (accounts, retries) = Accounts::new(store);
    let handled = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&handled);
    let consumer = Consumer::new(
        ConsumerConfig {
            identifier: Some(format!("bench{concurrency}")),
            concurrency,
            ..ConsumerConfig::new(COMMAND_CATEGORY)
        },
        store.clone(),
    )?
    .handler(
        Dispatcher::new()
            .on(accounts)
            .on(move |_: Received<Deposit>| {
                counted.fetch_add(1, Ordering::Relaxed);
                async { Ok::<_, BoxError>(()) }
            }),
    );
    let control = Control::new();
    let commands = settings.commands;
    let started = Instant::now();
    let stopper = {
        let control = control.clone();
        let handled = Arc::clone(&handled);
        async move {
            while handled.load(Ordering::Relaxed) < commands {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let elapsed = started.elapsed();
            control.stop();
            elapsed
        }
    };
    let (result, elapsed) = tokio::join!(consumer.run(&control), stopper);
    result?;
    Ok((
        commands as f64 / elapsed.as_secs_f64(),
        retries.load(Ordering::Relaxed),
    ))
}
