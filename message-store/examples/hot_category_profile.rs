//! Where a hot category's write time goes, with group commit off and on:
//! the profile behind `BENCHMARKS.md`'s "The hot category".
//!
//! ```sh
//! cargo run --release -p ebb-message-store --example hot_category_profile
//! ```
//!
//! On a private durable cluster (`fsync`, `synchronous_commit` and
//! `full_page_writes` on; `track_wal_io_timing` on), 8 tasks call
//! `store.write` with one message each to random streams of one category
//! for `EBB_PROFILE_SECONDS` (8) seconds, once with group commit off and
//! once on, each on a database of its own after 2 s of warm-up and a
//! checkpoint. For each it prints the writes per second, the WAL flushes
//! and the time they took (`pg_stat_wal`), and what the database's
//! backends were doing, sampled from `pg_stat_activity` every 10 ms
//! (per sample: so many waiting on the category's advisory lock, so many
//! on CPU, ...). When `perf` is on the `PATH`, it also records every CPU
//! meanwhile (`perf record -a -g -e cpu-clock`) into
//! `target/hot-category-{off,on}.perf`, for `perf report -i`. The sampling
//! and `perf` cost some throughput: the figures are for comparing the two
//! runs, not for quoting as rates (the `store` bench measures those).

// A report for a person at a terminal: progress on stderr, figures on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::error::Error;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ebb_localpg::Cluster;
use ebb_message_store::{
    ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig, StreamName, schema,
};
use serde_json::json;

type BoxError = Box<dyn Error + Send + Sync>;

/// Concurrent writers, all in one category.
const WRITERS: u64 = 8;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds: u64 = match std::env::var("EBB_PROFILE_SECONDS") {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("EBB_PROFILE_SECONDS={value:?}: expected whole seconds"))?,
        Err(_) => 8,
    };
    eprintln!("starting a private durable PostgreSQL cluster");
    let cluster = Cluster::builder()
        .fsync(true)
        .setting("shared_buffers", "1GB")
        .setting("max_wal_size", "16GB")
        .setting("checkpoint_timeout", "1h")
        .setting("track_wal_io_timing", "on")
        .start()?;
    let admin = connect(&cluster, "postgres").await?;
    for group_commit in [false, true] {
        let mode = if group_commit { "on" } else { "off" };
        let database = format!("profile_{mode}");
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await?;
        let client = connect(&cluster, &database).await?;
        schema::install(&client).await?;
        let store = PgStore::new(PgStoreConfig {
            max_connections: WRITERS as usize,
            group_commit,
            ..PgStoreConfig::new(cluster.config(&database))
        })?;
        write_for(&store, Duration::from_secs(2)).await?;
        client
            .batch_execute("CHECKPOINT; SELECT pg_stat_reset_shared('wal')")
            .await?;

        eprintln!("group commit {mode}: writing for {seconds} s");
        let perf = start_perf(mode, seconds);
        let sampler = tokio::spawn(sample_backends(
            connect(&cluster, &database).await?,
            Duration::from_secs(seconds),
        ));
        let started = Instant::now();
        let written = write_for(&store, Duration::from_secs(seconds)).await?;
        let took = started.elapsed().as_secs_f64();
        let (samples, states) = sampler.await??;
        let wal = client
            .query_one(
                "SELECT wal_sync, wal_sync_time, wal_write FROM pg_stat_wal",
                &[],
            )
            .await?;
        let (syncs, sync_ms): (i64, f64) = (wal.get(0), wal.get(1));
        println!("group commit {mode}:");
        println!(
            "  {written} writes in {took:.1} s: {:.0} a second",
            written as f64 / took
        );
        println!(
            "  WAL flushes: {syncs} ({:.2} per write), {sync_ms:.0} ms in them: {:.0} % of the time",
            syncs as f64 / written as f64,
            sync_ms / 10.0 / took
        );
        println!("  the database's backends, per sample of {samples}:");
        let mut states: Vec<(String, u64)> = states.into_iter().collect();
        states.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        for (state, count) in states {
            println!("    {:6.2}  {state}", count as f64 / samples as f64);
        }
        if let Some(mut perf) = perf {
            if perf.wait()?.success() {
                println!("  CPU profile: perf report -i target/hot-category-{mode}.perf");
            } else {
                println!(
                    "  no CPU profile: perf record failed (run from the workspace root, as root or with perf_event_paranoid low enough)"
                );
            }
        }
    }
    Ok(())
}

async fn connect(cluster: &Cluster, database: &str) -> Result<tokio_postgres::Client, BoxError> {
    let (client, connection) = cluster
        .config(database)
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `WRITERS` tasks writing to random streams of one category until
/// `duration` is up; the writes made.
async fn write_for(store: &PgStore, duration: Duration) -> Result<u64, BoxError> {
    let until = Instant::now() + duration;
    let writers: Vec<_> = (1..=WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                // xorshift64: spread stream ids at no cost.
                let mut state = writer.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut written = 0;
                while Instant::now() < until {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let stream = StreamName::new("profileHot", &(state % 100_000).to_string())?;
                    let message = MessageData::new(
                        "Deposited",
                        json!({ "amount": 1250, "currency": "EUR", "reference": "profile" }),
                    );
                    store.write(&stream, &message, ExpectedVersion::Any).await?;
                    written += 1;
                }
                Ok::<u64, BoxError>(written)
            })
        })
        .collect();
    let mut total = 0;
    for writer in writers {
        total += writer.await??;
    }
    Ok(total)
}

/// Counts what the database's other backends are doing every 10 ms for
/// `duration`: their wait event, or "on CPU" when running without one.
async fn sample_backends(
    client: tokio_postgres::Client,
    duration: Duration,
) -> Result<(u64, BTreeMap<String, u64>), BoxError> {
    let statement = client
        .prepare(
            "SELECT coalesce(wait_event_type || ': ' || wait_event, \
             CASE WHEN state = 'active' THEN 'on CPU' ELSE state END) \
             FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await?;
    let until = Instant::now() + duration;
    let (mut samples, mut states) = (0, BTreeMap::new());
    while Instant::now() < until {
        for row in client.query(&statement, &[]).await? {
            let state: Option<String> = row.get(0);
            *states.entry(state.unwrap_or_default()).or_insert(0) += 1;
        }
        samples += 1;
        // The sampling interval: what is sampled is the server's state.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((samples, states))
}

/// `perf record` of every CPU for `seconds`, when `perf` can be run.
fn start_perf(mode: &str, seconds: u64) -> Option<Child> {
    let output = format!("target/hot-category-{mode}.perf");
    let started = Command::new("perf")
        .args(["record", "-a", "-g", "-e", "cpu-clock", "-F", "499", "-o"])
        .arg(&output)
        .args(["--", "sleep", &seconds.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match started {
        Ok(child) => Some(child),
        Err(err) => {
            eprintln!("no CPU profile: perf could not be run ({err})");
            None
        }
    }
}
