//! What both cases work on: the seed handler and its types
//! ([`ebb_tests::seed`]), and the events the fetch case loads.

use ebb_handler::Outgoing;
use ebb_message_store::Metadata;
pub(crate) use ebb_tests::seed::{Account, Accounts, COMMAND_CATEGORY, Deposit, Deposited};

/// The `n`th of an account's `Deposited` events as the handler would have
/// written it: following command `n` of the account's command stream,
/// whose global position it records as its sequence.
pub(crate) fn deposited(account_id: &str, n: i64) -> Outgoing<Deposited> {
    let metadata = Metadata {
        causation_message_stream_name: Some(format!("{COMMAND_CATEGORY}-{account_id}")),
        causation_message_position: Some(n),
        causation_message_global_position: Some(n + 1),
        ..Metadata::default()
    };
    Outgoing::new(Deposited {
        deposit_id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.to_owned(),
        amount: amount(n),
        sequence: n + 1,
    })
    .with_metadata(metadata)
}

/// The amount of deposit `n`: 1 to 100.
pub(crate) fn amount(n: i64) -> i64 {
    n * 13 % 100 + 1
}
