//! The scheduler: an in-memory index of jobs, kept current by following
//! the `httpJob` category, a timer that finds the runs due, and the run
//! itself: claim, calls, outcome, callback.
//!
//! # Exactly one outcome per run, across instances
//!
//! Every instance sees every job. To make run N of a job, an instance
//! fetches the job and writes `RunStarted {run: N, claim: 1, leaseUntil}`
//! expecting the version it fetched: of two instances claiming at once,
//! one wins and the other, fetching again, finds the run claimed. The
//! winner makes the calls (each recorded as `AttemptMade`) and writes the
//! outcome, `RunSucceeded` or `RunFailed`, again expecting the version it
//! fetched and only if the run has no outcome yet: so each run has exactly
//! one outcome, whatever happens.
//!
//! A claimer that dies mid-run leaves a claim without an outcome. Once its
//! lease has run out (the longest the run can take, plus a margin: see
//! [`Settings::lease`]), any instance claims the run again
//! (`RunStarted {run: N, claim: 2}`) and makes it again, with the same
//! `Idempotency-Key: JOB_ID-N`. A call in flight when its claimer died may
//! therefore have reached the target, and the target sees the key again:
//! delivery is at least once per run, with a key the target can
//! deduplicate by, and the outcome is recorded exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ebb_consumer::Control;
use ebb_handler::retry::on_wrong_expected_version;
use ebb_handler::{EntityStore, Writer};
use ebb_message_store::{CategoryQuery, MessageStore, StreamName};
use ebb_retry::{Decision, Retry, Rule};
use reqwest::Method;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::call::{CallError, Caller, Request};
use crate::commands::Commands;
use crate::job::{Job, State, Work};
use crate::messages::{
    AttemptMade, CallbackDelivered, CallbackFailed, Completed, RunFailed, RunStarted, RunSucceeded,
};
use crate::settings::Settings;
use crate::spec::{RetrySpec, rfc3339};
use crate::{COMMAND_CATEGORY, Error, JOB_CATEGORY};

/// How often the category is read when no wake-up comes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// The longest the timer sleeps without looking at the index again.
const TIMER_MAX_SLEEP: Duration = Duration::from_secs(1);

/// One job in the index: what listing and the timer need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The job's id.
    pub id: String,
    /// Its state.
    pub state: State,
    /// Runs with an outcome.
    pub runs: u32,
    /// When the next run is due, if any.
    pub next_run_at: Option<DateTime<Utc>>,
    /// When it was asked for.
    pub created_at: Option<DateTime<Utc>>,
    /// Its command's global position: listing order.
    pub sequence: i64,
    /// When the timer should look at it next.
    pub wake_at: Option<DateTime<Utc>>,
}

impl Summary {
    fn of(job: &Job) -> Option<Self> {
        Some(Self {
            id: job.id.clone(),
            state: job.state()?,
            runs: job.runs_finished,
            next_run_at: job.next_due(),
            created_at: job.requested_at,
            sequence: job.sequence,
            wake_at: job.wake_at(),
        })
    }

    /// The JSON of `GET /jobs`' items.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "state": self.state,
            "runs": self.runs,
            "nextRunAt": self.next_run_at.map(rfc3339),
            "createdAt": self.created_at.map(rfc3339),
        })
    }
}

/// The scheduler's shared state: what the API, the timer, the follower
/// and each run use.
#[derive(Debug)]
pub struct Scheduler<S> {
    /// The message store.
    pub store: S,
    /// Jobs, cached, with snapshots.
    pub jobs: EntityStore<Job, S>,
    /// Writes events.
    writer: Writer<S>,
    /// The command handlers, for the API to handle its own commands at
    /// once.
    pub commands: ebb_handler::Dispatcher,
    /// Every job this instance knows, by id.
    index: Mutex<HashMap<String, Summary>>,
    /// Told when the index changed, so that the timer looks again.
    changed: Notify,
    /// The settings.
    pub settings: Settings,
    /// Makes the calls.
    pub caller: Caller,
    /// The concurrency limit: a run holds one permit from its claim to
    /// its callback.
    permits: Semaphore,
    /// On the expected-version conflict, for claims and outcomes.
    conflicts: Retry,
}

/// Why a run's operation failed: a call (retried by the job's policy) or
/// the store (not retried there; it ends the process).
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("the call failed")]
    Call(#[source] AttemptFailed),
    #[error("the store failed")]
    Store(#[source] ebb_handler::Error),
}

/// A call's failure, with the wait the schedule has next, so that a
/// `Retry-After` is honoured as "at least this long". It shows the call's
/// error as its own, message and causes, as `#[error(transparent)]` would
/// (which takes a single field).
#[derive(Debug)]
struct AttemptFailed {
    error: CallError,
    scheduled_wait: Duration,
}

impl std::fmt::Display for AttemptFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for AttemptFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl<S: MessageStore> Scheduler<S> {
    /// A scheduler on `store` with `settings`.
    pub fn new(store: S, settings: Settings) -> Result<Arc<Self>, Error> {
        let jobs =
            EntityStore::<Job, _>::new(store.clone()).with_snapshots(settings.snapshot_interval);
        let commands = Arc::new(Commands::new(&store, jobs.clone(), &settings)).dispatcher();
        Ok(Arc::new(Self {
            writer: Writer::new(store.clone()),
            store,
            jobs,
            commands,
            index: Mutex::default(),
            changed: Notify::new(),
            caller: Caller::new(&settings).map_err(Error::Client)?,
            permits: Semaphore::new(settings.max_concurrency),
            settings,
            conflicts: Retry::intervals_ms([5, 20, 50, 100, 200])
                .rule(on_wrong_expected_version())
                .build()
                .map_err(Error::Retry)?,
        }))
    }

    /// The jobs in the index in `state` (all without one), in the order
    /// they were scheduled, and how many there are in all.
    pub fn list(&self, state: Option<State>, offset: usize, limit: usize) -> (Vec<Summary>, usize) {
        let index = self.index.lock().expect("the index's lock");
        let mut jobs: Vec<&Summary> = index
            .values()
            .filter(|summary| state.is_none_or(|state| summary.state == state))
            .collect();
        jobs.sort_by_key(|summary| (summary.sequence, summary.id.clone()));
        let total = jobs.len();
        let page = jobs.into_iter().skip(offset).take(limit).cloned().collect();
        (page, total)
    }

    /// Puts `job` in the index (as fetched) and wakes the timer.
    fn index_job(&self, job: &Job) {
        let Some(summary) = Summary::of(job) else {
            return;
        };
        let mut index = self.index.lock().expect("the index's lock");
        if index.get(&summary.id) != Some(&summary) {
            index.insert(summary.id.clone(), summary);
            drop(index);
            self.changed.notify_one();
        }
    }

    /// Fetches job `id` and puts it in the index.
    pub async fn refresh(&self, id: &str) -> Result<Job, Error> {
        let (job, _) = self.jobs.fetch(id).await?;
        self.index_job(&job);
        Ok(job)
    }

    /// Fills the index from the store: every job with a `Schedule`
    /// command. Returns the global position to follow `httpJob` from.
    async fn load(&self) -> Result<i64, Error> {
        let from = self
            .store
            .category_head(JOB_CATEGORY)
            .await
            .map_err(ebb_handler::Error::from)?
            .map_or(1, |head| head + 1);
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        let mut position = 1;
        loop {
            let batch = self
                .store
                .get_category_messages(COMMAND_CATEGORY, &CategoryQuery::new().position(position))
                .await
                .map_err(ebb_handler::Error::from)?;
            let Some(last) = batch.last() else { break };
            position = last.global_position + 1;
            for message in &batch {
                if message.type_name == "Schedule" {
                    if let Some(id) = message.stream_id() {
                        if seen.insert(id.to_owned()) {
                            ids.push(id.to_owned());
                        }
                    }
                }
            }
        }
        for id in &ids {
            self.refresh(id).await?;
        }
        tracing::info!(jobs = ids.len(), "job index loaded");
        Ok(from)
    }

    /// Follows `httpJob` from global position `from`, refreshing each job
    /// that has new events, until `control` stops.
    async fn follow(&self, mut from: i64, control: &Control) -> Result<(), Error> {
        let mut armed = false;
        while !control.is_stopping() {
            let batch = self
                .store
                .get_category_messages(JOB_CATEGORY, &CategoryQuery::new().position(from))
                .await
                .map_err(ebb_handler::Error::from)?;
            if let Some(last) = batch.last() {
                from = last.global_position + 1;
                let mut ids: Vec<&str> = batch.iter().filter_map(|m| m.stream_id()).collect();
                ids.dedup();
                let unique: HashSet<&str> = ids.into_iter().collect();
                for id in unique {
                    self.refresh(id).await?;
                }
                armed = false;
                continue;
            }
            if !armed {
                // Arm, then read once more: a write between the read and
                // the arming would wake nobody.
                armed = true;
                let wakeup = self.store.arm_wakeup(JOB_CATEGORY).await;
                let head = self
                    .store
                    .category_head(JOB_CATEGORY)
                    .await
                    .map_err(ebb_handler::Error::from)?;
                if head.is_some_and(|head| head >= from) {
                    continue;
                }
                tokio::select! {
                    () = async { let _ = tokio::time::timeout(FOLLOW_POLL, wakeup).await; } => {}
                    () = control.stopped() => {}
                }
                armed = false;
            }
        }
        Ok(())
    }

    /// The scheduler's whole life: loads the index, then follows the
    /// category and runs the timer until `control` stops; runs in flight
    /// then finish. An error (the store failing beyond its retries) ends
    /// it, and the process.
    pub async fn run(self: Arc<Self>, control: Control) -> Result<(), Error> {
        let from = self.load().await?;
        let follower = {
            let this = Arc::clone(&self);
            let control = control.clone();
            tokio::spawn(async move { this.follow(from, &control).await })
        };
        let result = self.timer(&control, follower).await;
        if let Err(err) = &result {
            tracing::error!(error = %err, "the scheduler stopped");
        }
        result
    }

    /// Starts each run as it falls due.
    async fn timer(
        self: &Arc<Self>,
        control: &Control,
        mut follower: tokio::task::JoinHandle<Result<(), Error>>,
    ) -> Result<(), Error> {
        let mut running: JoinSet<(String, Result<(), Error>)> = JoinSet::new();
        // Jobs with a run task in this process: the timer leaves them be.
        let mut local: HashSet<String> = HashSet::new();
        let mut outcome = Ok(());
        loop {
            let now = Utc::now();
            let (due, next) = {
                let index = self.index.lock().expect("the index's lock");
                let mut due = Vec::new();
                let mut next: Option<DateTime<Utc>> = None;
                for summary in index.values() {
                    let Some(wake_at) = summary.wake_at else {
                        continue;
                    };
                    if local.contains(&summary.id) {
                        continue;
                    }
                    if wake_at <= now {
                        due.push((wake_at, summary.id.clone()));
                    } else {
                        next = Some(next.map_or(wake_at, |next| next.min(wake_at)));
                    }
                }
                due.sort();
                (due, next)
            };
            for (_, id) in due {
                local.insert(id.clone());
                let this = Arc::clone(self);
                running.spawn(async move {
                    let result = this.run_job(&id).await;
                    (id, result)
                });
            }
            let sleep = next
                .and_then(|next| (next - now).to_std().ok())
                .unwrap_or(TIMER_MAX_SLEEP)
                .min(TIMER_MAX_SLEEP);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.changed.notified() => {}
                Some(done) = running.join_next() => {
                    match done {
                        Ok((id, Ok(()))) => { local.remove(&id); }
                        Ok((id, Err(err))) => {
                            tracing::error!(job = %id, error = %err, "a run failed on the store");
                            outcome = Err(err);
                            break;
                        }
                        Err(panicked) => {
                            outcome = Err(Error::Panicked(panicked.to_string()));
                            break;
                        }
                    }
                }
                joined = &mut follower => {
                    outcome = match joined {
                        Ok(result) => result,
                        Err(panicked) => Err(Error::Panicked(panicked.to_string())),
                    };
                    break;
                }
                () = control.stopped() => break,
            }
        }
        // The runs in flight finish (the host bounds the wait).
        control.stop();
        while let Some(done) = running.join_next().await {
            if let Ok((id, Err(err))) = done {
                tracing::error!(job = %id, error = %err, "a run failed on the store");
            }
        }
        follower.abort();
        outcome
    }

    /// Claims what job `id` has due, if anything, and does it.
    async fn run_job(&self, id: &str) -> Result<(), Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let claimed = self.claim(id).await?;
        if let Some((job, work, lease_until)) = claimed {
            let deadline = lease_until
                - chrono::Duration::from_std(self.settings.lease_margin / 2).unwrap_or_default();
            let budget = (deadline - Utc::now()).to_std().unwrap_or_default();
            match tokio::time::timeout(budget, self.work(&job, work)).await {
                Ok(result) => result?,
                Err(_) => tracing::warn!(
                    job = id,
                    run = work.run,
                    "the run outlasted its lease; left for the next claim"
                ),
            }
        }
        self.refresh(id).await?;
        Ok(())
    }

    /// Writes `RunStarted` for what job `id` has due, expecting the
    /// version fetched; `None` when nothing is due (another instance
    /// claimed it first, or its lease holds).
    async fn claim(&self, id: &str) -> Result<Option<(Job, Work, DateTime<Utc>)>, Error> {
        let stream = StreamName::new(JOB_CATEGORY, id).map_err(ebb_handler::Error::from)?;
        let result = self
            .conflicts
            .run(|_cycle| async {
                let (job, version) = self.jobs.fetch(id).await?;
                let now = Utc::now();
                let Some(work) = job.work(now) else {
                    self.index_job(&job);
                    return Ok(None);
                };
                let spec = job.spec.as_ref().expect("a job with work exists");
                let lease = self.settings.lease(&spec.retry(), spec.callback.is_some());
                let lease_until =
                    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
                let started = RunStarted {
                    run: work.run,
                    claim: work.claim,
                    due_at: work.due_at,
                    at: now,
                    by: self.settings.instance.clone(),
                    lease_until,
                };
                self.writer.write(&stream, started, version).await?;
                tracing::info!(
                    job = id,
                    run = work.run,
                    claim = work.claim,
                    callback_only = work.callback_only,
                    "run claimed"
                );
                let (job, _) = self.jobs.fetch(id).await?;
                Ok::<_, ebb_handler::Error>(Some((job, work, lease_until)))
            })
            .await;
        match result {
            Ok(claimed) => Ok(claimed),
            Err(err) if err.last().is_wrong_expected_version() => {
                tracing::info!(job = id, "claim kept conflicting; trying again later");
                Ok(None)
            }
            Err(err) => Err(err.into_last().into()),
        }
    }

    /// Does claimed `work` of `job`: the calls and the outcome (unless
    /// only the callback is left), then the callback.
    async fn work(&self, job: &Job, work: Work) -> Result<(), Error> {
        let recorded = if work.callback_only {
            true
        } else {
            self.call(job, work).await?
        };
        if recorded
            && job
                .spec
                .as_ref()
                .is_some_and(|spec| spec.callback.is_some())
        {
            self.callback(&job.id, work.run).await?;
        }
        Ok(())
    }

    /// Makes the run's calls under the job's retry policy and records its
    /// outcome; false when another claim recorded one first.
    async fn call(&self, job: &Job, work: Work) -> Result<bool, Error> {
        let spec = job.spec.as_ref().expect("a claimed job exists");
        let retry_spec = spec.retry();
        let retry = self.run_retry(&retry_spec)?;
        let stream = StreamName::new(JOB_CATEGORY, &job.id).map_err(ebb_handler::Error::from)?;
        let method = Method::from_bytes(spec.request.method.as_bytes()).unwrap_or(Method::GET);
        let request = Request {
            method,
            url: &spec.request.url,
            headers: &spec.request.headers,
            body: spec.request.body.clone(),
            idempotency_key: idempotency_key(&job.id, work.run),
        };
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let result = retry
            .run(|cycle| {
                let request = &request;
                let stream = &stream;
                let attempts = &attempts;
                let intervals = &retry_spec.intervals_ms;
                async move {
                    attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (record, result) = self.caller.call(request).await;
                    let made = AttemptMade {
                        run: work.run,
                        claim: work.claim,
                        attempt: cycle + 1,
                        at: record.at,
                        duration_ms: i64::try_from(record.duration.as_millis()).unwrap_or(i64::MAX),
                        status: record.status,
                        error: record.error,
                        body: record.body,
                        body_truncated: record.body_truncated,
                    };
                    self.writer
                        .write(stream, made, ebb_message_store::ExpectedVersion::Any)
                        .await
                        .map_err(RunError::Store)?;
                    result.map_err(|error| {
                        let scheduled_wait = intervals
                            .get(cycle as usize)
                            .map(|&ms| Duration::from_millis(ms.max(0) as u64))
                            .unwrap_or_default();
                        RunError::Call(AttemptFailed {
                            error,
                            scheduled_wait,
                        })
                    })
                }
            })
            .await;
        let attempts = attempts.load(std::sync::atomic::Ordering::Relaxed);
        let now = Utc::now();
        let outcome: ebb_message_store::MessageData = match result {
            Ok(response) => to_data(RunSucceeded {
                run: work.run,
                claim: work.claim,
                at: now,
                status: response.status,
                attempts,
            })?,
            Err(err) => match err.into_last() {
                RunError::Store(err) => return Err(err.into()),
                RunError::Call(failed) => to_data(RunFailed {
                    run: work.run,
                    claim: work.claim,
                    at: now,
                    status: match failed.error {
                        CallError::Status { status, .. } => Some(status),
                        _ => None,
                    },
                    error: failed.error.recorded_text(),
                    attempts,
                })?,
            },
        };
        self.record_outcome(&job.id, work, outcome).await
    }

    /// The job's retry policy as an `ebb_retry::Retry`: its intervals, its
    /// statuses (a `Retry-After` waited out as at least the interval, and
    /// one longer than the setting allows not retried), its transport
    /// errors.
    fn run_retry(&self, spec: &RetrySpec) -> Result<Retry, Error> {
        let statuses = spec.retry_status.clone();
        let transport = spec.retry_transport;
        let max_retry_after = self.settings.max_retry_after;
        Retry::intervals_ms(spec.intervals_ms.iter().copied())
            .rule(Rule::classify::<AttemptFailed>(
                move |failed| match &failed.error {
                    CallError::Status {
                        status,
                        retry_after,
                    } if statuses.contains(status) => match retry_after {
                        Some(after) if *after > max_retry_after => Decision::DoNotRetry,
                        Some(after) => Decision::RetryAfter((*after).max(failed.scheduled_wait)),
                        None => Decision::Retry,
                    },
                    error if transport && error.is_no_answer() => Decision::Retry,
                    _ => Decision::DoNotRetry,
                },
            ))
            .build()
            .map_err(Error::Retry)
    }

    /// Writes the run's outcome (and `Completed` with the last), expecting
    /// the version fetched, unless the run has one already.
    async fn record_outcome(
        &self,
        id: &str,
        work: Work,
        outcome: ebb_message_store::MessageData,
    ) -> Result<bool, Error> {
        let stream = StreamName::new(JOB_CATEGORY, id).map_err(ebb_handler::Error::from)?;
        let result = self
            .conflicts
            .run(|_cycle| async {
                let (job, version) = self.jobs.fetch(id).await?;
                if job.has_outcome(work.run) {
                    tracing::info!(job = id, run = work.run, claim = work.claim, "outcome recorded already by another claim");
                    return Ok(false);
                }
                let mut events = vec![outcome.clone()];
                if job.cancelled_at.is_none() && job.next_due().is_none() {
                    events.push(to_data(Completed {
                        at: Utc::now(),
                        runs: job.runs_finished + 1,
                    })?);
                }
                self.writer.write_batch(&stream, events, version).await?;
                tracing::info!(job = id, run = work.run, claim = work.claim, outcome = %outcome.type_name, "run recorded");
                Ok::<_, ebb_handler::Error>(true)
            })
            .await;
        result.map_err(|err| err.into_last().into())
    }

    /// Posts run `run`'s outcome to the job's callback, retried, and
    /// records the delivery.
    async fn callback(&self, id: &str, run: u32) -> Result<(), Error> {
        let (job, _) = self.jobs.fetch(id).await?;
        let (Some(spec), Some(kept)) = (job.spec.as_ref(), job.run(run)) else {
            return Ok(());
        };
        let Some(callback) = &spec.callback else {
            return Ok(());
        };
        let last = kept.attempts.last();
        let payload = json!({
            "jobId": id,
            "run": run,
            "outcome": kept.outcome,
            "status": kept.status,
            "error": kept.error,
            "body": last.and_then(|attempt| attempt.body.clone()),
            "bodyTruncated": last.is_some_and(|attempt| attempt.body_truncated),
            "attempts": kept.attempts.len(),
            "finishedAt": kept.finished_at.map(rfc3339),
        });
        let headers = [("Content-Type".to_owned(), "application/json".to_owned())]
            .into_iter()
            .collect();
        let request = Request {
            method: Method::POST,
            url: &callback.url,
            headers: &headers,
            body: Some(payload.to_string()),
            idempotency_key: idempotency_key(id, run),
        };
        let max_retry_after = self.settings.max_retry_after;
        let retry = Retry::intervals_ms(self.settings.callback_retry_ms.iter().copied())
            .rule(Rule::classify::<CallError>(move |error| match error {
                CallError::Status {
                    status,
                    retry_after,
                } if *status == 429 || *status >= 500 => match retry_after {
                    Some(after) if *after > max_retry_after => Decision::DoNotRetry,
                    Some(after) => Decision::RetryAfter(*after),
                    None => Decision::Retry,
                },
                error if error.is_no_answer() => Decision::Retry,
                _ => Decision::DoNotRetry,
            }))
            .build()
            .map_err(Error::Retry)?;
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retry
            .run(|_cycle| async {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.caller.call(&request).await.1
            })
            .await;
        let attempts = calls.load(std::sync::atomic::Ordering::Relaxed);
        let stream = StreamName::new(JOB_CATEGORY, id).map_err(ebb_handler::Error::from)?;
        let now = Utc::now();
        let event = match result {
            Ok(response) => to_data(CallbackDelivered {
                run,
                at: now,
                status: response.status,
                attempts,
            })?,
            Err(err) => to_data(CallbackFailed {
                run,
                at: now,
                error: err.into_last().recorded_text(),
                attempts,
            })?,
        };
        tracing::info!(job = id, run, result = %event.type_name, "callback recorded");
        self.writer
            .write(&stream, event, ebb_message_store::ExpectedVersion::Any)
            .await?;
        Ok(())
    }
}

/// The `Idempotency-Key` of run `run` of job `id`: the same for every
/// attempt and every claim of the run.
pub fn idempotency_key(id: &str, run: u32) -> String {
    format!("{id}-{run}")
}

fn to_data(
    event: impl ebb_handler::IntoMessageData,
) -> Result<ebb_message_store::MessageData, ebb_handler::Error> {
    event.into_message_data()
}
