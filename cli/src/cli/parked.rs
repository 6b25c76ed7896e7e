//! `ebb parked list`, `show`, `replay` and `discard`: the messages a
//! category's consumers have parked now, from their parked streams folded
//! as the consumer folds them ([`ebb_admin::parked`]), and the requests
//! that replay or discard them ([`ebb_admin::request`]).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use ebb_admin::{ConsumerName, PARKED, ParkedSummary, Select, Selection};
use ebb_consumer::{ParkedMessage, Requested};

use super::listing::{self, Column};
use super::{CliError, store};

/// What `ebb parked` does.
#[derive(Debug, clap::Subcommand)]
pub enum ParkedCommand {
    /// List the messages parked by the consumers of CATEGORY, oldest
    /// first.
    List(ListArgs),
    /// Print one parked message whole: its record, data and metadata.
    Show(ShowArgs),
    /// Ask the consumers that parked the selected messages to deliver
    /// them to their handlers again, as they were.
    Replay(ActArgs),
    /// Ask the consumers that parked the selected messages to drop them.
    Discard(ActArgs),
}

/// Whose parked messages `ebb parked list` lists, and how.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
A consumer parks a message (a `Parked` message in CATEGORY:parked-ID, or \
CATEGORY+parked-ID when the category has a type) that its handlers failed \
on too often, and goes on without it. Listed are the messages parked now: \
not replayed or discarded since. GLOBAL is the parked message's own global \
position, which `ebb parked show`, `replay` and `discard` take; REQUESTED \
says a replay or discard is asked and not yet carried out.")]
pub struct ListArgs {
    /// The category the consumers read (`account`, `account:command`).
    category: String,
    /// Only the consumer with this identifier (default: every consumer of
    /// the category).
    #[arg(long, value_name = "ID")]
    consumer: Option<String>,
    /// One JSON object per line (category, identifier, globalPosition,
    /// streamName, position, type, error, failures, parkedAt, requested)
    /// instead of a table.
    #[arg(long)]
    json: bool,
}

/// Which parked message `ebb parked show` prints.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The category the consumers read (`account`, `account:command`).
    category: String,
    /// The parked message's global position (GLOBAL in `ebb parked list`).
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    global_position: i64,
    /// Only the consumer with this identifier (default: every consumer of
    /// the category that parked the message).
    #[arg(long, value_name = "ID")]
    consumer: Option<String>,
}

/// Which parked messages `ebb parked replay` and `discard` act on.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
The request is written to the parked stream of each consumer that parked \
the message (a `Replay` or `Discard` message there); a running consumer \
takes it up within its poll interval, or at once when woken, a stopped one \
at its next start, and records the outcome there (`Replayed`, `Discarded`, \
or the message parked again when its handlers fail again). A replay \
delivers the message as it was: same id, stream, positions, data and \
metadata, so the handlers' idempotence guards see a re-delivery. On a \
terminal the command says what it will touch and asks first; elsewhere \
it refuses unless -y is given.")]
pub struct ActArgs {
    /// The category the consumers read (`account`, `account:command`).
    category: String,
    /// The parked messages' global positions (GLOBAL in `ebb parked
    /// list`).
    #[arg(
        value_parser = clap::value_parser!(i64).range(1..),
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    global_positions: Vec<i64>,
    /// Every message parked now (with --consumer, that consumer's).
    #[arg(long)]
    all: bool,
    /// Only the consumer with this identifier (default: every consumer of
    /// the category that parked a selected message).
    #[arg(long, value_name = "ID")]
    consumer: Option<String>,
    /// Act on at most N messages, the oldest parked first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short = 'y', long = "yes")]
    yes: bool,
}

pub async fn run(command: ParkedCommand) -> Result<(), CliError> {
    match command {
        ParkedCommand::List(args) => list(args).await,
        ParkedCommand::Show(args) => show(args).await,
        ParkedCommand::Replay(args) => act(Requested::Replay, args).await,
        ParkedCommand::Discard(args) => act(Requested::Discard, args).await,
    }
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let consumer = ConsumerName::new(&args.category, args.consumer.as_deref())?;
    let store = store()?;
    let parked = ebb_admin::parked(&store, &args.category, args.consumer.as_deref()).await?;
    if parked.is_empty() && !args.json {
        eprintln!("{}", nothing_parked(&consumer));
        return Ok(());
    }
    if args.json {
        let lines: Vec<ParkedSummary> = parked
            .iter()
            .map(|(owner, message)| ParkedSummary::new(owner, message))
            .collect();
        return listing::print_json_lines(&lines);
    }
    let columns = [
        Column::text("CONSUMER"),
        Column::number("GLOBAL"),
        Column::text("STREAM"),
        Column::number("POSITION"),
        Column::text("TYPE"),
        Column::number("FAILURES"),
        Column::text("PARKED"),
        Column::text("REQUESTED"),
        Column::text("ERROR"),
    ];
    let rows: Vec<Vec<String>> = parked
        .into_iter()
        .map(|(owner, message)| {
            vec![
                owner.identifier.unwrap_or_else(|| "-".into()),
                message.parked.global_position.to_string(),
                message.parked.stream_name,
                message.parked.position.to_string(),
                message.parked.type_name,
                message.parked.failures.to_string(),
                listing::table_time(&message.parked_at),
                listing::or_dash(ebb_admin::requested(message.state)),
                message.parked.error,
            ]
        })
        .collect();
    listing::print_table(&columns, &rows)
}

async fn show(args: ShowArgs) -> Result<(), CliError> {
    // A malformed name is a usage error before the settings are read.
    ConsumerName::new(&args.category, args.consumer.as_deref())?;
    let store = store()?;
    let found: Vec<String> = ebb_admin::parked_at(
        &store,
        &args.category,
        args.consumer.as_deref(),
        args.global_position,
    )
    .await?
    .iter()
    .map(|(owner, message)| describe(owner, message))
    .collect();
    listing::print_text(&found.join("\n"))
}

/// What `list` says on stderr when there is nothing to list.
fn nothing_parked(consumer: &ConsumerName) -> String {
    format!("no message is parked by {}", consumer.whose())
}

/// `ebb parked replay` and `discard`: selects, confirms, and writes one
/// request per message and consumer.
async fn act(request: Requested, args: ActArgs) -> Result<(), CliError> {
    let consumer = ConsumerName::new(&args.category, args.consumer.as_deref())?;
    let verb = ebb_admin::request_verb(request);
    let store = store()?;
    let parked = ebb_admin::parked(&store, &args.category, args.consumer.as_deref()).await?;
    let which = if args.all {
        Select::All
    } else {
        Select::At(args.global_positions.clone())
    };
    let limit = args
        .limit
        .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
    let Selection {
        selected,
        total,
        pending,
        ..
    } = ebb_admin::select(&consumer, parked, &which, limit)?;
    if pending > 0 {
        eprintln!(
            "{pending} of the selected messages have a replay or discard asked already; left as they are"
        );
    }
    if selected.is_empty() {
        eprintln!("no parked message to {verb}");
        return Ok(());
    }
    let count = count_of(selected.len());
    let mut plan = format!(
        "{verb} {count} parked by the consumers of {}",
        consumer.category
    );
    if selected.len() < total {
        plan.push_str(&format!(
            " (the oldest {} of {total}: --limit)",
            selected.len()
        ));
    }
    if !args.yes {
        confirm(&plan, &selected)?;
    }
    let requested_by = requested_by(verb);
    let mut failed = 0;
    for (owner, message) in &selected {
        let global_position = message.parked.global_position;
        let outcome =
            ebb_admin::request(&store, request, owner, global_position, Some(&requested_by)).await;
        match outcome.result {
            Ok(position) => {
                println!(
                    "{verb} of {global_position} requested at position {position} of {}",
                    outcome.parked_stream
                );
            }
            Err(err) => {
                failed += 1;
                eprintln!("ebb: {verb} of {global_position} not requested: {err}");
            }
        }
    }
    let written = selected.len() - failed;
    eprintln!(
        "{} written; a running consumer takes a request up within its poll interval, a stopped one at its next start (`ebb parked list` shows what is still parked)",
        count_of(written).replace("message", "request")
    );
    if failed > 0 {
        return Err(CliError::Other(format!(
            "{} not requested",
            count_of(failed)
        )));
    }
    Ok(())
}

/// "1 message", "3 messages".
fn count_of(count: usize) -> String {
    if count == 1 {
        "1 message".into()
    } else {
        format!("{count} messages")
    }
}

/// Says what `plan` touches and asks on the terminal; refuses without one.
fn confirm(plan: &str, selected: &[(ConsumerName, ParkedMessage)]) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to {plan} without confirmation: not on a terminal; pass -y to go ahead"
        )));
    }
    let mut stderr = std::io::stderr().lock();
    let shown = 10;
    let lines = selected.iter().take(shown).map(|(owner, message)| {
        format!(
            "  {} {} {}/{} {}",
            listing::or_dash(owner.identifier.as_deref()),
            message.parked.global_position,
            message.parked.stream_name,
            message.parked.position,
            message.parked.type_name
        )
    });
    let mut text = format!("This will {plan}:\n");
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    if selected.len() > shown {
        text.push_str(&format!("  ... and {} more\n", selected.len() - shown));
    }
    text.push_str("Go ahead? [y/N] ");
    let asked = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush());
    asked.map_err(|err| CliError::Other(format!("cannot ask for confirmation: {err}")))?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|err| CliError::Other(format!("cannot read the answer: {err}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::Other("not confirmed; nothing written".into())),
    }
}

/// Who asks, for the request's record: the command, the user and the host.
fn requested_by(verb: &str) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".into(), |host| host.trim().to_owned());
    format!("ebb parked {verb} ({user}@{host})")
}

/// A parked message whole, as `show` prints it: one `name: value` line
/// per field, then the data and metadata pretty-printed.
fn describe(owner: &ConsumerName, message: &ParkedMessage) -> String {
    let parked = &message.parked;
    let data = parked
        .data
        .to_value()
        .map_or_else(|_| parked.data.as_str().to_owned(), |value| pretty(&value));
    let metadata = serde_json::to_value(&parked.metadata).map_or_else(
        |err| format!("(cannot print: {err})"),
        |value| pretty(&value),
    );
    let parked_in = owner.stream(PARKED).unwrap_or_default();
    let fields = [
        ("category", owner.category.clone()),
        ("consumer", listing::or_dash(owner.identifier.as_deref())),
        (
            "parked in",
            format!("{parked_in} at position {}", message.record_position),
        ),
        ("parked at", listing::json_time(&message.parked_at)),
        (
            "requested",
            listing::or_dash(ebb_admin::requested(message.state)),
        ),
        ("id", parked.id.to_string()),
        ("stream", parked.stream_name.clone()),
        ("position", parked.position.to_string()),
        ("global position", parked.global_position.to_string()),
        ("type", parked.type_name.clone()),
        ("error", parked.error.clone()),
        ("attempts", parked.attempts.to_string()),
        ("failures", parked.failures.to_string()),
    ];
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(&format!("{:<16} {value}\n", format!("{name}:")));
    }
    text.push_str(&format!("data:\n{data}\nmetadata:\n{metadata}\n"));
    text
}

/// `value` as indented JSON.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
