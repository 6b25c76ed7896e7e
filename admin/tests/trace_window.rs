//! `trace_within`: the trace a page can afford, on a real store: the same
//! tree as `trace` within its window, what it searched said when the
//! store goes on beyond it, and the whole tree once the causation index
//! is there.

use ebb_admin::{Origin, Trace};
use ebb_message_store::{Message, MessageData, PgStore};
use ebb_tests::{connect, database, store_for};
use serde_json::json;

async fn write(store: &PgStore, stream: &str, message: MessageData) -> Message {
    ebb_tests::write_and_read_back(store, stream, &message).await
}

fn drawn(trace: &Trace) -> Vec<String> {
    trace
        .lines
        .iter()
        .map(|line| format!("{}{}", line.drawn, line.stream_name))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_trace_is_the_trace_within_its_window_and_says_what_it_searched() {
    let db = database().await;
    let store = store_for(&db, 2);
    let root = write(
        &store,
        "transfer:command-1",
        MessageData::new("Transfer", json!({})),
    )
    .await;
    let withdrawn = write(
        &store,
        "account-a",
        MessageData::new("Withdrawn", json!({})).follow(&root),
    )
    .await;
    write(&store, "other-1", MessageData::new("Unrelated", json!({}))).await;
    write(
        &store,
        "account-b",
        MessageData::new("Deposited", json!({})).follow(&root),
    )
    .await;
    // Far after the root: outside a window of 5.
    for n in 0..5 {
        write(
            &store,
            &format!("other-{n}"),
            MessageData::new("Unrelated", json!({})),
        )
        .await;
    }
    write(
        &store,
        "transfer-1",
        MessageData::new("Withdrew", json!({})).follow(&withdrawn),
    )
    .await;
    let origin = Origin::Message(root.id);

    let whole = ebb_admin::trace(&store, &origin, None).await.unwrap();
    assert_eq!(
        drawn(&whole),
        [
            "transfer:command-1",
            "├─ account-a",
            "│  └─ transfer-1",
            "└─ account-b"
        ]
    );
    assert_eq!(whole.searched, None);
    let wide = ebb_admin::trace_within(&store, &origin, None, 1_000)
        .await
        .unwrap();
    assert_eq!(wide.lines, whole.lines);
    assert_eq!(
        wide.searched, None,
        "the window reached the end of the store"
    );

    let narrow = ebb_admin::trace_within(&store, &origin, None, 5)
        .await
        .unwrap();
    assert_eq!(
        drawn(&narrow),
        ["transfer:command-1", "├─ account-a", "└─ account-b"]
    );
    let from = root.global_position + 1;
    assert_eq!(narrow.searched, Some((from, from + 4)));
    let limited = ebb_admin::trace_within(&store, &origin, Some(2), 5)
        .await
        .unwrap();
    assert!(limited.cut);
    assert_eq!(drawn(&limited), ["transfer:command-1", "└─ account-a"]);

    connect(&db)
        .await
        .batch_execute(
            "CREATE INDEX messages_causation ON message_store.messages
               ((COALESCE(metadata->>'causationMessageGlobalPosition',
                 (metadata->>'causationMessageStreamName') || '/' ||
                 (metadata->>'causationMessagePosition'))))",
        )
        .await
        .unwrap();
    let indexed = ebb_admin::trace_within(&store, &origin, None, 5)
        .await
        .unwrap();
    assert_eq!(indexed.lines, whole.lines);
    assert_eq!(indexed.searched, None);
}
