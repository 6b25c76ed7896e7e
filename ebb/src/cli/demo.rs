//! `ebb demo`: the store at work, on a private cluster unless
//! `DATABASE_URL` names a server.

use ebb_localpg::Cluster;
use ebb_localpg::conninfo::describe;
use ebb_message_store::{
    CategoryQuery, ExpectedVersion, Message, MessageData, MessageStore, PgStore, PgStoreConfig,
    StreamName, StreamQuery, schema,
};
use futures_util::TryStreamExt;
use serde_json::json;

use super::CliError;
use super::db::{connect, create_database};

pub async fn run() -> Result<(), CliError> {
    // Held to the end: stopping it removes its files.
    let mut cluster = None;
    let config = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let config = ebb_message_store::pg::config_from_env().map_err(CliError::Config)?;
            println!("using the database in DATABASE_URL ({})", describe(&config));
            config
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
            let config = started.config("ebb_demo");
            cluster = Some(started);
            create_database(&config).await?;
            config
        }
    };

    let result = write_and_read(config).await;
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

/// The demonstration proper. Every connection it opens is closed when it
/// returns, before the cluster is stopped.
async fn write_and_read(config: tokio_postgres::Config) -> Result<(), CliError> {
    let client = connect(&config).await?;
    let installed = schema::install(&client)
        .await
        .map_err(|source| CliError::Store {
            action: "cannot install the schema".into(),
            source,
        })?;
    println!(
        "installed the message store: Message DB {} interface, ebb schema {}",
        installed.message_db,
        installed.ebb.as_deref().unwrap_or("?")
    );

    let store = PgStore::new(PgStoreConfig::new(config)).map_err(CliError::Config)?;
    let store_err = |action: &str| {
        let action = action.to_owned();
        move |source| CliError::Store { action, source }
    };

    // A unique id per run, so the demo can run again on the same database.
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let account = StreamName::new("account", &id).map_err(|e| CliError::Store {
        action: "bad stream name".into(),
        source: e.into(),
    })?;
    let command_stream = StreamName::builder("account")
        .category_type("command")
        .id(&id)
        .build()
        .map_err(|e| CliError::Store {
            action: "bad stream name".into(),
            source: e.into(),
        })?;

    println!("\nwriting:");
    let deposit = MessageData::new("Deposit", json!({ "accountId": id, "amount": 50 }));
    let position = store
        .write(&command_stream, &deposit, ExpectedVersion::Any)
        .await
        .map_err(store_err("cannot write the command"))?;
    println!("  {command_stream} #{position} Deposit");
    let command = store
        .get_last_stream_message(command_stream.as_str(), None)
        .await
        .map_err(store_err("cannot read the command back"))?
        .ok_or_else(|| CliError::Other("the command just written is missing".into()))?;

    let events = [
        MessageData::new("Opened", json!({ "accountId": id })),
        MessageData::new("Deposited", json!({ "accountId": id, "amount": 50 })).follow(&command),
    ];
    let last = store
        .write_batch(&account, &events, ExpectedVersion::NoStream)
        .await
        .map_err(store_err("cannot write the events"))?;
    println!(
        "  {account} #0..#{} Opened, Deposited (one batch, expecting no stream)",
        last.unwrap_or(-1)
    );
    let withdrawn = MessageData::new("Withdrawn", json!({ "accountId": id, "amount": 20 }));
    let position = store
        .write(&account, &withdrawn, ExpectedVersion::Exact(1))
        .await
        .map_err(store_err("cannot write Withdrawn"))?;
    println!("  {account} #{position} Withdrawn (expecting version 1)");

    match store
        .write(
            &account,
            &MessageData::new("Withdrawn", json!({ "accountId": id, "amount": 999 })),
            ExpectedVersion::Exact(1),
        )
        .await
    {
        Err(err) if err.is_wrong_expected_version() => {
            println!("  a second writer expecting version 1 is refused: {err}");
        }
        Err(err) => return Err(store_err("unexpected error")(err)),
        Ok(_) => {
            return Err(CliError::Other(
                "a stale write was accepted: the expected-version check is broken".into(),
            ));
        }
    }

    println!("\nreading the stream {account}:");
    let messages: Vec<Message> = store
        .read_stream(account.as_str(), StreamQuery::new())
        .try_collect()
        .await
        .map_err(store_err("cannot read the stream"))?;
    print_messages(&messages);

    println!("\nreading the category account (every account's events):");
    let messages: Vec<Message> = store
        .read_category("account", CategoryQuery::new())
        .try_collect()
        .await
        .map_err(store_err("cannot read the category"))?;
    // On a database of one's own (DATABASE_URL) the category holds earlier
    // runs and other writers too: show the tail only.
    const SHOWN: usize = 10;
    if messages.len() > SHOWN {
        println!("  ({} messages in all; the last {SHOWN})", messages.len());
    }
    print_messages(&messages[messages.len().saturating_sub(SHOWN)..]);

    let caused = messages
        .iter()
        .find(|m| m.type_name == "Deposited" && m.stream_name == account.as_str());
    if let Some(deposited) = caused {
        println!(
            "\nDeposited was caused by {} (global position {})",
            deposited
                .metadata
                .causation_message_stream_name
                .as_deref()
                .unwrap_or("?"),
            deposited
                .metadata
                .causation_message_global_position
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn print_messages(messages: &[Message]) {
    println!(
        "  {:>6}  {:>3}  {:<24} {:<10} data",
        "global", "pos", "stream", "type"
    );
    for m in messages {
        println!(
            "  {:>6}  {:>3}  {:<24} {:<10} {}",
            m.global_position, m.position, m.stream_name, m.type_name, m.data
        );
    }
}
