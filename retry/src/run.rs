//! The async runner: [`Retry::run`], and [`Retry::run_boxed`] for boxed
//! errors.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use crate::attempts::{Boxed, Plain, View};
use crate::error::{OperationError, RetryError};
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
        E: OperationError,
    {
        // The runner's future is returned as it is: awaiting it in an
        // `async fn` of our own would wrap it in a second state machine,
        // which costs the success path measurably (benches/overhead.rs).
        self.run_viewed(operation, Plain)
    }

    /// [`run`](Retry::run) for an operation whose error is boxed:
    /// `Box<dyn Error + Send + Sync>`, or `anyhow::Error`. Neither is
    /// itself a [`std::error::Error`], so `run` does not take them.
    ///
    /// Everything else is as in `run`: the rules, the schedule, the
    /// budgets, cancellation, the events and the [`RetryError`]. Rules see
    /// the error inside the box as the top of the chain, so
    /// [`Rule::on::<io::Error>()`](crate::Rule::on) matches an `io::Error`
    /// in the box or anywhere in its [`source`](StdError::source) chain
    /// (for `anyhow::Error`, the chain its contexts make). An error boxed
    /// without `Send + Sync` (`Box<dyn Error>`) is not accepted.
    ///
    /// `RetryError<E>` is a [`std::error::Error`] only when `E` is, so not
    /// here: take the last error back, Eventide's raised error, with
    /// [`RetryError::into_last`], as in
    /// `retry.run_boxed(op).await.map_err(RetryError::into_last)?`.
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
    /// /// A handler's step, failing once the way a database client might.
    /// async fn load(cycle: u32) -> Result<&'static str, BoxError> {
    ///     if cycle == 0 {
    ///         Err(io::Error::from(io::ErrorKind::ConnectionReset).into())
    ///     } else {
    ///         Ok("account")
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BoxError> {
    /// let retry = Retry::intervals_ms([10, 20]).retry_on::<io::Error>().build()?;
    ///
    /// // The io::Error in the box is retried; the handler keeps its error type.
    /// let account = retry.run_boxed(load).await.map_err(RetryError::into_last)?;
    /// assert_eq!(account, "account");
    ///
    /// // Any other error is returned at once, as the very error raised.
    /// let err = retry
    ///     .run_boxed(|_| async { Err::<(), BoxError>("no such account".into()) })
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.is_not_retryable());
    /// assert_eq!(err.into_last().to_string(), "no such account");
    /// # Ok(())
    /// # }
    /// ```
    pub fn run_boxed<T, E, F, Fut>(
        &self,
        operation: F,
    ) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: AsRef<dyn StdError + Send + Sync + 'static>,
    {
        self.run_viewed(operation, Boxed)
    }

    /// The loop behind [`run`](Retry::run) and
    /// [`run_boxed`](Retry::run_boxed): the same for both but for how the
    /// engine sees an error (`view`).
    #[inline]
    async fn run_viewed<T, E, F, Fut, V>(
        &self,
        mut operation: F,
        view: V,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        V: View<E>,
    {
        let mut attempts = self.start(view);
        let mut cycle = 0u32;
        loop {
            match operation(cycle).await {
                Ok(value) => {
                    attempts.succeeded(cycle);
                    return Ok(value);
                }
                Err(error) => match attempts.failed(cycle, &error) {
                    Err(reason) => return Err(attempts.give_up(cycle, error, reason)),
                    Ok(wait) => {
                        // Checked here so that zero waits skip making and
                        // polling the pause's future.
                        if !wait.is_zero() && !self.pause(wait).await {
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
    pub(crate) async fn pause(&self, wait: Duration) -> bool {
        // Cancellation was checked before deciding to wait, and a zero
        // sleep would still register a timer: skip it (the runners skip
        // the call too, but a zero wait must never reach the timer).
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
