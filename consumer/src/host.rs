//! The component [`Host`]: runs consumers and tasks in one process, and
//! gives them the process model of a component under a supervisor.
//!
//! - SIGTERM or SIGINT: every consumer finishes the message in hand and
//!   records its position, interval tasks stop waiting, the shutdown hooks
//!   run (in reverse order of registration, each within its timeout), and
//!   [`Host::run`] returns `Ok`: the process exits 0.
//! - SIGTSTP pauses every consumer after the message in hand (the process
//!   keeps running); SIGCONT resumes them.
//! - Any consumer's or task's error, or a panic in one, stops all of them
//!   the same way, and `run` returns the error: the process exits
//!   non-zero with it logged, and the supervisor (systemd
//!   `Restart=on-failure`) starts it again.
//! - With [`Host::metrics_endpoint`], the consumers' metrics
//!   ([`crate::metrics`]) are served as Prometheus text while it runs.
//! - Under systemd (`NOTIFY_SOCKET` set): `READY=1` once every consumer
//!   has read its position, `STOPPING=1` when shutting down, and a
//!   `WATCHDOG=1` ping every half `WATCHDOG_USEC` while running.
//!
//! # Which runtime
//!
//! A consumer handles one message at a time, so a component gains little
//! from tokio's multi-thread runtime and pays for it in hand-offs between
//! threads: every read, reply and wake-up may cross to the other worker.
//! On a 2-vCPU machine the consumer benchmark (`BENCHMARKS.md`) measured
//! the same consumer at about 0.98× `pgbench`'s read rate on the
//! current-thread runtime and about 0.73× on the multi-thread one, with
//! half again as much CPU spent in the process. ebb therefore recommends
//! `#[tokio::main(flavor = "current_thread")]` for a component, as below;
//! the host and the consumer work on either.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Duration;

use ebb_handler::BoxError;
use ebb_message_store::MessageStore;
use ebb_retry::Retry;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::consumer::Chain;
use crate::systemd::{self, Notifier};
use crate::{Consumer, Control, Error, Task};

/// How long a host waits for its consumers and tasks to finish once it
/// stops, unless told otherwise.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a shutdown hook may take unless told otherwise.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A consumer, its type erased so that a host holds consumers of many
/// stores and error types. Boxed, for the same reason.
type Start = Box<
    dyn FnOnce(Control, mpsc::UnboundedSender<()>) -> BoxFuture<'static, Result<(), Error>> + Send,
>;

/// A shutdown hook's work. Boxed, as above.
type Hook = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), BoxError>> + Send>;

/// Runs consumers and tasks in one process; see the module documentation.
///
/// ```no_run
/// use std::process::ExitCode;
/// use ebb_consumer::{Consumer, ConsumerConfig, Host, Task};
/// use ebb_handler::{BoxError, Dispatcher, Received, message};
/// use ebb_message_store::PgStore;
///
/// #[message]
/// struct Deposit { account_id: String, amount: i64 }
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> ExitCode {
///     let store = match PgStore::from_env() { // DATABASE_URL or PG*
///         Ok(store) => store,
///         Err(err) => { eprintln!("{err}"); return ExitCode::FAILURE; }
///     };
///     let handlers = Dispatcher::new().on(|deposit: Received<Deposit>| async move {
///         tracing::info!(amount = deposit.amount, "deposit");
///         Ok::<_, BoxError>(())
///     });
///     let consumer = Consumer::new(ConsumerConfig::new("account:command"), store)
///         .expect("valid settings")
///         .handler(handlers);
///     Host::new()
///         .consumer(consumer)
///         .on_shutdown("flush metrics", || async { Ok(()) })
///         .run_to_exit()
///         .await
/// }
/// ```
pub struct Host {
    consumers: Vec<(String, Start)>,
    tasks: Vec<Task>,
    /// In the order registered; run in reverse.
    hooks: Vec<(String, Duration, Hook)>,
    default_retry: Retry,
    stop_timeout: Duration,
    control: Control,
    /// Where to serve Prometheus metrics, if anywhere.
    metrics: Option<SocketAddr>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field(
                "consumers",
                &self
                    .consumers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("tasks", &self.tasks)
            .field(
                "shutdown_hooks",
                &self.hooks.iter().map(|(name, ..)| name).collect::<Vec<_>>(),
            )
            .field("stop_timeout", &self.stop_timeout)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    /// A host with nothing to run yet. Tasks that set no retry policy
    /// are not retried (see [`default_retry`](Self::default_retry)).
    pub fn new() -> Self {
        Self {
            consumers: Vec::new(),
            tasks: Vec::new(),
            hooks: Vec::new(),
            default_retry: Retry::new([]).expect("no intervals is a valid policy"),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            control: Control::new(),
            metrics: None,
        }
    }

    /// Runs `consumer`.
    #[must_use]
    pub fn consumer<S, E>(mut self, consumer: Consumer<S, E>) -> Self
    where
        S: MessageStore + Clone + Send + Sync + 'static,
        E: Into<BoxError> + From<ebb_handler::Error> + Send + 'static,
    {
        let name = consumer.config().category.clone();
        let start: Start = Box::new(move |control, started| {
            Box::pin(async move {
                consumer
                    .run_with(&control, move || {
                        let _ = started.send(());
                    })
                    .await
            })
        });
        self.consumers.push((name, start));
        self
    }

    /// Runs `task`.
    #[must_use]
    pub fn task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }

    /// The retry policy of every task that sets none. Default: none (an
    /// error stops the host at once).
    #[must_use]
    pub fn default_retry(mut self, retry: Retry) -> Self {
        self.default_retry = retry;
        self
    }

    /// How long the host waits, once stopping, for its consumers to finish
    /// the message in hand and its tasks their run; past it they are
    /// abandoned. Default: [`DEFAULT_STOP_TIMEOUT`] (30 s).
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Runs `hook` when the host stops, after its consumers and tasks,
    /// within [`DEFAULT_HOOK_TIMEOUT`]. Hooks run in reverse order of
    /// registration; a hook's failure is logged and the others still run.
    #[must_use]
    pub fn on_shutdown<F, Fut>(self, name: impl Into<String>, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.on_shutdown_within(name, DEFAULT_HOOK_TIMEOUT, hook)
    }

    /// Like [`on_shutdown`](Self::on_shutdown), within `timeout`.
    #[must_use]
    pub fn on_shutdown_within<F, Fut>(
        mut self,
        name: impl Into<String>,
        timeout: Duration,
        hook: F,
    ) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.hooks
            .push((name.into(), timeout, Box::new(move || Box::pin(hook()))));
        self
    }

    /// Serves the consumers' metrics ([`crate::metrics`]) as Prometheus
    /// text at `http://ADDR/metrics` while the host runs, with
    /// [`metrics-exporter-prometheus`](metrics_exporter_prometheus)
    /// installed as the process's recorder. Default: no endpoint (and no
    /// recorder: measuring costs nothing). [`run`](Self::run) fails with
    /// [`Error::Metrics`] if the address cannot be bound or the process has
    /// a recorder already. The endpoint answers anyone who can reach the
    /// address: bind it to loopback or to a private interface.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), ebb_consumer::Error> {
    /// ebb_consumer::Host::new()
    ///     .metrics_endpoint(([127, 0, 0, 1], 9187).into())
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn metrics_endpoint(mut self, addr: SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }

    /// The control the host stops, pauses and resumes its consumers with;
    /// a clone stops the host as a signal would.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// [`run`](Self::run), then the exit code a supervisor expects: 0 after
    /// a stop by signal, 1 after an error, which is logged with its causes.
    pub async fn run_to_exit(self) -> ExitCode {
        match self.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %Chain(&err), "component stopped by an error");
                ExitCode::FAILURE
            }
        }
    }

    /// Runs every consumer and task until a signal stops the host or one
    /// of them fails; see the module documentation. Must run on a tokio
    /// runtime with the time and I/O drivers enabled.
    pub async fn run(self) -> Result<(), Error> {
        let Self {
            consumers,
            tasks,
            mut hooks,
            default_retry,
            stop_timeout,
            control,
            metrics,
        } = self;
        // Before the consumers start: they register their metrics with
        // the recorder installed when they first run.
        let exporter = match metrics {
            Some(addr) => Some(serve_metrics(addr)?),
            None => None,
        };
        let notifier = Notifier::from_env().unwrap_or_else(|err| {
            tracing::warn!(error = %err, "NOTIFY_SOCKET is unusable; not notifying systemd");
            None
        });
        let signals = tokio::spawn(handle_signals(control.clone()));

        let mut running = JoinSet::new();
        let (started, mut starts) = mpsc::unbounded_channel();
        let expected_starts = consumers.len();
        for (name, start) in consumers {
            let future = start(control.clone(), started.clone());
            running.spawn(named(
                name,
                async move { future.await.map_err(BoxError::from) },
            ));
        }
        drop(started);
        for task in tasks {
            let retry = task.retry.clone().unwrap_or_else(|| default_retry.clone());
            let name = task.name.clone();
            running.spawn(named(name, task.run(retry, control.clone())));
        }

        let mut first_error: Option<Error> = None;
        let mut ready = expected_starts == 0;
        let watchdog = notifier.as_ref().and_then(|notifier| {
            let period = systemd::watchdog_interval().ok().flatten()?;
            Some(tokio::spawn(systemd::run_watchdog(
                notifier.clone(),
                period,
                {
                    let control = control.clone();
                    async move { control.stopped().await }
                },
            )))
        });
        let mut starts_seen = 0;
        if ready {
            notify(notifier.as_ref(), Notifier::ready);
        }
        // Until every component is done: stop all on a signal (Control)
        // or on the first failure.
        loop {
            tokio::select! {
                started = starts.recv(), if !ready => {
                    if started.is_some() {
                        starts_seen += 1;
                    }
                    if started.is_none() || starts_seen == expected_starts {
                        ready = true;
                        tracing::info!("every consumer has started");
                        notify(notifier.as_ref(), Notifier::ready);
                    }
                }
                () = control.stopped(), if first_error.is_none() && !stopping_noticed(&control) => {}
                finished = running.join_next() => {
                    let Some(finished) = finished else { break };
                    if let Some(failure) = failure_of(finished) {
                        if first_error.is_none() {
                            tracing::error!(error = %Chain(&failure), "stopping: a component failed");
                            first_error = Some(failure);
                            control.stop();
                        }
                    }
                }
            }
            if control.is_stopping() {
                break;
            }
        }

        // Stopping: the components finish what they are doing, bounded.
        notify(notifier.as_ref(), Notifier::stopping);
        tracing::info!("stopping");
        let finishing = async {
            while let Some(finished) = running.join_next().await {
                if let Some(failure) = failure_of(finished) {
                    tracing::error!(error = %Chain(&failure), "a component failed while stopping");
                    first_error.get_or_insert(failure);
                }
            }
        };
        if tokio::time::timeout(stop_timeout, finishing).await.is_err() {
            tracing::warn!(
                ?stop_timeout,
                "components still running after the stop timeout; abandoned"
            );
            running.abort_all();
        }
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }

        while let Some((name, timeout, hook)) = hooks.pop() {
            match tokio::time::timeout(timeout, hook()).await {
                Ok(Ok(())) => tracing::debug!(hook = %name, "shutdown hook ran"),
                Ok(Err(err)) => {
                    tracing::warn!(hook = %name, error = %Chain(&*err), "shutdown hook failed");
                }
                Err(_) => tracing::warn!(hook = %name, ?timeout, "shutdown hook timed out"),
            }
        }
        signals.abort();
        if let Some(exporter) = exporter {
            exporter.abort();
        }
        match first_error {
            Some(err) => Err(err),
            None => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    }
}

/// Installs the Prometheus recorder and serves it at `addr`, with its
/// upkeep (which drains the histograms' samples, so that they do not
/// pile up between scrapes); the task ends when aborted.
fn serve_metrics(addr: SocketAddr) -> Result<tokio::task::JoinHandle<()>, Error> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            crate::metrics::SECONDS_BUCKETS,
        )
        .and_then(PrometheusBuilder::build)
        .map_err(|err| Error::Metrics(format!("{addr}: {err}")))?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| Error::Metrics("a metrics recorder is installed already".into()))?;
    tracing::info!(%addr, "serving metrics at /metrics");
    Ok(tokio::spawn(async move {
        let upkeep = async {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        };
        tokio::select! {
            served = exporter => {
                if let Err(err) = served {
                    tracing::error!(error = ?err, "the metrics endpoint failed");
                }
            }
            () = upkeep => {}
        }
    }))
}

/// True once the host is stopping (the select arm for `stopped` is then
/// disabled, so that the loop does not spin on a completed future).
fn stopping_noticed(control: &Control) -> bool {
    control.is_stopping()
}

/// `work` under its name, with a panic in it turned into its error, so
/// that the log says which component panicked.
async fn named(
    name: String,
    work: impl Future<Output = Result<(), BoxError>>,
) -> (String, Result<(), BoxError>) {
    let result = AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(panic_message(&*panic).into()));
    (name, result)
}

/// What a finished consumer or task failed with, if it failed: its own
/// error (a consumer's is this crate's already), or its panic.
fn failure_of(
    finished: Result<(String, Result<(), BoxError>), tokio::task::JoinError>,
) -> Option<Error> {
    match finished {
        Ok((_, Ok(()))) => None,
        Ok((name, Err(error))) => Some(match error.downcast::<Error>() {
            Ok(error) => *error,
            Err(error) => Error::Task { name, error },
        }),
        // A panic is caught in `named`; only the host aborts a
        // component, past the stop timeout.
        Err(_) => None,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        format!("panicked: {text}")
    } else if let Some(text) = panic.downcast_ref::<String>() {
        format!("panicked: {text}")
    } else {
        "panicked".to_owned()
    }
}

/// Tells systemd, if it listens; a failure is logged, never fatal.
fn notify(notifier: Option<&Notifier>, tell: fn(&Notifier) -> Result<(), systemd::NotifyError>) {
    if let Some(notifier) = notifier {
        if let Err(err) = tell(notifier) {
            tracing::warn!(error = %err, "could not notify systemd");
        }
    }
}

/// Turns SIGTERM and SIGINT into a stop, SIGTSTP into a pause and SIGCONT
/// into a resume, for as long as the host runs.
async fn handle_signals(control: Control) {
    let kinds = [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::from_raw(TSTP),
        SignalKind::from_raw(CONT),
    ];
    let mut streams = Vec::new();
    for kind in kinds {
        match signal(kind) {
            Ok(stream) => streams.push(stream),
            Err(err) => {
                tracing::warn!(error = %err, "cannot handle a signal; it keeps its default action");
                return;
            }
        }
    }
    let [terminate, interrupt, stop, cont] = &mut streams[..] else {
        return;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); control.stop(); }
            _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); control.stop(); }
            _ = stop.recv() => { tracing::info!("SIGTSTP: pausing"); control.pause(); }
            _ = cont.recv() => { tracing::info!("SIGCONT: resuming"); control.resume(); }
        }
    }
}

/// SIGTSTP and SIGCONT on Linux (tokio names only the common signals).
const TSTP: i32 = 20;
const CONT: i32 = 18;
