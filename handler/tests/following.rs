//! `MessageType::following`: Eventide's `follow`, which copies the fields
//! both messages have, and refuses a field it cannot fill.

use ebb_handler::{Error, MessageType, Received, message, testing};
use ebb_message_store::MemoryStore;

#[message]
struct Withdraw {
    account_id: String,
    amount: i64,
}

#[message]
struct Withdrawn {
    account_id: String,
    amount: i64,
    sequence: i64,
}

#[message]
struct Noted {
    account_id: String,
    #[serde(default)]
    remark: String,
}

async fn withdraw() -> Received<Withdraw> {
    let store = MemoryStore::new();
    let command = Withdraw {
        account_id: "1".into(),
        amount: 7,
    };
    testing::send(&store, "account:command-1", command)
        .await
        .unwrap()
}

#[tokio::test]
async fn same_named_fields_are_copied_and_the_rest_set_or_defaulted() {
    let withdraw = withdraw().await;
    let sequence =
        serde_json::Map::from_iter([("sequence".into(), withdraw.global_position().into())]);
    let withdrawn = Withdrawn::following_with(&withdraw, sequence).unwrap();
    assert_eq!(withdrawn.body.account_id, "1");
    assert_eq!(withdrawn.body.amount, 7);
    assert_eq!(withdrawn.body.sequence, withdraw.global_position());
    assert_eq!(
        withdrawn.metadata.causation_message_stream_name.as_deref(),
        Some("account:command-1")
    );
    let noted = Noted::following(&withdraw).unwrap();
    assert_eq!(
        (noted.body.account_id.as_str(), noted.body.remark.as_str()),
        ("1", "")
    );
    let overridden = serde_json::Map::from_iter([("amount".into(), 9.into())]);
    let withdrawn = Withdrawn::following_with(
        &withdraw,
        overridden
            .into_iter()
            .chain([("sequence".into(), 1.into())])
            .collect(),
    )
    .unwrap();
    assert_eq!(withdrawn.body.amount, 9);
}

#[tokio::test]
async fn a_field_the_previous_message_lacks_is_an_error_naming_both_types() {
    let withdraw = withdraw().await;
    let Err(err) = Withdrawn::following(&withdraw) else {
        panic!("made a Withdrawn without its sequence");
    };
    assert!(matches!(err, Error::Copy { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "could not make a Withdrawn following a Withdraw"
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("sequence"), "{cause}");
}
