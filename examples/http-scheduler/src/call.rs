//! One HTTP call: the request, its redirects (each hop's address checked),
//! the response's status, `Retry-After` and body (captured up to a bound),
//! all within the per-call timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use ebb_retry::Chain;
use reqwest::{Method, StatusCode, Url, header};

use crate::address::{AddressPolicy, GuardedResolver, Refused};
use crate::settings::Settings;

/// Makes calls; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Follows no redirect itself, resolves through [`GuardedResolver`],
    /// and ignores proxy variables (a proxy would connect for us, to an
    /// address we did not check).
    client: reqwest::Client,
    policy: AddressPolicy,
    timeout: Duration,
    body_limit: usize,
    max_redirects: usize,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// GET, POST or PUT.
    pub method: Method,
    /// Where.
    pub url: &'a str,
    /// Headers as given.
    pub headers: &'a BTreeMap<String, String>,
    /// The body, if any.
    pub body: Option<String>,
    /// The `Idempotency-Key` header's value.
    pub idempotency_key: String,
}

/// A call that got a 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Its status.
    pub status: u16,
}

/// Why a call did not succeed.
///
/// Recorded messages keep it as [`recorded_text`](Self::recorded_text):
/// its message and its causes on one line.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// An answer outside 2xx.
    #[error("answered {status}")]
    Status {
        /// The status.
        status: u16,
        /// The wait its `Retry-After` asked for, if any.
        retry_after: Option<Duration>,
    },
    /// No answer: refused, reset, or a body cut short. The client's error
    /// and its causes say which.
    #[error("no answer")]
    Transport(#[source] reqwest::Error),
    /// No answer within the per-call timeout.
    #[error("no answer: timed out after {} ms", .after.as_millis())]
    TimedOut {
        /// The per-call timeout.
        after: Duration,
    },
    /// The address (or a redirect's) may not be called.
    #[error("refused: {0}")]
    Refused(Refused),
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    Redirects(usize),
}

/// What one call did, as `AttemptMade` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When it started.
    pub at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// The last response's status, if any.
    pub status: Option<u16>,
    /// The error, if it failed.
    pub error: Option<String>,
    /// The last response's body, up to the bound.
    pub body: Option<String>,
    /// True when the body was cut.
    pub body_truncated: bool,
}

impl CallError {
    /// The error and its causes on one line (`no answer: error sending
    /// request for url (…): …`): the text recorded messages keep
    /// (`AttemptMade`, `RunFailed`, `CallbackFailed`).
    pub fn recorded_text(&self) -> String {
        Chain::new(self).to_string()
    }

    /// Whether the call got no answer at all: what `retryTransport`
    /// retries.
    pub fn is_no_answer(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::TimedOut { .. })
    }
}

impl Caller {
    /// A caller with `settings`' address policy, timeout, body bound and
    /// redirect limit.
    pub fn new(settings: &Settings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::new(settings.addresses))
            .connect_timeout(settings.call_timeout)
            .user_agent(concat!("ebb-http-scheduler/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            policy: settings.addresses,
            timeout: settings.call_timeout,
            body_limit: settings.body_limit,
            max_redirects: settings.max_redirects,
        })
    }

    /// The address policy calls are made under.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Makes one call (following redirects) within the timeout.
    pub async fn call(&self, request: &Request<'_>) -> (Record, Result<Response, CallError>) {
        let at = Utc::now();
        let started = Instant::now();
        let mut seen = Seen::default();
        let result = match tokio::time::timeout(self.timeout, self.follow(request, &mut seen)).await
        {
            Ok(result) => result,
            Err(_) => Err(CallError::TimedOut {
                after: self.timeout,
            }),
        };
        let record = Record {
            at,
            duration: started.elapsed(),
            status: seen.status,
            error: result.as_ref().err().map(CallError::recorded_text),
            body: seen.body,
            body_truncated: seen.body_truncated,
        };
        (record, result)
    }

    async fn follow(&self, request: &Request<'_>, seen: &mut Seen) -> Result<Response, CallError> {
        let mut url = Url::parse(request.url)
            .map_err(|err| CallError::Refused(Refused::Url(format!("{:?}: {err}", request.url))))?;
        let mut method = request.method.clone();
        let mut body = request.body.clone();
        for _hop in 0..=self.max_redirects {
            self.policy.check_url(&url).map_err(CallError::Refused)?;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .header("Idempotency-Key", &request.idempotency_key);
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = builder.send().await.map_err(transport)?;
            let status = response.status();
            seen.status = Some(status.as_u16());
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let retry_after = retry_after(response.headers(), SystemTime::now());
            self.capture(response, seen).await?;
            match (status, location) {
                (status, _) if status.is_success() => {
                    return Ok(Response {
                        status: status.as_u16(),
                    });
                }
                (
                    StatusCode::MOVED_PERMANENTLY
                    | StatusCode::FOUND
                    | StatusCode::SEE_OTHER
                    | StatusCode::TEMPORARY_REDIRECT
                    | StatusCode::PERMANENT_REDIRECT,
                    Some(location),
                ) => {
                    url = url.join(&location).map_err(|err| {
                        CallError::Refused(Refused::Url(format!("redirect to {location:?}: {err}")))
                    })?;
                    // As browsers and curl do: a 303, and a 301 or 302
                    // after a POST, become a GET without a body.
                    if status == StatusCode::SEE_OTHER
                        || (method == Method::POST
                            && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND))
                    {
                        method = Method::GET;
                        body = None;
                    }
                }
                (status, _) => {
                    return Err(CallError::Status {
                        status: status.as_u16(),
                        retry_after,
                    });
                }
            }
        }
        Err(CallError::Redirects(self.max_redirects))
    }

    /// Reads the body up to the bound; what lies past it is not read.
    async fn capture(
        &self,
        mut response: reqwest::Response,
        seen: &mut Seen,
    ) -> Result<(), CallError> {
        let mut captured = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let room = self.body_limit - captured.len();
            if chunk.len() > room {
                captured.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            captured.extend_from_slice(&chunk);
        }
        seen.body = Some(String::from_utf8_lossy(&captured).into_owned());
        seen.body_truncated = truncated;
        Ok(())
    }
}

/// What the hops of one call have shown so far.
#[derive(Debug, Default)]
struct Seen {
    status: Option<u16>,
    body: Option<String>,
    body_truncated: bool,
}

/// A client error: refused by the resolver's address check, or a
/// transport failure, kept with its causes.
fn transport(err: reqwest::Error) -> CallError {
    if let Some(refused) = ebb_retry::find_in_chain::<Refused>(&err) {
        return CallError::Refused(refused.clone());
    }
    CallError::Transport(err)
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date
/// (a date in the past asks for none).
pub fn retry_after(headers: &header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut headers = header::HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(2)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        headers.insert(header::RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        headers.insert(header::RETRY_AFTER, earlier.parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }
}
