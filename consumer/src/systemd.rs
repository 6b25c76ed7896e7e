//! systemd's readiness protocol (`sd_notify`), for a component host that
//! runs as a `Type=notify` service.
//!
//! Under `Type=notify`, systemd holds back the units ordered after the
//! service, and reports it as started, only once the service says `READY=1`.
//! The service manager passes the address of a datagram socket in
//! `NOTIFY_SOCKET`, either a filesystem path or, after an `@`, a name in
//! Linux's abstract socket namespace. Each datagram holds newline-separated
//! `VARIABLE=value` assignments: `READY=1` once start-up is done,
//! `STOPPING=1` when shutdown begins, `STATUS=…` for the line that
//! `systemctl status` shows, and `WATCHDOG=1` to keep the watchdog from
//! killing the service. When the unit sets `WatchdogSec=`, the service
//! manager passes the timeout in microseconds in `WATCHDOG_USEC` (and the
//! process it is meant for in `WATCHDOG_PID`); the service should ping at
//! half that period.
//!
//! ```no_run
//! # use ebb_consumer::{Error, Notifier, run_watchdog, watchdog_interval};
//! # async fn example() -> Result<(), Error> {
//! // None outside systemd: then there is nothing to tell anyone.
//! if let Some(notifier) = Notifier::from_env()? {
//!     let (stop_watchdog, watchdog_stopped) = tokio::sync::oneshot::channel::<()>();
//!     if let Some(period) = watchdog_interval()? {
//!         tokio::spawn(run_watchdog(notifier.clone(), period, watchdog_stopped));
//!     }
//!     notifier.ready()?;
//!     // ... run the components until asked to stop ...
//!     notifier.stopping()?;
//!     let _ = stop_watchdog.send(());
//! }
//! # Ok(()) }
//! ```
//!
//! # The environment is read, never changed
//!
//! libsystemd can unset `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`
//! after reading them, so that child processes do not inherit them. This
//! module does not: changing the environment of a process that already runs
//! other threads (a tokio runtime, a resolver) races with their reads of it,
//! which is why `std::env::remove_var` is `unsafe`. What the inherited
//! variables can do is bounded: under `Type=notify` the service manager
//! accepts notifications only from the main process unless the unit says
//! otherwise (`NotifyAccess=`), and `WATCHDOG_PID` names the process the
//! watchdog is for. Code that starts children which speak this protocol
//! themselves should clear the variables for them
//! (`std::process::Command::env_remove`).
//!
//! Linux only, feature `systemd`: the abstract namespace and systemd are
//! both Linux's.

use std::ffi::OsString;
use std::future::{Future, poll_fn};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::Error;

/// What `NOTIFY_SOCKET` must hold (systemd's `vsock:` addresses are not
/// supported).
const NOTIFY_SOCKET_FORM: &str = "an absolute path or @ and an abstract socket name";

/// The longest datagram the service manager reads: its receive buffer is
/// `NOTIFY_BUFFER_MAX` (4096 bytes), and it drops a longer message whole,
/// so sending one would fail without a trace on our side.
const MAX_MESSAGE_LEN: usize = 4096;

const READY: &str = "READY=1";
const STOPPING: &str = "STOPPING=1";
const WATCHDOG: &str = "WATCHDOG=1";

/// Sends notifications to the service manager at `NOTIFY_SOCKET`.
///
/// Each call sends one datagram from a socket made for it, as libsystemd
/// does: nothing stays open between notifications, and a clone is as cheap
/// as copying the address (so the watchdog task can own one).
#[derive(Debug, Clone)]
pub struct Notifier {
    /// Where the service manager listens, parsed once so that a malformed
    /// `NOTIFY_SOCKET` fails at start-up rather than at the first
    /// notification.
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier for the service manager named by `NOTIFY_SOCKET`, or
    /// `None` when the variable is unset or empty (not running under
    /// systemd, or under a unit type that does not listen): then there is
    /// no one to notify, and the caller sends nothing.
    ///
    /// Fails when the variable is set to something other than an absolute
    /// path or `@` and an abstract socket name.
    pub fn from_env() -> Result<Option<Self>, Error> {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// [`Notifier::from_env`] with the variables `var` gives. They are
    /// `OsString`s because a path need not be UTF-8, and reading it with
    /// `std::env::var` would make such a value look unset.
    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Result<Option<Self>, Error> {
        let Some(value) = var("NOTIFY_SOCKET").filter(|value| !value.is_empty()) else {
            return Ok(None);
        };
        let bytes = value.as_bytes();
        let addr = if bytes.starts_with(b"/") {
            SocketAddr::from_pathname(&value)
        } else if let Some(name) = bytes.strip_prefix(b"@").filter(|name| !name.is_empty()) {
            SocketAddr::from_abstract_name(name)
        } else {
            return Err(Error::SystemdEnvironment {
                variable: "NOTIFY_SOCKET",
                value,
                expected: NOTIFY_SOCKET_FORM,
                source: None,
            });
        };
        match addr {
            Ok(addr) => Ok(Some(Self { addr })),
            Err(source) => Err(Error::SystemdEnvironment {
                variable: "NOTIFY_SOCKET",
                value,
                expected: "a usable socket address",
                source: Some(source),
            }),
        }
    }

    /// Tells the service manager that start-up is done (`READY=1`): under
    /// `Type=notify` the service counts as started only from here on.
    pub fn ready(&self) -> Result<(), Error> {
        self.notify(READY)
    }

    /// Tells the service manager that the service is shutting down
    /// (`STOPPING=1`). Send it when shutdown begins rather than just before
    /// exiting: the service manager identifies the sender by its process,
    /// which it may no longer find once the process is gone.
    pub fn stopping(&self) -> Result<(), Error> {
        self.notify(STOPPING)
    }

    /// Sets the one-line status that `systemctl status` shows
    /// (`STATUS=text`). A newline in `text` is refused rather than sent,
    /// since it would start another assignment.
    pub fn status(&self, text: &str) -> Result<(), Error> {
        if text.contains('\n') {
            return Err(Error::InvalidNotification {
                reason: "a status is one line; a newline would start another assignment",
            });
        }
        self.notify(&format!("STATUS={text}"))
    }

    /// Keeps the service manager's watchdog from acting (`WATCHDOG=1`).
    /// [`run_watchdog`] sends this at a period; this sends one now.
    pub fn watchdog(&self) -> Result<(), Error> {
        self.notify(WATCHDOG)
    }

    /// Sends `state` as it is, in one datagram: newline-separated
    /// assignments such as `"RELOADING=1\nSTATUS=Reloading"`.
    ///
    /// This may block while the service manager's receive queue is full,
    /// as libsystemd's `sd_notify` does: a notification such as `READY=1`
    /// must not be lost to a moment of load. It fails at once, with nothing
    /// sent, on an empty message, one over 4096 bytes, or one holding a NUL
    /// byte, all of which the service manager would ignore.
    pub fn notify(&self, state: &str) -> Result<(), Error> {
        self.send(state, Wait::UntilQueued)
    }

    fn send(&self, state: &str, wait: Wait) -> Result<(), Error> {
        check_message(state)?;
        let socket = UnixDatagram::unbound().map_err(Error::Notify)?;
        if let Wait::Never = wait {
            socket.set_nonblocking(true).map_err(Error::Notify)?;
        }
        let sent = socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map_err(Error::Notify)?;
        // A datagram goes whole or not at all; a short count would mean the
        // service manager got a different message from the one meant.
        if sent != state.len() {
            return Err(Error::Notify(io::Error::new(
                io::ErrorKind::WriteZero,
                "the notification datagram was cut short",
            )));
        }
        Ok(())
    }
}

/// Whether a send may wait for room in the service manager's queue.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Block until queued, as libsystemd does: for the notifications whose
    /// loss would matter.
    UntilQueued,
    /// Fail instead: for the watchdog's pings, which run on the async
    /// runtime and are sent again within the timeout if one is lost.
    Never,
}

/// Refuses what the service manager would ignore, so that the caller hears
/// of it instead of systemd logging it.
fn check_message(state: &str) -> Result<(), Error> {
    let reason = if state.is_empty() {
        "the message is empty"
    } else if state.len() > MAX_MESSAGE_LEN {
        "the message is longer than the 4096 bytes the service manager reads"
    } else if state.contains('\0') {
        "the message holds a NUL byte, for which the service manager drops it"
    } else {
        return Ok(());
    };
    Err(Error::InvalidNotification { reason })
}

/// How often to send `WATCHDOG=1`: half the watchdog timeout in
/// `WATCHDOG_USEC`, as systemd recommends, so that one late or lost ping is
/// not fatal.
///
/// `None` when the unit has no watchdog (`WATCHDOG_USEC` unset or empty) or
/// when `WATCHDOG_PID` names another process: the variables were inherited,
/// and the watchdog is that process's to keep. Fails when either variable
/// is set but malformed.
pub fn watchdog_interval() -> Result<Option<Duration>, Error> {
    watchdog_interval_from(|name| std::env::var_os(name), std::process::id())
}

/// [`watchdog_interval`] with the variables `var` gives, for the process
/// `our_pid`.
pub(crate) fn watchdog_interval_from(
    var: impl Fn(&str) -> Option<OsString>,
    our_pid: u32,
) -> Result<Option<Duration>, Error> {
    let var = |name: &str| var(name).filter(|value| !value.is_empty());
    let Some(usec) = var("WATCHDOG_USEC") else {
        return Ok(None);
    };
    let Some(timeout) = usec
        .to_str()
        .and_then(|usec| usec.parse::<u64>().ok())
        .filter(|&usec| usec != 0 && usec != u64::MAX)
    else {
        return Err(Error::SystemdEnvironment {
            variable: "WATCHDOG_USEC",
            value: usec,
            expected: "a watchdog timeout in microseconds",
            source: None,
        });
    };
    if let Some(pid) = var("WATCHDOG_PID") {
        let Some(pid) = pid
            .to_str()
            .and_then(|pid| pid.parse::<u32>().ok())
            .filter(|&pid| pid != 0)
        else {
            return Err(Error::SystemdEnvironment {
                variable: "WATCHDOG_PID",
                value: pid,
                expected: "a process id",
                source: None,
            });
        };
        if pid != our_pid {
            return Ok(None);
        }
    }
    Ok(Some(Duration::from_micros(timeout) / 2))
}

/// Sends `WATCHDOG=1` at once and then every `period` until `stop`
/// completes; returns when it does.
///
/// A ping that fails is logged (`tracing::warn!`) and the next one is sent
/// on schedule: with the period at half the timeout, one lost ping does not
/// trip the watchdog. Pings never block the runtime: when the service
/// manager's queue is full the ping fails and counts as lost. After a stall
/// of the runtime the schedule restarts from the late ping rather than
/// sending the missed ones in a burst.
///
/// Fails, without sending anything, only when `period` is zero.
pub async fn run_watchdog(
    notifier: Notifier,
    period: Duration,
    stop: impl Future,
) -> Result<(), Error> {
    if period.is_zero() {
        return Err(Error::invalid_config("the watchdog period is zero"));
    }
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stop = pin!(stop);
    loop {
        // Stop is polled first so that it wins over a ping that falls due
        // at the same moment; once it completes it is never polled again.
        let stopped = poll_fn(|cx| {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            ticks.poll_tick(cx).map(|_| false)
        })
        .await;
        if stopped {
            return Ok(());
        }
        if let Err(error) = notifier.send(WATCHDOG, Wait::Never) {
            // As a `dyn Error`, so that a subscriber can show the io cause
            // from the source chain.
            tracing::warn!(
                error = &error as &(dyn std::error::Error + 'static),
                "could not ping the systemd watchdog"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A stand-in for the service manager: a datagram socket bound where
    /// `NOTIFY_SOCKET` points, removed again when dropped.
    struct Listener {
        /// Receives what the notifier sends; non-blocking, so that reading
        /// an empty queue returns at once.
        socket: UnixDatagram,
        /// The value for `NOTIFY_SOCKET`.
        notify_socket: OsString,
        /// The socket file to remove, for a listener at a path.
        path: Option<PathBuf>,
    }

    /// A name no other listener in this or another test run uses.
    fn unique_name() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("ebb-sd-notify-test-{}-{n}", std::process::id())
    }

    /// A path in the temporary directory with nothing at it.
    fn unused_path() -> PathBuf {
        let path = std::env::temp_dir().join(format!("{}.sock", unique_name()));
        // Left over by an earlier run of a process with the same id.
        let _ = std::fs::remove_file(&path);
        path
    }

    impl Listener {
        fn at_path() -> io::Result<Self> {
            Self::bind_path(unused_path())
        }

        fn bind_path(path: PathBuf) -> io::Result<Self> {
            let socket = UnixDatagram::bind(&path)?;
            socket.set_nonblocking(true)?;
            Ok(Self {
                socket,
                notify_socket: path.clone().into_os_string(),
                path: Some(path),
            })
        }

        fn at_abstract_name() -> io::Result<Self> {
            let name = unique_name();
            let socket = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name)?)?;
            socket.set_nonblocking(true)?;
            Ok(Self {
                socket,
                notify_socket: format!("@{name}").into(),
                path: None,
            })
        }

        fn notifier(&self) -> Notifier {
            notifier_for(&self.notify_socket)
        }

        /// Every datagram queued so far, in order.
        fn received(&self) -> Vec<String> {
            let mut received = Vec::new();
            let mut buf = [0; 2 * MAX_MESSAGE_LEN];
            loop {
                match self.socket.recv(&mut buf) {
                    Ok(n) => received.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return received,
                    Err(err) => panic!("receiving notifications: {err}"),
                }
            }
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            if let Some(path) = &self.path {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn notify_socket(value: &str) -> impl Fn(&str) -> Option<OsString> {
        let value = OsString::from(value);
        move |name| (name == "NOTIFY_SOCKET").then(|| value.clone())
    }

    fn notifier_for(value: &OsStr) -> Notifier {
        Notifier::from_vars(|name| (name == "NOTIFY_SOCKET").then(|| value.to_owned()))
            .expect("a valid NOTIFY_SOCKET")
            .expect("a set NOTIFY_SOCKET")
    }

    fn send_each_state(notifier: &Notifier) -> Result<(), Error> {
        notifier.ready()?;
        notifier.status("Processing 3 streams")?;
        notifier.watchdog()?;
        notifier.stopping()?;
        notifier.notify("RELOADING=1\nSTATUS=Reloading")
    }

    const EACH_STATE: [&str; 5] = [
        "READY=1",
        "STATUS=Processing 3 streams",
        "WATCHDOG=1",
        "STOPPING=1",
        "RELOADING=1\nSTATUS=Reloading",
    ];

    #[test]
    fn each_notification_arrives_as_one_datagram_at_a_path() {
        let listener = Listener::at_path().expect("bind a socket in the temp dir");
        send_each_state(&listener.notifier()).expect("send");
        assert_eq!(listener.received(), EACH_STATE);
    }

    #[test]
    fn each_notification_arrives_as_one_datagram_at_an_abstract_name() {
        let listener = Listener::at_abstract_name().expect("bind an abstract socket");
        send_each_state(&listener.notifier()).expect("send");
        assert_eq!(listener.received(), EACH_STATE);
    }

    #[test]
    fn an_abstract_name_is_not_a_path() {
        // The same name as a path socket must not receive what is sent to
        // the abstract name: the `@` is not part of a file name.
        let listener = Listener::at_path().expect("bind a socket in the temp dir");
        let name = listener.notify_socket.to_str().expect("a UTF-8 temp path");
        let result = notifier_for(OsStr::new(&format!("@{name}"))).ready();
        assert!(matches!(result, Err(Error::Notify(_))), "{result:?}");
        assert!(listener.received().is_empty());
    }

    #[test]
    fn no_notify_socket_means_no_notifier() {
        assert!(matches!(Notifier::from_vars(|_| None), Ok(None)));
        assert!(matches!(Notifier::from_vars(notify_socket("")), Ok(None)));
    }

    #[test]
    fn a_notify_socket_that_is_neither_a_path_nor_an_abstract_name_is_an_error() {
        for value in ["run/systemd/notify", "vsock:2:1234", "@", " /run/notify"] {
            let result = Notifier::from_vars(notify_socket(value));
            match result {
                Err(err @ Error::SystemdEnvironment { source: None, .. }) => {
                    assert!(err.is_setup());
                }
                other => panic!("{value:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_notify_socket_too_long_for_an_address_is_an_error() {
        for value in [
            format!("/{}", "a".repeat(200)),
            format!("@{}", "a".repeat(200)),
        ] {
            let result = Notifier::from_vars(notify_socket(&value));
            match result {
                Err(err @ Error::SystemdEnvironment { .. }) => {
                    assert!(err.is_setup());
                    assert!(std::error::Error::source(&err).is_some());
                }
                other => panic!("{value:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn messages_the_service_manager_would_ignore_are_refused_unsent() {
        let listener = Listener::at_path().expect("bind a socket in the temp dir");
        let notifier = listener.notifier();
        let refused = [
            notifier.status("two\nlines"),
            notifier.status("READY=1\n"),
            notifier.notify(""),
            notifier.notify("STATUS=a\0b"),
            notifier.notify(&format!("STATUS={}", "x".repeat(MAX_MESSAGE_LEN))),
        ];
        for result in refused {
            match result {
                Err(err @ Error::InvalidNotification { .. }) => assert!(!err.is_setup()),
                other => panic!("expected InvalidMessage, got {other:?}"),
            }
        }
        assert!(listener.received().is_empty());

        // The longest message the service manager reads still goes.
        let longest = format!("STATUS={}", "x".repeat(MAX_MESSAGE_LEN - "STATUS=".len()));
        notifier.notify(&longest).expect("a 4096-byte message");
        assert_eq!(listener.received(), [longest]);
    }

    #[test]
    fn sending_to_a_socket_nobody_listens_on_is_a_send_error() {
        let notifier = notifier_for(unused_path().as_os_str());
        let result = notifier.ready();
        match result {
            Err(err @ Error::Notify(_)) => {
                assert!(!err.is_setup());
                assert!(std::error::Error::source(&err).is_some());
            }
            other => panic!("expected Send, got {other:?}"),
        }
    }

    fn watchdog_vars(usec: Option<&str>, pid: Option<&str>) -> impl Fn(&str) -> Option<OsString> {
        let usec = usec.map(OsString::from);
        let pid = pid.map(OsString::from);
        move |name| match name {
            "WATCHDOG_USEC" => usec.clone(),
            "WATCHDOG_PID" => pid.clone(),
            _ => None,
        }
    }

    const OUR_PID: u32 = 4242;

    #[test]
    fn the_watchdog_interval_is_half_the_timeout() {
        let interval = watchdog_interval_from(watchdog_vars(Some("30000000"), None), OUR_PID);
        assert_eq!(interval.expect("valid"), Some(Duration::from_secs(15)));
        let interval = watchdog_interval_from(watchdog_vars(Some("3"), Some("4242")), OUR_PID);
        assert_eq!(interval.expect("valid"), Some(Duration::from_nanos(1500)));
    }

    #[test]
    fn no_watchdog_usec_means_no_watchdog() {
        for usec in [None, Some("")] {
            let interval = watchdog_interval_from(watchdog_vars(usec, Some("4242")), OUR_PID);
            assert_eq!(interval.expect("valid"), None, "WATCHDOG_USEC={usec:?}");
        }
    }

    #[test]
    fn a_watchdog_for_another_process_is_not_ours() {
        let interval =
            watchdog_interval_from(watchdog_vars(Some("30000000"), Some("4243")), OUR_PID);
        assert_eq!(interval.expect("valid"), None);
    }

    #[test]
    fn the_real_pid_is_ours() {
        // The public function compares with this process's id.
        let ours = std::process::id().to_string();
        let vars = watchdog_vars(Some("2000000"), Some(&ours));
        let interval = watchdog_interval_from(vars, std::process::id());
        assert_eq!(interval.expect("valid"), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_malformed_watchdog_usec_is_an_error() {
        let bad = [
            "abc",
            "0",
            "-5",
            "1.5",
            "30s",
            " 30",
            "18446744073709551615",
        ];
        for usec in bad {
            let result = watchdog_interval_from(watchdog_vars(Some(usec), None), OUR_PID);
            match result {
                Err(
                    err @ Error::SystemdEnvironment {
                        variable: "WATCHDOG_USEC",
                        ..
                    },
                ) => {
                    assert!(err.is_setup());
                }
                other => panic!("WATCHDOG_USEC={usec:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_malformed_watchdog_pid_is_an_error() {
        for pid in ["abc", "0", "-1"] {
            let result = watchdog_interval_from(watchdog_vars(Some("1000000"), Some(pid)), OUR_PID);
            assert!(
                matches!(
                    result,
                    Err(Error::SystemdEnvironment {
                        variable: "WATCHDOG_PID",
                        ..
                    })
                ),
                "WATCHDOG_PID={pid:?} gave {result:?}"
            );
        }
    }

    /// Lets spawned tasks run without letting paused time move on.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_pings_every_period_until_stopped() {
        let listener = Listener::at_path().expect("bind a socket in the temp dir");
        let period = Duration::from_secs(5);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let watchdog = tokio::spawn(run_watchdog(listener.notifier(), period, stopped));

        settle().await;
        assert_eq!(listener.received(), ["WATCHDOG=1"], "a ping at once");
        for round in 1..=3 {
            tokio::time::advance(period - Duration::from_millis(1)).await;
            settle().await;
            assert!(
                listener.received().is_empty(),
                "early ping in round {round}"
            );
            tokio::time::advance(Duration::from_millis(1)).await;
            settle().await;
            assert_eq!(listener.received(), ["WATCHDOG=1"], "round {round}");
        }

        stop.send(()).expect("the watchdog still runs");
        let finished = tokio::time::timeout(period / 2, watchdog).await;
        let result = finished
            .expect("stopped within half a period")
            .expect("not panicked");
        assert!(result.is_ok(), "{result:?}");
        tokio::time::advance(period * 3).await;
        settle().await;
        assert!(listener.received().is_empty(), "a ping after stopping");
    }

    /// Counts the warnings logged while it is the default subscriber.
    #[derive(Debug, Default)]
    struct WarningCounter {
        warnings: Arc<AtomicUsize>,
    }

    impl tracing::Subscriber for WarningCounter {
        fn register_callsite(
            &self,
            _: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            // Ask every time: other tests' threads have other subscribers.
            tracing::subscriber::Interest::sometimes()
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.warnings.fetch_add(1, Ordering::Relaxed);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_ping_is_logged_and_the_watchdog_goes_on() {
        let counter = WarningCounter::default();
        let warnings = Arc::clone(&counter.warnings);
        // The test's runtime runs every task on this thread.
        let _default = tracing::subscriber::set_default(counter);

        // Nobody listens yet, so the first ping fails.
        let path = unused_path();
        let notifier = notifier_for(path.as_os_str());
        let period = Duration::from_secs(5);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let watchdog = tokio::spawn(run_watchdog(notifier, period, stopped));
        settle().await;
        assert_eq!(warnings.load(Ordering::Relaxed), 1);

        let listener = Listener::bind_path(path).expect("bind a socket in the temp dir");
        tokio::time::advance(period).await;
        settle().await;
        assert_eq!(listener.received(), ["WATCHDOG=1"]);
        assert_eq!(warnings.load(Ordering::Relaxed), 1);

        stop.send(()).expect("the watchdog still runs");
        let finished = tokio::time::timeout(period / 2, watchdog).await;
        let result = finished
            .expect("stopped within half a period")
            .expect("not panicked");
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_watchdog_period_is_refused() {
        let listener = Listener::at_path().expect("bind a socket in the temp dir");
        let result = run_watchdog(
            listener.notifier(),
            Duration::ZERO,
            std::future::pending::<()>(),
        );
        let result = tokio::time::timeout(Duration::from_secs(1), result).await;
        assert!(
            matches!(result, Ok(Err(Error::InvalidConfig { .. }))),
            "{result:?}"
        );
        assert!(listener.received().is_empty());
    }
}
