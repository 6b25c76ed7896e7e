//! One pass: the writers, and in the modes with notifications the
//! consumers that make them fire.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ebb_message_store::{
    CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, StreamName,
};
use serde_json::json;

use crate::settings::Settings;
use ebb_bench::BoxError;

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
    /// that found less than a full batch wait for the poll interval).
    Off,
    /// The trigger enabled, but no consumer arms: they poll as in `Off`.
    /// What the trigger costs the writers when nobody waits.
    TriggerOnly,
    /// The trigger enabled but no consumer arms (so it never notifies);
    /// the consumers poll every `busy_category_poll` (the store's busy
    /// poll) after a read that found less than a full batch: the read load of `On` in a
    /// busy category, without notifications, to tell the cost of reading
    /// sooner from the cost of notifying.
    OffFastPoll,
    /// The trigger enabled; each consumer arms before every read and,
    /// when it found less than a full batch, waits for its wake-up (or the poll), on a
    /// store with the default settings: a category notified less than
    /// `busy_category_window` ago is polled instead of armed again, every
    /// `busy_category_poll` times the number of busy categories.
    On,
    /// As `On`, on a store whose `busy_category_window` is zero: every
    /// arming asks the database for a notification, and every write that
    /// finds a consumer waiting notifies.
    OnEveryArming,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::TriggerOnly => "trigger on, nobody waiting",
            Self::OffFastPoll => "off, fast poll",
            Self::On => "on",
            Self::OnEveryArming => "on, no busy window",
        }
    }
}

/// What a pass measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass {
    /// Writes committed per second in the counted window.
    pub(crate) writes_per_second: f64,
    /// `arm_wakeup` calls per second, all consumers together.
    pub(crate) arms_per_second: f64,
    /// Notifications sent per second (each one a notifying commit).
    pub(crate) notifications_per_second: f64,
    /// Category reads per second, all consumers together.
    pub(crate) reads_per_second: f64,
}

/// Runs one pass of `case` in `mode` against `store` (the one for the
/// mode); `admin` switches the trigger.
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
    let reads = Arc::new(AtomicU64::new(0));
    let notifications = Arc::new(AtomicU64::new(0));
    // A connection of its own listening on the channel, to count what the
    // trigger sends.
    let (listener, mut connection) = store.connect_dedicated().await?;
    let counting = {
        let notifications = Arc::clone(&notifications);
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = futures_util::StreamExt::next(&mut messages).await {
                if let tokio_postgres::AsyncMessage::Notification(_) = message {
                    notifications.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    listener
        .batch_execute(&format!("LISTEN {}", ebb_message_store::pg::NOTIFY_CHANNEL))
        .await?;
    let mut tasks = Vec::new();
    for category in case.categories(settings.writers) {
        let consumer = Consumer {
            store: store.clone(),
            category,
            position: next,
            mode,
            poll: match mode {
                Mode::OffFastPoll => store.config().busy_category_poll,
                _ => settings.poll,
            },
            stop: Arc::clone(&stop),
            arms: Arc::clone(&arms),
            reads: Arc::clone(&reads),
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
    let counters = [&writes, &arms, &notifications, &reads];
    let before = counters.map(|c| c.load(Ordering::Relaxed));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(settings.seconds)).await;
    let after = counters.map(|c| c.load(Ordering::Relaxed));
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    drop(listener);
    counting.await?;
    let rate = |i: usize| (after[i] - before[i]) as f64 / seconds;
    Ok(Pass {
        writes_per_second: rate(0),
        arms_per_second: rate(1),
        notifications_per_second: rate(2),
        reads_per_second: rate(3),
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
    poll: Duration,
    stop: Arc<AtomicBool>,
    /// Armings, counted for the report.
    arms: Arc<AtomicU64>,
    /// Reads, counted for the report.
    reads: Arc<AtomicU64>,
}

impl Consumer {
    async fn run(mut self) -> Result<(), BoxError> {
        while !self.stop.load(Ordering::Relaxed) {
            let wakeup = match self.mode {
                Mode::Off | Mode::TriggerOnly | Mode::OffFastPoll => None,
                Mode::On | Mode::OnEveryArming => Some(self.arm().await),
            };
            let query = CategoryQuery::new().position(self.position);
            let batch = self
                .store
                .get_category_messages(&self.category, &query)
                .await?;
            self.reads.fetch_add(1, Ordering::Relaxed);
            if let Some(last) = batch.last() {
                // "Handling": decoding each message's data.
                for message in &batch {
                    let _: serde_json::Value = message.data()?;
                }
                self.position = last.global_position + 1;
                // A full batch may have more behind it; a short one means
                // caught up, and ebb's consumer waits after it as after an
                // empty one (its read of a category ends there).
                if batch.len() as i64 >= query.batch_size {
                    continue;
                }
            }
            match wakeup {
                Some(wakeup) => {
                    let _ = tokio::time::timeout(self.poll, wakeup).await;
                }
                None => tokio::time::sleep(self.poll).await,
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
