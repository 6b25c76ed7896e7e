//! The scheduler's messages: its interface to every other program.
//!
//! Commands go to `httpJob:command-JOB_ID`; events to `httpJob-JOB_ID`.
//! Keys are camelCase, times RFC 3339, durations in milliseconds.

use chrono::{DateTime, Utc};
use ebb_handler::message;

use crate::spec::JobSpec;

/// Command: schedule a job. Written by `POST /jobs` (or by any client).
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The job's id; its events go to `httpJob-JOB_ID`.
    pub job_id: String,
    /// What to call, when, how to retry, where to report.
    pub job: JobSpec,
    /// When the client asked: a job without a start time starts then.
    pub requested_at: DateTime<Utc>,
}

/// Command: cancel a job's future runs. Written by `DELETE /jobs/ID`.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    /// The job.
    pub job_id: String,
    /// When the client asked.
    pub requested_at: DateTime<Utc>,
}

/// Event: the job exists. The first message of `httpJob-JOB_ID`.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// The job's id.
    pub job_id: String,
    /// As the `Schedule` command gave it.
    pub job: JobSpec,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// The retention the job's history is compacted to (see
    /// [`crate::job`]): at most this many runs...
    pub keep_runs: u32,
    /// ...none older than this, in milliseconds.
    pub keep_for_ms: i64,
    /// The global position of the `Schedule` command.
    pub sequence: i64,
}

/// Event: no further runs. A run in flight finishes and is recorded.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// The job.
    pub job_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The global position of the `Cancel` command.
    pub sequence: i64,
}

/// Event: an instance claimed run `run` (or, with an outcome recorded,
/// the delivery of its callback) until `leaseUntil`. Written expecting the
/// job's version, so of two instances claiming at once one wins. A claim
/// whose lease ran out without an outcome is claimed again, with the next
/// `claim` number: the run is made again with the same idempotency key.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStarted {
    /// The run's number, from 1.
    pub run: u32,
    /// The claim's number for this run, from 1.
    pub claim: u32,
    /// When the run was due.
    pub due_at: DateTime<Utc>,
    /// When it was claimed.
    pub at: DateTime<Utc>,
    /// The instance that claimed it.
    pub by: String,
    /// Until when the claim holds; after it, another instance may claim
    /// the run again.
    pub lease_until: DateTime<Utc>,
}

/// Event: one HTTP call of a run was made.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptMade {
    /// The run.
    pub run: u32,
    /// The claim that made it.
    pub claim: u32,
    /// Within the claim, from 1.
    pub attempt: u32,
    /// When the call started.
    pub at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The response's status, if there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The response body, up to the capture bound, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// True when the body was longer than what was captured.
    #[serde(default)]
    pub body_truncated: bool,
}

/// Event: run `run` got a 2xx response. Exactly one outcome per run.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSucceeded {
    /// The run.
    pub run: u32,
    /// The claim that made the successful call.
    pub claim: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// The response's status.
    pub status: u16,
    /// The attempts the claim made.
    pub attempts: u32,
}

/// Event: run `run` failed, its retries spent or its error not retried.
/// Exactly one outcome per run.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailed {
    /// The run.
    pub run: u32,
    /// The claim that made the last call.
    pub claim: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// The last response's status, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why.
    pub error: String,
    /// The attempts the claim made.
    pub attempts: u32,
}

/// Event: the callback of run `run` was answered with a 2xx.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackDelivered {
    /// The run reported.
    pub run: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// The callback's response status.
    pub status: u16,
    /// Calls made.
    pub attempts: u32,
}

/// Event: the callback of run `run` could not be delivered.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackFailed {
    /// The run reported.
    pub run: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub error: String,
    /// Calls made.
    pub attempts: u32,
}

/// Event: the job has no further runs (its one run, or its last, is
/// recorded). Written with the last outcome.
#[message]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// When.
    pub at: DateTime<Utc>,
    /// The runs it made.
    pub runs: u32,
}
