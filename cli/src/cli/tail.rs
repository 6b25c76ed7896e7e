//! `ebb tail`: a category's new messages as they are written, until
//! interrupted.

use std::time::Duration;

use ebb_message_store::{CategoryQuery, MessageStore as _, PgStore, StreamName};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::output::{Printed, Printer};
use super::{CliError, store};

/// How long `tail` waits for a wake-up before it reads again anyway: the
/// wake-up is what makes it prompt, this only bounds a lost one.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What `ebb tail` follows and how it prints it.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// The category to follow (`account`, `account:command`).
    category: String,
    /// One JSON object per line (id, streamName, type, position,
    /// globalPosition, data, metadata, time) instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: TailArgs) -> Result<(), CliError> {
    let category = StreamName::category_name(&args.category)
        .map_err(|err| CliError::Usage(format!("tail follows a category: {err}")))?
        .into_string();
    // Listening before anything else: an interrupt from then on ends the
    // command with status 0 instead of killing it.
    let mut shutdown = Shutdown::listen()?;
    let store = store()?;
    let mut printer = Printer::new(args.json);
    tokio::select! {
        result = follow(&store, &category, &mut printer) => result,
        () = shutdown.requested() => Ok(()),
    }
}

/// How long `tail` waits before reading again after the store was out of
/// reach: growing from the first to the last, then the last each time.
const RECONNECT_MS: [u64; 5] = [100, 500, 1_000, 2_000, 5_000];

/// Prints the messages written to `category` from its head on, waking at
/// each write (or each [`POLL_INTERVAL`]); returns only on an error or
/// when stdout's reader is gone. A store out of reach (a lost connection,
/// a server restarting) is said once on stderr and read again until it
/// answers, as `tail -F` does; any other error ends the command.
async fn follow(store: &PgStore, category: &str, printer: &mut Printer) -> Result<(), CliError> {
    let failed = |source| CliError::Store {
        action: format!("cannot read {category}"),
        source,
    };
    let head = store.category_head(category).await.map_err(failed)?;
    let mut query = CategoryQuery::new().position(head.map_or(1, |head| head + 1));
    let mut caught_up = false;
    // The failed reads in a row while the store is out of reach.
    let mut lost = 0;
    loop {
        // Armed before the read: a write committed between a read that
        // found nothing and the arming would otherwise wait for the poll.
        let wakeup = if caught_up {
            Some(store.arm_wakeup(category).await)
        } else {
            None
        };
        let batch = match store.get_category_messages(category, &query).await {
            Ok(batch) => batch,
            Err(err) if err.is_transient() => {
                if lost == 0 {
                    eprintln!(
                        "ebb: lost the store while following {category}: {}; reading again until it answers",
                        ebb_retry::Chain::new(&err)
                    );
                }
                let wait = RECONNECT_MS[lost.min(RECONNECT_MS.len() - 1)];
                lost += 1;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                continue;
            }
            Err(err) => return Err(failed(err)),
        };
        if lost > 0 {
            eprintln!("ebb: the store answers again; following {category}");
            lost = 0;
        }
        let Some(last) = batch.last() else {
            if let Some(wakeup) = wakeup {
                // Timing out is the poll; either way, read again.
                let _ = tokio::time::timeout(POLL_INTERVAL, wakeup).await;
            }
            caught_up = true;
            continue;
        };
        caught_up = false;
        query.position = last.global_position + 1;
        if printer.print(&batch)? == Printed::ReaderGone {
            return Ok(());
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, which end `tail` normally.
#[derive(Debug)]
pub(super) struct Shutdown {
    /// SIGINT: Ctrl-C at the terminal.
    interrupt: Signal,
    /// SIGTERM: how a supervisor or `kill` asks a process to stop.
    terminate: Signal,
}

impl Shutdown {
    /// Starts listening for both signals; from now on they no longer kill
    /// the process.
    pub(super) fn listen() -> Result<Self, CliError> {
        let listen = |kind| {
            signal(kind).map_err(|err| CliError::Other(format!("cannot listen for signals: {err}")))
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    /// Completes at the first of the two signals.
    pub(super) async fn requested(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
