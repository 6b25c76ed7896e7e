//! The job entity, projected from `httpJob-JOB_ID`: its state, its runs,
//! when the next one is due, and the retained part of its history.
//!
//! # Retention and compaction
//!
//! The entity keeps at most `keepRuns` runs, none finished more than
//! `keepForMs` before the latest run started (both fixed in `Scheduled`
//! from the scheduler's settings when the job was scheduled): older runs
//! are dropped from it as the events of newer runs are applied. The
//! entity store writes a snapshot of the entity to
//! `httpJob:snapshot-JOB_ID` every few versions, and a fetch starts from
//! the latest snapshot; so fetching a job costs one snapshot (bounded by
//! the retention) plus fewer events than the snapshot interval, however
//! long the job has run. The events themselves stay in the store (Message
//! DB grants no delete): retention bounds what is read, not what is kept.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use ebb_handler::{Entity, Projection, Received};
use serde::{Deserialize, Serialize};

use crate::messages::{
    AttemptMade, CallbackDelivered, CallbackFailed, Cancelled, Completed, RunFailed, RunStarted,
    RunSucceeded, Scheduled,
};
use crate::spec::JobSpec;

/// A job as its events leave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Empty until `Scheduled`.
    pub id: String,
    /// `None` until `Scheduled`: no such job.
    pub spec: Option<JobSpec>,
    /// When it was asked for.
    pub requested_at: Option<DateTime<Utc>>,
    /// The global position of its `Schedule` command: the order jobs are
    /// listed in.
    pub sequence: i64,
    /// Retention: runs kept in [`history`](Self::history).
    pub keep_runs: u32,
    /// Retention: how long a finished run is kept, in milliseconds.
    pub keep_for_ms: i64,
    /// Set by `Cancelled`.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Set by `Completed`.
    pub completed_at: Option<DateTime<Utc>>,
    /// The highest run number claimed.
    pub runs_started: u32,
    /// Runs with an outcome.
    pub runs_finished: u32,
    /// The latest run claimed, whether or not history still holds it.
    pub current: Option<Current>,
    /// The retained runs, oldest first.
    pub history: VecDeque<Run>,
}

/// The latest run claimed: what the scheduler decides from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Current {
    /// Its number.
    pub run: u32,
    /// Its latest claim's number.
    pub claim: u32,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// When it was first claimed.
    pub started_at: DateTime<Utc>,
    /// Until when its latest claim holds.
    pub lease_until: DateTime<Utc>,
    /// Its outcome, once recorded.
    pub outcome: Option<Outcome>,
    /// True once its callback's delivery is recorded, either way.
    pub callback_done: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A 2xx response.
    Succeeded,
    /// Retries spent, or an error not retried.
    Failed,
}

/// One run in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Its number, from 1.
    pub run: u32,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// When it was first claimed.
    pub started_at: DateTime<Utc>,
    /// How many times it was claimed (more than 1: its claimer stopped
    /// mid-run and another claim ran it again).
    pub claims: u32,
    /// When its outcome was recorded.
    pub finished_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, or `null` while it runs.
    pub outcome: Option<Outcome>,
    /// The last response's status.
    pub status: Option<u16>,
    /// The last error.
    pub error: Option<String>,
    /// Every call made, by every claim.
    pub attempts: Vec<Attempt>,
    /// The callback's delivery, once recorded.
    pub callback: Option<CallbackResult>,
}

/// One call of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The claim that made it.
    pub claim: u32,
    /// Within the claim, from 1.
    pub attempt: u32,
    /// When it started.
    pub at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i64,
    /// The response's status, if any.
    pub status: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The response body, up to the capture bound.
    pub body: Option<String>,
    /// True when the body was cut at the bound.
    pub body_truncated: bool,
}

/// A callback's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackResult {
    /// True for a 2xx answer.
    pub delivered: bool,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The answer's status, if delivered.
    pub status: Option<u16>,
    /// Why not, if not.
    pub error: Option<String>,
    /// Calls made.
    pub attempts: u32,
}

/// A job's state, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for its next run.
    Scheduled,
    /// A run is claimed and has no outcome yet.
    Running,
    /// A job that runs once: its run succeeded.
    Succeeded,
    /// A job that runs once: its run failed.
    Failed,
    /// Cancelled before its last run.
    Cancelled,
    /// A repeating job made its last run.
    Completed,
}

impl State {
    /// The state named `name` (lowercase), as `?state=` gives it.
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// What an instance may claim now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// The run.
    pub run: u32,
    /// The claim number to write.
    pub claim: u32,
    /// When the run was due.
    pub due_at: DateTime<Utc>,
    /// True when the run's outcome is recorded and only its callback is
    /// left.
    pub callback_only: bool,
}

impl Job {
    /// True once `Scheduled` is applied.
    pub fn exists(&self) -> bool {
        self.spec.is_some()
    }

    /// The job's state; `None` for a job that does not exist.
    pub fn state(&self) -> Option<State> {
        let spec = self.spec.as_ref()?;
        Some(if self.cancelled_at.is_some() {
            State::Cancelled
        } else if self.completed_at.is_some() {
            if spec.schedule().once() {
                match self.current.as_ref().and_then(|current| current.outcome) {
                    Some(Outcome::Succeeded) => State::Succeeded,
                    _ => State::Failed,
                }
            } else {
                State::Completed
            }
        } else if self
            .current
            .as_ref()
            .is_some_and(|current| current.outcome.is_none())
        {
            State::Running
        } else {
            State::Scheduled
        })
    }

    /// True when the job will make no further run.
    pub fn ended(&self) -> bool {
        self.cancelled_at.is_some() || self.completed_at.is_some()
    }

    /// When run `runs_started + 1` is due; `None` when there is none (the
    /// job ended, ran once, reached `maxRuns` or would pass `endAt`).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let spec = self.spec.as_ref()?;
        if self.ended() {
            return None;
        }
        let schedule = spec.schedule();
        let Some(current) = &self.current else {
            return schedule.start_at.or(self.requested_at);
        };
        let every = Duration::milliseconds(schedule.every_ms?);
        if schedule
            .max_runs
            .is_some_and(|max| i64::from(current.run) >= max)
        {
            return None;
        }
        // On time: the schedule's next slot. Claimed more than one
        // interval late (the scheduler was down): one interval after the
        // late start, rather than a burst of every slot missed.
        let mut due = current.due_at + every;
        if current.started_at > due {
            due = current.started_at + every;
        }
        if schedule.end_at.is_some_and(|end| due > end) {
            return None;
        }
        Some(due)
    }

    /// The latest run's work left: its call (no outcome) or its callback.
    fn unfinished(&self) -> Option<&Current> {
        let has_callback = self
            .spec
            .as_ref()
            .is_some_and(|spec| spec.callback.is_some());
        self.current
            .as_ref()
            .filter(|current| current.outcome.is_none() || (has_callback && !current.callback_done))
    }

    /// What may be claimed at `now`, if anything: the latest run again
    /// once its lease has run out with work left, or the next run once it
    /// is due. A cancelled job's unfinished call is not made again; its
    /// pending callback is still delivered.
    pub fn work(&self, now: DateTime<Utc>) -> Option<Work> {
        self.spec.as_ref()?;
        if let Some(current) = self.unfinished() {
            if self.cancelled_at.is_some() && current.outcome.is_none() {
                return None;
            }
            return (now >= current.lease_until).then_some(Work {
                run: current.run,
                claim: current.claim + 1,
                due_at: current.due_at,
                callback_only: current.outcome.is_some(),
            });
        }
        let due = self.next_due()?;
        (now >= due).then_some(Work {
            run: self.runs_started + 1,
            claim: 1,
            due_at: due,
            callback_only: false,
        })
    }

    /// When [`work`](Self::work) may next find something, for the
    /// scheduler's timer.
    pub fn wake_at(&self) -> Option<DateTime<Utc>> {
        if let Some(current) = self.unfinished() {
            if self.cancelled_at.is_some() && current.outcome.is_none() {
                return None;
            }
            return Some(current.lease_until);
        }
        self.next_due()
    }

    /// True when run `run` has an outcome recorded.
    pub fn has_outcome(&self, run: u32) -> bool {
        match &self.current {
            Some(current) if current.run == run => current.outcome.is_some(),
            _ => run <= self.runs_started,
        }
    }

    /// Run `run`, if history still holds it.
    pub fn run(&self, run: u32) -> Option<&Run> {
        self.history.iter().rev().find(|kept| kept.run == run)
    }

    fn run_mut(&mut self, run: u32) -> Option<&mut Run> {
        self.history.iter_mut().rev().find(|kept| kept.run == run)
    }

    /// The runs history returns at `now`: the latest `keep_runs` at most,
    /// none that finished more than `keep_for` before `now`.
    pub fn retained(
        &self,
        now: DateTime<Utc>,
        keep_runs: u32,
        keep_for: Duration,
    ) -> impl Iterator<Item = &Run> {
        let skip = self.history.len().saturating_sub(keep_runs as usize);
        self.history
            .iter()
            .skip(skip)
            .filter(move |run| run.finished_at.is_none_or(|at| at >= now - keep_for))
    }

    /// Drops the runs past the job's own retention, as of `now`; never
    /// the latest.
    fn compact(&mut self, now: DateTime<Utc>) {
        let keep_for = Duration::milliseconds(self.keep_for_ms);
        while self.history.len() > 1 {
            let oldest = &self.history[0];
            let too_many = self.history.len() > self.keep_runs.max(1) as usize;
            let too_old = oldest.finished_at.is_some_and(|at| at < now - keep_for);
            if oldest.outcome.is_some() && (too_many || too_old) {
                self.history.pop_front();
            } else {
                break;
            }
        }
    }

    fn scheduled(&mut self, scheduled: Received<Scheduled>) {
        let scheduled = scheduled.into_data();
        self.id = scheduled.job_id;
        self.spec = Some(scheduled.job);
        self.requested_at = Some(scheduled.requested_at);
        self.sequence = scheduled.sequence;
        self.keep_runs = scheduled.keep_runs;
        self.keep_for_ms = scheduled.keep_for_ms;
    }

    fn run_started(&mut self, started: Received<RunStarted>) {
        let started = started.into_data();
        if started.run > self.runs_started {
            self.runs_started = started.run;
            self.current = Some(Current {
                run: started.run,
                claim: started.claim,
                due_at: started.due_at,
                started_at: started.at,
                lease_until: started.lease_until,
                outcome: None,
                callback_done: false,
            });
            self.history.push_back(Run {
                run: started.run,
                due_at: started.due_at,
                started_at: started.at,
                claims: started.claim,
                finished_at: None,
                outcome: None,
                status: None,
                error: None,
                attempts: Vec::new(),
                callback: None,
            });
            self.compact(started.at);
        } else if let Some(current) = self.current.as_mut().filter(|c| c.run == started.run) {
            current.claim = started.claim;
            current.lease_until = started.lease_until;
            if let Some(run) = self.run_mut(started.run) {
                run.claims = started.claim;
            }
        }
    }

    fn attempt_made(&mut self, made: Received<AttemptMade>) {
        let made = made.into_data();
        if let Some(run) = self.run_mut(made.run) {
            run.status = made.status;
            run.error.clone_from(&made.error);
            run.attempts.push(Attempt {
                claim: made.claim,
                attempt: made.attempt,
                at: made.at,
                duration_ms: made.duration_ms,
                status: made.status,
                error: made.error,
                body: made.body,
                body_truncated: made.body_truncated,
            });
        }
    }

    fn finished(
        &mut self,
        run: u32,
        at: DateTime<Utc>,
        outcome: Outcome,
        status: Option<u16>,
        error: Option<String>,
    ) {
        let Some(current) = self.current.as_mut().filter(|c| c.run == run) else {
            return;
        };
        if current.outcome.is_some() {
            return;
        }
        current.outcome = Some(outcome);
        self.runs_finished += 1;
        if let Some(kept) = self.run_mut(run) {
            kept.finished_at = Some(at);
            kept.outcome = Some(outcome);
            kept.status = status;
            kept.error = error;
        }
    }

    fn callback(&mut self, run: u32, result: CallbackResult) {
        if let Some(current) = self.current.as_mut().filter(|c| c.run == run) {
            current.callback_done = true;
        }
        if let Some(kept) = self.run_mut(run) {
            kept.callback = Some(result);
        }
    }
}

impl Entity for Job {
    const CATEGORY: &'static str = crate::JOB_CATEGORY;

    fn projection() -> Projection<Self> {
        Projection::new()
            .apply(Job::scheduled)
            .apply(|job: &mut Job, cancelled: Received<Cancelled>| {
                job.cancelled_at.get_or_insert(cancelled.at);
            })
            .apply(Job::run_started)
            .apply(Job::attempt_made)
            .apply(|job: &mut Job, succeeded: Received<RunSucceeded>| {
                job.finished(
                    succeeded.run,
                    succeeded.at,
                    Outcome::Succeeded,
                    Some(succeeded.status),
                    None,
                );
            })
            .apply(|job: &mut Job, failed: Received<RunFailed>| {
                let failed = failed.into_data();
                job.finished(
                    failed.run,
                    failed.at,
                    Outcome::Failed,
                    failed.status,
                    Some(failed.error),
                );
            })
            .apply(|job: &mut Job, delivered: Received<CallbackDelivered>| {
                job.callback(
                    delivered.run,
                    CallbackResult {
                        delivered: true,
                        at: delivered.at,
                        status: Some(delivered.status),
                        error: None,
                        attempts: delivered.attempts,
                    },
                );
            })
            .apply(|job: &mut Job, failed: Received<CallbackFailed>| {
                let failed = failed.into_data();
                job.callback(
                    failed.run,
                    CallbackResult {
                        delivered: false,
                        at: failed.at,
                        status: None,
                        error: Some(failed.error),
                        attempts: failed.attempts,
                    },
                );
            })
            .apply(|job: &mut Job, completed: Received<Completed>| {
                job.completed_at.get_or_insert(completed.at);
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{RequestSpec, ScheduleSpec};

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_900_000_000_000 + ms).unwrap()
    }

    fn job(schedule: Option<ScheduleSpec>) -> Job {
        Job {
            id: "j".into(),
            spec: Some(JobSpec {
                request: RequestSpec {
                    method: "GET".into(),
                    url: "http://example.com/".into(),
                    headers: Default::default(),
                    body: None,
                },
                schedule,
                retry: None,
                callback: None,
            }),
            requested_at: Some(t(0)),
            keep_runs: 3,
            keep_for_ms: 1_000_000,
            ..Job::default()
        }
    }

    fn start(job: &mut Job, run: u32, claim: u32, due: i64, at: i64) {
        job.run_started(fake(RunStarted {
            run,
            claim,
            due_at: t(due),
            at: t(at),
            by: "a".into(),
            lease_until: t(at + 100),
        }));
    }

    fn fake<T: ebb_handler::MessageType>(data: T) -> Received<T> {
        use ebb_handler::IntoMessageData as _;
        let data = data.into_message_data().unwrap();
        let message = ebb_message_store::Message {
            id: uuid::Uuid::new_v4(),
            stream_name: "httpJob-j".into(),
            type_name: data.type_name.clone(),
            position: 0,
            global_position: 1,
            data: data.data.into(),
            metadata: Default::default(),
            time: Utc::now(),
        };
        Received::decode(message).unwrap()
    }

    #[test]
    fn a_job_that_runs_once_is_due_at_its_start_and_then_never() {
        let mut job = job(None);
        assert_eq!(job.state(), Some(State::Scheduled));
        assert_eq!(job.work(t(0)).map(|w| (w.run, w.claim)), Some((1, 1)));
        start(&mut job, 1, 1, 0, 5);
        assert_eq!(job.state(), Some(State::Running));
        assert_eq!(job.work(t(50)), None, "the lease holds");
        assert_eq!(
            job.work(t(105)).map(|w| (w.run, w.claim)),
            Some((1, 2)),
            "the lease ran out: claimed again"
        );
        job.finished(1, t(60), Outcome::Succeeded, Some(200), None);
        assert_eq!(job.next_due(), None);
        assert_eq!(job.work(t(1_000)), None);
    }

    #[test]
    fn a_repeating_job_keeps_its_slots_and_does_not_burst_after_a_late_start() {
        let mut job = job(Some(ScheduleSpec {
            start_at: Some(t(1_000)),
            every_ms: Some(100),
            max_runs: Some(3),
            end_at: None,
        }));
        assert_eq!(job.work(t(999)), None);
        assert_eq!(job.wake_at(), Some(t(1_000)));
        start(&mut job, 1, 1, 1_000, 1_003);
        job.finished(1, t(1_010), Outcome::Failed, Some(500), None);
        assert_eq!(job.next_due(), Some(t(1_100)), "on its slot, not drifting");
        start(&mut job, 2, 1, 1_100, 5_000);
        job.finished(2, t(5_010), Outcome::Succeeded, Some(200), None);
        assert_eq!(
            job.next_due(),
            Some(t(5_100)),
            "one interval after the late start"
        );
        start(&mut job, 3, 1, 5_100, 5_100);
        job.finished(3, t(5_110), Outcome::Succeeded, Some(200), None);
        assert_eq!(job.next_due(), None, "maxRuns reached");
        assert_eq!(job.runs_finished, 3);
    }

    #[test]
    fn no_run_is_due_past_the_end() {
        let mut job = job(Some(ScheduleSpec {
            start_at: Some(t(0)),
            every_ms: Some(100),
            end_at: Some(t(150)),
            max_runs: None,
        }));
        start(&mut job, 1, 1, 0, 0);
        job.finished(1, t(1), Outcome::Succeeded, Some(200), None);
        assert_eq!(job.next_due(), Some(t(100)));
        start(&mut job, 2, 1, 100, 100);
        job.finished(2, t(101), Outcome::Succeeded, Some(200), None);
        assert_eq!(job.next_due(), None);
    }

    #[test]
    fn a_cancelled_job_claims_nothing_more() {
        let mut job = job(Some(ScheduleSpec {
            every_ms: Some(100),
            ..ScheduleSpec::default()
        }));
        start(&mut job, 1, 1, 0, 0);
        job.cancelled_at = Some(t(10));
        assert_eq!(job.state(), Some(State::Cancelled));
        assert_eq!(job.work(t(10_000)), None, "not even the unfinished run");
        assert_eq!(job.wake_at(), None);
    }

    #[test]
    fn history_is_compacted_to_the_jobs_retention() {
        let mut job = job(Some(ScheduleSpec {
            every_ms: Some(100),
            ..ScheduleSpec::default()
        }));
        for run in 1..=5 {
            let at = i64::from(run) * 100;
            start(&mut job, run, 1, at, at);
            job.finished(run, t(at + 1), Outcome::Succeeded, Some(200), None);
        }
        let kept: Vec<u32> = job.history.iter().map(|run| run.run).collect();
        assert_eq!(kept, [3, 4, 5]);
        let returned: Vec<u32> = job
            .retained(t(600), 2, Duration::seconds(60))
            .map(|run| run.run)
            .collect();
        assert_eq!(returned, [4, 5]);
        let recent: Vec<u32> = job
            .retained(t(600), 10, Duration::milliseconds(150))
            .map(|run| run.run)
            .collect();
        assert_eq!(recent, [5], "run 4 finished 199 ms before");
        assert_eq!(job.runs_finished, 5);
    }
}
