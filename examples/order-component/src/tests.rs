//! The handlers on the in-memory store.
use ebb::handler::testing::{send, types};

use super::*;

async fn sent<T: MessageType>(store: &MemoryStore, command: T) -> Received<T> {
    send(store, "order:command-1", command).await.unwrap()
}

fn place(amount: i64) -> PlaceOrder {
    let (order_id, customer_id) = ("1".into(), "c1".into());
    PlaceOrder {
        order_id,
        customer_id,
        amount,
    }
}

#[tokio::test]
async fn an_order_is_placed_once_however_often_it_is_delivered() {
    let store = MemoryStore::new();
    let orders = Orders::new(&store);
    let command = sent(&store, place(500)).await;
    orders.handle(command.clone()).await.unwrap();
    orders.handle(command).await.unwrap();
    assert_eq!(types(&store, "order-1").await.unwrap(), ["OrderPlaced"]);
}

#[tokio::test]
async fn a_placed_order_is_cancelled_once() {
    let store = MemoryStore::new();
    let orders = Orders::new(&store);
    let cancel = || CancelOrder {
        order_id: "1".into(),
    };
    orders.handle(sent(&store, cancel()).await).await.unwrap();
    orders.handle(sent(&store, place(500)).await).await.unwrap();
    orders.handle(sent(&store, cancel()).await).await.unwrap();
    orders.handle(sent(&store, cancel()).await).await.unwrap();
    let written = types(&store, "order-1").await.unwrap();
    assert_eq!(
        written,
        ["CancellationRejected", "OrderPlaced", "OrderCancelled"]
    );
}

#[tokio::test]
async fn an_amount_below_one_is_rejected_with_nothing_written() {
    let store = MemoryStore::new();
    let command = sent(&store, place(0)).await;
    let err = Orders::new(&store).handle(command).await.unwrap_err();
    assert!(matches!(err, HandlerError::Rejected { .. }), "{err}");
    assert!(types(&store, "order-1").await.unwrap().is_empty());
}
