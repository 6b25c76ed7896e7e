//! Which categories' consumers have parked messages: where a view of every
//! parked message, across categories, starts.

use ebb_message_store::PgStore;

use crate::Error;
use crate::consumer_streams::{self, ConsumerName, PARKED};

/// The categories (`account`, `account:command`) some consumer of which
/// has a parked stream, in order: found by a loose scan of the
/// `messages_category` index (one probe per category of the store), as
/// the parked streams of a category's consumers make up one category
/// (`account:parked`, `account:command+parked`). [`parked`](crate::parked)
/// then reads each one's parked messages.
pub async fn parked_categories(store: &PgStore) -> Result<Vec<String>, Error> {
    let client = consumer_streams::client(store).await?;
    let mut consumed: Vec<String> = consumer_streams::categories(&client)
        .await?
        .into_iter()
        .filter_map(|category| ConsumerName::from_stream(&category, PARKED))
        .filter(|name| name.identifier.is_none())
        .map(|name| name.category)
        .collect();
    consumed.sort();
    consumed.dedup();
    Ok(consumed)
}
