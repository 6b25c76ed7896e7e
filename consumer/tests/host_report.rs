//! What a host that ends with an error says on stderr. Whether a tracing
//! subscriber is installed is the whole process's business, so each case
//! runs in a child process: this test binary again, running only
//! `child_process`, told its role by an environment variable.

use std::process::Command;

use ebb_consumer::{Host, Task};
use ebb_handler::BoxError;

/// The variable that makes `child_process` a child, and says which.
const ROLE: &str = "EBB_HOST_REPORT_ROLE";

/// The line the host writes for the failing task when no subscriber
/// takes its event.
const LINE: &str = "error: task boom failed: disk on fire";

/// In a child: installs the subscriber `role` names, if any, and runs a
/// host whose one task fails. Elsewhere: nothing.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let plain = || {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
    };
    match role.as_str() {
        "none" => {}
        "subscriber" => plain().init(),
        "subscriber-off" => plain()
            .with_max_level(tracing::level_filters::LevelFilter::OFF)
            .init(),
        other => panic!("unknown role {other}"),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ended = runtime.block_on(
        Host::new()
            .task(Task::once("boom", || async {
                Err(BoxError::from("disk on fire"))
            }))
            .run(),
    );
    assert!(ended.is_err());
}

/// Runs `child_process` as a child in `role`; its stderr.
fn stderr_of(role: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "the child failed: {}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

#[test]
fn without_a_subscriber_the_error_is_one_line_on_stderr() {
    let stderr = stderr_of("none");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines, [LINE], "{stderr}");
}

#[test]
fn with_a_subscriber_the_error_is_its_event_and_not_a_second_line() {
    let stderr = stderr_of("subscriber");
    let ended = stderr
        .lines()
        .find(|line| line.contains("component stopped by an error"))
        .unwrap_or_else(|| panic!("no event: {stderr}"));
    assert!(ended.contains("ERROR"), "{ended}");
    assert!(
        ended.contains("error=task boom failed: disk on fire"),
        "{ended}"
    );
    assert!(!stderr.lines().any(|line| line == LINE), "{stderr}");
}

#[test]
fn with_a_subscriber_that_drops_errors_the_line_is_written_all_the_same() {
    let stderr = stderr_of("subscriber-off");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines, [LINE], "{stderr}");
}
