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
//! - A host that ends with an error always says so: as an `error` event
//!   (`component stopped by an error`, the error's causes in the field
//!   `error`), and, when no tracing subscriber takes that event (none is
//!   installed, or its filter drops it), as one line on stderr,
//!   `error: ` and the error's causes joined by `": "`. A component
//!   without a log subscriber does not end in silence.
//! - With `Host::metrics_endpoint` (feature `prometheus`), the consumers' metrics
//!   (the [metrics](crate#metrics)) are served as Prometheus text while it runs.
//! - Under systemd (`NOTIFY_SOCKET` set): `READY=1` once every consumer
//!   has read its position, `STOPPING=1` when shutting down, and a
//!   `WATCHDOG=1` ping every half `WATCHDOG_USEC` while running.
//!
//! # Which runtime
//!
//! A consumer handles one message at a time, so a component gains little
//! from tokio's multi-thread runtime and pays for it in hand-offs between
//! threads: every read, reply and wake-up may cross to the other worker.
//! ebb therefore recommends `#[tokio::main(flavor = "current_thread")]`
//! for a component, as below (the consumer benchmark in `BENCHMARKS.md`
//! compares the two); the host and the consumer work on either.
//!
//! # Features
//!
//! - `systemd` (Linux): the readiness protocol above. Without it, or on
//!   another system, the host tells no service manager anything.
//! - `prometheus`: `Host::metrics_endpoint`.

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Duration;

use ebb_handler::BoxError;
use ebb_message_store::MessageStore;
use ebb_retry::{Chain, Retry};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Level;

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
    #[cfg(feature = "prometheus")]
    metrics: Option<std::net::SocketAddr>,
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
            default_retry: Retry::new_ms([]),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            control: Control::new(),
            #[cfg(feature = "prometheus")]
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

    /// Serves the consumers' metrics (the [metrics](crate#metrics)) as Prometheus
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
    ///
    /// Feature `prometheus`.
    #[cfg(feature = "prometheus")]
    #[must_use]
    pub fn metrics_endpoint(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }

    /// The control the host stops, pauses and resumes its consumers with;
    /// a clone stops the host as a signal would.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// [`run`](Self::run), then the exit code a supervisor expects: 0 after
    /// a stop by signal, 1 after an error, which `run` has reported with
    /// its causes.
    pub async fn run_to_exit(self) -> ExitCode {
        match self.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        }
    }

    /// Runs every consumer and task until a signal stops the host or one
    /// of them fails; see the module documentation. Must run on a tokio
    /// runtime with the time and I/O drivers enabled.
    ///
    /// # Errors
    /// The first error of a consumer or task (or its panic), or
    /// [`Error::Metrics`] if the metrics endpoint could not start. Before
    /// returning it, `run` reports it: an `error` event, and a line on
    /// stderr when no subscriber takes that event (see the module
    /// documentation), so the caller need not log it again.
    pub async fn run(self) -> Result<(), Error> {
        let ended = self.run_until_stopped().await;
        if let Err(err) = &ended {
            report_end(err);
        }
        ended
    }

    /// [`run`](Self::run), but for reporting its error.
    async fn run_until_stopped(self) -> Result<(), Error> {
        // Before the consumers start: they register their metrics with
        // the recorder installed when they first run.
        #[cfg(feature = "prometheus")]
        let exporter = match self.metrics {
            Some(addr) => Some(serve_metrics(addr)?),
            None => None,
        };
        let control = self.control;
        let mut service = ServiceManager::connect(&control);
        let signals = tokio::spawn(handle_signals(control.clone()));
        let mut running = Running::start(self.consumers, self.tasks, &self.default_retry, &control);
        let first_error = running.until_stopping(&control, &service).await;
        // Stopping: the components finish what they are doing, bounded.
        service.stopping();
        tracing::info!("stopping");
        let first_error = running.finish(self.stop_timeout, first_error).await;
        service.stop_watchdog();
        run_hooks(self.hooks).await;
        signals.abort();
        #[cfg(feature = "prometheus")]
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

/// Says that the host ended with `err`, as `error` event and, when no
/// subscriber takes that event, on stderr: a component must not end in
/// silence because its `main` installed no subscriber.
fn report_end(err: &Error) {
    let logged = tracing::enabled!(Level::ERROR);
    tracing::error!(error = %Chain::new(err), "component stopped by an error");
    if let Some(line) = stderr_line(err, logged) {
        // Not `eprintln!`, which panics when stderr is closed: the
        // process is on its way out with an error already.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// The line [`report_end`] writes to stderr for `err`, if any: none when
/// a subscriber took the `error` event (`logged`), else `error: ` and the
/// error's causes on one line.
fn stderr_line(err: &Error, logged: bool) -> Option<String> {
    (!logged).then(|| format!("error: {}", Chain::new(err)))
}

/// The consumers and tasks of a running host.
struct Running {
    /// Every consumer and task, each under its name.
    components: JoinSet<(String, Result<(), BoxError>)>,
    /// Each consumer says here when it has started.
    starts: mpsc::UnboundedReceiver<()>,
    /// How many consumers have not said so yet.
    unstarted: usize,
}

impl Running {
    /// Spawns every consumer and task; a task without a retry policy of
    /// its own gets `default_retry`.
    fn start(
        consumers: Vec<(String, Start)>,
        tasks: Vec<Task>,
        default_retry: &Retry,
        control: &Control,
    ) -> Self {
        let mut components = JoinSet::new();
        let (started, starts) = mpsc::unbounded_channel();
        let unstarted = consumers.len();
        for (name, start) in consumers {
            let future = start(control.clone(), started.clone());
            let run = async move { future.await.map_err(BoxError::from) };
            components.spawn(named(name, run));
        }
        for task in tasks {
            let retry = task.retry.clone().unwrap_or_else(|| default_retry.clone());
            let name = task.name.clone();
            components.spawn(named(name, task.run(retry, control.clone())));
        }
        Self {
            components,
            starts,
            unstarted,
        }
    }

    /// Until the host stops (a signal, through `control`) or a component
    /// fails (which stops the others, and is returned); tells the service
    /// manager when every consumer has started.
    async fn until_stopping(
        &mut self,
        control: &Control,
        service: &ServiceManager,
    ) -> Option<Error> {
        let mut ready = self.unstarted == 0;
        if ready {
            service.ready();
        }
        while !control.is_stopping() {
            tokio::select! {
                started = self.starts.recv(), if !ready => {
                    self.unstarted = self.unstarted.saturating_sub(1);
                    if started.is_none() || self.unstarted == 0 {
                        ready = true;
                        tracing::info!("every consumer has started");
                        service.ready();
                    }
                }
                () = control.stopped() => {}
                finished = self.components.join_next() => {
                    let finished = finished?;
                    if let Some(failure) = failure_of(finished) {
                        tracing::error!(error = %Chain::new(&failure), "stopping: a component failed");
                        control.stop();
                        return Some(failure);
                    }
                }
            }
        }
        None
    }

    /// Waits, up to `timeout`, for every component to finish; past it the
    /// rest are abandoned. The first error, `first_error` or one met here.
    async fn finish(&mut self, timeout: Duration, mut first_error: Option<Error>) -> Option<Error> {
        let finishing = async {
            while let Some(finished) = self.components.join_next().await {
                if let Some(failure) = failure_of(finished) {
                    tracing::error!(error = %Chain::new(&failure), "a component failed while stopping");
                    first_error.get_or_insert(failure);
                }
            }
        };
        if tokio::time::timeout(timeout, finishing).await.is_err() {
            tracing::warn!(
                stop_timeout = ?timeout,
                "components still running after the stop timeout; abandoned"
            );
            self.components.abort_all();
        }
        first_error
    }
}

/// Runs the shutdown hooks, the last registered first, each within its
/// timeout; a failure is logged and the others still run.
async fn run_hooks(mut hooks: Vec<(String, Duration, Hook)>) {
    while let Some((name, timeout, hook)) = hooks.pop() {
        match tokio::time::timeout(timeout, hook()).await {
            Ok(Ok(())) => tracing::debug!(hook = %name, "shutdown hook ran"),
            Ok(Err(err)) => {
                tracing::warn!(hook = %name, error = %Chain::new(&*err), "shutdown hook failed");
            }
            Err(_) => tracing::warn!(hook = %name, ?timeout, "shutdown hook timed out"),
        }
    }
}

/// What the host tells the service manager: systemd's readiness protocol
/// (feature `systemd`, on Linux, and only when `NOTIFY_SOCKET` is set),
/// else nothing.
#[derive(Default)]
struct ServiceManager {
    #[cfg(all(feature = "systemd", target_os = "linux"))]
    notifier: Option<crate::systemd::Notifier>,
    /// Pings the watchdog while the host runs, when the unit asks for it.
    #[cfg(all(feature = "systemd", target_os = "linux"))]
    watchdog: Option<tokio::task::JoinHandle<Result<(), Error>>>,
}

impl ServiceManager {
    /// Reads systemd's variables and starts the watchdog's pings, which
    /// end when `control` stops the host. Unusable variables are logged,
    /// and nothing is sent.
    #[cfg(all(feature = "systemd", target_os = "linux"))]
    fn connect(control: &Control) -> Self {
        use crate::systemd::{Notifier, run_watchdog, watchdog_interval};
        let notifier = Notifier::from_env().unwrap_or_else(|err| {
            tracing::warn!(error = %Chain::new(&err), "NOTIFY_SOCKET is unusable; not notifying systemd");
            None
        });
        let watchdog = notifier.as_ref().and_then(|notifier| {
            let period = watchdog_interval().ok().flatten()?;
            let control = control.clone();
            let stopped = async move { control.stopped().await };
            Some(tokio::spawn(run_watchdog(
                notifier.clone(),
                period,
                stopped,
            )))
        });
        Self { notifier, watchdog }
    }

    #[cfg(not(all(feature = "systemd", target_os = "linux")))]
    fn connect(_control: &Control) -> Self {
        Self::default()
    }

    /// `READY=1`: every consumer has started.
    fn ready(&self) {
        #[cfg(all(feature = "systemd", target_os = "linux"))]
        self.tell(crate::systemd::Notifier::ready);
    }

    /// `STOPPING=1`: shutdown begins.
    fn stopping(&self) {
        #[cfg(all(feature = "systemd", target_os = "linux"))]
        self.tell(crate::systemd::Notifier::stopping);
    }

    /// Stops the watchdog's pings, once the components are done.
    fn stop_watchdog(&mut self) {
        #[cfg(all(feature = "systemd", target_os = "linux"))]
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.abort();
        }
    }

    /// Tells systemd, if it listens; a failure is logged, never fatal.
    #[cfg(all(feature = "systemd", target_os = "linux"))]
    fn tell(&self, what: fn(&crate::systemd::Notifier) -> Result<(), Error>) {
        if let Some(notifier) = &self.notifier {
            if let Err(err) = what(notifier) {
                tracing::warn!(error = %Chain::new(&err), "could not notify systemd");
            }
        }
    }
}

/// Installs the Prometheus recorder and serves it at `addr`, with its
/// upkeep (which drains the histograms' samples, so that they do not
/// pile up between scrapes); the task ends when aborted.
#[cfg(feature = "prometheus")]
fn serve_metrics(addr: std::net::SocketAddr) -> Result<tokio::task::JoinHandle<()>, Error> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let failed = |source: BoxError| Error::Metrics { addr, source };
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            crate::metrics::SECONDS_BUCKETS,
        )
        .and_then(PrometheusBuilder::build)
        .map_err(|err| failed(err.into()))?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| failed(RecorderInstalled.into()))?;
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

/// The process has a metrics recorder already: there can be one only.
#[cfg(feature = "prometheus")]
#[derive(Debug, thiserror::Error)]
#[error("the process has a metrics recorder already")]
struct RecorderInstalled;

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

/// Turns SIGTERM and SIGINT into a stop, SIGTSTP into a pause and SIGCONT
/// into a resume, for as long as the host runs.
async fn handle_signals(control: Control) {
    let kinds = [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::from_raw(libc::SIGTSTP),
        SignalKind::from_raw(libc::SIGCONT),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stderr_line_is_the_chain_on_one_line_and_only_when_nothing_logged_it() {
        let err = Error::Task {
            name: "boom".into(),
            error: "disk on fire".into(),
        };
        assert_eq!(
            stderr_line(&err, false).as_deref(),
            Some("error: task boom failed: disk on fire")
        );
        assert_eq!(stderr_line(&err, true), None);
    }
}
