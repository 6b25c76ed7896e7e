//! What every handler shares: the store, the options, the CSRF token and
//! the refreshers of the live figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ebb_admin::{Activity, By, ConsumerStatus, Stats};
use ebb_message_store::{Message, PgStore};

use crate::Options;
use crate::live::{Fetch, Refresher};

/// The most streams whose newest messages are refreshed at once: each
/// open stream page of a different stream is a query per interval.
const LIVE_STREAMS: usize = 64;

/// The consumers as the consumers page shows them.
#[derive(Debug)]
pub(crate) struct ConsumersView {
    /// As [`ebb_admin::consumers`] finds them.
    pub(crate) lines: Vec<ConsumerStatus>,
    /// For each, when the oldest message it has not recorded as handled
    /// was written ([`ebb_admin::oldest_unhandled`]).
    pub(crate) waiting: Vec<Option<DateTime<Utc>>>,
}

/// The shared state, behind an `Arc` in the router.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) store: PgStore,
    pub(crate) options: Options,
    /// The per-process token every action form carries (hex).
    pub(crate) csrf: Secret,
    /// Message counts by category and type (sampled on a large store).
    pub(crate) counts: Refresher<Stats>,
    /// Write rates over [`Options::activity_window`].
    pub(crate) activity: Refresher<Activity>,
    /// Every consumer, with its lag.
    pub(crate) consumers: Refresher<ConsumersView>,
    /// The newest page of each stream or category a live page shows.
    streams: Mutex<HashMap<String, Refresher<Vec<Message>>>>,
}

/// A token, never printed.
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(secret)")
    }
}

/// A query's error as a page shows it: the message and its causes, on
/// one line.
pub(crate) fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

impl App {
    pub(crate) fn new(store: PgStore, options: Options) -> Arc<Self> {
        let counts: Fetch<Stats> = {
            let store = store.clone();
            Box::new(move || {
                let store = store.clone();
                Box::pin(async move {
                    ebb_admin::stats(&store, By::Category, false)
                        .await
                        .map_err(|err| one_line(&err))
                })
            })
        };
        let activity: Fetch<Activity> = {
            let (store, window) = (store.clone(), options.activity_window);
            Box::new(move || {
                let store = store.clone();
                Box::pin(async move {
                    ebb_admin::activity(&store, window)
                        .await
                        .map_err(|err| one_line(&err))
                })
            })
        };
        let consumers: Fetch<ConsumersView> = {
            let store = store.clone();
            Box::new(move || {
                let store = store.clone();
                Box::pin(async move {
                    let lines = ebb_admin::consumers(&store, None, false)
                        .await
                        .map_err(|err| one_line(&err))?;
                    let waiting = ebb_admin::oldest_unhandled(&store, &lines)
                        .await
                        .map_err(|err| one_line(&err))?;
                    Ok(ConsumersView { lines, waiting })
                })
            })
        };
        Arc::new(Self {
            counts: Refresher::new("message counts", options.counts_refresh, counts),
            activity: Refresher::new("write rates", options.refresh, activity),
            consumers: Refresher::new("consumers", options.refresh, consumers),
            streams: Mutex::new(HashMap::new()),
            csrf: Secret(random_token()),
            store,
            options,
        })
    }

    /// The refresher of the newest page of `name` (a valid stream or
    /// category name); None when [`LIVE_STREAMS`] others are watched.
    pub(crate) fn stream(&self, name: &str) -> Option<Refresher<Vec<Message>>> {
        let mut streams = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = streams.get(name) {
            return Some(found.clone());
        }
        if streams.len() >= LIVE_STREAMS {
            streams.retain(|_, refresher| refresher.is_watched());
            if streams.len() >= LIVE_STREAMS {
                return None;
            }
        }
        let (store, owned, limit) = (
            self.store.clone(),
            name.to_owned(),
            i64::try_from(self.options.page_size).unwrap_or(i64::MAX),
        );
        let fetch: Fetch<Vec<Message>> = Box::new(move || {
            let (store, name) = (store.clone(), owned.clone());
            Box::pin(async move {
                ebb_admin::newest(&store, &name, None, limit)
                    .await
                    .map_err(|err| one_line(&err))
            })
        });
        let refresher = Refresher::new(format!("newest of {name}"), self.options.refresh, fetch);
        streams.insert(name.to_owned(), refresher.clone());
        Some(refresher)
    }
}

/// 32 random bytes, hex: the CSRF token. Should the operating system have
/// no randomness to give, the process's start time and id stand in, which
/// is weaker but still unknown to another site.
fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        tracing::warn!("dashboard: no randomness from the operating system for the CSRF token");
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        for (index, byte) in seed.bytes().enumerate() {
            bytes[index % 32] ^= byte;
        }
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
