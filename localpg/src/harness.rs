//! The per-test database harness: [`TestDatabases`] hands each test a
//! fresh database, cloned from a template filled once, on the server the
//! tests run against.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::{Cluster, Error, conninfo, quote_ident};

/// The database management statements connect to; it exists on every
/// server, and advisory locks are per database, so all processes must agree
/// on it.
const ADMIN_DB: &str = "postgres";

/// Names passed to PostgreSQL are cut at 63 bytes; we append suffixes.
const MAX_NAME: usize = 50;

/// The setup function's error type.
type SetupError = Box<dyn std::error::Error + Send + Sync>;

/// The per-test database harness: a fresh database for each test
/// ([`fresh_database`](Self::fresh_database)), cloned from a template
/// filled once, on `DATABASE_URL`'s server if set, else on a private
/// [`Cluster`].
///
/// Get the per-process one, started on first use and shared by all the
/// process's tests, with [`TestDatabases::shared`]. Connections made here
/// use no TLS, so a `DATABASE_URL` with `sslmode=require` is refused.
#[derive(Debug)]
pub struct TestDatabases {
    /// The cluster we own, or the configuration of someone else's server.
    backend: Backend,
    /// Per template: set once this process knows it is complete, so only the
    /// first test per template and process pays for checking. A tokio
    /// `OnceCell` holds no runtime resources, so it is safe to share between
    /// the separate runtimes of `#[tokio::test]`s.
    templates: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<()>>>>,
}

#[derive(Debug)]
enum Backend {
    /// A private cluster; it disappears with the process, databases and all.
    Cluster(Cluster),
    /// A server named by `DATABASE_URL`; test databases are dropped after use.
    External(tokio_postgres::Config),
}

impl TestDatabases {
    /// The per-process harness, started on first use.
    ///
    /// Uses `DATABASE_URL` when it is set (a `postgres://` URL or a
    /// `key=value` string), otherwise starts a private [`Cluster`]. The
    /// cluster is never dropped: the watchdog stops and removes it when the
    /// process exits. A start failure is remembered and returned, as
    /// [`Error::Shared`], by every call.
    pub fn shared() -> Result<&'static TestDatabases, Error> {
        static SHARED: OnceLock<Result<TestDatabases, Arc<Error>>> = OnceLock::new();
        match SHARED.get_or_init(|| TestDatabases::from_env().map_err(Arc::new)) {
            Ok(databases) => Ok(databases),
            Err(err) => Err(Error::Shared(Arc::clone(err))),
        }
    }

    /// Test databases on `DATABASE_URL`'s server if the variable is set
    /// and not empty, else on a newly started private cluster.
    pub fn from_env() -> Result<TestDatabases, Error> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let config = url.trim().parse().map_err(Error::InvalidDatabaseUrl)?;
                tracing::info!("tests use the server named by DATABASE_URL");
                Ok(TestDatabases::from_config(config))
            }
            _ => Ok(TestDatabases::from_cluster(Cluster::start()?)),
        }
    }

    /// Test databases on a cluster started by the caller (e.g. with
    /// options).
    pub fn from_cluster(cluster: Cluster) -> TestDatabases {
        TestDatabases::new(Backend::Cluster(cluster))
    }

    /// Test databases on an existing server; the database in `config` is
    /// ignored. The user needs `CREATEDB`.
    pub fn from_config(config: tokio_postgres::Config) -> TestDatabases {
        TestDatabases::new(Backend::External(config))
    }

    fn new(backend: Backend) -> TestDatabases {
        TestDatabases {
            backend,
            templates: Mutex::default(),
        }
    }

    /// Connection settings for database `dbname` on its server.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        match &self.backend {
            Backend::Cluster(cluster) => cluster.config(dbname),
            Backend::External(config) => {
                let mut config = config.clone();
                config.dbname(dbname);
                config
            }
        }
    }

    /// A libpq `key=value` connection string for `dbname` on its server:
    /// the [`config`](Self::config) rendered by
    /// [`conninfo::connection_string`], password included.
    pub fn connection_string(&self, dbname: &str) -> String {
        conninfo::connection_string(&self.config(dbname))
    }

    /// The private cluster, or `None` when `DATABASE_URL` is used.
    pub fn cluster(&self) -> Option<&Cluster> {
        match &self.backend {
            Backend::Cluster(cluster) => Some(cluster),
            Backend::External(_) => None,
        }
    }

    /// Connects to `dbname` without TLS and spawns the connection task on
    /// the current tokio runtime, so the client lives only as long as that
    /// runtime (one test).
    pub async fn connect(&self, dbname: &str) -> Result<Client, Error> {
        connect(self.config(dbname)).await
    }

    /// A new, empty-but-for-the-template database for one test.
    ///
    /// The first call for `template` on its server fills it by calling
    /// `setup` with the settings of a new database made from `template0`;
    /// later calls, also from other processes using the same server, reuse
    /// it. The template counts as complete only once `setup` has succeeded
    /// (it is built under another name and renamed). Creation is serialised
    /// across processes with an advisory lock.
    ///
    /// The test database is named `ebb_test_<pid>_<n>_<random>`. On a
    /// server from `DATABASE_URL` it is dropped when the [`TestDatabase`]
    /// is; a private cluster disappears with the process anyway.
    ///
    /// A template whose setup changed must get a new name (e.g. with a
    /// version suffix): an existing template is never rebuilt.
    pub async fn fresh_database<F, Fut>(
        &self,
        template: &str,
        setup: F,
    ) -> Result<TestDatabase, Error>
    where
        F: FnOnce(tokio_postgres::Config) -> Fut,
        Fut: Future<Output = Result<(), SetupError>>,
    {
        check_name(template)?;
        let cell = {
            let mut templates = self
                .templates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(templates.entry(template.to_owned()).or_default())
        };
        cell.get_or_try_init(|| self.ensure_template(template, setup))
            .await?;

        let admin = self.connect(ADMIN_DB).await?;
        let name = unique_name();
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(template)
        );
        retry_in_use(|| admin.batch_execute(&sql))
            .await
            .map_err(|e| {
                Error::query(
                    format!("create database `{name}` from template `{template}`"),
                    e,
                )
            })?;
        Ok(TestDatabase {
            config: self.config(&name),
            connection_string: self.connection_string(&name),
            drop_via: match &self.backend {
                Backend::Cluster(_) => None,
                Backend::External(_) => Some(self.config(ADMIN_DB)),
            },
            name,
        })
    }

    /// Makes sure `template` exists and is complete, building it if not.
    async fn ensure_template<F, Fut>(&self, template: &str, setup: F) -> Result<(), Error>
    where
        F: FnOnce(tokio_postgres::Config) -> Fut,
        Fut: Future<Output = Result<(), SetupError>>,
    {
        let admin = self.connect(ADMIN_DB).await?;
        let key = lock_key(template);
        admin
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| Error::query("take the template advisory lock", e))?;
        let result = self.build_template(&admin, template, setup).await;
        // Closing the session would release the lock too; unlock anyway so
        // waiting processes go on at once.
        let _ = admin
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await;
        result
    }

    async fn build_template<F, Fut>(
        &self,
        admin: &Client,
        template: &str,
        setup: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(tokio_postgres::Config) -> Fut,
        Fut: Future<Output = Result<(), SetupError>>,
    {
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
            .await
            .map_err(|e| Error::query(format!("look for template `{template}`"), e))?
            .is_some();
        if exists {
            return Ok(());
        }
        let building = format!("{template}_building");
        let (t, b) = (quote_ident(template), quote_ident(&building));
        // Left over from a setup that failed or a process that died.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {b} WITH (FORCE)"))
            .await
            .map_err(|e| Error::query(format!("drop leftover database `{building}`"), e))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {b} TEMPLATE template0"))
            .await
            .map_err(|e| Error::query(format!("create database `{building}`"), e))?;
        tracing::debug!(template, "filling template database");
        setup(self.config(&building))
            .await
            .map_err(|source| Error::TemplateSetup {
                template: template.to_owned(),
                source,
            })?;
        // The setup's connections close asynchronously; one still open
        // blocks the rename, so end them.
        let rename = format!("ALTER DATABASE {b} RENAME TO {t}");
        retry_in_use(|| async {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&building],
                )
                .await?;
            admin.batch_execute(&rename).await
        })
        .await
        .map_err(|e| Error::query(format!("rename `{building}` to `{template}`"), e))?;
        admin
            .batch_execute(&format!("ALTER DATABASE {t} IS_TEMPLATE true"))
            .await
            .map_err(|e| Error::query(format!("mark `{template}` as a template"), e))?;
        Ok(())
    }
}

/// One test's database; see [`TestDatabases::fresh_database`].
#[derive(Debug)]
pub struct TestDatabase {
    /// Unique per test, also across processes sharing a server.
    name: String,
    /// Settings to connect to it.
    config: tokio_postgres::Config,
    /// The same for tools and `DATABASE_URL`.
    connection_string: String,
    /// On a server we do not own: where to connect to drop the database.
    drop_via: Option<tokio_postgres::Config>,
}

impl TestDatabase {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Settings to connect to it (e.g. for a pool).
    pub fn config(&self) -> tokio_postgres::Config {
        self.config.clone()
    }

    /// A libpq `key=value` connection string for it.
    pub fn connection_string(&self) -> String {
        self.connection_string.clone()
    }
}

impl Drop for TestDatabase {
    /// On a `DATABASE_URL` server, drops the database (best effort). It
    /// runs on its own thread and runtime because drop may happen inside,
    /// or after the end of, the test's runtime; we wait for it so the last
    /// test's database is gone before the process exits.
    fn drop(&mut self) {
        let Some(mut admin) = self.drop_via.take() else {
            return;
        };
        if admin.get_connect_timeout().is_none() {
            admin.connect_timeout(Duration::from_secs(5));
        }
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let client = connect(admin).await.map_err(|e| e.to_string())?;
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        });
        if let Ok(Err(error)) = dropper.join() {
            tracing::warn!(database = %name, %error, "could not drop test database");
        }
    }
}

/// Connects without TLS and spawns the connection task on the current
/// runtime.
pub(crate) async fn connect(config: tokio_postgres::Config) -> Result<Client, Error> {
    let dbname = config.get_dbname().unwrap_or_default().to_owned();
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|source| Error::Connect { dbname, source })?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "test database connection ended");
        }
    });
    Ok(client)
}

/// Runs `op` until it stops failing with "database is being accessed by
/// other users" (SQLSTATE 55006), for up to about ten seconds: a template
/// or a database being renamed must have no sessions, and closing ones
/// linger briefly.
async fn retry_in_use<F, Fut, T>(mut op: F) -> Result<T, tokio_postgres::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tokio_postgres::Error>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && attempt < 100 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => return result,
        }
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_NAME {
        "longer than 50 bytes"
    } else if name.contains('\0') {
        "contains NUL"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// `ebb_test_<pid>_<counter>_<random>`: the pid and counter keep names
/// unique within a machine, the random part across machines sharing a
/// server.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded randomly per process; no rand crate needed.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("ebb_test_{}_{n}_{:08x}", std::process::id(), random as u32)
}

/// A stable advisory lock key per template (FNV-1a), the same in every
/// process and build.
fn lock_key(template: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "ebb-localpg template:".bytes().chain(template.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        let prefix = format!("ebb_test_{}_", std::process::id());
        assert!(a.starts_with(&prefix) && a.len() <= 63, "{a}");
    }

    #[test]
    fn lock_key_is_stable() {
        // FNV-1a of "ebb-localpg template:t", worked out independently:
        // every process and build must agree on it.
        assert_eq!(lock_key("t"), 3_002_657_714_889_553_521);
        assert_ne!(lock_key("t"), lock_key("u"));
    }

    #[test]
    fn errors_and_harnesses_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Error>();
        shareable::<TestDatabases>();
        shareable::<TestDatabase>();
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(51)).is_err());
        assert!(check_name("a\0b").is_err());
        assert!(check_name(&"x".repeat(50)).is_ok());
        assert!(check_name("ebb_template_v1").is_ok());
    }
}
