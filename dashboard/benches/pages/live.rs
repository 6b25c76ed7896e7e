//! What the database sees while live pages are open: the statements the
//! dashboard runs (`pg_stat_statements`, reset at the start of the
//! window) and the transactions committed in its database
//! (`pg_stat_database.xact_commit`), with one and with many copies of
//! the overview and the consumers page open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ebb_bench::{BoxError, progress};

use crate::cases::ms;
use crate::http::Events;

/// The live endpoints held open: the overview's and the consumers
/// page's.
pub(crate) const LIVE_PATHS: [&str; 2] = ["/live/overview", "/live/consumers"];

/// What one window of open live pages cost the database.
#[derive(Debug)]
pub(crate) struct Load {
    /// The pages open, of each kind.
    pub(crate) pages: usize,
    pub(crate) window: Duration,
    /// Statements the database ran for the dashboard in the window.
    pub(crate) statements: i64,
    /// Transactions committed in the store's database between two reads
    /// of its statistics, `commit_span` apart.
    pub(crate) commits: i64,
    /// The time between those two reads: the window and the wait for the
    /// statistics to be flushed.
    pub(crate) commit_span: Duration,
    /// Events the pages received, all together.
    pub(crate) events: u64,
    /// The statements by calls, most first: (calls, the start of its
    /// text).
    pub(crate) by_statement: Vec<(i64, String)>,
    /// For each of [`LIVE_PATHS`], from asking to the first event.
    pub(crate) first_event: Vec<Duration>,
}

impl Load {
    pub(crate) fn per_second(&self, count: i64) -> f64 {
        count as f64 / self.window.as_secs_f64()
    }
}

/// Opens `pages` copies of each live page, lets them settle for a
/// refresh interval, then counts for `window`.
pub(crate) async fn measure(
    address: SocketAddr,
    client: &tokio_postgres::Client,
    pages: usize,
    window: Duration,
) -> Result<Load, BoxError> {
    let events = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    let mut first_event = Vec::new();
    for path in LIVE_PATHS {
        for copy in 0..pages {
            let mut stream = Events::open(address, path).await?;
            if copy == 0 {
                if !stream.next().await? {
                    return Err(format!("{path} ended before its first event").into());
                }
                first_event.push(stream.opened.elapsed());
            }
            let events = Arc::clone(&events);
            readers.push(tokio::spawn(async move {
                while let Ok(true) = stream.next().await {
                    events.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    // The refreshers' first runs, which any newly opened page may start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    client
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await?;
    let commits_before = commits(client).await?;
    let events_before = events.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let window = started.elapsed();
    let events = events.load(Ordering::Relaxed) - events_before;
    let rows = client
        .query(
            "SELECT calls, regexp_replace(left(query, 70), '\\s+', ' ', 'g')
             FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%pg_stat%'
             ORDER BY calls DESC",
            &[],
        )
        .await?;
    // Backends flush their statistics at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let commits = commits(client).await? - commits_before;
    let commit_span = started.elapsed();
    for reader in &readers {
        reader.abort();
    }
    let by_statement: Vec<(i64, String)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let load = Load {
        pages,
        window,
        statements: by_statement.iter().map(|(calls, _)| calls).sum(),
        commits,
        commit_span,
        events,
        by_statement,
        first_event,
    };
    progress(format!(
        "{pages} of each live page open for {:.1} s: {} statements ({:.1}/s), {} commits \
         in {:.1} s, {} events; first events after {}",
        window.as_secs_f64(),
        load.statements,
        load.per_second(load.statements),
        load.commits,
        load.commit_span.as_secs_f64(),
        load.events,
        load.first_event
            .iter()
            .map(|first| format!("{:.1} ms", ms(*first)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(load)
}

/// The transactions committed in the database so far, as the statistics
/// have them.
async fn commits(client: &tokio_postgres::Client) -> Result<i64, BoxError> {
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await?;
    Ok(client
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?
        .get(0))
}
