//! `Retry` in handler code that returns boxed errors: the store's
//! expected-version conflict inside a `Box<dyn Error + Send + Sync>` is
//! retried with the ready rule, and no wrapper type of the user's.

use std::sync::atomic::{AtomicU32, Ordering};

use ebb_handler::retry::on_wrong_expected_version;
use ebb_handler::{BoxError, Entity, EntityStore, Projection, Received, Writer, message};
use ebb_message_store::{ExpectedVersion, MemoryStore, StreamName};
use ebb_retry::{Retry, RetryError, StopReason};

#[message]
struct Noted {
    n: i64,
}

#[derive(Debug, Clone, Default)]
struct Notebook {
    notes: i64,
}

impl Entity for Notebook {
    const CATEGORY: &'static str = "notebook";
    fn projection() -> Projection<Self> {
        Projection::new().apply(|notebook: &mut Notebook, _: Received<Noted>| notebook.notes += 1)
    }
}

/// Fetches, lets `interfere` write in between on the attempts it picks,
/// and writes expecting the fetched version: handler code, returning a
/// boxed error.
async fn note(
    notebooks: &EntityStore<Notebook, MemoryStore>,
    writer: &Writer<MemoryStore>,
    cycle: u32,
    interfere: impl Fn(u32) -> bool,
) -> Result<(), BoxError> {
    let stream = StreamName::new("notebook", "1")?;
    let (notebook, version) = notebooks.fetch("1").await?;
    if interfere(cycle) {
        writer
            .write(&stream, Noted { n: -1 }, ExpectedVersion::Any)
            .await?;
    }
    writer
        .write(&stream, Noted { n: notebook.notes }, version)
        .await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_conflict_inside_a_boxed_error_is_retried() {
    let store = MemoryStore::new();
    let notebooks = EntityStore::<Notebook, _>::new(store.clone());
    let writer = Writer::new(store.clone());
    let retry = Retry::intervals_ms([10])
        .rule(on_wrong_expected_version())
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    retry
        .run_boxed(|cycle| {
            attempts.fetch_add(1, Ordering::Relaxed);
            note(&notebooks, &writer, cycle, |cycle| cycle == 0)
        })
        .await
        .map_err(RetryError::into_last)
        .unwrap();
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    // The interfering note and the one written on the retry.
    assert_eq!(store.stream_messages("notebook-1").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_every_attempt_ends_with_the_conflict() {
    let store = MemoryStore::new();
    let notebooks = EntityStore::<Notebook, _>::new(store.clone());
    let writer = Writer::new(store.clone());
    let retry = Retry::intervals_ms([10])
        .rule(on_wrong_expected_version())
        .build()
        .unwrap();
    let err = retry
        .run_boxed(|cycle| note(&notebooks, &writer, cycle, |_| true))
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.reason(), StopReason::Depleted);
    let last = err.into_last();
    let last = last
        .downcast_ref::<ebb_handler::Error>()
        .expect("the writer's error");
    assert!(last.is_wrong_expected_version(), "{last:?}");
}

#[tokio::test(start_paused = true)]
async fn other_errors_are_returned_at_once() {
    let store = MemoryStore::new();
    let writer = Writer::new(store.clone());
    let retry = Retry::intervals_ms([10])
        .rule(on_wrong_expected_version())
        .build()
        .unwrap();
    let err = retry
        .run_boxed(|_| async { writer.reply(Noted { n: 1 }).await.map_err(BoxError::from) })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.reason(), StopReason::NotRetryable);
}
