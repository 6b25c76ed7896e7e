//! Parked messages replayed and discarded on PostgreSQL: a note the
//! handler fails on is parked; once the handler is fixed, a `Replay`
//! request in the parked stream delivers it again as it was, and the
//! outcome is recorded there. Across a hot-failover pair, while the
//! consumer is stopped, failing again, discarded, and asked twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ebb_consumer::{
    Consumer, ConsumerConfig, Control, Error, Parked, ParkedState, Replay, Replayed,
    read_parked_messages, request_discard, request_replay,
};
use ebb_handler::{BoxError, Dispatcher, MessageType as _, Received, Writer, message};
use ebb_message_store::{
    ExpectedVersion, Message, MessageData, MessageStore, Metadata, PgStore, StreamName, StreamQuery,
};
use ebb_tests::{database, store_for};
use tokio::task::JoinHandle;
use uuid::Uuid;

#[message]
struct Noted {
    n: i64,
}

/// What the handler records of the message it was given, in `handled-N`.
#[message]
#[derive(Debug, Clone, PartialEq)]
struct Handled {
    id: Uuid,
    stream_name: String,
    position: i64,
    global_position: i64,
    correlation_stream_name: Option<String>,
    time: String,
}

const PARKED: &str = "note:parked-pair";

/// The handler's switches and counts: it fails on the notes in `broken`
/// while `fixed` is false; it counts its calls for note 3.
#[derive(Clone, Default)]
struct Handler {
    fixed: Arc<AtomicBool>,
    calls_for_3: Arc<AtomicU32>,
}

impl Handler {
    /// Fails on notes 3 and 4 until fixed; records each other note once in
    /// `handled-N` (the write expects no stream: a second delivery, by the
    /// other consumer of a pair or a replay, finds it there and stops).
    fn dispatcher(&self, store: &PgStore) -> Dispatcher {
        let (handler, writer) = (self.clone(), Writer::new(store.clone()));
        Dispatcher::new().on(move |noted: Received<Noted>| {
            let (handler, writer) = (handler.clone(), writer.clone());
            async move {
                if noted.n == 3 {
                    handler.calls_for_3.fetch_add(1, Ordering::SeqCst);
                }
                if (noted.n == 3 || noted.n == 4) && !handler.fixed.load(Ordering::SeqCst) {
                    return Err(BoxError::from(format!(
                        "note {} cannot be handled",
                        noted.n
                    )));
                }
                let message = noted.message();
                let handled = Handled {
                    id: message.id,
                    stream_name: message.stream_name.clone(),
                    position: message.position,
                    global_position: message.global_position,
                    correlation_stream_name: message.metadata.correlation_stream_name.clone(),
                    time: message.time.to_rfc3339(),
                };
                let stream = StreamName::new("handled", &noted.n.to_string())?;
                match writer
                    .write(&stream, handled, ExpectedVersion::NoStream)
                    .await
                {
                    Err(err) if err.is_wrong_expected_version() => Ok(()),
                    written => written.map(drop).map_err(BoxError::from),
                }
            }
        })
    }
}

/// The settings of the consumers of `note` named `pair`: a handler failure
/// parks the note at once; a long poll, so that a replay taken up quickly
/// was woken for.
fn config() -> ConsumerConfig {
    ConsumerConfig {
        identifier: Some("pair".into()),
        poll_interval: Duration::from_secs(30),
        position_update_interval: 1,
        park_after_retries: true,
        handler_retry_ms: Vec::new(),
        ..ConsumerConfig::new("note")
    }
}

/// A consumer running on its own store (its own pool), and how to stop it.
struct Running {
    control: Control,
    run: JoinHandle<Result<(), Error>>,
}

impl Running {
    fn start(db: &ebb_localpg::TestDatabase, handler: &Handler) -> Self {
        let store = store_for(db, 2);
        let consumer = Consumer::new(config(), store.clone())
            .unwrap()
            .handler(handler.dispatcher(&store));
        let control = Control::new();
        let run = tokio::spawn({
            let control = control.clone();
            async move { consumer.run(&control).await }
        });
        Self { control, run }
    }

    async fn stop(self) {
        self.control.stop();
        let ended = tokio::time::timeout(Duration::from_secs(20), self.run).await;
        ended.expect("stops within 20 s").unwrap().unwrap();
    }
}

/// Writes notes 1..=5, each to its own stream `note-N`, correlated to
/// `transfer-9`; the stored messages.
async fn notes(store: &PgStore) -> Vec<Message> {
    let mut written = Vec::new();
    for n in 1..=5 {
        let stream = StreamName::new("note", &n.to_string()).unwrap();
        let metadata = Metadata {
            correlation_stream_name: Some("transfer-9".into()),
            ..Metadata::default()
        };
        let note = MessageData::new("Noted", serde_json::json!({ "n": n })).with_metadata(metadata);
        store
            .write(&stream, &note, ExpectedVersion::NoStream)
            .await
            .unwrap();
        let read = store
            .get_stream_messages(stream.as_str(), &StreamQuery::new())
            .await
            .unwrap();
        written.push(read[0].clone());
    }
    written
}

async fn stream(store: &PgStore, name: &str) -> Vec<Message> {
    store
        .get_stream_messages(name, &StreamQuery::new().batch_size(-1))
        .await
        .unwrap()
}

/// The records of `type_name` in the parked stream.
async fn records(store: &PgStore, type_name: &str) -> Vec<Message> {
    let mut records = stream(store, PARKED).await;
    records.retain(|record| record.type_name == type_name);
    records
}

/// Reads the parked stream until it holds `count` records of `type_name`
/// (every 20 ms, at most 10 s).
async fn wait_for(store: &PgStore, type_name: &str, count: usize) -> Vec<Message> {
    let started = Instant::now();
    loop {
        let found = records(store, type_name).await;
        if found.len() >= count {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{count} {type_name} records within 10 s; found {}",
            found.len()
        );
        // Polls the parked stream until it holds the records.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database with notes 1..=5, and a consumer running on it whose
/// handler (not fixed yet) has parked notes 3 and 4.
struct Parking {
    db: ebb_localpg::TestDatabase,
    store: PgStore,
    notes: Vec<Message>,
    handler: Handler,
    running: Running,
}

async fn parked_by_one() -> Parking {
    let db = database().await;
    let store = store_for(&db, 2);
    let notes = notes(&store).await;
    let handler = Handler::default();
    let running = Running::start(&db, &handler);
    wait_for(&store, Parked::TYPE_NAME, 2).await;
    Parking {
        db,
        store,
        notes,
        handler,
        running,
    }
}

/// Asserts that note 3 was handled exactly once, and given as it was.
async fn handled_once_as_it_was(store: &PgStore, note: &Message) {
    let handled = stream(store, "handled-3").await;
    assert_eq!(handled.len(), 1, "note 3 handled exactly once");
    assert_eq!(
        handled[0].data::<Handled>().unwrap(),
        Handled {
            id: note.id,
            stream_name: note.stream_name.clone(),
            position: note.position,
            global_position: note.global_position,
            correlation_stream_name: Some("transfer-9".into()),
            time: note.time.to_rfc3339(),
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_across_a_hot_failover_pair_handles_the_message_once_as_it_was() {
    let db = database().await;
    let store = store_for(&db, 2);
    let notes = notes(&store).await;
    let handler = Handler::default();
    let (first, second) = (Running::start(&db, &handler), Running::start(&db, &handler));
    // Each of the pair parks notes 3 and 4.
    wait_for(&store, Parked::TYPE_NAME, 4).await;
    handler.fixed.store(true, Ordering::SeqCst);
    let calls_before = handler.calls_for_3.load(Ordering::SeqCst);
    let config = config();
    let request = request_replay(&store, &config, notes[2].global_position, None)
        .await
        .unwrap();
    // Within 10 s while the consumers poll every 30 s: woken for it.
    let replayed = wait_for(&store, Replayed::TYPE_NAME, 1).await;
    assert_eq!(
        replayed[0].data::<Replayed>().unwrap(),
        Replayed {
            global_position: notes[2].global_position,
            request_position: request,
        }
    );
    first.stop().await;
    second.stop().await;
    handled_once_as_it_was(&store, &notes[2]).await;
    assert_eq!(
        records(&store, Replayed::TYPE_NAME).await.len(),
        1,
        "one outcome for the pair"
    );
    assert!(
        handler.calls_for_3.load(Ordering::SeqCst) > calls_before,
        "delivered after the fix"
    );
    let parked = read_parked_messages(&store, &config).await.unwrap();
    let still: Vec<i64> = parked
        .messages()
        .map(|m| m.parked.global_position)
        .collect();
    assert_eq!(still, [notes[3].global_position], "note 4 is still parked");
    let err = request_replay(&store, &config, notes[2].global_position, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotParked { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_requested_while_the_consumer_is_stopped_is_carried_out_at_its_start() {
    let Parking {
        db,
        store,
        notes,
        handler,
        running,
    } = parked_by_one().await;
    running.stop().await;
    handler.fixed.store(true, Ordering::SeqCst);
    let config = config();
    request_replay(
        &store,
        &config,
        notes[2].global_position,
        Some("ops".into()),
    )
    .await
    .unwrap();
    let requested = read_parked_messages(&store, &config).await.unwrap();
    assert!(matches!(
        requested.get(notes[2].global_position).unwrap().state,
        ParkedState::Requested { .. }
    ));
    assert!(stream(&store, "handled-3").await.is_empty());
    let running = Running::start(&db, &handler);
    wait_for(&store, Replayed::TYPE_NAME, 1).await;
    running.stop().await;
    handled_once_as_it_was(&store, &notes[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_fails_again_parks_the_message_again_for_a_later_request() {
    let Parking {
        db: _db,
        store,
        notes,
        handler,
        running,
    } = parked_by_one().await;
    let config = config();
    let global_position = notes[2].global_position;
    let request = request_replay(&store, &config, global_position, None)
        .await
        .unwrap();
    let parked = wait_for(&store, Parked::TYPE_NAME, 3).await;
    let again: Parked = parked[2].data().unwrap();
    assert_eq!(
        (
            again.id,
            again.global_position,
            again.replay_position,
            again.failures,
            again.attempts,
            again.error.as_str()
        ),
        (
            notes[2].id,
            global_position,
            Some(request),
            0,
            1,
            "note 3 cannot be handled"
        )
    );
    let state = read_parked_messages(&store, &config).await.unwrap();
    assert_eq!(
        state.get(global_position).unwrap().state,
        ParkedState::Parked
    );
    assert!(records(&store, Replayed::TYPE_NAME).await.is_empty());
    // Fixed, asked again: handled.
    handler.fixed.store(true, Ordering::SeqCst);
    request_replay(&store, &config, global_position, None)
        .await
        .unwrap();
    wait_for(&store, Replayed::TYPE_NAME, 1).await;
    running.stop().await;
    handled_once_as_it_was(&store, &notes[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_message_is_never_handled_and_no_longer_parked() {
    let Parking {
        db: _db,
        store,
        notes,
        handler,
        running,
    } = parked_by_one().await;
    handler.fixed.store(true, Ordering::SeqCst);
    let config = config();
    let global_position = notes[2].global_position;
    let request = request_discard(&store, &config, global_position, None)
        .await
        .unwrap();
    let discarded = wait_for(&store, "Discarded", 1).await;
    running.stop().await;
    assert_eq!(
        discarded[0].data::<serde_json::Value>().unwrap(),
        serde_json::json!({ "globalPosition": global_position, "requestPosition": request })
    );
    assert!(stream(&store, "handled-3").await.is_empty());
    let state = read_parked_messages(&store, &config).await.unwrap();
    assert!(state.get(global_position).is_none());
    assert_eq!(state.len(), 1, "note 4 is still parked");
    let err = request_replay(&store, &config, global_position, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotParked { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_written_twice_by_any_client_replays_once() {
    let Parking {
        db,
        store,
        notes,
        handler,
        running,
    } = parked_by_one().await;
    running.stop().await;
    handler.fixed.store(true, Ordering::SeqCst);
    // Written as any Message DB client would: type and JSON, no checks.
    let parked = StreamName::parse(PARKED).unwrap();
    let replay = MessageData::new(
        Replay::TYPE_NAME,
        serde_json::json!({ "globalPosition": notes[2].global_position }),
    );
    for _ in 0..2 {
        let request = replay.clone().with_id(Uuid::new_v4());
        store
            .write(&parked, &request, ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let calls_before = handler.calls_for_3.load(Ordering::SeqCst);
    let running = Running::start(&db, &handler);
    wait_for(&store, Replayed::TYPE_NAME, 1).await;
    // Requests are carried out in order: once note 4's later discard is
    // recorded, the second replay request has been read and passed over.
    request_discard(&store, &config(), notes[3].global_position, None)
        .await
        .unwrap();
    wait_for(&store, "Discarded", 1).await;
    running.stop().await;
    assert_eq!(records(&store, Replayed::TYPE_NAME).await.len(), 1);
    assert_eq!(
        handler.calls_for_3.load(Ordering::SeqCst) - calls_before,
        1,
        "delivered once"
    );
    handled_once_as_it_was(&store, &notes[2]).await;
}
