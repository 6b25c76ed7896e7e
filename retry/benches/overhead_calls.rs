//! The cases of `benches/overhead.rs`, one at a time, for counting
//! instructions: the same operation, policies and backon builders, run a
//! given number of times with no timing around them. Wall time on a shared
//! machine varies by tens of percent; instruction counts under callgrind do
//! not, so they show what a change to the engine costs or saves.
//!
//! ```text
//! cargo bench -p ebb-retry --bench overhead_calls --no-run
//! B=$(ls -t target/release/deps/overhead_calls-* | grep -v '\.d$' | head -1)
//! valgrind --tool=callgrind $B blocking-per-rule ebb 0       # start-up only
//! valgrind --tool=callgrind $B blocking-per-rule ebb 20000   # + 20000 calls
//! ```
//!
//! The difference of the two totals over 20000 is the instructions per
//! call. Cases: `{async,blocking}-{success,fail,per-rule}`; contenders:
//! `ebb`, `backon` (its default sleeper), `backon-noop` (a no-op sleeper).
//! Without arguments (as under `cargo bench`) it prints this usage and
//! exits.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::future::ready;
use std::hint::black_box;
use std::time::Duration;

use backon::{BlockingRetryable, ConstantBuilder, Retryable};
use ebb_retry::{Intervals, Retry, Rule};

#[derive(Debug)]
struct Flaky;

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flaky")
    }
}

impl Error for Flaky {}

/// The operation of `benches/overhead.rs`: fails `failures` times, then
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

fn is_flaky(err: &Flaky) -> bool {
    (err as &dyn Error).is::<Flaky>()
}

const USAGE: &str = "usage: overhead_calls {async,blocking}-{success,fail,per-rule} \
                     {ebb,backon,backon-noop} CALLS";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [case, contender, calls] = args.as_slice() else {
        println!("{USAGE}");
        return;
    };
    let Ok(calls) = calls.parse::<u32>() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let Some((mode, kind)) = case.split_once('-') else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };

    let plain = Retry::new([0, 0]).expect("valid intervals");
    let per_rule = Retry::builder()
        .rule(
            Rule::on::<Flaky>().intervals(Intervals::from_millis([0, 0]).expect("valid intervals")),
        )
        .build()
        .expect("a valid policy");
    let (ebb, failures) = match kind {
        "success" => (&plain, 0),
        "fail" => (&plain, 2),
        "per-rule" => (&per_rule, 2),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");

    match (mode, contender.as_str()) {
        ("async", "ebb") => rt.block_on(async {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = ebb.run(|_cycle| ready(attempt(&count, failures))).await;
                black_box(r.is_ok());
            }
        }),
        ("async", "backon") => rt.block_on(async {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = (|| ready(attempt(&count, failures)))
                    .retry(backon_policy())
                    .when(is_flaky)
                    .await;
                black_box(r.is_ok());
            }
        }),
        ("async", "backon-noop") => rt.block_on(async {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = (|| ready(attempt(&count, failures)))
                    .retry(backon_policy())
                    .when(is_flaky)
                    .sleep(|_| ready(()))
                    .await;
                black_box(r.is_ok());
            }
        }),
        ("blocking", "ebb") => {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = ebb.run_blocking(|_cycle| attempt(&count, failures));
                black_box(r.is_ok());
            }
        }
        ("blocking", "backon") => {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = (|| attempt(&count, failures))
                    .retry(backon_policy())
                    .when(is_flaky)
                    .call();
                black_box(r.is_ok());
            }
        }
        ("blocking", "backon-noop") => {
            for _ in 0..calls {
                let count = Cell::new(0);
                let r = (|| attempt(&count, failures))
                    .retry(backon_policy())
                    .when(is_flaky)
                    .sleep(|_| ())
                    .call();
                black_box(r.is_ok());
            }
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}
