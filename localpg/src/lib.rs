//! Start a private, throwaway PostgreSQL cluster from the system's server
//! binaries, for tests and demos.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // One harness per test process, on DATABASE_URL's server or a private
//! // cluster.
//! let databases = ebb_localpg::TestDatabases::shared()?;
//!
//! // Each test gets its own database, cloned from a template filled once.
//! let db = databases
//!     .fresh_database("my_schema_v1", |config| async move {
//!         let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
//!         tokio::spawn(connection);
//!         client.batch_execute("CREATE TABLE t (id int)").await?;
//!         Ok(())
//!     })
//!     .await?;
//! let client = databases.connect(db.name()).await?;
//! client.execute("INSERT INTO t VALUES (1)", &[]).await?;
//!
//! // Or a cluster of one's own, stopped and removed on drop:
//! let cluster = ebb_localpg::Cluster::builder().max_connections(50).start()?;
//! let status = cluster.command("psql").args(["-c", "SELECT 1", "postgres"]).status()?;
//! # let _ = status;
//! # Ok(())
//! # }
//! ```
//!
//! How it works: the server binaries are found on `PATH` or in
//! `/usr/lib/postgresql/*/bin`; `initdb` creates a cluster in a new
//! `ebb-pg-*` directory under the temporary directory (`/tmp` when the
//! server runs as another user or `TMPDIR` is too long for a socket path),
//! and the server listens only on a Unix socket in that directory, so
//! concurrent clusters never collide. When the process is
//! root the server runs as the `postgres` user (or `nobody`), since
//! PostgreSQL refuses root. A watchdog shell stops the server and removes
//! the directory when the [`Cluster`] is dropped or the process ends in any
//! way, including a panic or `SIGKILL`.
//!
//! For failover tests a cluster can be a streaming standby of another
//! ([`ClusterBuilder::standby_of`], copied with `pg_basebackup`), be made
//! its primary's synchronous standby ([`Cluster::make_synchronous`]) and be
//! promoted ([`Cluster::promote`]) once the primary is stopped:
//!
//! ```no_run
//! # fn demo() -> Result<(), ebb_localpg::Error> {
//! use ebb_localpg::{Cluster, ShutdownMode};
//!
//! // Commits wait until the synchronous standby has applied them.
//! let mut primary = Cluster::builder()
//!     .setting("synchronous_commit", "remote_apply")
//!     .start()?;
//! let standby = Cluster::builder().standby_of(&primary).start()?;
//! primary.make_synchronous(&standby)?;
//! // ... commit on the primary, read on the standby ...
//! primary.stop_server(ShutdownMode::Immediate)?;
//! standby.promote()?;
//! assert!(!standby.is_in_recovery()?);
//! # Ok(())
//! # }
//! ```
//!
//! For tests of clients behind a connection pooler, a [`PgBouncer`] can
//! run in front of a cluster (Debian's `pgbouncer` package; it listens on
//! `127.0.0.1` on a free port and reaches the cluster over its Unix
//! socket), in [`PoolMode::Transaction`] or [`PoolMode::Session`], and is
//! stopped and removed on drop or when the process ends, like a cluster:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use ebb_localpg::{Cluster, PgBouncer, PoolMode};
//!
//! let cluster = Cluster::start()?;
//! let bouncer = PgBouncer::builder(&cluster)
//!     .pool_mode(PoolMode::Transaction)
//!     .pool_size(2)
//!     .start()?;
//! // host=127.0.0.1 port=... user=postgres dbname=postgres
//! let url = bouncer.connection_string("postgres");
//! # let _ = url;
//! # Ok(())
//! # }
//! ```
//!
//! It is configured with `ignore_startup_parameters =
//! extra_float_digits,options`, without which PgBouncer 1.18 refuses the
//! `options` startup parameter ebb sends (`-c search_path=...`): a
//! PgBouncer of one's own in front of ebb needs the same; see
//! [`PgBouncer`].
//!
//! Modules:
//! - `cluster`: [`Cluster`], [`ClusterBuilder`], [`ShutdownMode`] and the
//!   watchdog.
//! - `replication`: standbys made synchronous
//!   ([`Cluster::make_synchronous`]) and promoted ([`Cluster::promote`]).
//! - `harness`: the per-test database harness: [`TestDatabases`] (one
//!   per process with [`TestDatabases::shared`], templates,
//!   `DATABASE_URL`) and [`TestDatabase`], one test's database.
//! - `pgbouncer`: [`PgBouncer`], [`PgBouncerBuilder`], [`PoolMode`] and
//!   PgBouncer's watchdog.
//! - `bin_dir`: [`find_bin_dir`].
//! - `user`: choosing the account the server runs as.
//! - [`conninfo`]: a configuration as a libpq `key=value` connection
//!   string, with or without the password.
//! - `ident`: [`quote_ident`] for SQL identifiers.
//! - `error`: [`Error`].
//!
//! Requires PostgreSQL 13 or newer (`DROP DATABASE ... WITH (FORCE)`).

mod bin_dir;
mod cluster;
pub mod conninfo;
mod error;
mod harness;
mod ident;
mod pgbouncer;
mod replication;
mod user;

pub use bin_dir::find_bin_dir;
pub use cluster::{Cluster, ClusterBuilder, ServerTls, ShutdownMode};
pub use error::Error;
pub use harness::{TestDatabase, TestDatabases};
pub use pgbouncer::{PgBouncer, PgBouncerBuilder, PoolMode};

pub use ident::quote_ident;
/// The driver version this crate's API uses, to avoid version skew.
pub use tokio_postgres;
