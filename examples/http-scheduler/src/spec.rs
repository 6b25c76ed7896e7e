//! What a client asks for: the JSON of `POST /jobs`, and the checks it
//! passes before anything is written.
//!
//! The same types are stored in the `Schedule` command and the
//! `Scheduled` event, so a job's stream says exactly what was asked. Every
//! object refuses fields it does not know, on the wire and in the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest request body a job may send, in bytes.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// The most retry intervals a job may have.
pub const MAX_RETRY_INTERVALS: usize = 20;
/// The longest retry interval, in milliseconds (one day).
pub const MAX_RETRY_INTERVAL_MS: i64 = 86_400_000;
/// The statuses retried when a job's `retry` names none.
pub const DEFAULT_RETRY_STATUS: [u16; 4] = [429, 502, 503, 504];

/// `POST /jobs`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// The call each run makes.
    pub request: RequestSpec,
    /// When it runs; absent: once, now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// How a failed call is retried within a run; absent: not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Where the outcome of each run is posted; absent: nowhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackSpec>,
}

/// The HTTP request of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestSpec {
    /// `GET`, `POST` or `PUT`.
    pub method: String,
    /// An `http` or `https` URL.
    pub url: String,
    /// Headers sent as they are (besides `Idempotency-Key`, which the
    /// scheduler sets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body sent, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// When a job runs: once (no `everyMs`), or every `everyMs` from
/// `startAt` until `endAt` or `maxRuns` runs, whichever comes first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The first run's time; absent: when the job is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<DateTime<Utc>>,
    /// The interval between runs, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<i64>,
    /// No run is due after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<DateTime<Utc>>,
    /// At most this many runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<i64>,
}

/// How a run retries its call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySpec {
    /// The waits before each retry, in milliseconds: a run makes at most
    /// `1 + intervalsMs.len()` attempts.
    #[serde(default)]
    pub intervals_ms: Vec<i64>,
    /// The response statuses retried. Default: 429, 502, 503, 504.
    #[serde(default = "default_retry_status")]
    pub retry_status: Vec<u16>,
    /// Whether a call that got no response (refused, reset, timed out) is
    /// retried. Default: true.
    #[serde(default = "yes")]
    pub retry_transport: bool,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            intervals_ms: Vec::new(),
            retry_status: default_retry_status(),
            retry_transport: true,
        }
    }
}

fn default_retry_status() -> Vec<u16> {
    DEFAULT_RETRY_STATUS.to_vec()
}

fn yes() -> bool {
    true
}

/// Where a job's run outcomes are posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackSpec {
    /// An `http` or `https` URL.
    pub url: String,
}

/// A request refused: the field at fault (`request.url`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The JSON path of the field, dotted (`retry.intervalsMs[1]`); empty
    /// for the body as a whole.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// `field` is wrong because of `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses `POST /jobs`'s body, naming the field of the first error: an
/// unknown field, a missing one, a value of the wrong type.
pub fn parse(body: &[u8]) -> Result<JobSpec, Invalid> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.to_string();
        // A missing field's path stops at its object (an unknown one's
        // names it); name the field itself, as serde's message does.
        let field = match missing_field(&message) {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None if path == "." => String::new(),
            None => path,
        };
        Invalid::new(field, message)
    })
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

impl JobSpec {
    /// The checks that need no network, as of `now`: method, URLs'
    /// syntax, headers, body size, schedule, retry. The addresses the URLs
    /// name are checked by [`crate::address`].
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), Invalid> {
        let request = &self.request;
        if !matches!(request.method.as_str(), "GET" | "POST" | "PUT") {
            return Err(Invalid::new(
                "request.method",
                format!("{:?} is not GET, POST or PUT", request.method),
            ));
        }
        check_url_syntax("request.url", &request.url)?;
        for (name, value) in &request.headers {
            let field = format!("request.headers.{name}");
            let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Invalid::new(&field, "not a valid header name"))?;
            if header == "idempotency-key" || header == reqwest::header::HOST {
                return Err(Invalid::new(&field, "set by the scheduler"));
            }
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| Invalid::new(&field, "not a valid header value"))?;
        }
        if let Some(body) = &request.body {
            if body.len() > MAX_REQUEST_BODY {
                return Err(Invalid::new(
                    "request.body",
                    format!("longer than {MAX_REQUEST_BODY} bytes"),
                ));
            }
        }
        if let Some(schedule) = &self.schedule {
            schedule.check(now)?;
        }
        if let Some(retry) = &self.retry {
            retry.check()?;
        }
        if let Some(callback) = &self.callback {
            check_url_syntax("callback.url", &callback.url)?;
        }
        Ok(())
    }

    /// The schedule, or the one of a job that runs once, now.
    pub fn schedule(&self) -> ScheduleSpec {
        self.schedule.clone().unwrap_or_default()
    }

    /// The retry policy, or the one that retries nothing.
    pub fn retry(&self) -> RetrySpec {
        self.retry.clone().unwrap_or_default()
    }
}

impl ScheduleSpec {
    fn check(&self, now: DateTime<Utc>) -> Result<(), Invalid> {
        match self.every_ms {
            Some(every) if every < 1 => {
                return Err(Invalid::new(
                    "schedule.everyMs",
                    format!("{every} is not a positive number of milliseconds"),
                ));
            }
            None if self.end_at.is_some() => {
                return Err(Invalid::new(
                    "schedule.endAt",
                    "only a job that repeats (everyMs) has an end",
                ));
            }
            None if self.max_runs.is_some() => {
                return Err(Invalid::new(
                    "schedule.maxRuns",
                    "only a job that repeats (everyMs) has a maximum number of runs",
                ));
            }
            _ => {}
        }
        if let Some(max_runs) = self.max_runs {
            if max_runs < 1 {
                return Err(Invalid::new(
                    "schedule.maxRuns",
                    format!("{max_runs} is not a positive number of runs"),
                ));
            }
        }
        if let Some(end) = self.end_at {
            let start = self.start_at.unwrap_or(now);
            if end < start {
                return Err(Invalid::new(
                    "schedule.endAt",
                    format!("{} is before the start, {}", rfc3339(end), rfc3339(start)),
                ));
            }
        }
        Ok(())
    }

    /// True for a job that runs once.
    pub fn once(&self) -> bool {
        self.every_ms.is_none()
    }
}

impl RetrySpec {
    fn check(&self) -> Result<(), Invalid> {
        if self.intervals_ms.len() > MAX_RETRY_INTERVALS {
            return Err(Invalid::new(
                "retry.intervalsMs",
                format!("more than {MAX_RETRY_INTERVALS} intervals"),
            ));
        }
        for (index, &interval) in self.intervals_ms.iter().enumerate() {
            if !(0..=MAX_RETRY_INTERVAL_MS).contains(&interval) {
                return Err(Invalid::new(
                    format!("retry.intervalsMs[{index}]"),
                    format!("{interval} is not between 0 and {MAX_RETRY_INTERVAL_MS} milliseconds"),
                ));
            }
        }
        for (index, &status) in self.retry_status.iter().enumerate() {
            if !(100..=599).contains(&status) {
                return Err(Invalid::new(
                    format!("retry.retryStatus[{index}]"),
                    format!("{status} is not an HTTP status"),
                ));
            }
        }
        Ok(())
    }
}

/// An `http` or `https` URL with a host.
fn check_url_syntax(field: &str, url: &str) -> Result<reqwest::Url, Invalid> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| Invalid::new(field, format!("{url:?} is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid::new(
            field,
            format!("{url:?}: only http and https URLs are called"),
        ));
    }
    if parsed.host().is_none() {
        return Err(Invalid::new(field, format!("{url:?} has no host")));
    }
    Ok(parsed)
}

/// A time as the API writes it: RFC 3339, milliseconds, `Z`.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn field_of(body: &str) -> String {
        match parse(body.as_bytes()) {
            Ok(spec) => spec.check(now()).unwrap_err().field,
            Err(err) => err.field,
        }
    }

    #[test]
    fn the_smallest_job_is_a_method_and_a_url() {
        let spec =
            parse(br#"{"request": {"method": "GET", "url": "http://example.com/"}}"#).unwrap();
        spec.check(now()).unwrap();
        assert!(spec.schedule().once());
        assert_eq!(spec.retry().retry_status, DEFAULT_RETRY_STATUS);
        assert!(spec.retry().intervals_ms.is_empty());
    }

    #[test]
    fn the_full_shape_parses() {
        let spec = parse(
            br#"{"request": {"method": "POST", "url": "https://example.com/x", "headers": {"k": "v"}, "body": "hi"},
                 "schedule": {"startAt": "2030-01-01T00:00:01Z", "everyMs": 200, "endAt": "2030-01-02T00:00:00+01:00", "maxRuns": 10},
                 "retry": {"intervalsMs": [100, 200], "retryStatus": [429, 503], "retryTransport": false},
                 "callback": {"url": "http://example.com/cb"}}"#,
        )
        .unwrap();
        spec.check(now()).unwrap();
        assert_eq!(spec.schedule().every_ms, Some(200));
        assert!(!spec.retry().retry_transport);
    }

    #[test]
    fn each_bad_request_names_its_field() {
        for (body, field) in [
            (
                r#"{"request": {"method": "GET", "url": "http://a/", "verb": 1}}"#,
                "request.verb",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "extra": 1}"#,
                "extra",
            ),
            (r#"{"request": {"method": "GET"}}"#, "request.url"),
            (r#"{"request": {"method": "GET", "url": 5}}"#, "request.url"),
            (
                r#"{"request": {"method": "DELETE", "url": "http://a/"}}"#,
                "request.method",
            ),
            (
                r#"{"request": {"method": "GET", "url": "not a url"}}"#,
                "request.url",
            ),
            (
                r#"{"request": {"method": "GET", "url": "ftp://a/"}}"#,
                "request.url",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/", "headers": {"a b": "v"}}}"#,
                "request.headers.a b",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "schedule": {"everyMs": -5}}"#,
                "schedule.everyMs",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "schedule": {"everyMs": 10, "startAt": "2030-01-02T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"}}"#,
                "schedule.endAt",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "schedule": {"startAt": "yesterday"}}"#,
                "schedule.startAt",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "schedule": {"maxRuns": 3}}"#,
                "schedule.maxRuns",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "retry": {"intervalsMs": [10, -1]}}"#,
                "retry.intervalsMs[1]",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "retry": {"retryStatus": [42]}}"#,
                "retry.retryStatus[0]",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "callback": {"url": "mailto:x@y"}}"#,
                "callback.url",
            ),
            (
                r#"{"request": {"method": "GET", "url": "http://a/"}, "callback": {}}"#,
                "callback.url",
            ),
            ("[", ""),
        ] {
            assert_eq!(field_of(body), field, "{body}");
        }
    }
}
