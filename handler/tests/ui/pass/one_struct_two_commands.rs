//! One struct handling two commands: `#[handles]` and
//! `Dispatcher::handlers`, no wrapper and no turbofish.
use ebb_handler::{BoxError, Dispatcher, Handler, Received, handles, message};

#[message]
struct Deposit {
    amount: i64,
}

#[message]
struct Withdraw {
    amount: i64,
}

#[handles(Deposit, Withdraw)]
struct Accounts<S> {
    _store: S,
}

impl<S: Send + Sync + 'static> Handler<Deposit> for Accounts<S> {
    type Error = BoxError;
    async fn handle(&self, _: Received<Deposit>) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<S: Send + Sync + 'static> Handler<Withdraw> for Accounts<S> {
    type Error = BoxError;
    async fn handle(&self, _: Received<Withdraw>) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {
    let dispatcher = Dispatcher::new().handlers(Accounts { _store: () });
    assert_eq!(dispatcher.type_names(), ["Deposit", "Withdraw"]);
}
