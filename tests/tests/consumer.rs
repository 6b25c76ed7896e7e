//! The consumer against PostgreSQL: Eventide's position stream both ways,
//! two consumers in hot failover, and a consumer group.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ebb_consumer::{Consumer, ConsumerConfig};
use ebb_handler::{BoxError, Dispatcher, Received};
use ebb_message_store::{ConsumerGroup, PgStore};
use ebb_tests::seed::{self, Accounts, COMMAND_CATEGORY, Deposit};
use ebb_tests::{connect, database, run_until, store_for};

const COMMANDS: usize = 1_000;

/// The group members that handled a message, each with its stream.
type Handlers = Vec<(i64, String)>;
const ACCOUNTS: usize = 50;

/// The seed handler, and a handler after it that counts what it saw.
fn seed_handlers(store: &PgStore, seen: &Arc<AtomicUsize>) -> Dispatcher {
    let (accounts, _retries) = Accounts::new(store);
    let seen = Arc::clone(seen);
    Dispatcher::new()
        .on(accounts)
        .on(move |_: Received<Deposit>| {
            seen.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, BoxError>(()) }
        })
}

#[tokio::test]
async fn a_position_recorded_by_eventide_is_resumed_from_and_ebb_s_reads_as_eventide_s() {
    let db = database().await;
    let store = store_for(&db, 4);
    let expected = seed::write_commands(&store, 10, 2).await;
    let client = connect(&db).await;
    // As Eventide's Ruby consumer records a position: a Recorded message
    // with data {"position": N} and no metadata, in CATEGORY:position-ID
    // (`+position` for a category with types).
    client
        .batch_execute(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, \
             'account:command+position-worker1', 'Recorded', '{\"position\": 7}')",
        )
        .await
        .unwrap();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::new(
        ConsumerConfig {
            identifier: Some("worker1".into()),
            ..ConsumerConfig::new(COMMAND_CATEGORY)
        },
        store.clone(),
    )
    .unwrap()
    .handler(Dispatcher::new().on({
        let handled = Arc::clone(&handled);
        move |deposit: Received<Deposit>| {
            handled.lock().unwrap().push(deposit.global_position());
            async { Ok::<_, BoxError>(()) }
        }
    }));
    let last = expected
        .values()
        .flat_map(|(_, s)| s)
        .max()
        .copied()
        .unwrap();
    let done = Arc::clone(&handled);
    run_until(&consumer, move || {
        done.lock().unwrap().last() == Some(&last)
    })
    .await
    .unwrap();
    assert_eq!(
        *handled.lock().unwrap(),
        (7..=last).collect::<Vec<_>>(),
        "from Eventide's position, inclusively"
    );

    // What ebb recorded reads as Eventide's: the same type and data, and
    // no metadata.
    let row = client
        .query_one(
            "SELECT type, data = $1::jsonb, metadata IS NULL FROM message_store.messages \
             WHERE stream_name = 'account:command+position-worker1' \
             ORDER BY position DESC LIMIT 1",
            &[&serde_json::json!({ "position": last })],
        )
        .await
        .unwrap();
    let (type_name, same_data, no_metadata): (String, bool, bool) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(type_name, "Recorded");
    assert!(same_data, "data is exactly {{\"position\": {last}}}");
    assert!(no_metadata);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_in_hot_failover_apply_every_deposit_exactly_once() {
    let db = database().await;
    let store = store_for(&db, 8);
    let expected = seed::write_commands(&store, COMMANDS, ACCOUNTS).await;
    let consumer = |identifier: &str, seen: &Arc<AtomicUsize>| {
        Consumer::new(
            ConsumerConfig {
                identifier: Some(identifier.into()),
                batch_size: 100,
                ..ConsumerConfig::new(COMMAND_CATEGORY)
            },
            store.clone(),
        )
        .unwrap()
        .handler(seed_handlers(&store, seen))
    };
    let (seen_a, seen_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, b) = (consumer("a", &seen_a), consumer("b", &seen_b));
    let (done_a, done_b) = (Arc::clone(&seen_a), Arc::clone(&seen_b));
    let (a, b) = tokio::join!(
        tokio::spawn(async move {
            run_until(&a, move || done_a.load(Ordering::Relaxed) >= COMMANDS).await
        }),
        tokio::spawn(async move {
            run_until(&b, move || done_b.load(Ordering::Relaxed) >= COMMANDS).await
        }),
    );
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    seed::assert_applied_exactly_once(&store, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_handles_every_message_once_each_stream_by_one_member() {
    let db = database().await;
    let store = store_for(&db, 8);
    let expected = seed::write_commands(&store, 300, 30).await;
    // Per command message: the members that handled it, with its stream.
    let handled_by: Arc<Mutex<BTreeMap<i64, Handlers>>> = Arc::default();
    let total = Arc::new(AtomicUsize::new(0));
    let mut running = Vec::new();
    for member in 0..3 {
        let handled_by = Arc::clone(&handled_by);
        let total_seen = Arc::clone(&total);
        let handlers = Dispatcher::new().on(move |deposit: Received<Deposit>| {
            handled_by
                .lock()
                .unwrap()
                .entry(deposit.global_position())
                .or_default()
                .push((member, deposit.stream_name().to_owned()));
            total_seen.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, BoxError>(()) }
        });
        let consumer = Consumer::new(
            ConsumerConfig {
                identifier: Some(format!("g{member}")),
                group: Some(ConsumerGroup { member, size: 3 }),
                ..ConsumerConfig::new(COMMAND_CATEGORY)
            },
            store.clone(),
        )
        .unwrap()
        .handler(handlers);
        let total = Arc::clone(&total);
        running.push(tokio::spawn(async move {
            run_until(&consumer, move || total.load(Ordering::Relaxed) >= 300).await
        }));
    }
    for consumer in running {
        consumer.await.unwrap().unwrap();
    }
    let handled_by = handled_by.lock().unwrap();
    let all: Vec<i64> = expected
        .values()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    assert_eq!(handled_by.len(), all.len(), "every command handled");
    let mut member_of_stream: BTreeMap<String, i64> = BTreeMap::new();
    let mut members = std::collections::BTreeSet::new();
    for (position, handlers) in handled_by.iter() {
        assert_eq!(
            handlers.len(),
            1,
            "command {position} handled by {handlers:?}"
        );
        let (member, stream) = &handlers[0];
        members.insert(*member);
        let owner = member_of_stream.entry(stream.clone()).or_insert(*member);
        assert_eq!(owner, member, "{stream} went to two members");
    }
    assert_eq!(members.len(), 3, "each member has a share");
}

#[tokio::test]
async fn a_position_record_that_fails_stops_the_consumer() {
    let db = database().await;
    let store = store_for(&db, 4);
    seed::write_commands(&store, 500, 10).await;
    let client = connect(&db).await;
    // The record of the 100th message's position is refused by the
    // database (a permanent error, not a transient one).
    let hundredth: i64 = client
        .query_one(
            "SELECT global_position FROM message_store.messages \
             WHERE stream_name LIKE 'account:command-%' \
             ORDER BY global_position OFFSET 99 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!(
            "CREATE FUNCTION refuse_record() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF NEW.stream_name = 'account:command+position-refused' \
                  AND NEW.data->>'position' = '{hundredth}' THEN \
                 RAISE EXCEPTION 'position record refused for the test'; \
               END IF; \
               RETURN NEW; \
             END $$; \
             CREATE TRIGGER refuse_record BEFORE INSERT ON message_store.messages \
             FOR EACH ROW EXECUTE FUNCTION refuse_record();"
        ))
        .await
        .unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let consumer = Consumer::new(
        ConsumerConfig {
            identifier: Some("refused".into()),
            ..ConsumerConfig::new(COMMAND_CATEGORY)
        },
        store.clone(),
    )
    .unwrap()
    .handler(Dispatcher::new().on({
        let handled = Arc::clone(&handled);
        move |_: Received<Deposit>| {
            handled.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, BoxError>(()) }
        }
    }));
    // It stops on the failed record, before it has handled everything.
    let all = Arc::clone(&handled);
    let err = run_until(&consumer, move || all.load(Ordering::Relaxed) >= 500)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ebb_consumer::Error::Store(_)),
        "a store error: {err:?}"
    );
    assert!(
        format!("{err:?}").contains("position record refused for the test"),
        "{err:?}"
    );
    let handled = handled.load(Ordering::Relaxed);
    assert!(
        (100..500).contains(&handled),
        "stopped after the refused record, before the end: {handled}"
    );
    let recorded: Vec<i64> = client
        .query(
            "SELECT (data->>'position')::bigint FROM message_store.messages \
             WHERE stream_name = 'account:command+position-refused' ORDER BY position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(!recorded.contains(&hundredth), "{recorded:?}");
}
