//! `http-scheduler`: run with `DATABASE_URL=... cargo run -p http-scheduler`;
//! see the crate documentation (`cargo doc -p http-scheduler --open`) for
//! its API, messages and settings.

use std::process::ExitCode;

#[tokio::main(worker_threads = 2)]
async fn main() -> ExitCode {
    http_scheduler::run().await
}
