//! What was written lately, by category: the write rate of each category
//! over the last minutes, as the dashboard's overview shows it.
//!
//! The messages table has no index on `time`, so "the messages of the
//! last five minutes" cannot be found by time. They are the newest
//! messages, though: the store's last [`ACTIVITY_ROWS`] messages at most
//! are read backwards through the primary key (the table's newest
//! blocks, the ones most likely in PostgreSQL's buffers), and those
//! written within the window are counted. When all of them are within the
//! window, the store wrote more than that in it: the rates are then of the
//! shorter span those messages cover ([`Activity::covered`]), and say so
//! (`cut`).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use ebb_message_store::PgStore;
use serde::Serialize;

use crate::Error;
use crate::consumer_streams;

/// The most messages one [`activity`] reads.
pub const ACTIVITY_ROWS: i64 = 10_000;

/// The messages written lately, by category.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Activity {
    /// The span asked for (serialized in seconds).
    #[serde(serialize_with = "seconds")]
    pub window: Duration,
    /// The span the counts are of: the window, or, when `cut`, the
    /// shorter span the messages read cover (serialized in seconds).
    #[serde(serialize_with = "seconds")]
    pub covered: Duration,
    /// More than [`ACTIVITY_ROWS`] messages were written in the window:
    /// the counts are of the last ones, over `covered`.
    pub cut: bool,
    /// The categories written to in `covered`, most written first.
    pub categories: Vec<CategoryActivity>,
    /// The database's time when counted.
    #[serde(serialize_with = "crate::time::serialize")]
    pub at: DateTime<Utc>,
}

/// One category's writes in [`Activity::covered`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CategoryActivity {
    /// The category.
    pub category: String,
    /// Its messages written in the span.
    pub messages: i64,
    /// Its messages per minute over the span.
    pub per_minute: f64,
    /// When its last message was written.
    #[serde(serialize_with = "crate::time::serialize")]
    pub last_written: DateTime<Utc>,
}

fn seconds<S: serde::Serializer>(span: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(span.as_secs_f64())
}

/// The newest `$1` messages (a backward scan of the primary key), and the
/// database's time less `$2` seconds: per category, the messages written
/// since then and the last one's time; then one row with a NULL category,
/// the messages read and the oldest one's time.
const RECENT: &str = "\
    WITH now AS (SELECT now() AT TIME ZONE 'utc' AS at), \
    recent AS ( \
      SELECT stream_name, time FROM message_store.messages \
      ORDER BY global_position DESC LIMIT $1::bigint \
    ) \
    SELECT message_store.category(r.stream_name)::text, count(*), max(r.time), min(now.at) \
    FROM recent r, now WHERE r.time >= now.at - make_interval(secs => $2::float8) \
    GROUP BY 1 \
    UNION ALL \
    SELECT NULL, count(*), min(r.time), min(now.at) FROM recent r, now";

/// The messages written in the last `window`, by category, most written
/// first: at most [`ACTIVITY_ROWS`] messages read, whatever the store's
/// size.
pub async fn activity(store: &PgStore, window: Duration) -> Result<Activity, Error> {
    let client = consumer_streams::client(store).await?;
    let rows = client
        .query(RECENT, &[&ACTIVITY_ROWS, &window.as_secs_f64()])
        .await
        .map_err(|source| Error::Statement {
            action: "cannot count the latest messages".into(),
            source,
        })?;
    let mut categories = Vec::new();
    let (mut read, mut oldest, mut at) = (0_i64, None, Utc::now());
    for row in &rows {
        let category: Option<String> = row.get(0);
        let now: Option<NaiveDateTime> = row.get(3);
        if let Some(now) = now {
            at = now.and_utc();
        }
        let time: Option<NaiveDateTime> = row.get(2);
        match category {
            Some(category) => categories.push((category, row.get::<_, i64>(1), time)),
            None => (read, oldest) = (row.get(1), time.map(|time| time.and_utc())),
        }
    }
    let since = at - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let cut = read >= ACTIVITY_ROWS && oldest.is_some_and(|oldest| oldest >= since);
    let covered = match oldest {
        Some(oldest) if cut => (at - oldest).to_std().unwrap_or_default(),
        _ => window,
    };
    let minutes = (covered.as_secs_f64() / 60.0).max(1.0 / 60.0);
    let mut categories: Vec<CategoryActivity> = categories
        .into_iter()
        .map(|(category, messages, time)| CategoryActivity {
            category,
            messages,
            per_minute: messages as f64 / minutes,
            last_written: time.map_or(at, |time| time.and_utc()),
        })
        .collect();
    categories.sort_by(|a, b| (b.messages, &a.category).cmp(&(a.messages, &b.category)));
    Ok(Activity {
        window,
        covered,
        cut,
        categories,
        at,
    })
}
