//! The *service* category (feature `http`): HTTP statuses that say "come
//! back later", with the `http` crate's types, so that it works with any
//! client built on them (reqwest, hyper).
//!
//! A client's error rarely carries the response, so the caller says what
//! the service answered: build an [`HttpStatusError`] from the response
//! ([`from_response`](HttpStatusError::from_response),
//! [`from_parts`](HttpStatusError::from_parts)) and return it, or keep it
//! as the source of your own error. [`Rule::service`] finds it anywhere in
//! the source chain and retries 429, 502, 503 and 504, after exactly the
//! `Retry-After` the service sent (seconds or an HTTP date) when it sent
//! one.
//!
//! ```
//! use ebb_retry::http::HttpStatusError;
//! use ebb_retry::{Constant, Retry};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let retry = Retry::builder().service(Constant::new(Duration::from_secs(1))?.take(3)).build()?;
//!
//! let started = tokio::time::Instant::now();
//! let body = retry
//!     .run(|cycle| async move {
//!         // What the client returned, as `http` types: a 503 asking for
//!         // 2 s, then a 200.
//!         let response = http::Response::builder()
//!             .status(if cycle == 0 { 503 } else { 200 })
//!             .header("retry-after", "2")
//!             .body("hello")
//!             .expect("a valid response");
//!         if !response.status().is_success() {
//!             return Err(HttpStatusError::from_response(&response));
//!         }
//!         Ok(*response.body())
//!     })
//!     .await?;
//! assert_eq!(body, "hello");
//! assert_eq!(started.elapsed(), Duration::from_secs(2));
//! # Ok(())
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, RETRY_AFTER};
use http::{HeaderValue, StatusCode};

use crate::classify::{Decision, Rule, find_in_chain};

/// What an HTTP service answered, as an error: its status and the wait its
/// `Retry-After` header asked for.
///
/// ```
/// use ebb_retry::http::HttpStatusError;
/// use http::StatusCode;
/// use std::time::Duration;
///
/// let err = HttpStatusError::new(StatusCode::TOO_MANY_REQUESTS)
///     .with_retry_after(Duration::from_secs(10));
/// assert_eq!(err.to_string(), "HTTP 429 Too Many Requests");
/// assert!(err.is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStatusError {
    /// The response's status.
    status: StatusCode,
    /// The wait `Retry-After` asked for, from when the response was read;
    /// `None` when the header was absent or unreadable.
    retry_after: Option<Duration>,
}

impl HttpStatusError {
    /// An error for `status`, without a `Retry-After`.
    ///
    /// ```
    /// use ebb_retry::http::HttpStatusError;
    /// use http::StatusCode;
    ///
    /// assert_eq!(HttpStatusError::new(StatusCode::BAD_GATEWAY).retry_after(), None);
    /// ```
    pub fn new(status: StatusCode) -> Self {
        HttpStatusError {
            status,
            retry_after: None,
        }
    }

    /// The same error, asking for a wait of `wait` before a retry.
    ///
    /// ```
    /// use ebb_retry::http::HttpStatusError;
    /// use http::StatusCode;
    /// use std::time::Duration;
    ///
    /// let err = HttpStatusError::new(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(Duration::from_secs(3));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    /// ```
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// An error for `status` with the `Retry-After` of `headers`, read
    /// now: seconds (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00
    /// GMT`, a date in the past meaning no wait). An unreadable header is
    /// ignored.
    ///
    /// ```
    /// use ebb_retry::http::HttpStatusError;
    /// use http::{HeaderMap, StatusCode};
    /// use std::time::Duration;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("retry-after", "120".parse()?);
    /// let err = HttpStatusError::from_headers(StatusCode::TOO_MANY_REQUESTS, &headers);
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_headers(status: StatusCode, headers: &HeaderMap) -> Self {
        HttpStatusError {
            status,
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|value| parse_retry_after(value, SystemTime::now())),
        }
    }

    /// The error a response stands for: its status and `Retry-After`.
    ///
    /// ```
    /// use ebb_retry::http::HttpStatusError;
    /// use http::{Response, StatusCode};
    ///
    /// let response = Response::builder().status(503).header("retry-after", "5").body(())?;
    /// let err = HttpStatusError::from_response(&response);
    /// assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(5)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_response<B>(response: &http::Response<B>) -> Self {
        Self::from_headers(response.status(), response.headers())
    }

    /// The error a response's head stands for, e.g. from
    /// `response.into_parts()`.
    ///
    /// ```
    /// use ebb_retry::http::HttpStatusError;
    ///
    /// let (parts, _body) = http::Response::builder().status(429).body(())?.into_parts();
    /// assert!(HttpStatusError::from_parts(&parts).is_retryable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_parts(parts: &http::response::Parts) -> Self {
        Self::from_headers(parts.status, &parts.headers)
    }

    /// The response's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The wait the service asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// True for the statuses of the *service* category, which say that the
    /// same request may succeed later: 429 Too Many Requests, 502 Bad
    /// Gateway, 503 Service Unavailable, 504 Gateway Timeout.
    ///
    /// ```
    /// use ebb_retry::http::HttpStatusError;
    /// use http::StatusCode;
    ///
    /// assert!(HttpStatusError::new(StatusCode::GATEWAY_TIMEOUT).is_retryable());
    /// assert!(!HttpStatusError::new(StatusCode::INTERNAL_SERVER_ERROR).is_retryable());
    /// assert!(!HttpStatusError::new(StatusCode::NOT_FOUND).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
        )
    }
}

impl fmt::Display for HttpStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)
    }
}

impl StdError for HttpStatusError {}

/// The wait a `Retry-After` value asks for, as of `now`: a number of
/// seconds, or an HTTP date (IMF-fixdate, or the obsolete RFC 850 and
/// asctime forms), a date already past meaning no wait. `None` for
/// anything else.
///
/// ```
/// use ebb_retry::http::parse_retry_after;
/// use http::HeaderValue;
/// use std::time::{Duration, SystemTime};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50 GMT
/// let date = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
/// assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after(&HeaderValue::from_static("7"), now), Some(Duration::from_secs(7)));
/// assert_eq!(parse_retry_after(&HeaderValue::from_static("soon"), now), None);
/// ```
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

impl Rule {
    /// The *service* category (feature `http`): an [`HttpStatusError`]
    /// anywhere in the source chain whose status is 429, 502, 503 or 504
    /// is retried, after exactly its `Retry-After` when it has one
    /// ([`Decision::RetryAfter`], which still takes a step of the
    /// schedule), else by the schedule. Other statuses pass to the next
    /// rule. Named `"service"`.
    ///
    /// ```
    /// use ebb_retry::http::HttpStatusError;
    /// use ebb_retry::{Decision, Rule};
    /// use http::StatusCode;
    /// use std::time::Duration;
    ///
    /// let rule = Rule::service();
    /// let throttled = HttpStatusError::new(StatusCode::TOO_MANY_REQUESTS).with_retry_after(Duration::from_secs(2));
    /// assert_eq!(rule.decide(&throttled), Some(Decision::RetryAfter(Duration::from_secs(2))));
    /// assert_eq!(rule.decide(&HttpStatusError::new(StatusCode::BAD_GATEWAY)), Some(Decision::Retry));
    /// assert_eq!(rule.decide(&HttpStatusError::new(StatusCode::BAD_REQUEST)), None);
    /// ```
    pub fn service() -> Self {
        Rule::from_fn(|e| {
            let status = find_in_chain::<HttpStatusError>(e).filter(|s| s.is_retryable())?;
            Some(match status.retry_after {
                Some(wait) => Decision::RetryAfter(wait),
                None => Decision::Retry,
            })
        })
        .named("service")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct ClientError(HttpStatusError);

    impl fmt::Display for ClientError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("calling the service")
        }
    }

    impl StdError for ClientError {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_every_http_date_form() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let value = HeaderValue::from_static(date);
            assert_eq!(
                parse_retry_after(&value, now),
                Some(Duration::from_secs(30)),
                "{date}"
            );
        }
        let past = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777 + 5);
        let value = HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_retry_after(&value, past), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static(" 42 "), now),
            Some(Duration::from_secs(42))
        );
        for junk in ["-1", "1.5", "", "tomorrow"] {
            let value = HeaderValue::from_str(junk).unwrap();
            assert_eq!(parse_retry_after(&value, now), None, "{junk:?}");
        }
    }

    #[test]
    fn the_service_rule_finds_the_status_anywhere_in_the_chain() {
        let rule = Rule::service();
        for status in [429, 502, 503, 504] {
            let err = ClientError(HttpStatusError::new(StatusCode::from_u16(status).unwrap()));
            assert_eq!(rule.decide(&err), Some(Decision::Retry), "{status}");
        }
        for status in [400, 401, 404, 500, 501] {
            let err = ClientError(HttpStatusError::new(StatusCode::from_u16(status).unwrap()));
            assert_eq!(rule.decide(&err), None, "{status}");
        }
        let response = http::Response::builder()
            .status(503)
            .header("retry-after", "9")
            .body(())
            .unwrap();
        let err = ClientError(HttpStatusError::from_response(&response));
        assert_eq!(
            rule.decide(&err),
            Some(Decision::RetryAfter(Duration::from_secs(9)))
        );
        assert_eq!(rule.decide(&std::io::Error::other("503")), None);
    }
}
