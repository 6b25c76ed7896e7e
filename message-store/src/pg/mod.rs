//! The PostgreSQL store: [`PgStore`] over a connection pool, its settings
//! ([`PgStoreConfig`], with [`TlsSettings`]), the functions it is built
//! from, which also take the caller's client or transaction
//! ([`operations`]), and its wake-ups (`wakeups`: LISTEN on a connection
//! of its own).

mod call;
mod cancel;
mod client;
mod config;
mod conn_string;
pub(crate) mod connect;
mod group;
mod hosts;
pub mod operations;
mod read_ahead;
mod shared;
mod tls;
mod tls_connect;
mod wakeups;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, QueueMode, RecyclingMethod, Runtime};
use tokio_postgres::Socket;

pub use client::{StoreClient, Unnamed, Unprepared};
pub use config::{DEFAULT_MAX_CONNECTIONS, ListenConnection, PgStoreConfig};
pub(crate) use hosts::connect_failed as hosts_connect_failed;
pub use hosts::{Attempt, ConnectFailed, Refusal};
pub use tls::{RootCerts, SslMode, TlsSettings};
pub use tls_connect::{HandshakeError, TlsStream};
pub use wakeups::{LISTENER_APPLICATION_NAME, NOTIFY_CHANNEL};

use self::call::Call;
use self::shared::Shared;
use self::wakeups::Wakeups;
use crate::store::{MessageStore, MessageStream};
use crate::{
    CategoryQuery, Error, ExpectedVersion, Message, MessageData, StreamName, StreamQuery, Wakeup,
};

/// A Message DB store in PostgreSQL, over a deadpool connection pool.
///
/// Cheap to clone: clones share the pool, and the connection that listens
/// for wake-ups ([`arm_wakeup`](MessageStore::arm_wakeup)).
///
/// ```no_run
/// # async fn example() -> Result<(), ebb_message_store::Error> {
/// use ebb_message_store::{ExpectedVersion, MessageData, MessageStore, PgStore, StreamName};
/// use serde_json::json;
///
/// let store = PgStore::from_env()?;
/// let stream = StreamName::new("account", "123")?;
/// let deposited = MessageData::new("Deposited", json!({ "amount": 10 }));
/// let position = store.write(&stream, &deposited, ExpectedVersion::Any).await?;
/// # Ok(()) }
/// ```
///
/// # Calls that do not finish
///
/// Every call is bounded: waiting for a pooled connection by
/// [`wait_timeout`](PgStoreConfig::wait_timeout), opening one by
/// [`connect_timeout`](PgStoreConfig::connect_timeout), and the server's
/// answer by [`call_timeout`](PgStoreConfig::call_timeout); each ends in a
/// transient error ([`Error::is_transient`]). A call that times out, or
/// whose future the caller drops before it finishes, may leave its
/// statement running on the server; its connection does not go back to the
/// pool until the statement is cancelled and the connection answers again,
/// and is closed if that does not happen within the call timeout.
///
/// # Throughput
///
/// Every `write` is one round trip with a statement each connection has
/// prepared once (or an unnamed one, with
/// [`prepared_statements`](PgStoreConfig::prepared_statements) off). A single writer waits for each of those round trips, so
/// its speed is set by latency: a component that writes from one task (a
/// consumer, say) may run on a current-thread runtime
/// (`#[tokio::main(flavor = "current_thread")]`), where the task and its
/// connection share one thread, as `pgbench` does with one client. Many
/// concurrent writers are served best by the multi-thread runtime and a
/// pool as large as the number of writers.
#[derive(Clone, Debug)]
pub struct PgStore {
    /// Connections with the statements they have prepared: every store
    /// function uses `prepare_cached` (unless prepared statements are
    /// off), so a pooled connection plans each statement once.
    pool: Pool,
    /// The pooled connections calls share, if the configuration asks for
    /// any (see [`PgStoreConfig::pipeline_connections`]).
    shared: Option<Arc<Shared>>,
    /// The settings the pool was made from: the call timeout every call
    /// keeps, and what cancelling a statement or opening a dedicated
    /// connection needs.
    config: Arc<PgStoreConfig>,
    /// The armed categories and the listener that wakes them, shared by
    /// the clones; the listener task ends when the last clone is dropped.
    wakeups: Arc<Wakeups>,
    /// The categories whose writes are out, with the writes queued behind
    /// them (see [`PgStoreConfig::group_commit`]).
    groups: Arc<group::Groups>,
}

impl PgStore {
    /// A store for `config`. Connections are opened as calls need them,
    /// not here; settings no pool can use are refused with
    /// [`Error::InvalidConfig`], and TLS settings that cannot be used
    /// (files that cannot be read, say) with [`Error::InvalidTlsSetting`].
    pub fn new(config: PgStoreConfig) -> Result<Self, Error> {
        config.validate()?;
        config.tls.validate()?;
        if config.tls.mode != SslMode::Disable
            && !tls_connect::only_unix_sockets(&config.connection)
        {
            tls_connect::client_config(&config.tls)?;
        }
        let manager = Manager::from_connect(
            config.effective_connection(),
            connect::Connector::new(config.tls.clone()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .queue_mode(QueueMode::Lifo)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(hosts::connect_budget(
                &config.connection,
                config.connect_timeout,
            )))
            .recycle_timeout(Some(config.recycle_timeout))
            .build()
            .map_err(Error::PoolBuild)?;
        let pipelined = config.effective_pipeline_connections();
        let shared = (pipelined > 0).then(|| Arc::new(Shared::new(pipelined)));
        let config = Arc::new(config);
        Ok(Self {
            pool,
            shared,
            wakeups: Arc::new(Wakeups::new(Arc::clone(&config))),
            groups: Arc::default(),
            config,
        })
    }

    /// A store with the default settings for the database named by
    /// `DATABASE_URL`, or else by the libpq variables (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, ...). See
    /// [`PgStoreConfig::from_env`].
    pub fn from_env() -> Result<Self, Error> {
        Self::new(PgStoreConfig::from_env()?)
    }

    /// The settings the store was made with.
    pub fn config(&self) -> &PgStoreConfig {
        &self.config
    }

    /// The pool, to run your own statements or share a transaction with
    /// the [`operations`] functions.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A pooled connection, for statements and transactions of the
    /// caller's own. The store's call timeout does not apply to what the
    /// caller runs on it.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        self.pool.get().await.map_err(Error::Pool)
    }

    /// A new connection outside the pool, opened with the store's settings
    /// (search path, connect timeout, keepalives, TLS), for work that needs a
    /// connection of its own, such as `LISTEN`. The caller polls the
    /// returned connection (spawn it, or read its notifications with
    /// `poll_message`).
    pub async fn connect_dedicated(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<Socket, TlsStream<Socket>>,
        ),
        Error,
    > {
        connect_dedicated(
            &self.config,
            self.config.effective_connection(),
            &self.config.tls,
        )
        .await
    }

    /// A connection for one call of the store's own: a pooled one of its
    /// own, or a shared one.
    async fn call(&self) -> Result<Call, Error> {
        let config = Arc::clone(&self.config);
        Ok(match &self.shared {
            Some(shared) => Call::shared(
                shared.lend(&self.pool, self.config.wait_timeout).await?,
                config,
            ),
            None => Call::new(self.client().await?, config),
        })
    }

    /// A pooled connection of its own for one call, pipelining or not: a
    /// category read's batches (a consumer's 1,000 rows) neither wait
    /// behind other calls on a shared connection nor hold them up.
    async fn own_call(&self) -> Result<Call, Error> {
        Ok(Call::new(self.client().await?, Arc::clone(&self.config)))
    }
}

/// Opens `connection` (made from `config`) outside the pool, with `tls`,
/// within the connect timeout (each host's).
async fn connect_dedicated(
    config: &PgStoreConfig,
    connection: tokio_postgres::Config,
    tls: &TlsSettings,
) -> Result<tls_connect::Connected, Error> {
    let after = hosts::connect_budget(&connection, config.connect_timeout);
    match tokio::time::timeout(after, connect(&connection, tls)).await {
        Ok(connected) => connected.map_err(Error::from),
        Err(_) => Err(Error::Timeout {
            operation: "connect",
            after,
        }),
    }
}

/// Opens a connection with `connection`'s settings and TLS as `tls` says
/// (libpq's six `sslmode`s: see [`TlsSettings`]), for connections of the
/// caller's own beside a store's, such as a tool's. Over Unix sockets no
/// TLS is used. The caller polls the returned connection (spawn it).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use ebb_message_store::pg::{PgStoreConfig, connect};
///
/// let config = PgStoreConfig::from_env()?;
/// let (client, connection) = connect(&config.connection, &config.tls).await?;
/// tokio::spawn(connection);
/// client.simple_query("SELECT 1").await?;
/// # Ok(()) }
/// ```
pub async fn connect(
    connection: &tokio_postgres::Config,
    tls: &TlsSettings,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<Socket, TlsStream<Socket>>,
    ),
    tokio_postgres::Error,
> {
    tls_connect::connect(connection, tls).await
}

/// Adds `-c search_path=message_store,public` to the connection options
/// unless they already set a search path.
///
/// Message DB's own functions call each other and the `messages` table
/// without a schema prefix, so they only work for sessions whose search
/// path includes `message_store`, as every Message DB client arranges.
/// ebb's schema qualifies every name and does not need it. [`PgStore`]
/// adds it to every connection it opens.
pub fn with_store_search_path(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let options = config.get_options().unwrap_or_default().to_owned();
    if !options.contains("search_path") {
        let options = format!("{options} -c search_path=message_store,public");
        config.options(options.trim_start());
    }
    config
}

impl MessageStore for PgStore {
    async fn write(
        &self,
        stream_name: &StreamName,
        message: &MessageData,
        expected_version: ExpectedVersion,
    ) -> Result<i64, Error> {
        if self.config.group_commit && self.groups.available() {
            return group::write(self, stream_name, message, expected_version).await;
        }
        let call = self.call().await?;
        call.run(
            "write_message",
            operations::write_message(&call.statements(), stream_name, message, expected_version),
        )
        .await
    }

    async fn write_batch(
        &self,
        stream_name: &StreamName,
        messages: &[MessageData],
        expected_version: ExpectedVersion,
    ) -> Result<Option<i64>, Error> {
        let call = self.call().await?;
        call.run(
            "write_message",
            operations::write_messages(&call.statements(), stream_name, messages, expected_version),
        )
        .await
    }

    async fn get_stream_messages(
        &self,
        stream_name: &str,
        query: &StreamQuery,
    ) -> Result<Vec<Message>, Error> {
        let call = self.call().await?;
        call.run(
            "get_stream_messages",
            operations::get_stream_messages(&call.statements(), stream_name, query),
        )
        .await
    }

    async fn get_category_messages(
        &self,
        category: &str,
        query: &CategoryQuery,
    ) -> Result<Vec<Message>, Error> {
        let call = self.call().await?;
        call.run(
            "get_category_messages",
            operations::get_category_messages(&call.statements(), category, query),
        )
        .await
    }

    async fn get_last_stream_message(
        &self,
        stream_name: &str,
        type_name: Option<&str>,
    ) -> Result<Option<Message>, Error> {
        let call = self.call().await?;
        call.run(
            "get_last_stream_message",
            operations::get_last_stream_message(&call.statements(), stream_name, type_name),
        )
        .await
    }

    async fn stream_version(&self, stream_name: &str) -> Result<Option<i64>, Error> {
        let call = self.call().await?;
        call.run(
            "stream_version",
            operations::stream_version(&call.statements(), stream_name),
        )
        .await
    }

    async fn category_head(&self, category: &str) -> Result<Option<i64>, Error> {
        let call = self.call().await?;
        call.run(
            "category_head",
            operations::category_head(&call.statements(), category),
        )
        .await
    }

    /// Listens on a connection of the store's own, opened at the first
    /// call (see the crate documentation on wake-ups).
    async fn arm_wakeup(&self, category: &str) -> Wakeup {
        self.wakeups.arm(self, category).await
    }

    /// Reads one batch ahead: the next batch's query runs on the server
    /// while this one is decoded and handled (see `read_ahead`).
    fn read_stream<'a>(&'a self, stream_name: &'a str, query: StreamQuery) -> MessageStream<'a> {
        let store = self.clone();
        let stream_name = stream_name.to_owned();
        let batch_size = query.batch_size;
        read_ahead::read_ahead(
            query,
            batch_size,
            move |query: &StreamQuery| {
                let (store, stream_name, query) =
                    (store.clone(), stream_name.clone(), query.clone());
                async move {
                    let call = store.call().await?;
                    call.run(
                        "get_stream_messages",
                        operations::stream_rows(&call.statements(), &stream_name, &query),
                    )
                    .await
                }
            },
            |query, last| query.clone().position(operations::row_position(last) + 1),
            operations::messages_from_rows,
        )
    }

    /// Reads one batch ahead: the next batch's query runs on the server
    /// while this one is decoded and handled (see `read_ahead`). Each
    /// batch's query runs on a pooled connection of its own, whatever
    /// [`PgStoreConfig::pipeline_connections`] says.
    fn read_category<'a>(&'a self, category: &'a str, query: CategoryQuery) -> MessageStream<'a> {
        let store = self.clone();
        let category = category.to_owned();
        let batch_size = query.batch_size;
        let read_seconds = metrics::histogram!(crate::metrics::CATEGORY_READ_SECONDS, "category" => category.clone());
        read_ahead::read_ahead(
            query,
            batch_size,
            move |query: &CategoryQuery| {
                let (store, category, query) = (store.clone(), category.clone(), query.clone());
                let read_seconds = read_seconds.clone();
                async move {
                    let started = std::time::Instant::now();
                    // On a connection of its own even when the store
                    // pipelines: see `PgStoreConfig::pipeline_connections`.
                    let call = store.own_call().await?;
                    let rows = call
                        .run(
                            "get_category_messages",
                            operations::category_rows(&call.statements(), &category, &query),
                        )
                        .await;
                    read_seconds.record(started.elapsed());
                    rows
                }
            },
            |query, last| {
                query
                    .clone()
                    .position(operations::row_global_position(last) + 1)
            },
            operations::messages_from_rows,
        )
    }
}
