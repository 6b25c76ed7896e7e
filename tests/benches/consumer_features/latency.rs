//! Write-to-handle latency of single messages, with the consumer woken by
//! NOTIFY and with polling only, when the category is idle and when it is
//! busy; and the reads each costs the server.
//!
//! Each pass has a category of its own, a `PgStore` of its own at its
//! defaults, and a consumer that has caught up (the category is empty)
//! before the first write. The writer runs on a thread of its own, with a
//! store of its own, as another process would: it notes the time just
//! before each write and just after the write is acknowledged, and the
//! handler notes the time it starts on the message. The latency is from
//! the write's acknowledgement to the handler's start: the time from just
//! before the write with the write's own round trip subtracted. The commit
//! precedes the acknowledgement by the reply's trip over the local socket,
//! so the figures understate the time from the commit by that much (tens of
//! microseconds).
//!
//! - **idle**: `idle_messages` writes, each `busy_category_window` + 250 ms
//!   after the one before, so that the category is out of its busy window
//!   and armed again each time: a notification carries every write.
//! - **busy**: `messages` writes at a steady `rate` per second, inside the
//!   busy window after the first: the store polls the category every
//!   `busy_category_poll` instead of arming it.
//!
//! The server's reads are counted by `pg_stat_statements` (reset at the
//! first write): the calls of the category read (the direct read or the
//! function) over the pass, per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_bench::{BoxError, Report, Row, measure, percentile, progress};
use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{Dispatcher, Received, Writer, message};
use ebb_localpg::Cluster;
use ebb_message_store::{ExpectedVersion, PgStore, PgStoreConfig, StreamName};
use ebb_tests::connect_to;

use crate::{Settings, create_database};

const DATABASE: &str = "latency";

/// Idle NOTIFY's p50 must be at most this many milliseconds…
const P50_LIMIT_MS: f64 = 5.0;
/// …and idle polling's p50 at least this many times idle NOTIFY's.
const RATIO_REQUIRED: f64 = 10.0;
/// How much later than the busy window an idle write comes.
const IDLE_MARGIN: Duration = Duration::from_millis(250);

#[message]
struct Ping {
    n: usize,
}

/// The four sides: NOTIFY or polling, idle or busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Side {
    notify: bool,
    busy: bool,
}

impl Side {
    const ALL: [Side; 4] = [
        Side {
            notify: true,
            busy: false,
        },
        Side {
            notify: false,
            busy: false,
        },
        Side {
            notify: true,
            busy: true,
        },
        Side {
            notify: false,
            busy: true,
        },
    ];

    fn name(self) -> &'static str {
        match (self.notify, self.busy) {
            (true, false) => "idle, NOTIFY",
            (false, false) => "idle, polling",
            (true, true) => "busy, NOTIFY",
            (false, true) => "busy, polling",
        }
    }
}

/// What a side measured over all its passes.
#[derive(Debug, Default, Clone)]
struct Figures {
    /// Every latency, in milliseconds.
    samples: Vec<f64>,
    /// The category reads per second of each pass.
    reads_per_second: Vec<f64>,
    /// Every statement per second of each pass, the writer's included.
    statements_per_second: Vec<f64>,
    /// Every write's own round trip, in milliseconds.
    writes: Vec<f64>,
}

/// Runs the latency part and adds its rows to `report`.
pub(crate) async fn run(
    cluster: &Cluster,
    settings: &Settings,
    report: &mut Report,
) -> Result<(), BoxError> {
    create_database(cluster, DATABASE, None).await?;
    let admin = connect_to(&cluster.config(DATABASE)).await?;
    admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await?;
    let defaults = PgStoreConfig::new(cluster.config(DATABASE));
    let mut figures = vec![Figures::default(); Side::ALL.len()];
    let mut pass = 0;
    for round in 0..settings.rounds {
        for index in measure::order(round, Side::ALL.len()) {
            let side = Side::ALL[index];
            pass += 1;
            let measured = one_pass(cluster, &admin, settings, side, pass).await?;
            progress(format!(
                "latency: round {}, {}: p50 {:.2} ms, p99 {:.2} ms, {:.0} reads/s",
                round + 1,
                side.name(),
                percentile(&measured.samples, 50.0),
                percentile(&measured.samples, 99.0),
                measured.reads_per_second[0],
            ));
            let figures = &mut figures[index];
            figures.samples.extend(measured.samples);
            figures.reads_per_second.extend(measured.reads_per_second);
            figures
                .statements_per_second
                .extend(measured.statements_per_second);
            figures.writes.extend(measured.writes);
        }
    }
    let of = |side: Side| {
        &figures[Side::ALL
            .iter()
            .position(|s| *s == side)
            .expect("one of the sides")]
    };
    let p = |side: Side, p: f64| percentile(&of(side).samples, p);
    let [idle_notify, idle_polling, busy_notify, busy_polling] = Side::ALL;
    report.row(
        Row::time(
            "wake-up latency, idle, NOTIFY (the default), p50",
            "ms",
            p(idle_notify, 50.0),
        )
        .limit(P50_LIMIT_MS)
        .durable(false),
    );
    report.row(
        Row::time(
            "wake-up latency, idle, NOTIFY, p50, against 100 ms polling",
            "ms",
            p(idle_notify, 50.0),
        )
        .against("polling only, p50", p(idle_polling, 50.0))
        .required(RATIO_REQUIRED)
        .durable(false),
    );
    report.row(
        Row::time(
            "wake-up latency, idle, NOTIFY, p99",
            "ms",
            p(idle_notify, 99.0),
        )
        .against("polling only, p99", p(idle_polling, 99.0))
        .durable(false),
    );
    report.row(
        Row::time(
            "wake-up latency, busy (busy-window poll), p50",
            "ms",
            p(busy_notify, 50.0),
        )
        .against("polling only, p50", p(busy_polling, 50.0))
        .durable(false),
    );
    report.row(
        Row::time(
            "wake-up latency, busy (busy-window poll), p99",
            "ms",
            p(busy_notify, 99.0),
        )
        .against("polling only, p99", p(busy_polling, 99.0))
        .durable(false),
    );
    report.row(
        Row::time(
            "category reads per second, idle, NOTIFY",
            "reads/s",
            ebb_bench::median(of(idle_notify).reads_per_second.iter().copied()),
        )
        .against(
            "polling only",
            ebb_bench::median(of(idle_polling).reads_per_second.iter().copied()),
        )
        .durable(false),
    );
    report.row(
        Row::time(
            "category reads per second, busy, NOTIFY",
            "reads/s",
            ebb_bench::median(of(busy_notify).reads_per_second.iter().copied()),
        )
        .against(
            "polling only",
            ebb_bench::median(of(busy_polling).reads_per_second.iter().copied()),
        )
        .durable(false),
    );
    report.note(format!(
        "latency: from the write's acknowledgement to the handler's start (the clock starts \
         before the write and the write's own round trip is subtracted); idle: {} writes per pass, \
         {} ms apart (the busy window, {} ms, + {} ms), so a notification carries each; busy: {} \
         writes per pass at {}/s; percentiles of all the samples of a side ({} and {}); reads/s: \
         pg_stat_statements' calls of the category read over the pass, median of the passes",
        settings.idle_messages,
        (defaults.busy_category_window + IDLE_MARGIN).as_millis(),
        defaults.busy_category_window.as_millis(),
        IDLE_MARGIN.as_millis(),
        settings.messages,
        settings.rate,
        of(idle_notify).samples.len(),
        of(busy_notify).samples.len(),
    ));
    for side in Side::ALL {
        let figures = of(side);
        report.note(format!(
            "- {}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} category reads/s, {:.0} \
             statements/s in all (the writer's included); the write's own round trip, \
             subtracted: p50 {:.2} ms",
            side.name(),
            p(side, 50.0),
            p(side, 99.0),
            p(side, 100.0),
            ebb_bench::median(figures.reads_per_second.iter().copied()),
            ebb_bench::median(figures.statements_per_second.iter().copied()),
            percentile(&figures.writes, 50.0),
        ));
    }
    Ok(())
}

/// The writer's notes of one write: just before it, and at its
/// acknowledgement.
#[derive(Debug, Clone, Copy)]
struct Written {
    before: Instant,
    acknowledged: Instant,
}

/// One pass of `side`: its latencies in milliseconds, and its reads.
async fn one_pass(
    cluster: &Cluster,
    admin: &tokio_postgres::Client,
    settings: &Settings,
    side: Side,
    pass: usize,
) -> Result<Figures, BoxError> {
    let category = format!("ping{pass}");
    let config = PgStoreConfig::new(cluster.config(DATABASE));
    let (messages, interval) = if side.busy {
        (
            settings.messages,
            Duration::from_secs_f64(1.0 / settings.rate as f64),
        )
    } else {
        (
            settings.idle_messages,
            config.busy_category_window + IDLE_MARGIN,
        )
    };
    let store = PgStore::new(config)?;
    let handled: Arc<Mutex<Vec<(usize, Instant)>>> =
        Arc::new(Mutex::new(Vec::with_capacity(messages)));
    let recorded = Arc::clone(&handled);
    let consumer = Consumer::new(
        ConsumerConfig {
            wake_on_notify: side.notify,
            ..ConsumerConfig::new(category.clone())
        },
        store.clone(),
    )?
    .handler(Dispatcher::new().on(move |ping: Received<Ping>| {
        let now = Instant::now();
        recorded
            .lock()
            .expect("not poisoned")
            .push((ping.data().n, now));
        async { Ok::<_, ebb_handler::BoxError>(()) }
    }));
    let control = Control::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let writer_config = cluster.config(DATABASE);
    let run = {
        let control = control.clone();
        let handled = Arc::clone(&handled);
        async move {
            started_rx.await.map_err(|_| "the consumer did not start")?;
            // The consumer's first read of the empty category, and in the
            // NOTIFY modes its arming, done before the first write.
            tokio::time::sleep(Duration::from_millis(300)).await;
            admin
                .batch_execute("SELECT pg_stat_statements_reset()")
                .await?;
            let first = Instant::now();
            let category = category.clone();
            let writes = tokio::task::spawn_blocking(move || {
                write_at_intervals(writer_config, &category, messages, interval)
            });
            let written = writes.await??;
            // The last ones are handled within a poll interval or two.
            let deadline = Instant::now() + Duration::from_secs(5);
            while handled.lock().expect("not poisoned").len() < messages {
                if Instant::now() > deadline {
                    control.stop();
                    return Err::<_, BoxError>("not every message was handled".into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let seconds = first.elapsed().as_secs_f64();
            let row = admin
                .query_one(
                    "SELECT coalesce(sum(calls) FILTER \
                       (WHERE query LIKE '%get_category_messages%'), 0)::bigint, \
                     coalesce(sum(calls), 0)::bigint \
                     FROM pg_stat_statements \
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND query NOT LIKE '%pg_stat_statements%'",
                    &[],
                )
                .await?;
            control.stop();
            let (reads, statements): (i64, i64) = (row.get(0), row.get(1));
            Ok((written, reads as f64 / seconds, statements as f64 / seconds))
        }
    };
    let (consumed, measured) = tokio::join!(
        consumer.run_with(&control, move || {
            let _ = started_tx.send(());
        }),
        run
    );
    consumed?;
    let (written, reads_per_second, statements_per_second) = measured?;
    let handled = std::mem::take(&mut *handled.lock().expect("not poisoned"));
    let millis = |duration: Duration| duration.as_secs_f64() * 1e3;
    let mut samples = Vec::with_capacity(messages);
    for (n, at) in handled {
        let write: &Written = written.get(n).ok_or("a message the writer did not write")?;
        // From before the write, less the write's own round trip.
        samples.push(
            millis(at.saturating_duration_since(write.before))
                - millis(write.acknowledged - write.before),
        );
    }
    Ok(Figures {
        samples,
        reads_per_second: vec![reads_per_second],
        statements_per_second: vec![statements_per_second],
        writes: written
            .iter()
            .map(|write| millis(write.acknowledged - write.before))
            .collect(),
    })
}

/// The writer: on this (blocking) thread, a runtime and a store of its
/// own, `messages` writes `interval` apart; the notes of each.
fn write_at_intervals(
    config: tokio_postgres::Config,
    category: &str,
    messages: usize,
    interval: Duration,
) -> Result<Vec<Written>, BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let writer = Writer::new(PgStore::new(PgStoreConfig::new(config))?);
        // Connect and prepare before the first timed write.
        let warm = StreamName::new(&format!("{category}Warmup"), "0")?;
        writer
            .write(&warm, Ping { n: usize::MAX }, ExpectedVersion::Any)
            .await?;
        let mut every = tokio::time::interval(interval);
        let mut written = Vec::with_capacity(messages);
        for n in 0..messages {
            every.tick().await;
            let stream = StreamName::new(category, &(n % 10).to_string())?;
            let before = Instant::now();
            writer
                .write(&stream, Ping { n }, ExpectedVersion::Any)
                .await?;
            written.push(Written {
                before,
                acknowledged: Instant::now(),
            });
        }
        Ok(written)
    })
}
