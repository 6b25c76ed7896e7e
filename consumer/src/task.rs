//! Tasks a host runs beside its consumers, as the Go library longrun has
//! them: one-shot tasks and interval tasks, each with the `Retry` policy
//! for the errors it expects.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ebb_handler::BoxError;
use ebb_retry::{Retry, RetryError};
use futures_util::future::BoxFuture;

use crate::Control;

/// When a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Once, when the host starts.
    Once,
    /// When the host starts and then every period after each run ends,
    /// until the host stops.
    Every(Duration),
}

/// The task's work: boxed, because a host holds tasks of many types.
type Work = Box<dyn FnMut() -> BoxFuture<'static, Result<(), BoxError>> + Send>;

/// A named piece of work a [`Host`](crate::Host) runs.
///
/// Its error, once its retry policy (or the host's default) is spent, or
/// a panic in it, stops the whole host: the process exits non-zero and
/// its supervisor restarts it.
///
/// ```
/// use std::time::Duration;
/// use ebb_consumer::Task;
/// use ebb_retry::Retry;
///
/// let report = Task::every("report", Duration::from_secs(60), || async {
///     tracing::info!("still here");
///     Ok(())
/// })
/// .retry(Retry::new_ms([100, 1_000]));
/// # let _ = report;
/// ```
pub struct Task {
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    /// `None`: the host's default.
    pub(crate) retry: Option<Retry>,
    work: Work,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Task {
    /// A task that runs `work` once.
    pub fn once<F, Fut>(name: impl Into<String>, work: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        Self::new(name.into(), Schedule::Once, work)
    }

    /// A task that runs `work` at once and then `period` after each run
    /// ends.
    pub fn every<F, Fut>(name: impl Into<String>, period: Duration, work: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        Self::new(name.into(), Schedule::Every(period), work)
    }

    fn new<F, Fut>(name: String, schedule: Schedule, mut work: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        Self {
            name,
            schedule,
            retry: None,
            work: Box::new(move || Box::pin(work())),
        }
    }

    /// Retries the task's work with `retry` (instead of the host's
    /// default policy).
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Runs the task until it is done, the host stops, or its error
    /// outlasts `retry`.
    pub(crate) async fn run(mut self, retry: Retry, control: Control) -> Result<(), BoxError> {
        loop {
            if control.is_stopping() {
                return Ok(());
            }
            let work = &mut self.work;
            retry
                .run_boxed(|_| work())
                .await
                .map_err(RetryError::into_last)?;
            let Schedule::Every(period) = self.schedule else {
                return Ok(());
            };
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = control.stopped() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_interval_task_runs_every_period_until_the_host_stops() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let task = Task::every("tick", Duration::from_secs(10), move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        });
        let control = Control::new();
        let running = tokio::spawn(task.run(Retry::new([]).unwrap(), control.clone()));
        // Paused time: 35 s of the 10 s period under test.
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(runs.load(Ordering::Relaxed), 4, "at 0, 10, 20 and 30 s");
        control.stop();
        running.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_task_is_retried_by_its_policy_then_fails() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let task = Task::once("flaky", move || {
            let run = counted.fetch_add(1, Ordering::Relaxed);
            async move {
                if run < 1 {
                    Err(BoxError::from("not yet"))
                } else {
                    Ok(())
                }
            }
        });
        task.run(Retry::new([100]).unwrap(), Control::new())
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 2);

        let always = Task::once("broken", || async { Err(BoxError::from("broken")) })
            .retry(Retry::new([100, 100]).unwrap());
        let retry = always.retry.clone().unwrap();
        let err = always.run(retry, Control::new()).await.unwrap_err();
        assert_eq!(err.to_string(), "broken");
    }
}
