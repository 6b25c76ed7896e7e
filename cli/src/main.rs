//! The `ebb` command-line tool.
//!
//! ```text
//! ebb db install [--create]   install or upgrade the message store schema
//! ebb db version              print the installed version
//! ebb demo                    the account component under failure, on a private cluster
//! ebb read NAME               print a stream's or a category's messages
//! ebb tail CATEGORY           print a category's new messages until interrupted
//! ebb write STREAM TYPE DATA  write one message
//! ebb consumers [CATEGORY]    list consumers: position, head, lag, failures, parked
//! ebb stats [--by KIND]       count messages by category, type or stream
//! ebb trace ID                print what followed a message, or a correlation, as a tree
//! ebb failures CATEGORY       list the failures that stopped a category's consumers
//! ebb parked list CATEGORY    list the messages a category's consumers parked
//! ebb parked show CATEGORY N  print the parked message at global position N
//! ebb parked replay CATEGORY N  ask its consumer to deliver it again (discard: drop it)
//! ebb dashboard [--listen ADDR] [--read-only]  serve the web dashboard (127.0.0.1:8460)
//! ebb completions SHELL       print a completion script (bash, zsh, fish, ...)
//! ```
//!
//! The database comes from `DATABASE_URL`, or else from the libpq
//! variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`).
//! Errors are one line on standard error and a non-zero exit status: 2 for
//! a usage error (clap's, or a malformed name or JSON found before the
//! database is touched), 1 for a failure.

// A command-line tool talks to its user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if args.is_account_component() {
        // The component sets up its own log, on the runtime its binary uses.
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(account_component::run()),
            Err(err) => {
                eprintln!("ebb: cannot start the async runtime: {err}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EBB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ebb: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ebb: {}", cli::one_line(&err));
            ExitCode::from(err.exit_code())
        }
    }
}
