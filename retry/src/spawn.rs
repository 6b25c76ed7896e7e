//! Background retries: run an operation under a policy on its own tokio
//! task ([`Retry::spawn`]) or thread ([`Retry::spawn_blocking`]) and get
//! a handle to await, cancel or abort it; [`Retry::background`] adds a
//! callback for each failed attempt (an error logger).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;

use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::error::{OperationError, RetryError};
use crate::policy::Retry;

/// The caller's callback for each failed attempt: its cycle and its error.
/// Boxed because each caller passes its own closure type; it sees the
/// error as `dyn Error` so that its type need not be written out.
type OnError = Arc<dyn Fn(u32, &(dyn StdError + 'static)) + Send + Sync>;

/// An operation and a policy, to be run in the background: made by
/// [`Retry::background`], started by [`spawn`](Background::spawn) (a
/// tokio task) or [`spawn_blocking`](Background::spawn_blocking) (a
/// thread).
///
/// ```
/// use ebb_retry::Retry;
/// use std::io;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let retry = Retry::new([0, 0])?;
/// let handle = retry
///     .background(|cycle| async move {
///         if cycle < 2 { Err(io::Error::other("not yet")) } else { Ok(cycle) }
///     })
///     .on_error(|cycle, err| tracing::warn!(cycle, error = %err, "background attempt failed"))
///     .spawn();
/// assert_eq!(handle.await??, 2);
/// # Ok(())
/// # }
/// ```
#[must_use = "nothing runs until `spawn` or `spawn_blocking` is called"]
pub struct Background<F> {
    /// The policy, with a cancellation token of the handle's own once
    /// spawned.
    retry: Retry,
    /// What to run.
    operation: F,
    /// See [`Background::on_error`].
    on_error: Option<OnError>,
}

impl<F> fmt::Debug for Background<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Background")
            .field("retry", &self.retry)
            .field("on_error", &self.on_error.is_some())
            .finish_non_exhaustive()
    }
}

impl Retry {
    /// Prepare `operation` to run in the background under this policy; see
    /// [`Background`]. Use it to add an
    /// [`on_error`](Background::on_error) callback; [`spawn`](Retry::spawn)
    /// and [`spawn_blocking`](Retry::spawn_blocking) are the shorthands
    /// without one.
    pub fn background<F>(&self, operation: F) -> Background<F> {
        Background {
            retry: self.clone(),
            operation,
            on_error: None,
        }
    }

    /// Run `operation` under this policy on a new tokio task (the
    /// fire-and-forget retrier): shorthand for
    /// `self.background(operation).spawn()`. Must be called within a tokio
    /// runtime.
    ///
    /// ```
    /// use ebb_retry::Retry;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let handle = Retry::new([10])?.spawn(|_| async { Ok::<_, std::fmt::Error>("done") });
    /// assert_eq!(handle.await??, "done");
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn<T, E, F, Fut>(&self, operation: F) -> RetryHandle<T, E>
    where
        F: FnMut(u32) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: OperationError + Send,
    {
        self.background(operation).spawn()
    }

    /// Run `operation` under this policy on a new thread: shorthand for
    /// `self.background(operation).spawn_blocking()`.
    ///
    /// ```
    /// use ebb_retry::Retry;
    ///
    /// let handle = Retry::new([1])?.spawn_blocking(|cycle| {
    ///     if cycle == 0 { Err(std::fmt::Error) } else { Ok(cycle) }
    /// });
    /// assert_eq!(handle.join().expect("no panic")?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_blocking<T, E, F>(&self, operation: F) -> BlockingRetryHandle<T, E>
    where
        F: FnMut(u32) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: OperationError + Send,
    {
        self.background(operation).spawn_blocking()
    }

    /// This policy with a cancellation token for one background run: a
    /// child of the policy's own token, if it has one, so that cancelling
    /// the policy still cancels every run.
    fn for_background(&self) -> (Retry, CancellationToken) {
        let token = match self.cancel_token() {
            Some(parent) => parent.child_token(),
            None => CancellationToken::new(),
        };
        (self.with_cancellation(token.clone()), token)
    }
}

impl<F> Background<F> {
    /// Call `on_error` with the cycle and the error of each failed
    /// attempt, the last one included, before the policy decides what
    /// follows. It runs inline, so keep it short.
    ///
    /// Default: no callback (the policy's tracing events still report
    /// each failure).
    ///
    /// ```
    /// use ebb_retry::Retry;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let logger = log.clone();
    /// let handle = Retry::new([0, 0])?
    ///     .background(|_| Err::<(), _>(std::fmt::Error))
    ///     .on_error(move |cycle, err| logger.lock().unwrap().push(format!("{cycle}: {err}")))
    ///     .spawn_blocking();
    /// assert!(handle.join().expect("no panic").is_err());
    /// assert_eq!(log.lock().unwrap().len(), 3);
    /// # Ok::<(), ebb_retry::ConfigError>(())
    /// ```
    pub fn on_error(
        mut self,
        on_error: impl Fn(u32, &(dyn StdError + 'static)) + Send + Sync + 'static,
    ) -> Self {
        self.on_error = Some(Arc::new(on_error));
        self
    }

    /// Start the run on a new tokio task and return its handle. Must be
    /// called within a tokio runtime.
    ///
    /// The handle's [`cancel`](RetryHandle::cancel) ends a wait at once;
    /// [`abort`](RetryHandle::abort) ends the task, attempt and all.
    /// Dropping the handle lets the run go on to its end.
    pub fn spawn<T, E, Fut>(self) -> RetryHandle<T, E>
    where
        F: FnMut(u32) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: OperationError + Send,
    {
        let (retry, cancel) = self.retry.for_background();
        let Background {
            mut operation,
            on_error,
            ..
        } = self;
        let task = tokio::spawn(async move {
            retry
                .run(|cycle| {
                    let attempt = operation(cycle);
                    let on_error = on_error.clone();
                    async move {
                        let result = attempt.await;
                        if let (Err(err), Some(on_error)) = (&result, &on_error) {
                            on_error(cycle, err);
                        }
                        result
                    }
                })
                .await
        });
        RetryHandle { task, cancel }
    }

    /// Start the run on a new thread and return its handle.
    ///
    /// The handle's [`cancel`](BlockingRetryHandle::cancel) wakes the
    /// thread from a wait at once.
    pub fn spawn_blocking<T, E>(self) -> BlockingRetryHandle<T, E>
    where
        F: FnMut(u32) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: OperationError + Send,
    {
        let (retry, cancel) = self.retry.for_background();
        let Background {
            mut operation,
            on_error,
            ..
        } = self;
        let thread = thread::spawn(move || {
            retry.run_blocking(|cycle| {
                let result = operation(cycle);
                if let (Err(err), Some(on_error)) = (&result, &on_error) {
                    on_error(cycle, err);
                }
                result
            })
        });
        BlockingRetryHandle { thread, cancel }
    }
}

/// A run on a tokio task, from [`Retry::spawn`] or
/// [`Background::spawn`]. Awaiting it gives what awaiting tokio's
/// `JoinHandle` gives: `Err(JoinError)` if the task panicked or was
/// aborted, else the run's result.
///
/// ```
/// use ebb_retry::Retry;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = Retry::new([60_000])?.spawn(|_| async { Err::<(), _>(std::fmt::Error) });
/// tokio::task::yield_now().await; // the first attempt fails; the minute's wait begins
/// handle.cancel();
/// let err = handle.await?.unwrap_err();
/// assert!(err.is_cancelled());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RetryHandle<T, E> {
    /// The task running the retries.
    task: JoinHandle<Result<T, RetryError<E>>>,
    /// Cancels this run's waits; a child of the policy's token.
    cancel: CancellationToken,
}

impl<T, E> RetryHandle<T, E> {
    /// End the run at its next wait: a wait in progress ends at once and
    /// the run returns its last error
    /// ([`StopReason::Cancelled`](crate::StopReason::Cancelled)); an
    /// attempt in progress is left to finish, and is the last one.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// End the task at once, dropping an attempt in progress: awaiting
    /// the handle then gives a `JoinError` for which `is_cancelled()`
    /// holds.
    ///
    /// ```
    /// use ebb_retry::Retry;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let handle = Retry::new([60_000])?.spawn(|_| std::future::pending::<Result<(), std::fmt::Error>>());
    /// handle.abort();
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// # Ok(())
    /// # }
    /// ```
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the run has ended (awaiting the handle will not wait).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T, E> Future for RetryHandle<T, E> {
    type Output = Result<Result<T, RetryError<E>>, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task).poll(cx)
    }
}

/// A run on its own thread, from [`Retry::spawn_blocking`] or
/// [`Background::spawn_blocking`].
///
/// ```
/// use ebb_retry::Retry;
/// use std::time::{Duration, Instant};
///
/// let handle = Retry::new([3_600_000])?.spawn_blocking(|_| Err::<(), _>(std::fmt::Error));
/// std::thread::sleep(Duration::from_millis(10));
/// let asked = Instant::now();
/// handle.cancel(); // wakes the thread from its hour-long wait
/// let err = handle.join().expect("no panic").unwrap_err();
/// assert!(err.is_cancelled());
/// assert!(asked.elapsed() < Duration::from_secs(60));
/// # Ok::<(), ebb_retry::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct BlockingRetryHandle<T, E> {
    /// The thread running the retries.
    thread: thread::JoinHandle<Result<T, RetryError<E>>>,
    /// Cancels this run's waits; a child of the policy's token.
    cancel: CancellationToken,
}

impl<T, E> BlockingRetryHandle<T, E> {
    /// End the run at its next wait: a wait in progress ends at once (the
    /// thread is woken) and the run returns its last error
    /// ([`StopReason::Cancelled`](crate::StopReason::Cancelled)); an
    /// attempt in progress is left to finish, and is the last one.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the run has ended (joining will not block).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the run to end and take its result; `Err` with the panic
    /// if the operation panicked.
    ///
    /// # Errors
    /// The panic's payload, as [`std::thread::JoinHandle::join`] gives it.
    pub fn join(self) -> thread::Result<Result<T, RetryError<E>>> {
        self.thread.join()
    }
}
