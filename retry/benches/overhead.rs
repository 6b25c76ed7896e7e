//! Run with: `cargo bench -p ebb-retry --bench overhead`
//!
//! The overhead of wrapping an operation in a retry, ebb-retry against the
//! `backon` crate doing the same thing:
//!
//! - `success`: the operation succeeds at once (the common case);
//! - `fail 2x`: it fails twice, then succeeds, with zero waits;
//! - `per-rule, fail 2x`: the same, the error matched by a rule that has
//!   its own schedule (ebb: `Rule::on::<Flaky>().intervals(..)` on a policy
//!   without a schedule; backon has no per-rule schedules, so its side is
//!   the same as in `fail 2x`).
//!
//! backon's side filters its errors with `.when(..)` testing the error's
//! type in every case, as ebb's rule does in the per-rule case; the test
//! holds for every error here, and compiles to nothing for the concrete
//! type.
//!
//! Each figure is the median over 15 runs of the mean ns per call over as
//! many calls as fill about 40 ms. The contenders of a case take turns run
//! by run, so a burst of load from elsewhere on the machine hits them
//! alike rather than skewing whichever happened to run then. Both
//! libraries are used as their documentation shows: ebb with a policy
//! built once, backon with a builder per call. backon's default sleeper
//! registers a tokio timer even for a zero wait; the "no-op sleeper" rows
//! show backon with that cost removed, as a fairer floor. Not a timed
//! test: it prints a table and never fails.
#![allow(clippy::print_stdout)]

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::future::ready;
use std::hint::black_box;
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ConstantBuilder, Retryable};
use ebb_retry::{Intervals, Retry, Rule};

/// Runs per figure; the median is reported.
const RUNS: usize = 15;
/// Each run makes as many calls as fit in about this long (found by
/// doubling), so fast cases get many calls and slow ones do not take
/// minutes: backon's zero wait goes through tokio's millisecond timer.
const RUN_TARGET: Duration = Duration::from_millis(40);
/// Never fewer calls than this in a run.
const MIN_CALLS: u32 = 100;

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
    if n < black_box(failures) {
        Err(Flaky)
    } else {
        Ok(n)
    }
}

fn backon_policy() -> ConstantBuilder {
    ConstantBuilder::default()
        .with_delay(Duration::ZERO)
        .with_max_times(2)
}

/// backon's filter: the same question ebb's per-rule case asks, whether
/// the error is a `Flaky`.
fn is_flaky(err: &Flaky) -> bool {
    (err as &dyn Error).is::<Flaky>()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A contender: makes the given number of calls.
type Body<'a> = Box<dyn FnMut(u32) + 'a>;

/// How many calls of `body` fill about `RUN_TARGET` (doubling; also warms up).
fn calibrate(body: &mut Body<'_>) -> u32 {
    let mut calls = MIN_CALLS;
    loop {
        let started = Instant::now();
        body(calls);
        if started.elapsed() >= RUN_TARGET / 4 || calls >= 1 << 24 {
            return calls.saturating_mul(4);
        }
        calls *= 2;
    }
}

/// ns per call of each contender: the median over `RUNS` interleaved runs.
fn measure(mut bodies: Vec<Body<'_>>) -> Vec<f64> {
    let calls: Vec<u32> = bodies.iter_mut().map(calibrate).collect();
    let mut samples = vec![Vec::with_capacity(RUNS); bodies.len()];
    for _ in 0..RUNS {
        for ((body, &n), out) in bodies.iter_mut().zip(&calls).zip(&mut samples) {
            let started = Instant::now();
            body(n);
            out.push(started.elapsed().as_nanos() as f64 / f64::from(n));
        }
    }
    samples.into_iter().map(median).collect()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let rt = &rt;
    let policy = Retry::new([0, 0]).expect("valid intervals");
    let ebb = &policy;

    let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();

    let per_rule = Retry::builder()
        .rule(
            Rule::on::<Flaky>().intervals(Intervals::from_millis([0, 0]).expect("valid intervals")),
        )
        .build()
        .expect("a valid policy");
    let per_rule = &per_rule;

    let async_cases = [
        ("async, success", 0, ebb),
        ("async, fail 2x", 2, ebb),
        ("async, per-rule, fail 2x", 2, per_rule),
    ];
    for (name, failures, ebb) in async_cases {
        let ebb_body: Body<'_> = Box::new(move |calls| {
            rt.block_on(async move {
                for _ in 0..calls {
                    let count = Cell::new(0);
                    let r = ebb.run(|_cycle| ready(attempt(&count, failures))).await;
                    black_box(r.is_ok());
                }
            });
        });
        let backon_body: Body<'_> = Box::new(move |calls| {
            rt.block_on(async move {
                for _ in 0..calls {
                    let count = Cell::new(0);
                    let r = (|| ready(attempt(&count, failures)))
                        .retry(backon_policy())
                        .when(is_flaky)
                        .await;
                    black_box(r.is_ok());
                }
            });
        });
        let backon_noop_body: Body<'_> = Box::new(move |calls| {
            rt.block_on(async move {
                for _ in 0..calls {
                    let count = Cell::new(0);
                    let r = (|| ready(attempt(&count, failures)))
                        .retry(backon_policy())
                        .when(is_flaky)
                        .sleep(|_| ready(()))
                        .await;
                    black_box(r.is_ok());
                }
            });
        });
        rows.push((name, measure(vec![ebb_body, backon_body, backon_noop_body])));
    }

    let blocking_cases = [
        ("blocking, success", 0, ebb),
        ("blocking, fail 2x", 2, ebb),
        ("blocking, per-rule, fail 2x", 2, per_rule),
    ];
    for (name, failures, ebb) in blocking_cases {
        let ebb_body: Body<'_> = Box::new(move |calls| {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = ebb.run_blocking(|_cycle| attempt(&count, failures));
                black_box(r.is_ok());
            }
        });
        let backon_body: Body<'_> = Box::new(move |calls| {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = (|| attempt(&count, failures))
                    .retry(backon_policy())
                    .when(is_flaky)
                    .call();
                black_box(r.is_ok());
            }
        });
        let backon_noop_body: Body<'_> = Box::new(move |calls| {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = (|| attempt(&count, failures))
                    .retry(backon_policy())
                    .when(is_flaky)
                    .sleep(|_| ())
                    .call();
                black_box(r.is_ok());
            }
        });
        rows.push((name, measure(vec![ebb_body, backon_body, backon_noop_body])));
    }

    let baseline = measure(vec![Box::new(|calls| {
        for _ in 0..calls {
            let count = Cell::new(0);
            black_box(attempt(&count, 0).is_ok());
        }
    })])[0];

    println!();
    println!("retry overhead, ns/call (median of {RUNS} interleaved runs of ~{RUN_TARGET:?})");
    println!(
        "{:<28} {:>10} {:>12} {:>11} {:>16} {:>17}",
        "case", "ebb", "backon", "ebb/backon", "backon no-op sl.", "ebb/backon no-op"
    );
    for (name, ns) in rows {
        let (ebb_ns, backon_ns, noop_ns) = (ns[0], ns[1], ns[2]);
        println!(
            "{:<28} {:>10.1} {:>12.1} {:>11.2} {:>16.1} {:>17.2}",
            name,
            ebb_ns,
            backon_ns,
            ebb_ns / backon_ns,
            noop_ns,
            ebb_ns / noop_ns
        );
    }
    println!(
        "{:<28} {:>10.1}   (the bare operation, no retry)",
        "baseline", baseline
    );
}
