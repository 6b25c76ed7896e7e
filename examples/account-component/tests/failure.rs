//! Proof under failure: the real `account-component` binary, two
//! instances side by side with one consumer identifier (Eventide's hot
//! failover), on a real PostgreSQL, while
//!
//! - one instance or the other is killed (SIGKILL) at random moments and
//!   started again, at least ten times while commands remain;
//! - the PostgreSQL server restarts (fast shutdown), twice, while the
//!   instances work, and the test, acting as their supervisor, starts
//!   again (after 200–500 ms, as systemd's `RestartSec` would) any that
//!   exited.
//!
//! Either way every account's events must end exactly as applying each
//! command once, in order, makes them (`verify::verify`): no command
//! applied twice, none lost, re-sent commands ignored, and no balance
//! ever below zero. Each instance's log is kept in
//! `CARGO_TARGET_TMPDIR/failure-*.log`.

#![allow(clippy::print_stdout)]

use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use account_component::supervise::{Program, Supervisor};
use account_component::verify::{self, Command, Verified};
use account_component::workload::{self, Workload};
use ebb::message_store::{MessageStore as _, PgStore, PgStoreConfig, StreamQuery};
use ebb_localpg::{Cluster, PgBouncer, PoolMode, ShutdownMode};
use ebb_tests::private::{Listen, cluster_with_schema};

mod common;
use common::{count_events, log_path, wait_until_sigterm_is_caught};

/// Both instances consume `account:command` with this identifier, so they
/// share one position stream: `account:command+position-failover`.
const IDENTIFIER: &str = "failover";

/// How long an instance has to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A small xorshift generator for the moments and victims of the kills;
/// its seed is printed so that a failing run can be looked into.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos() as u64;
        let seed = nanos | 1;
        println!("random seed {seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration of `from` to `to` milliseconds.
    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

/// Two instances of the binary on `database_url`, with one identifier,
/// `a` and `b`, handling `concurrency` commands at once each (across
/// accounts; 1 is Eventide's one at a time). Not started yet.
/// With `park_after_failures` (`""`: none), a command that ended the
/// process that many times is parked. `env` adds to (or overrides) their
/// environment.
fn failover_pair(
    database_url: &str,
    name: &str,
    concurrency: [usize; 2],
    park_after_failures: &str,
    env: &[(&str, &str)],
) -> Supervisor {
    let instance = |concurrency: usize| {
        let program = Program::new(env!("CARGO_BIN_EXE_account-component"))
            .env("DATABASE_URL", database_url)
            .env("CONSUMER_IDENTIFIER", IDENTIFIER)
            .env("ACCOUNT_COMPONENT_CONCURRENCY", concurrency.to_string())
            // Whatever the test's own environment says: no metrics
            // endpoint, the default log level.
            .env("ACCOUNT_COMPONENT_PARK_AFTER_FAILURES", park_after_failures)
            .env("ACCOUNT_COMPONENT_METRICS_ADDR", "")
            .env("RUST_LOG", "info");
        env.iter()
            .fold(program, |program, (name, value)| program.env(name, value))
    };
    let mut supervisor = Supervisor::new([
        ("a".to_owned(), instance(concurrency[0])),
        ("b".to_owned(), instance(concurrency[1])),
    ]);
    let log = log_path(&format!("failure-{name}"));
    supervisor.log_to(&log).expect("the log file");
    println!("instances' log: {}", log.display());
    supervisor
}

/// How many commands are done: one event per command applied, plus the
/// distinct re-sent commands the instances logged as ignored (they write
/// nothing). All of them are done when this reaches the number of valid
/// commands.
fn commands_done(events: usize, supervisor: &Supervisor) -> usize {
    events + supervisor.tally().resends_ignored.len()
}

/// Stops both instances with SIGTERM, once each has started, and checks
/// each exits 0.
async fn stop_all(supervisor: &mut Supervisor) {
    wait_until_sigterm_is_caught().await;
    let statuses = supervisor.stop(STOP_TIMEOUT).await;
    for (index, status) in statuses.iter().enumerate() {
        assert!(
            status.is_some_and(|status| status.success()),
            "instance {index} after SIGTERM: {status:?} (None: not running, or killed after {STOP_TIMEOUT:?}); errors: {:#?}",
            supervisor.tally().errors
        );
    }
}

/// The commands as written. A read that fails with a transient error is
/// read again (at most three tries, each said): through a transaction
/// pooling bouncer, a pooled connection has been seen closed under it
/// after the kills, which a caller retries as it retries any transient
/// error.
async fn read_commands(store: &PgStore) -> verify::Commands {
    let mut tries = 0;
    loop {
        tries += 1;
        match verify::read_commands(store).await {
            Ok(commands) => return commands,
            Err(err) if err.is_transient() && tries < 3 => {
                println!("reading the commands failed ({err}); reading them again");
            }
            Err(err) => panic!("the commands: {err:?}"),
        }
    }
}

/// The exactness check on every valid command, with the checks every
/// run ends with.
async fn verify_exactly(store: &PgStore, valid: &[Command]) -> Verified {
    let commands = read_commands(store).await;
    assert_eq!(commands.valid, valid, "the commands did not change");
    assert!(commands.other.is_empty(), "{:?}", commands.other);
    let verified = verify::verify(store, valid)
        .await
        .unwrap_or_else(|err| panic!("the accounts are not exactly right: {err}"));
    assert!(
        verified.lowest_balance >= 0,
        "a balance went below zero: {verified:?}"
    );
    assert_eq!(verified.commands, valid.len());
    assert!(verified.resends > 0, "the workload re-sends: {verified:?}");
    assert_eq!(verified.events, valid.len() - verified.resends);
    verified
}

/// What [`send_while_killing`] did.
struct Killed {
    /// Every valid command sent, as read back from the store.
    valid: Vec<Command>,
    /// Kills in all.
    kills: u32,
    /// Kills while commands were still being sent.
    while_sending: u32,
}

/// Sends `workload`'s commands through `store` (four at a time) while the
/// pair handles them, and every 100–600 ms kills one of the two, chosen
/// at random, with SIGKILL and starts it again after up to 100 ms, until
/// every command is done (counted on `client`); at least `min_kills` kills
/// must come before that.
async fn send_while_killing(
    store: &PgStore,
    client: &tokio_postgres::Client,
    supervisor: &mut Supervisor,
    workload: &Workload,
    random: &mut Random,
    min_kills: u32,
) -> Killed {
    const TIMEOUT: Duration = Duration::from_secs(240);
    let started = Instant::now();
    let commands = workload.generate();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut sender = Some(tokio::spawn({
        let store = store.clone();
        let sent = Arc::clone(&sent);
        async move { workload::send(&store, &commands, 4, &sent).await }
    }));

    let mut valid: Option<Vec<Command>> = None;
    let mut kills = 0;
    let mut while_sending = 0;
    loop {
        // A random while between kills (the kills' timing is what is under test).
        tokio::time::sleep(random.millis(100, 600)).await;
        assert!(
            started.elapsed() < TIMEOUT,
            "not done within {TIMEOUT:?}: {} of {} sent, {:?} events, {kills} kills; tally {:?}",
            sent.load(Ordering::Relaxed),
            workload.commands,
            count_events(client).await,
            supervisor.tally()
        );
        let exited = supervisor.exited().await.expect("the instances' status");
        assert!(
            exited.is_empty(),
            "an instance exited by itself: {exited:?}; errors: {:#?}",
            supervisor.tally().errors
        );
        if sender
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            sender
                .take()
                .expect("the sender")
                .await
                .expect("the sender does not panic")
                .expect("every command is sent");
            let commands = verify::read_commands(store).await.expect("the commands");
            assert!(commands.other.is_empty(), "{:?}", commands.other);
            assert_eq!(commands.valid.len(), workload.commands);
            valid = Some(commands.valid);
        }
        if let Some(valid) = &valid {
            let events = count_events(client).await.expect("the events counted");
            let done = commands_done(events, supervisor);
            assert!(
                done <= valid.len(),
                "{events} events and {} re-sends ignored are more than the {} commands",
                supervisor.tally().resends_ignored.len(),
                valid.len()
            );
            if done == valid.len() {
                break;
            }
        }
        let victim = usize::try_from(random.below(2)).expect("0 or 1");
        assert!(
            supervisor.kill(victim).await.expect("the kill"),
            "instance {victim} was running"
        );
        kills += 1;
        if sender.is_some() {
            while_sending += 1;
        }
        // The victim stays down a random while before its restart: the behaviour under test.
        tokio::time::sleep(random.millis(0, 100)).await;
        supervisor.start(victim).expect("the instance starts again");
    }
    assert!(
        kills >= min_kills,
        "the work was done after only {kills} kills (at least {min_kills} must come while commands remain)"
    );
    assert_eq!(supervisor.restarts(), kills);
    Killed {
        valid: valid.expect("the commands were read"),
        kills,
        while_sending,
    }
}

/// After [`send_while_killing`]: both instances stop on SIGTERM with exit
/// 0, every account is exactly right, every re-send ignored was logged,
/// and no instance logged an error.
async fn stop_and_verify(store: &PgStore, supervisor: &mut Supervisor, killed: &Killed) {
    let tally = supervisor.tally();
    println!(
        "{} kills ({} while sending), {} restarts; {} re-deliveries ignored, {} re-sends \
         ignored, {} conflicts retried",
        killed.kills,
        killed.while_sending,
        supervisor.restarts(),
        tally.redeliveries_ignored.len(),
        tally.resends_ignored.len(),
        tally.conflicts_retried
    );
    stop_all(supervisor).await;
    let verified = verify_exactly(store, &killed.valid).await;
    assert_eq!(
        supervisor.tally().resends_ignored.len(),
        verified.resends,
        "every re-send ignored was logged"
    );
    assert!(
        supervisor.tally().errors.is_empty(),
        "{:#?}",
        supervisor.tally().errors
    );
    println!("{verified:?}");
}

/// 5,000 commands (re-sends included) over 200 accounts, sent while two
/// hot-failover instances handle them, four at a time each (so that the
/// run stays short on two cores; the one-at-a-time consumer is the other
/// test's instance `a`); every 100–600 ms one of the two,
/// chosen at random, is killed with SIGKILL and started again (after up to
/// 100 ms), until every command is done, and at least ten kills must have
/// come before that. Then both stop on SIGTERM with exit 0 and every
/// account is exactly right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_pair_killed_at_random_applies_every_command_exactly_once() {
    let started = Instant::now();
    let db = ebb_tests::database().await;
    let store = ebb_tests::store_for(&db, 4);
    let client = ebb_tests::connect(&db).await;
    let mut random = Random::seeded();
    let workload = Workload {
        commands: 5_000,
        accounts: 200,
        resend_one_in: 25,
        prefix: "k".into(),
        seed: random.next(),
    };
    let mut supervisor = failover_pair(&db.connection_string(), "sigkill", [4, 4], "", &[]);
    supervisor.start_all().expect("the instances start");
    let killed =
        send_while_killing(&store, &client, &mut supervisor, &workload, &mut random, 10).await;
    stop_and_verify(&store, &mut supervisor, &killed).await;
    println!("took {:?}", started.elapsed());
}

/// The same behind PgBouncer, in `mode`: the pair and the sender (a
/// writer of its own, as another component would be) connect through it;
/// with transaction pooling, as a component there is configured, with
/// prepared statements off and wake-ups listening on a direct connection.
/// 1,500 commands over 100 accounts, at least five kills.
async fn a_failover_pair_behind_pgbouncer(mode: PoolMode) {
    let started = Instant::now();
    let (cluster, direct) = cluster_with_schema(Listen::Socket).await;
    let bouncer = {
        // Session pooling holds a server connection per client connection:
        // enough for both instances' pools, the listeners and the sender.
        let size = if mode == PoolMode::Session { 48 } else { 8 };
        let builder = PgBouncer::builder(&cluster).pool_mode(mode).pool_size(size);
        tokio::task::spawn_blocking(move || builder.start())
            .await
            .expect("the bouncer starts")
            .expect("a PgBouncer")
    };
    let through = bouncer.connection_string("postgres");
    let direct_url = cluster.connection_string("postgres");
    let transaction = mode == PoolMode::Transaction;
    let env: Vec<(&str, &str)> = if transaction {
        vec![
            ("EBB_PREPARED_STATEMENTS", "off"),
            ("EBB_LISTEN_DATABASE_URL", &direct_url),
        ]
    } else {
        Vec::new()
    };
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        prepared_statements: !transaction,
        ..PgStoreConfig::new(bouncer.config("postgres"))
    })
    .expect("a store through the bouncer");
    let client = ebb_tests::connect_to(&direct)
        .await
        .expect("a direct connection");
    let mut random = Random::seeded();
    let workload = Workload {
        commands: 1_500,
        accounts: 100,
        resend_one_in: 25,
        prefix: format!("b{mode}"),
        seed: random.next(),
    };
    let name = format!("pgbouncer-{mode}");
    let mut supervisor = failover_pair(&through, &name, [1, 4], "", &env);
    supervisor.start_all().expect("the instances start");
    let killed =
        send_while_killing(&store, &client, &mut supervisor, &workload, &mut random, 5).await;
    stop_and_verify(&store, &mut supervisor, &killed).await;
    println!("took {:?}", started.elapsed());
    drop(bouncer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_pair_behind_pgbouncer_in_session_pooling_applies_every_command_exactly_once() {
    a_failover_pair_behind_pgbouncer(PoolMode::Session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_pair_behind_pgbouncer_in_transaction_pooling_applies_every_command_exactly_once()
 {
    a_failover_pair_behind_pgbouncer(PoolMode::Transaction).await;
}

/// Sends `workload`'s commands (four at a time) before any instance runs,
/// and returns the valid ones, as read back.
async fn send_first(store: &PgStore, workload: &Workload) -> Vec<Command> {
    let commands = workload.generate();
    workload::send(store, &commands, 4, &Arc::default())
        .await
        .expect("every command is sent");
    let valid = verify::read_commands(store)
        .await
        .expect("the commands")
        .valid;
    assert_eq!(valid.len(), workload.commands);
    valid
}

/// Checks that every exit an instance made by itself was an error
/// (status 1), starts any instance still waiting to be started again, and
/// stops both with SIGTERM (exit 0 each).
async fn errors_then_sigterm(exits: &[(usize, ExitStatus)], supervisor: &mut Supervisor) {
    for (index, status) in exits {
        assert_eq!(
            status.code(),
            Some(1),
            "instance {index} exits with an error, status 1; errors: {:#?}",
            supervisor.tally().errors
        );
    }
    supervisor.start_all().expect("the instances start");
    stop_all(supervisor).await;
}

/// A supervisor's bookkeeping of the instances that exited by themselves.
#[derive(Default)]
struct Restarts {
    /// Each exit: the instance and its status.
    exits: Vec<(usize, ExitStatus)>,
    /// Instances to start again, and when.
    due: Vec<(usize, Instant)>,
}

impl Restarts {
    /// Notes the instances that exited, each to be started again after
    /// 200–500 ms, and starts those whose time has come.
    async fn supervise(&mut self, supervisor: &mut Supervisor, random: &mut Random) {
        for (index, status) in supervisor.exited().await.expect("the instances' status") {
            println!("instance {index} exited: {status}");
            self.exits.push((index, status));
            self.due
                .push((index, Instant::now() + random.millis(200, 500)));
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.due.iter().partition(|(_, at)| *at <= now);
        self.due = later;
        for (index, _) in due {
            supervisor.start(index).expect("the instance starts again");
        }
    }
}

/// The restart of the server, run on a blocking thread while the test
/// goes on supervising; gives the cluster back.
type Restarting = tokio::task::JoinHandle<(Cluster, Result<(), ebb_localpg::Error>, Duration)>;

fn restart_server(mut cluster: Cluster) -> Restarting {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = cluster.restart_with(ShutdownMode::Fast);
        (cluster, result, started.elapsed())
    })
}

/// 2,000 commands over 100 accounts, sent first; two hot-failover
/// instances (one handling a command at a time, the other four) work
/// through them while the server is restarted with a fast
/// shutdown twice (at a fifth and at three fifths of the commands done).
/// The instances ride a restart out or exit with an error (status 1),
/// and are started again 200–500 ms later; every command is then done,
/// both stop on SIGTERM with exit 0, and every account is exactly right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_pair_across_postgresql_restarts_applies_every_command_exactly_once() {
    const TIMEOUT: Duration = Duration::from_secs(240);
    let started = Instant::now();
    let (cluster, config) = cluster_with_schema(Listen::Socket).await;
    let database_url = cluster.connection_string("postgres");
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        ..PgStoreConfig::new(config.clone())
    })
    .expect("a store");
    let mut random = Random::seeded();
    let workload = Workload {
        commands: 2_000,
        accounts: 100,
        resend_one_in: 25,
        prefix: "r".into(),
        seed: random.next(),
    };
    let valid = send_first(&store, &workload).await;
    // The server restarts once this many commands are done, each time.
    let restart_at = [valid.len() / 5, valid.len() * 3 / 5];

    // Parking after a single failure: a command whose handler failed only
    // because the server went away must not count as poison (the consumer
    // records such failures as transient), or it would be parked at the
    // next start and never applied, which the verification would catch.
    let mut supervisor = failover_pair(&database_url, "pg-restart", [1, 4], "1", &[]);
    supervisor.start_all().expect("the instances start");
    let mut restarts = Restarts::default();
    let mut cluster = Some(cluster);
    let mut restarting: Option<Restarting> = None;
    let mut server_restarts = 0;
    // The test's own connection, opened again after a restart.
    let mut client: Option<tokio_postgres::Client> = None;
    let mut done = 0;
    loop {
        // The supervising loop's tick: it polls the instances and the store.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            started.elapsed() < TIMEOUT,
            "not done within {TIMEOUT:?}: {done} of {} commands done, {server_restarts} server restarts, exits {:?}; tally {:?}",
            valid.len(),
            restarts.exits,
            supervisor.tally()
        );
        restarts.supervise(&mut supervisor, &mut random).await;
        if restarting
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            let (back, result, took) = restarting
                .take()
                .expect("a restart")
                .await
                .expect("the restart does not panic");
            result.expect("the server restarts");
            println!("server restart {} took {took:?}", server_restarts + 1);
            cluster = Some(back);
            server_restarts += 1;
        }
        if client
            .as_ref()
            .is_none_or(tokio_postgres::Client::is_closed)
        {
            client = ebb_tests::connect_to(&config).await.ok();
        }
        let Some(events) = client.as_ref() else {
            continue;
        };
        let Ok(events) = count_events(events).await else {
            client = None;
            continue;
        };
        done = commands_done(events, &supervisor);
        assert!(done <= valid.len(), "{done} done of {}", valid.len());
        if restarting.is_none() && server_restarts < restart_at.len() {
            if done >= restart_at[server_restarts] {
                assert!(
                    done < valid.len(),
                    "the work was done before server restart {}",
                    server_restarts + 1
                );
                println!(
                    "restarting the server with {done} of {} commands done",
                    valid.len()
                );
                restarting = Some(restart_server(cluster.take().expect("the cluster")));
            }
        } else if restarting.is_none() && done == valid.len() {
            break;
        }
    }
    let exits = restarts.exits;
    println!(
        "done in {:?}: {server_restarts} server restarts, {} exits, {} restarts of instances",
        started.elapsed(),
        exits.len(),
        supervisor.restarts()
    );
    errors_then_sigterm(&exits, &mut supervisor).await;
    let verified = verify_exactly(&store, &valid).await;
    assert_eq!(supervisor.tally().resends_ignored.len(), verified.resends);
    let parked = store
        .get_stream_messages(
            &format!("account:command+parked-{IDENTIFIER}"),
            &StreamQuery::new(),
        )
        .await
        .expect("the parked stream");
    assert!(parked.is_empty(), "parked: {parked:?}");
    println!("{verified:?}; took {:?}", started.elapsed());
    drop(cluster);
}

/// 1,500 commands over 100 accounts, sent first, to a primary with a
/// synchronous standby; two hot-failover instances (one handling a command
/// at a time, the other four) connect with settings that name the
/// primary's Unix socket directory and the standby over TCP, asking for a
/// primary (`target_session_attrs=read-write`). With a third of the
/// commands done, the primary is stopped in immediate mode (as in a
/// crash) and the standby promoted. The instances ride it out or exit
/// with an error (status 1) and are started again 200–500 ms later, find
/// the new primary through the same settings, and carry on: every account
/// ends exactly right on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_pair_across_a_promotion_applies_every_command_exactly_once() {
    const TIMEOUT: Duration = Duration::from_secs(240);
    let started = Instant::now();
    let failover = ebb_tests::private::Failover::start().await;
    let database_url = failover.connection_string();
    let settings = failover.config();
    let store = PgStore::new(PgStoreConfig {
        max_connections: 4,
        ..PgStoreConfig::new(failover.config())
    })
    .expect("a store");
    let mut random = Random::seeded();
    let workload = Workload {
        commands: 1_500,
        accounts: 100,
        resend_one_in: 25,
        prefix: "p".into(),
        seed: random.next(),
    };
    let valid = send_first(&store, &workload).await;
    let fail_over_at = valid.len() / 3;

    let mut supervisor = failover_pair(&database_url, "promotion", [1, 4], "1", &[]);
    supervisor.start_all().expect("the instances start");
    let mut restarts = Restarts::default();
    let mut failover = Some(failover);
    let mut failing_over: Option<tokio::task::JoinHandle<ebb_tests::private::Failover>> = None;
    let mut client: Option<tokio_postgres::Client> = None;
    let mut done = 0;
    loop {
        // The supervising loop's tick: it polls the instances and the store.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            started.elapsed() < TIMEOUT,
            "not done within {TIMEOUT:?}: {done} of {} commands done, exits {:?}; tally {:?}",
            valid.len(),
            restarts.exits,
            supervisor.tally()
        );
        restarts.supervise(&mut supervisor, &mut random).await;
        if failing_over
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            let promoted = failing_over.take().expect("the failover").await;
            failover = Some(promoted.expect("the failover does not panic"));
            println!("failed over with {done} of {} commands done", valid.len());
        }
        if client
            .as_ref()
            .is_none_or(tokio_postgres::Client::is_closed)
        {
            client = connect_any(&settings).await;
        }
        let Some(events) = client.as_ref() else {
            continue;
        };
        let Ok(events) = count_events(events).await else {
            client = None;
            continue;
        };
        done = commands_done(events, &supervisor);
        assert!(done <= valid.len(), "{done} done of {}", valid.len());
        if let Some(mut before) = failover.take_if(|f| f.has_primary()) {
            if done >= fail_over_at {
                assert!(done < valid.len(), "the work was done before the failover");
                println!(
                    "stopping the primary with {done} of {} commands done",
                    valid.len()
                );
                failing_over = Some(tokio::spawn(async move {
                    before.fail_over().await;
                    before
                }));
            } else {
                failover = Some(before);
            }
        } else if failing_over.is_none() && done == valid.len() {
            break;
        }
    }
    let exits = restarts.exits;
    println!(
        "done in {:?}: {} exits, {} restarts of instances",
        started.elapsed(),
        exits.len(),
        supervisor.restarts()
    );
    errors_then_sigterm(&exits, &mut supervisor).await;
    let failover = failover.expect("the clusters");
    assert!(!failover.has_primary(), "the failover happened");
    let on_new_primary = PgStore::new(PgStoreConfig::new(failover.config())).expect("a store");
    let verified = verify_exactly(&on_new_primary, &valid).await;
    assert_eq!(supervisor.tally().resends_ignored.len(), verified.resends);
    println!("{verified:?}; took {:?}", started.elapsed());
}

/// A client on whichever host of `config` will have it (through ebb's own
/// connect, which tries each host), or `None` for now.
async fn connect_any(config: &tokio_postgres::Config) -> Option<tokio_postgres::Client> {
    let tls = ebb::message_store::pg::TlsSettings::default();
    let (client, connection) = ebb::message_store::pg::connect(config, &tls).await.ok()?;
    tokio::spawn(connection);
    Some(client)
}
