//! The component host's process model, on a real component binary run as
//! a child process (`src/bin/ebb-test-component.rs`): signals, exit codes,
//! recorded positions, shutdown hooks and systemd's readiness protocol.

use std::io::BufRead as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ebb_handler::{Writer, message};
use ebb_localpg::TestDatabase;
use ebb_message_store::{ExpectedVersion, MessageStore, PgStore, StreamName, StreamQuery};
use ebb_tests::{database, store_for};

#[message]
struct Noted {
    n: i64,
}

/// A running component and what it works on.
struct Component {
    child: Child,
    /// Its stderr lines so far, read as they come by a thread of their
    /// own (which ends when the child closes it).
    stderr: Arc<(Mutex<Vec<String>>, Condvar)>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    /// Where its shutdown hooks write their names.
    hook_log: PathBuf,
    /// systemd's end of `NOTIFY_SOCKET`.
    notify: UnixDatagram,
    _dir: tempfile::TempDir,
}

impl Component {
    fn start(db: &TestDatabase, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hook_log = dir.path().join("hooks");
        let socket = dir.path().join("notify");
        let notify = UnixDatagram::bind(&socket).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ebb-test-component"));
        command
            .env("DATABASE_URL", db.connection_string())
            .env("EBB_TEST_HOOK_LOG", &hook_log)
            .env("NOTIFY_SOCKET", &socket)
            .env("WATCHDOG_USEC", "400000")
            .env_remove("WATCHDOG_PID")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stderr_reader = std::thread::spawn({
            let pipe = std::io::BufReader::new(child.stderr.take().unwrap());
            let stderr = Arc::clone(&stderr);
            move || {
                for line in pipe.lines().map_while(Result::ok) {
                    let (lines, added) = &*stderr;
                    lines.lock().unwrap().push(line);
                    added.notify_all();
                }
            }
        });
        Self {
            child,
            stderr,
            stderr_reader: Some(stderr_reader),
            hook_log,
            notify,
            _dir: dir,
        }
    }

    /// Its stderr lines so far, once one contains `wanted` (up to 20 s).
    fn stderr_until(&self, wanted: &str) -> Vec<String> {
        let (lines, added) = &*self.stderr;
        let (lines, waited) = added
            .wait_timeout_while(lines.lock().unwrap(), Duration::from_secs(20), |lines| {
                !lines.iter().any(|line| line.contains(wanted))
            })
            .unwrap();
        assert!(
            !waited.timed_out(),
            "no {wanted:?} on stderr within 20 s:\n{}",
            lines.join("\n")
        );
        lines.clone()
    }

    /// The notifications received so far, after waiting for `wanted`
    /// (up to 20 s).
    fn notifications_until(&self, wanted: &str) -> Vec<String> {
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut buffer = [0; 4096];
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(len) = self.notify.recv(&mut buffer) {
                seen.push(String::from_utf8_lossy(&buffer[..len]).into_owned());
                if seen.last().is_some_and(|last| last == wanted) {
                    return seen;
                }
            }
        }
        panic!("no {wanted} within 20 s; got {seen:?}");
    }

    fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits (up to 30 s) for the child to exit; its status and stderr.
    fn wait(mut self) -> (ExitStatus, String, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the component did not exit"
            );
            // Polls the child until it has exited.
            std::thread::sleep(Duration::from_millis(20));
        };
        // The child is gone, its end of the pipe with it: the reader sees
        // the end and stops.
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().unwrap();
        }
        let stderr = self.stderr.0.lock().unwrap().join("\n");
        let hooks = std::fs::read_to_string(&self.hook_log).unwrap_or_default();
        (status, stderr, hooks)
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn note(store: &PgStore, n: i64) -> i64 {
    let stream = StreamName::new("note", &(n % 3).to_string()).unwrap();
    let position = Writer::new(store.clone())
        .write(&stream, Noted { n }, ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .get_stream_messages(stream.as_str(), &StreamQuery::new().position(position))
        .await
        .unwrap()[0]
        .global_position
}

/// The `n`s the component has handled, in order.
async fn handled(store: &PgStore) -> Vec<i64> {
    store
        .get_stream_messages("handled-1", &StreamQuery::new().batch_size(-1))
        .await
        .unwrap()
        .iter()
        .map(|message| {
            message.data::<serde_json::Value>().unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

async fn wait_for_handled(store: &PgStore, count: usize) -> Vec<i64> {
    let started = Instant::now();
    loop {
        let handled = handled(store).await;
        if handled.len() >= count {
            return handled;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "handled {handled:?} of {count}"
        );
        // Polls the handled stream until it holds `count` notes.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn recorded_position(store: &PgStore) -> Option<i64> {
    store
        .get_last_stream_message("note:position-component", None)
        .await
        .unwrap()
        .map(|message| {
            message.data::<serde_json::Value>().unwrap()["position"]
                .as_i64()
                .unwrap()
        })
}

fn hook_order() -> &'static str {
    "second\nfirst\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_records_the_position_runs_the_hooks_and_exits_0() {
    let db = database().await;
    let store = store_for(&db, 2);
    let mut last = 0;
    for n in 1..=20 {
        last = note(&store, n).await;
    }
    let component = Component::start(&db, &[]);
    let before_ready = component.notifications_until("READY=1");
    assert!(
        before_ready
            .iter()
            .all(|n| n == "WATCHDOG=1" || n == "READY=1"),
        "{before_ready:?}"
    );
    assert_eq!(
        wait_for_handled(&store, 20).await,
        (1..=20).collect::<Vec<_>>()
    );
    // The watchdog is pinged every half WATCHDOG_USEC (200 ms).
    component.notifications_until("WATCHDOG=1");
    component.signal(libc::SIGTERM);
    let after = component.notifications_until("STOPPING=1");
    assert!(
        after.iter().all(|n| n == "WATCHDOG=1" || n == "STOPPING=1"),
        "{after:?}"
    );
    let (status, stderr, hooks) = component.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(recorded_position(&store).await, Some(last), "{stderr}");
    assert_eq!(
        hooks,
        hook_order(),
        "hooks in reverse order of registration"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_gracefully_too_and_the_message_in_hand_is_finished() {
    let db = database().await;
    let store = store_for(&db, 2);
    for n in 1..=5 {
        note(&store, n).await;
    }
    let component = Component::start(&db, &[("EBB_TEST_HANDLE_MS", "300")]);
    component.notifications_until("READY=1");
    let first = wait_for_handled(&store, 1).await;
    component.signal(libc::SIGINT);
    let (status, stderr, hooks) = component.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let handled = handled(&store).await;
    assert!(
        handled.len() >= first.len() && handled.len() < 5,
        "{handled:?}"
    );
    // The position is the last message handled: nothing in hand was cut
    // short, nothing unhandled is counted.
    let messages = store
        .get_stream_messages("handled-1", &StreamQuery::new().batch_size(-1))
        .await
        .unwrap();
    let last_handled = messages
        .last()
        .unwrap()
        .data::<serde_json::Value>()
        .unwrap()["globalPosition"]
        .as_i64()
        .unwrap();
    assert_eq!(recorded_position(&store).await, Some(last_handled));
    assert_eq!(hooks, hook_order());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigtstp_pauses_and_sigcont_resumes() {
    let db = database().await;
    let store = store_for(&db, 2);
    note(&store, 1).await;
    let component = Component::start(&db, &[]);
    component.notifications_until("READY=1");
    wait_for_handled(&store, 1).await;
    component.signal(libc::SIGTSTP);
    // Taken: the host says so, then the consumer says it has paused (it
    // waits, and starts nothing, until it says it has resumed).
    component.stderr_until("SIGTSTP: pausing");
    component.stderr_until("consumer paused");
    note(&store, 2).await;
    assert_eq!(handled(&store).await, [1], "paused");
    component.signal(libc::SIGCONT);
    assert_eq!(wait_for_handled(&store, 2).await, [1, 2]);
    // It went on only once SIGCONT was taken: "resumed" is said after
    // the host's "resuming" (said before it lets the consumer go), never
    // before, as a pause that did not hold would have it.
    let log = component.stderr_until("consumer resumed");
    let at = |wanted: &str| {
        log.iter()
            .position(|line| line.contains(wanted))
            .unwrap_or_else(|| panic!("no {wanted:?} in {log:#?}"))
    };
    assert!(
        at("SIGTSTP: pausing") < at("consumer paused")
            && at("consumer paused") < at("SIGCONT: resuming")
            && at("SIGCONT: resuming") < at("consumer resumed"),
        "{log:#?}"
    );
    component.signal(libc::SIGTERM);
    let (status, stderr, _) = component.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_ends_the_process_non_zero_and_keeps_the_position_before_it() {
    let db = database().await;
    let store = store_for(&db, 2);
    let mut positions = Vec::new();
    for n in 1..=5 {
        positions.push(note(&store, n).await);
    }
    let component = Component::start(&db, &[("EBB_TEST_FAIL_ON", "4")]);
    let (status, stderr, hooks) = component.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("note 4 cannot be handled"), "{stderr}");
    assert!(stderr.contains("handler failed"), "{stderr}");
    assert_eq!(handled(&store).await, [1, 2, 3]);
    assert_eq!(recorded_position(&store).await, Some(positions[2]));
    assert_eq!(hooks, hook_order(), "the hooks run on the way out too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_task_ends_the_process_non_zero() {
    let db = database().await;
    let component = Component::start(&db, &[("EBB_TEST_PANIC_TASK", "1")]);
    let (status, stderr, _) = component.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("task doomed failed"), "{stderr}");
    assert!(stderr.contains("the doomed task gives up"), "{stderr}");
}

/// A free loopback port (bound and let go: another process could take it
/// in between, which this test's machine does not do).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` on `port`; the body, or `None` while nothing answers.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

/// The value of the sample `name{labels}` in a Prometheus text body.
fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_serves_what_the_consumer_measured() {
    let db = database().await;
    let store = store_for(&db, 2);
    let mut last = 0;
    for n in 1..=12 {
        last = note(&store, n).await;
    }
    let port = free_port();
    let component = Component::start(
        &db,
        &[("EBB_TEST_METRICS_ADDR", &format!("127.0.0.1:{port}"))],
    );
    wait_for_handled(&store, 12).await;
    let labels = r#"{category="note",consumer="component"}"#;
    // The lag is sampled at most every second: wait for the caught-up one.
    let started = Instant::now();
    let body = loop {
        if let Some(body) = scrape(port) {
            if sample(&body, &format!("ebb_consumer_lag{labels}")) == Some(0.0)
                && sample(&body, &format!("ebb_consumer_position{labels}")) == Some(last as f64)
            {
                break body;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no caught-up metrics within 15 s"
        );
        // Polls the endpoint until the sampled lag is the caught-up one.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        sample(
            &body,
            &format!("ebb_consumer_messages_handled_total{labels}")
        ),
        Some(12.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            &format!("ebb_consumer_handler_seconds_count{labels}")
        ),
        Some(12.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, &format!("ebb_consumer_handler_errors_total{labels}")),
        Some(0.0),
        "{body}"
    );
    let reads = sample(
        &body,
        r#"ebb_store_category_read_seconds_count{category="note"}"#,
    );
    assert!(reads.is_some_and(|reads| reads >= 1.0), "{body}");

    // A note written now is counted, and the lag comes back to 0.
    let newer = note(&store, 13).await;
    wait_for_handled(&store, 13).await;
    let started = Instant::now();
    loop {
        let body = scrape(port).expect("the endpoint answers");
        if sample(
            &body,
            &format!("ebb_consumer_messages_handled_total{labels}"),
        ) == Some(13.0)
            && sample(&body, &format!("ebb_consumer_position{labels}")) == Some(newer as f64)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the newer note is not counted: {body}"
        );
        // Polls the endpoint until it counts the newer note.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    component.signal(libc::SIGTERM);
    let (status, stderr, _) = component.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_the_metrics_endpoint_cannot_bind_stops_the_component() {
    let db = database().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let component = Component::start(
        &db,
        &[("EBB_TEST_METRICS_ADDR", &format!("127.0.0.1:{port}"))],
    );
    let (status, stderr, _) = component.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the metrics endpoint could not start"),
        "{stderr}"
    );
}
