//! The store contract, against PostgreSQL with ebb's schema, with every
//! call of the store on one shared, pipelined connection.

ebb_tests::store_contract_tests!(ebb_tests::pg_store_pipelined());
