//! `ebb parked replay` and `ebb parked discard`, run as a user runs them:
//! what they refuse (nothing written), what they write, and a consumer
//! carrying the requests out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, Writer, message};
use ebb_message_store::{
    ExpectedVersion, MessageStore as _, PgStore, PgStoreConfig, StreamName, StreamQuery,
};
use serde_json::Value;

mod common;
use common::{ebb, fails, fails_in_one_line, json_lines, ok, store_database, text};

const CATEGORY: &str = "note";
const PARKED: &str = "note:parked-w1";

#[message]
struct Noted {
    n: i64,
}

/// A consumer `w1` of notes that fails on notes 3 and 4 until `fixed`, and
/// parks them; it counts in `handled-N` each note it handles.
fn consumer(store: &PgStore, fixed: &Arc<AtomicBool>) -> Consumer<PgStore> {
    let config = ConsumerConfig {
        identifier: Some("w1".into()),
        position_update_interval: 1,
        poll_interval: Duration::from_millis(50),
        park_after_retries: true,
        ..ConsumerConfig::new(CATEGORY)
    };
    let (fixed, writer) = (Arc::clone(fixed), Writer::new(store.clone()));
    let handlers = Dispatcher::new().on(move |noted: Received<Noted>| {
        let (fixed, writer) = (Arc::clone(&fixed), writer.clone());
        async move {
            if (noted.n == 3 || noted.n == 4) && !fixed.load(Ordering::SeqCst) {
                return Err::<(), BoxError>(format!("cannot take {}", noted.n).into());
            }
            let stream = StreamName::new("handled", &noted.n.to_string())?;
            writer
                .write(&stream, Noted { n: noted.n }, ExpectedVersion::Any)
                .await?;
            Ok(())
        }
    });
    Consumer::new(config, store.clone())
        .unwrap()
        .handler(handlers)
}

/// The records of `type_name` in `w1`'s parked stream.
async fn records(store: &PgStore, type_name: &str) -> Vec<Value> {
    let records = store
        .get_stream_messages(PARKED, &StreamQuery::new().batch_size(-1))
        .await
        .unwrap();
    records
        .iter()
        .filter(|record| record.type_name == type_name)
        .map(|record| record.data().unwrap())
        .collect()
}

/// Runs the consumer until `w1`'s parked stream holds `count` records of
/// `type_name` (read every 20 ms, at most 20 s), then stops it.
async fn run_until(store: &PgStore, fixed: &Arc<AtomicBool>, type_name: &str, count: usize) {
    let consumer = consumer(store, fixed);
    let control = Control::new();
    let watch = async {
        let started = Instant::now();
        while records(store, type_name).await.len() < count {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{count} {type_name} records within 20 s"
            );
            // A poll: the stream is read again until the records are there.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        control.stop();
    };
    let (run, ()) = tokio::join!(consumer.run(&control), watch);
    run.unwrap();
}

/// `ebb args` on a pseudo-terminal (util-linux's `script` makes one),
/// typing `answer`; its exit status and what the terminal showed.
fn on_terminal(args: &[&str], database_url: &str, answer: &str) -> (Option<i32>, String) {
    let command_line = std::iter::once(env!("CARGO_BIN_EXE_ebb"))
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--command",
            &command_line,
            "/dev/null",
        ])
        .env("DATABASE_URL", database_url)
        .env_remove("EBB_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux's script runs");
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    (out.status.code(), text(&out.stdout).replace("\r\n", "\n"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The note whose `n` is `n`: its global position, as `ebb read` shows it.
fn global(url: &str, n: i64) -> String {
    let notes = json_lines(&["read", &format!("{CATEGORY}-{n}")], url);
    notes[0]["globalPosition"].as_i64().unwrap().to_string()
}

#[test]
fn replay_and_discard_ask_write_requests_and_a_consumer_carries_them_out() {
    let url = store_database("ebb_parked_requests");
    let store = PgStore::new(PgStoreConfig::from_connection_string(&url).unwrap()).unwrap();
    let fixed = Arc::new(AtomicBool::new(false));
    let runtime = runtime();
    runtime.block_on(async {
        for n in 1..=5 {
            let stream = StreamName::new(CATEGORY, &n.to_string()).unwrap();
            Writer::new(store.clone())
                .write(&stream, Noted { n }, ExpectedVersion::Any)
                .await
                .unwrap();
        }
        run_until(&store, &fixed, "Parked", 2).await;
    });
    let (three, four) = (global(&url, 3), global(&url, 4));

    // Without a terminal and without -y: refused, nothing written.
    let err = fails_in_one_line(2, &["parked", "replay", CATEGORY, &three], &url);
    assert!(err.contains("refusing to replay 1 message"), "{err}");
    assert!(err.contains("-y"), "{err}");
    // Not parked, or a bad selection: refused before anything is written.
    let err = fails_in_one_line(1, &["parked", "replay", CATEGORY, "1", "-y"], &url);
    assert!(err.contains("no message at global position 1"), "{err}");
    fails(2, &["parked", "replay", CATEGORY, "-y"], &url);
    fails(
        2,
        &["parked", "replay", CATEGORY, &three, "--all", "-y"],
        &url,
    );
    fails(
        2,
        &["parked", "discard", CATEGORY, "--all", "--limit", "0", "-y"],
        &url,
    );
    runtime.block_on(async {
        assert!(records(&store, "Replay").await.is_empty());
        assert!(records(&store, "Discard").await.is_empty());
    });

    // On a terminal it says what it will touch and asks: no is nothing
    // written, yes is the request.
    let (code, shown) = on_terminal(&["parked", "replay", CATEGORY, &three], &url, "n\n");
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("This will replay 1 message"), "{shown}");
    assert!(
        shown.contains(&format!("w1 {three} note-3/0 Noted")),
        "{shown}"
    );
    assert!(shown.contains("Go ahead? [y/N]"), "{shown}");
    assert!(shown.contains("not confirmed; nothing written"), "{shown}");
    runtime.block_on(async { assert!(records(&store, "Replay").await.is_empty()) });
    let (code, out) = on_terminal(&["parked", "replay", CATEGORY, &three], &url, "y\n");
    assert_eq!(code, Some(0), "{out}");
    let requested = format!("replay of {three} requested at position 2 of {PARKED}\n");
    assert!(out.contains(&requested), "{out}");
    let listed = json_lines(&["parked", "list", CATEGORY], &url);
    let requested: Vec<(String, Value)> = listed
        .iter()
        .map(|line| {
            (
                line["globalPosition"].to_string(),
                line["requested"].clone(),
            )
        })
        .collect();
    assert_eq!(
        requested,
        [
            (three.clone(), Value::from("replay")),
            (four.clone(), Value::Null)
        ]
    );
    // Asked again: left as it is, nothing written.
    let again = ebb(&["parked", "replay", CATEGORY, &three, "-y"], &url);
    assert!(again.status.success());
    assert!(
        text(&again.stderr).contains("asked already"),
        "{}",
        text(&again.stderr)
    );
    // --all --limit 1 discards the oldest parked with nothing asked: 4.
    let out = ok(
        &["parked", "discard", CATEGORY, "--all", "--limit", "1", "-y"],
        &url,
    );
    assert!(
        out.starts_with(&format!("discard of {four} requested")),
        "{out}"
    );
    runtime.block_on(async {
        assert_eq!(records(&store, "Replay").await.len(), 1);
        assert_eq!(records(&store, "Discard").await.len(), 1);
    });
    // `ebb consumers` counts what is parked now, not the stream's records.
    let parked_now = || json_lines(&["consumers", CATEGORY], &url)[0]["parked"].clone();
    assert_eq!(parked_now(), Value::from(2));

    // The handler fixed, the consumer carries both out.
    fixed.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        run_until(&store, &fixed, "Discarded", 1).await;
        assert_eq!(records(&store, "Replayed").await.len(), 1);
        let handled = |n: i64| {
            let store = store.clone();
            async move {
                store
                    .get_stream_messages(&format!("handled-{n}"), &StreamQuery::new())
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!((handled(3).await, handled(4).await), (1, 0));
    });
    assert!(json_lines(&["parked", "list", CATEGORY], &url).is_empty());
    assert_eq!(parked_now(), Value::from(0));
    let out = ebb(&["parked", "replay", CATEGORY, "--all", "-y"], &url);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("no parked message to replay"));
}
