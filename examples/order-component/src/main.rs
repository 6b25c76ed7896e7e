//! An order component: commands in `order:command-ORDER_ID`, events in
//! `order-ORDER_ID`. Run with `DATABASE_URL=... cargo run -p order-component`.
use ebb::prelude::*;

#[message]
#[derive(Clone)]
struct PlaceOrder {
    order_id: String,
    customer_id: String,
    amount: i64,
}

#[message]
struct CancelOrder {
    order_id: String,
}

#[message]
struct OrderPlaced {
    order_id: String,
    customer_id: String,
    amount: i64,
}

#[message]
struct OrderCancelled {
    order_id: String,
}

#[message]
struct CancellationRejected {
    order_id: String,
}

/// An order as its events leave it.
#[derive(Debug, Clone, Default)]
struct Order {
    placed: bool,
    cancelled: bool,
}

impl Entity for Order {
    const CATEGORY: &'static str = "order";

    fn projection() -> Projection<Self> {
        Projection::new()
            .apply(|order: &mut Order, _: Received<OrderPlaced>| order.placed = true)
            .apply(|order: &mut Order, _: Received<OrderCancelled>| order.cancelled = true)
    }
}

/// The handlers: each command applied once, however often it is delivered
/// and however many instances run side by side.
#[handles(PlaceOrder, CancelOrder)]
struct Orders<S> {
    orders: EntityStore<Order, S>,
}

impl<S: MessageStore> Orders<S> {
    fn new(store: &S) -> Self {
        let orders = EntityStore::new(store.clone());
        Self { orders }
    }
}

impl<S: MessageStore> Handler<PlaceOrder> for Orders<S> {
    type Error = HandlerError;

    async fn handle(&self, place: Received<PlaceOrder>) -> Result<(), HandlerError> {
        if place.amount <= 0 {
            return Err(HandlerError::rejected("an amount must be above zero"));
        }
        // Eventide's follow: OrderPlaced's fields copied from the command's.
        let placed = |order: &Order| {
            (!order.placed)
                .then(|| OrderPlaced::following(&place))
                .transpose()
        };
        self.orders.handle(&place, &place.order_id, placed).await?;
        Ok(())
    }
}

impl<S: MessageStore> Handler<CancelOrder> for Orders<S> {
    type Error = HandlerError;

    async fn handle(&self, cancel: Received<CancelOrder>) -> Result<(), HandlerError> {
        let cancelled = |order: &Order| match (order.placed, order.cancelled) {
            (true, false) => Ok(Events::from(OrderCancelled::following(&cancel)?)),
            (false, _) => Ok(Events::from(CancellationRejected::following(&cancel)?)),
            (true, true) => Ok(Events::none()),
        };
        self.orders
            .handle(&cancel, &cancel.order_id, cancelled)
            .await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode, BoxError> {
    logging::init();
    let store = PgStore::from_env()?;
    let handlers = Dispatcher::new().handlers(Orders::new(&store));
    let config = ConsumerConfig::from_env("order:command")?;
    let consumer = Consumer::new(config, store)?.handler(handlers);
    Ok(Host::new().consumer(consumer).run_to_exit().await)
}

#[cfg(test)]
mod tests;
