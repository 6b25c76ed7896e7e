//! Argument parsing, the commands, and how their errors read.

mod completions;
mod consumers;
mod dashboard;
mod db;
mod demo;
mod failures;
mod listing;
mod output;
mod parked;
mod read;
mod stats;
mod tail;
mod trace;
mod write;

use std::error::Error as StdError;

use clap::{Parser, Subcommand};
use ebb_message_store::{PgStore, PgStoreConfig};

/// ebb: event-sourced components on a Message DB-compatible PostgreSQL store.
#[derive(Debug, Parser)]
#[command(name = "ebb", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the message store schema in the database named by
    /// DATABASE_URL (or the PG* variables).
    #[command(subcommand)]
    Db(DbCommand),
    /// The account component under failure: a private PostgreSQL cluster
    /// (unless DATABASE_URL is set), the schema, two instances side by
    /// side, a few thousand commands, one instance killed and restarted,
    /// and the check that every balance is exact.
    Demo(demo::DemoArgs),
    /// Print the messages of a stream, or of a category (a name without an
    /// id), from the database named by DATABASE_URL (or the PG* variables).
    Read(read::ReadArgs),
    /// Print a category's messages as they are written, from now on, until
    /// interrupted (Ctrl-C or SIGTERM, which exit with status 0).
    Tail(tail::TailArgs),
    /// Write one message to a stream and print the stream position it was
    /// written at.
    Write(write::WriteArgs),
    /// List every consumer that has recorded a position (or those of
    /// CATEGORY): its position, its category's head, its lag, and how
    /// many failures and parked messages it has recorded.
    Consumers(consumers::ConsumersArgs),
    /// Count the store's messages by category and type, by type, or by
    /// stream, with each count's share of all messages.
    Stats(stats::StatsArgs),
    /// Print the causation tree of the messages that followed a message
    /// (by its id), or of the messages correlated to a stream, read from
    /// message_store.messages.
    Trace(trace::TraceArgs),
    /// List the handler failures that stopped the consumers of CATEGORY.
    Failures(failures::FailuresArgs),
    /// List or show the messages the consumers of CATEGORY parked.
    #[command(subcommand)]
    Parked(parked::ParkedCommand),
    /// Serve the web dashboard: categories, streams and their messages,
    /// consumers with their lag, parked messages to replay or discard,
    /// causation traces; live. Until interrupted (Ctrl-C or SIGTERM).
    Dashboard(dashboard::DashboardArgs),
    /// Print a completion script for SHELL on stdout, e.g.
    /// `ebb completions bash > ~/.local/share/bash-completion/completions/ebb`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Runs the account component (what the `account-component` binary
    /// runs), as `ebb demo` starts it.
    #[command(hide = true)]
    AccountComponent,
}

impl Args {
    /// True for the hidden `account-component` command, which runs the
    /// component with its own runtime and log.
    pub fn is_account_component(&self) -> bool {
        matches!(self.command, Command::AccountComponent)
    }
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Install or upgrade the schema (idempotent; safe to run concurrently).
    Install {
        /// Create the database first if it does not exist.
        #[arg(long)]
        create: bool,
    },
    /// Print the installed Message DB and ebb schema versions.
    Version,
}

/// What a command can fail with; shown to the user as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The connection settings are unusable; the source says which and why.
    #[error("cannot use the connection settings")]
    Config(#[source] ebb_message_store::Error),
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {target}")]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("{action}")]
    Database {
        action: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The store refused or failed.
    #[error("{action}")]
    Store {
        action: String,
        #[source]
        source: ebb_message_store::Error,
    },
    /// The private cluster for the demo did not start or stop.
    #[error("cannot {action} a private PostgreSQL cluster")]
    LocalPg {
        /// "start" or "stop".
        action: &'static str,
        #[source]
        source: ebb_localpg::Error,
    },
    /// The command line asks for something that cannot be done, found
    /// before the database is touched (a malformed stream name, JSON or
    /// UUID). Exits with status 2, as clap's own usage errors do.
    #[error("{0}")]
    Usage(String),
    /// Something the command checks for itself.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The exit status: 2 for a usage error, 1 for every failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// The operators' queries' errors, as the commands say them: input that
/// names nothing is a usage error; a record that does not read, or a
/// consumer's failure, is one line with its causes.
impl From<ebb_admin::Error> for CliError {
    fn from(err: ebb_admin::Error) -> Self {
        match err {
            ebb_admin::Error::Statement { action, source } => Self::Database { action, source },
            ebb_admin::Error::Store { action, source } => Self::Store { action, source },
            ebb_admin::Error::Consumer { action, source } => {
                Self::Other(format!("{action}: {}", ebb_retry::Chain::new(&source)))
            }
            ebb_admin::Error::Malformed { what, source } => {
                Self::Other(format!("{what}: {source}"))
            }
            ebb_admin::Error::NotFound(message) => Self::Other(message),
            err @ ebb_admin::Error::InvalidInput(_) => Self::Usage(one_line(&err)),
            err => Self::Other(one_line(&err)),
        }
    }
}

/// The store in the database the environment names.
fn store() -> Result<PgStore, CliError> {
    PgStore::new(PgStoreConfig::from_env().map_err(CliError::Config)?).map_err(CliError::Config)
}

pub async fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Db(DbCommand::Install { create }) => db::install(create).await,
        Command::Db(DbCommand::Version) => db::version().await,
        Command::Demo(args) => demo::run(args).await,
        Command::Read(args) => read::run(args).await,
        Command::Tail(args) => tail::run(args).await,
        Command::Write(args) => write::run(args).await,
        Command::Consumers(args) => consumers::run(args).await,
        Command::Stats(args) => stats::run(args).await,
        Command::Trace(args) => trace::run(args).await,
        Command::Failures(args) => failures::run(args).await,
        Command::Parked(command) => parked::run(command).await,
        Command::Dashboard(args) => dashboard::run(args).await,
        Command::Completions { shell } => {
            completions::print(shell);
            Ok(())
        }
        Command::AccountComponent => Err(CliError::Other(
            "account-component runs on its own runtime (see main)".into(),
        )),
    }
}

/// The error and its causes as one line, each cause once.
///
/// tokio-postgres wraps a server error as "db error" around the server's
/// own "ERROR: ..." text; the wrapper adds nothing, so it is left out, and
/// the server's detail and hint are added when there are any.
pub fn one_line(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for err in ebb_retry::Chain::new(err) {
        if let Some(db) = err.downcast_ref::<tokio_postgres::error::DbError>() {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            parts.push(text);
            break;
        }
        let text = err.to_string();
        let redundant = text.is_empty()
            || text == "db error"
            || text == "database error"
            || parts.last().is_some_and(|last| last.ends_with(&text));
        if !redundant {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of `err` and of each of its sources, joined as they are
    /// without [`one_line`]'s clean-up.
    fn chain(err: &(dyn StdError + 'static)) -> String {
        let messages: Vec<String> = ebb_retry::Chain::new(err)
            .map(ToString::to_string)
            .collect();
        messages.join(": ")
    }

    fn invalid_config() -> ebb_message_store::Error {
        ebb_message_store::Error::InvalidConfig("PGPORT is not a port number".into())
    }

    fn driver_error() -> tokio_postgres::Error {
        "port=notaport"
            .parse::<tokio_postgres::Config>()
            .unwrap_err()
    }

    #[test]
    fn a_config_error_names_its_cause_once() {
        let err = CliError::Config(invalid_config());
        assert_eq!(
            one_line(&err),
            "cannot use the connection settings: \
             invalid connection settings: PGPORT is not a port number"
        );
        assert_eq!(chain(&err), one_line(&err));
    }

    /// No variant shows its source's text in its own message: the source is
    /// printed after it, so that would print the cause twice.
    #[test]
    fn no_variant_repeats_its_source() {
        let errors = [
            CliError::Config(invalid_config()),
            CliError::Connect {
                target: "host=/tmp port=5432".into(),
                source: driver_error(),
            },
            CliError::Database {
                action: "cannot create database \"x\"".into(),
                source: driver_error(),
            },
            CliError::Store {
                action: "cannot install the schema".into(),
                source: invalid_config(),
            },
            CliError::LocalPg {
                action: "start",
                source: ebb_localpg::Error::NoUnprivilegedUser,
            },
        ];
        for err in errors {
            let source = err.source().expect("a source").to_string();
            let message = err.to_string();
            assert!(!message.contains(&source), "{err:?} shows {source:?}");
            assert_eq!(chain(&err).matches(&source).count(), 1, "{err:?}");
        }
    }

    /// The library's errors keep the messages and exit statuses the
    /// commands had when the queries were theirs.
    #[test]
    fn the_operators_errors_read_as_before() {
        let usage = CliError::from(ebb_admin::ConsumerName::new("account-1", None).unwrap_err());
        assert_eq!(usage.exit_code(), 2, "{usage}");
        assert_eq!(
            one_line(&usage),
            one_line(
                &ebb_consumer::ConsumerConfig::new("account-1")
                    .validate()
                    .unwrap_err()
            )
        );
        let origin = CliError::from(ebb_admin::Origin::parse("transfer-").unwrap_err());
        assert_eq!(origin.exit_code(), 2);
        assert!(
            one_line(&origin).starts_with("\"transfer-\" is neither a message id"),
            "{origin}"
        );
        let not_found =
            CliError::from(ebb_admin::Error::NotFound("no message has the id x".into()));
        assert_eq!(not_found.exit_code(), 1);
        assert_eq!(one_line(&not_found), "no message has the id x");
        let malformed = CliError::from(ebb_admin::Error::Malformed {
            what: "the position record at a:position-w1/3 is not {\"position\": N}".into(),
            source: serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
        });
        assert_eq!(malformed.exit_code(), 1);
        assert_eq!(
            one_line(&malformed),
            "the position record at a:position-w1/3 is not {\"position\": N}: \
             EOF while parsing an object at line 1 column 1"
        );
        let store = CliError::from(ebb_admin::Error::Store {
            action: "cannot read account:parked-w1".into(),
            source: invalid_config(),
        });
        assert_eq!(store.exit_code(), 1);
        assert_eq!(
            one_line(&store),
            "cannot read account:parked-w1: invalid connection settings: PGPORT is not a port number"
        );
    }

    #[test]
    fn causes_are_joined_on_one_line() {
        let err = CliError::LocalPg {
            action: "start",
            source: ebb_localpg::Error::StartFailed {
                stage: "postgres exited".into(),
                log_path: "/tmp/ebb-pg-x/log".into(),
                log_tail: "FATAL: bad setting\nLOG: database system is shut down".into(),
            },
        };
        assert_eq!(
            one_line(&err),
            "cannot start a private PostgreSQL cluster: PostgreSQL failed to start \
             (postgres exited); the end of its log (/tmp/ebb-pg-x/log): \
             FATAL: bad setting LOG: database system is shut down"
        );
    }

    /// An error from another crate that shows its source in its own message
    /// still reads with the cause once.
    #[test]
    fn a_cause_already_in_the_message_is_left_out() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Repeats(#[source] std::io::Error);

        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = Repeats(io);
        assert_eq!(chain(&err).matches("No such file").count(), 2);
        assert_eq!(one_line(&err), "outer: No such file or directory");
    }
}
