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
//!   the same as in `fail 2x`);
//!
//! each async (`retry.run(..).await` on a current-thread tokio runtime)
//! and blocking (`run_blocking` / backon's `BlockingRetryable::call`).
//! backon's side filters its errors with `.when(..)` testing the error's
//! type in every case, as ebb's rule does in the per-rule case. Both
//! libraries are used as their documentation shows: ebb with a policy
//! built once, backon with a builder per call. backon's default sleeper
//! registers a tokio timer even for a zero wait (about a millisecond per
//! retry, async); "backon, no-op sleeper" is backon with that cost removed
//! (`.sleep(|_| ready(()))` / `.sleep(|_| ())`), the fairer floor.
//!
//! Wall time: each contender's run makes as many calls as fill about 40 ms
//! (found by doubling, which also warms up); `RUNS` rounds, the three
//! contenders of a case in an order that turns by one each round (the
//! shared harness, `ebb_bench`); each figure is the median of the mean ns
//! per call, each ratio the median of the per-round ratios. The
//! requirement: ebb's time per call at or below backon's, and at or below
//! backon's with the no-op sleeper, in every case; the bench exits
//! non-zero otherwise. (The bare operation is the same for all, so
//! comparing times per call compares the retries' overheads.)
//!
//! Instructions per call, beside the time: the kernel's count of the
//! instructions the thread retires (`perf_event_open`) over `CALLS` calls,
//! where the kernel offers a hardware counter; else valgrind's callgrind
//! over this program run again as `overhead count CASE CONTENDER N` (the
//! difference between `CALLS` calls and none, over `CALLS`), where
//! valgrind is installed; else none, and the report says so. Wall time on
//! a shared machine moves by tens of percent from run to run and by a few
//! ns between builds of nearly the same code; instruction counts do not.
//! They are reported, not required: instructions are not time.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::future::ready;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ConstantBuilder, Retryable};
use ebb_bench::instructions::{self, Counter};
use ebb_bench::{BoxError, Report, Rounds, Row, measure, progress};
use ebb_retry::{Intervals, Retry, Rule};

/// Rounds per case; the medians are reported.
const RUNS: usize = 15;
/// Each run makes as many calls as fit in about this long (found by
/// doubling), so fast cases get many calls and slow ones do not take
/// minutes: backon's zero wait goes through tokio's millisecond timer.
const RUN_TARGET: Duration = Duration::from_millis(40);
/// Never fewer calls than this in a run.
const MIN_CALLS: u32 = 100;
/// Calls counted for the instructions per call.
const CALLS: u32 = 2000;

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

/// A case: how the retry runs and what the operation does.
#[derive(Debug, Clone, Copy)]
struct Case {
    /// Its name in the report and on the `count` command line.
    name: &'static str,
    key: &'static str,
    asynchronous: bool,
    failures: u32,
    per_rule: bool,
}

const CASES: [Case; 6] = [
    Case {
        name: "async, success",
        key: "async-success",
        asynchronous: true,
        failures: 0,
        per_rule: false,
    },
    Case {
        name: "async, fail 2x",
        key: "async-fail",
        asynchronous: true,
        failures: 2,
        per_rule: false,
    },
    Case {
        name: "async, per-rule, fail 2x",
        key: "async-per-rule",
        asynchronous: true,
        failures: 2,
        per_rule: true,
    },
    Case {
        name: "blocking, success",
        key: "blocking-success",
        asynchronous: false,
        failures: 0,
        per_rule: false,
    },
    Case {
        name: "blocking, fail 2x",
        key: "blocking-fail",
        asynchronous: false,
        failures: 2,
        per_rule: false,
    },
    Case {
        name: "blocking, per-rule, fail 2x",
        key: "blocking-per-rule",
        asynchronous: false,
        failures: 2,
        per_rule: true,
    },
];

/// The contenders, by their names in the report and on the `count`
/// command line.
const EBB: &str = "ebb";
const BACKON: &str = "backon";
const BACKON_NOOP: &str = "backon-noop";
const CONTENDERS: [&str; 3] = [EBB, BACKON, BACKON_NOOP];

/// A contender in a case: makes the given number of calls.
type Body<'a> = Box<dyn FnMut(u32) + 'a>;

/// What every body shares: the runtime and ebb's two policies.
struct Fixture {
    rt: tokio::runtime::Runtime,
    plain: Retry,
    per_rule: Retry,
}

impl Fixture {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a tokio runtime"),
            plain: Retry::new([0, 0]).expect("valid intervals"),
            per_rule: Retry::builder()
                .rule(
                    Rule::on::<Flaky>()
                        .intervals(Intervals::from_millis([0, 0]).expect("valid intervals")),
                )
                .build()
                .expect("a valid policy"),
        }
    }

    /// `contender`'s calls in `case`.
    fn body(&self, case: Case, contender: &str) -> Body<'_> {
        let rt = &self.rt;
        let ebb = if case.per_rule {
            &self.per_rule
        } else {
            &self.plain
        };
        let failures = case.failures;
        match (case.asynchronous, contender) {
            (true, EBB) => Box::new(move |calls| {
                rt.block_on(async move {
                    for _ in 0..calls {
                        let count = Cell::new(0);
                        let r = ebb.run(|_cycle| ready(attempt(&count, failures))).await;
                        black_box(r.is_ok());
                    }
                });
            }),
            (true, BACKON) => Box::new(move |calls| {
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
            }),
            (true, _) => Box::new(move |calls| {
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
            }),
            (false, EBB) => Box::new(move |calls| {
                for _ in 0..calls {
                    let count = Cell::new(0);
                    let r = ebb.run_blocking(|_cycle| attempt(&count, failures));
                    black_box(r.is_ok());
                }
            }),
            (false, BACKON) => Box::new(move |calls| {
                for _ in 0..calls {
                    let count = Cell::new(0);
                    let r = (|| attempt(&count, failures))
                        .retry(backon_policy())
                        .when(is_flaky)
                        .call();
                    black_box(r.is_ok());
                }
            }),
            (false, _) => Box::new(move |calls| {
                for _ in 0..calls {
                    let count = Cell::new(0);
                    let r = (|| attempt(&count, failures))
                        .retry(backon_policy())
                        .when(is_flaky)
                        .sleep(|_| ())
                        .call();
                    black_box(r.is_ok());
                }
            }),
        }
    }
}

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

/// ns per call of each contender, round by round, the order turning by
/// one each round.
fn measure_case(fixture: &Fixture, case: Case) -> Rounds {
    let mut bodies: Vec<Body<'_>> = CONTENDERS
        .iter()
        .map(|contender| fixture.body(case, contender))
        .collect();
    let calls: Vec<u32> = bodies.iter_mut().map(calibrate).collect();
    let mut rounds = Rounds::new(&CONTENDERS);
    for round in 0..RUNS {
        for index in measure::order(round, CONTENDERS.len()) {
            let started = Instant::now();
            bodies[index](calls[index]);
            let ns = started.elapsed().as_nanos() as f64 / f64::from(calls[index]);
            rounds.push(CONTENDERS[index], ns);
        }
    }
    rounds
}

/// How instructions are counted, if they can be.
enum Counting {
    Perf(Counter),
    Callgrind(std::path::PathBuf),
    Unavailable(String),
}

impl Counting {
    fn new() -> Self {
        match Counter::new() {
            Ok(counter) => Self::Perf(counter),
            Err(refused) => {
                if instructions::callgrind_available() {
                    match std::env::current_exe() {
                        Ok(exe) => {
                            progress(format!("{refused}; counting with callgrind instead"));
                            Self::Callgrind(exe)
                        }
                        Err(err) => Self::Unavailable(format!("{refused}; {err}")),
                    }
                } else {
                    Self::Unavailable(format!("{refused}, and valgrind is not installed"))
                }
            }
        }
    }

    fn how(&self) -> String {
        match self {
            Self::Perf(_) => format!(
                "the kernel's instruction counter of the thread (perf_event_open), over {CALLS} calls"
            ),
            Self::Callgrind(_) => format!(
                "callgrind, the difference between {CALLS} calls and none, over {CALLS} (the kernel \
                 refused perf_event_open's hardware instruction counter: this machine offers none)"
            ),
            Self::Unavailable(why) => format!("not counted: {why}"),
        }
    }

    /// Instructions per call of `contender` in `case`.
    fn per_call(
        &self,
        fixture: &Fixture,
        case: Case,
        contender: &str,
    ) -> Result<Option<f64>, BoxError> {
        Ok(match self {
            Self::Perf(counter) => {
                let mut body = fixture.body(case, contender);
                body(MIN_CALLS);
                let count = counter.count(|| body(CALLS))?;
                Some(count as f64 / f64::from(CALLS))
            }
            Self::Callgrind(exe) => {
                let dir = std::env::temp_dir();
                let run = |calls: u32| {
                    instructions::callgrind(
                        exe,
                        &["count", case.key, contender, &calls.to_string()],
                        &dir,
                    )
                };
                let (none, all) = (run(0)?, run(CALLS)?);
                Some(all.saturating_sub(none) as f64 / f64::from(CALLS))
            }
            Self::Unavailable(_) => None,
        })
    }
}

/// `overhead count CASE CONTENDER CALLS`: the calls alone, untimed, for
/// callgrind.
fn count(args: &[String]) -> Result<(), BoxError> {
    let [case, contender, calls] = args else {
        return Err("usage: overhead count CASE CONTENDER CALLS".into());
    };
    let case = CASES
        .iter()
        .find(|c| c.key == case)
        .ok_or_else(|| format!("no case {case:?}"))?;
    let contender = CONTENDERS
        .iter()
        .find(|c| *c == contender)
        .ok_or_else(|| format!("no contender {contender:?}"))?;
    let fixture = Fixture::new();
    let mut body = fixture.body(*case, contender);
    body(calls.parse()?);
    Ok(())
}

fn run() -> Result<Report, BoxError> {
    let fixture = Fixture::new();
    let counting = Counting::new();
    let mut report = Report::new("overhead", "retry overhead: ebb-retry against backon");
    report.line(format!(
        "ns per call: the median of {RUNS} rounds, each of as many calls as fill ~{RUN_TARGET:?} per \
         contender, the contenders in an order that turns by one each round; ratios: medians of \
         the per-round ratios; {} CPUs, no database",
        std::thread::available_parallelism().map_or(0, usize::from)
    ));
    report.line(format!("instructions per call: {}", counting.how()));
    for case in CASES {
        progress(format!("{}: timing", case.name));
        let rounds = measure_case(&fixture, case);
        for (baseline, name) in [(BACKON, "backon"), (BACKON_NOOP, "backon, no-op sleeper")] {
            report.row(
                Row::time(case.name, "ns/call", rounds.median(EBB))
                    .against(name, rounds.median(baseline))
                    .paired(rounds.paired_ratio(EBB, baseline))
                    .required(1.0),
            );
        }
        progress(format!("{}: counting instructions", case.name));
        let ebb = counting.per_call(&fixture, case, EBB)?;
        if let Some(ebb) = ebb {
            for (baseline, name) in [(BACKON, "backon"), (BACKON_NOOP, "backon, no-op sleeper")] {
                if let Some(other) = counting.per_call(&fixture, case, baseline)? {
                    report.row(Row::time(case.name, "instructions/call", ebb).against(name, other));
                }
            }
        }
    }
    let mut bare: Body<'_> = Box::new(|calls| {
        for _ in 0..calls {
            let count = Cell::new(0);
            black_box(attempt(&count, 0).is_ok());
        }
    });
    let calls = calibrate(&mut bare);
    let started = Instant::now();
    bare(calls);
    report.note(format!(
        "the bare operation, no retry: {:.1} ns/call; the requirement: ebb's time per call at or \
         below each backon side's in every case (ratio ≥ 1×); instruction counts are reported, \
         not required",
        started.elapsed().as_nanos() as f64 / f64::from(calls)
    ));
    Ok(report)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|arg| arg == "count") {
        return match count(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{err}");
                ExitCode::from(2)
            }
        };
    }
    ebb_bench::report::main(run)
}
