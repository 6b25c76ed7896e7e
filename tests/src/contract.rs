//! The store contract: what every [`MessageStore`] must do, written once
//! and run against both stores by [`store_contract_tests!`].
//!
//! [`store_contract_tests!`]: crate::store_contract_tests

use std::collections::{BTreeMap, BTreeSet};

use ebb_message_store::{
    CategoryQuery, Error, ExpectedVersion, Message, MessageData, MessageStore, Metadata,
    StreamName, StreamQuery,
};
use futures_util::TryStreamExt;
use serde_json::json;

fn name(s: &str) -> StreamName {
    StreamName::parse(s).expect("a valid stream name")
}

fn msg(type_name: &str, n: i64) -> MessageData {
    MessageData::new(type_name, json!({ "n": n }))
}

async fn category(store: &impl MessageStore, category: &str) -> Vec<Message> {
    store
        .read_category(category, CategoryQuery::new().batch_size(-1))
        .try_collect()
        .await
        .expect("category read")
}

/// Stream positions count from 0 per stream; global positions rise across
/// the store; a read returns what was written.
pub async fn positions_and_round_trip(store: &impl MessageStore) {
    let a = name("account-1");
    let b = name("account-2");
    assert_eq!(
        store
            .write(&a, &msg("Opened", 0), ExpectedVersion::Any)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .write(&b, &msg("Opened", 1), ExpectedVersion::Any)
            .await
            .unwrap(),
        0
    );
    let deposit = msg("Deposited", 2);
    assert_eq!(
        store
            .write(&a, &deposit, ExpectedVersion::Any)
            .await
            .unwrap(),
        1
    );

    let read = store
        .get_stream_messages("account-1", &StreamQuery::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].id, deposit.id);
    assert_eq!(read[1].type_name, "Deposited");
    assert_eq!(read[1].data, json!({ "n": 2 }));
    assert_eq!(read[1].stream_name, "account-1");
    assert_eq!(read[1].position, 1);
    assert!(read[1].global_position > read[0].global_position);
    assert!(read[1].metadata.is_empty());
    // Recent. On a server whose zone is UTC this cannot tell UTC from the
    // server's local time; tests/concurrency.rs checks that on sessions in
    // UTC+14 (`message_times_are_utc_whatever_the_session_s_time_zone`).
    let age = chrono::Utc::now() - read[1].time;
    assert!(age.num_seconds().abs() < 60, "time is recent: {age}");

    let all = category(store, "account").await;
    let globals: Vec<i64> = all.iter().map(|m| m.global_position).collect();
    assert!(globals.windows(2).all(|w| w[0] < w[1]), "{globals:?}");
    assert_eq!(
        all.iter()
            .map(|m| m.stream_name.as_str())
            .collect::<Vec<_>>(),
        ["account-1", "account-2", "account-1"]
    );
}

/// Stream and category reads start at their position inclusively, honour
/// the batch size, and the paged reads fetch every batch.
pub async fn inclusive_positions_and_batches(store: &impl MessageStore) {
    let s = name("thing-1");
    for n in 0..10 {
        store
            .write(&s, &msg("Happened", n), ExpectedVersion::Any)
            .await
            .unwrap();
        store
            .write(&name("thing-2"), &msg("Happened", n), ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let from_4 = store
        .get_stream_messages("thing-1", &StreamQuery::new().position(4).batch_size(3))
        .await
        .unwrap();
    assert_eq!(
        from_4.iter().map(|m| m.position).collect::<Vec<_>>(),
        [4, 5, 6]
    );

    let paged: Vec<Message> = store
        .read_stream("thing-1", StreamQuery::new().position(2).batch_size(3))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        paged.iter().map(|m| m.position).collect::<Vec<_>>(),
        (2..10).collect::<Vec<_>>()
    );

    let all = category(store, "thing").await;
    assert_eq!(all.len(), 20);
    let third = all[2].global_position;
    let from_third = store
        .get_category_messages("thing", &CategoryQuery::new().position(third).batch_size(2))
        .await
        .unwrap();
    assert_eq!(from_third.len(), 2);
    assert_eq!(from_third[0].global_position, third, "inclusive");

    let paged: Vec<Message> = store
        .read_category("thing", CategoryQuery::new().batch_size(3))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(paged, all);

    let unlimited = store
        .get_stream_messages("thing-2", &StreamQuery::new().batch_size(-1))
        .await
        .unwrap();
    assert_eq!(unlimited.len(), 10);

    let err = store
        .get_stream_messages("thing-2", &StreamQuery::new().batch_size(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

/// Expected versions: none, no stream, exact; a conflict carries the
/// stream, the expectation and the actual version, and writes nothing.
pub async fn expected_versions(store: &impl MessageStore) {
    let s = name("account-7");
    store
        .write(&s, &msg("Opened", 0), ExpectedVersion::NoStream)
        .await
        .unwrap();

    let err = store
        .write(&s, &msg("Opened", 1), ExpectedVersion::NoStream)
        .await
        .unwrap_err();
    match &err {
        Error::WrongExpectedVersion {
            stream_name,
            expected,
            actual,
        } => {
            assert_eq!(stream_name, "account-7");
            assert_eq!(*expected, -1);
            assert_eq!(*actual, 0);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert!(err.is_wrong_expected_version());
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "Wrong expected version: -1 (Stream: account-7, Stream Version: 0)"
    );

    assert_eq!(
        store
            .write(&s, &msg("Deposited", 2), ExpectedVersion::Exact(0))
            .await
            .unwrap(),
        1
    );
    let err = store
        .write(&s, &msg("Deposited", 3), ExpectedVersion::Exact(0))
        .await
        .unwrap_err();
    assert!(err.is_wrong_expected_version(), "{err}");
    let err = store
        .write(
            &name("account-8"),
            &msg("Deposited", 3),
            ExpectedVersion::Exact(0),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Wrong expected version: 0 (Stream: account-8, Stream Version: -1)"
    );
    // No message has a negative position: such an expectation is refused
    // before anything is written, also for an empty stream.
    for exact in [-1, -2] {
        for stream in [&s, &name("account-9")] {
            let err = store
                .write(stream, &msg("Deposited", 4), ExpectedVersion::Exact(exact))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
            let err = store
                .write_batch(
                    stream,
                    &[msg("Deposited", 5)],
                    ExpectedVersion::Exact(exact),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        }
    }
    assert_eq!(store.stream_version("account-7").await.unwrap(), Some(1));
    assert_eq!(store.stream_version("account-8").await.unwrap(), None);
    assert_eq!(store.stream_version("account-9").await.unwrap(), None);
}

/// A batch is one unit: consecutive positions, the expected version checks
/// the first message, and a batch that fails anywhere writes nothing.
pub async fn batches_are_atomic(store: &impl MessageStore) {
    let s = name("order-1");
    let batch: Vec<MessageData> = (0..5).map(|n| msg("Added", n)).collect();
    assert_eq!(
        store
            .write_batch(&s, &batch, ExpectedVersion::NoStream)
            .await
            .unwrap(),
        Some(4)
    );
    let read = store
        .get_stream_messages("order-1", &StreamQuery::new())
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|m| m.id).collect::<Vec<_>>(),
        batch.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    assert_eq!(
        read.iter().map(|m| m.position).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );

    // The expectation is checked against the first message only.
    let more: Vec<MessageData> = (5..8).map(|n| msg("Added", n)).collect();
    assert_eq!(
        store
            .write_batch(&s, &more, ExpectedVersion::Exact(4))
            .await
            .unwrap(),
        Some(7)
    );

    let conflict: Vec<MessageData> = (0..3).map(|n| msg("Added", n)).collect();
    let err = store
        .write_batch(&s, &conflict, ExpectedVersion::Exact(4))
        .await
        .unwrap_err();
    assert!(err.is_wrong_expected_version(), "{err}");

    // A bad message in the middle spoils the whole batch.
    let mut bad = vec![
        msg("Added", 1),
        MessageData::new("Added", json!([1])),
        msg("Added", 3),
    ];
    let err = store
        .write_batch(&s, &bad, ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");

    // So does an id already in the store, in the last place.
    bad[1] = msg("Added", 2);
    bad[2] = msg("Added", 3).with_id(batch[0].id);
    let err = store
        .write_batch(&s, &bad, ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(err.is_duplicate_message_id(), "{err}");

    assert_eq!(store.stream_version("order-1").await.unwrap(), Some(7));
    assert_eq!(category(store, "order").await.len(), 8);

    // An empty batch writes nothing and reports the version.
    assert_eq!(
        store
            .write_batch(&s, &[], ExpectedVersion::Exact(7))
            .await
            .unwrap(),
        Some(7)
    );
    assert!(
        store
            .write_batch(&s, &[], ExpectedVersion::NoStream)
            .await
            .unwrap_err()
            .is_wrong_expected_version()
    );
}

/// Bad input gets a typed error and leaves the store as it was.
pub async fn bad_input_is_refused_and_changes_nothing(store: &impl MessageStore) {
    let s = name("input-1");
    let first = msg("Recorded", 0);
    store.write(&s, &first, ExpectedVersion::Any).await.unwrap();

    let duplicate = msg("Recorded", 1).with_id(first.id);
    let err = store
        .write(&s, &duplicate, ExpectedVersion::Any)
        .await
        .unwrap_err();
    match &err {
        Error::DuplicateMessageId { id, .. } => assert_eq!(*id, Some(first.id)),
        other => panic!("expected a duplicate id error, got {other:?}"),
    }
    // The same id in another stream is still a duplicate.
    let err = store
        .write(&name("input-2"), &duplicate, ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(err.is_duplicate_message_id(), "{err}");

    for data in [json!("text"), json!(3), json!(null), json!([])] {
        let err = store
            .write(
                &s,
                &MessageData::new("Recorded", data),
                ExpectedVersion::Any,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
    }
    let err = store
        .write(&s, &MessageData::new("", json!({})), ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");

    assert_eq!(category(store, "input").await.len(), 1);
}

/// The last message of a stream, optionally of a type, and its version.
pub async fn last_message_and_version(store: &impl MessageStore) {
    assert_eq!(
        store.get_last_stream_message("cart-1", None).await.unwrap(),
        None
    );
    assert_eq!(store.stream_version("cart-1").await.unwrap(), None);
    assert_eq!(store.category_head("cart").await.unwrap(), None);
    let s = name("cart-1");
    store
        .write(&s, &msg("Added", 0), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&s, &msg("Removed", 1), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&s, &msg("Added", 2), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&s, &msg("Checked", 3), ExpectedVersion::Any)
        .await
        .unwrap();

    let last = store
        .get_last_stream_message("cart-1", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((last.position, last.type_name.as_str()), (3, "Checked"));
    let added = store
        .get_last_stream_message("cart-1", Some("Added"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (added.position, added.data.to_value().unwrap()["n"].as_i64()),
        (2, Some(2))
    );
    assert_eq!(
        store
            .get_last_stream_message("cart-1", Some("Paid"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.stream_version("cart-1").await.unwrap(), Some(3));

    // The category's head is its last message's global position, whatever
    // the other categories hold.
    store
        .write(&name("other-1"), &msg("Added", 4), ExpectedVersion::Any)
        .await
        .unwrap();
    assert_eq!(
        store.category_head("cart").await.unwrap(),
        Some(last.global_position)
    );
    let err = store.category_head("cart-1").await.unwrap_err();
    assert!(
        matches!(err, ebb_message_store::Error::NotACategory(_)),
        "{err}"
    );
}

/// Reads refuse the wrong kind of name and invalid group arguments, with
/// Message DB's texts.
pub async fn read_argument_errors(store: &impl MessageStore) {
    let err = store
        .get_stream_messages("account", &StreamQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotAStreamName(_)), "{err:?}");
    assert_eq!(err.to_string(), "Must be a stream name: account");

    let err = store
        .get_category_messages("account-1", &CategoryQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotACategory(_)), "{err:?}");
    assert_eq!(err.to_string(), "Must be a category: account-1");

    let err = store
        .get_category_messages("account", &CategoryQuery::new().correlation("transfer-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCorrelation(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Correlation must be a category (Correlation: transfer-1)"
    );

    let cases = [
        (
            0,
            0,
            "Consumer group size must not be less than 1 (Consumer Group Member: 0, Consumer Group Size: 0)",
        ),
        (
            -1,
            2,
            "Consumer group member must not be less than 0 (Consumer Group Member: -1, Consumer Group Size: 2)",
        ),
        (
            2,
            2,
            "Consumer group member must be less than the group size (Consumer Group Member: 2, Consumer Group Size: 2)",
        ),
    ];
    for (member, size, text) in cases {
        let err = store
            .get_category_messages(
                "account",
                &CategoryQuery::new().consumer_group(member, size),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConsumerGroup { .. }), "{err:?}");
        assert_eq!(err.to_string(), text);
    }

    for err in [
        store
            .get_stream_messages("account-1", &StreamQuery::new().condition("position > 0"))
            .await
            .unwrap_err(),
        store
            .get_category_messages("account", &CategoryQuery::new().condition("position > 0"))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::ConditionNotActivated), "{err:?}");
        assert_eq!(
            err.to_string(),
            "Retrieval with SQL condition is not activated"
        );
    }
}

/// The correlation filter keeps messages whose correlation stream is in the
/// given category.
pub async fn correlation_filter(store: &impl MessageStore) {
    let with = |correlation: Option<&str>, n| {
        let mut message = msg("Happened", n);
        message.metadata.correlation_stream_name = correlation.map(str::to_owned);
        message
    };
    let s = name("work-1");
    store
        .write(&s, &with(Some("transfer-1"), 0), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&s, &with(None, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&s, &with(Some("transfer-2"), 2), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&s, &with(Some("other-1"), 3), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&s, &with(Some("transfer"), 4), ExpectedVersion::Any)
        .await
        .unwrap();

    let read = store
        .get_category_messages("work", &CategoryQuery::new().correlation("transfer"))
        .await
        .unwrap();
    assert_eq!(
        read.iter()
            .map(|m| m.data.to_value().unwrap()["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 2, 4]
    );
}

/// A consumer group splits a category's streams between its members: each
/// stream with an id goes to exactly one member, every stream with the same
/// cardinal id to the same one, and streams without an id to none.
pub async fn consumer_groups_partition_streams(store: &impl MessageStore) {
    let mut streams = Vec::new();
    for i in 0..24 {
        streams.push(format!("job-{i}"));
        streams.push(format!("job-{i}+extra"));
    }
    streams.push("job".to_owned());
    for (n, stream) in streams.iter().enumerate() {
        store
            .write(
                &name(stream),
                &msg("Queued", n as i64),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let size = 3;
    let mut owner: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen = 0;
    for member in 0..size {
        let read = store
            .get_category_messages("job", &CategoryQuery::new().consumer_group(member, size))
            .await
            .unwrap();
        assert!(
            !read.is_empty(),
            "member {member} got nothing of 48 streams"
        );
        for message in read {
            seen += 1;
            let previous = owner.insert(message.stream_name.clone(), member);
            assert_eq!(
                previous, None,
                "{} went to two members",
                message.stream_name
            );
        }
    }
    assert_eq!(seen, 48, "every stream with an id, once");
    assert!(
        !owner.contains_key("job"),
        "a stream without an id goes to no member"
    );
    for i in 0..24 {
        assert_eq!(
            owner[&format!("job-{i}")],
            owner[&format!("job-{i}+extra")],
            "same cardinal id, same member"
        );
    }
    let members: BTreeSet<i64> = owner.values().copied().collect();
    assert_eq!(members.len(), size as usize);
}

/// Metadata is stored with camelCase keys and read back whole, unknown keys
/// included; `follow` links a message to its cause.
pub async fn metadata_round_trip(store: &impl MessageStore) {
    let s = name("account:command-5");
    let mut command = msg("Deposit", 0);
    command.metadata = Metadata {
        correlation_stream_name: Some("transfer-9".into()),
        reply_stream_name: Some("client-3".into()),
        properties: serde_json::Map::from_iter([("tenant".into(), json!("acme"))]),
        local_properties: serde_json::Map::from_iter([("trace".into(), json!(true))]),
        schema_version: Some("1".into()),
        other: serde_json::Map::from_iter([("clientKey".into(), json!({ "a": 1 }))]),
        ..Metadata::default()
    };
    store
        .write(&s, &command, ExpectedVersion::Any)
        .await
        .unwrap();
    let read = store
        .get_last_stream_message("account:command-5", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.metadata, command.metadata);

    let event = msg("Deposited", 1).follow(&read);
    store
        .write(&name("account-5"), &event, ExpectedVersion::Any)
        .await
        .unwrap();
    let event = store
        .get_last_stream_message("account-5", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event.metadata.causation_message_stream_name.as_deref(),
        Some("account:command-5")
    );
    assert_eq!(
        event.metadata.causation_message_position,
        Some(read.position)
    );
    assert_eq!(
        event.metadata.causation_message_global_position,
        Some(read.global_position)
    );
    assert_eq!(
        event.metadata.correlation_stream_name.as_deref(),
        Some("transfer-9")
    );
    assert_eq!(
        event.metadata.reply_stream_name.as_deref(),
        Some("client-3")
    );
    assert_eq!(event.metadata.properties["tenant"], json!("acme"));
    assert!(event.metadata.local_properties.is_empty());
}

/// Data comes back as written: nested values, escapes, non-ASCII text and
/// integers at the edges of i64. It is kept as text and decoded once,
/// straight into the type asked for: a field that only a text decoder can
/// fill (`RawValue`) fills, and data that does not fit the type is an
/// error that names the message.
pub async fn data_round_trip(store: &impl MessageStore) {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shaped {
        text: String,
        big: i64,
        small: i64,
        nested: Box<serde_json::value::RawValue>,
    }

    let data = json!({
        "text": "quote \" backslash \\ tab \t é ✓ 😀",
        "big": i64::MAX,
        "small": i64::MIN,
        "fraction": 1.5,
        "nested": { "list": [1, "two", null, true, { "deep": [] }] },
        "empty": {},
    });
    let written = MessageData::new("Shaped", data.clone());
    store
        .write(&name("shape-1"), &written, ExpectedVersion::Any)
        .await
        .unwrap();
    let read = store
        .get_last_stream_message("shape-1", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.data, data);
    assert_eq!(read.data::<serde_json::Value>().unwrap(), data);

    let shaped: Shaped = read.data().unwrap();
    assert_eq!(shaped.text, "quote \" backslash \\ tab \t é ✓ 😀");
    assert_eq!((shaped.big, shaped.small), (i64::MAX, i64::MIN));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(shaped.nested.get()).unwrap(),
        data["nested"]
    );

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Other {
        missing: String,
    }
    match read.data::<Other>() {
        Err(Error::Deserialize {
            stream_name,
            position,
            global_position,
            type_name,
            source,
        }) => {
            assert_eq!(
                (stream_name.as_str(), position, type_name.as_str()),
                ("shape-1", 0, "Shaped")
            );
            assert_eq!(global_position, read.global_position);
            assert!(source.to_string().contains("missing"), "{source}");
        }
        other => panic!("expected a Deserialize error, got {other:?}"),
    }
}

/// A write to an armed category wakes the wake-up, and a write to
/// another category does not; good for one wake-up, and armed again, woken
/// again.
///
/// Not in [`store_contract_tests!`](crate::store_contract_tests): a store
/// on a plain Message DB install cannot notify (its wake-ups are
/// `Wakeup::never`), so this is run for the stores that can
/// (`memory_contract`, `pg_contract`).
pub async fn a_write_wakes_an_armed_wakeup(store: &impl MessageStore) {
    use std::time::{Duration, Instant};

    use futures_util::FutureExt as _;

    let wakeup = store.arm_wakeup("account").await;
    assert!(wakeup.is_armed() && !wakeup.is_poll(), "{wakeup:?}");
    let mut wakeup = std::pin::pin!(wakeup);
    // The other category is armed too, and its own wake-up comes from the
    // write to it: once it has, a wake-up of `account` by that write would
    // have come as well (a store wakes a notification's waiters together).
    let other = store.arm_wakeup("transfer").await;
    store
        .write(
            &name("transfer-1"),
            &msg("Started", 0),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), other)
        .await
        .expect("the other category woken by its write");
    assert!(
        wakeup.as_mut().now_or_never().is_none(),
        "woken by a write to another category"
    );
    store
        .write(&name("account-1"), &msg("Opened", 1), ExpectedVersion::Any)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut wakeup)
        .await
        .expect("woken by the write to its category");

    // Armed again. A store may poll a category notified less than a moment
    // ago instead of arming it (PgStore's busy window): such wake-ups are
    // polls (`is_poll`), which come by themselves; they are waited out
    // until the store arms again, so that what wakes the last one can only
    // be the write's notification.
    let started = Instant::now();
    let again = loop {
        let again = store.arm_wakeup("account").await;
        assert!(again.is_armed(), "{again:?}");
        if !again.is_poll() {
            break again;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still polled instead of armed after 30 s"
        );
        tokio::time::timeout(Duration::from_secs(5), again)
            .await
            .expect("the poll comes");
    };
    store
        .write(
            &name("account-1"),
            &msg("Deposited", 2),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), again)
        .await
        .expect("armed again, woken again");
}

/// Generates one `#[tokio::test]` per contract function, each on a fresh
/// store made by `$make` (an async expression giving `(store, guard)`; the
/// guard lives as long as the test).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@each $make;
            positions_and_round_trip,
            inclusive_positions_and_batches,
            expected_versions,
            batches_are_atomic,
            bad_input_is_refused_and_changes_nothing,
            last_message_and_version,
            read_argument_errors,
            correlation_filter,
            consumer_groups_partition_streams,
            metadata_round_trip,
            data_round_trip,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::contract::$name(&store).await;
            }
        )*
    };
}
