//! The store contract, against the in-memory store.

use ebb_message_store::MemoryStore;

ebb_tests::store_contract_tests!(async { (MemoryStore::new(), ()) });
