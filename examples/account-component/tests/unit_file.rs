//! The systemd unit beside the component: the settings the process model
//! relies on, and that systemd accepts the unit with the real binary
//! (`systemd-analyze`, from Debian's `systemd` package, must be installed:
//! `.ci/run` installs it).

use std::process::Command;

const UNIT: &str = include_str!("../account-component.service");

/// The value of `key=` in the unit, the last one set.
fn setting(key: &str) -> Option<&'static str> {
    UNIT.lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

#[test]
fn the_unit_restarts_on_failure_and_waits_for_readiness() {
    assert_eq!(setting("Type"), Some("notify"));
    assert_eq!(setting("Restart"), Some("on-failure"));
    assert!(setting("RestartSec").is_some());
    assert_eq!(setting("KillSignal"), Some("SIGTERM"));
    // Longer than the host's 30 s stop timeout, or systemd would kill a
    // component finishing its command.
    let stop: u64 = setting("TimeoutStopSec")
        .and_then(|value| value.strip_suffix('s'))
        .and_then(|secs| secs.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(stop > 30, "{stop}");
    assert!(
        setting("ExecStart").is_some_and(|exec| exec.ends_with("/account-component")),
        "{:?}",
        setting("ExecStart")
    );
}

#[test]
fn systemd_accepts_the_unit_with_the_real_binary() {
    let out = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "systemd-analyze cannot run ({err}): install it (Debian's systemd package; \
                 .ci/run does) so that the unit is checked"
            )
        });
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("account-component.service");
    let binary = env!("CARGO_BIN_EXE_account-component");
    let text: String = UNIT
        .lines()
        .map(|line| match line.strip_prefix("ExecStart=") {
            Some(_) => format!("ExecStart={binary}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        // Outside a booted systemd (a container, CI) it may add notes
        // about the manager itself; only lines about the unit count.
        .filter(|line| line.contains("account-component.service"))
        .collect();
    assert!(out.status.success() && complaints.is_empty(), "{stderr}");
}
