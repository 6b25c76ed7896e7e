//! `ebb consumers`, `ebb stats`, `ebb failures` and `ebb parked`, run as a
//! user runs them, against a database of each test's own whose consumer
//! streams were written by real consumers (`ebb_consumer::Consumer`).

use std::time::Duration;

use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, Writer, message};
use ebb_message_store::{ExpectedVersion, PgStore, PgStoreConfig, StreamName};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod common;
use common::{fails, fails_in_one_line, json_lines, ok, server, store_database};

/// The category the consumers read; it has a type, so their streams are
/// named with `+` (`note:command+position-w1`).
const CATEGORY: &str = "note:command";

#[message]
struct Noted {
    n: i64,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How a test consumer of [`CATEGORY`] runs.
struct Run<'a> {
    identifier: Option<&'a str>,
    /// The note its handler fails on.
    fail_on: Option<i64>,
    /// Parks the note it fails on (after one retry) instead of stopping.
    park: bool,
}

/// Runs a consumer as `run` says, until it has handled note `last` (it is
/// then stopped) or it stops on its own with an error.
async fn consume(store: &PgStore, run: &Run<'_>, last: i64) -> Result<(), ebb_consumer::Error> {
    let config = ConsumerConfig {
        identifier: run.identifier.map(str::to_owned),
        position_update_interval: 1,
        store_retry_ms: Vec::new(),
        handler_retry_ms: if run.park { vec![1] } else { Vec::new() },
        park_after_retries: run.park,
        ..ConsumerConfig::new(CATEGORY)
    };
    let (handled, mut handled_rx) = mpsc::unbounded_channel();
    let fail_on = run.fail_on;
    let handlers = Dispatcher::new().on(move |noted: Received<Noted>| {
        let handled = handled.clone();
        async move {
            if Some(noted.n) == fail_on {
                return Err::<(), BoxError>(format!("cannot take {}", noted.n).into());
            }
            let _ = handled.send(noted.n);
            Ok(())
        }
    });
    let consumer = Consumer::new(config, store.clone())
        .expect("a valid consumer")
        .handler(handlers);
    let control = Control::new();
    let stopper = async {
        while let Some(n) = handled_rx.recv().await {
            if n == last {
                control.stop();
            }
        }
        std::future::pending::<()>().await;
    };
    let running = async {
        tokio::select! {
            result = consumer.run(&control) => result,
            () = stopper => unreachable!("the stopper never ends"),
        }
    };
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the consumer ends within 30 s")
}

async fn write_notes(store: &PgStore, notes: std::ops::RangeInclusive<i64>) {
    for n in notes {
        let stream = StreamName::parse(format!("{CATEGORY}-{}", n % 2)).unwrap();
        Writer::new(store.clone())
            .write(&stream, Noted { n }, ExpectedVersion::Any)
            .await
            .unwrap();
    }
}

/// The global position of every note, by its `n`, as `ebb read` shows.
fn global_positions(url: &str) -> Vec<(i64, i64)> {
    json_lines(&["read", CATEGORY], url)
        .iter()
        .map(|message| {
            (
                message["data"]["n"].as_i64().unwrap(),
                message["globalPosition"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Notes 1 to 5, read by three consumers: `w1` parks note 3, `w2` stops on
/// it (a failure record), one without an identifier handles them all; then
/// notes 6 and 7, which none has read.
fn three_consumers(url: &str) {
    let store = PgStore::new(PgStoreConfig::from_connection_string(url).unwrap()).unwrap();
    runtime().block_on(async {
        write_notes(&store, 1..=5).await;
        let parking = Run {
            identifier: Some("w1"),
            fail_on: Some(3),
            park: true,
        };
        consume(&store, &parking, 5).await.expect("w1 parks note 3");
        let stopping = Run {
            identifier: Some("w2"),
            fail_on: Some(3),
            park: false,
        };
        let err = consume(&store, &stopping, 5).await.unwrap_err();
        assert!(err.is_handler_failure(), "{err:?}");
        let anonymous = Run {
            identifier: None,
            fail_on: None,
            park: false,
        };
        consume(&store, &anonymous, 5).await.expect("all handled");
        write_notes(&store, 6..=7).await;
    });
}

#[test]
fn consumers_stats_failures_and_parked_messages_read_back() {
    let url = store_database("ebb_cli_ops");
    three_consumers(&url);
    // A consumer of a category without a type, its position written by
    // hand: `account:position-x`.
    ok(
        &[
            "write",
            "account:position-x",
            "Recorded",
            r#"{"position": 1}"#,
        ],
        &url,
    );
    let positions = global_positions(&url);
    assert_eq!(positions.len(), 7, "{positions:?}");
    let global = |n: i64| positions.iter().find(|(note, _)| *note == n).unwrap().1;
    let head = global(7);

    // consumers: all of them, by category then identifier.
    let consumers = json_lines(&["consumers"], &url);
    let found: Vec<(&str, Value)> = consumers
        .iter()
        .map(|c| (c["category"].as_str().unwrap(), c["identifier"].clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("account", json!("x")),
            (CATEGORY, Value::Null),
            (CATEGORY, json!("w1")),
            (CATEGORY, json!("w2")),
        ],
        "{consumers:#?}"
    );
    let account = &consumers[0];
    assert_eq!(account["positionStream"], json!("account:position-x"));
    assert_eq!(account["position"], json!(1));
    assert_eq!(account["head"], Value::Null, "no account messages");
    assert_eq!(account["lag"], json!(0));

    let anonymous = &consumers[1];
    assert_eq!(anonymous["positionStream"], json!("note:command+position"));
    assert_eq!(anonymous["position"], json!(global(5)));
    assert_eq!(
        (&anonymous["failures"], &anonymous["parked"]),
        (&json!(0), &json!(0))
    );

    let w1 = &consumers[2];
    assert_eq!(w1["positionStream"], json!("note:command+position-w1"));
    assert_eq!(w1["position"], json!(global(5)));
    assert_eq!(w1["head"], json!(head));
    assert_eq!(w1["lag"], json!(2), "notes 6 and 7 left to handle");
    assert_eq!((&w1["failures"], &w1["parked"]), (&json!(0), &json!(1)));
    let recorded_at = w1["recordedAt"].as_str().expect("recordedAt");
    let recorded_at = chrono::DateTime::parse_from_rfc3339(recorded_at).unwrap();
    let age = chrono::Utc::now().signed_duration_since(recorded_at);
    assert!(age.num_minutes().abs() < 10, "recorded {age} ago");

    assert!(
        consumers.iter().all(|c| c["estimated"] == json!(false)),
        "small lags are counted: {consumers:#?}"
    );
    assert_eq!(json_lines(&["consumers", "--exact"], &url), consumers);

    let w2 = &consumers[3];
    assert_eq!(w2["position"], json!(global(2)), "stopped at note 3");
    assert_eq!(w2["lag"], json!(5), "notes 3 to 7 left to handle");
    assert_eq!((&w2["failures"], &w2["parked"]), (&json!(1), &json!(0)));

    // One category's only.
    assert_eq!(json_lines(&["consumers", CATEGORY], &url), consumers[1..]);
    assert_eq!(json_lines(&["consumers", "account"], &url), consumers[..1]);
    assert!(json_lines(&["consumers", "other"], &url).is_empty());

    // The table: a header, one aligned row per consumer.
    let table = ok(&["consumers", CATEGORY], &url);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[0].starts_with("CATEGORY      CONSUMER  POSITION"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("note:command  w1") && lines[2].ends_with("position-w1"),
        "{table}"
    );

    // stats: the counts written, by category and type, by type, by stream.
    let by_category = json_lines(&["stats"], &url);
    let count = |lines: &[Value], key: &str, value: &str, type_name: Option<&str>| {
        lines
            .iter()
            .find(|line| {
                line[key] == json!(value) && type_name.is_none_or(|t| line["type"] == json!(t))
            })
            .unwrap_or_else(|| panic!("{key} = {value}: {lines:#?}"))["messageCount"]
            .clone()
    };
    assert_eq!(
        count(&by_category, "category", CATEGORY, Some("Noted")),
        json!(7)
    );
    assert_eq!(
        count(
            &by_category,
            "category",
            "note:command+parked",
            Some("Parked")
        ),
        json!(1)
    );
    let total: f64 = by_category
        .iter()
        .map(|line| line["percent"].as_f64().unwrap())
        .sum();
    assert!((total - 100.0).abs() < 0.1, "{total}: {by_category:#?}");
    assert_eq!(
        json_lines(&["stats", "--by", "category"], &url),
        by_category
    );
    let by_type = json_lines(&["stats", "--by", "type"], &url);
    assert_eq!(count(&by_type, "type", "Failed", None), json!(1));
    assert_eq!(count(&by_type, "type", "Noted", None), json!(7));
    let by_stream = json_lines(&["stats", "--by", "stream"], &url);
    assert_eq!(
        count(&by_stream, "streamName", "note:command+failures-w2", None),
        json!(1)
    );
    assert_eq!(by_stream[0].as_object().unwrap().len(), 4, "{by_stream:#?}");
    // A small store is counted, by Message DB's views, as --exact counts.
    for lines in [&by_category, &by_type, &by_stream] {
        assert!(
            lines.iter().all(|line| line["estimated"] == json!(false)),
            "{lines:#?}"
        );
    }
    for by in ["category", "type", "stream"] {
        assert_eq!(
            json_lines(&["stats", "--by", by, "--exact"], &url),
            json_lines(&["stats", "--by", by], &url),
            "{by}"
        );
    }
    let table = ok(&["stats"], &url);
    assert!(table.starts_with("CATEGORY"), "{table}");
    assert!(table.contains("MESSAGES  PERCENT"), "{table}");
    assert!(!table.contains('~'), "nothing estimated: {table}");

    // failures: w2's, none of w1's.
    let failures = json_lines(&["failures", CATEGORY], &url);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let failure = &failures[0];
    assert_eq!(failure["identifier"], json!("w2"));
    assert_eq!(failure["globalPosition"], json!(global(3)));
    assert_eq!(failure["streamName"], json!("note:command-1"));
    assert_eq!(failure["type"], json!("Noted"));
    assert_eq!(failure["error"], json!("cannot take 3"));
    assert_eq!(failure["attempts"], json!(1));
    assert_eq!(
        json_lines(&["failures", CATEGORY, "--consumer", "w2"], &url),
        failures
    );
    assert!(json_lines(&["failures", CATEGORY, "--consumer", "w1"], &url).is_empty());
    let table = ok(&["failures", CATEGORY], &url);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("w2") && row.ends_with("cannot take 3")),
        "{table}"
    );

    // parked: w1's note 3.
    let parked = json_lines(&["parked", "list", CATEGORY], &url);
    assert_eq!(parked.len(), 1, "{parked:#?}");
    let note = &parked[0];
    assert_eq!(note["category"], json!(CATEGORY));
    assert_eq!(note["identifier"], json!("w1"));
    assert_eq!(note["globalPosition"], json!(global(3)));
    assert_eq!(note["streamName"], json!("note:command-1"));
    assert_eq!(note["position"], json!(1));
    assert_eq!(note["type"], json!("Noted"));
    assert_eq!(note["error"], json!("cannot take 3"));
    assert_eq!(note["failures"], json!(0));
    assert!(note["parkedAt"].is_string(), "{note}");
    assert_eq!(
        json_lines(&["parked", "list", CATEGORY, "--consumer", "w1"], &url),
        parked
    );
    assert!(json_lines(&["parked", "list", CATEGORY, "--consumer", "w2"], &url).is_empty());

    let shown = ok(&["parked", "show", CATEGORY, &global(3).to_string()], &url);
    for expected in [
        "consumer:        w1",
        "stream:          note:command-1",
        "error:           cannot take 3",
        "attempts:        2",
        "data:\n{\n  \"n\": 3\n}",
        "metadata:\n{",
    ] {
        assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
    }
    let err = fails_in_one_line(
        1,
        &["parked", "show", CATEGORY, &global(4).to_string()],
        &url,
    );
    assert!(err.contains("no message at global position"), "{err}");
    fails_in_one_line(
        1,
        &[
            "parked",
            "show",
            CATEGORY,
            &global(3).to_string(),
            "--consumer",
            "w2",
        ],
        &url,
    );
}

/// A store larger than `ebb stats` counts (over 100,000 messages by the
/// planner's estimate), written by SQL: 150,000 messages in 1,500 streams
/// of `big` (types `Deposited` and `Withdrawn` in turn), 3 `Noted` in
/// `tiny-1`, and two consumers of `big`: `slow` at global position 10,
/// `fast` 5 messages behind the head. Analyzed, as autovacuum would.
fn large_store(url: &str) {
    let store = PgStore::new(PgStoreConfig::from_connection_string(url).unwrap()).unwrap();
    runtime().block_on(async {
        let client = store.client().await.unwrap();
        client
            .batch_execute(
                "INSERT INTO message_store.messages (position, stream_name, type, data)
                 SELECT n / 1500, 'big-' || n % 1500,
                        CASE WHEN n % 2 = 0 THEN 'Deposited' ELSE 'Withdrawn' END,
                        jsonb_build_object('n', n)
                 FROM generate_series(0, 149999) AS n;
                 INSERT INTO message_store.messages (position, stream_name, type, data)
                 SELECT n, 'tiny-1', 'Noted', '{}' FROM generate_series(0, 2) AS n;
                 INSERT INTO message_store.messages (position, stream_name, type, data)
                 SELECT 0, 'big:position-' || name, 'Recorded', jsonb_build_object('position', at)
                 FROM (VALUES ('slow', 10), ('fast', 149995)) AS consumer(name, at);",
            )
            .await
            .unwrap();
        client
            .batch_execute("ANALYZE message_store.messages")
            .await
            .unwrap();
    });
}

/// The lines of `lines` whose `key` is `value`.
fn lines_of<'a>(lines: &'a [Value], key: &str, value: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line[key] == json!(value))
        .collect()
}

#[test]
fn a_large_store_is_estimated_and_says_so() {
    let url = store_database("ebb_cli_ops_large");
    large_store(&url);

    // stats: big's counts are estimated from a sample, the small
    // categories counted.
    let by_category = json_lines(&["stats"], &url);
    let big = lines_of(&by_category, "category", "big");
    assert_eq!(big.len(), 2, "{by_category:#?}");
    for line in &big {
        assert_eq!(line["estimated"], json!(true), "{line}");
        let count = line["messageCount"].as_i64().unwrap();
        assert!((60_000..=90_000).contains(&count), "75,000 or so: {line}");
    }
    let tiny = lines_of(&by_category, "category", "tiny");
    assert_eq!(tiny.len(), 1, "{by_category:#?}");
    assert_eq!(
        (
            &tiny[0]["type"],
            &tiny[0]["messageCount"],
            &tiny[0]["estimated"]
        ),
        (&json!("Noted"), &json!(3), &json!(false))
    );
    let positions = lines_of(&by_category, "category", "big:position");
    assert_eq!(positions[0]["messageCount"], json!(2), "{positions:#?}");
    assert_eq!(positions[0]["estimated"], json!(false), "{positions:#?}");
    let total: f64 = by_category
        .iter()
        .map(|line| line["percent"].as_f64().unwrap())
        .sum();
    assert!((total - 100.0).abs() < 0.1, "{total}: {by_category:#?}");
    let table = ok(&["stats"], &url);
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows.iter()
            .any(|row| row.starts_with("big ") && row.contains(" ~")),
        "{table}"
    );
    assert!(
        rows.iter()
            .any(|row| row.starts_with("tiny ") && !row.contains('~')),
        "{table}"
    );
    let note = rows.last().unwrap();
    assert!(
        note.starts_with("~ estimated") && note.contains("--exact"),
        "{table}"
    );

    // --exact: Message DB's views, every message counted.
    let exact = json_lines(&["stats", "--exact"], &url);
    let big = lines_of(&exact, "category", "big");
    assert_eq!(big.len(), 2, "{exact:#?}");
    for line in big {
        assert_eq!(
            (&line["messageCount"], &line["estimated"]),
            (&json!(75_000), &json!(false)),
            "{line}"
        );
    }
    assert!(!ok(&["stats", "--exact"], &url).contains('~'));

    let by_type = json_lines(&["stats", "--by", "type"], &url);
    let deposited = lines_of(&by_type, "type", "Deposited");
    assert_eq!(deposited[0]["estimated"], json!(true), "{by_type:#?}");
    let noted = lines_of(&by_type, "type", "Noted");
    assert_eq!(
        (&noted[0]["messageCount"], &noted[0]["estimated"]),
        (&json!(3), &json!(false)),
        "{by_type:#?}"
    );

    // By stream: the largest streams the sample found, each counted.
    let by_stream = json_lines(&["stats", "--by", "stream"], &url);
    assert_eq!(by_stream.len(), 100, "{by_stream:#?}");
    for line in &by_stream {
        assert!(
            line["streamName"].as_str().unwrap().starts_with("big-"),
            "{line}"
        );
        assert_eq!(
            (&line["messageCount"], &line["estimated"]),
            (&json!(100), &json!(false)),
            "{line}"
        );
    }
    let table = ok(&["stats", "--by", "stream"], &url);
    assert!(
        table.lines().last().unwrap().contains("at most 100"),
        "{table}"
    );
    assert_eq!(
        json_lines(&["stats", "--by", "stream", "--exact"], &url).len(),
        1_503
    );

    // consumers: fast's lag counted, slow's estimated (or counted with
    // --exact).
    let consumers = json_lines(&["consumers"], &url);
    let [fast, slow] = &consumers[..] else {
        panic!("{consumers:#?}")
    };
    assert_eq!(fast["identifier"], json!("fast"));
    assert_eq!(
        (&fast["lag"], &fast["estimated"]),
        (&json!(5), &json!(false))
    );
    assert_eq!(slow["identifier"], json!("slow"));
    assert_eq!(slow["estimated"], json!(true), "{slow}");
    let lag = slow["lag"].as_i64().unwrap();
    assert!((120_000..=180_000).contains(&lag), "149,990 or so: {slow}");
    let table = ok(&["consumers"], &url);
    assert!(
        table
            .lines()
            .any(|row| row.starts_with("big ") && row.contains("slow") && row.contains(" ~")),
        "{table}"
    );
    assert!(
        table.lines().last().unwrap().starts_with("~ estimated"),
        "{table}"
    );
    let exact = json_lines(&["consumers", "--exact"], &url);
    assert_eq!(
        (&exact[1]["lag"], &exact[1]["estimated"]),
        (&json!(149_990), &json!(false))
    );
}

/// `ebb consumers` finds position streams in the stream index where its
/// collation orders a category's names into one range (`C`, ICU) and from
/// the category's messages where not (ICU in LATIN1, where U+FFFF cannot
/// be written): the same consumers whichever way.
#[test]
#[allow(clippy::print_stderr)] // a collation the server lacks, skipped
fn position_streams_are_found_under_each_collation() {
    let databases = [
        ("c", "LOCALE 'C'"),
        (
            "icu",
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' ENCODING 'UTF8'",
        ),
        (
            "icu_latin1",
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' ENCODING 'LATIN1'",
        ),
    ];
    let mut found: Vec<(&str, Vec<Value>)> = Vec::new();
    for (collation, options) in databases {
        let name = format!("ebb_cli_ops_{collation}_{}", uuid::Uuid::new_v4().simple());
        let created = runtime().block_on(async {
            let client = server().connect("postgres").await.unwrap();
            client
                .batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE template0 {options}"
                ))
                .await
        });
        if let Err(err) = created {
            // A server before PostgreSQL 15, or without ICU.
            eprintln!("skipped {collation}: {err:?}");
            continue;
        }
        let url = server().connection_string(&name);
        ok(&["db", "install"], &url);
        for stream in [
            "acc:position-w1",
            "acc:position-w3",
            "acc:position",
            "ACC:position-w2",
            "acc:positionx-1",
            "acc:command+position-x",
            "acc-1",
        ] {
            ok(&["write", stream, "Recorded", r#"{"position": 1}"#], &url);
        }
        found.push((collation, json_lines(&["consumers"], &url)));
    }
    let (_, c) = &found[0];
    let consumers: Vec<(&str, &str)> = c
        .iter()
        .map(|line| {
            (
                line["category"].as_str().unwrap(),
                line["positionStream"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        consumers,
        [
            ("ACC", "ACC:position-w2"),
            ("acc", "acc:position"),
            ("acc", "acc:position-w1"),
            ("acc", "acc:position-w3"),
            ("acc:command", "acc:command+position-x"),
        ]
    );
    for (collation, consumers) in &found[1..] {
        let streams = |lines: &[Value]| -> Vec<Value> {
            lines
                .iter()
                .map(|line| line["positionStream"].clone())
                .collect()
        };
        assert_eq!(streams(consumers), streams(c), "{collation}");
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    // Refused before the database is touched: no server is needed.
    let nowhere = "host=/nonexistent port=5432 user=postgres dbname=x";
    for args in [
        &["consumers", "note-1"][..],
        &["failures", "note-1"],
        &["failures", CATEGORY, "--consumer", "a-b"],
        &["parked", "list", CATEGORY, "--consumer", ""],
        &["parked", "show", "note-1", "3"],
    ] {
        fails_in_one_line(2, args, nowhere);
    }
    // clap's own.
    for args in [
        &["stats", "--by", "colour"][..],
        &["failures"],
        &["parked", "show", CATEGORY, "three"],
        &["parked", "show", CATEGORY, "0"],
        &["parked"],
    ] {
        fails(2, args, nowhere);
    }
}

#[test]
fn without_a_store_the_commands_fail_in_one_line() {
    // A database without the schema.
    let name = format!("ebb_cli_ops_bare_{}", uuid::Uuid::new_v4().simple());
    runtime().block_on(async {
        let client = server().connect("postgres").await.unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    });
    let url = server().connection_string(&name);
    for args in [
        &["consumers"][..],
        &["consumers", CATEGORY],
        &["stats"],
        &["stats", "--by", "stream"],
        &["failures", CATEGORY],
        &["parked", "list", CATEGORY],
    ] {
        let err = fails_in_one_line(1, args, &url);
        assert!(err.contains("does not exist"), "{args:?}: {err}");
    }
    // A server that is not there.
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!(
        "host={} port=5432 user=postgres dbname=x",
        dir.path().display()
    );
    for args in [
        &["consumers"][..],
        &["stats"],
        &["parked", "list", CATEGORY],
    ] {
        fails_in_one_line(1, args, &nowhere);
    }
}
