//! `ebb trace`, run as a user runs it, against a database of each test's
//! own holding a small causation tree written with `follow`.

use ebb_message_store::{Message, MessageData, Metadata, PgStore, PgStoreConfig};
use serde_json::{Value, json};

mod common;
use common::{ebb, fails, fails_in_one_line, json_lines, ok, server, store_database, text};

/// The correlation stream of the transfer the tree belongs to.
const TRANSFER: &str = "transfer-7";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The messages of the tree, as written (and read back).
struct Written {
    /// `transfer:command-7` Transfer: the root, correlated to the transfer.
    transfer: Message,
    /// `account-a` Withdrawn, following the transfer.
    withdrawn: Message,
    /// `account-b` Deposited, following the transfer.
    deposited: Message,
    /// `transfer-7` Withdrew, following the withdrawal.
    withdrew: Message,
    /// `transfer-7` Completed, following the deposit.
    completed: Message,
    /// `notice-a` Notified, naming the withdrawal by stream name and
    /// position only (no global position), correlated to the transfer.
    notified: Message,
    /// The global position of `audit-1` Audited: correlated, its causation
    /// global position not a number (which the store's own reads refuse).
    audited: i64,
    /// `transfer:command-7` Retry: correlated, caused by nothing.
    retry: Message,
}

/// Writes `message` to `stream` and reads it back.
async fn write(store: &PgStore, stream: &str, message: MessageData) -> Message {
    ebb_tests::write_and_read_back(store, stream, &message).await
}

/// The tree, with a message of no tree's among it.
fn write_tree(url: &str) -> Written {
    let store = PgStore::new(PgStoreConfig::from_connection_string(url).unwrap()).unwrap();
    runtime().block_on(async {
        let correlated = Metadata {
            correlation_stream_name: Some(TRANSFER.into()),
            ..Metadata::default()
        };
        let transfer = write(
            &store,
            "transfer:command-7",
            MessageData::new("Transfer", json!({ "amount": 5 })).with_metadata(correlated.clone()),
        )
        .await;
        write(&store, "other-1", MessageData::new("Unrelated", json!({}))).await;
        let withdrawn = write(
            &store,
            "account-a",
            MessageData::new("Withdrawn", json!({ "amount": 5 })).follow(&transfer),
        )
        .await;
        let deposited = write(
            &store,
            "account-b",
            MessageData::new("Deposited", json!({ "amount": 5 })).follow(&transfer),
        )
        .await;
        let withdrew = write(
            &store,
            TRANSFER,
            MessageData::new("Withdrew", json!({})).follow(&withdrawn),
        )
        .await;
        let completed = write(
            &store,
            TRANSFER,
            MessageData::new("Completed", json!({})).follow(&deposited),
        )
        .await;
        let by_stream_and_position = Metadata {
            causation_message_stream_name: Some(withdrawn.stream_name.clone()),
            causation_message_position: Some(withdrawn.position),
            ..correlated.clone()
        };
        let notified = write(
            &store,
            "notice-a",
            MessageData::new("Notified", json!({})).with_metadata(by_stream_and_position),
        )
        .await;
        // Metadata `Metadata` cannot hold, as another client may write it.
        let client = store.client().await.unwrap();
        client
            .execute(
                "SELECT message_store.write_message($1, 'audit-1', 'Audited', '{}', $2::jsonb)",
                &[
                    &uuid::Uuid::new_v4().to_string(),
                    &json!({
                        "causationMessageGlobalPosition": "not a number",
                        "correlationStreamName": TRANSFER,
                    }),
                ],
            )
            .await
            .unwrap();
        let audited: i64 = client
            .query_one(
                "SELECT global_position FROM message_store.messages WHERE stream_name = 'audit-1'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let retry = write(
            &store,
            "transfer:command-7",
            MessageData::new("Retry", json!({})).with_metadata(correlated),
        )
        .await;
        Written {
            transfer,
            withdrawn,
            deposited,
            withdrew,
            completed,
            notified,
            audited,
            retry,
        }
    })
}

/// Each line's (depth, global position).
fn shape(lines: &[Value]) -> Vec<(i64, i64)> {
    lines
        .iter()
        .map(|line| {
            (
                line["depth"].as_i64().unwrap(),
                line["globalPosition"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The table's lines up to the time column (the times differ from run to
/// run), with the trailing spaces left out.
fn untimed(table: &str) -> Vec<String> {
    let header = table.lines().next().unwrap();
    let time_column = header.find("TIME").unwrap();
    table
        .lines()
        .map(|line| {
            let cells: String = line.chars().take(time_column).collect();
            cells.trim_end().to_owned()
        })
        .collect()
}

#[test]
fn a_message_s_tree_prints_indented_and_as_json_lines_in_tree_order() {
    let url = store_database("ebb_cli_trace");
    let w = write_tree(&url);
    let root = w.transfer.id.to_string();

    let lines = json_lines(&["trace", &root], &url);
    assert_eq!(
        shape(&lines),
        [
            (0, w.transfer.global_position),
            (1, w.withdrawn.global_position),
            (2, w.withdrew.global_position),
            (2, w.notified.global_position),
            (1, w.deposited.global_position),
            (2, w.completed.global_position),
        ],
        "{lines:#?}"
    );
    let first = &lines[0];
    assert_eq!(first["id"], json!(root));
    assert_eq!(first["streamName"], json!("transfer:command-7"));
    assert_eq!(first["position"], json!(0));
    assert_eq!(first["type"], json!("Transfer"));
    assert_eq!(first["causationGlobalPosition"], Value::Null);
    assert_eq!(first["correlationStreamName"], json!(TRANSFER));
    let time = chrono::DateTime::parse_from_rfc3339(first["time"].as_str().unwrap()).unwrap();
    assert_eq!(time.timestamp_micros(), w.transfer.time.timestamp_micros());
    // Each line's cause is the nearest line above it one level up.
    let mut causes: Vec<i64> = Vec::new();
    for line in &lines {
        let depth = line["depth"].as_u64().unwrap() as usize;
        causes.truncate(depth);
        assert_eq!(
            line["causationGlobalPosition"].as_i64(),
            causes.last().copied(),
            "{line}"
        );
        causes.push(line["globalPosition"].as_i64().unwrap());
    }
    // The one named by stream name and position only has its cause's
    // global position all the same.
    assert_eq!(
        lines[3]["causationGlobalPosition"],
        json!(w.withdrawn.global_position)
    );
    assert_eq!(lines[3]["id"], json!(w.notified.id.to_string()));

    // The tree, drawn and aligned.
    let out = ebb(&["trace", &root], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let row = |message: &Message, drawn: &str| {
        format!(
            "{:>6}  {:<18}  {:>8}  {}",
            message.global_position,
            format!("{drawn}{}", message.stream_name),
            message.position,
            message.type_name
        )
    };
    let expected = [
        format!("GLOBAL  {:<18}  POSITION  TYPE", "STREAM"),
        row(&w.transfer, ""),
        row(&w.withdrawn, "├─ "),
        row(&w.withdrew, "│  ├─ "),
        row(&w.notified, "│  └─ "),
        row(&w.deposited, "└─ "),
        row(&w.completed, "   └─ "),
    ];
    assert_eq!(untimed(&table), expected, "\n{table}");
    for line in table.lines().skip(1) {
        let time = line.rsplit("  ").next().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S%.3f").is_ok(),
            "{line}"
        );
    }

    // From the middle: what followed the withdrawal only.
    let lines = json_lines(&["trace", &w.withdrawn.id.to_string()], &url);
    assert_eq!(
        shape(&lines),
        [
            (0, w.withdrawn.global_position),
            (1, w.withdrew.global_position),
            (1, w.notified.global_position),
        ]
    );
    assert_eq!(
        lines[0]["causationGlobalPosition"],
        json!(w.transfer.global_position),
        "a root's cause, as its metadata names it"
    );
    // A leaf: itself.
    let lines = json_lines(&["trace", &w.completed.id.to_string()], &url);
    assert_eq!(shape(&lines), [(0, w.completed.global_position)]);
}

#[test]
fn the_index_the_help_suggests_gives_the_same_tree() {
    let url = store_database("ebb_cli_trace");
    let w = write_tree(&url);
    let root = w.transfer.id.to_string();
    let without = json_lines(&["trace", &root], &url);
    let help = ok(&["trace", "--help"], &url);
    let create_index = help
        .lines()
        .find(|line| line.trim_start().starts_with("CREATE INDEX"))
        .unwrap_or_else(|| panic!("no CREATE INDEX in:\n{help}"));
    let dbname = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .get_dbname()
        .unwrap()
        .to_owned();
    runtime().block_on(async {
        let client = server().connect(&dbname).await.unwrap();
        client.batch_execute(create_index).await.unwrap();
        // A table this small is scanned unless scans are ruled out, here
        // and in the sessions `ebb trace` opens.
        client
            .batch_execute(&format!(
                "ALTER DATABASE \"{dbname}\" SET enable_seqscan = off; \
                 SET enable_seqscan = off; ANALYZE message_store.messages"
            ))
            .await
            .unwrap();
        let plan: Vec<String> = client
            .query(
                "EXPLAIN SELECT 1 FROM message_store.messages m \
                 WHERE COALESCE(m.metadata::jsonb->>'causationMessageGlobalPosition', \
                   (m.metadata::jsonb->>'causationMessageStreamName') || '/' || \
                   (m.metadata::jsonb->>'causationMessagePosition')) = ANY('{1}'::text[])",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            plan.iter().any(|line| line.contains("messages_causation")),
            "{plan:#?}"
        );
    });
    assert_eq!(json_lines(&["trace", &root], &url), without);
}

#[test]
fn a_correlation_stream_prints_the_forest_of_its_messages() {
    let url = store_database("ebb_cli_trace");
    let w = write_tree(&url);
    let lines = json_lines(&["trace", TRANSFER], &url);
    assert_eq!(
        shape(&lines),
        [
            (0, w.transfer.global_position),
            (1, w.withdrawn.global_position),
            (2, w.withdrew.global_position),
            (2, w.notified.global_position),
            (1, w.deposited.global_position),
            (2, w.completed.global_position),
            (0, w.audited),
            (0, w.retry.global_position),
        ],
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|line| line["correlationStreamName"] == json!(TRANSFER)),
        "{lines:#?}"
    );
    assert_eq!(lines[6]["causationGlobalPosition"], Value::Null);
    let table = ok(&["trace", TRANSFER], &url);
    let untimed = untimed(&table);
    assert_eq!(untimed.len(), 9, "{table}");
    let row = |message: &Message| {
        format!(
            "{:>6}  {:<18}  {:>8}  {}",
            message.global_position, message.stream_name, message.position, message.type_name
        )
    };
    assert_eq!(
        untimed[7],
        format!("{:>6}  {:<18}  {:>8}  Audited", w.audited, "audit-1", 0),
        "{table}"
    );
    assert_eq!(untimed[8], row(&w.retry), "{table}");
}

#[test]
fn the_limit_cuts_the_tree_and_says_so() {
    let url = store_database("ebb_cli_trace");
    let w = write_tree(&url);
    let root = w.transfer.id.to_string();

    // The first levels: the root and what it caused.
    let out = ebb(&["trace", &root, "--limit", "3", "--json"], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        shape(&lines),
        [
            (0, w.transfer.global_position),
            (1, w.withdrawn.global_position),
            (1, w.deposited.global_position),
        ]
    );
    let err = text(&out.stderr);
    assert!(err.contains("cut at 3 messages"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Exactly as many as there are: not cut.
    let out = ebb(&["trace", &root, "--limit", "6"], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 7);
    // 0: no limit.
    assert_eq!(json_lines(&["trace", &root, "--limit", "0"], &url).len(), 6);

    // A correlation's earliest messages.
    let out = ebb(&["trace", TRANSFER, "--limit", "2", "--json"], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
    assert!(text(&out.stderr).contains("cut at 2 messages"));
}

#[test]
fn an_unknown_id_or_correlation_fails_and_a_malformed_one_is_a_usage_error() {
    let url = store_database("ebb_cli_trace");
    write_tree(&url);
    let missing = uuid::Uuid::new_v4().to_string();
    let err = fails_in_one_line(1, &["trace", &missing], &url);
    assert!(
        err.contains(&format!("no message has the id {missing}")),
        "{err}"
    );
    let err = fails_in_one_line(1, &["trace", "transfer-8", "--json"], &url);
    assert!(
        err.contains("no message is correlated to transfer-8"),
        "{err}"
    );

    // Refused before the database is touched: no server is needed.
    let nowhere = "host=/nonexistent port=5432 user=postgres dbname=x";
    for (bad, says) in [
        ("0b8c2a5e-7f3d-4c1a-9e2b-5d6f7a8b9c0", "is not a message id"),
        ("0b8c2a5e7f3d4c1a9e2b5d6f7a8b9c0dd", "is not a message id"),
        ("transfer-", "neither a message id"),
        ("transfer:-7", "neither a message id"),
        ("", "neither a message id"),
    ] {
        let err = fails_in_one_line(2, &["trace", bad], nowhere);
        assert!(err.contains(says), "{bad:?}: {err}");
    }
    // clap's own.
    for args in [&["trace"][..], &["trace", "transfer-7", "--limit", "x"]] {
        fails(2, args, nowhere);
    }
    // A server that is not there: one line, status 1.
    let dir = tempfile::tempdir().unwrap();
    let unreachable = format!(
        "host={} port=5432 user=postgres dbname=x",
        dir.path().display()
    );
    fails_in_one_line(1, &["trace", TRANSFER], &unreachable);
}
