//! The SQL interface itself, called directly: every function with its
//! defaults and error texts, the table, indexes, type, views, the role and
//! its privileges, ebb's wake-up objects beside Message DB's, and
//! installing (idempotent, concurrent, refusing a foreign schema).

use ebb_message_store::{schema, stream_name};
use ebb_tests::{connect, count_messages, database, empty_database};
use tokio_postgres::Client;

async fn error_text(client: &Client, sql: &str) -> String {
    let err = client.batch_execute(sql).await.expect_err(sql);
    err.as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {err}"))
        .message()
        .to_owned()
}

async fn write(client: &Client, stream: &str, type_name: &str) -> i64 {
    client
        .query_one(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, $1, $2, '{}')",
            &[&stream, &type_name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn version_and_name_functions_agree_with_rust() {
    let db = database().await;
    let client = connect(&db).await;
    let version: String = client
        .query_one("SELECT message_store.message_store_version()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, "1.3.0");

    let names = [
        "account",
        "account-1",
        "account-1+2",
        "account:command",
        "account:command-1+2",
        "account-6f4e-2b1c+x",
        "a-",
        "-",
        "",
        "x+y-1",
        "a:b+c-d+e+f",
    ];
    for name in names {
        let row = client
            .query_one(
                "SELECT message_store.category($1), message_store.id($1),
                        message_store.cardinal_id($1), message_store.is_category($1),
                        message_store.hash_64($1)",
                &[&name],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, String>(0),
            stream_name::category(name),
            "{name}"
        );
        assert_eq!(
            row.get::<_, Option<String>>(1).as_deref(),
            stream_name::id(name),
            "{name}"
        );
        assert_eq!(
            row.get::<_, Option<String>>(2).as_deref(),
            stream_name::cardinal_id(name),
            "{name}"
        );
        assert_eq!(
            row.get::<_, bool>(3),
            stream_name::is_category(name),
            "{name}"
        );
        assert_eq!(
            row.get::<_, i64>(4),
            ebb_message_store::hash_64(name),
            "{name}"
        );
    }
    let null_is_category: bool = client
        .query_one("SELECT message_store.is_category(NULL)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!null_is_category);
}

#[tokio::test]
async fn hash_64_is_the_first_64_bits_of_md5() {
    let db = database().await;
    let client = connect(&db).await;
    for value in ["", "123", "abc", "ÿ unicode ✓", "account-1"] {
        let row = client
            .query_one(
                "SELECT message_store.hash_64($1), left('x' || md5($1), 17)::bit(64)::bigint",
                &[&value],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), row.get::<_, i64>(1));
        assert_eq!(row.get::<_, i64>(0), ebb_message_store::hash_64(value));
    }
}

/// `acquire_lock` takes the advisory lock keyed by the category's hash
/// and returns the key; the lock is a transaction-level one, gone when the
/// transaction ends.
#[tokio::test]
async fn acquire_lock_returns_the_category_hash() {
    let db = database().await;
    let mut client = connect(&db).await;
    let transaction = client.transaction().await.unwrap();
    let hash: i64 = transaction
        .query_one("SELECT message_store.acquire_lock('account-123')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(hash, ebb_message_store::hash_64("account"));
    // pg_locks shows a bigint key as two oids, classid its high 32 bits
    // and objid its low 32 bits, with objsubid 1 (2 marks a key of two
    // int4s). The shift wraps, so a negative key (as this one is) comes
    // back whole.
    let held: Vec<(i64, i16, String)> = transaction
        .query(
            "SELECT (classid::bigint << 32) | objid::bigint, objsubid, mode FROM pg_locks
             WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(held, [(hash, 1, "ExclusiveLock".to_owned())]);
    transaction.commit().await.unwrap();
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the lock is held until the transaction ends");
}

#[tokio::test]
async fn write_message_defaults_and_expected_version_text() {
    let db = database().await;
    let client = connect(&db).await;
    let version: Option<i64> = client
        .query_one("SELECT message_store.stream_version('account-1')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, None);

    assert_eq!(write(&client, "account-1", "Opened").await, 0);
    let row = client
        .query_one(
            "SELECT metadata IS NULL, position, global_position, data::text FROM message_store.messages",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "metadata defaults to NULL");
    assert_eq!(row.get::<_, i64>(1), 0);

    let text = error_text(
        &client,
        "SELECT message_store.write_message(gen_random_uuid()::varchar, 'account-1', 'X', '{}', NULL, 5)",
    )
    .await;
    assert_eq!(
        text,
        "Wrong expected version: 5 (Stream: account-1, Stream Version: 0)"
    );
    let text = error_text(
        &client,
        "SELECT message_store.write_message(gen_random_uuid()::varchar, 'account-2', 'X', '{}', NULL, 0)",
    )
    .await;
    assert_eq!(
        text,
        "Wrong expected version: 0 (Stream: account-2, Stream Version: -1)"
    );
    assert_eq!(count_messages(&client).await, 1);
}

#[tokio::test]
async fn read_function_defaults() {
    let db = database().await;
    let client = connect(&db).await;
    client
        .batch_execute(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, 'big-1', 'Happened', '{}')
             FROM generate_series(1, 1001)",
        )
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"))
                .get::<_, i64>(0)
        }
    };
    // Default batch size 1000, default positions 0 (stream) and 1 (category).
    assert_eq!(
        count("SELECT count(*) FROM message_store.get_stream_messages('big-1')").await,
        1000
    );
    assert_eq!(
        count("SELECT min(position) FROM message_store.get_stream_messages('big-1')").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM message_store.get_category_messages('big')").await,
        1000
    );
    assert_eq!(
        count("SELECT min(global_position) FROM message_store.get_category_messages('big')").await,
        1
    );
    // -1: no limit.
    assert_eq!(
        count("SELECT count(*) FROM message_store.get_stream_messages('big-1', 0, -1)").await,
        1001
    );
    assert_eq!(
        count("SELECT count(*) FROM message_store.get_category_messages('big', 1, -1)").await,
        1001
    );
    // Positions are inclusive.
    assert_eq!(
        count("SELECT min(position) FROM message_store.get_stream_messages('big-1', 500, 10)")
            .await,
        500
    );
    assert_eq!(
        count(
            "SELECT min(global_position) FROM message_store.get_category_messages('big', 77, 10)"
        )
        .await,
        77
    );
    // NULL arguments mean the defaults.
    assert_eq!(
        count("SELECT count(*) FROM message_store.get_category_messages('big', NULL, NULL)").await,
        1000
    );
    // The type returns JSON as text and the columns in Message DB's order.
    let row = client
        .query_one(
            "SELECT * FROM message_store.get_last_stream_message('big-1')",
            &[],
        )
        .await
        .unwrap();
    let columns: Vec<(&str, String)> = row
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_().name().to_owned()))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "varchar".to_owned()),
            ("stream_name", "varchar".to_owned()),
            ("type", "varchar".to_owned()),
            ("position", "int8".to_owned()),
            ("global_position", "int8".to_owned()),
            ("data", "varchar".to_owned()),
            ("metadata", "varchar".to_owned()),
            ("time", "timestamp".to_owned()),
        ]
    );
    assert_eq!(row.get::<_, i64>("position"), 1000);
}

/// `get_stream_messages` without a condition runs a static query (planned
/// once per session), with one the dynamic query Message DB runs: both must
/// give the same rows for every position and batch size, NULLs included.
#[tokio::test]
async fn stream_reads_with_and_without_a_condition_agree() {
    let db = database().await;
    let client = connect(&db).await;
    for n in 0..12 {
        write(&client, "thing-1", "Happened").await;
        if n % 3 == 0 {
            write(&client, "thing-2", "Other").await;
        }
    }
    client
        .batch_execute("SET message_store.sql_condition = on")
        .await
        .unwrap();
    let ids = |sql: String| {
        let client = &client;
        async move {
            client
                .query(&sql, &[])
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"))
                .iter()
                .map(|row| (row.get::<_, String>("id"), row.get::<_, i64>("position")))
                .collect::<Vec<_>>()
        }
    };
    let mut compared = 0;
    for position in ["NULL", "0", "1", "5", "11", "12", "40"] {
        for batch in ["NULL", "-1", "1", "3", "1000"] {
            let args = format!("'thing-1', {position}, {batch}");
            let plain = ids(format!(
                "SELECT * FROM message_store.get_stream_messages({args})"
            ))
            .await;
            let conditioned = ids(format!(
                "SELECT * FROM message_store.get_stream_messages({args}, 'true')"
            ))
            .await;
            assert_eq!(plain, conditioned, "get_stream_messages({args})");
            let from = position.parse::<i64>().unwrap_or(0);
            let expected = match batch.parse::<i64>() {
                Ok(-1) | Err(_) => (12 - from).max(0),
                Ok(limit) => (12 - from).clamp(0, limit),
            };
            assert_eq!(plain.len() as i64, expected, "get_stream_messages({args})");
            assert!(
                plain.iter().map(|(_, p)| *p).eq(from..from + expected),
                "get_stream_messages({args}) in position order: {plain:?}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 35);
}

/// The same for `get_category_messages`, with correlations and consumer
/// groups.
#[tokio::test]
async fn category_reads_with_and_without_a_condition_agree() {
    let db = database().await;
    let client = connect(&db).await;
    for n in 0..30 {
        let correlation = if n % 2 == 0 { "order-1" } else { "invoice-7" };
        client
            .query_one(
                "SELECT message_store.write_message(gen_random_uuid()::varchar, $1, 'Happened', '{}',
                   jsonb_build_object('correlationStreamName', $2::text))",
                &[&format!("thing-{}", n % 7), &correlation],
            )
            .await
            .unwrap();
        if n % 4 == 0 {
            write(&client, "other-1", "Elsewhere").await;
        }
    }
    client
        .batch_execute("SET message_store.sql_condition = on")
        .await
        .unwrap();
    let positions = |sql: String| {
        let client = &client;
        async move {
            client
                .query(&sql, &[])
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"))
                .iter()
                .map(|row| row.get::<_, i64>("global_position"))
                .collect::<Vec<_>>()
        }
    };
    let mut seen = 0;
    for position in ["NULL", "1", "9", "38"] {
        for batch in ["NULL", "-1", "2", "1000"] {
            for correlation in ["NULL", "'order'", "'nothing'"] {
                for group in ["NULL, NULL", "0, 3", "2, 3"] {
                    let args = format!("'thing', {position}, {batch}, {correlation}, {group}");
                    let plain = positions(format!(
                        "SELECT * FROM message_store.get_category_messages({args})"
                    ))
                    .await;
                    let conditioned = positions(format!(
                        "SELECT * FROM message_store.get_category_messages({args}, 'true')"
                    ))
                    .await;
                    assert_eq!(plain, conditioned, "get_category_messages({args})");
                    assert!(plain.is_sorted(), "{args}: {plain:?}");
                    seen += plain.len();
                }
            }
        }
    }
    assert!(seen > 100, "the cases read something: {seen}");
}

#[tokio::test]
async fn read_function_error_texts() {
    let db = database().await;
    let client = connect(&db).await;
    let cases = [
        (
            "SELECT * FROM message_store.get_stream_messages('account')",
            "Must be a stream name: account",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account-1')",
            "Must be a category: account-1",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account', 1, 10, 'other-1')",
            "Correlation must be a category (Correlation: other-1)",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account', 1, 10, NULL, 1)",
            "Consumer group member and size must be specified (Consumer Group Member: 1, Consumer Group Size: <NULL>)",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account', 1, 10, NULL, NULL, 2)",
            "Consumer group member and size must be specified (Consumer Group Member: <NULL>, Consumer Group Size: 2)",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account', 1, 10, NULL, 0, 0)",
            "Consumer group size must not be less than 1 (Consumer Group Member: 0, Consumer Group Size: 0)",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account', 1, 10, NULL, -1, 2)",
            "Consumer group member must not be less than 0 (Consumer Group Member: -1, Consumer Group Size: 2)",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account', 1, 10, NULL, 2, 2)",
            "Consumer group member must be less than the group size (Consumer Group Member: 2, Consumer Group Size: 2)",
        ),
        (
            "SELECT * FROM message_store.get_stream_messages('account-1', 0, 10, 'position > 0')",
            "Retrieval with SQL condition is not activated",
        ),
        (
            "SELECT * FROM message_store.get_category_messages('account', 1, 10, NULL, NULL, NULL, 'position > 0')",
            "Retrieval with SQL condition is not activated",
        ),
    ];
    for (sql, text) in cases {
        assert_eq!(error_text(&client, sql).await, text, "{sql}");
    }
}

#[tokio::test]
async fn conditions_work_only_once_activated() {
    let db = database().await;
    let client = connect(&db).await;
    for _ in 0..4 {
        write(&client, "account-1", "Happened").await;
    }
    client
        .batch_execute("SET message_store.sql_condition = on")
        .await
        .unwrap();
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM message_store.get_stream_messages('account-1', 0, 10, 'position >= 2')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM message_store.get_category_messages('account', 1, 10, NULL, NULL, NULL, 'position < 1')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);

    client
        .batch_execute("SET message_store.sql_condition = off")
        .await
        .unwrap();
    let text = error_text(
        &client,
        "SELECT * FROM message_store.get_stream_messages('account-1', 0, 10, 'position >= 2')",
    )
    .await;
    assert_eq!(text, "Retrieval with SQL condition is not activated");
}

#[tokio::test]
async fn table_indexes_and_type_are_message_db_s() {
    let db = database().await;
    let client = connect(&db).await;
    let columns: Vec<(String, String, bool)> = client
        .query(
            "SELECT column_name::text, data_type::text, is_nullable = 'NO'
             FROM information_schema.columns
             WHERE table_schema = 'message_store' AND table_name = 'messages'
             ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = [
        ("global_position", "bigint", true),
        ("position", "bigint", true),
        ("time", "timestamp without time zone", true),
        ("stream_name", "text", true),
        ("type", "text", true),
        ("data", "jsonb", false),
        ("metadata", "jsonb", false),
        ("id", "uuid", true),
    ];
    assert_eq!(
        columns,
        expected
            .iter()
            .map(|(n, t, r)| ((*n).to_owned(), (*t).to_owned(), *r))
            .collect::<Vec<_>>()
    );

    let indexes: Vec<(String, String)> = client
        .query(
            "SELECT indexname::text, indexdef FROM pg_indexes
             WHERE schemaname = 'message_store' AND tablename = 'messages' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let find = |name: &str| {
        indexes
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no index {name} in {indexes:?}"))
            .1
            .clone()
    };
    assert!(
        find("messages_id")
            .contains("UNIQUE INDEX messages_id ON message_store.messages USING btree (id)")
    );
    assert!(find("messages_stream").contains("UNIQUE INDEX messages_stream ON message_store.messages USING btree (stream_name, \"position\")"));
    let category = find("messages_category");
    assert!(
        category.contains("message_store.category((stream_name)::character varying), global_position, message_store.category(((metadata ->> 'correlationStreamName'::text))::character varying)"),
        "{category}"
    );
    assert!(find("messages_pkey").contains("(global_position)"));

    // Category reads use the category index.
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT * FROM message_store.messages
             WHERE message_store.category(stream_name) = 'account' AND global_position >= 1
             ORDER BY global_position LIMIT 1000",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter().any(|line| line.contains("messages_category")),
        "{plan:?}"
    );
}

#[tokio::test]
async fn summary_views_count_and_share() {
    let db = database().await;
    let client = connect(&db).await;
    write(&client, "account-1", "Opened").await;
    write(&client, "account-1", "Deposited").await;
    write(&client, "account-2", "Opened").await;
    write(&client, "transfer-1", "Started").await;

    let rows = client
        .query(
            "SELECT stream_name, message_count, percent::float8 FROM message_store.stream_summary",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            ("account-1".to_owned(), 2, 50.0),
            ("account-2".to_owned(), 1, 25.0),
            ("transfer-1".to_owned(), 1, 25.0)
        ]
    );
    let rows = client
        .query(
            "SELECT type, message_count FROM message_store.type_summary",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            ("Deposited".to_owned(), 1),
            ("Opened".to_owned(), 2),
            ("Started".to_owned(), 1)
        ]
    );
    let rows = client
        .query(
            "SELECT category, type, message_count FROM message_store.category_type_summary",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].get::<_, String>(0), "account");
    assert_eq!(rows[1].get::<_, String>(1), "Opened");
    assert_eq!(rows[1].get::<_, i64>(2), 2);
    for view in [
        "stream_type_summary",
        "type_stream_summary",
        "type_category_summary",
    ] {
        let total: i64 = client
            .query_one(
                &format!("SELECT sum(message_count)::bigint FROM message_store.{view}"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(total, 4, "{view}");
    }
}

#[tokio::test]
async fn the_role_may_read_and_append_but_never_change() {
    let db = database().await;
    let client = connect(&db).await;
    let row = client
        .query_one(
            "SELECT has_table_privilege('message_store', 'message_store.messages', 'SELECT'),
                    has_table_privilege('message_store', 'message_store.messages', 'INSERT'),
                    has_table_privilege('message_store', 'message_store.messages', 'UPDATE'),
                    has_table_privilege('message_store', 'message_store.messages', 'DELETE'),
                    has_table_privilege('message_store', 'message_store.messages', 'TRUNCATE'),
                    has_sequence_privilege('message_store', 'message_store.messages_global_position_seq', 'USAGE'),
                    has_function_privilege('message_store', 'message_store.write_message(varchar, varchar, varchar, jsonb, jsonb, bigint)', 'EXECUTE'),
                    has_table_privilege('message_store', 'message_store.type_category_summary', 'SELECT'),
                    (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'message_store')",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<bool> = (0..9).map(|i| row.get(i)).collect();
    assert_eq!(
        got,
        [true, true, false, false, false, true, true, true, true]
    );

    // Acting as the role: writing and reading work, changing does not.
    client
        .batch_execute("SET ROLE message_store")
        .await
        .unwrap();
    write(&client, "account-1", "Opened").await;
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM message_store.get_stream_messages('account-1')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
    let text = error_text(
        &client,
        "UPDATE message_store.messages SET type = 'Changed'",
    )
    .await;
    assert!(text.contains("permission denied"), "{text}");
    let text = error_text(&client, "DELETE FROM message_store.messages").await;
    assert!(text.contains("permission denied"), "{text}");
}

/// ebb's wake-up objects: the arming functions and the trigger, usable
/// by the role; arming is a shared lock of the session, taken once per
/// call and released once per disarming; and a reinstall leaves a trigger
/// an operator disabled disabled.
#[tokio::test]
async fn wake_up_objects_are_installed_and_usable_by_the_role() {
    let db = database().await;
    let client = connect(&db).await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM pg_trigger
                     WHERE tgrelid = 'message_store.messages'::regclass AND NOT tgisinternal),
                    (SELECT pg_get_triggerdef(oid) FROM pg_trigger
                     WHERE tgrelid = 'message_store.messages'::regclass AND NOT tgisinternal),
                    has_function_privilege('message_store', 'message_store.ebb_arm_category(varchar)', 'EXECUTE'),
                    has_function_privilege('message_store', 'message_store.ebb_disarm_category(varchar)', 'EXECUTE')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "one trigger on messages");
    let definition: String = row.get(1);
    assert!(
        definition.contains("messages_wake_category_waiters")
            && definition.contains("pg_try_advisory_xact_lock"),
        "{definition}"
    );
    assert!(row.get::<_, bool>(2));
    assert!(row.get::<_, bool>(3));

    client
        .batch_execute("SET ROLE message_store")
        .await
        .unwrap();
    let disarm = |category: &'static str| {
        let client = &client;
        async move {
            client
                .query_one("SELECT message_store.ebb_disarm_category($1)", &[&category])
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };
    client
        .batch_execute(
            "SELECT message_store.ebb_arm_category('account'); \
             SELECT message_store.ebb_arm_category('account')",
        )
        .await
        .unwrap();
    // Writes go on while armed (they notify; they never wait for it).
    write(&client, "account-1", "Opened").await;
    write(&client, "transfer-1", "Started").await;
    assert!(disarm("account").await, "the first arming");
    assert!(disarm("account").await, "the second");
    assert!(!disarm("account").await, "no third");
    assert!(!disarm("transfer").await, "never armed");
    client.batch_execute("RESET ROLE").await.unwrap();

    client
        .batch_execute(
            "ALTER TABLE message_store.messages DISABLE TRIGGER messages_wake_category_waiters",
        )
        .await
        .unwrap();
    schema::install(&client).await.unwrap();
    let enabled: String = client
        .query_one(
            "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'messages_wake_category_waiters'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(enabled, "D", "still disabled after a reinstall");
}

#[tokio::test]
async fn bad_input_through_sql_leaves_the_store_unchanged() {
    let db = database().await;
    let client = connect(&db).await;
    write(&client, "account-1", "Opened").await;

    let err = client
        .batch_execute("SELECT message_store.write_message('not-a-uuid', 'account-1', 'X', '{}')")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
    );

    // Random text, so that the index entry cannot be compressed below
    // PostgreSQL's b-tree limit.
    let noise: String = (0..400)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let long = format!("account-{noise}");
    let err = client
        .query_one(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, $1, 'X', '{}')",
            &[&long],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::PROGRAM_LIMIT_EXCEEDED),
        "{err}"
    );

    let err = client
        .batch_execute("SELECT message_store.write_message(gen_random_uuid()::varchar, 'account-1', 'X', '{not json')")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
    );

    assert_eq!(count_messages(&client).await, 1);
}

#[tokio::test]
async fn install_is_idempotent_and_records_its_version() {
    let db = empty_database().await;
    let client = connect(&db).await;
    assert_eq!(schema::installed_version(&client).await.unwrap(), None);
    let first = schema::install(&client).await.unwrap();
    write(&client, "account-1", "Opened").await;
    let second = schema::install(&client).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.message_db, "1.3.0");
    assert_eq!(first.ebb.as_deref(), Some(schema::EBB_SCHEMA_VERSION));
    assert_eq!(
        count_messages(&client).await,
        1,
        "reinstalling keeps the messages"
    );
    assert_eq!(ebb_tests::install_records(&client).await, 1);
}

#[tokio::test]
async fn concurrent_installs_take_turns() {
    let db = empty_database().await;
    let clients = [connect(&db).await, connect(&db).await, connect(&db).await];
    let results = futures_util::future::join_all(clients.iter().map(schema::install)).await;
    for result in results {
        result.expect("every concurrent install succeeds");
    }
    let client = &clients[0];
    assert_eq!(write(client, "account-1", "Opened").await, 0);
    // One install at a time: the later ones found the first's record and
    // functions, and added neither a second record nor an overload.
    assert_eq!(ebb_tests::install_records(client).await, 1);
    assert_eq!(ebb_tests::function_overloads(client).await, 0);
}

#[tokio::test]
async fn install_refuses_a_foreign_messages_table() {
    let db = empty_database().await;
    let client = connect(&db).await;
    client
        .batch_execute(
            "CREATE SCHEMA message_store;
             CREATE TABLE message_store.messages (id bigint, body text);",
        )
        .await
        .unwrap();
    let err = schema::install(&client).await.unwrap_err();
    assert!(
        matches!(err, ebb_message_store::Error::SchemaConflict(_)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("message_store.messages has columns (id bigint, body text)"),
        "{err}"
    );
    // Nothing was installed beside it.
    let functions: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'message_store'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(functions, 0);
}

#[tokio::test]
async fn install_refuses_another_message_db_version() {
    let db = empty_database().await;
    let client = connect(&db).await;
    client
        .batch_execute(
            "CREATE SCHEMA message_store;
             CREATE FUNCTION message_store.message_store_version() RETURNS varchar
               LANGUAGE sql AS $$ SELECT '1.2.6'::varchar $$;",
        )
        .await
        .unwrap();
    let err = schema::install(&client).await.unwrap_err();
    assert!(err.to_string().contains("Message DB 1.2.6"), "{err}");
}

/// A store logged in as the `message_store` role the install creates (the
/// least privilege the README recommends running components with) does
/// all a component's store does: writes, reads by stream and category,
/// versions, the category's head, and wake-ups, armed and delivered.
#[tokio::test]
async fn a_store_logged_in_as_the_message_store_role_does_what_a_component_needs() {
    use ebb_message_store::{
        CategoryQuery, ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig,
        StreamName,
    };
    let db = ebb_tests::database().await;
    let mut config = db.config();
    config.user("message_store");
    let store = PgStore::new(PgStoreConfig::new(config)).expect("a store");
    let stream = StreamName::new("account", "1").unwrap();
    let opened = MessageData::new("Opened", serde_json::json!({}));
    store
        .write(&stream, &opened, ExpectedVersion::NoStream)
        .await
        .expect("the role writes");
    let batch = store
        .get_category_messages("account", &CategoryQuery::new())
        .await
        .expect("the role reads a category");
    assert_eq!(batch.len(), 1);
    assert_eq!(
        store.stream_version(stream.as_str()).await.unwrap(),
        Some(0)
    );
    let wakeup = store.arm_wakeup("account").await;
    assert!(wakeup.is_armed(), "the role arms a wake-up: {wakeup:?}");
    let deposited = MessageData::new("Deposited", serde_json::json!({ "amount": 1 }));
    store
        .write(&stream, &deposited, ExpectedVersion::Any)
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), wakeup)
        .await
        .expect("woken by the write");
    let client = store.client().await.unwrap();
    let err = client
        .execute("DELETE FROM message_store.messages", &[])
        .await
        .expect_err("the role cannot delete");
    assert!(
        err.to_string().contains("permission denied")
            || format!("{err:?}").contains("permission denied"),
        "{err:?}"
    );
}

/// `ebb_write_messages`, ebb's function for group commit, called directly:
/// each message checked against its own expected version in the order
/// given (a conflict leaves that one out and the others in), positions and
/// versions reported per message, any number of streams and categories in
/// one call, empty arrays, and the errors that write nothing.
#[tokio::test]
async fn ebb_write_messages_checks_each_message_and_fails_whole_on_bad_input() {
    let db = database().await;
    let client = connect(&db).await;
    write(&client, "account-1", "Opened").await;

    // As the role components log in as.
    client
        .batch_execute("SET ROLE message_store")
        .await
        .unwrap();
    let call = "SELECT positions, stream_versions FROM message_store.ebb_write_messages(\
                $1::varchar[], $2::varchar[], $3::varchar[], $4::jsonb[], $5::jsonb[], $6::bigint[])";
    let ids: Vec<String> = (0..5).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let streams = [
        "account-1",
        "account-1",
        "audit-7",
        "account-1",
        "account-2",
    ];
    let types = ["Deposited", "Withdrawn", "Noted", "Closed", "Opened"];
    let data: Vec<serde_json::Value> = (0..5).map(|n| serde_json::json!({ "n": n })).collect();
    let metadata = [
        None,
        None,
        None,
        Some(serde_json::json!({ "correlationStreamName": "x-1" })),
        None,
    ];
    // account-1 is at 0: the first matches, the second (still expecting
    // 0) does not, the fourth (expecting 1, after the first) does.
    let expected = [Some(0i64), Some(0), None, Some(1), Some(-1)];
    let row = client
        .query_one(
            call,
            &[
                &ids,
                &streams.as_slice(),
                &types.as_slice(),
                &data
                    .iter()
                    .map(tokio_postgres::types::Json)
                    .collect::<Vec<_>>(),
                &metadata
                    .iter()
                    .map(|m| m.as_ref().map(tokio_postgres::types::Json))
                    .collect::<Vec<_>>(),
                &expected.as_slice(),
            ],
        )
        .await
        .unwrap();
    let positions: Vec<Option<i64>> = row.get(0);
    let versions: Vec<i64> = row.get(1);
    assert_eq!(positions, [Some(1), None, Some(0), Some(2), Some(0)]);
    assert_eq!(versions, [0, 1, -1, 1, -1]);

    let rows = client
        .query(
            "SELECT id::text, stream_name, position, type, data->>'n', \
                    metadata->>'correlationStreamName' \
             FROM message_store.messages WHERE type <> 'Opened' OR stream_name = 'account-2' \
             ORDER BY global_position",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, i64, String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let want = [0usize, 2, 3, 4].map(|i| {
        (
            ids[i].clone(),
            streams[i].to_owned(),
            positions[i].unwrap(),
            types[i].to_owned(),
            i.to_string(),
            (i == 3).then(|| "x-1".to_owned()),
        )
    });
    assert_eq!(
        got, want,
        "written in the order given, the conflict left out"
    );

    // Empty arrays write nothing and answer with empty arrays.
    let row = client
        .query_one(
            "SELECT positions, stream_versions FROM message_store.ebb_write_messages(\
             '{}', '{}', '{}', '{}', '{}', '{}')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<Option<i64>>>(0), Vec::<Option<i64>>::new());
    assert_eq!(row.get::<_, Vec<i64>>(1), Vec::<i64>::new());

    // Errors that fail the call as a whole, writing nothing.
    let before = count_messages(&client).await;
    let text = error_text(
        &client,
        "SELECT message_store.ebb_write_messages(ARRAY[gen_random_uuid()::varchar], \
         ARRAY['account-3', 'account-4'], ARRAY['X'], ARRAY['{}'::jsonb], ARRAY[NULL::jsonb], \
         ARRAY[NULL::bigint])",
    )
    .await;
    assert_eq!(
        text,
        "ebb_write_messages: every array must hold one element per message"
    );
    let taken = &ids[0];
    let err = client
        .batch_execute(&format!(
            "SELECT message_store.ebb_write_messages(\
             ARRAY[gen_random_uuid()::varchar, '{taken}'], ARRAY['account-3', 'account-4'], \
             ARRAY['X', 'X'], ARRAY['{{}}'::jsonb, '{{}}'], ARRAY[NULL::jsonb, NULL], \
             ARRAY[NULL::bigint, NULL])"
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    let err = client
        .batch_execute(
            "SELECT message_store.ebb_write_messages(ARRAY['not-a-uuid'], ARRAY['account-3'], \
             ARRAY['X'], ARRAY['{}'::jsonb], ARRAY[NULL::jsonb], ARRAY[NULL::bigint])",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
    );
    assert_eq!(count_messages(&client).await, before);

    // The role may call it; it may not change what is written.
    client.batch_execute("RESET ROLE").await.unwrap();
    let allowed: bool = client
        .query_one(
            "SELECT has_function_privilege('message_store', \
             'message_store.ebb_write_messages(varchar[], varchar[], varchar[], jsonb[], jsonb[], bigint[])', \
             'EXECUTE')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(allowed);
}
