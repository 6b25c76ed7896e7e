//! Run with: `cargo run -p ebb-retry --example expected_version`
//!
//! A handler writes to a stream expecting the version it read. If another
//! writer got there first, the write fails with an expected-version error;
//! the handler re-reads and tries once more, at once (`[0]`), as Eventide
//! handlers do. Any other error is returned untouched.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::fmt;
use std::sync::Mutex;

use ebb_retry::{Retry, RetryError};

#[derive(Debug)]
enum WriteError {
    ExpectedVersion { expected: i64, actual: i64 },
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
                    "wrong expected version {expected}, stream is at {actual}"
                )
            }
        }
    }
}

impl Error for WriteError {}

/// An in-memory stream; the first write loses a race with another writer.
struct Stream {
    version: Mutex<(i64, bool)>,
}

impl Stream {
    fn read_version(&self) -> i64 {
        self.version.lock().unwrap().0
    }

    async fn write(&self, expected: i64) -> Result<i64, WriteError> {
        let mut state = self.version.lock().unwrap();
        let (version, raced) = &mut *state;
        if !*raced {
            *raced = true;
            *version += 1; // the other writer
        }
        if expected != *version {
            return Err(WriteError::ExpectedVersion {
                expected,
                actual: *version,
            });
        }
        *version += 1;
        Ok(*version)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let retry = Retry::intervals_ms([0])
        .retry_if::<WriteError>(WriteError::is_expected_version)
        .on_event(|event| println!("  event: {event:?}"))
        .build()?;
    let stream = Stream {
        version: Mutex::new((7, false)),
    };

    let position = retry
        .run(|cycle| {
            let expected = stream.read_version();
            println!("cycle {cycle}: writing at expected version {expected}");
            stream.write(expected)
        })
        .await
        .map_err(RetryError::into_last)?;
    println!("written; stream is now at version {position}");
    Ok(())
}
