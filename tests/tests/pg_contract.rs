//! The store contract, against PostgreSQL with ebb's schema.

ebb_tests::store_contract_tests!(ebb_tests::pg_store());
