//! The stream-name functions in Rust agree with the SQL functions of the
//! same names on every string of up to five characters over `a`, `:`, `+`
//! and `-`: every arrangement of the separators, doubled, leading,
//! trailing, the empty string included.

use std::collections::BTreeMap;

use ebb_message_store::stream_name::{cardinal_id, category, id, is_category};
use ebb_tests::{connect, database};

/// Every string over `alphabet` of at most `max_len` characters, shortest
/// first.
fn all_strings(alphabet: &[char], max_len: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut shorter = vec![String::new()];
    for _ in 0..max_len {
        let longer: Vec<String> = shorter
            .iter()
            .flat_map(|prefix| {
                alphabet.iter().map(move |c| {
                    let mut name = prefix.clone();
                    name.push(*c);
                    name
                })
            })
            .collect();
        all.extend(longer.iter().cloned());
        shorter = longer;
    }
    all
}

/// What one name gives: category, id, cardinal id, is category, hash.
type Parts = (String, Option<String>, Option<String>, bool, i64);

#[tokio::test]
async fn rust_and_sql_take_every_short_name_apart_alike() {
    let names = all_strings(&['a', ':', '+', '-'], 5);
    assert_eq!(names.len(), 1 + 4 + 16 + 64 + 256 + 1024);

    let db = database().await;
    let client = connect(&db).await;
    let rows = client
        .query(
            "SELECT n, message_store.category(n), message_store.id(n),
                    message_store.cardinal_id(n), message_store.is_category(n),
                    message_store.hash_64(n)
             FROM unnest($1::text[]) AS n",
            &[&names],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), names.len());
    let sql: BTreeMap<String, Parts> = rows
        .iter()
        .map(|row| {
            let parts = (row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
            (row.get(0), parts)
        })
        .collect();
    assert_eq!(sql.len(), names.len(), "one row for each name");

    let mut differences = Vec::new();
    for name in &names {
        let rust: Parts = (
            category(name).to_owned(),
            id(name).map(str::to_owned),
            cardinal_id(name).map(str::to_owned),
            is_category(name),
            ebb_message_store::hash_64(name),
        );
        let sql = &sql[name];
        if *sql != rust {
            differences.push(format!("{name:?}: SQL {sql:?}, Rust {rust:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} names differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
