//! Background retries: `Retry::spawn` on a tokio task and
//! `Retry::spawn_blocking` on a thread, their on-error callback, and
//! cancelling or aborting them in the middle of a wait.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_retry::{CancellationToken, Retry, StopReason};

#[tokio::test(start_paused = true)]
async fn a_spawned_run_retries_in_the_background_and_reports_each_failure() {
    let retry = Retry::new([100, 200, 400]).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let logger = log.clone();
    let handle = retry
        .background(|cycle| async move {
            if cycle < 2 {
                Err(io::Error::other(format!("try {cycle}")))
            } else {
                Ok(cycle)
            }
        })
        .on_error(move |cycle, err| logger.lock().unwrap().push(format!("{cycle}: {err}")))
        .spawn();
    let started = tokio::time::Instant::now();
    assert_eq!(handle.await.unwrap().unwrap(), 2);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(*log.lock().unwrap(), ["0: try 0", "1: try 1"]);
}

#[tokio::test(start_paused = true)]
async fn cancelling_or_aborting_a_spawned_run_ends_its_wait_at_once() {
    let retry = Retry::new([3_600_000]).unwrap();
    let failing = || |_| async { Err::<(), _>(io::Error::other("down")) };

    let handle = retry.spawn(failing());
    tokio::task::yield_now().await; // the first attempt fails, the hour's wait begins
    let started = tokio::time::Instant::now();
    handle.cancel();
    let err = handle.await.unwrap().unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Cancelled, 1));
    assert_eq!(started.elapsed(), Duration::ZERO);

    let handle = retry.spawn(failing());
    tokio::task::yield_now().await;
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    assert_eq!(started.elapsed(), Duration::ZERO);

    // The policy's own token still cancels a spawned run.
    let shutdown = CancellationToken::new();
    let handle = retry.with_cancellation(shutdown.clone()).spawn(failing());
    tokio::task::yield_now().await;
    shutdown.cancel();
    assert!(handle.await.unwrap().unwrap_err().is_cancelled());
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[test]
fn a_blocking_run_on_its_thread_reports_failures_and_wakes_when_cancelled() {
    let retry = Retry::new([1, 1, 3_600_000]).unwrap();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = failures.clone();
    let handle = retry
        .background(|cycle| Err::<(), _>(io::Error::other(format!("try {cycle}"))))
        .on_error(move |cycle, _| seen.lock().unwrap().push(cycle))
        .spawn_blocking();
    // Wait (generously) until the run is in its hour-long wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    while failures.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the first three attempts never failed"
        );
        // Polls the failures until the third has come.
        std::thread::sleep(Duration::from_millis(5));
    }
    let asked = Instant::now();
    handle.cancel();
    let err = handle.join().unwrap().unwrap_err();
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "woken at once, not after the hour"
    );
    assert_eq!((err.reason(), err.attempts()), (StopReason::Cancelled, 3));
    assert_eq!(*failures.lock().unwrap(), [0, 1, 2]);
}
