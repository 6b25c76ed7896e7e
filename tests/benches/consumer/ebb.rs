//! ebb's side: `ebb_consumer::Consumer` at its default settings, in a process of its own, with one typed handler that decodes each message and does nothing else.
//!
//! The run starts this same program again with [`CHILD`] set to the
//! database's connection string; [`child_main`] consumes the category and
//! prints one [`RESULT`] line, which [`pass`] parses. A process of its own
//! per pass, so that the peak RSS is the consumer's alone (the parent
//! holds the cluster's admin connection, the loading and the runtime that
//! drove them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError as HandlerError, Dispatcher, Received};
use ebb_message_store::{PgStore, PgStoreConfig};
use ebb_tests::seed::Deposited;

use ebb_bench::BoxError;

use crate::settings::{Flavor, Settings};
use crate::workload::CATEGORY;
use crate::{Bench, DATABASE, Rate};

/// Set in the consumer's process: the connection string of the database
/// to consume.
pub(crate) const CHILD: &str = "EBB_BENCH_CONSUMER_CHILD";
/// Set in the consumer's process: its consumer identifier, new for each
/// pass, so that each pass starts from the beginning of the category with
/// a position stream of its own.
const IDENTIFIER: &str = "EBB_BENCH_CONSUMER_IDENTIFIER";
/// Set in the consumer's process: the runtime it runs on, by
/// [`Flavor::name`].
const RUNTIME: &str = "EBB_BENCH_CONSUMER_CHILD_RUNTIME";
/// The consumer's line on stdout: messages handled, nanoseconds from the
/// first read to the consumer's return (its last position record written),
/// peak RSS in KiB.
const RESULT: &str = "consumed";

/// One pass of ebb's consumer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass {
    pub(crate) rate: Rate,
    /// The consumer process's peak resident set (`VmHWM`), in KiB.
    pub(crate) peak_rss_kib: u64,
}

/// Runs one pass on `flavor` in a new process and reads what it
/// measured.
pub(crate) fn pass(bench: &Bench, index: usize, flavor: Flavor) -> Result<Pass, BoxError> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD, bench.cluster.connection_string(DATABASE))
        .env(IDENTIFIER, format!("pass{index}{flavor:?}"))
        .env(RUNTIME, flavor.name())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    if !output.status.success() {
        return Err(format!(
            "the consumer's process failed ({}):\n{stdout}",
            output.status
        )
        .into());
    }
    let fields: Vec<u64> = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT))
        .ok_or_else(|| format!("no result line in the consumer's output:\n{stdout}"))?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [messages, nanos, peak_rss_kib] = fields[..] else {
        return Err(format!("a malformed result line:\n{stdout}").into());
    };
    Ok(Pass {
        rate: Rate {
            messages,
            seconds: nanos as f64 / 1e9,
        },
        peak_rss_kib,
    })
}

/// What the handler shares with the process: how many it handled, and
/// the control that stops the consumer after the last one.
#[derive(Debug)]
struct Count {
    handled: AtomicU64,
    target: u64,
    control: Control,
}

/// The consumer's process: consumes `settings.messages` messages of the
/// category from its start, then stops the consumer (which records its
/// position) and prints the result line.
pub(crate) fn child_main(conninfo: &str, settings: &Settings) -> Result<(), BoxError> {
    let identifier = std::env::var(IDENTIFIER)?;
    let flavor = std::env::var(RUNTIME)?;
    let runtime = match Flavor::from_name(&flavor) {
        Some(Flavor::CurrentThread) => tokio::runtime::Builder::new_current_thread(),
        Some(Flavor::MultiThread) => tokio::runtime::Builder::new_multi_thread(),
        None => return Err(format!("{RUNTIME}={flavor:?}: not a runtime").into()),
    }
    .enable_all()
    .build()?;
    let count = Arc::new(Count {
        handled: AtomicU64::new(0),
        target: settings.messages,
        control: Control::new(),
    });
    let started = OnceLock::new();
    let elapsed = runtime
        .block_on(async {
            // The store and the consumer at their defaults; the identifier
            // only names the position stream. `EBB_BENCH_CONSUMER_PIPELINE`
            // sets the store's `pipeline_connections`, to compare (the
            // requirement is then not checked).
            let defaults = PgStoreConfig::new(conninfo.parse()?);
            let store = PgStore::new(PgStoreConfig {
                pipeline_connections: settings
                    .pipeline_connections
                    .unwrap_or(defaults.pipeline_connections),
                ..defaults
            })?;
            let handlers = Dispatcher::new().on({
                let count = Arc::clone(&count);
                move |deposited: Received<Deposited>| {
                    let count = Arc::clone(&count);
                    async move {
                        // Decoded into `Deposited` by the dispatcher; nothing
                        // else is done with it.
                        std::hint::black_box(deposited.data());
                        let handled = count.handled.fetch_add(1, Ordering::Relaxed) + 1;
                        if handled == count.target {
                            count.control.stop();
                        }
                        Ok::<_, HandlerError>(())
                    }
                }
            });
            let consumer = Consumer::new(
                ConsumerConfig {
                    identifier: Some(identifier),
                    position_update_interval: settings.position_update_interval,
                    ..ConsumerConfig::new(CATEGORY)
                },
                store,
            )?
            .handler(handlers);
            // The clock starts once the consumer has its connection and its
            // position, as pgbench's figure leaves out its connection time, and
            // stops when the consumer returns: after the last message, stopped,
            // it has written its last position record, which is part of the
            // work of consuming the category.
            consumer
                .run_with(&count.control, || {
                    let _ = started.set(Instant::now());
                })
                .await?;
            Ok::<_, BoxError>(Instant::now())
        })
        .map(|done| (started.get().copied(), done))
        .and_then(|(started, done)| {
            let handled = count.handled.load(Ordering::Relaxed);
            match started {
                Some(started) if handled == count.target => Ok(done.duration_since(started)),
                _ => Err(format!("the consumer stopped after {handled} messages").into()),
            }
        })?;
    let handled = count.handled.load(Ordering::Relaxed);
    let nanos = elapsed.as_nanos();
    let peak = peak_rss_kib()?;
    // The parent reads this line.
    #[allow(clippy::print_stdout)]
    {
        println!("{RESULT} {handled} {nanos} {peak}");
    }
    Ok(())
}

/// This process's peak resident set, `VmHWM` in `/proc/self/status`, in KiB.
fn peak_rss_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/self/status".into())
}
