//! What the failure tests share: the instances' logs, the count of
//! events, and waiting until instances handle SIGTERM.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the log of the instances of test `name` goes (kept after the
/// test, for a look at a failure).
pub fn log_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.log"))
}

/// The events in the `account` category, or the error (the server may be
/// restarting).
pub async fn count_events(client: &tokio_postgres::Client) -> Result<usize, tokio_postgres::Error> {
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM message_store.messages WHERE stream_name LIKE 'account-%'",
            &[],
        )
        .await?
        .get(0);
    Ok(usize::try_from(count).expect("a count is not negative"))
}

/// Waits (up to 30 s) until every running instance of the binary this
/// process started catches SIGTERM (its handler installed, as
/// `/proc/PID/status` shows), so that none is stopped by a SIGTERM sent
/// before it could handle it.
pub async fn wait_until_sigterm_is_caught() {
    let waiting = Instant::now();
    loop {
        let uncaught = instances_not_catching_sigterm();
        if uncaught.is_empty() {
            return;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "instances {uncaught:?} do not catch SIGTERM after 30 s"
        );
        // Polls /proc until every instance catches SIGTERM.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The pids of this process's live children that run the binary and do
/// not catch SIGTERM yet.
fn instances_not_catching_sigterm() -> Vec<u32> {
    let me = std::process::id();
    let binary = env!("CARGO_BIN_EXE_account-component");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                return false;
            };
            let child = field(&status, "PPid:").and_then(|ppid| ppid.parse().ok()) == Some(me);
            let alive = field(&status, "State:").is_some_and(|state| !state.starts_with('Z'));
            let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline.split(|&byte| byte == 0).next() == Some(binary.as_bytes())
            });
            let caught = field(&status, "SigCgt:")
                .and_then(|mask| u64::from_str_radix(&mask, 16).ok())
                .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0);
            child && alive && ours && !caught
        })
        .collect()
}
