//! Run with: `cargo run -p ebb-retry --example http_call`
//!
//! A handler calls an HTTP service. Connection errors and 5xx responses are
//! retried after 100 ms, then 200 ms; a 4xx is the caller's mistake and is
//! returned at once; a 503 with `Retry-After` waits exactly that long. The
//! "service" here is simulated: no network is used.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ebb_retry::{Decision, Retry};

#[derive(Debug)]
enum HttpError {
    Connect(io::Error),
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
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

/// A service that answers each call from a script.
struct Service(Mutex<Vec<Result<&'static str, HttpError>>>);

impl Service {
    async fn get(&self) -> Result<&'static str, HttpError> {
        self.0.lock().unwrap().pop().unwrap_or(Ok("late body"))
    }
}

fn classify(e: &HttpError) -> Decision {
    match e {
        HttpError::Connect(_) => Decision::Retry,
        HttpError::Status {
            code: 503,
            retry_after: Some(after),
        } => Decision::RetryAfter(*after),
        HttpError::Status {
            code: 500..=599, ..
        } => Decision::Retry,
        HttpError::Status { .. } => Decision::DoNotRetry,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let retry = Retry::intervals_ms([100, 200])
        .classify::<HttpError>(classify)
        .build()?;

    let scripts = [
        (
            "connection refused, then 502, then 200",
            vec![
                Ok("body"),
                Err(HttpError::Status {
                    code: 502,
                    retry_after: None,
                }),
                Err(HttpError::Connect(io::ErrorKind::ConnectionRefused.into())),
            ],
        ),
        (
            "404",
            vec![Err(HttpError::Status {
                code: 404,
                retry_after: None,
            })],
        ),
        (
            "503 with Retry-After 50 ms, then 200",
            vec![
                Ok("body"),
                Err(HttpError::Status {
                    code: 503,
                    retry_after: Some(Duration::from_millis(50)),
                }),
            ],
        ),
        (
            "500 three times",
            (0..3)
                .map(|_| {
                    Err(HttpError::Status {
                        code: 500,
                        retry_after: None,
                    })
                })
                .collect(),
        ),
    ];

    for (name, script) in scripts {
        let service = Service(Mutex::new(script));
        let started = Instant::now();
        let result = retry.run(|_cycle| service.get()).await;
        let took = started.elapsed().as_millis();
        match result {
            Ok(body) => println!("{name}: ok {body:?} after {took} ms"),
            Err(err) => println!("{name}: {err} ({}) after {took} ms", err.last()),
        }
    }
    Ok(())
}
