//! The PostgreSQL store: [`PgStore`] over a connection pool, and the
//! functions it is built from, which also take the caller's client or
//! transaction ([`sql`]).

mod config;
mod connect;
mod read_ahead;
pub mod sql;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

pub use config::config_from_env;

use crate::store::{MessageStore, MessageStream};
use crate::{CategoryQuery, Error, ExpectedVersion, Message, MessageData, StreamName, StreamQuery};

/// The default number of pooled connections a [`PgStore`] opens at most.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// A Message DB store in PostgreSQL, over a deadpool connection pool.
///
/// Cheap to clone: clones share the pool.
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
/// # Throughput
///
/// Every `write` is one round trip with a statement each connection has
/// prepared once. A single writer waits for each of those round trips, so
/// its speed is set by latency. A component that writes from one task (a
/// consumer, say) runs well on a current-thread runtime
/// (`#[tokio::main(flavor = "current_thread")]`), where the task and its
/// connection share one thread, as `pgbench` does with one client; on the
/// 2-core machine of `BENCHMARKS.md` (at the repository's root) the
/// multi-thread runtime measured within noise of it. Many concurrent
/// writers are served best by the multi-thread runtime and a pool as large
/// as the number of writers.
#[derive(Clone, Debug)]
pub struct PgStore {
    /// Connections with the statements they have prepared: every store
    /// function uses `prepare_cached`, so a pooled connection plans each
    /// statement once.
    pool: Pool,
}

impl PgStore {
    /// A store over an existing pool. Its connections must have
    /// `message_store` on their search path if the database was installed
    /// by Message DB's own scripts (see [`with_store_search_path`]).
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// A store with a pool of at most [`DEFAULT_MAX_CONNECTIONS`]
    /// connections to the database `config` names.
    pub fn from_config(config: tokio_postgres::Config) -> Result<Self, Error> {
        Self::with_max_connections(config, DEFAULT_MAX_CONNECTIONS)
    }

    /// Like [`from_config`](Self::from_config) with a pool of at most
    /// `max_connections`.
    pub fn with_max_connections(
        config: tokio_postgres::Config,
        max_connections: usize,
    ) -> Result<Self, Error> {
        if max_connections == 0 {
            return Err(Error::InvalidConfig(
                "a pool needs at least one connection".into(),
            ));
        }
        let manager = Manager::from_connect(
            with_store_search_path(config),
            connect::Connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|err| Error::InvalidConfig(format!("connection pool: {err}")))?;
        Ok(Self { pool })
    }

    /// A store for the database named by `DATABASE_URL`, or else by the
    /// libpq variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`). See [`config_from_env`].
    pub fn from_env() -> Result<Self, Error> {
        Self::from_config(config_from_env()?)
    }

    /// The pool, to run your own statements or share a transaction with
    /// the [`sql`] functions.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        self.pool.get().await.map_err(Error::Pool)
    }
}

/// Adds `-c search_path=message_store,public` to the connection options
/// unless they already set a search path.
///
/// Message DB's own functions call each other and the `messages` table
/// without a schema prefix, so they only work for sessions whose search
/// path includes `message_store`, as every Message DB client arranges.
/// ebb's schema qualifies every name and does not need it.
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
        sql::write_message(
            &self.client().await?,
            stream_name,
            message,
            expected_version,
        )
        .await
    }

    async fn write_batch(
        &self,
        stream_name: &StreamName,
        messages: &[MessageData],
        expected_version: ExpectedVersion,
    ) -> Result<Option<i64>, Error> {
        sql::write_messages(
            &self.client().await?,
            stream_name,
            messages,
            expected_version,
        )
        .await
    }

    async fn get_stream_messages(
        &self,
        stream_name: &str,
        query: &StreamQuery,
    ) -> Result<Vec<Message>, Error> {
        sql::get_stream_messages(&self.client().await?, stream_name, query).await
    }

    async fn get_category_messages(
        &self,
        category: &str,
        query: &CategoryQuery,
    ) -> Result<Vec<Message>, Error> {
        sql::get_category_messages(&self.client().await?, category, query).await
    }

    async fn get_last_stream_message(
        &self,
        stream_name: &str,
        type_name: Option<&str>,
    ) -> Result<Option<Message>, Error> {
        sql::get_last_stream_message(&self.client().await?, stream_name, type_name).await
    }

    async fn stream_version(&self, stream_name: &str) -> Result<Option<i64>, Error> {
        sql::stream_version(&self.client().await?, stream_name).await
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
                async move { sql::stream_rows(&store.client().await?, &stream_name, &query).await }
            },
            |query, last| query.clone().position(sql::row_position(last) + 1),
        )
    }

    /// Reads one batch ahead: the next batch's query runs on the server
    /// while this one is decoded and handled (see `read_ahead`).
    fn read_category<'a>(&'a self, category: &'a str, query: CategoryQuery) -> MessageStream<'a> {
        let store = self.clone();
        let category = category.to_owned();
        let batch_size = query.batch_size;
        read_ahead::read_ahead(
            query,
            batch_size,
            move |query: &CategoryQuery| {
                let (store, category, query) = (store.clone(), category.clone(), query.clone());
                async move { sql::category_rows(&store.client().await?, &category, &query).await }
            },
            |query, last| query.clone().position(sql::row_global_position(last) + 1),
        )
    }
}
