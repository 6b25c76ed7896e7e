//! `?` on a retry's result in a handler returning the handler error: no
//! `map_err(RetryError::into_last)`.
use ebb_handler::retry::on_wrong_expected_version;
use ebb_handler::{Error, Received, message};
use ebb_retry::Retry;

#[message]
struct Deposit {
    amount: i64,
}

async fn handle(retry: &Retry, deposit: Received<Deposit>) -> Result<(), Error> {
    retry
        .run(|_cycle| async { Ok::<_, Error>(deposit.amount) })
        .await?;
    Ok(())
}

fn main() {
    let retry = Retry::intervals_ms([10, 100])
        .rule(on_wrong_expected_version())
        .build()
        .unwrap();
    // Compiling is the test; the handler is not run.
    let _handler = |deposit| handle(&retry, deposit);
}
