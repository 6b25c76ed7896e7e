//! The seed `Deposit` handler at concurrency 1 and at N, on a store at its defaults.
//!
//! The commands are written once, to a template database; each pass runs
//! on a fresh copy of it (`CREATE DATABASE … TEMPLATE`), so every pass
//! applies every command once, from an empty set of accounts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ebb_bench::{BoxError, Report, Rounds, Row, measure, progress};
use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{Dispatcher, Received};
use ebb_localpg::Cluster;
use ebb_message_store::{PgStore, PgStoreConfig};
use ebb_tests::seed::{self, Accounts, COMMAND_CATEGORY, Deposit};

use crate::{Settings, create_database};

const TEMPLATE: &str = "deposits_template";

/// The lowest ratio of concurrent to serial commands per second that
/// passes, both on a store at its defaults.
const RATIO_REQUIRED: f64 = 2.0;

/// One side of a round: the consumer's concurrency and the store's
/// pipelined connections.
#[derive(Clone, Copy)]
struct Side {
    name: &'static str,
    concurrency: usize,
    pipeline_connections: usize,
}

const SERIAL: &str = "serial, defaults";
const CONCURRENT: &str = "concurrent, defaults";
const SERIAL_OTHER: &str = "serial, pipelining switched";
const CONCURRENT_OTHER: &str = "concurrent, pipelining switched";

/// Runs the deposits part and adds its rows to `report`.
pub(crate) async fn run(
    cluster: &Cluster,
    settings: &Settings,
    report: &mut Report,
) -> Result<(), BoxError> {
    progress(format!(
        "deposits: writing {} commands to {} accounts",
        settings.commands, settings.accounts
    ));
    create_database(cluster, TEMPLATE, None).await?;
    let expected = {
        let store = store(cluster, TEMPLATE, None)?;
        seed::write_commands(&store, settings.commands, settings.accounts).await
    };
    let default = PgStoreConfig::new(cluster.config(TEMPLATE)).pipeline_connections;
    let other = usize::from(default == 0);
    let sides = [
        Side {
            name: SERIAL,
            concurrency: 1,
            pipeline_connections: default,
        },
        Side {
            name: CONCURRENT,
            concurrency: settings.concurrency,
            pipeline_connections: default,
        },
        Side {
            name: SERIAL_OTHER,
            concurrency: 1,
            pipeline_connections: other,
        },
        Side {
            name: CONCURRENT_OTHER,
            concurrency: settings.concurrency,
            pipeline_connections: other,
        },
    ];
    let names: Vec<&'static str> = sides.iter().map(|side| side.name).collect();
    let mut rounds = Rounds::new(&names);
    let mut retries = 0;
    let mut pass = 0;
    for round in 0..settings.rounds {
        for side in measure::order(round, sides.len()).map(|index| sides[index]) {
            pass += 1;
            let database = format!("deposits_{pass}");
            create_database(cluster, &database, Some(TEMPLATE)).await?;
            // The defaults, but for the switched sides' pipelining.
            let pipelining =
                (side.pipeline_connections != default).then_some(side.pipeline_connections);
            let store = store(cluster, &database, pipelining)?;
            let (rate, pass_retries) = one_pass(&store, settings, side.concurrency).await?;
            seed::assert_applied_exactly_once(&store, &expected).await;
            progress(format!(
                "deposits: round {}, concurrency {}, pipeline_connections {}: {rate:.0} commands/s, \
                 balances exact",
                round + 1,
                side.concurrency,
                side.pipeline_connections
            ));
            retries += pass_retries;
            rounds.push(side.name, rate);
        }
    }
    let row = |case: String, side: &str, base: &str, name: String| {
        Row::rate(case, "commands/s", rounds.median(side))
            .against(name, rounds.median(base))
            .paired(rounds.paired_ratio(side, base))
            .durable(false)
    };
    let concurrency = settings.concurrency;
    let commands = format!(
        "{} commands to {} accounts",
        settings.commands, settings.accounts
    );
    report.row(
        row(
            format!("deposits, concurrency {concurrency}, store defaults ({commands})"),
            CONCURRENT,
            SERIAL,
            format!("concurrency 1, store defaults (pipeline_connections {default})"),
        )
        .required(RATIO_REQUIRED),
    );
    report.row(row(
        format!("deposits, concurrency {concurrency}, pipeline_connections {other}"),
        CONCURRENT_OTHER,
        SERIAL,
        format!("concurrency 1, store defaults (pipeline_connections {default})"),
    ));
    report.row(row(
        format!("deposits, concurrency 1, pipeline_connections {other}"),
        SERIAL_OTHER,
        SERIAL,
        format!("concurrency 1, store defaults (pipeline_connections {default})"),
    ));
    let list = |side: &str| {
        rounds
            .figures(side)
            .iter()
            .map(|rate| format!("{rate:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.note(format!(
        "deposits: balances exact after every pass; expected-version retries: {retries}; passes \
         (commands/s): {SERIAL}: {}; {CONCURRENT}: {}; {SERIAL_OTHER}: {}; {CONCURRENT_OTHER}: {}",
        list(SERIAL),
        list(CONCURRENT),
        list(SERIAL_OTHER),
        list(CONCURRENT_OTHER)
    ));
    Ok(())
}

/// A store at its defaults, with `pipeline_connections` set when given.
fn store(
    cluster: &Cluster,
    database: &str,
    pipeline_connections: Option<usize>,
) -> Result<PgStore, BoxError> {
    let defaults = PgStoreConfig::new(cluster.config(database));
    Ok(PgStore::new(PgStoreConfig {
        pipeline_connections: pipeline_connections.unwrap_or(defaults.pipeline_connections),
        ..defaults
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
                async { Ok::<_, ebb_handler::BoxError>(()) }
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
