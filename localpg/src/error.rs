//! The one error type of this crate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong while starting, using or stopping a
/// throwaway PostgreSQL server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No directory holding both `postgres` and `initdb` was found.
    ///
    /// Install the server binaries (Debian: `apt-get install postgresql`), put
    /// their directory on `PATH`, or set `DATABASE_URL` to use an existing
    /// server instead.
    #[error(
        "PostgreSQL server binaries (postgres, initdb) not found in {searched}; \
         install Debian's `postgresql` package (apt-get install postgresql)"
    )]
    BinariesNotFound {
        /// Where we looked, for the message.
        searched: String,
    },

    /// The process runs as root, PostgreSQL refuses to, and there is no
    /// unprivileged user to run it as.
    ///
    /// Create a `postgres` system user (`useradd --system postgres`) or run
    /// the tests as an ordinary user.
    #[error(
        "running as root, but neither a `postgres` nor a `nobody` user exists to run PostgreSQL as; \
         create one (useradd --system postgres) or run as an ordinary user"
    )]
    NoUnprivilegedUser,

    /// A file system or process operation failed (creating the temporary
    /// directory, spawning the server, ...).
    ///
    /// Usually the machine is out of resources or `/tmp` is not writable; the
    /// source says which.
    #[error("could not {action}")]
    Io {
        /// What we were doing, e.g. "create a temporary directory".
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// `initdb` (`pg_basebackup` for a standby) or `postgres` exited before
    /// the server accepted connections.
    ///
    /// The log tail in the message says why (a bad setting, no shared
    /// memory, binaries the unprivileged user may not execute, ...).
    #[error("PostgreSQL failed to start ({stage}); the end of its log ({log_path}):\n{log_tail}")]
    StartFailed {
        /// "initdb failed", "pg_basebackup failed", "postgres exited", ...
        stage: String,
        /// Where the log was (the directory is removed afterwards).
        log_path: PathBuf,
        /// The last lines of the log.
        log_tail: String,
    },

    /// The server did not become ready in time.
    ///
    /// The machine may be badly overloaded; raise
    /// [`ClusterBuilder::start_timeout`](crate::ClusterBuilder::start_timeout)
    /// or read the log tail.
    #[error(
        "PostgreSQL did not become ready within {waited:?}; the end of its log ({log_path}):\n{log_tail}"
    )]
    StartTimeout {
        /// How long we waited.
        waited: Duration,
        /// Where the log was (the directory is removed afterwards).
        log_path: PathBuf,
        /// The last lines of the log.
        log_tail: String,
    },

    /// The server or its directory was still there after stopping.
    ///
    /// Nothing to do for tests; a leftover `ebb-pg-*` directory under the
    /// temporary directory may be removed by hand.
    #[error("PostgreSQL in {dir} did not stop and clean up within {waited:?}")]
    StopTimeout {
        /// The cluster's directory.
        dir: PathBuf,
        /// How long we waited.
        waited: Duration,
    },

    /// A replication call ([`Cluster::make_synchronous`],
    /// [`Cluster::promote`]) was given a cluster in the wrong role: a
    /// standby of another primary, or none, or a primary that is itself in
    /// recovery.
    ///
    /// Start standbys with
    /// [`ClusterBuilder::standby_of`](crate::ClusterBuilder::standby_of) and
    /// pass them to their own primary.
    ///
    /// [`Cluster::make_synchronous`]: crate::Cluster::make_synchronous
    /// [`Cluster::promote`]: crate::Cluster::promote
    #[error("the cluster in {dir} is not {expected}")]
    WrongRole {
        /// The cluster in the wrong role.
        dir: PathBuf,
        /// What it should have been, e.g. "a standby of the cluster in
        /// /tmp/ebb-pg-x".
        expected: String,
    },

    /// [`Cluster::make_synchronous`](crate::Cluster::make_synchronous) was
    /// called on a primary whose `synchronous_commit` does not make commits
    /// wait for a standby, so the standby would not be synchronous in
    /// effect.
    ///
    /// Start the primary with `.setting("synchronous_commit",
    /// "remote_apply")` (or `"on"`, `"remote_write"`); clusters without
    /// [`fsync`](crate::ClusterBuilder::fsync) start with `off`, set on the
    /// command line, which `ALTER SYSTEM` cannot override.
    #[error(
        "the primary's synchronous_commit is `{setting}`, so its commits would not wait for \
         a synchronous standby; start it with .setting(\"synchronous_commit\", \"remote_apply\") \
         (or \"on\", \"remote_write\")"
    )]
    AsynchronousCommit {
        /// The primary's `synchronous_commit`.
        setting: String,
    },

    /// A replication call waited in vain for the server to reach a state:
    /// a standby to stream from or be synchronous with its primary, or a
    /// promotion to finish.
    ///
    /// Read the servers' logs (in their directories); the machine may be
    /// badly overloaded, then raise
    /// [`ClusterBuilder::start_timeout`](crate::ClusterBuilder::start_timeout).
    #[error("gave up after {waited:?} waiting until {what}")]
    WaitTimeout {
        /// The awaited condition, e.g. "standby `x` is synchronous".
        what: String,
        /// How long we waited.
        waited: Duration,
    },

    /// No `pgbouncer` program was found, or the one given to
    /// [`PgBouncerBuilder::bin`](crate::PgBouncerBuilder::bin) is not an
    /// executable file.
    ///
    /// Install it (Debian: `apt-get install pgbouncer`, which puts it in
    /// `/usr/sbin`), or pass its path to `PgBouncerBuilder::bin`.
    #[error(
        "pgbouncer not found in {searched}; install Debian's `pgbouncer` package \
         (apt-get install pgbouncer) or pass its path to PgBouncerBuilder::bin"
    )]
    PgBouncerNotFound {
        /// Where we looked, for the message.
        searched: String,
    },

    /// A setting given to
    /// [`PgBouncerBuilder::setting`](crate::PgBouncerBuilder::setting) (or
    /// the pool size) cannot be used: a malformed name or value, or one
    /// the builder sets itself (where PgBouncer listens, how clients
    /// authenticate, where it logs, the pool mode and size).
    ///
    /// The reason names the builder method to use instead, if any.
    #[error("PgBouncer setting `{name}` refused: {reason}")]
    InvalidPgBouncerSetting {
        /// The setting's name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },

    /// PgBouncer exited before it relayed a query, or did not relay one in
    /// time (see [`PgBouncerBuilder::start`](crate::PgBouncerBuilder::start)).
    ///
    /// The log tail in the message says why: a setting PgBouncer does not
    /// know, a program the unprivileged user may not execute, the cluster
    /// behind it being down, ...
    #[error("PgBouncer failed to start ({reason}); the end of its log ({log_path}):\n{log_tail}")]
    PgBouncerStartFailed {
        /// What happened, e.g. "pgbouncer exited" or "no query relayed
        /// within 30s; last attempt: ...".
        reason: String,
        /// Where the log was (the directory is removed afterwards).
        log_path: PathBuf,
        /// The last lines of the log.
        log_tail: String,
    },

    /// PgBouncer or its directory was still there after stopping it.
    ///
    /// Nothing to do for tests; a leftover `ebb-pgb-*` directory under the
    /// temporary directory may be removed by hand.
    #[error("PgBouncer in {dir} did not stop and clean up within {waited:?}")]
    PgBouncerStopTimeout {
        /// PgBouncer's directory.
        dir: PathBuf,
        /// How long we waited.
        waited: Duration,
    },

    /// `DATABASE_URL` is set but is neither a `postgres://` URL nor a
    /// `key=value` connection string.
    ///
    /// Fix or unset the variable.
    #[error("DATABASE_URL is not a valid PostgreSQL connection string")]
    InvalidDatabaseUrl(#[source] tokio_postgres::Error),

    /// Connecting to the server failed.
    ///
    /// With `DATABASE_URL`, check that the server is up and the credentials
    /// are right; with a private cluster this is a bug.
    #[error("could not connect to database `{dbname}`")]
    Connect {
        /// The database we tried.
        dbname: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A statement issued while managing test databases failed.
    ///
    /// With `DATABASE_URL`, the user probably lacks `CREATEDB`.
    #[error("could not {action}")]
    Query {
        /// What we were doing, e.g. "create database `x`".
        action: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The caller's setup function failed while filling a template database.
    ///
    /// The template is not marked ready; the next test tries again.
    #[error("setting up template database `{template}` failed")]
    TemplateSetup {
        /// The template's name.
        template: String,
        /// The setup function's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A database name was given that we cannot use.
    ///
    /// Use at most 50 bytes (PostgreSQL truncates names at 63 and we add
    /// suffixes).
    #[error("invalid database name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The per-process harness failed to start earlier; every call of
    /// [`TestDatabases::shared`](crate::TestDatabases::shared) reports that
    /// same error.
    #[error(transparent)]
    Shared(Arc<Error>),
}

impl Error {
    /// Whether a program a start needs is missing: the PostgreSQL server
    /// binaries ([`Error::BinariesNotFound`], possibly behind an
    /// [`Error::Shared`]) or `pgbouncer` ([`Error::PgBouncerNotFound`]),
    /// e.g. to skip tests on a machine without them.
    pub fn is_binaries_not_found(&self) -> bool {
        match self {
            Error::BinariesNotFound { .. } | Error::PgBouncerNotFound { .. } => true,
            Error::Shared(inner) => inner.is_binaries_not_found(),
            _ => false,
        }
    }

    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn query(action: impl Into<String>, source: tokio_postgres::Error) -> Error {
        Error::Query {
            action: action.into(),
            source,
        }
    }
}
