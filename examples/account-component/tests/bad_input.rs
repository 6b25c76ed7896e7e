//! Bad input: commands a foreign writer puts straight into the store
//! with Message DB's `write_message`, on the real `account-component`
//! binary and a real PostgreSQL, each case on a fresh database:
//!
//! - a command type the component has no handler for is skipped, with a
//!   log line naming it, and the commands after it are handled;
//! - command data that is JSON but not an object, that misses a field,
//!   that holds a string where the amount belongs, or a negative amount:
//!   without parking the component stops on it at every start (exit 1,
//!   the stream, position and cause logged), its recorded position stays
//!   before it, and the commands before it are handled exactly; with
//!   `ACCOUNT_COMPONENT_PARK_AFTER_FAILURES=K` the start after the K-th
//!   failure parks it, and every other command, before and after it, is
//!   handled exactly while the component runs on until SIGTERM.
//!
//! Each run's log is kept in `CARGO_TARGET_TMPDIR/bad_input-*.log`.

#![allow(clippy::print_stdout)]

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use account_component::COMMAND_CATEGORY;
use account_component::supervise::{Program, Supervisor};
use account_component::verify::{self, Command};
use account_component::workload::{self, Outgoing, Workload};
use ebb::consumer::{ConsumerConfig, Failed, Parked, PositionStore};
use ebb::message_store::PgStore;

mod common;
use common::{count_events, log_path, wait_until_sigterm_is_caught};

/// How long a run may take to exit by itself, or to handle what it must.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The account whose command stream gets the bad command, between
/// commands of its own.
const ACCOUNT: &str = "v1";
const STREAM: &str = "account:command-v1";

/// One bad command.
struct Case {
    /// Names the log file.
    name: &'static str,
    /// The command's type.
    type_name: &'static str,
    /// Its data, as JSON text.
    data: &'static str,
    /// What the log must say is wrong with it.
    cause: &'static str,
    /// `ACCOUNT_COMPONENT_PARK_AFTER_FAILURES` in the parking test.
    park_after: u32,
}

const ARRAY: Case = Case {
    name: "array",
    type_name: "Deposit",
    // An array serde alone would read as a Deposit, field by field.
    data: r#"["d9", "v1", 500]"#,
    cause: "message data must be a JSON object, not an array",
    park_after: 1,
};

const STRING: Case = Case {
    name: "string",
    type_name: "Withdraw",
    data: r#""x""#,
    cause: "message data must be a JSON object, not a string",
    park_after: 2,
};

const NUMBER: Case = Case {
    name: "number",
    type_name: "Deposit",
    data: "42",
    cause: "message data must be a JSON object, not a number",
    park_after: 3,
};

const MISSING_AMOUNT: Case = Case {
    name: "missing-amount",
    type_name: "Deposit",
    data: r#"{"depositId": "bad", "accountId": "v1"}"#,
    cause: "missing field `amount`",
    park_after: 1,
};

const STRING_AMOUNT: Case = Case {
    name: "string-amount",
    type_name: "Withdraw",
    data: r#"{"withdrawalId": "bad", "accountId": "v1", "amount": "100"}"#,
    cause: r#"invalid type: string "100", expected i64"#,
    park_after: 2,
};

const NEGATIVE_AMOUNT: Case = Case {
    name: "negative-amount",
    type_name: "Deposit",
    data: r#"{"depositId": "bad", "accountId": "v1", "amount": -500}"#,
    cause: "Deposit bad for account v1: amount -500 is not a positive number of cents",
    park_after: 3,
};

/// A fresh database with a store and a plain client on it, for a
/// component with `identifier` (`CONSUMER_IDENTIFIER`).
struct Db {
    db: ebb_localpg::TestDatabase,
    store: PgStore,
    client: tokio_postgres::Client,
    identifier: Option<&'static str>,
}

impl Db {
    async fn fresh(identifier: Option<&'static str>) -> Self {
        let db = ebb_tests::database().await;
        let store = ebb_tests::store_for(&db, 2);
        let client = ebb_tests::connect(&db).await;
        Self {
            db,
            store,
            client,
            identifier,
        }
    }

    /// The component's consumer as the binary sets it up: what names its
    /// own streams.
    fn consumer_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            identifier: self.identifier.map(str::to_owned),
            ..ConsumerConfig::new(COMMAND_CATEGORY)
        }
    }

    /// Sends `commands` in order, through the component's own writer.
    async fn send(&self, commands: &[Outgoing]) {
        workload::send(&self.store, commands, 1, &std::sync::Arc::default())
            .await
            .expect("the commands are sent");
    }

    /// Writes a message as a foreign writer does, with Message DB's
    /// `write_message`; its position and global position.
    async fn write_raw(&self, stream: &str, type_name: &str, data: &str) -> (i64, i64) {
        let id = uuid::Uuid::new_v4().to_string();
        let position: i64 = self
            .client
            .query_one(
                "SELECT message_store.write_message($1, $2, $3, $4::text::jsonb)",
                &[&id, &stream, &type_name, &data],
            )
            .await
            .expect("write_message")
            .get(0);
        let global_position: i64 = self
            .client
            .query_one(
                "SELECT global_position FROM message_store.messages WHERE stream_name = $1 AND position = $2",
                &[&stream, &position],
            )
            .await
            .expect("the message written")
            .get(0);
        (position, global_position)
    }

    /// The events in the `account` category.
    async fn count_events(&self) -> usize {
        count_events(&self.client)
            .await
            .expect("the events counted")
    }

    /// The consumer's recorded position, read as the consumer reads it.
    async fn recorded_position(&self) -> Option<i64> {
        let stream = self
            .consumer_config()
            .position_stream_name()
            .expect("a name");
        let expected = match self.identifier {
            Some(identifier) => format!("account:command+position-{identifier}"),
            None => "account:command+position".to_owned(),
        };
        assert_eq!(stream.as_str(), expected);
        PositionStore::new(self.store.clone(), stream)
            .get()
            .await
            .expect("the position read")
    }

    /// The data of every message of `stream`, as JSON text, read with SQL
    /// (without an identifier the consumer's own streams are named like
    /// categories, which the store does not read as streams).
    async fn data_of(&self, stream: &str) -> Vec<String> {
        self.client
            .query(
                "SELECT data::text FROM message_store.messages WHERE stream_name = $1 ORDER BY position",
                &[&stream],
            )
            .await
            .expect("the stream read")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// The failure records of the consumer.
    async fn failures(&self) -> Vec<Failed> {
        let stream = self
            .consumer_config()
            .failures_stream_name()
            .expect("a name");
        self.data_of(stream.as_str())
            .await
            .iter()
            .map(|data| serde_json::from_str(data).expect("a failure record"))
            .collect()
    }

    /// The messages the consumer parked.
    async fn parked(&self) -> Vec<Parked> {
        let stream = self.consumer_config().parked_stream_name().expect("a name");
        self.data_of(stream.as_str())
            .await
            .iter()
            .map(|data| serde_json::from_str(data).expect("a parked record"))
            .collect()
    }
}

/// The valid commands every case sends: 30 over 3 accounts (`v0` to `v2`),
/// one in 7 sent twice; the first 15 go before the bad command, the rest
/// after it.
fn valid_commands() -> (Vec<Outgoing>, Vec<Outgoing>) {
    let mut commands = Workload {
        commands: 30,
        accounts: 3,
        resend_one_in: 7,
        prefix: "v".into(),
        seed: 11,
    }
    .generate();
    let after = commands.split_off(15);
    assert!(
        commands
            .iter()
            .chain(&after)
            .any(|c| c.account_id() == ACCOUNT),
        "the bad command's account has commands too"
    );
    (commands, after)
}

/// One instance of the binary on `db`, with its identifier, parking
/// after `park_after` failures if given, its log copied to
/// `bad_input-NAME.log`. Not started yet.
fn component(db: &Db, name: &str, park_after: Option<u32>) -> Supervisor {
    let program = Program::new(env!("CARGO_BIN_EXE_account-component"))
        .env("DATABASE_URL", db.db.connection_string())
        .env("CONSUMER_IDENTIFIER", db.identifier.unwrap_or_default())
        .env("ACCOUNT_COMPONENT_CONCURRENCY", "1")
        .env(
            "ACCOUNT_COMPONENT_PARK_AFTER_FAILURES",
            park_after.map(|k| k.to_string()).unwrap_or_default(),
        )
        .env("ACCOUNT_COMPONENT_METRICS_ADDR", "")
        .env("RUST_LOG", "info");
    let mut supervisor = Supervisor::new([("component".to_owned(), program)]);
    supervisor
        .log_to(&log_path(&format!("bad_input-{name}")))
        .expect("the log file");
    supervisor
}

/// Waits for the running instance to exit by itself; its status.
async fn exit_of(supervisor: &mut Supervisor) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some((_, status)) = supervisor
            .exited()
            .await
            .expect("the instance's status")
            .pop()
        {
            return status;
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "the component did not exit within {RUN_TIMEOUT:?}; errors: {:#?}",
            supervisor.tally().errors
        );
        // Polls the supervisor until the instance has exited.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops the running instance with SIGTERM and checks that it exits 0.
async fn stop(supervisor: &mut Supervisor) {
    wait_until_sigterm_is_caught().await;
    let statuses = supervisor.stop(RUN_TIMEOUT).await;
    assert!(
        statuses[0].is_some_and(|status| status.success()),
        "after SIGTERM: {:?}; errors: {:#?}",
        statuses[0],
        supervisor.tally().errors
    );
}

/// Waits until `events` events are in the `account` category and the
/// instance still runs.
async fn until_events(db: &Db, supervisor: &mut Supervisor, events: usize) {
    let started = Instant::now();
    loop {
        let exited = supervisor.exited().await.expect("the instance's status");
        assert!(
            exited.is_empty(),
            "the component exited: {exited:?}; errors: {:#?}",
            supervisor.tally().errors
        );
        let found = db.count_events().await;
        assert!(found <= events, "{found} events, {events} expected");
        if found == events {
            return;
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "{found} of {events} events within {RUN_TIMEOUT:?}"
        );
        // Polls the store until the events are there.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many events `commands` make.
fn events_of(commands: &[Command]) -> usize {
    verify::expected_events(commands)
        .values()
        .map(Vec::len)
        .sum()
}

/// The valid commands the store holds, after checking that the bad one
/// at `global_position` is the only other message of the category.
async fn stored_commands(db: &Db, global_position: i64) -> Vec<Command> {
    let commands = verify::read_commands(&db.store)
        .await
        .expect("the commands");
    assert_eq!(commands.other, [global_position]);
    assert_eq!(commands.valid.len(), 30);
    commands.valid
}

fn sequence(command: &Command) -> i64 {
    match command {
        Command::Deposit { sequence, .. } | Command::Withdraw { sequence, .. } => *sequence,
    }
}

/// Writes the valid commands before, the bad one (`type_name` with
/// `data`), and the valid commands after; the bad one's position and
/// global position.
async fn write_around(db: &Db, type_name: &str, data: &str) -> (i64, i64) {
    let (before, after) = valid_commands();
    db.send(&before).await;
    let bad = db.write_raw(STREAM, type_name, data).await;
    db.send(&after).await;
    bad
}

/// The lines the current run logged at ERROR: those after the first
/// `seen` of the supervisor's tally.
fn errors_since(supervisor: &Supervisor, seen: usize) -> Vec<String> {
    supervisor.tally().errors[seen..].to_vec()
}

/// Checks that a run stopped on the bad command: status 1, and a log at
/// ERROR naming its stream, position, global position, type and `cause`
/// (the handler's failure and the host's reason for stopping).
fn assert_stopped_on(
    status: ExitStatus,
    errors: &[String],
    (position, global_position): (i64, i64),
    type_name: &str,
    cause: &str,
) {
    assert_eq!(status.code(), Some(1), "exit 1; errors: {errors:#?}");
    let handler_failed = errors.iter().find(|line| line.contains("handler failed"));
    let handler_failed =
        handler_failed.unwrap_or_else(|| panic!("no 'handler failed' line: {errors:#?}"));
    for expected in [
        format!("stream={STREAM} "),
        format!(" position={position} "),
        format!(" global_position={global_position} "),
        format!(" type={type_name} "),
        cause.to_owned(),
    ] {
        assert!(
            handler_failed.contains(&expected),
            "{expected:?} not in {handler_failed:?}"
        );
    }
    let stopped = errors
        .iter()
        .find(|line| line.contains("component stopped by an error"))
        .unwrap_or_else(|| panic!("no 'component stopped by an error' line: {errors:#?}"));
    let reason = format!(
        "handling {type_name} at position {position} of {STREAM} (global position {global_position}) failed"
    );
    assert!(stopped.contains(&reason), "{reason:?} not in {stopped:?}");
    assert!(stopped.contains(cause), "{cause:?} not in {stopped:?}");
}

/// Without parking: two runs, each stops on the bad command; the
/// position stays before it, the commands before it are applied exactly
/// and none after it; each run's failure is recorded, nothing parked.
async fn stops_at_every_start(case: &Case) {
    let started = Instant::now();
    let db = Db::fresh(None).await;
    let bad = write_around(&db, case.type_name, case.data).await;
    let (_, bad_global) = bad;
    let valid = stored_commands(&db, bad_global).await;
    let before: Vec<Command> = valid
        .iter()
        .filter(|command| sequence(command) < bad_global)
        .cloned()
        .collect();
    assert_eq!(before.len(), 15);
    let last_before = before.iter().map(sequence).max().expect("commands before");

    let mut supervisor = component(&db, &format!("{}-stops", case.name), None);
    for run in 1..=2 {
        let seen = supervisor.tally().errors.len();
        supervisor.start(0).expect("the component starts");
        let status = exit_of(&mut supervisor).await;
        assert_stopped_on(
            status,
            &errors_since(&supervisor, seen),
            bad,
            case.type_name,
            case.cause,
        );
        let position = db.recorded_position().await;
        assert!(
            position.is_none_or(|position| position < bad_global),
            "run {run}: the position {position:?} stays before the bad command's {bad_global}"
        );
        assert_eq!(
            position,
            Some(last_before),
            "run {run}: the last command handled"
        );
        let verified = verify::verify(&db.store, &before)
            .await
            .unwrap_or_else(|err| panic!("run {run}: the commands before are not exact: {err}"));
        assert_eq!(verified.events, events_of(&before));
        assert!(verified.lowest_balance >= 0, "{verified:?}");
        let failures = db.failures().await;
        assert_eq!(failures.len(), run, "one failure recorded per run");
        assert!(
            failures
                .iter()
                .all(|failed| failed.global_position == bad_global
                    && failed.error.contains(case.cause)),
            "{failures:#?}"
        );
    }
    assert!(
        db.parked().await.is_empty(),
        "nothing parked without parking"
    );
    println!("{}: took {:?}", case.name, started.elapsed());
}

/// With parking after K failures (and an identifier): started again as a supervisor would
/// (at most K + 2 starts), K runs stop on the bad command and the next
/// parks it and goes on: every other command, before and after it, is
/// applied exactly, the parked stream holds the command as written, and
/// the component runs on until SIGTERM, which it exits 0 on.
async fn is_parked_after_k_failures(case: &Case) {
    let started = Instant::now();
    let db = Db::fresh(Some("worker")).await;
    let bad = write_around(&db, case.type_name, case.data).await;
    let (bad_position, bad_global) = bad;
    let valid = stored_commands(&db, bad_global).await;
    let events = events_of(&valid);
    let k = case.park_after;

    let mut supervisor = component(&db, &format!("{}-parked", case.name), Some(k));
    let mut failed_runs = 0;
    loop {
        assert!(
            supervisor.starts(0) < k + 2,
            "not parked after {} starts",
            supervisor.starts(0)
        );
        let seen = supervisor.tally().errors.len();
        supervisor.start(0).expect("the component starts");
        // Until it exits, or it has applied every valid command (and so
        // gone past the bad one).
        let run_started = Instant::now();
        let exited = loop {
            if let Some((_, status)) = supervisor
                .exited()
                .await
                .expect("the instance's status")
                .pop()
            {
                break Some(status);
            }
            if db.count_events().await == events {
                break None;
            }
            assert!(
                run_started.elapsed() < RUN_TIMEOUT,
                "run {} neither exited nor applied every command within {RUN_TIMEOUT:?}",
                supervisor.starts(0)
            );
            // Polls the instance and the store until one of them says so.
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let Some(status) = exited else { break };
        assert_stopped_on(
            status,
            &errors_since(&supervisor, seen),
            bad,
            case.type_name,
            case.cause,
        );
        failed_runs += 1;
        // systemd's RestartSec, shortened.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed_runs, k, "parked at the start after the K-th failure");
    // It runs on, and writes nothing more.
    until_events(&db, &mut supervisor, events).await;
    let verified = verify::verify(&db.store, &valid)
        .await
        .unwrap_or_else(|err| panic!("the other commands are not exact: {err}"));
    assert_eq!(verified.events, events);
    assert!(verified.lowest_balance >= 0, "{verified:?}");

    let parked = db.parked().await;
    assert_eq!(parked.len(), 1, "{parked:#?}");
    let config = db.consumer_config();
    assert_eq!(
        config.parked_stream_name().expect("a name").as_str(),
        "account:command+parked-worker"
    );
    assert_eq!(
        ebb::consumer::read_parked(&db.store, &config)
            .await
            .expect("the parked stream read"),
        parked,
        "what an operator reads"
    );
    let parked = &parked[0];
    assert_eq!(
        (
            parked.stream_name.as_str(),
            parked.position,
            parked.global_position,
            parked.type_name.as_str(),
            parked.failures,
        ),
        (STREAM, bad_position, bad_global, case.type_name, k)
    );
    let data: serde_json::Value = serde_json::from_str(case.data).expect("the case's JSON");
    assert_eq!(parked.data.to_value().expect("parked data"), data);
    assert!(parked.error.contains(case.cause), "{parked:?}");
    assert_eq!(
        db.failures().await.len(),
        usize::try_from(k).expect("small")
    );

    stop(&mut supervisor).await;
    let last = valid.iter().map(sequence).max().expect("commands");
    assert!(
        db.recorded_position().await >= Some(last),
        "the position is past every command"
    );
    assert_eq!(db.count_events().await, events, "nothing more written");
    println!("{}: took {:?}", case.name, started.elapsed());
}

macro_rules! bad_commands {
    ($($name:ident => $case:ident,)*) => {
        /// Without parking, the component stops on the bad command.
        mod without_parking {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::stops_at_every_start(&super::$case).await;
                }
            )*
        }

        /// With parking, the bad command is parked and the rest handled.
        mod with_parking {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::is_parked_after_k_failures(&super::$case).await;
                }
            )*
        }
    };
}

bad_commands! {
    data_that_is_an_array => ARRAY,
    data_that_is_a_string => STRING,
    data_that_is_a_number => NUMBER,
    data_without_an_amount => MISSING_AMOUNT,
    an_amount_that_is_a_string => STRING_AMOUNT,
    a_negative_amount => NEGATIVE_AMOUNT,
}

/// A command type the component has no handler for (`Close`) is skipped
/// with a log line naming it, and the commands after it are handled: the
/// component neither stops nor records a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_command_type_is_skipped_and_the_commands_after_it_handled() {
    let db = Db::fresh(None).await;
    let (position, global_position) = write_around(&db, "Close", r#"{"accountId": "v1"}"#).await;
    let valid = stored_commands(&db, global_position).await;
    let events = events_of(&valid);
    let mut supervisor = component(&db, "unknown-type", None);
    supervisor.start(0).expect("the component starts");
    until_events(&db, &mut supervisor, events).await;
    let verified = verify::verify(&db.store, &valid)
        .await
        .unwrap_or_else(|err| panic!("the commands are not exact: {err}"));
    assert_eq!(verified.events, events);
    stop(&mut supervisor).await;

    let log = std::fs::read_to_string(log_path("bad_input-unknown-type")).expect("the log");
    let skipped: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("no handler for this type; skipped"))
        .collect();
    assert_eq!(skipped.len(), 1, "{log}");
    for expected in [
        " INFO ".to_owned(),
        format!("stream={STREAM} "),
        format!(" position={position} "),
        format!(" global_position={global_position} "),
        " type=Close".to_owned(),
    ] {
        assert!(
            skipped[0].contains(&expected),
            "{expected:?} not in {:?}",
            skipped[0]
        );
    }
    assert!(
        supervisor.tally().errors.is_empty(),
        "{:#?}",
        supervisor.tally().errors
    );
    assert!(db.failures().await.is_empty());
    assert!(db.parked().await.is_empty());
    let last = valid.iter().map(sequence).max().expect("commands");
    assert!(db.recorded_position().await >= Some(last));
}

/// Parking needs an identifier (without one the consumer's failures and
/// parked streams are named like categories, which the store cannot read
/// as streams): the component refuses the settings at its start, exit 2,
/// and handles nothing, rather than fail at every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parking_without_an_identifier_is_refused_at_the_start() {
    let db = Db::fresh(None).await;
    write_around(&db, "Deposit", "42").await;
    let mut supervisor = component(&db, "parking-without-identifier", Some(1));
    supervisor.start(0).expect("the component starts");
    let status = exit_of(&mut supervisor).await;
    let errors = supervisor.tally().errors;
    assert_eq!(status.code(), Some(2), "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|line| line.contains("bad consumer settings")
                && line.contains("needs an identifier")),
        "{errors:#?}"
    );
    assert_eq!(db.count_events().await, 0);
    assert!(db.failures().await.is_empty());
}
