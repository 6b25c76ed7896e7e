//! A struct with no `Handler` impl for the message type given.
use ebb_handler::{Dispatcher, message};

#[message]
struct Deposit {
    amount: i64,
}

struct Accounts;

fn main() {
    let _ = Dispatcher::new().on::<Deposit, _>(Accounts);
}
