//! `ebb dashboard`: the web dashboard ([`ebb_dashboard`]) on an address of
//! its own, until interrupted.

use std::net::SocketAddr;

use ebb_dashboard::Options;

use super::tail::Shutdown;
use super::{CliError, one_line, store};

/// Where `ebb dashboard` listens and what it allows.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Open http://ADDR/ in a browser. The pages: / (categories with their \
message counts and write rates, consumers with their lag; live), \
/streams?q=account-* (find streams and categories by name; * stands for \
any text), /streams/NAME (a stream's or a category's messages, newest \
first, live, or from a position), /consumers (every consumer's position, \
lag in messages and time, failures, parked; live), /parked (parked \
messages by consumer; replay or discard one, a selection, or all that \
match a filter, after a confirmation), /trace/ID (what followed a \
message). Counts on a large store are estimates and marked ~.

The dashboard listens on loopback unless --listen says otherwise. A \
non-loopback address needs a token in EBB_DASHBOARD_TOKEN, or the command \
refuses to start (exit status 2); with a token, every request needs it: \
open the dashboard once with ?token=TOKEN (which sets a cookie), or send \
Authorization: Bearer TOKEN. Actions are logged (EBB_LOG=info shows \
them). The database comes from DATABASE_URL (or the PG* variables).")]
pub struct DashboardArgs {
    /// The address to listen on (a non-loopback one needs
    /// EBB_DASHBOARD_TOKEN).
    #[arg(long, value_name = "ADDR", default_value = ebb_dashboard::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Hide every action (replay, discard) and refuse any action request.
    #[arg(long)]
    read_only: bool,
}

pub async fn run(args: DashboardArgs) -> Result<(), CliError> {
    let options = Options {
        read_only: args.read_only,
        ..Options::from_env()
    };
    // A refusal is a usage error before the settings are read.
    ebb_dashboard::check_listen(args.listen, &options)
        .map_err(|err| CliError::Usage(one_line(&err)))?;
    let mut shutdown = Shutdown::listen()?;
    let store = store()?;
    let mode = if args.read_only { " (read-only)" } else { "" };
    eprintln!(
        "ebb dashboard: http://{}/{mode}; Ctrl-C to stop",
        args.listen
    );
    ebb_dashboard::serve(store, options, args.listen, async move {
        shutdown.requested().await;
    })
    .await
    .map_err(|err| {
        if err.is_usage() {
            CliError::Usage(one_line(&err))
        } else {
            CliError::Other(one_line(&err))
        }
    })
}
