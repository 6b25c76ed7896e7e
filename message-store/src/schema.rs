//! The store's schema: the SQL files under `sql/`, embedded, and how they
//! are installed.
//!
//! Installing runs every file, in the order `sql/install-order.txt` gives,
//! as one transaction under an advisory lock, so two processes installing
//! at once take turns and a failed install leaves nothing half done. Every
//! file is idempotent (`IF NOT EXISTS`, `CREATE OR REPLACE`), so installing
//! again is harmless and upgrades the functions in place.
//!
//! ```no_run
//! # async fn example(client: &tokio_postgres::Client) -> Result<(), ebb_message_store::Error> {
//! let installed = ebb_message_store::schema::install(client).await?;
//! println!("Message DB {} interface, ebb schema {}", installed.message_db, installed.ebb.unwrap_or_default());
//! # Ok(()) }
//! ```

use tokio_postgres::Client;

use crate::Error;
use crate::error::classify;

/// The Message DB version whose interface the schema implements.
pub const MESSAGE_DB_VERSION: &str = "1.3.0";

/// The version ebb records when it installs the schema.
pub const EBB_SCHEMA_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The install order, as kept in `sql/install-order.txt`.
pub const INSTALL_ORDER: &str = include_str!("../sql/install-order.txt");

macro_rules! sql_files {
    ($($path:literal),* $(,)?) => {
        /// Every schema file, in install order: (path under `sql/`, SQL).
        pub const FILES: &[(&str, &str)] = &[
            $(($path, include_str!(concat!("../sql/", $path))),)*
        ];
    };
}

sql_files![
    "roles/message-store.sql",
    "schema/message-store.sql",
    "extensions/pgcrypto.sql",
    "tables/messages.sql",
    "tables/ebb-schema-versions.sql",
    "types/message.sql",
    "functions/message-store-version.sql",
    "functions/hash-64.sql",
    "functions/category.sql",
    "functions/is-category.sql",
    "functions/id.sql",
    "functions/cardinal-id.sql",
    "functions/acquire-lock.sql",
    "functions/stream-version.sql",
    "functions/write-message.sql",
    "functions/ebb-write-messages.sql",
    "functions/get-stream-messages.sql",
    "functions/get-category-messages.sql",
    "functions/get-last-stream-message.sql",
    "functions/ebb-arm-category.sql",
    "functions/ebb-disarm-category.sql",
    "functions/ebb-wake-category-waiters.sql",
    "indexes/messages-id.sql",
    "indexes/messages-stream.sql",
    "indexes/messages-category.sql",
    "triggers/messages-wake-category-waiters.sql",
    "views/stream-summary.sql",
    "views/type-summary.sql",
    "views/stream-type-summary.sql",
    "views/type-stream-summary.sql",
    "views/category-type-summary.sql",
    "views/type-category-summary.sql",
    "privileges/schema.sql",
    "privileges/table.sql",
    "privileges/sequence.sql",
    "privileges/functions.sql",
    "privileges/views.sql",
];

/// The advisory lock key installs serialise on ("ebb_inst" in ASCII).
const INSTALL_LOCK_KEY: i64 = 0x6562_625f_696e_7374;

/// The columns of `message_store.messages`, in order, with their types.
const MESSAGES_COLUMNS: &[(&str, &str)] = &[
    ("global_position", "bigint"),
    ("position", "bigint"),
    ("time", "timestamp without time zone"),
    ("stream_name", "text"),
    ("type", "text"),
    ("data", "jsonb"),
    ("metadata", "jsonb"),
    ("id", "uuid"),
];

/// The whole install as one SQL script: the lock, every file, the record.
pub fn install_script() -> String {
    let mut script = format!("SELECT pg_advisory_xact_lock({INSTALL_LOCK_KEY});\n");
    for (path, sql) in FILES {
        script.push_str(&format!("-- sql/{path}\n{sql}\n"));
    }
    script.push_str(&format!(
        "INSERT INTO message_store.ebb_schema_versions (version, message_db_version)\n\
         SELECT '{EBB_SCHEMA_VERSION}', '{MESSAGE_DB_VERSION}'\n\
         WHERE NOT EXISTS (SELECT 1 FROM message_store.ebb_schema_versions\n\
         WHERE version = '{EBB_SCHEMA_VERSION}' AND message_db_version = '{MESSAGE_DB_VERSION}');\n"
    ));
    script
}

/// What a database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledVersion {
    /// What `message_store_version()` returns.
    pub message_db: String,
    /// The ebb schema version last recorded; `None` for a store installed
    /// by other tools (Message DB's own scripts).
    pub ebb: Option<String>,
}

/// Installs or upgrades the schema in the client's database and returns
/// what is then installed.
///
/// Refuses, with [`Error::SchemaConflict`] and before changing anything, a
/// database whose `message_store.messages` table has other columns, or
/// whose Message DB version is not 1.3.
pub async fn install(client: &Client) -> Result<InstalledVersion, Error> {
    check_compatible(client).await?;
    client
        .batch_execute(&install_script())
        .await
        .map_err(classify)?;
    installed_version(client)
        .await?
        .ok_or_else(|| Error::SchemaConflict("the schema is missing right after install".into()))
}

/// What is installed, or `None` when the database has no message store.
pub async fn installed_version(client: &Client) -> Result<Option<InstalledVersion>, Error> {
    let row = client
        .query_typed_one(
            "SELECT to_regproc('message_store.message_store_version') IS NOT NULL,
                    to_regclass('message_store.ebb_schema_versions') IS NOT NULL",
            &[],
        )
        .await
        .map_err(classify)?;
    let (has_store, has_record): (bool, bool) = (row.get(0), row.get(1));
    if !has_store {
        return Ok(None);
    }
    let message_db: String = client
        .query_typed_one("SELECT message_store.message_store_version()::text", &[])
        .await
        .map_err(classify)?
        .get(0);
    let ebb = if has_record {
        client
            .query_typed_opt(
                "SELECT version FROM message_store.ebb_schema_versions
                 ORDER BY installed_at DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(classify)?
            .map(|row| row.get(0))
    } else {
        None
    };
    Ok(Some(InstalledVersion { message_db, ebb }))
}

async fn check_compatible(client: &Client) -> Result<(), Error> {
    let columns = client
        .query_typed(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a
             WHERE a.attrelid = to_regclass('message_store.messages')
               AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[],
        )
        .await
        .map_err(classify)?;
    if !columns.is_empty() {
        let found: Vec<(String, String)> = columns.iter().map(|r| (r.get(0), r.get(1))).collect();
        let expected: Vec<(String, String)> = MESSAGES_COLUMNS
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        if found != expected {
            let describe = |cols: &[(String, String)]| {
                cols.iter()
                    .map(|(n, t)| format!("{n} {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Error::SchemaConflict(format!(
                "message_store.messages has columns ({}), expected ({})",
                describe(&found),
                describe(&expected)
            )));
        }
    }
    if let Some(installed) = installed_version(client).await? {
        if !installed.message_db.starts_with("1.3.") {
            return Err(Error::SchemaConflict(format!(
                "the database holds Message DB {}; ebb installs over {MESSAGE_DB_VERSION}-compatible \
                 stores only (upgrade it with Message DB's update scripts first)",
                installed.message_db
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_files_follow_the_install_order_file() {
        let order: Vec<&str> = INSTALL_ORDER
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        let embedded: Vec<&str> = FILES.iter().map(|(path, _)| *path).collect();
        assert_eq!(embedded, order);
    }

    #[test]
    fn every_sql_file_is_installed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut on_disk = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            if dir.is_dir() {
                for file in std::fs::read_dir(&dir).unwrap() {
                    let file = file.unwrap().path();
                    if file.extension().is_some_and(|e| e == "sql") {
                        on_disk.push(file.strip_prefix(&root).unwrap().display().to_string());
                    }
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
