//! The handler case: the seed handler dispatching stored commands one
//! after another, and bare store calls doing the same I/O by hand.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ebb_handler::{Dispatcher, Writer};
use ebb_message_store::{
    CategoryQuery, ExpectedVersion, Message, MessageData, MessageStore, PgStore, StreamName,
    StreamQuery,
};
use futures_util::TryStreamExt as _;
use serde_json::json;

use ebb_bench::{BoxError, Rounds, interleaved, progress};

use crate::Bench;
use crate::workload::{Accounts, COMMAND_CATEGORY, Deposit, Deposited, amount};

/// The sides of the handler case: the seed handler through a
/// `Dispatcher`, and the same reads and writes as bare store calls.
pub(crate) const HANDLER: &str = "handler";
pub(crate) const STORE_CALLS: &str = "store calls";

/// Each side's commands per second, round by round.
#[derive(Debug)]
pub(crate) struct HandlingFigures {
    pub(crate) rounds: Rounds,
    /// Expected-version conflicts the handler's retry caught, over the
    /// whole run: none, with one instance.
    pub(crate) retries: usize,
}

/// A side's database, its commands, and how far it has come.
struct Side<'b> {
    /// The runtime and the settings.
    bench: &'b Bench,
    /// The side's own database, one connection.
    store: PgStore,
    /// Commands written so far; command `n` goes to account `n % accounts`.
    written: usize,
    /// Where the next slice's commands start in the command category.
    next_command: i64,
}

impl<'b> Side<'b> {
    fn new(bench: &'b Bench, database: &str) -> Result<Self, BoxError> {
        bench.fresh_database(database)?;
        Ok(Self {
            bench,
            store: bench.store(database)?,
            written: 0,
            next_command: 1,
        })
    }

    /// Writes a slice's commands and reads them back as a consumer
    /// receives them; not measured.
    fn commands(&mut self) -> Result<Vec<Message>, BoxError> {
        let settings = &self.bench.settings;
        let (first, count, accounts) = (self.written, settings.commands, settings.accounts);
        let commands = self.bench.runtime.block_on(async {
            let writer = Writer::new(self.store.clone());
            for n in first..first + count {
                let account_id = format!("a{}", n % accounts);
                let stream = StreamName::new(COMMAND_CATEGORY, &account_id)?;
                let deposit = Deposit {
                    deposit_id: uuid::Uuid::new_v4().to_string(),
                    account_id,
                    amount: amount(n as i64),
                };
                writer.write(&stream, deposit, ExpectedVersion::Any).await?;
            }
            let query = CategoryQuery::new().position(self.next_command);
            let commands: Vec<Message> = self
                .store
                .read_category(COMMAND_CATEGORY, query)
                .try_collect()
                .await?;
            Ok::<_, BoxError>(commands)
        })?;
        if commands.len() != count {
            return Err(format!("wrote {count} commands, read {}", commands.len()).into());
        }
        self.written += count;
        self.next_command = commands.last().map_or(0, |last| last.global_position) + 1;
        Ok(commands)
    }

    /// Every command written has its `Deposited`: the accounts' streams
    /// hold as many events as there were commands.
    fn check_all_applied(&self) -> Result<(), BoxError> {
        let events: i64 = self.bench.runtime.block_on(async {
            let mut events = 0;
            for account in 0..self.bench.settings.accounts {
                let stream = format!("account-a{account}");
                events += self
                    .store
                    .stream_version(&stream)
                    .await?
                    .map_or(0, |v| v + 1);
            }
            Ok::<_, BoxError>(events)
        })?;
        if events != self.written as i64 {
            return Err(format!("{} commands, {events} Deposited events", self.written).into());
        }
        Ok(())
    }
}

/// What the bare-store side knows of an account: what the entity store
/// caches, reduced to what the handler needs.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    /// The position of the last event read.
    version: Option<i64>,
    /// The last event's sequence: the guard.
    sequence: Option<i64>,
}

/// The two sides, each on its own database.
pub(crate) struct HandlingCase<'b> {
    /// The runtime and the settings.
    bench: &'b Bench,
    handler: Side<'b>,
    store_calls: Side<'b>,
}

impl<'b> HandlingCase<'b> {
    pub(crate) fn prepare(bench: &'b Bench) -> Result<Self, BoxError> {
        progress("handler: creating a database per side");
        Ok(Self {
            bench,
            handler: Side::new(bench, "bench_handler")?,
            store_calls: Side::new(bench, "bench_store_calls")?,
        })
    }

    pub(crate) fn measure(mut self) -> Result<HandlingFigures, BoxError> {
        let settings = &self.bench.settings;
        let case = format!(
            "seed handler, {} commands over {} accounts",
            settings.commands, settings.accounts
        );
        let (accounts, retries) = Accounts::new(&self.handler.store);
        let dispatcher = Dispatcher::<ebb_handler::Error>::default().on(accounts);
        let mut known = HashMap::new();

        // One slice each first, not measured: it opens the connections,
        // prepares the statements and brings every account into the
        // entity store's cache and the bare side's map, as a running
        // consumer has them.
        progress(format!("{case}: warming up"));
        handle(self.bench, &mut self.handler, &dispatcher)?;
        store_calls(self.bench, &mut self.store_calls, &mut known)?;
        self.bench.checkpoint()?;

        let bench = self.bench;
        let (handler, bare) = (&mut self.handler, &mut self.store_calls);
        let mut handler_slice = || handle(bench, handler, &dispatcher);
        let mut store_calls_slice = || store_calls(bench, bare, &mut known);
        let rounds = interleaved(
            &case,
            settings.runs,
            "commands/s",
            &mut [
                (HANDLER, &mut handler_slice as &mut dyn FnMut() -> _),
                (STORE_CALLS, &mut store_calls_slice),
            ],
        )?;
        self.handler.check_all_applied()?;
        self.store_calls.check_all_applied()?;
        Ok(HandlingFigures {
            rounds,
            retries: retries.load(Ordering::Relaxed),
        })
    }
}

/// One slice of the handler side: a slice's commands dispatched one after
/// another; commands per second.
fn handle(
    bench: &Bench,
    side: &mut Side<'_>,
    dispatcher: &Dispatcher<ebb_handler::Error>,
) -> Result<f64, BoxError> {
    let commands = side.commands()?;
    bench.runtime.block_on(async {
        let started = Instant::now();
        for command in &commands {
            dispatcher.dispatch(command).await?;
        }
        Ok(commands.len() as f64 / started.elapsed().as_secs_f64())
    })
}

/// One slice of the bare-store side: per command, what the handler's I/O
/// comes to. One `get_stream_messages` from the version known of the
/// account (the entity store's cache: it finds the event written for the
/// account's last command), the sequence guard, one `write` of the same
/// `Deposited` following the command with that version expected.
fn store_calls(
    bench: &Bench,
    side: &mut Side<'_>,
    known: &mut HashMap<String, Known>,
) -> Result<f64, BoxError> {
    let commands = side.commands()?;
    let store = &side.store;
    bench.runtime.block_on(async {
        let started = Instant::now();
        for command in &commands {
            let deposit: Deposit = command.data()?;
            let account_id = deposit.account_id.as_str();
            let stream = StreamName::new("account", account_id)?;
            let account = known.entry(account_id.to_owned()).or_default();
            let from = account.version.map_or(0, |version| version + 1);
            let newer = store
                .get_stream_messages(stream.as_str(), &StreamQuery::new().position(from))
                .await?;
            for event in &newer {
                account.version = Some(event.position);
                account.sequence = Some(event.data::<Deposited>()?.sequence);
            }
            if account
                .sequence
                .is_some_and(|applied| applied >= command.global_position)
            {
                continue;
            }
            let deposited = MessageData::new(
                <Deposited as ebb_handler::MessageType>::TYPE_NAME,
                json!({
                    "depositId": deposit.deposit_id,
                    "accountId": account_id,
                    "amount": deposit.amount,
                    "sequence": command.global_position,
                }),
            )
            .follow(command);
            let expected = account
                .version
                .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            store.write(&stream, &deposited, expected).await?;
        }
        Ok(commands.len() as f64 / started.elapsed().as_secs_f64())
    })
}
