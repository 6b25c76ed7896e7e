//! Write-to-handle latency of single messages at a steady rate, with the
//! consumer woken by NOTIFY and with polling only.
//!
//! Each pass has a category of its own and a consumer that is caught up
//! (the category is empty) before the first write. The writer, in the
//! same process, notes the time just before each write in the message
//! (`sentAtMicros`, microseconds since the epoch) and the handler
//! subtracts it from the time it is given the message: the write's round
//! trip and commit, the wake-up and the read.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, Writer, message};
use ebb_localpg::Cluster;
use ebb_message_store::{ExpectedVersion, PgStore, PgStoreConfig, StreamName};

use crate::{Settings, create_database, progress};

const DATABASE: &str = "latency";

/// NOTIFY's p50 must be at most this many milliseconds…
const P50_LIMIT_MS: f64 = 5.0;
/// …and polling's p50 at least this many times NOTIFY's.
const RATIO_REQUIRED: f64 = 10.0;

#[message]
struct Ping {
    sent_at_micros: i64,
}

fn now_micros() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// Every sample of both sides, in milliseconds.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    notify: Vec<f64>,
    polling: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

impl Figures {
    /// Prints the figures; true when the requirements are met.
    pub(crate) fn print(&self, settings: &Settings) -> bool {
        let mut notify = self.notify.clone();
        let mut polling = self.polling.clone();
        notify.sort_by(f64::total_cmp);
        polling.sort_by(f64::total_cmp);
        let (n50, n99) = (percentile(&notify, 0.5), percentile(&notify, 0.99));
        let (p50, p99) = (percentile(&polling, 0.5), percentile(&polling, 0.99));
        let ratio = p50 / n50;
        let pass = n50 <= P50_LIMIT_MS && ratio >= RATIO_REQUIRED;
        println!(
            "latency: single messages at {}/s, {} per pass, {} rounds; write to handler",
            settings.rate, settings.messages, settings.rounds
        );
        println!(
            "  NOTIFY:          p50 {n50:>7.2} ms  p99 {n99:>7.2} ms ({} samples)",
            notify.len()
        );
        println!(
            "  polling (100 ms): p50 {p50:>7.2} ms  p99 {p99:>7.2} ms ({} samples)",
            polling.len()
        );
        println!(
            "  NOTIFY p50 <= {P50_LIMIT_MS} ms and polling/NOTIFY p50 {ratio:.1}x (required >= {RATIO_REQUIRED}x): {}",
            if pass { "PASS" } else { "FAIL" }
        );
        pass
    }
}

pub(crate) async fn run(cluster: &Cluster, settings: &Settings) -> Result<Figures, BoxError> {
    create_database(cluster, DATABASE, None).await?;
    let store = PgStore::new(PgStoreConfig::new(cluster.config(DATABASE)))?;
    let mut figures = Figures::default();
    let mut pass = 0;
    for round in 0..settings.rounds {
        let sides = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for notify in sides {
            pass += 1;
            let samples = one_pass(&store, settings, notify, pass).await?;
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            progress(format!(
                "latency: round {}, {}: p50 {:.2} ms, p99 {:.2} ms",
                round + 1,
                if notify { "NOTIFY" } else { "polling" },
                percentile(&sorted, 0.5),
                percentile(&sorted, 0.99)
            ));
            if notify {
                figures.notify.extend(samples);
            } else {
                figures.polling.extend(samples);
            }
        }
    }
    Ok(figures)
}

/// One pass: a consumer of a new category, caught up, and a writer at the
/// steady rate; the latencies in milliseconds.
async fn one_pass(
    store: &PgStore,
    settings: &Settings,
    notify: bool,
    pass: usize,
) -> Result<Vec<f64>, BoxError> {
    let category = format!("ping{pass}");
    let samples = Arc::new(Mutex::new(Vec::with_capacity(settings.messages)));
    let recorded = Arc::clone(&samples);
    let consumer = Consumer::new(
        ConsumerConfig {
            wake_on_notify: notify,
            ..ConsumerConfig::new(category.clone())
        },
        store.clone(),
    )?
    .handler(Dispatcher::new().on(move |ping: Received<Ping>| {
        let latency = (now_micros() - ping.sent_at_micros) as f64 / 1_000.0;
        recorded.lock().expect("not poisoned").push(latency);
        async { Ok::<_, BoxError>(()) }
    }));
    let control = Control::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let writer = Writer::new(store.clone());
    let messages = settings.messages;
    let period = Duration::from_secs_f64(1.0 / settings.rate as f64);
    let write = {
        let control = control.clone();
        let samples = Arc::clone(&samples);
        async move {
            started_rx.await.map_err(|_| "the consumer did not start")?;
            // Caught up: its first read of the empty category is done.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut every = tokio::time::interval(period);
            for n in 0..messages {
                every.tick().await;
                let stream = StreamName::new(&category, &(n % 10).to_string())?;
                let ping = Ping {
                    sent_at_micros: now_micros(),
                };
                writer.write(&stream, ping, ExpectedVersion::Any).await?;
            }
            // The last ones are handled within a poll interval or two.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while samples.lock().expect("not poisoned").len() < messages {
                if tokio::time::Instant::now() > deadline {
                    control.stop();
                    return Err::<(), BoxError>("not every message was handled".into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            control.stop();
            Ok(())
        }
    };
    let (consumed, written) = tokio::join!(
        consumer.run_with(&control, move || {
            let _ = started_tx.send(());
        }),
        write
    );
    consumed?;
    written?;
    let samples = std::mem::take(&mut *samples.lock().expect("not poisoned"));
    Ok(samples)
}
