//! The command handlers: `Schedule` → `Scheduled`, `Cancel` →
//! `Cancelled`, each idempotent, for the consumer of `httpJob:command` of
//! every instance (and for the API, which handles the command it wrote at
//! once rather than waiting for a consumer to).

use std::sync::Arc;

use chrono::Utc;
use ebb_handler::retry::on_wrong_expected_version;
use ebb_handler::{Dispatcher, EntityStore, Handler, MessageType as _, Received, Writer};
use ebb_message_store::{MessageStore, StreamName};
use ebb_retry::{Retry, RetryError};

use crate::JOB_CATEGORY;
use crate::job::Job;
use crate::messages::{Cancel, Cancelled, Schedule, Scheduled};
use crate::settings::Settings;

/// The handlers of `Schedule` and `Cancel`.
#[derive(Debug)]
pub struct Commands<S> {
    jobs: EntityStore<Job, S>,
    writer: Writer<S>,
    /// On the expected-version conflict: a run's events written between
    /// the fetch and the `Cancelled`.
    retry: Retry,
    /// The retention written into each `Scheduled`.
    keep_runs: u32,
    keep_for_ms: i64,
}

impl<S: MessageStore> Commands<S> {
    /// The handlers on `store`, sharing the entity store `jobs`.
    pub fn new(store: &S, jobs: EntityStore<Job, S>, settings: &Settings) -> Self {
        Self {
            jobs,
            writer: Writer::new(store.clone()),
            retry: Retry::intervals_ms([10, 50, 100, 500, 1_000])
                .rule(on_wrong_expected_version())
                .build()
                .expect("fixed intervals make a valid policy"),
            keep_runs: settings.keep_runs,
            keep_for_ms: i64::try_from(settings.keep_for.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// A dispatcher of both commands to one shared set of handlers.
    pub fn dispatcher(self: Arc<Self>) -> Dispatcher {
        Dispatcher::new()
            .on::<Schedule, _>(Shared(Arc::clone(&self)))
            .on::<Cancel, _>(Shared(self))
            .log_skipped(true)
    }
}

impl<S: MessageStore> Handler<Schedule> for Commands<S> {
    type Error = ebb_handler::Error;

    /// `Scheduled` as the first message of `httpJob-JOB_ID`: a job is
    /// scheduled once, however often its command is handled.
    async fn handle(&self, schedule: Received<Schedule>) -> Result<(), ebb_handler::Error> {
        let stream = StreamName::new(JOB_CATEGORY, &schedule.job_id)?;
        let scheduled = Scheduled {
            job_id: schedule.job_id.clone(),
            job: schedule.job.clone(),
            requested_at: schedule.requested_at,
            keep_runs: self.keep_runs,
            keep_for_ms: self.keep_for_ms,
            sequence: schedule.global_position(),
        };
        match self
            .writer
            .reserve(&stream, scheduled.follow(&schedule))
            .await?
        {
            ebb_handler::Reservation::Made => {
                tracing::info!(job = %schedule.job_id, "job scheduled");
            }
            ebb_handler::Reservation::AlreadyMade => {
                tracing::debug!(job = %schedule.job_id, "job scheduled already");
            }
        }
        Ok(())
    }
}

impl<S: MessageStore> Handler<Cancel> for Commands<S> {
    type Error = ebb_handler::Error;

    /// `Cancelled`, unless the job is unknown or has ended.
    async fn handle(&self, cancel: Received<Cancel>) -> Result<(), ebb_handler::Error> {
        let stream = StreamName::new(JOB_CATEGORY, &cancel.job_id)?;
        self.retry
            .run(|_cycle| async {
                let (job, version) = self.jobs.fetch(&cancel.job_id).await?;
                if !job.exists() || job.ended() {
                    tracing::info!(job = %cancel.job_id, "cancel of a job unknown or ended; ignored");
                    return Ok(());
                }
                let cancelled = Cancelled {
                    job_id: cancel.job_id.clone(),
                    at: Utc::now(),
                    sequence: cancel.global_position(),
                };
                self.writer
                    .write(&stream, cancelled.follow(&cancel), version)
                    .await?;
                tracing::info!(job = %cancel.job_id, "job cancelled");
                Ok(())
            })
            .await
            .map_err(RetryError::into_last)
    }
}

/// Both routes to one [`Commands`].
struct Shared<S>(Arc<Commands<S>>);

impl<S, T> Handler<T> for Shared<S>
where
    S: MessageStore,
    T: ebb_handler::MessageType,
    Commands<S>: Handler<T, Error = ebb_handler::Error>,
{
    type Error = ebb_handler::Error;

    fn handle(
        &self,
        message: Received<T>,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send {
        self.0.handle(message)
    }
}
