//! The subscriber `logging::init` installs, as a component's stderr shows
//! it. A global subscriber is the whole process's, so each case runs in
//! a child process: this test binary again, running only
//! `child_process`, with the environment the case sets.

use std::process::Command;

/// The variable that makes `child_process` a child, and says which.
const ROLE: &str = "EBB_LOGGING_ROLE";

/// In a child: calls `init` as `role` says, then logs an info and a debug
/// event. Elsewhere: nothing.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    match role.as_str() {
        "init" => {
            assert!(ebb_consumer::logging::init(), "the first call installs");
            assert!(!ebb_consumer::logging::init(), "a second is harmless");
        }
        "taken" => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .without_time()
                .init();
            assert!(!ebb_consumer::logging::init(), "the process's own stays");
        }
        other => panic!("unknown role {other}"),
    }
    tracing::info!(answer = 42, "deposit applied");
    tracing::debug!("cache warmed");
}

/// Runs `child_process` as a child in `role`, with `vars` set (and no
/// other of the variables `init` reads); its stderr.
fn stderr_of(role: &str, vars: &[(&str, &str)]) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role);
    for name in ["RUST_LOG", "EBB_LOG_FORMAT", "NO_COLOR"] {
        child.env_remove(name);
    }
    child.envs(vars.iter().copied());
    let output = child.output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "the child failed: {}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

#[test]
fn plain_text_at_info_without_colour_on_a_pipe() {
    let stderr = stderr_of("init", &[]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("INFO") && lines[0].contains("deposit applied answer=42"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "no escape codes: {stderr:?}");
}

#[test]
fn rust_log_filters() {
    let stderr = stderr_of("init", &[("RUST_LOG", "debug")]);
    assert!(stderr.contains("cache warmed"), "{stderr}");
    let stderr = stderr_of("init", &[("RUST_LOG", "warn")]);
    assert_eq!(stderr, "", "info and debug filtered out");
}

#[test]
fn json_lines_when_asked() {
    let stderr = stderr_of("init", &[("EBB_LOG_FORMAT", "json")]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON object");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["fields"]["message"], "deposit applied");
    assert_eq!(event["fields"]["answer"], 42);
}

#[test]
fn an_unknown_format_is_plain_text_after_a_warning() {
    let stderr = stderr_of("init", &[("EBB_LOG_FORMAT", "yaml")]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].contains("WARN")
            && lines[0].contains(r#"EBB_LOG_FORMAT="yaml" is not plain or json"#),
        "{stderr}"
    );
    assert!(lines[1].contains("deposit applied answer=42"), "{stderr}");
}

#[test]
fn a_subscriber_of_the_process_is_left_in_place() {
    let stderr = stderr_of("taken", &[("EBB_LOG_FORMAT", "json")]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        !lines[0].starts_with('{') && lines[0].contains("deposit applied"),
        "the process's own format, not JSON: {stderr}"
    );
}
