//! Handlers and dispatch: a [`Handler`] handles one message type; a
//! [`Dispatcher`] holds handlers and gives each stored message to those of
//! its type.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use ebb_message_store::Message;
use futures_util::future::BoxFuture;
use tracing::Instrument as _;

use crate::message::{MessageType, Received};
use crate::{BoxError, Error};

/// Handles messages of type `T`.
///
/// A plain `async fn` or closure taking a [`Received<T>`] and returning
/// `Result<(), E>` is a handler; so is any type implementing this trait,
/// for handlers that carry what they need (a writer, an entity store).
///
/// ```
/// use ebb_handler::{BoxError, Handler, MessageType, Received};
///
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Deposit { amount: i64 }
/// # impl MessageType for Deposit { const TYPE_NAME: &'static str = "Deposit"; }
/// struct Accounts { /* a writer, an entity store, ... */ }
///
/// impl Handler<Deposit> for Accounts {
///     type Error = BoxError;
///
///     async fn handle(&self, deposit: Received<Deposit>) -> Result<(), BoxError> {
///         tracing::info!(amount = deposit.amount, "deposit");
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not handle `{T}` messages",
    label = "not a handler of `{T}`",
    note = "a handler of `{T}` is a closure `|message: Received<{T}>| async move {{ ..; Ok(()) }}` \
            returning `Result<(), E>`, or a type with `impl Handler<{T}>`",
    note = "a type that handles several message types: mark it `#[handles({T}, ..)]` and \
            register it with `Dispatcher::handlers`"
)]
pub trait Handler<T: MessageType>: Send + Sync + 'static {
    /// What handling can fail with; the dispatcher returns it to its
    /// caller untouched (converted into the dispatcher's error type).
    type Error;

    /// Handles one message.
    fn handle(&self, message: Received<T>) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl<T, F, Fut, E> Handler<T> for F
where
    T: MessageType,
    F: Fn(Received<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
{
    type Error = E;

    fn handle(&self, message: Received<T>) -> impl Future<Output = Result<(), E>> + Send {
        self(message)
    }
}

/// A type that handles several message types, registered whole with
/// [`Dispatcher::handlers`]. Implemented by `#[handles(A, B, ..)]` on the
/// type, from its `Handler<A>`, `Handler<B>`, .. impls, which share one
/// error type.
pub trait Handlers: Send + Sync + 'static {
    /// The error its handlers return.
    type Error;

    /// Adds a route for each of its message types to `dispatcher`, all to
    /// this one value.
    fn register<E>(self: Arc<Self>, dispatcher: Dispatcher<E>) -> Dispatcher<E>
    where
        E: From<Error> + From<Self::Error> + Send + 'static;
}

/// What [`Dispatcher::dispatch`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// This many handlers handled it, in the order they were added.
    Handled(usize),
    /// No handler handles its type; it was skipped.
    Skipped,
}

/// One handler for one message type, with the type erased so that
/// handlers of different types share a list. Boxed futures, because the
/// list holds handlers of many concrete types.
type Route<E> = Arc<dyn Fn(Arc<Message>) -> BoxFuture<'static, Result<(), E>> + Send + Sync>;

/// Handlers, each for one message type, and the rule for a message of a
/// type none of them handles.
///
/// [`dispatch`](Self::dispatch) decodes a stored message into the type of
/// each handler registered for its type and calls them in the order they
/// were added. A message of a type no handler knows is skipped with a
/// debug event, or, in [strict](Self::strict) mode, is
/// [`Error::UnknownType`]. A handler's error is returned untouched
/// (converted with `From` into the dispatcher's error type `E`, which is
/// [`BoxError`] unless chosen otherwise) and stops the dispatch.
///
/// ```
/// use ebb_handler::{BoxError, Dispatched, Dispatcher, MessageType, Received};
///
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Deposit { amount: i64 }
/// # impl MessageType for Deposit { const TYPE_NAME: &'static str = "Deposit"; }
/// async fn deposit(deposit: Received<Deposit>) -> Result<(), BoxError> {
///     assert_eq!(deposit.amount, 10);
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
/// let dispatcher = Dispatcher::new().on(deposit);
/// # let message = ebb_message_store::Message {
/// #     id: uuid::Uuid::new_v4(), stream_name: "account:command-1".into(), type_name: "Deposit".into(),
/// #     position: 0, global_position: 1, data: serde_json::json!({ "amount": 10 }).into(),
/// #     metadata: Default::default(), time: chrono::Utc::now(),
/// # };
/// assert_eq!(dispatcher.dispatch(&message).await?, Dispatched::Handled(1));
/// # Ok(()) }
/// ```
pub struct Dispatcher<E = BoxError> {
    /// Per handler, in the order added: the type it handles and how.
    routes: Vec<(&'static str, Route<E>)>,
    /// Whether a message no handler handles is an error.
    strict: bool,
    /// Whether a skipped message is logged at info rather than debug.
    log_skipped: bool,
}

impl<E> fmt::Debug for Dispatcher<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field(
                "handles",
                &self.routes.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            )
            .field("strict", &self.strict)
            .field("log_skipped", &self.log_skipped)
            .finish()
    }
}

impl<E> Clone for Dispatcher<E> {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
            strict: self.strict,
            log_skipped: self.log_skipped,
        }
    }
}

/// A dispatcher with no handlers, not strict, whose error type is the
/// caller's: `Dispatcher::<MyError>::default()`.
impl<E> Default for Dispatcher<E> {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            strict: false,
            log_skipped: false,
        }
    }
}

impl Dispatcher<BoxError> {
    /// A dispatcher with no handlers, not strict, returning errors as
    /// [`BoxError`]. For an error type of your own, start from
    /// `Dispatcher::<MyError>::default()`.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<E> Dispatcher<E>
where
    E: From<Error> + Send + 'static,
{
    /// Adds `handler` for messages of type `T`. Several handlers may
    /// handle one type; they run in the order added.
    ///
    /// A type that implements `Handler` for several message types is
    /// registered whole with [`handlers`](Self::handlers) instead (here the
    /// compiler could not tell which of its types is meant).
    pub fn on<T, H>(self, handler: H) -> Self
    where
        T: MessageType,
        H: Handler<T>,
        E: From<H::Error>,
    {
        self.on_shared::<T, H>(Arc::new(handler))
    }

    /// Adds every handler of `handlers`, a type marked
    /// `#[handles(Deposit, Withdraw, ..)]` (which implements [`Handlers`]
    /// from its `Handler` impls): one value handles each of its types.
    ///
    /// ```
    /// use ebb_handler::{BoxError, Dispatcher, Handler, Received, handles, message};
    ///
    /// #[message] struct Deposit { amount: i64 }
    /// #[message] struct Withdraw { amount: i64 }
    ///
    /// #[handles(Deposit, Withdraw)]
    /// struct Accounts;
    ///
    /// impl Handler<Deposit> for Accounts {
    ///     type Error = BoxError;
    ///     async fn handle(&self, _: Received<Deposit>) -> Result<(), BoxError> { Ok(()) }
    /// }
    /// impl Handler<Withdraw> for Accounts {
    ///     type Error = BoxError;
    ///     async fn handle(&self, _: Received<Withdraw>) -> Result<(), BoxError> { Ok(()) }
    /// }
    ///
    /// let dispatcher = Dispatcher::new().handlers(Accounts);
    /// assert_eq!(dispatcher.type_names(), ["Deposit", "Withdraw"]);
    /// ```
    pub fn handlers<H>(self, handlers: H) -> Self
    where
        H: Handlers,
        E: From<H::Error>,
    {
        Arc::new(handlers).register(self)
    }

    /// [`on`](Self::on) for a handler shared with other routes (or other
    /// dispatchers): the same value handles every message given to it.
    pub fn on_shared<T, H>(mut self, handler: Arc<H>) -> Self
    where
        T: MessageType,
        H: Handler<T>,
        E: From<H::Error>,
    {
        let route: Route<E> = Arc::new(move |message: Arc<Message>| {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let received = Received::<T>::decode(message).map_err(E::from)?;
                handler.handle(received).await.map_err(E::from)
            })
        });
        self.routes.push((T::TYPE_NAME, route));
        self
    }

    /// In strict mode a message of a type no handler handles is
    /// [`Error::UnknownType`] instead of being skipped. Default: off.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Logs each message skipped for its type at info level (inside the
    /// `message` span, which names its stream, position, global position
    /// and type), as Eventide's consumer reports an unhandled message;
    /// otherwise (the default) at debug.
    /// A component that expects every message of its category to be
    /// handled turns this on, so that an unknown type written by another
    /// program shows in its log.
    pub fn log_skipped(mut self, log_skipped: bool) -> Self {
        self.log_skipped = log_skipped;
        self
    }

    /// True when some handler handles messages of `type_name`.
    pub fn handles(&self, type_name: &str) -> bool {
        self.routes.iter().any(|(t, _)| *t == type_name)
    }

    /// The message types handled, each once, in the order first added.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for (type_name, _) in &self.routes {
            if !names.contains(type_name) {
                names.push(type_name);
            }
        }
        names
    }

    /// Gives `message` to every handler of its type, in order; see the
    /// type's documentation. Each handler gets its own [`Received`], which
    /// shares one copy of the message. Runs inside an `info` span named
    /// `message`, with the fields `stream`, `position`, `global_position`,
    /// `type` and `id`, as a consumer's handling does.
    pub async fn dispatch(&self, message: &Message) -> Result<Dispatched, E> {
        let mut shared: Option<Arc<Message>> = None;
        self.dispatch_with(message, move || {
            Arc::clone(shared.get_or_insert_with(|| Arc::new(message.clone())))
        })
        .instrument(message_span(message))
        .await
    }

    /// [`dispatch`](Self::dispatch) of a message already shared, which is
    /// then never copied: what a consumer does with every message it reads.
    /// It runs in the caller's span (a consumer's `message` span), and
    /// makes none of its own.
    pub async fn dispatch_shared(&self, message: &Arc<Message>) -> Result<Dispatched, E> {
        self.dispatch_with(message, || Arc::clone(message)).await
    }

    async fn dispatch_with(
        &self,
        message: &Message,
        mut share: impl FnMut() -> Arc<Message> + Send,
    ) -> Result<Dispatched, E> {
        let mut handled = 0;
        for (type_name, route) in &self.routes {
            if *type_name == message.type_name {
                route(share()).await?;
                handled += 1;
            }
        }
        if handled > 0 {
            return Ok(Dispatched::Handled(handled));
        }
        if self.strict {
            return Err(E::from(Error::UnknownType {
                type_name: message.type_name.clone(),
                stream_name: message.stream_name.clone(),
                position: message.position,
                global_position: message.global_position,
            }));
        }
        if self.log_skipped {
            tracing::info!("no handler for this type; skipped");
        } else {
            tracing::debug!("no handler for this type; skipped");
        }
        Ok(Dispatched::Skipped)
    }
}

/// The span a message is handled in: `info`, named `message`, with the
/// fields `stream`, `position`, `global_position`, `type` and `id`, so that
/// every line logged while handling it says which message it was about.
/// [`Dispatcher::dispatch`] handles in it, and so does a consumer, once per
/// message.
pub fn message_span(message: &Message) -> tracing::Span {
    tracing::info_span!(
        "message",
        stream = %message.stream_name,
        position = message.position,
        global_position = message.global_position,
        r#type = %message.type_name,
        id = %message.id,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Deposit {
        amount: i64,
    }
    impl MessageType for Deposit {
        const TYPE_NAME: &'static str = "Deposit";
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Withdraw {
        amount: i64,
    }
    impl MessageType for Withdraw {
        const TYPE_NAME: &'static str = "Withdraw";
    }

    fn stored(type_name: &str, data: serde_json::Value) -> Message {
        Message {
            id: uuid::Uuid::new_v4(),
            stream_name: "account:command-1".into(),
            type_name: type_name.into(),
            position: 2,
            global_position: 9,
            data: data.into(),
            metadata: Default::default(),
            time: chrono::Utc::now(),
        }
    }

    /// A handler with state, for more than one type.
    #[derive(Clone, Default)]
    struct Ledger {
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Handler<Deposit> for Ledger {
        type Error = BoxError;
        async fn handle(&self, deposit: Received<Deposit>) -> Result<(), BoxError> {
            self.seen
                .lock()
                .unwrap()
                .push(format!("deposit {}", deposit.amount));
            Ok(())
        }
    }

    impl Handler<Withdraw> for Ledger {
        type Error = BoxError;
        async fn handle(&self, withdraw: Received<Withdraw>) -> Result<(), BoxError> {
            self.seen
                .lock()
                .unwrap()
                .push(format!("withdraw {}", withdraw.amount));
            Ok(())
        }
    }

    #[tokio::test]
    async fn each_message_goes_to_the_handlers_of_its_type_in_order() {
        let ledger = Ledger::default();
        let also = Arc::new(Mutex::new(Vec::new()));
        let also_seen = Arc::clone(&also);
        let dispatcher = Dispatcher::new()
            .on::<Deposit, _>(ledger.clone())
            .on::<Withdraw, _>(ledger.clone())
            .on(move |deposit: Received<Deposit>| {
                let also = Arc::clone(&also_seen);
                async move {
                    also.lock().unwrap().push(deposit.global_position());
                    Ok::<_, BoxError>(())
                }
            });
        assert_eq!(dispatcher.type_names(), ["Deposit", "Withdraw"]);

        let handled = dispatcher
            .dispatch(&stored("Deposit", json!({ "amount": 5 })))
            .await
            .unwrap();
        assert_eq!(handled, Dispatched::Handled(2));
        let handled = dispatcher
            .dispatch(&stored("Withdraw", json!({ "amount": 3 })))
            .await
            .unwrap();
        assert_eq!(handled, Dispatched::Handled(1));
        assert_eq!(*ledger.seen.lock().unwrap(), ["deposit 5", "withdraw 3"]);
        assert_eq!(*also.lock().unwrap(), [9]);
    }

    #[tokio::test]
    async fn an_unknown_type_is_skipped_or_in_strict_mode_an_error() {
        let dispatcher =
            Dispatcher::new().on(|_: Received<Deposit>| async { Ok::<_, BoxError>(()) });
        let opened = stored("Opened", json!({}));
        assert_eq!(
            dispatcher.dispatch(&opened).await.unwrap(),
            Dispatched::Skipped
        );
        let err = dispatcher.strict(true).dispatch(&opened).await.unwrap_err();
        let err = err.downcast::<Error>().expect("the crate's error");
        assert!(
            matches!(*err, Error::UnknownType { ref type_name, global_position: 9, .. } if type_name == "Opened"),
            "{err:?}"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("insufficient funds")]
    struct InsufficientFunds(#[source] std::io::Error);

    #[tokio::test]
    async fn a_handler_s_error_comes_back_untouched_with_its_source() {
        let dispatcher = Dispatcher::new().on(|_: Received<Withdraw>| async {
            Err::<(), _>(InsufficientFunds(std::io::Error::other("ledger")))
        });
        let err = dispatcher
            .dispatch(&stored("Withdraw", json!({ "amount": 1 })))
            .await
            .unwrap_err();
        let err = err
            .downcast::<InsufficientFunds>()
            .expect("the handler's own error");
        assert_eq!(
            std::error::Error::source(&*err).unwrap().to_string(),
            "ledger"
        );
    }

    #[tokio::test]
    async fn a_message_that_does_not_decode_is_an_error_naming_it() {
        let dispatcher =
            Dispatcher::new().on(|_: Received<Deposit>| async { Ok::<_, BoxError>(()) });
        let err = dispatcher
            .dispatch(&stored("Deposit", json!({ "amount": "five" })))
            .await
            .unwrap_err();
        let err = err.downcast::<Error>().expect("the crate's error");
        assert!(err.is_decode(), "{err:?}");
        assert!(
            err.to_string().contains("position 2 of account:command-1"),
            "{err}"
        );
    }

    /// The dispatcher's error type can be the caller's own.
    #[tokio::test]
    async fn errors_convert_into_the_dispatcher_s_error_type() {
        #[derive(Debug)]
        enum ComponentError {
            Messaging(Error),
            Funds(InsufficientFunds),
        }
        impl From<Error> for ComponentError {
            fn from(err: Error) -> Self {
                Self::Messaging(err)
            }
        }
        impl From<InsufficientFunds> for ComponentError {
            fn from(err: InsufficientFunds) -> Self {
                Self::Funds(err)
            }
        }
        let dispatcher = Dispatcher::<ComponentError>::default()
            .on(|_: Received<Withdraw>| async {
                Err::<(), _>(InsufficientFunds(std::io::Error::other("ledger")))
            })
            .strict(true);
        let funds = dispatcher
            .dispatch(&stored("Withdraw", json!({ "amount": 1 })))
            .await
            .unwrap_err();
        let ComponentError::Funds(funds) = funds else {
            panic!("the handler's error as the component's: {funds:?}");
        };
        assert_eq!(funds.to_string(), "insufficient funds");
        let unknown = dispatcher
            .dispatch(&stored("Opened", json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(
                unknown,
                ComponentError::Messaging(Error::UnknownType { .. })
            ),
            "{unknown:?}"
        );
    }
}
