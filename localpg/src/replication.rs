//! Streaming replication between private clusters, for failover tests:
//! making a standby synchronous, promoting it, and asking a cluster whether
//! it is a standby. Standbys themselves are started with
//! [`ClusterBuilder::standby_of`](crate::ClusterBuilder::standby_of).

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::harness::connect;
use crate::{Cluster, Error};

/// How often the waits below look again.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The values of `synchronous_commit` with which a commit waits for the
/// synchronous standby: until it has written (`remote_write`), flushed
/// (`on`) or applied (`remote_apply`) the commit.
const WAITING_COMMITS: [&str; 3] = ["remote_write", "on", "remote_apply"];

impl Cluster {
    /// Makes `standby`, a [standby of this cluster](crate::ClusterBuilder::standby_of),
    /// its synchronous standby, and waits until it is one: from then on a
    /// commit on this cluster returns only once `standby` has the commit
    /// too (written, flushed or applied, as the primary's
    /// `synchronous_commit` says).
    ///
    /// The primary must be started with a `synchronous_commit` that waits
    /// for standbys: `on` (the standby has flushed the commit),
    /// `remote_write`, or `remote_apply` (the standby has applied it, so a
    /// read there right after the commit sees it; the one to choose for
    /// such tests), e.g.
    /// `Cluster::builder().setting("synchronous_commit", "remote_apply")`.
    /// Clusters start with `off` unless [`fsync`](crate::ClusterBuilder::fsync)
    /// is on, and a setting on the server's command line beats
    /// `ALTER SYSTEM`, so it cannot be changed here: with `off` or `local`
    /// commits would not wait, and this refuses with
    /// [`Error::AsynchronousCommit`] rather than pretend.
    ///
    /// How: waits until `standby` streams from this cluster (in
    /// `pg_stat_replication`), sets `synchronous_standby_names` to its
    /// [name](Self::standby_name) alone (`ALTER SYSTEM`, replacing any
    /// earlier synchronous standby, then `pg_reload_conf()`), waits until
    /// `pg_stat_replication` shows it with `sync_state = 'sync'`, and runs a
    /// `CHECKPOINT`, after which the checkpointer, which tells committing
    /// sessions to wait, has read the new setting too. Each wait lasts at
    /// most this cluster's [start timeout](crate::ClusterBuilder::start_timeout).
    /// While the standby is synchronous, commits on this cluster wait for it
    /// for ever if it stops or goes away (until the session is cancelled).
    ///
    /// Blocking, like [`stop_server`](Self::stop_server); it runs its
    /// queries on a thread and runtime of its own, so it may be called from
    /// inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// - [`Error::WrongRole`]: `standby` is not a standby of this cluster,
    ///   or this cluster is itself in recovery (a standby);
    /// - [`Error::AsynchronousCommit`]: this cluster's `synchronous_commit`
    ///   does not wait for standbys (nothing is changed);
    /// - [`Error::WaitTimeout`]: `standby` did not stream from this cluster
    ///   (nothing is changed), or did not become synchronous (the setting
    ///   is reset);
    /// - [`Error::Connect`], [`Error::Query`]: the server is down or a
    ///   statement failed.
    pub fn make_synchronous(&self, standby: &Cluster) -> Result<(), Error> {
        let name = match &standby.standby {
            Some(of) if of.primary_dir == self.socket_dir() => of.name.clone(),
            _ => {
                return Err(Error::WrongRole {
                    dir: standby.socket_dir().to_path_buf(),
                    expected: format!(
                        "a standby of the cluster in {} (start it with ClusterBuilder::standby_of)",
                        self.socket_dir().display()
                    ),
                });
            }
        };
        let timeout = self.start_timeout;
        block_on(async {
            let client = self.admin_client().await?;
            let row = client
                .query_one(
                    "SELECT current_setting('synchronous_commit'), pg_is_in_recovery()",
                    &[],
                )
                .await
                .map_err(|e| Error::query("read the primary's synchronous_commit", e))?;
            let (commit, in_recovery): (String, bool) = (row.get(0), row.get(1));
            if in_recovery {
                return Err(Error::WrongRole {
                    dir: self.socket_dir().to_path_buf(),
                    expected: "a primary (it is in recovery, a standby itself)".to_owned(),
                });
            }
            if !WAITING_COMMITS.contains(&commit.as_str()) {
                return Err(Error::AsynchronousCommit { setting: commit });
            }

            wait_for_row(
                &client,
                "SELECT 1 FROM pg_stat_replication \
                 WHERE application_name = $1 AND state = 'streaming'",
                &name,
                timeout,
                &format!(
                    "standby `{name}` streams from the primary in {}",
                    self.socket_dir().display()
                ),
            )
            .await?;

            // ALTER SYSTEM takes no parameters; the name is ours, of
            // letters, digits and underscores, so it needs no escaping, and
            // double quotes keep it exact in the list. It runs as a
            // statement of its own: ALTER SYSTEM refuses the implicit
            // transaction of several.
            client
                .batch_execute(&format!(
                    "ALTER SYSTEM SET synchronous_standby_names = '\"{name}\"'"
                ))
                .await
                .map_err(|e| Error::query("set synchronous_standby_names", e))?;
            reload(&client).await?;
            let synchronous = wait_for_row(
                &client,
                "SELECT 1 FROM pg_stat_replication \
                 WHERE application_name = $1 AND sync_state = 'sync'",
                &name,
                timeout,
                &format!("standby `{name}` is synchronous (pg_stat_replication.sync_state)"),
            )
            .await;
            if let Err(err) = synchronous {
                // Otherwise every later commit would wait for it.
                if client
                    .batch_execute("ALTER SYSTEM RESET synchronous_standby_names")
                    .await
                    .is_ok()
                {
                    let _ = reload(&client).await;
                }
                return Err(err);
            }
            // Committing sessions wait only once the checkpointer has read
            // the setting, which it does first thing when asked for a
            // checkpoint (it was signalled along with our session, which
            // has read it).
            client
                .batch_execute("CHECKPOINT")
                .await
                .map_err(|e| Error::query("run a checkpoint on the primary", e))?;
            tracing::debug!(standby = %name, "standby is synchronous");
            Ok(())
        })
    }

    /// Promotes this standby to a primary and waits until it accepts
    /// writes (`pg_is_in_recovery()` is false), as after a failover: it
    /// stops following its primary, which may be gone (e.g. stopped with
    /// [`ShutdownMode::Immediate`](crate::ShutdownMode::Immediate)), and
    /// keeps everything it had received and applied. Does nothing when it
    /// was promoted already.
    ///
    /// Runs `SELECT pg_promote(true, <seconds>)`, waiting at most the
    /// cluster's [start timeout](crate::ClusterBuilder::start_timeout).
    /// The promoted cluster has no synchronous standby of its own. Blocking,
    /// like [`make_synchronous`](Self::make_synchronous).
    ///
    /// # Errors
    ///
    /// - [`Error::WrongRole`]: the cluster was not started as a standby
    ///   ([`ClusterBuilder::standby_of`](crate::ClusterBuilder::standby_of));
    /// - [`Error::WaitTimeout`]: the promotion did not finish in time;
    /// - [`Error::Connect`], [`Error::Query`]: the server is down or a
    ///   statement failed.
    pub fn promote(&self) -> Result<(), Error> {
        if self.standby.is_none() {
            return Err(Error::WrongRole {
                dir: self.socket_dir().to_path_buf(),
                expected: "a standby (start it with ClusterBuilder::standby_of)".to_owned(),
            });
        }
        let timeout = self.start_timeout;
        let seconds = i32::try_from(timeout.as_secs().max(1)).unwrap_or(i32::MAX);
        block_on(async {
            let client = self.admin_client().await?;
            if !in_recovery(&client).await? {
                return Ok(());
            }
            let started = Instant::now();
            let promoted: bool = client
                .query_one("SELECT pg_promote(true, $1)", &[&seconds])
                .await
                .map_err(|e| Error::query("promote the standby (pg_promote)", e))?
                .get(0);
            if !promoted || in_recovery(&client).await? {
                return Err(Error::WaitTimeout {
                    what: format!("the standby in {} is promoted", self.socket_dir().display()),
                    waited: started.elapsed(),
                });
            }
            tracing::debug!(dir = %self.socket_dir().display(), "standby promoted");
            Ok(())
        })
    }

    /// Whether the server is in recovery, that is, a standby not promoted
    /// (`pg_is_in_recovery()`): it follows a primary and takes read-only
    /// transactions only.
    ///
    /// Blocking, like [`make_synchronous`](Self::make_synchronous).
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] or [`Error::Query`] when the server is down or
    /// does not answer.
    pub fn is_in_recovery(&self) -> Result<bool, Error> {
        block_on(async { in_recovery(&self.admin_client().await?).await })
    }

    /// The name this cluster streams from its primary under, when it was
    /// started as a [standby](crate::ClusterBuilder::standby_of) (also
    /// after a promotion): its `application_name` in the primary's
    /// `pg_stat_replication` and in `synchronous_standby_names`, and its
    /// `cluster_name`. `None` for a cluster made by `initdb`.
    pub fn standby_name(&self) -> Option<&str> {
        self.standby.as_ref().map(|standby| standby.name.as_str())
    }

    /// A connection to the `postgres` database, on the current runtime.
    async fn admin_client(&self) -> Result<Client, Error> {
        let mut config = self.config("postgres");
        config.connect_timeout(self.start_timeout);
        connect(config).await
    }
}

/// Tells the server to read its configuration again (`pg_reload_conf()`),
/// which it does in the background.
async fn reload(client: &Client) -> Result<(), Error> {
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .map_err(|e| Error::query("reload the configuration (pg_reload_conf)", e))
}

async fn in_recovery(client: &Client) -> Result<bool, Error> {
    Ok(client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .map_err(|e| Error::query("ask whether the server is in recovery", e))?
        .get(0))
}

/// Runs `sql` with `name` as `$1` every [`POLL_INTERVAL`] until it returns
/// a row, for at most `timeout`; `what` names the awaited condition in the
/// error.
async fn wait_for_row(
    client: &Client,
    sql: &str,
    name: &str,
    timeout: Duration,
    what: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let found = client
            .query_opt(sql, &[&name])
            .await
            .map_err(|e| Error::query(format!("check whether {what}"), e))?;
        if found.is_some() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(Error::WaitTimeout {
                what: what.to_owned(),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Runs `future` on a runtime of its own, on a thread of its own, and
/// blocks until it is done: the calls above (and
/// [`PgBouncerBuilder::start`](crate::PgBouncerBuilder::start)) are
/// blocking like the rest of [`Cluster`], and must work inside a tokio
/// runtime, where another runtime cannot be entered, as well as outside
/// any.
pub(crate) fn block_on<T, F>(future: F) -> Result<T, Error>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("start a tokio runtime for statements to the server", e))?;
            runtime.block_on(future)
        });
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
