//! The metrics the store records, through the [`metrics`] facade: nothing
//! is kept unless the process installs a recorder (the component host's
//! Prometheus endpoint does).
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `ebb_store_category_read_seconds` | histogram | `category` | one batch of a category read by [`read_category`](crate::MessageStore::read_category): the query and its rows |

/// See the module documentation.
pub const CATEGORY_READ_SECONDS: &str = "ebb_store_category_read_seconds";
