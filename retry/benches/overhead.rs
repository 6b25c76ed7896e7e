//! Run with: `CARGO_TARGET_DIR=/work/main/target-retry cargo bench -p ebb-retry`
//!
//! The overhead of wrapping an operation in a retry, ebb-retry against the
//! `backon` crate doing the same thing:
//!
//! - `success`: the operation succeeds at once (the common case);
//! - `fail 2x`: it fails twice, then succeeds, with zero waits.
//!
//! Each figure is the median over several runs of the mean ns per call over
//! many calls. Both libraries are used as their documentation shows: ebb
//! with a policy built once, backon with a builder per call. backon's
//! default sleeper registers a tokio timer even for a zero wait; the
//! "no-op sleeper" rows show backon with that cost removed, as a fairer
//! floor. Not a timed test: it prints a table and never fails.
#![allow(clippy::print_stdout)]

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::future::{Future, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ConstantBuilder, Retryable};
use ebb_retry::Retry;

/// Calls per run.
const CALLS: u32 = 200_000;
/// Runs per figure; the median is reported.
const RUNS: usize = 9;

#[derive(Debug)]
struct Flaky;

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flaky")
    }
}

impl Error for Flaky {}

/// The operation: fails `failures` times (counted in `count`), then
/// returns the attempt number.
fn attempt(count: &Cell<u32>, failures: u32) -> Result<u32, Flaky> {
    let n = count.get();
    count.set(n + 1);
    if n < black_box(failures) { Err(Flaky) } else { Ok(n) }
}

fn backon_policy() -> ConstantBuilder {
    ConstantBuilder::default()
        .with_delay(Duration::ZERO)
        .with_max_times(2)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// ns per call of `body`, which makes `CALLS` calls (median of `RUNS`).
fn measure_async<F, Fut>(rt: &tokio::runtime::Runtime, mut body: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(body()); // warm-up
    let runs = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            rt.block_on(body());
            started.elapsed().as_nanos() as f64 / f64::from(CALLS)
        })
        .collect();
    median(runs)
}

fn measure_blocking(mut body: impl FnMut()) -> f64 {
    body();
    let runs = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            body();
            started.elapsed().as_nanos() as f64 / f64::from(CALLS)
        })
        .collect();
    median(runs)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let ebb = Retry::new([0, 0]).expect("valid intervals");

    let mut rows: Vec<(&str, f64, f64, f64)> = Vec::new();

    for (name, failures) in [("async, success", 0), ("async, fail 2x", 2)] {
        let ebb_ns = measure_async(&rt, || async {
            for _ in 0..CALLS {
                let count = Cell::new(0);
                let r = ebb.run(|_cycle| ready(attempt(&count, failures))).await;
                black_box(r.is_ok());
            }
        });
        let backon_ns = measure_async(&rt, || async {
            for _ in 0..CALLS {
                let count = Cell::new(0);
                let r = (|| ready(attempt(&count, failures)))
                    .retry(backon_policy())
                    .await;
                black_box(r.is_ok());
            }
        });
        let backon_noop_ns = measure_async(&rt, || async {
            for _ in 0..CALLS {
                let count = Cell::new(0);
                let r = (|| ready(attempt(&count, failures)))
                    .retry(backon_policy())
                    .sleep(|_| ready(()))
                    .await;
                black_box(r.is_ok());
            }
        });
        rows.push((name, ebb_ns, backon_ns, backon_noop_ns));
    }

    for (name, failures) in [("blocking, success", 0), ("blocking, fail 2x", 2)] {
        let ebb_ns = measure_blocking(|| {
            for _ in 0..CALLS {
                let count = Cell::new(0);
                let r = ebb.run_blocking(|_cycle| attempt(&count, failures));
                black_box(r.is_ok());
            }
        });
        let backon_ns = measure_blocking(|| {
            for _ in 0..CALLS {
                let count = Cell::new(0);
                let r = (|| attempt(&count, failures)).retry(backon_policy()).call();
                black_box(r.is_ok());
            }
        });
        let backon_noop_ns = measure_blocking(|| {
            for _ in 0..CALLS {
                let count = Cell::new(0);
                let r = (|| attempt(&count, failures))
                    .retry(backon_policy())
                    .sleep(|_| ())
                    .call();
                black_box(r.is_ok());
            }
        });
        rows.push((name, ebb_ns, backon_ns, backon_noop_ns));
    }

    let baseline = measure_blocking(|| {
        for _ in 0..CALLS {
            let count = Cell::new(0);
            black_box(attempt(&count, 0).is_ok());
        }
    });

    println!();
    println!("retry overhead, ns/call (median of {RUNS} runs x {CALLS} calls)");
    println!(
        "{:<20} {:>10} {:>10} {:>11} {:>16} {:>16}",
        "case", "ebb", "backon", "ebb/backon", "backon no-op sl.", "ebb/backon no-op"
    );
    for (name, ebb_ns, backon_ns, noop_ns) in rows {
        println!(
            "{:<20} {:>10.1} {:>10.1} {:>11.2} {:>16.1} {:>16.2}",
            name,
            ebb_ns,
            backon_ns,
            ebb_ns / backon_ns,
            noop_ns,
            ebb_ns / noop_ns
        );
    }
    println!("{:<20} {:>10.1}   (the bare operation, no retry)", "baseline", baseline);
}
