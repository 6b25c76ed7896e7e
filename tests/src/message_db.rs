//! Databases installed by Message DB's own install scripts, to prove that
//! ebb works against them unchanged.
//!
//! The scripts come from the npm package `@eventide/message-db` (fetched
//! with `npm pack` on first use and kept in the temporary directory), or
//! from the directory in `EBB_MESSAGE_DB_DIR` (the package's root, holding
//! `database/install.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use ebb_localpg::TestDatabase;
use ebb_message_store::PgStore;
use tokio_postgres::config::Host;

/// The Message DB release the interoperability tests install.
pub const PACKAGE: &str = "@eventide/message-db@1.3.1";

/// The unpacked package's root, fetching it once if needed.
pub fn package_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("EBB_MESSAGE_DB_DIR") {
        return PathBuf::from(dir);
    }
    let dir = std::env::temp_dir().join("ebb-message-db-1.3.1");
    if dir.join("database/install.sh").is_file() {
        return dir;
    }
    // Unpack beside the final place and rename into it, so that test
    // binaries running at once never see a half-unpacked package.
    let staging = tempfile::Builder::new()
        .prefix("ebb-message-db-")
        .tempdir()
        .expect("a staging directory");
    let status = Command::new("npm")
        .args(["pack", PACKAGE, "--silent", "--pack-destination"])
        .arg(staging.path())
        .current_dir(staging.path())
        .status()
        .unwrap_or_else(|err| {
            panic!("could not run npm to fetch {PACKAGE} (install Node.js and npm, or set EBB_MESSAGE_DB_DIR): {err}")
        });
    assert!(status.success(), "npm pack {PACKAGE} failed: {status}");
    let tarball = std::fs::read_dir(staging.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .expect("npm pack wrote a tarball");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .current_dir(staging.path())
        .status()
        .expect("tar runs");
    assert!(status.success(), "could not unpack {}", tarball.display());
    let unpacked = staging.path().join("package");
    // A concurrent test binary may have won the race; its copy is as good.
    let _ = std::fs::rename(&unpacked, &dir);
    assert!(
        dir.join("database/install.sh").is_file(),
        "{} holds no database/install.sh",
        dir.display()
    );
    dir
}

/// Runs Message DB's `database/install.sh` against the database `config`
/// names (which must exist).
pub fn install(config: &tokio_postgres::Config) -> Result<(), String> {
    let package = package_dir();
    let mut command = Command::new("bash");
    command
        .arg(package.join("database/install.sh"))
        .env("CREATE_DATABASE", "off")
        .env("DATABASE_NAME", config.get_dbname().unwrap_or("postgres"));
    set_libpq_env(&mut command, config);
    let output = command.output().map_err(|err| err.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "Message DB's install.sh failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn set_libpq_env(command: &mut Command, config: &tokio_postgres::Config) {
    if let Some(host) = config.get_hosts().first() {
        let host = match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path_str(path),
        };
        command.env("PGHOST", host);
    }
    if let Some(port) = config.get_ports().first() {
        command.env("PGPORT", port.to_string());
    }
    if let Some(user) = config.get_user() {
        command.env("PGUSER", user);
    }
    if let Some(password) = config.get_password() {
        command.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
    }
    command.env_remove("PGDATABASE");
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A fresh database installed by Message DB's own scripts.
pub async fn database() -> TestDatabase {
    crate::test_databases()
        .fresh_database("message_db_1_3_1", |config| async move {
            tokio::task::spawn_blocking(move || install(&config))
                .await
                .map_err(|err| err.to_string())??;
            Ok(())
        })
        .await
        .expect("a fresh Message DB database")
}

/// A store over a fresh Message DB database.
pub async fn pg_store() -> (PgStore, TestDatabase) {
    let db = database().await;
    let store = crate::store_for(&db, 4);
    (store, db)
}
