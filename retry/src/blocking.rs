//! The blocking runner: [`Retry::run_blocking`] (and
//! [`Retry::run_blocking_boxed`] for boxed errors), for code without an
//! async runtime. Same policy, same decisions; only the waiting differs.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::attempts::{Boxed, Plain, View};
use crate::error::{OperationError, RetryError};
use crate::policy::Retry;

impl Retry {
    /// Run `operation` on the current thread until it succeeds or the
    /// policy says stop, sleeping the thread between attempts.
    ///
    /// The operation gets the cycle number (0 for the first attempt). A
    /// cancellation token set on the policy wakes the sleeping thread at
    /// once. Do not call this on an async runtime's worker thread; use
    /// [`run`](Retry::run) there.
    ///
    /// # Errors
    /// A [`RetryError`] holding every attempt's error, the last one as
    /// primary, and why retrying stopped.
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use std::io;
    ///
    /// let retry = Retry::new([1, 1])?;
    /// let n = retry.run_blocking(|cycle| {
    ///     if cycle < 2 { Err(io::Error::other("flaky")) } else { Ok(cycle) }
    /// })?;
    /// assert_eq!(n, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_blocking<T, E, F>(&self, operation: F) -> Result<T, RetryError<E>>
    where
        F: FnMut(u32) -> Result<T, E>,
        E: OperationError,
    {
        self.run_blocking_viewed(operation, Plain)
    }

    /// [`run_blocking`](Retry::run_blocking) for an operation whose error
    /// is boxed: `Box<dyn Error + Send + Sync>`, or `anyhow::Error`.
    ///
    /// Everything is as in `run_blocking`; rules see the error inside the
    /// box as the top of the chain, as in [`run_boxed`](Retry::run_boxed),
    /// which says more. Take the last error back with
    /// [`RetryError::into_last`]:
    /// `retry.run_blocking_boxed(op).map_err(RetryError::into_last)?`.
    ///
    /// # Errors
    /// A [`RetryError`] holding every attempt's error, the last one as
    /// primary, and why retrying stopped.
    ///
    /// ```
    /// use ebb_retry::{Retry, RetryError};
    /// use std::error::Error;
    /// use std::io;
    ///
    /// type BoxError = Box<dyn Error + Send + Sync>;
    ///
    /// fn read_config(cycle: u32) -> Result<u32, BoxError> {
    ///     if cycle < 2 { Err(io::Error::from(io::ErrorKind::Interrupted).into()) } else { Ok(cycle) }
    /// }
    ///
    /// fn main() -> Result<(), BoxError> {
    ///     let retry = Retry::intervals_ms([1, 1]).retry_on::<io::Error>().build()?;
    ///     let n = retry.run_blocking_boxed(read_config).map_err(RetryError::into_last)?;
    ///     assert_eq!(n, 2);
    ///     Ok(())
    /// }
    /// ```
    pub fn run_blocking_boxed<T, E, F>(&self, operation: F) -> Result<T, RetryError<E>>
    where
        F: FnMut(u32) -> Result<T, E>,
        E: AsRef<dyn StdError + Send + Sync + 'static>,
    {
        self.run_blocking_viewed(operation, Boxed)
    }

    /// The loop behind [`run_blocking`](Retry::run_blocking) and
    /// [`run_blocking_boxed`](Retry::run_blocking_boxed): the same for both
    /// but for how the engine sees an error (`view`).
    #[inline]
    fn run_blocking_viewed<T, E, F, V>(&self, mut operation: F, view: V) -> Result<T, RetryError<E>>
    where
        F: FnMut(u32) -> Result<T, E>,
        V: View<E>,
    {
        let mut attempts = self.start(view);
        let mut cycle = 0u32;
        loop {
            match operation(cycle) {
                Ok(value) => {
                    attempts.succeeded(cycle);
                    return Ok(value);
                }
                Err(error) => match attempts.failed(cycle, &error) {
                    Err(reason) => return Err(attempts.give_up(cycle, error, reason)),
                    Ok(wait) => {
                        // Checked here so that zero waits skip the call.
                        if !wait.is_zero() && !pause_blocking(wait, self.cancel_token()) {
                            return Err(attempts.cancelled(cycle, error));
                        }
                        attempts.retrying(error);
                    }
                },
            }
            cycle = cycle.saturating_add(1);
        }
    }
}

/// Wakes a parked thread; lets a future's waker end a blocking wait.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Sleep the thread for `wait`, or less if `cancel` fires; `false` when
/// cancelled.
fn pause_blocking(wait: Duration, cancel: Option<&CancellationToken>) -> bool {
    let Some(token) = cancel else {
        thread::sleep(wait);
        return true;
    };
    // Poll the token's future with a waker that unparks this thread, and
    // park with a timeout: the thread wakes on whichever comes first
    // without a helper thread or a runtime.
    let mut cancelled = pin!(token.cancelled());
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now().checked_add(wait);
    loop {
        if let Poll::Ready(()) = cancelled.as_mut().poll(&mut cx) {
            return false;
        }
        match deadline {
            // Parking can wake spuriously; the loop re-checks both ends.
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return true;
                }
                thread::park_timeout(deadline - now);
            }
            None => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread's state in `/proc/self/task/ID/stat`, `ID` as
    /// `/proc/thread-self` names it.
    fn thread_state(id: &str) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{id}/stat")).ok()?;
        stat.rsplit(") ").next()?.chars().next()
    }

    /// The cancellation comes once the thread sleeps (`S`) in the wait, so
    /// that it is the wait that ends, not a check before it.
    #[test]
    fn cancellation_wakes_a_sleeping_thread() {
        let token = CancellationToken::new();
        let canceller = token.clone();
        let started = Instant::now();
        let (id, sleeper) = std::sync::mpsc::channel();
        let handle = thread::spawn(move || {
            let link = std::fs::read_link("/proc/thread-self").unwrap();
            id.send(link.file_name().unwrap().to_string_lossy().into_owned())
                .unwrap();
            pause_blocking(Duration::from_secs(60), Some(&token))
        });
        let sleeper = sleeper.recv().unwrap();
        while thread_state(&sleeper) != Some('S') {
            assert!(started.elapsed() < Duration::from_secs(10), "never asleep");
            // Polls /proc until the thread sleeps in its wait.
            thread::sleep(Duration::from_millis(1));
        }
        canceller.cancel();
        assert!(!handle.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn an_uncancelled_wait_runs_its_length() {
        let token = CancellationToken::new();
        let started = Instant::now();
        assert!(pause_blocking(Duration::from_millis(15), Some(&token)));
        assert!(started.elapsed() >= Duration::from_millis(15));
    }
}
