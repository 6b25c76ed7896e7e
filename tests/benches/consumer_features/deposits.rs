//! The seed `Deposit` handler at concurrency 1 and at N, on a store at its
//! defaults and with group commit off, on a durable cluster.
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

/// One side of a round: the consumer's concurrency and whether the
/// store's group commit is on (its default) or off.
#[derive(Clone, Copy)]
struct Side {
    name: &'static str,
    concurrency: usize,
    group_commit: bool,
}

const SERIAL: &str = "serial, defaults";
const CONCURRENT: &str = "concurrent, defaults";
const SERIAL_OFF: &str = "serial, group commit off";
const CONCURRENT_OFF: &str = "concurrent, group commit off";

/// Starts the part's cluster, durable (`fsync`, `synchronous_commit` and
/// `full_page_writes` on) unless told otherwise: every deposit's write
/// commits, and what a commit costs is what group commit saves.
pub(crate) fn cluster(durable: bool) -> Result<Cluster, BoxError> {
    Ok(Cluster::builder()
        .fsync(durable)
        .setting("shared_buffers", "512MB")
        .setting("max_connections", "100")
        .setting("max_wal_size", "8GB")
        .start()?)
}

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
        let store = store(cluster, TEMPLATE, true)?;
        seed::write_commands(&store, settings.commands, settings.accounts).await
    };
    let sides = [
        Side {
            name: SERIAL,
            concurrency: 1,
            group_commit: true,
        },
        Side {
            name: CONCURRENT,
            concurrency: settings.concurrency,
            group_commit: true,
        },
        Side {
            name: SERIAL_OFF,
            concurrency: 1,
            group_commit: false,
        },
        Side {
            name: CONCURRENT_OFF,
            concurrency: settings.concurrency,
            group_commit: false,
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
            let store = store(cluster, &database, side.group_commit)?;
            let (rate, pass_retries) = one_pass(&store, settings, side.concurrency).await?;
            seed::assert_applied_exactly_once(&store, &expected).await;
            progress(format!(
                "deposits: round {}, {}: {rate:.0} commands/s, balances exact",
                round + 1,
                side.name,
            ));
            retries += pass_retries;
            rounds.push(side.name, rate);
            drop(store);
            drop_database(cluster, &database).await?;
        }
    }
    let row = |case: String, side: &str, base: &str, name: &str| {
        Row::rate(case, "commands/s", rounds.median(side))
            .against(name, rounds.median(base))
            .paired(rounds.paired_ratio(side, base))
            .durable(settings.deposits_durable)
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
            "concurrency 1, store defaults",
        )
        .required(RATIO_REQUIRED),
    );
    report.row(row(
        format!("deposits, concurrency {concurrency}: group commit (the default) against off"),
        CONCURRENT,
        CONCURRENT_OFF,
        &format!("concurrency {concurrency}, group commit off"),
    ));
    report.row(row(
        format!("deposits, concurrency {concurrency}, group commit off"),
        CONCURRENT_OFF,
        SERIAL_OFF,
        "concurrency 1, group commit off",
    ));
    report.row(row(
        "deposits, concurrency 1: group commit (the default) against off".to_owned(),
        SERIAL,
        SERIAL_OFF,
        "concurrency 1, group commit off",
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
         (commands/s): {SERIAL}: {}; {CONCURRENT}: {}; {SERIAL_OFF}: {}; {CONCURRENT_OFF}: {}",
        list(SERIAL),
        list(CONCURRENT),
        list(SERIAL_OFF),
        list(CONCURRENT_OFF)
    ));
    Ok(())
}

/// A store at its defaults, with group commit on or off.
fn store(cluster: &Cluster, database: &str, group_commit: bool) -> Result<PgStore, BoxError> {
    Ok(PgStore::new(PgStoreConfig {
        group_commit,
        ..PgStoreConfig::new(cluster.config(database))
    })?)
}

/// Drops a pass's database once its store is gone, so that a durable
/// cluster's disk holds one pass at a time.
async fn drop_database(cluster: &Cluster, name: &str) -> Result<(), BoxError> {
    let admin = ebb_tests::connect_to(&cluster.config("postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await?;
    Ok(())
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
