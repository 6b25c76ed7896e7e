//! The shared refreshers behind the live pages: one per query, however
//! many pages show its figures.
//!
//! A [`Refresher`] runs its query in a task of its own, publishes each
//! result in a `tokio::sync::watch` channel, and waits out its interval
//! before the next run. The task runs only while someone holds a
//! receiver (an open live page's event stream, or a page being rendered);
//! when the last one is gone it ends after its current wait, and the next
//! subscriber starts it again, no sooner than an interval after its last
//! run. So a query runs at most once per interval (at least one second,
//! [`MIN_REFRESH`](crate::MIN_REFRESH)), whether one page is open or a
//! hundred, and not at all when none is.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

/// One result of a refresher's query, and when it was read.
#[derive(Debug)]
pub(crate) struct Snapshot<T> {
    /// When the query started, as shown.
    pub(crate) taken_at: DateTime<Utc>,
    /// When the query started, as measured (tokio's clock, which tests
    /// can pause).
    taken: Instant,
    /// The result, or the error said in one line.
    pub(crate) value: Result<T, String>,
}

/// What a refresher runs: boxed, as each refresher's query is a
/// different future type and they are kept side by side.
pub(crate) type Fetch<T> =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, String>> + Send>> + Send + Sync>;

/// The latest snapshot, if any, as subscribers see it.
pub(crate) type Latest<T> = Option<Arc<Snapshot<T>>>;

/// A query run again every interval while anyone watches its results.
pub(crate) struct Refresher<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Refresher<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> std::fmt::Debug for Refresher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("name", &self.inner.name)
            .field("interval", &self.inner.interval)
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    /// For the log: what is refreshed.
    name: String,
    interval: Duration,
    fetch: Fetch<T>,
    /// Holds the latest snapshot; its receivers are the watchers the task
    /// runs for.
    sender: watch::Sender<Latest<T>>,
    /// Whether the task runs, and when the query last started: both
    /// changed under this one lock, so a subscriber and a task that is
    /// ending cannot miss each other.
    task: Mutex<TaskState>,
}

#[derive(Debug, Default)]
struct TaskState {
    running: bool,
    last_started: Option<Instant>,
}

impl<T: Send + Sync + 'static> Refresher<T> {
    pub(crate) fn new(name: impl Into<String>, interval: Duration, fetch: Fetch<T>) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                interval,
                fetch,
                sender: watch::channel(None).0,
                task: Mutex::new(TaskState::default()),
            }),
        }
    }

    /// A receiver of the snapshots, the latest first; the task runs while
    /// it is held.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Latest<T>> {
        let receiver = self.inner.sender.subscribe();
        let mut task = lock(&self.inner.task);
        if !task.running {
            task.running = true;
            tokio::spawn(run(Arc::clone(&self.inner)));
        }
        receiver
    }

    /// The snapshot for a page being rendered: the latest when it was
    /// taken within two intervals, else the next one, waited for up to
    /// `wait` (None when there is none by then).
    pub(crate) async fn current(&self, wait: Duration) -> Latest<T> {
        let mut receiver = self.subscribe();
        let latest = receiver.borrow_and_update().clone();
        if latest
            .as_ref()
            .is_some_and(|snapshot| snapshot.taken.elapsed() <= self.inner.interval * 2)
        {
            return latest;
        }
        match tokio::time::timeout(wait, receiver.changed()).await {
            Ok(Ok(())) => receiver.borrow().clone(),
            _ => latest,
        }
    }

    /// Whether anyone watches (the task then runs, or is about to end).
    pub(crate) fn is_watched(&self) -> bool {
        self.inner.sender.receiver_count() > 0 || lock(&self.inner.task).running
    }
}

fn lock(task: &Mutex<TaskState>) -> std::sync::MutexGuard<'_, TaskState> {
    // The state stays consistent if a holder panicked: two plain fields.
    task.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The refresher's task: the query, then a wait, for as long as anyone
/// watches.
async fn run<T: Send + Sync + 'static>(inner: Arc<Inner<T>>) {
    loop {
        let next_slot = lock(&inner.task)
            .last_started
            .map(|last| last + inner.interval);
        if let Some(slot) = next_slot {
            tokio::time::sleep_until(slot).await;
        }
        {
            let mut task = lock(&inner.task);
            if inner.sender.receiver_count() == 0 {
                task.running = false;
                return;
            }
            task.last_started = Some(Instant::now());
        }
        let (taken_at, taken) = (Utc::now(), Instant::now());
        let value = (inner.fetch)().await;
        if let Err(error) = &value {
            tracing::warn!(query = %inner.name, %error, "dashboard: a refresh failed");
        }
        inner.sender.send_replace(Some(Arc::new(Snapshot {
            taken_at,
            taken,
            value,
        })));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counting(interval: Duration) -> (Refresher<usize>, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let fetch: Fetch<usize> = Box::new(move || {
            let counter = Arc::clone(&counter);
            Box::pin(async move { Ok(counter.fetch_add(1, Ordering::SeqCst) + 1) })
        });
        (Refresher::new("test", interval, fetch), runs)
    }

    #[tokio::test(start_paused = true)]
    async fn many_watchers_share_one_query_per_interval() {
        let (refresher, runs) = counting(Duration::from_secs(1));
        let mut watchers: Vec<_> = (0..50).map(|_| refresher.subscribe()).collect();
        for watcher in &mut watchers {
            watcher.changed().await.unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(9_500)).await;
        // At 0 s, 1 s, ..., 9 s: ten runs in 9.5 s, for fifty watchers.
        assert_eq!(runs.load(Ordering::SeqCst), 10);
        let latest = watchers[0].borrow().clone().unwrap();
        assert_eq!(latest.value, Ok(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_query_stops_without_watchers_and_resumes_no_sooner_than_its_interval() {
        let (refresher, runs) = counting(Duration::from_secs(1));
        let mut watcher = refresher.subscribe();
        watcher.changed().await.unwrap();
        drop(watcher);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "no run without a watcher");
        assert!(!refresher.is_watched());
        // A page render gets the stale snapshot replaced by a new one.
        let snapshot = refresher
            .current(Duration::from_secs(5))
            .await
            .expect("a snapshot");
        assert_eq!(snapshot.value, Ok(2));
        // Re-subscribing at once waits for the interval's slot.
        let started = Instant::now();
        let mut watcher = refresher.subscribe();
        watcher.changed().await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(999),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
