//! The async runner: [`Retry::run`].

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use crate::attempts::{self, Step};
use crate::error::RetryError;
use crate::policy::Retry;

impl Retry {
    /// Run `operation` until it succeeds or the policy says stop.
    ///
    /// The operation gets the cycle number (0 for the first attempt) and
    /// returns a future; it runs at most `1 + intervals` times. Waits use
    /// tokio's timer, so a runtime with time enabled must be running, and
    /// tests can use paused time. A zero wait does not touch the timer.
    ///
    /// # Errors
    /// A [`RetryError`] holding every attempt's error, the last one as
    /// primary, and why retrying stopped.
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use std::io;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let retry = Retry::new([0, 0])?;
    /// let n = retry
    ///     .run(|cycle| async move {
    ///         if cycle == 0 { Err(io::Error::other("flaky")) } else { Ok(cycle) }
    ///     })
    ///     .await?;
    /// assert_eq!(n, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn run<T, E, F, Fut>(&self, operation: F) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: StdError + 'static,
    {
        // The runner's future is returned as it is: awaiting it in an
        // `async fn` of our own would wrap it in a second state machine,
        // which costs the success path measurably (benches/overhead.rs).
        self.run_viewed(operation, attempts::plain::<E>)
    }

    /// The loop behind [`run`](Retry::run), given how the engine sees an
    /// error (`view`).
    #[inline]
    async fn run_viewed<T, E, F, Fut, V>(
        &self,
        mut operation: F,
        view: V,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        V: Fn(&E) -> &(dyn StdError + 'static),
    {
        let mut attempts = self.start(view);
        let mut cycle = 0u32;
        loop {
            match operation(cycle).await {
                Ok(value) => {
                    attempts.succeeded(cycle);
                    return Ok(value);
                }
                Err(error) => match attempts.failed(cycle, error) {
                    Step::Stop(err) => return Err(err),
                    Step::Wait(wait, error) => {
                        if !self.pause(wait).await {
                            return Err(attempts.cancelled(cycle, error));
                        }
                        attempts.retrying(error);
                    }
                },
            }
            cycle = cycle.saturating_add(1);
        }
    }

    /// Wait `wait`, or less if cancelled; `false` when cancelled.
    async fn pause(&self, wait: Duration) -> bool {
        // Cancellation was checked before deciding to wait, and a zero
        // sleep would still register a timer: skip it.
        if wait.is_zero() {
            return true;
        }
        match self.cancel_token() {
            None => {
                tokio::time::sleep(wait).await;
                true
            }
            Some(token) => tokio::select! {
                biased;
                () = token.cancelled() => false,
                () = tokio::time::sleep(wait) => true,
            },
        }
    }
}
