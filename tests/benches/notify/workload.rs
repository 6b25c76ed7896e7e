//! One pass: the writers, and in the modes with notifications the
//! consumers that make them fire.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, StreamName,
};
use serde_json::json;

use crate::BoxError;
use crate::settings::Settings;

/// The trigger the "off" passes disable.
pub(crate) const TRIGGER: &str = "messages_wake_category_waiters";

/// Where the writers write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// Each writer in a category of its own (`bench0`, `bench1`, ...).
    CategoryEach,
    /// Every writer in the one category `bench`.
    OneCategory,
}

impl Case {
    pub(crate) const ALL: [Case; 2] = [Case::CategoryEach, Case::OneCategory];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CategoryEach => "8 writers, a category each",
            Self::OneCategory => "8 writers, one category",
        }
    }

    /// The category writer `writer` writes to.
    fn category(self, writer: usize) -> String {
        match self {
            Self::CategoryEach => format!("bench{writer}"),
            Self::OneCategory => "bench".to_owned(),
        }
    }

    /// Every category written to, each with its consumer.
    fn categories(self, writers: usize) -> Vec<String> {
        match self {
            Self::CategoryEach => (0..writers).map(|w| self.category(w)).collect(),
            Self::OneCategory => vec![self.category(0)],
        }
    }
}

/// Whether, and how, notifications are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The trigger disabled; the consumers poll (read, and after a read
    /// that found nothing wait for the poll interval).
    Off,
    /// The trigger enabled; each consumer arms before every read and,
    /// when it found nothing, waits for its wake-up (or the poll).
    On,
    /// As `On`, but each consumer arms at most once per the re-arm
    /// interval; when it found nothing and may not arm yet, it waits out
    /// the rest of the interval and then arms and reads.
    OnRateLimited,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
            Self::OnRateLimited => "on, rate limited",
        }
    }
}

/// What a pass measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass {
    /// Writes committed per second in the counted window.
    pub(crate) writes_per_second: f64,
    /// Armings per second, all consumers together.
    pub(crate) arms_per_second: f64,
}

/// Runs one pass of `case` in `mode` against `store`; `admin` switches the
/// trigger.
pub(crate) async fn pass(
    store: &PgStore,
    admin: &tokio_postgres::Client,
    settings: &Settings,
    case: Case,
    mode: Mode,
) -> Result<Pass, BoxError> {
    let enable = if mode == Mode::Off {
        "DISABLE"
    } else {
        "ENABLE"
    };
    admin
        .batch_execute(&format!(
            "ALTER TABLE message_store.messages {enable} TRIGGER {TRIGGER}"
        ))
        .await?;
    let next: i64 = admin
        .query_one(
            "SELECT coalesce(max(global_position), 0) + 1 FROM message_store.messages",
            &[],
        )
        .await?
        .get(0);

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let arms = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for category in case.categories(settings.writers) {
        let consumer = Consumer {
            store: store.clone(),
            category,
            position: next,
            mode,
            rearm: settings.rearm,
            poll: settings.poll,
            stop: Arc::clone(&stop),
            arms: Arc::clone(&arms),
        };
        tasks.push(tokio::spawn(consumer.run()));
    }
    for writer in 0..settings.writers {
        let (store, stop, writes) = (store.clone(), Arc::clone(&stop), Arc::clone(&writes));
        let category = case.category(writer);
        tasks.push(tokio::spawn(async move {
            let message = MessageData::new("Written", json!({ "writer": writer }));
            let mut n = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                let stream = StreamName::new(&category, &format!("{writer}x{}", n % 10))?;
                let mut message = message.clone();
                message.id = uuid::Uuid::new_v4();
                store.write(&stream, &message, ExpectedVersion::Any).await?;
                writes.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            Ok::<_, BoxError>(())
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (writes_before, arms_before) =
        (writes.load(Ordering::Relaxed), arms.load(Ordering::Relaxed));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(settings.seconds)).await;
    let (writes_after, arms_after) = (writes.load(Ordering::Relaxed), arms.load(Ordering::Relaxed));
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    Ok(Pass {
        writes_per_second: (writes_after - writes_before) as f64 / seconds,
        arms_per_second: (arms_after - arms_before) as f64 / seconds,
    })
}

/// A consumer of one category, as ebb's consumer reads: from its
/// position, batch after batch, waiting when it has caught up.
struct Consumer {
    store: PgStore,
    category: String,
    /// The next global position to read.
    position: i64,
    mode: Mode,
    rearm: Duration,
    poll: Duration,
    stop: Arc<AtomicBool>,
    /// Armings, counted for the report.
    arms: Arc<AtomicU64>,
}

impl Consumer {
    async fn run(mut self) -> Result<(), BoxError> {
        // Long ago: the first round may arm at once.
        let mut armed_at = Instant::now() - self.rearm;
        while !self.stop.load(Ordering::Relaxed) {
            let wakeup = match self.mode {
                Mode::Off => None,
                Mode::On => Some(self.arm().await),
                Mode::OnRateLimited if armed_at.elapsed() >= self.rearm => {
                    armed_at = Instant::now();
                    Some(self.arm().await)
                }
                Mode::OnRateLimited => None,
            };
            let batch = self
                .store
                .get_category_messages(
                    &self.category,
                    &CategoryQuery::new().position(self.position),
                )
                .await?;
            if let Some(last) = batch.last() {
                // "Handling": decoding each message's data.
                for message in &batch {
                    let _: serde_json::Value = message.data()?;
                }
                self.position = last.global_position + 1;
                continue;
            }
            match (self.mode, wakeup) {
                (_, Some(wakeup)) => {
                    let _ = tokio::time::timeout(self.poll, wakeup).await;
                }
                (Mode::OnRateLimited, None) => {
                    tokio::time::sleep(self.rearm.saturating_sub(armed_at.elapsed())).await;
                }
                (_, None) => tokio::time::sleep(self.poll).await,
            }
        }
        Ok(())
    }

    async fn arm(&self) -> ebb_message_store::Wakeup {
        self.arms.fetch_add(1, Ordering::Relaxed);
        let wakeup = self.store.arm_wakeup(&self.category).await;
        assert!(wakeup.is_armed(), "notifications are available");
        wakeup
    }
}
