//! A stream's or a category's newest messages, newest first, a page at a
//! time: what the dashboard shows of a stream before any position is
//! asked for.
//!
//! The store's functions read forward only. A page read backwards is
//! found through the same indexes, backwards (`messages_stream` for a
//! stream, `messages_category` for a category): first the position the
//! page starts at, from the index alone as far as PostgreSQL can, then
//! the page itself read forward from there by the store's own function,
//! so that the messages are decoded as every other read decodes them.

use ebb_message_store::stream_name::is_category;
use ebb_message_store::{
    CategoryQuery, Message, MessageStore as _, PgStore, StreamName, StreamQuery,
};

use crate::Error;
use crate::consumer_streams;

/// The lowest stream position of the stream `$1`'s last `$3` messages
/// before the position `$2`.
const STREAM_PAGE_START: &str = "\
    SELECT min(position) FROM ( \
      SELECT position FROM message_store.messages \
      WHERE stream_name = $1::text AND position < $2::bigint \
      ORDER BY position DESC LIMIT $3::bigint \
    ) AS page";

/// The lowest global position of the category `$1`'s last `$3` messages
/// before the global position `$2`.
const CATEGORY_PAGE_START: &str = "\
    SELECT min(global_position) FROM ( \
      SELECT global_position FROM message_store.messages \
      WHERE message_store.category(stream_name) = $1::varchar AND global_position < $2::bigint \
      ORDER BY global_position DESC LIMIT $3::bigint \
    ) AS page";

/// The newest `limit` messages of `name` (a stream, or a category: a
/// name without an id) before `before` (a stream position for a stream, a
/// global position for a category; None: the newest), newest first.
/// Empty when there are none; [`Error::InvalidInput`] for a name that is
/// no stream's or category's, or a limit below 1.
pub async fn newest(
    store: &PgStore,
    name: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Message>, Error> {
    let name = StreamName::parse(name)
        .map_err(|err| Error::invalid(err.to_string()))?
        .into_string();
    if limit < 1 {
        return Err(Error::invalid(format!(
            "a page holds at least 1 message (got {limit})"
        )));
    }
    let category = is_category(&name);
    let before = before.unwrap_or(i64::MAX);
    let client = consumer_streams::client(store).await?;
    let sql = if category {
        CATEGORY_PAGE_START
    } else {
        STREAM_PAGE_START
    };
    let start: Option<i64> = client
        .query_one(sql, &[&name, &before, &limit])
        .await
        .map_err(|source| Error::Statement {
            action: format!("cannot find the newest messages of {name}"),
            source,
        })?
        .get(0);
    drop(client);
    let Some(start) = start else {
        return Ok(Vec::new());
    };
    let failed = |source| Error::Store {
        action: format!("cannot read {name}"),
        source,
    };
    let mut page = if category {
        let query = CategoryQuery::new().position(start).batch_size(limit);
        store
            .get_category_messages(&name, &query)
            .await
            .map_err(failed)?
    } else {
        let query = StreamQuery::new().position(start).batch_size(limit);
        store
            .get_stream_messages(&name, &query)
            .await
            .map_err(failed)?
    };
    // Written between the two reads, a message after the page's last may
    // have come in (a category's): it is on the next page up.
    page.retain(|message| {
        let at = if category {
            message.global_position
        } else {
            message.position
        };
        at < before
    });
    page.reverse();
    Ok(page)
}
