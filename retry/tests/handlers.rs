//! The two handler situations this crate is built for, as tests under
//! paused time: an expected-version conflict retried once at once
//! (`[0]`), and an HTTP call retried at `[100, 200]` on connection errors
//! and 5xx but not on 4xx. The same code, runnable, is in `examples/`.

mod common;

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use common::{Attempts, ms};
use ebb_retry::{Decision, Retry, RetryError, StopReason};

// ---------------------------------------------------------------------------
// 1. Expected-version conflict, retried once with `[0]`.

/// What a message store's write returns when the stream moved on.
#[derive(Debug, PartialEq)]
enum WriteError {
    ExpectedVersion { expected: i64, actual: i64 },
    Unavailable,
}

impl WriteError {
    fn is_expected_version(&self) -> bool {
        matches!(self, WriteError::ExpectedVersion { .. })
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::ExpectedVersion { expected, actual } => {
                write!(
                    f,
                    "wrong expected version: {expected} (stream is at {actual})"
                )
            }
            WriteError::Unavailable => f.write_str("store unavailable"),
        }
    }
}

impl Error for WriteError {}

/// A stream whose version another writer bumps `interference` times,
/// just before our write.
struct Stream {
    version: Cell<i64>,
    interference: Cell<u32>,
}

impl Stream {
    fn write(&self, expected: i64) -> Result<i64, WriteError> {
        if self.interference.get() > 0 {
            self.interference.set(self.interference.get() - 1);
            self.version.set(self.version.get() + 1);
        }
        let actual = self.version.get();
        if expected != actual {
            return Err(WriteError::ExpectedVersion { expected, actual });
        }
        self.version.set(actual + 1);
        Ok(actual + 1)
    }
}

fn conflict_policy() -> Retry {
    Retry::intervals_ms([0])
        .retry_if::<WriteError>(WriteError::is_expected_version)
        .build()
        .unwrap()
}

/// The handler: read the version, write expecting it; on a conflict the
/// retry re-reads and writes again.
async fn handle(
    retry: &Retry,
    stream: &Stream,
    attempts: &Attempts,
) -> Result<i64, RetryError<WriteError>> {
    retry
        .run(|cycle| {
            attempts.record(cycle);
            let read = stream.version.get();
            let written = stream.write(read);
            async move { written }
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn a_conflict_is_retried_once_without_waiting() {
    let stream = Stream {
        version: Cell::new(3),
        interference: Cell::new(1),
    };
    let attempts = Attempts::new();
    let position = handle(&conflict_policy(), &stream, &attempts)
        .await
        .unwrap();
    assert_eq!(position, 5);
    assert_eq!(attempts.count(), 2);
    assert_eq!(attempts.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_second_conflict_is_returned() {
    let stream = Stream {
        version: Cell::new(0),
        interference: Cell::new(2),
    };
    let attempts = Attempts::new();
    let err = handle(&conflict_policy(), &stream, &attempts)
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 2);
    assert!(err.is_depleted());
    assert_eq!(
        err.into_last(),
        WriteError::ExpectedVersion {
            expected: 1,
            actual: 2
        }
    );
}

#[tokio::test(start_paused = true)]
async fn other_write_errors_are_not_retried() {
    let retry = conflict_policy();
    let err = retry
        .run(|_| async { Err::<(), _>(WriteError::Unavailable) })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert!(err.is_not_retryable());
}

// ---------------------------------------------------------------------------
// 2. HTTP call retried at `[100, 200]` on connection errors and 5xx.

#[derive(Debug)]
enum HttpError {
    Connect(io::Error),
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
}

impl HttpError {
    fn status(code: u16) -> Self {
        HttpError::Status {
            code,
            retry_after: None,
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            HttpError::Connect(_) => true,
            HttpError::Status { code, .. } => (500..600).contains(code),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(_) => f.write_str("could not connect"),
            HttpError::Status { code, .. } => write!(f, "HTTP status {code}"),
        }
    }
}

impl Error for HttpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            HttpError::Connect(e) => Some(e),
            HttpError::Status { .. } => None,
        }
    }
}

fn refused() -> HttpError {
    HttpError::Connect(io::Error::from(io::ErrorKind::ConnectionRefused))
}

fn http_policy() -> Retry {
    Retry::intervals_ms([100, 200])
        .retry_if::<HttpError>(HttpError::is_transient)
        .build()
        .unwrap()
}

/// A fake endpoint answering with the scripted results in order.
async fn call(
    retry: &Retry,
    attempts: &Attempts,
    script: Vec<Result<&'static str, HttpError>>,
) -> Result<&'static str, RetryError<HttpError>> {
    let script = RefCell::new(script.into_iter());
    retry
        .run(|cycle| {
            attempts.record(cycle);
            let response = script.borrow_mut().next().unwrap_or(Ok("late"));
            async move { response }
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn connection_errors_and_5xx_are_retried_at_100_then_200_ms() {
    let attempts = Attempts::new();
    let body = call(
        &http_policy(),
        &attempts,
        vec![Err(refused()), Err(HttpError::status(503)), Ok("body")],
    )
    .await
    .unwrap();
    assert_eq!(body, "body");
    assert_eq!(attempts.waits(), [ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn a_4xx_is_returned_at_once() {
    let attempts = Attempts::new();
    let err = call(&http_policy(), &attempts, vec![Err(HttpError::status(404))])
        .await
        .unwrap_err();
    assert_eq!(attempts.count(), 1);
    assert_eq!(attempts.elapsed(), Duration::ZERO);
    assert!(err.is_not_retryable());
    assert_eq!(err.last().to_string(), "HTTP status 404");
}

#[tokio::test(start_paused = true)]
async fn a_4xx_after_a_5xx_stops_the_retrying() {
    let attempts = Attempts::new();
    let err = call(
        &http_policy(),
        &attempts,
        vec![Err(HttpError::status(502)), Err(HttpError::status(429))],
    )
    .await
    .unwrap_err();
    assert_eq!(attempts.count(), 2);
    assert_eq!(attempts.waits(), [ms(100)]);
    assert_eq!(err.last().to_string(), "HTTP status 429");
}

#[tokio::test(start_paused = true)]
async fn persistent_5xx_gives_up_after_three_attempts_with_the_last_error() {
    let attempts = Attempts::new();
    let script = vec![
        Err(HttpError::status(500)),
        Err(refused()),
        Err(HttpError::status(503)),
    ];
    let err = call(&http_policy(), &attempts, script).await.unwrap_err();
    assert_eq!(attempts.count(), 3);
    assert_eq!(attempts.elapsed(), ms(300));
    assert!(err.is_depleted());
    let all: Vec<_> = err.errors().map(ToString::to_string).collect();
    assert_eq!(
        all,
        ["HTTP status 500", "could not connect", "HTTP status 503"]
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_503_and_429_is_honoured_exactly() {
    let retry = Retry::intervals_ms([100, 200])
        .classify::<HttpError>(|e| match e {
            HttpError::Status {
                code: 429 | 503,
                retry_after: Some(after),
            } => Decision::RetryAfter(*after),
            e if e.is_transient() => Decision::Retry,
            _ => Decision::DoNotRetry,
        })
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let script = vec![
        Err(HttpError::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(3)),
        }),
        Err(refused()),
        Ok("body"),
    ];
    assert_eq!(call(&retry, &attempts, script).await.unwrap(), "body");
    assert_eq!(attempts.waits(), [Duration::from_secs(3), ms(200)]);

    // A 429 with Retry-After is retried, without it it is a plain 4xx.
    let attempts = Attempts::new();
    let script = vec![Err(HttpError::Status {
        code: 429,
        retry_after: None,
    })];
    let err = call(&retry, &attempts, script).await.unwrap_err();
    assert_eq!(err.reason(), StopReason::NotRetryable);
}
