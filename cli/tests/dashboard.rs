//! `ebb dashboard`: its refusal to listen beyond loopback without a
//! token, said before the database is touched.

use std::process::Command;

#[test]
fn a_non_loopback_address_without_a_token_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["dashboard", "--listen", "0.0.0.0:0"])
        // No database is reached for: the refusal comes first.
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env_remove("EBB_DASHBOARD_TOKEN")
        .output()
        .expect("the ebb binary runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ebb: refusing to listen on 0.0.0.0:0"),
        "{err}"
    );
    assert!(err.contains("EBB_DASHBOARD_TOKEN"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn its_help_says_what_it_serves_and_how_it_is_protected() {
    let out = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["dashboard", "--help"])
        .output()
        .expect("the ebb binary runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "--listen <ADDR>",
        "127.0.0.1:8460",
        "--read-only",
        "EBB_DASHBOARD_TOKEN",
        "/parked",
    ] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
}
