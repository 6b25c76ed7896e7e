//! Argument parsing, the commands, and how their errors read.

mod db;
mod demo;

use std::error::Error as StdError;

use clap::{Parser, Subcommand};

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
    /// Start a private PostgreSQL cluster (unless DATABASE_URL is set),
    /// install the schema, write a few messages and read them back.
    Demo,
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
    /// The connection settings in the environment are unusable.
    #[error("{0}")]
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
    /// The private cluster for the demo did not start.
    #[error("cannot start a private PostgreSQL cluster")]
    LocalPg(#[source] ebb_localpg::Error),
    /// Something the command checks for itself.
    #[error("{0}")]
    Other(String),
}

pub async fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Db(DbCommand::Install { create }) => db::install(create).await,
        Command::Db(DbCommand::Version) => db::version().await,
        Command::Demo => demo::run().await,
    }
}

/// The error and its causes as one line, each cause once.
///
/// tokio-postgres wraps a server error as "db error" around the server's
/// own "ERROR: ..." text; the wrapper adds nothing, so it is left out, and
/// the server's detail and hint are added when there are any.
pub fn one_line(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(err) = current {
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
        current = err.source();
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_joined_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = CliError::Other(format!("outer: {io}"));
        assert_eq!(one_line(&err), "outer: No such file or directory");
        let err = CliError::LocalPg(ebb_localpg::Error::Io {
            action: "reading".into(),
            source: io,
        });
        let line = one_line(&err);
        assert!(
            line.starts_with("cannot start a private PostgreSQL cluster: "),
            "{line}"
        );
        assert!(line.ends_with("No such file or directory"), "{line}");
        assert!(!line.contains('\n'));
    }
}
