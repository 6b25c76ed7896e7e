//! The store contract, against the in-memory store.

use ebb_message_store::MemoryStore;

ebb_tests::store_contract_tests!(async { (MemoryStore::new(), ()) });

#[tokio::test]
async fn a_write_wakes_an_armed_wakeup() {
    ebb_tests::contract::a_write_wakes_an_armed_wakeup(&MemoryStore::new()).await;
}
