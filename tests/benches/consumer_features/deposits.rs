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

/// The figures of every side.
#[derive(Debug)]
pub(crate) struct Figures {
    /// Commands per second of each pass, serial, each call on a pooled
    /// connection of its own (the store's default).
    serial: Vec<f64>,
    /// The same, serial, with the calls sharing one pipelined connection
    /// (`PgStoreConfig::pipeline_connections` = 1).
    serial_pipelined: Vec<f64>,
    /// The same at the setting's concurrency, pooled.
    concurrent_pooled: Vec<f64>,
    /// The same at the setting's concurrency, pipelined.
    concurrent: Vec<f64>,
    /// Expected-version retries seen in every pass (none expected: each
    /// account's commands are one stream, never handled twice at once).
    retries: usize,
}

/// The lowest ratio of concurrent to serial commands per second that
/// passes.
const RATIO_REQUIRED: f64 = 2.0;

/// One side of a round: the consumer's concurrency and the store's
/// pipelined connections.
#[derive(Clone, Copy)]
struct Side {
    concurrency: usize,
    pipeline_connections: usize,
}

impl Figures {
    /// Prints the figures; true when the requirement is met. The serial
    /// figure the ratio is taken against is the better of the two serial
    /// ones, so pipelining cannot win by slowing the serial side.
    pub(crate) fn print(&self, settings: &Settings) -> bool {
        let serial = median(self.serial.clone());
        let serial_pipelined = median(self.serial_pipelined.clone());
        let concurrent_pooled = median(self.concurrent_pooled.clone());
        let concurrent = median(self.concurrent.clone());
        let baseline = serial.max(serial_pipelined);
        let ratio = concurrent / baseline;
        let pass = ratio >= RATIO_REQUIRED;
        println!(
            "deposits: {} commands to {} accounts, {} rounds; balances exact after every pass",
            settings.commands, settings.accounts, settings.rounds
        );
        println!(
            "  concurrency 1, pooled:      {serial:>9.0} commands/s (passes: {})",
            list(&self.serial)
        );
        println!(
            "  concurrency 1, pipelined:   {serial_pipelined:>9.0} commands/s (passes: {})",
            list(&self.serial_pipelined)
        );
        println!(
            "  {:<27} {concurrent_pooled:>9.0} commands/s (passes: {})",
            format!("concurrency {}, pooled:", settings.concurrency),
            list(&self.concurrent_pooled)
        );
        println!(
            "  {:<27} {concurrent:>9.0} commands/s (passes: {})",
            format!("concurrency {}, pipelined:", settings.concurrency),
            list(&self.concurrent)
        );
        println!(
            "  ratio {ratio:.2}x against the faster serial side (required >= {RATIO_REQUIRED:.1}x): {}; \
             expected-version retries: {}",
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
        let store = store(cluster, TEMPLATE, 0)?;
        seed::write_commands(&store, settings.commands, settings.accounts).await
    };
    let mut figures = Figures {
        serial: Vec::new(),
        serial_pipelined: Vec::new(),
        concurrent_pooled: Vec::new(),
        concurrent: Vec::new(),
        retries: 0,
    };
    let mut sides = [
        Side {
            concurrency: 1,
            pipeline_connections: 0,
        },
        Side {
            concurrency: 1,
            pipeline_connections: 1,
        },
        Side {
            concurrency: settings.concurrency,
            pipeline_connections: 0,
        },
        Side {
            concurrency: settings.concurrency,
            pipeline_connections: 1,
        },
    ];
    let mut pass = 0;
    for round in 0..settings.rounds {
        // Each round starts with a different side, so that no side always
        // runs first (or last) on a machine whose load drifts.
        sides.rotate_left(usize::from(round > 0));
        for side in sides {
            pass += 1;
            let database = format!("deposits_{pass}");
            create_database(cluster, &database, Some(TEMPLATE)).await?;
            let store = store(cluster, &database, side.pipeline_connections)?;
            let (rate, retries) = one_pass(&store, settings, side.concurrency).await?;
            seed::assert_applied_exactly_once(&store, &expected).await;
            progress(format!(
                "deposits: round {}, concurrency {}, pipelined connections {}: {rate:.0} commands/s, \
                 balances exact",
                round + 1,
                side.concurrency,
                side.pipeline_connections
            ));
            figures.retries += retries;
            match (side.concurrency, side.pipeline_connections) {
                (1, 0) => figures.serial.push(rate),
                (1, _) => figures.serial_pipelined.push(rate),
                (_, 0) => figures.concurrent_pooled.push(rate),
                _ => figures.concurrent.push(rate),
            }
        }
    }
    Ok(figures)
}

fn store(
    cluster: &Cluster,
    database: &str,
    pipeline_connections: usize,
) -> Result<PgStore, BoxError> {
    Ok(PgStore::new(PgStoreConfig {
        pipeline_connections,
        ..PgStoreConfig::new(cluster.config(database))
    })?)
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
