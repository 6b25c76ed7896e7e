//! The keyed runner, [`Retry::run_keyed`]: the async loop of `run`, with
//! the count of failed attempts kept in the policy's attempt store (see
//! [`attempt_store`](crate::attempt_store) for what each step records and
//! why).

use std::future::Future;

use crate::attempt_store::BoxError;
use crate::attempts::Plain;
use crate::error::{KeyedRetryError, OperationError, StopReason};
use crate::policy::Retry;

impl Retry {
    /// Run `operation` as [`run`](Retry::run) does, counting its failed
    /// attempts under `key` in the policy's attempt store
    /// ([`RetryBuilder::attempt_store`](crate::RetryBuilder::attempt_store)),
    /// so that a call after a restart resumes the count: the limits of the
    /// policy hold in total across processes. Without a store it is `run`.
    ///
    /// The operation gets the cycle number counted across processes: a
    /// call resumed after two failed attempts starts at cycle 2.
    ///
    /// # Errors
    /// [`KeyedRetryError::GaveUp`] with every attempt's error of this
    /// call, as `run` returns; [`KeyedRetryError::Exhausted`], without
    /// running the operation, when an earlier call gave up on the key;
    /// [`KeyedRetryError::Store`] when the store failed.
    ///
    /// ```
    /// use ebb_retry::attempt_store::{AttemptStore, MemoryAttemptStore};
    /// use ebb_retry::Retry;
    /// use std::io;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryAttemptStore::new();
    /// let retry = Retry::intervals_ms([0, 0, 0]).attempt_store(store.clone()).build()?;
    ///
    /// // Two failed attempts, then the process "restarts" (a new call).
    /// store.record_failure("message-7").await?;
    /// store.record_failure("message-7").await?;
    /// let cycle = retry
    ///     .run_keyed("message-7", |cycle| async move {
    ///         if cycle < 3 { Err(io::Error::other("down")) } else { Ok(cycle) }
    ///     })
    ///     .await?;
    /// assert_eq!(cycle, 3); // cycles 2 and 3 ran here: 4 attempts in total
    /// assert_eq!(store.load("message-7").await?.failures, 0, "reset on success");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_keyed<T, E, F, Fut>(
        &self,
        key: &str,
        mut operation: F,
    ) -> Result<T, KeyedRetryError<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: OperationError,
    {
        let Some(store) = self.attempt_store() else {
            return self.run(operation).await.map_err(KeyedRetryError::GaveUp);
        };
        let store_error = |source: BoxError| KeyedRetryError::Store {
            key: key.to_owned(),
            source,
        };

        let count = store.load(key).await.map_err(store_error)?;
        if count.exhausted {
            return Err(KeyedRetryError::Exhausted {
                key: key.to_owned(),
                failures: count.failures,
            });
        }
        let mut attempts = self.start(Plain);
        attempts.resume(count.failures);
        let mut cycle = count.failures;
        loop {
            match operation(cycle).await {
                Ok(value) => {
                    attempts.succeeded(cycle);
                    if cycle > 0 {
                        store.reset(key).await.map_err(store_error)?;
                    }
                    return Ok(value);
                }
                Err(error) => {
                    // Counted before anything else, so that a kill during
                    // the wait that follows loses nothing.
                    store.record_failure(key).await.map_err(store_error)?;
                    match attempts.failed(cycle, &error) {
                        Err(reason) => {
                            let err = attempts.give_up(cycle, error, reason);
                            // A shutdown or a retry storm elsewhere is no
                            // verdict on the work: a later call may go on.
                            if !matches!(
                                err.reason(),
                                StopReason::Cancelled | StopReason::BudgetExhausted
                            ) {
                                store.record_exhausted(key).await.map_err(store_error)?;
                            }
                            return Err(KeyedRetryError::GaveUp(err));
                        }
                        Ok(wait) => {
                            if !self.pause(wait).await {
                                return Err(KeyedRetryError::GaveUp(
                                    attempts.cancelled(cycle, error),
                                ));
                            }
                            attempts.retrying(error);
                        }
                    }
                }
            }
            cycle = cycle.saturating_add(1);
        }
    }
}
