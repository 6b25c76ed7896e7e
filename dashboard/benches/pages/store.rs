//! The store the pages are served from (the operators' bench's, built by
//! `ebb_tests::large_store`), and what in it the pages are asked about.

use ebb_bench::BoxError;

/// Names and ids from the built store, for the pages' URLs.
#[derive(Debug, Clone)]
pub(crate) struct Targets {
    /// An entity stream of `category7` (its newest).
    pub(crate) stream: String,
    /// The category whose pages are asked for.
    pub(crate) category: String,
    /// A global position halfway through the store, for a category read
    /// from the middle.
    pub(crate) middle: i64,
    /// The message at `middle`: followed by a chain of messages 2 % of
    /// the store apart (the store's causation metadata names global
    /// positions near their own), so that its trace searches far.
    pub(crate) middle_id: String,
    /// The oldest message: its trace searches everything written after it
    /// (where the chain that follows it is dense).
    pub(crate) oldest_id: String,
    /// The newest entity message: its trace has little to search.
    pub(crate) newest_id: String,
}

impl Targets {
    pub(crate) async fn find(client: &tokio_postgres::Client) -> Result<Self, BoxError> {
        let category = "category7".to_owned();
        let row = client
            .query_one(
                "SELECT (SELECT stream_name FROM message_store.messages
                          WHERE stream_name LIKE $1 || '-%'
                          ORDER BY global_position DESC LIMIT 1),
                        (SELECT max(global_position) / 2 FROM message_store.messages),
                        (SELECT id::text FROM message_store.messages
                          WHERE global_position = (SELECT max(global_position) / 2
                                                   FROM message_store.messages)),
                        (SELECT id::text FROM message_store.messages
                          ORDER BY global_position LIMIT 1),
                        (SELECT id::text FROM message_store.messages
                          WHERE metadata IS NOT NULL
                          ORDER BY global_position DESC LIMIT 1)",
                &[&category],
            )
            .await?;
        Ok(Self {
            stream: row.get(0),
            category,
            middle: row.get(1),
            middle_id: row.get(2),
            oldest_id: row.get(3),
            newest_id: row.get(4),
        })
    }
}
