//! `account-component`: see the crate documentation (`cargo doc -p
//! account-component --open`) for its commands, events and settings.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    account_component::run().await
}
