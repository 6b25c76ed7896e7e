//! The dashboard's queries (search by name, newest first, write rates,
//! time waiting) on a real store: what they find, page by page.

use std::time::Duration;

use ebb_message_store::{ExpectedVersion, MessageData, MessageStore as _, PgStore, StreamName};
use ebb_tests::{database, store_for};

async fn write(store: &PgStore, stream: &str, type_name: &str, data: serde_json::Value) -> i64 {
    let stream = StreamName::parse(stream).unwrap();
    store
        .write(
            &stream,
            &MessageData::new(type_name, data),
            ExpectedVersion::Any,
        )
        .await
        .unwrap()
}

fn names(search: &ebb_admin::StreamSearch) -> Vec<&str> {
    search
        .streams
        .iter()
        .map(|found| found.stream_name.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_finds_streams_by_wildcard_a_page_at_a_time() {
    let db = database().await;
    let store = store_for(&db, 2);
    for stream in [
        "account-1",
        "account-2",
        "account-10",
        "other-1",
        "account:command-1",
    ] {
        write(&store, stream, "Opened", serde_json::json!({})).await;
    }
    write(&store, "account-2", "Deposited", serde_json::json!({})).await;

    let all = ebb_admin::search_streams(&store, "account-*", None, 10)
        .await
        .unwrap();
    assert_eq!(names(&all), ["account-1", "account-10", "account-2"]);
    assert_eq!(all.categories, ["account"]);
    assert_eq!(all.next, None);
    assert_eq!(all.streams[2].messages, 2);

    let first = ebb_admin::search_streams(&store, "account-*", None, 2)
        .await
        .unwrap();
    assert_eq!(names(&first), ["account-1", "account-10"]);
    let after = first.next.as_deref().expect("a next page");
    let second = ebb_admin::search_streams(&store, "account-*", Some(after), 2)
        .await
        .unwrap();
    assert_eq!(names(&second), ["account-2"]);
    assert_eq!(second.next, None);

    let suffix = ebb_admin::search_streams(&store, "*-1", None, 10)
        .await
        .unwrap();
    assert_eq!(
        names(&suffix),
        ["account-1", "account:command-1", "other-1"]
    );
    let prefix = ebb_admin::search_streams(&store, "account", None, 10)
        .await
        .unwrap();
    assert_eq!(prefix.categories, ["account", "account:command"]);
    assert_eq!(names(&prefix).len(), 4);
    let none = ebb_admin::search_streams(&store, "acc_unt%", None, 10)
        .await
        .unwrap();
    assert!(
        none.streams.is_empty() && none.categories.is_empty(),
        "{none:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_pages_go_backwards_through_streams_and_categories() {
    let db = database().await;
    let store = store_for(&db, 2);
    for n in 0..5 {
        write(&store, "note-1", "Noted", serde_json::json!({ "n": n })).await;
        write(&store, "note-2", "Noted", serde_json::json!({ "n": n })).await;
    }
    let page = ebb_admin::newest(&store, "note-1", None, 2).await.unwrap();
    let positions: Vec<i64> = page.iter().map(|m| m.position).collect();
    assert_eq!(positions, [4, 3]);
    let page = ebb_admin::newest(&store, "note-1", Some(3), 2)
        .await
        .unwrap();
    let positions: Vec<i64> = page.iter().map(|m| m.position).collect();
    assert_eq!(positions, [2, 1]);
    let page = ebb_admin::newest(&store, "note", None, 3).await.unwrap();
    let globals: Vec<i64> = page.iter().map(|m| m.global_position).collect();
    assert_eq!(globals, [10, 9, 8]);
    let page = ebb_admin::newest(&store, "note", Some(2), 3).await.unwrap();
    let globals: Vec<i64> = page.iter().map(|m| m.global_position).collect();
    assert_eq!(globals, [1]);
    assert!(
        ebb_admin::newest(&store, "nothing-1", None, 3)
            .await
            .unwrap()
            .is_empty()
    );
    let err = ebb_admin::newest(&store, "note-", None, 3)
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_counts_the_latest_writes_by_category() {
    let db = database().await;
    let store = store_for(&db, 2);
    for n in 0..3 {
        write(
            &store,
            &format!("busy-{n}"),
            "Happened",
            serde_json::json!({}),
        )
        .await;
    }
    write(&store, "quiet-1", "Happened", serde_json::json!({})).await;
    let activity = ebb_admin::activity(&store, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(!activity.cut);
    assert_eq!(activity.covered, Duration::from_secs(300));
    let counts: Vec<(&str, i64)> = activity
        .categories
        .iter()
        .map(|line| (line.category.as_str(), line.messages))
        .collect();
    assert_eq!(counts, [("busy", 3), ("quiet", 1)]);
    assert!((activity.categories[0].per_minute - 0.6).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_behind_has_an_oldest_unhandled_message() {
    let db = database().await;
    let store = store_for(&db, 2);
    let mut globals = Vec::new();
    for n in 0..3 {
        write(
            &store,
            &format!("work-{n}"),
            "Queued",
            serde_json::json!({}),
        )
        .await;
        let last = store
            .get_last_stream_message(&format!("work-{n}"), None)
            .await
            .unwrap();
        globals.push(last.unwrap());
    }
    let position = serde_json::json!({ "position": globals[0].global_position });
    write(
        &store,
        "work:position-w1",
        ebb_consumer::POSITION_TYPE,
        position,
    )
    .await;
    let position = serde_json::json!({ "position": globals[2].global_position });
    write(
        &store,
        "work:position-w2",
        ebb_consumer::POSITION_TYPE,
        position,
    )
    .await;
    let consumers = ebb_admin::consumers(&store, Some("work"), false)
        .await
        .unwrap();
    assert_eq!(consumers.len(), 2);
    let waiting = ebb_admin::oldest_unhandled(&store, &consumers)
        .await
        .unwrap();
    assert_eq!(waiting, [Some(globals[1].time), None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_categories_with_parked_streams_are_those_of_their_consumers() {
    let db = database().await;
    let store = store_for(&db, 2);
    assert!(
        ebb_admin::parked_categories(&store)
            .await
            .unwrap()
            .is_empty()
    );
    for stream in [
        "work:parked-w1",
        "work:parked-w2",
        "work:command+parked-w1",
        "work-1",
        "work:position-w1",
    ] {
        write(&store, stream, "Parked", serde_json::json!({})).await;
    }
    let categories = ebb_admin::parked_categories(&store).await.unwrap();
    assert_eq!(categories, ["work", "work:command"]);
}
