//! `ebb write`, `ebb read`, `ebb tail` and `ebb completions`, run as a user
//! runs them, against a database of each test's own.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{ebb, fails_in_one_line, json_lines, ok, store_database, text};

/// Writes through `ebb write` and returns the position it printed.
fn write(stream: &str, type_name: &str, data: &str, database_url: &str) -> i64 {
    let printed = ok(&["write", stream, type_name, data], database_url);
    printed
        .trim_end()
        .parse()
        .unwrap_or_else(|err| panic!("{printed:?}: {err}"))
}

/// An address nothing listens on.
fn unreachable_url(dir: &tempfile::TempDir) -> String {
    format!(
        "host={} port=5432 user=postgres dbname=x",
        dir.path().display()
    )
}

#[test]
fn a_written_stream_reads_back_with_every_field() {
    let url = store_database("ebb_cli_rw");
    let id = uuid::Uuid::new_v4().to_string();
    let printed = ok(
        &[
            "write",
            "account-1",
            "Opened",
            r#"{"accountId": "1", "nested": {"list": [1, 2]}}"#,
            "--metadata",
            r#"{"correlationStreamName": "transfer-9", "schemaVersion": "2"}"#,
            "--id",
            &id,
            "--expected-version",
            "no-stream",
        ],
        &url,
    );
    assert_eq!(printed, "0\n");
    assert_eq!(
        write("account-1", "Deposited", r#"{"amount": 10}"#, &url),
        1
    );

    let messages = json_lines(&["read", "account-1"], &url);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let first = &messages[0];
    assert_eq!(first["id"], json!(id));
    assert_eq!(first["streamName"], json!("account-1"));
    assert_eq!(first["type"], json!("Opened"));
    assert_eq!(first["position"], json!(0));
    assert_eq!(
        first["data"],
        json!({ "accountId": "1", "nested": { "list": [1, 2] } })
    );
    assert_eq!(
        first["metadata"],
        json!({ "correlationStreamName": "transfer-9", "schemaVersion": "2" })
    );
    let time = first["time"].as_str().expect("time is a string");
    let time =
        chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|err| panic!("{time}: {err}"));
    let age = chrono::Utc::now().signed_duration_since(time);
    assert!(age.num_minutes().abs() < 10, "written {age} ago");
    let second = &messages[1];
    assert_eq!(second["position"], json!(1));
    assert_eq!(second["type"], json!("Deposited"));
    assert_eq!(second["data"], json!({ "amount": 10 }));
    assert_eq!(second["metadata"], json!({}));
    assert!(
        second["globalPosition"].as_i64() > first["globalPosition"].as_i64(),
        "{messages:#?}"
    );

    // --from is a stream position for a stream.
    let from_one = json_lines(&["read", "account-1", "--from", "1"], &url);
    assert_eq!(from_one, messages[1..]);

    // The table: a header, one aligned row each, no colour on a pipe.
    let table = ok(&["read", "account-1"], &url);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("GLOBAL  POSITION  STREAM"), "{table}");
    assert!(
        lines[1].contains("account-1") && lines[1].contains("Opened"),
        "{table}"
    );
    assert!(lines[2].contains(r#"{"amount":10}"#), "{table}");
    assert_eq!(
        lines[1].find("Opened"),
        lines[2].find("Deposited"),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "colour on a pipe: {table:?}");

    // A stream with nothing in it prints nothing, successfully.
    assert_eq!(ok(&["read", "account-2"], &url), "");
}

#[test]
fn a_category_reads_with_from_limit_type_correlation_and_group() {
    let url = store_database("ebb_cli_rw");
    for n in 0..4 {
        write(
            &format!("account-{n}"),
            "Deposited",
            &format!(r#"{{"n": {n}}}"#),
            &url,
        );
        write(
            &format!("account-{n}"),
            "Withdrawn",
            &format!(r#"{{"n": {n}}}"#),
            &url,
        );
        write(&format!("other-{n}"), "Deposited", "{}", &url);
    }
    ok(
        &[
            "write",
            "account-9",
            "Deposited",
            "{}",
            "--metadata",
            r#"{"correlationStreamName": "transfer-1"}"#,
        ],
        &url,
    );

    let all = json_lines(&["read", "account"], &url);
    assert_eq!(all.len(), 9, "{all:#?}");
    let positions: Vec<i64> = all
        .iter()
        .map(|m| m["globalPosition"].as_i64().unwrap())
        .collect();
    assert!(positions.is_sorted(), "{positions:?}");
    assert!(
        all.iter()
            .all(|m| m["streamName"].as_str().unwrap().starts_with("account-")),
        "{all:#?}"
    );

    let third = positions[2].to_string();
    let from = json_lines(&["read", "account", "--from", &third], &url);
    assert_eq!(from, all[2..]);

    let limited = json_lines(&["read", "account", "--from", &third, "--limit", "3"], &url);
    assert_eq!(limited, all[2..5]);

    let withdrawn = json_lines(&["read", "account", "--type", "Withdrawn"], &url);
    assert_eq!(withdrawn.len(), 4, "{withdrawn:#?}");
    assert!(withdrawn.iter().all(|m| m["type"] == json!("Withdrawn")));

    // --limit counts the messages printed, not those read.
    let two = json_lines(
        &[
            "read",
            "account",
            "--type",
            "Withdrawn",
            "--from",
            &third,
            "--limit",
            "2",
        ],
        &url,
    );
    assert_eq!(two, withdrawn[1..3]);

    let correlated = json_lines(&["read", "account", "--correlation", "transfer"], &url);
    assert_eq!(correlated, all[8..]);

    // The two members of a group share the category between them.
    let zero = json_lines(&["read", "account", "--group", "0/2"], &url);
    let one = json_lines(&["read", "account", "--group", "1/2"], &url);
    assert_eq!(zero.len() + one.len(), all.len());
    assert!(!zero.is_empty() && !one.is_empty(), "{zero:#?} {one:#?}");
    let mut both: Vec<Value> = zero.into_iter().chain(one).collect();
    both.sort_by_key(|m| m["globalPosition"].as_i64());
    assert_eq!(both, all);

    // Filters of categories on a stream, and malformed filters, are
    // usage errors.
    let err = fails_in_one_line(2, &["read", "account-1", "--group", "0/2"], &url);
    assert!(err.contains("is a stream"), "{err}");
    let err = fails_in_one_line(2, &["read", "account", "--correlation", "transfer-1"], &url);
    assert!(err.contains("--correlation takes a category"), "{err}");
    let out = ebb(&["read", "account", "--group", "2/2"], &url);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn a_wrong_expected_version_is_a_failure_and_writes_nothing() {
    let url = store_database("ebb_cli_rw");
    write("account-1", "Opened", "{}", &url);

    for expected in ["5", "no-stream"] {
        let err = fails_in_one_line(
            1,
            &[
                "write",
                "account-1",
                "Deposited",
                "{}",
                "--expected-version",
                expected,
            ],
            &url,
        );
        assert!(
            err.starts_with("ebb: cannot write to account-1: Wrong expected version"),
            "{err}"
        );
    }
    let messages = json_lines(&["read", "account-1"], &url);
    assert_eq!(messages.len(), 1, "{messages:#?}");

    let printed = ok(
        &[
            "write",
            "account-1",
            "Deposited",
            "{}",
            "--expected-version",
            "0",
        ],
        &url,
    );
    assert_eq!(printed, "1\n");

    // A second message with the same id is refused too.
    let id = messages[0]["id"].as_str().unwrap();
    let err = fails_in_one_line(1, &["write", "account-1", "Opened", "{}", "--id", id], &url);
    assert!(err.starts_with("ebb: cannot write to account-1: "), "{err}");
    assert_eq!(json_lines(&["read", "account-1"], &url).len(), 2);
}

#[test]
fn malformed_arguments_are_usage_errors_found_before_the_database() {
    let url = store_database("ebb_cli_rw");
    let cases: [(&[&str], &str); 7] = [
        (
            &["write", "account-1", "Opened", "{"],
            "the data is not JSON",
        ),
        (
            &["write", "account-1", "Opened", "[1]"],
            "must be a JSON object",
        ),
        (&["write", "account-1++2", "Opened", "{}"], "account-1++2"),
        (&["write", ":x-1", "Opened", "{}"], ":x-1"),
        (
            &["write", "account-1", "Opened", "{}", "--id", "nope"],
            "is not a UUID",
        ),
        (
            &["write", "account-1", "Opened", "{}", "--metadata", "{"],
            "the metadata",
        ),
        (
            &[
                "write",
                "account-1",
                "Opened",
                "{}",
                "--expected-version",
                "-1",
            ],
            "expected version",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let nowhere = unreachable_url(&dir);
    for (args, says) in cases {
        let err = fails_in_one_line(2, args, &url);
        assert!(err.contains(says), "{args:?}: {err}");
        // Found without a database: the same with none to reach.
        assert_eq!(fails_in_one_line(2, args, &nowhere), err, "{args:?}");
    }
    assert_eq!(json_lines(&["read", "account"], &url), Vec::<Value>::new());
    assert_eq!(
        json_lines(&["read", "account-1"], &url),
        Vec::<Value>::new()
    );

    // A well-formed write to a server that cannot be reached is a failure.
    let err = fails_in_one_line(1, &["write", "account-1", "Opened", "{}"], &nowhere);
    assert!(err.starts_with("ebb: cannot write to account-1: "), "{err}");
    let err = fails_in_one_line(1, &["read", "account-1"], &nowhere);
    assert!(err.starts_with("ebb: cannot read account-1: "), "{err}");
}

/// A running `ebb tail`, killed if the test ends without stopping it.
struct Tail {
    child: Child,
    /// Its stdout, line by line, read by a thread of its own.
    lines: Receiver<String>,
    /// Its stderr, line by line, likewise.
    errors: Receiver<String>,
}

/// Sends each line `pipe` gives to a channel, from a thread of its own.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Tail {
    fn start(category: &str, database_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ebb"))
            .args(["tail", category, "--json"])
            .env("DATABASE_URL", database_url)
            .env_remove("EBB_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ebb binary runs");
        let lines = lines_of(child.stdout.take().unwrap());
        let errors = lines_of(child.stderr.take().unwrap());
        Self {
            child,
            lines,
            errors,
        }
    }

    /// Waits at most `wait` for a line on stderr that contains `needle`;
    /// the line.
    fn said(&self, needle: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        loop {
            match self
                .errors
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(err) => panic!("no {needle:?} on tail's stderr within {wait:?}: {err}"),
            }
        }
    }

    /// The next message printed, parsed, or `None` if none comes within
    /// `wait`.
    fn next(&self, wait: Duration) -> Option<Value> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                Some(serde_json::from_str(&line).unwrap_or_else(|err| panic!("{line}: {err}")))
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("tail closed its stdout: it exited"),
        }
    }

    /// Writes messages to `stream` until tail prints one: tail starts at
    /// the head it finds, so a message written before it looked is not
    /// shown. Returns the first message printed.
    fn wait_until_following(&self, stream: &str, database_url: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut n = 0;
        while Instant::now() < deadline {
            write(stream, "Probed", &format!(r#"{{"n": {n}}}"#), database_url);
            n += 1;
            if let Some(message) = self.next(Duration::from_millis(500)) {
                return message;
            }
        }
        panic!("tail printed nothing in 60 s of writes to {stream}");
    }

    /// Sends `signal` and returns the exit status and stderr, waiting
    /// at most 20 s.
    fn stop(mut self, signal: libc::c_int) -> (std::process::ExitStatus, String) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill has no memory effects; the pid is our child's,
        // which has not been waited for, so it is not reused.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The rest of stderr: its thread ends at the pipe's end.
                let stderr: Vec<String> = self.errors.iter().collect();
                let mut stderr = stderr.join("\n");
                if !stderr.is_empty() {
                    stderr.push('\n');
                }
                return (status, stderr);
            }
            assert!(
                Instant::now() < deadline,
                "tail did not exit on signal {signal}"
            );
            // A poll: the child's exit is checked again until it comes.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tail_prints_new_messages_until_interrupted() {
    let url = store_database("ebb_cli_rw");
    write("account-0", "Before", "{}", &url);
    let before = json_lines(&["read", "account"], &url)[0]["globalPosition"]
        .as_i64()
        .unwrap();

    let tail = Tail::start("account", &url);
    let first = tail.wait_until_following("account-1", &url);
    assert_eq!(first["streamName"], json!("account-1"));
    assert_eq!(first["type"], json!("Probed"));
    assert!(first["data"]["n"].is_u64(), "{first}");
    assert!(
        first["globalPosition"].as_i64().unwrap() > before,
        "{first}"
    );

    // Of two messages written while tail waits, one to another category,
    // only the category's shows.
    write("other-1", "Elsewhere", "{}", &url);
    write("account-2", "Deposited", r#"{"amount": 5}"#, &url);
    let deadline = Instant::now() + Duration::from_secs(20);
    let deposited = loop {
        let message = tail
            .next(deadline.saturating_duration_since(Instant::now()))
            .expect("the deposit within 20 s");
        assert_ne!(message["type"], json!("Before"), "{message}");
        assert_ne!(message["type"], json!("Elsewhere"), "{message}");
        if message["type"] == json!("Deposited") {
            break message;
        }
    };
    assert_eq!(deposited["streamName"], json!("account-2"));
    assert_eq!(deposited["data"], json!({ "amount": 5 }));
    assert!(deposited["time"].is_string());

    let (status, stderr) = tail.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{status:?}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn tail_exits_0_on_sigterm_and_refuses_a_stream() {
    let url = store_database("ebb_cli_rw");
    let tail = Tail::start("account:command", &url);
    tail.wait_until_following("account:command-1", &url);
    let (status, stderr) = tail.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{status:?}: {stderr}");

    let err = fails_in_one_line(2, &["tail", "account-1"], &url);
    assert!(err.contains("tail follows a category"), "{err}");
}

#[test]
fn tail_rides_out_a_server_restart() {
    let mut cluster = ebb_localpg::Cluster::start().expect("a private cluster");
    let url = cluster.connection_string("ebb_cli_tail");
    ok(&["db", "install", "--create"], &url);
    let tail = Tail::start("account", &url);
    tail.wait_until_following("account-1", &url);

    cluster
        .stop_server(ebb_localpg::ShutdownMode::Fast)
        .expect("the server stops");
    let lost = tail.said("lost the store", Duration::from_secs(20));
    assert!(lost.starts_with("ebb: "), "{lost}");
    cluster.start_server().expect("the server starts again");
    write("account-2", "Deposited", r#"{"amount": 5}"#, &url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let message = tail
            .next(deadline.saturating_duration_since(Instant::now()))
            .expect("the deposit within 30 s of the restart");
        if message["type"] == json!("Deposited") {
            break;
        }
    }
    tail.said("answers again", Duration::from_secs(5));
    let (status, stderr) = tail.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{status:?}: {stderr}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell], "host=/nonexistent");
        assert!(script.contains("ebb"), "{shell}: {script}");
        for command in ["read", "tail", "write", "completions"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
        assert!(
            !script.contains("account-component"),
            "{shell} completes the hidden command"
        );
    }
    let out = ebb(&["completions", "tcsh"], "host=/nonexistent");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_new_command_has_help() {
    for command in ["read", "tail", "write", "completions"] {
        let help = ok(&[command, "--help"], "host=/nonexistent");
        assert!(help.starts_with(char::is_alphabetic), "{command}: {help}");
        assert!(help.contains("Usage: ebb "), "{command}: {help}");
    }
    let help = ok(&["read", "--help"], "host=/nonexistent");
    for flag in [
        "--from",
        "--limit",
        "--type",
        "--correlation",
        "--group",
        "--json",
        "[default: 1000]",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
}
