//! A closure that returns nothing where a handler returns a `Result`.
use ebb_handler::{Dispatcher, Received, message};

#[message]
struct Deposit {
    amount: i64,
}

fn main() {
    let _ = Dispatcher::new().on(|deposit: Received<Deposit>| async move {
        let _ = deposit.amount;
    });
}
