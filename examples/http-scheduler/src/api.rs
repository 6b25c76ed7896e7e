//! The JSON HTTP API (see the crate documentation for each route).
//!
//! `POST /jobs` and `DELETE /jobs/ID` write a command to
//! `httpJob:command-ID` and handle it at once with the same handler the
//! consumers run, so the job (or its cancellation) is in `httpJob-ID` when
//! they answer; the consumers, handling it again, find it done. `GET`
//! answers from the job entity (one fetch: cache, snapshot, newer events),
//! and `GET /jobs` from the instance's index of jobs, which follows the
//! store within moments.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use ebb_handler::Writer;
use ebb_message_store::{ExpectedVersion, MessageStore, StreamName};
use serde_json::{Value, json};

use crate::COMMAND_CATEGORY;
use crate::job::{Job, State};
use crate::messages::{Cancel, Schedule};
use crate::scheduler::Scheduler;
use crate::spec::{self, Invalid, rfc3339};

/// The most items one page of `GET /jobs` or of a history holds.
pub const MAX_PAGE: usize = 1_000;

/// The API's routes on `scheduler`.
pub fn router<S: MessageStore>(scheduler: Arc<Scheduler<S>>) -> Router {
    Router::new()
        .route("/jobs", get(list::<S>).post(create::<S>))
        .route("/jobs/{id}", get(show::<S>).delete(cancel::<S>))
        .route("/jobs/{id}/history", get(history::<S>))
        .with_state(scheduler)
}

/// A JSON answer.
fn reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `400 {"error", "field"}`.
fn bad_request(invalid: &Invalid) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        &json!({ "error": invalid.to_string(), "field": invalid.field }),
    )
}

fn not_found(id: &str) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        &json!({ "error": format!("no job {id}") }),
    )
}

fn internal(err: &dyn std::error::Error) -> Response {
    tracing::error!(error = %err, "the API failed on the store");
    reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({ "error": err.to_string() }),
    )
}

/// `POST /jobs`: checks everything, then writes `Schedule` and handles
/// it; `201 {"id"}`.
async fn create<S: MessageStore>(
    Extract(scheduler): Extract<Arc<Scheduler<S>>>,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let job = match spec::parse(&body).and_then(|job| job.check(now).map(|()| job)) {
        Ok(job) => job,
        Err(invalid) => return bad_request(&invalid),
    };
    let policy = scheduler.caller.policy();
    if let Err(refused) = policy.check_target(&job.request.url).await {
        return bad_request(&Invalid::new("request.url", refused.to_string()));
    }
    if let Some(callback) = &job.callback {
        if let Err(refused) = policy.check_target(&callback.url).await {
            return bad_request(&Invalid::new("callback.url", refused.to_string()));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let command = Schedule {
        job_id: id.clone(),
        job,
        requested_at: now,
    };
    match write_and_handle(&scheduler, &id, command, ExpectedVersion::NoStream).await {
        Ok(()) => reply(StatusCode::CREATED, &json!({ "id": id })),
        Err(err) => internal(err.as_ref()),
    }
}

/// Writes `command` to `httpJob:command-ID` and handles it here.
async fn write_and_handle<S: MessageStore, M: ebb_handler::MessageType>(
    scheduler: &Scheduler<S>,
    id: &str,
    command: M,
    expected: ExpectedVersion,
) -> Result<(), ebb_handler::BoxError> {
    let stream = StreamName::new(COMMAND_CATEGORY, id)?;
    let type_name = M::TYPE_NAME;
    Writer::new(scheduler.store.clone())
        .write(&stream, command, expected)
        .await?;
    let written = scheduler
        .store
        .get_last_stream_message(stream.as_str(), Some(type_name))
        .await?
        .ok_or("the command just written is not in its stream")?;
    scheduler.commands.dispatch(&written).await?;
    scheduler.refresh(id).await?;
    Ok(())
}

/// `GET /jobs/ID`.
async fn show<S: MessageStore>(
    Extract(scheduler): Extract<Arc<Scheduler<S>>>,
    Path(id): Path<String>,
) -> Response {
    match fetch(&scheduler, &id).await {
        Ok(Some(job)) => reply(StatusCode::OK, &view(&job)),
        Ok(None) => not_found(&id),
        Err(response) => response,
    }
}

/// The job, `None` when there is no such job (or the id cannot name one).
async fn fetch<S: MessageStore>(
    scheduler: &Scheduler<S>,
    id: &str,
) -> Result<Option<Job>, Response> {
    if StreamName::new(crate::JOB_CATEGORY, id).is_err() {
        return Ok(None);
    }
    match scheduler.jobs.fetch(id).await {
        Ok((job, _)) if job.exists() => Ok(Some(job)),
        Ok(_) => Ok(None),
        Err(err) => Err(internal(&err)),
    }
}

/// `GET /jobs/ID`'s JSON.
pub fn view(job: &Job) -> Value {
    let spec = job.spec.as_ref();
    let last = job.current.as_ref().map(|current| {
        json!({
            "run": current.run,
            "claims": current.claim,
            "dueAt": rfc3339(current.due_at),
            "startedAt": rfc3339(current.started_at),
            "outcome": current.outcome,
        })
    });
    json!({
        "id": job.id,
        "state": job.state(),
        "runs": job.runs_finished,
        "runsStarted": job.runs_started,
        "nextRunAt": job.next_due().map(rfc3339),
        "createdAt": job.requested_at.map(rfc3339),
        "cancelledAt": job.cancelled_at.map(rfc3339),
        "completedAt": job.completed_at.map(rfc3339),
        "lastRun": last,
        "request": spec.map(|spec| &spec.request),
        "schedule": spec.map(spec::JobSpec::schedule),
        "retry": spec.map(spec::JobSpec::retry),
        "callback": spec.and_then(|spec| spec.callback.as_ref()),
    })
}

/// An optional non-negative integer query parameter.
fn param(query: &HashMap<String, String>, name: &str) -> Result<Option<usize>, Invalid> {
    query
        .get(name)
        .map(|value| {
            value
                .parse::<usize>()
                .map_err(|_| Invalid::new(name, format!("{value:?} is not a non-negative integer")))
        })
        .transpose()
}

/// `limit`, between 1 and [`MAX_PAGE`], `default` when absent.
fn limit(query: &HashMap<String, String>, default: usize) -> Result<usize, Invalid> {
    let limit = param(query, "limit")?.unwrap_or(default);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Invalid::new(
            "limit",
            format!("{limit} is not between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// `GET /jobs?state=&offset=&limit=`.
async fn list<S: MessageStore>(
    Extract(scheduler): Extract<Arc<Scheduler<S>>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let parsed = (|| {
        let state = query
            .get("state")
            .map(|name| {
                State::parse(name).ok_or_else(|| {
                    Invalid::new(
                        "state",
                        format!(
                            "{name:?} is not scheduled, running, succeeded, failed, cancelled or completed"
                        ),
                    )
                })
            })
            .transpose()?;
        Ok::<_, Invalid>((
            state,
            param(&query, "offset")?.unwrap_or(0),
            limit(&query, 100)?,
        ))
    })();
    let (state, offset, limit) = match parsed {
        Ok(parsed) => parsed,
        Err(invalid) => return bad_request(&invalid),
    };
    let (jobs, total) = scheduler.list(state, offset, limit);
    reply(
        StatusCode::OK,
        &json!({
            "jobs": jobs.iter().map(crate::scheduler::Summary::to_json).collect::<Vec<_>>(),
            "total": total,
            "offset": offset,
            "limit": limit,
        }),
    )
}

/// `GET /jobs/ID/history?from=&limit=`: the retained runs from run
/// `from` on.
async fn history<S: MessageStore>(
    Extract(scheduler): Extract<Arc<Scheduler<S>>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (from, limit) = match param(&query, "from").and_then(|from| Ok((from, limit(&query, 100)?)))
    {
        Ok((from, limit)) => (from.unwrap_or(0), limit),
        Err(invalid) => return bad_request(&invalid),
    };
    let job = match fetch(&scheduler, &id).await {
        Ok(Some(job)) => job,
        Ok(None) => return not_found(&id),
        Err(response) => return response,
    };
    let settings = &scheduler.settings;
    let keep_runs = settings.keep_runs.min(job.keep_runs.max(1));
    let keep_for = chrono::Duration::from_std(settings.keep_for)
        .unwrap_or(chrono::Duration::MAX)
        .min(chrono::Duration::milliseconds(job.keep_for_ms));
    let mut runs = job
        .retained(Utc::now(), keep_runs, keep_for)
        .filter(|run| run.run as usize >= from);
    let page: Vec<_> = runs.by_ref().take(limit).collect();
    let next_from = runs.next().map(|run| run.run);
    reply(
        StatusCode::OK,
        &json!({ "id": job.id, "runs": page, "nextFrom": next_from }),
    )
}

/// `DELETE /jobs/ID`: `200` with the job, cancelled (also when it was
/// already); `404` for no such job, `409` for a job that has ended.
async fn cancel<S: MessageStore>(
    Extract(scheduler): Extract<Arc<Scheduler<S>>>,
    Path(id): Path<String>,
) -> Response {
    let job = match fetch(&scheduler, &id).await {
        Ok(Some(job)) => job,
        Ok(None) => return not_found(&id),
        Err(response) => return response,
    };
    if job.cancelled_at.is_none() {
        if job.ended() {
            return reply(
                StatusCode::CONFLICT,
                &json!({ "error": format!("job {id} has ended"), "state": job.state() }),
            );
        }
        let command = Cancel {
            job_id: id.clone(),
            requested_at: Utc::now(),
        };
        if let Err(err) = write_and_handle(&scheduler, &id, command, ExpectedVersion::Any).await {
            return internal(err.as_ref());
        }
    }
    match fetch(&scheduler, &id).await {
        Ok(Some(job)) => reply(StatusCode::OK, &view(&job)),
        Ok(None) => not_found(&id),
        Err(response) => response,
    }
}
