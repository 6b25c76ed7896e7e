//! `ebb demo`: the account component at work, under failure, on a private
//! cluster unless `DATABASE_URL` names a server.
//!
//! Two instances of the account component run side by side on
//! `account:command` (hot failover: both handle every command). The demo
//! sends deposits and withdrawals across many accounts, some of them twice
//! on purpose, kills one instance with SIGKILL midway and starts it again
//! as systemd would, and at the end checks that every account's events
//! are exactly what applying each command once gives. The instances are
//! this same executable (`ebb account-component`, the code of the
//! `account-component` binary), so the demo needs nothing else built.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use account_component::supervise::{Program, Supervisor, Tally};
use account_component::verify::{self, Verified};
use account_component::workload::{self, Workload};
use account_component::{COMMAND_CATEGORY, EVENT_CATEGORY};
use ebb_localpg::Cluster;
use ebb_localpg::conninfo::{connection_string, describe};
use ebb_message_store::{CategoryQuery, MessageStore, PgStore, PgStoreConfig, schema};
use futures_util::TryStreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CliError;
use super::db::{connect, create_database};

/// The demo's size and pace.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Commands to send, re-sends included.
    #[arg(long, default_value_t = 3_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    commands: u32,
    /// Accounts to spread them over.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    accounts: u32,
    /// Send one command in this many twice (0: none).
    #[arg(long, default_value_t = 20)]
    resend_one_in: u32,
    /// Give up when no command has been handled for this many seconds.
    #[arg(long, default_value_t = 60)]
    stall_timeout: u64,
}

/// How long a supervisor waits before starting an instance again
/// (systemd's `RestartSec` in the unit beside the component).
const RESTART_DELAY: Duration = Duration::from_millis(500);
/// How long a SIGTERM may take before the instance is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The instances' names.
const INSTANCES: [&str; 2] = ["blue", "green"];

pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    // Held to the end: stopping it removes its files.
    let mut cluster = None;
    let (config, url) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let config = PgStoreConfig::from_env().map_err(CliError::Config)?;
            println!(
                "using the database in DATABASE_URL ({})",
                describe(&config.connection)
            );
            // The instances read it as given: its TLS settings included.
            (config, url)
        }
        _ => {
            println!("starting a private PostgreSQL cluster (DATABASE_URL is not set) ...");
            let started = blocking(Cluster::start)
                .await
                .map_err(|source| CliError::LocalPg {
                    action: "start",
                    source,
                })?;
            println!(
                "  PostgreSQL from {} listening on {}",
                started.bin_dir().display(),
                started.socket_dir().display()
            );
            let config = PgStoreConfig::new(started.config("ebb_demo"));
            let url = connection_string(&config.connection);
            cluster = Some(started);
            create_database(&config.connection, &config.tls).await?;
            (config, url)
        }
    };

    let result = demo(config, &url, &args).await;
    if let Some(cluster) = cluster {
        println!("\nstopping the private cluster and removing its files");
        // Stopping waits for the server; keep that off the async workers.
        blocking(move || cluster.stop())
            .await
            .map_err(|source| CliError::LocalPg {
                action: "stop",
                source,
            })?;
    }
    result
}

/// Runs `work` on the blocking pool; its panic is this task's panic.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// The demonstration proper. Every connection it opens is closed, and
/// every instance stopped, when it returns.
async fn demo(config: PgStoreConfig, url: &str, args: &DemoArgs) -> Result<(), CliError> {
    let client = connect(&config.connection, &config.tls).await?;
    let installed = schema::install(&client)
        .await
        .map_err(|source| CliError::Store {
            action: "cannot install the schema".into(),
            source,
        })?;
    drop(client);
    println!(
        "installed the message store: Message DB {} interface, ebb schema {}",
        installed.message_db,
        installed.ebb.as_deref().unwrap_or("?")
    );
    let store = PgStore::new(config).map_err(CliError::Config)?;
    let store_err = |action: &'static str| {
        move |source| CliError::Store {
            action: action.into(),
            source,
        }
    };
    // Events already in the category (DATABASE_URL may hold earlier runs)
    // are not this run's progress.
    let events_before = store
        .category_head(EVENT_CATEGORY)
        .await
        .map_err(store_err("cannot read the account category"))?
        .unwrap_or(0);
    let commands_before = store
        .category_head(COMMAND_CATEGORY)
        .await
        .map_err(store_err("cannot read the command category"))?
        .unwrap_or(0);

    // A prefix per run keeps this run's accounts and ids apart from any
    // earlier run's on the same database.
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let workload = Workload {
        commands: args.commands as usize,
        accounts: args.accounts as usize,
        resend_one_in: args.resend_one_in as usize,
        prefix: format!("r{run_id}x"),
        seed: u64::from_str_radix(&run_id, 16).unwrap_or(1),
    };
    let commands = workload.generate();
    let resent = commands
        .windows(2)
        .filter(|pair| pair[0] == pair[1])
        .count();
    let total = commands.len();

    let log_path = std::env::temp_dir().join(format!("ebb-demo-{run_id}.log"));
    let mut supervisor = instances(url)?;
    supervisor
        .log_to(&log_path)
        .map_err(|err| CliError::Other(format!("cannot write {}: {err}", log_path.display())))?;
    supervisor
        .start_all()
        .map_err(|err| CliError::Other(format!("cannot start the account component: {err}")))?;
    println!(
        "\nstarted two account-component instances, {} and {}, side by side on account:command \
         (hot failover: each handles every command; exactly-once comes from the handlers)",
        INSTANCES[0], INSTANCES[1]
    );
    println!(
        "sending {} commands to {} accounts ({resent} of them sent twice on purpose; \
         some withdrawals exceed the balance)",
        commands.len(),
        args.accounts
    );

    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let store = store.clone();
        let sent = Arc::clone(&sent);
        tokio::spawn(async move { workload::send(&store, &commands, 4, &sent).await })
    };

    let started = Instant::now();
    let watched = watch(
        &store,
        &mut supervisor,
        (events_before, commands_before),
        total,
        args,
    )
    .await;
    let elapsed = started.elapsed();
    let statuses = supervisor.stop(STOP_TIMEOUT).await;
    let sent_result = sender.await;
    let watched = watched?;
    let handled = watched.handled;
    match sent_result {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            return Err(CliError::Other(format!(
                "sending the commands failed: {err}"
            )));
        }
        Err(err) => return Err(CliError::Other(format!("the sender task failed: {err}"))),
    }
    println!(
        "all {handled} commands handled in {:.1} s ({:.0} commands/s); \
         stopped both instances with SIGTERM: {}",
        elapsed.as_secs_f64(),
        handled as f64 / elapsed.as_secs_f64().max(0.001),
        describe_statuses(&statuses)
    );

    // Read back, and read again (at most three tries, each said) when the
    // store was out of reach: through a transaction-pooling bouncer, a
    // pooled connection has been seen closed under the reader after the
    // kills, which any caller retries as it retries a transient error.
    let mut tries = 0;
    let verified = loop {
        tries += 1;
        let commands_read = match verify::read_commands(&store).await {
            Err(err) if err.is_transient() && tries < 3 => {
                eprintln!("ebb: reading the commands back failed ({err}); reading again");
                continue;
            }
            read => read.map_err(store_err("cannot read the commands back"))?,
        };
        match verify::verify(&store, &commands_read.valid).await {
            Err(verify::VerifyError::Store(err)) if err.is_transient() && tries < 3 => {
                eprintln!("ebb: reading the accounts back failed ({err}); reading again");
            }
            verified => break verified,
        }
    };
    let tally = supervisor.tally().after(commands_before);
    print_summary(
        sent.load(Ordering::Relaxed),
        &watched,
        &tally,
        supervisor.restarts(),
        verified.as_ref().ok(),
    );
    println!("the instances' logs: {}", log_path.display());
    match verified {
        Ok(_) if statuses.iter().all(|s| s.is_some_and(|s| s.success())) => Ok(()),
        Ok(_) => Err(CliError::Other(
            "an instance did not exit 0 on SIGTERM; see its log".into(),
        )),
        Err(err) => Err(CliError::Other(format!("verification failed: {err}"))),
    }
}

/// The two instances: this executable's `account-component` command,
/// on the demo's database, sharing one consumer position (hot failover).
fn instances(url: &str) -> Result<Supervisor, CliError> {
    let exe: PathBuf = std::env::current_exe()
        .map_err(|err| CliError::Other(format!("cannot find the ebb executable: {err}")))?;
    Ok(Supervisor::new(INSTANCES.iter().map(|name| {
        (
            (*name).to_owned(),
            Program::new(&exe)
                .arg("account-component")
                .env("DATABASE_URL", url)
                // Not the shell's identifier: both read the demo's position.
                .env("CONSUMER_IDENTIFIER", "")
                .env("RUST_LOG", "info"),
        )
    })))
}

/// Shows progress until `total` commands are handled (each writes an
/// event or is ignored as a re-send): supervises the
/// instances (restarting one that exits, after [`RESTART_DELAY`]) and
/// kills one with SIGKILL once 40% are handled. Returns the commands
/// handled and when the kill happened.
async fn watch(
    store: &PgStore,
    supervisor: &mut Supervisor,
    (events_before, commands_before): (i64, i64),
    total: usize,
    args: &DemoArgs,
) -> Result<Watched, CliError> {
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout());
    bar.set_style(
        ProgressStyle::with_template(
            "  [{bar:40}] {pos}/{len} commands handled, {msg} ({elapsed})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let say = |text: String| {
        if bar.is_hidden() {
            println!("{text}");
        } else {
            bar.println(text);
        }
    };
    let interactive = std::io::stdout().is_terminal() && !bar.is_hidden();
    let mut events = 0usize;
    let mut read_to = events_before;
    let mut killed_at = None;
    let mut restart_due: Vec<Option<Instant>> = vec![None; supervisor.len()];
    let mut last_progress = Instant::now();
    let mut last_line = Instant::now();
    let mut rate = Rate::default();
    loop {
        // New events, read from where the last look ended.
        let mut new =
            store.read_category(EVENT_CATEGORY, CategoryQuery::new().position(read_to + 1));
        while let Some(message) = new.try_next().await.map_err(|source| CliError::Store {
            action: "cannot read the account category".into(),
            source,
        })? {
            read_to = message.global_position;
            events += 1;
        }
        let handled = events
            + supervisor
                .tally()
                .after(commands_before)
                .resends_ignored
                .len();
        if handled as u64 > bar.position() {
            last_progress = Instant::now();
        }
        bar.set_position(handled as u64);
        bar.set_message(format!("{:.0}/s", rate.update(handled)));
        if !interactive && last_line.elapsed() >= Duration::from_secs(1) {
            say(format!(
                "  {handled}/{total} commands handled, {:.0}/s",
                rate.current
            ));
            last_line = Instant::now();
        }
        // Done once every command is handled and both instances run
        // (a restart due has happened, and the restarted one is up).
        let all_up = restart_due.iter().all(Option::is_none)
            && (0..supervisor.len()).all(|index| supervisor.is_ready(index));
        if handled >= total && all_up {
            bar.finish_and_clear();
            return Ok(Watched {
                handled,
                events,
                killed_at,
            });
        }
        if last_progress.elapsed() > Duration::from_secs(args.stall_timeout) {
            bar.abandon();
            let tally = supervisor.tally();
            return Err(CliError::Other(format!(
                "no command handled for {} s ({handled} of {total} handled); the last error logged: {}",
                args.stall_timeout,
                tally.errors.last().map_or("none", String::as_str)
            )));
        }

        // The supervisor's part.
        if killed_at.is_none() && handled * 10 >= total * 4 {
            let victim = 1;
            if supervisor.kill(victim).await.map_err(|err| {
                CliError::Other(format!("cannot kill {}: {err}", INSTANCES[victim]))
            })? {
                killed_at = Some(handled);
                restart_due[victim] = Some(Instant::now() + RESTART_DELAY);
                say(format!(
                    "  killed {} with SIGKILL at {handled} commands handled; \
                     starting it again in {} ms, as systemd would",
                    INSTANCES[victim],
                    RESTART_DELAY.as_millis()
                ));
            }
        }
        let exited = supervisor
            .exited()
            .await
            .map_err(|err| CliError::Other(format!("cannot wait for an instance: {err}")))?;
        for (index, status) in exited {
            let tally = supervisor.tally();
            say(format!(
                "  {} exited ({status}); starting it again in {} ms. Its last error: {}",
                INSTANCES[index],
                RESTART_DELAY.as_millis(),
                tally.errors.last().map_or("none logged", String::as_str)
            ));
            restart_due[index] = Some(Instant::now() + RESTART_DELAY);
        }
        for (index, due) in restart_due.iter_mut().enumerate() {
            if due.is_some_and(|due| Instant::now() >= due) {
                *due = None;
                supervisor.start(index).map_err(|err| {
                    CliError::Other(format!("cannot start {}: {err}", INSTANCES[index]))
                })?;
                say(format!("  started {} again", INSTANCES[index]));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What [`watch`] saw.
#[derive(Debug)]
struct Watched {
    /// Commands handled: events written and re-sends ignored.
    handled: usize,
    /// This run's events.
    events: usize,
    /// Commands handled when the kill happened.
    killed_at: Option<usize>,
}

/// Commands per second over the last few seconds.
#[derive(Debug, Default)]
struct Rate {
    samples: std::collections::VecDeque<(Instant, usize)>,
    current: f64,
}

impl Rate {
    fn update(&mut self, handled: usize) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, handled));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(3))
        {
            self.samples.pop_front();
        }
        if let Some((at, first)) = self.samples.front() {
            let seconds = now.duration_since(*at).as_secs_f64();
            if seconds > 0.2 {
                self.current = (handled - first) as f64 / seconds;
            }
        }
        self.current
    }
}

fn describe_statuses(statuses: &[Option<ExitStatus>]) -> String {
    statuses
        .iter()
        .zip(INSTANCES)
        .map(|(status, name)| match status {
            Some(status) => format!("{name} {status}"),
            None => format!("{name} did not stop in time and was killed"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_summary(
    written: usize,
    watched: &Watched,
    tally: &Tally,
    restarts: u32,
    verified: Option<&Verified>,
) {
    let kill = watched.killed_at.map_or_else(
        || "no kill (the work ended first)".to_owned(),
        |at| format!("1 SIGKILL at {at} commands handled"),
    );
    let rows: Vec<(&str, String)> = vec![
        ("commands written", written.to_string()),
        ("events written", watched.events.to_string()),
        (
            "re-deliveries ignored",
            format!(
                "{} (a command the other instance, or the killed one, had applied)",
                tally.redeliveries_ignored.len()
            ),
        ),
        (
            "re-sends ignored",
            format!(
                "{} (a deposit or withdrawal id already reserved)",
                tally.resends_ignored.len()
            ),
        ),
        (
            "expected-version retries",
            format!(
                "{} (two writers of one account at once; the loser fetched again)",
                tally.conflicts_retried
            ),
        ),
        ("restarts", format!("{restarts} ({kill})")),
        (
            "verification",
            verified.map_or_else(
                || "FAILED: see below".to_owned(),
                |v| {
                    format!(
                        "PASS: every balance equals its applied commands \
                         ({} accounts in the database: {} Deposited, {} Withdrawn, \
                         {} WithdrawalRejected; {} cents in all; no balance ever below {})",
                        v.accounts,
                        v.deposited,
                        v.withdrawn,
                        v.rejected,
                        v.total_balance,
                        v.lowest_balance
                    )
                },
            ),
        ),
    ];
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    println!();
    for (name, value) in rows {
        println!("  {name:<width$}  {value}");
    }
    println!();
}
