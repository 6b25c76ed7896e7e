//! What the [`operations`](super::operations) run their statements on:
//! [`StoreClient`], and how each kind of client runs one.
//!
//! A pooled connection (deadpool's [`Client`](deadpool_postgres::Client)
//! and its [`Transaction`](deadpool_postgres::Transaction)) prepares each
//! statement once and keeps it (`prepare_cached`): a named statement the
//! server has parsed and planned, used again by every later call on that
//! connection.
//!
//! A transaction-pooling PgBouncer hands each transaction whichever server
//! connection is free, so a statement prepared on one is missing on the
//! next (`prepared statement "s4" does not exist`). [`Unprepared`] runs the
//! same statements unnamed, in one round trip each (tokio-postgres'
//! `query_typed`: parse, bind and execute sent together), which needs no
//! session. tokio-postgres' own clients, which keep no statement cache,
//! always run them that way.

use std::future::Future;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row};

/// A client the [`operations`](super::operations) can run on: a pooled
/// connection or transaction, tokio-postgres' client or transaction, or
/// any of them wrapped in [`Unprepared`].
pub trait StoreClient: Sync {
    /// Runs `sql`, whose parameters are `values` of the types `types`
    /// (the statement's own casts), and returns its rows.
    fn query_rows(
        &self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
        types: &[Type],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send;
}

/// Prepares each statement once per connection and keeps it.
impl StoreClient for deadpool_postgres::Client {
    async fn query_rows(
        &self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
        _types: &[Type],
    ) -> Result<Vec<Row>, Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query(&statement, values).await
    }
}

/// Prepares each statement once per connection and keeps it.
impl StoreClient for deadpool_postgres::Transaction<'_> {
    async fn query_rows(
        &self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
        _types: &[Type],
    ) -> Result<Vec<Row>, Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query(&statement, values).await
    }
}

/// Unnamed statements: this client keeps no statement cache.
impl StoreClient for tokio_postgres::Client {
    fn query_rows(
        &self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
        types: &[Type],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send {
        unnamed(self, sql, values, types)
    }
}

/// Unnamed statements: this client keeps no statement cache.
impl StoreClient for tokio_postgres::Transaction<'_> {
    fn query_rows(
        &self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
        types: &[Type],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send {
        unnamed(self.client(), sql, values, types)
    }
}

/// A client whose statements are run unnamed, preparing nothing that
/// outlives the statement: for connections through a transaction-pooling
/// PgBouncer, where a prepared statement may be missing on the next
/// transaction's server connection.
///
/// [`PgStore`](super::PgStore) runs its own calls this way when
/// [`PgStoreConfig::prepared_statements`](super::PgStoreConfig::prepared_statements)
/// is off; wrap a client of your own the same way:
///
/// ```no_run
/// # async fn example(store: &ebb_message_store::PgStore, message: &ebb_message_store::MessageData) -> Result<(), Box<dyn std::error::Error>> {
/// use ebb_message_store::pg::{Unprepared, operations};
/// use ebb_message_store::{ExpectedVersion, StreamName};
///
/// let mut client = store.client().await?;
/// let transaction = client.transaction().await?;
/// let stream = StreamName::new("account", "123")?;
/// operations::write_message(&Unprepared(&transaction), &stream, message, ExpectedVersion::Any)
///     .await?;
/// transaction.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Unprepared<'a, C: ?Sized>(pub &'a C);

impl<C: Unnamed + ?Sized> StoreClient for Unprepared<'_, C> {
    fn query_rows(
        &self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
        types: &[Type],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send {
        unnamed(self.0.driver_client(), sql, values, types)
    }
}

/// A client [`Unprepared`] can run unnamed statements on: one that is, or
/// stands for, a tokio-postgres client.
pub trait Unnamed: Sync + private::Sealed {
    /// The tokio-postgres client the statements go to.
    #[doc(hidden)]
    fn driver_client(&self) -> &tokio_postgres::Client;
}

mod private {
    pub trait Sealed {}
    impl Sealed for deadpool_postgres::Client {}
    impl Sealed for deadpool_postgres::Transaction<'_> {}
    impl Sealed for tokio_postgres::Client {}
    impl Sealed for tokio_postgres::Transaction<'_> {}
}

impl Unnamed for deadpool_postgres::Client {
    fn driver_client(&self) -> &tokio_postgres::Client {
        self
    }
}

impl Unnamed for deadpool_postgres::Transaction<'_> {
    fn driver_client(&self) -> &tokio_postgres::Client {
        self.client()
    }
}

impl Unnamed for tokio_postgres::Client {
    fn driver_client(&self) -> &tokio_postgres::Client {
        self
    }
}

impl Unnamed for tokio_postgres::Transaction<'_> {
    fn driver_client(&self) -> &tokio_postgres::Client {
        self.client()
    }
}

/// `sql` as an unnamed statement: parse, bind, describe and execute in one
/// round trip.
async fn unnamed(
    client: &tokio_postgres::Client,
    sql: &str,
    values: &[&(dyn ToSql + Sync)],
    types: &[Type],
) -> Result<Vec<Row>, Error> {
    use futures_util::TryStreamExt as _;
    debug_assert_eq!(values.len(), types.len(), "a type for every value");
    let parameters = values.iter().copied().zip(types.iter().cloned());
    client
        .query_typed_raw(sql, parameters)
        .await?
        .try_collect()
        .await
}

/// A pooled connection of [`PgStore`](super::PgStore)'s own, run as its
/// configuration says: prepared and kept, or unnamed.
pub(crate) struct Pooled<'a> {
    pub(crate) client: &'a deadpool_postgres::Client,
    pub(crate) prepared: bool,
}

impl StoreClient for Pooled<'_> {
    async fn query_rows(
        &self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
        types: &[Type],
    ) -> Result<Vec<Row>, Error> {
        if self.prepared {
            self.client.query_rows(sql, values, types).await
        } else {
            unnamed(self.client, sql, values, types).await
        }
    }
}
