//! `ebb db install` and `ebb db version`.

use ebb_localpg::conninfo::describe;
use ebb_localpg::quote_ident;
use ebb_message_store::pg::{PgStoreConfig, TlsSettings};
use ebb_message_store::schema;
use tokio_postgres::{Client, Config};

use super::CliError;

/// Connects as `config` says, with TLS as `tls` says.
pub async fn connect(config: &Config, tls: &TlsSettings) -> Result<Client, CliError> {
    let (client, connection) =
        ebb_message_store::pg::connect(config, tls)
            .await
            .map_err(|source| CliError::Connect {
                target: describe(config),
                source,
            })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "connection closed");
        }
    });
    Ok(client)
}

/// Creates the database `config` names unless it exists, connecting to the
/// server's `postgres` database to do so.
pub async fn create_database(config: &Config, tls: &TlsSettings) -> Result<bool, CliError> {
    let name = config
        .get_dbname()
        .ok_or_else(|| {
            CliError::Other("no database name given (set PGDATABASE or DATABASE_URL)".into())
        })?
        .to_owned();
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let client = connect(&maintenance, tls).await?;
    let exists = client
        .query_typed_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[(&name, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .map_err(|source| CliError::Database {
            action: format!("cannot look up database {name:?}"),
            source,
        })?
        .is_some();
    if exists {
        return Ok(false);
    }
    match client
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
    {
        Ok(()) => Ok(true),
        // Another process created it meanwhile: as good as ours.
        Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
            Ok(false)
        }
        Err(source) => Err(CliError::Database {
            action: format!("cannot create database {name:?}"),
            source,
        }),
    }
}

pub async fn install(create: bool) -> Result<(), CliError> {
    let PgStoreConfig {
        connection: config,
        tls,
        ..
    } = PgStoreConfig::from_env().map_err(CliError::Config)?;
    if create && create_database(&config, &tls).await? {
        println!("created database {}", config.get_dbname().unwrap_or("?"));
    }
    let client = connect(&config, &tls).await?;
    let installed = schema::install(&client)
        .await
        .map_err(|source| CliError::Store {
            action: format!("cannot install the schema into {}", describe(&config)),
            source,
        })?;
    println!(
        "installed message store (Message DB {} interface, ebb schema {}) in {}",
        installed.message_db,
        installed.ebb.as_deref().unwrap_or("?"),
        describe(&config)
    );
    Ok(())
}

pub async fn version() -> Result<(), CliError> {
    let PgStoreConfig {
        connection: config,
        tls,
        ..
    } = PgStoreConfig::from_env().map_err(CliError::Config)?;
    let client = connect(&config, &tls).await?;
    let installed = schema::installed_version(&client)
        .await
        .map_err(|source| CliError::Store {
            action: "cannot read the installed version".into(),
            source,
        })?;
    match installed {
        Some(installed) => {
            println!("message_db {}", installed.message_db);
            match installed.ebb {
                Some(ebb) => println!("ebb_schema {ebb}"),
                None => println!("ebb_schema none (installed by other tools)"),
            }
            Ok(())
        }
        None => Err(CliError::Other(format!(
            "no message store in {} (run `ebb db install`)",
            describe(&config)
        ))),
    }
}
