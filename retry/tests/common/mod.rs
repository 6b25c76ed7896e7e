//! Shared helpers for the integration tests: a small error type with a
//! source chain, and a recorder of when each attempt started.

#![allow(dead_code)]

pub mod capture;

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use ebb_retry::{Retry, RetryError};
use tokio::time::Instant;

/// An application error as a handler might have: a conflict, a wrapped
/// I/O error, and something fatal.
#[derive(Debug)]
pub enum AppError {
    Conflict,
    Network(io::Error),
    Fatal(&'static str),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Conflict => f.write_str("expected version conflict"),
            AppError::Network(_) => f.write_str("network failure"),
            AppError::Fatal(what) => write!(f, "fatal: {what}"),
        }
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AppError::Network(e) => Some(e),
            _ => None,
        }
    }
}

/// A client's error that keeps the real failure (a transport error, an
/// HTTP status) deep in its source chain, as database and HTTP clients do.
#[derive(Debug)]
pub struct ClientError(pub Box<dyn Error + Send + Sync>);

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request failed")
    }
}

impl Error for ClientError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

pub fn network() -> AppError {
    AppError::Network(io::Error::from(io::ErrorKind::ConnectionReset))
}

/// Records the (tokio) time each attempt starts, so tests can check the
/// waits between attempts exactly under paused time.
#[derive(Debug)]
pub struct Attempts {
    origin: Instant,
    starts: RefCell<Vec<Duration>>,
    cycles: RefCell<Vec<u32>>,
}

impl Attempts {
    pub fn new() -> Self {
        Attempts {
            origin: Instant::now(),
            starts: RefCell::new(Vec::new()),
            cycles: RefCell::new(Vec::new()),
        }
    }

    pub fn record(&self, cycle: u32) {
        self.starts.borrow_mut().push(self.origin.elapsed());
        self.cycles.borrow_mut().push(cycle);
    }

    pub fn count(&self) -> usize {
        self.cycles.borrow().len()
    }

    pub fn cycles(&self) -> Vec<u32> {
        self.cycles.borrow().clone()
    }

    /// The waits between consecutive attempts.
    pub fn waits(&self) -> Vec<Duration> {
        self.starts
            .borrow()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect()
    }

    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Runs `retry` over an operation that fails with `errors[cycle]` and
/// succeeds once the list is exhausted, recording each attempt.
pub async fn run_script(
    retry: &Retry,
    attempts: &Attempts,
    mut errors: Vec<AppError>,
) -> Result<u32, RetryError<AppError>> {
    errors.reverse();
    let errors = RefCell::new(errors);
    retry
        .run(|cycle| {
            attempts.record(cycle);
            let next = errors.borrow_mut().pop();
            async move {
                match next {
                    Some(err) => Err(err),
                    None => Ok(cycle),
                }
            }
        })
        .await
}

/// The calling thread's id, as `/proc` names it (`/proc/self/task/ID`).
pub fn thread_id() -> String {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name()
        .expect("PID/task/TID")
        .to_string_lossy()
        .into_owned()
}

/// Waits (up to 10 s) until thread `id` of this process sleeps in the
/// kernel (`S` in `/proc/self/task/ID/stat`): for a thread that has just
/// started a wait, that it is parked in it.
pub fn until_asleep(id: &str) {
    let started = std::time::Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{id}/stat"))
            .expect("the thread's stat");
        let state = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.chars().next());
        if state == Some('S') {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "thread {id} not asleep after 10 s: {stat}"
        );
        // Polls /proc until the thread sleeps.
        std::thread::sleep(Duration::from_millis(1));
    }
}
