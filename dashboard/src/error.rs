//! What starting or running the dashboard can fail with.

use std::net::SocketAddr;

/// What [`serve`](crate::serve) (or [`check_listen`](crate::check_listen))
/// can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address is not a loopback address and no token protects the
    /// dashboard: it refuses to start. Set a token
    /// ([`Options::token`](crate::Options::token), `EBB_DASHBOARD_TOKEN`)
    /// or listen on loopback; a usage error.
    #[error(
        "refusing to listen on {listen} without a token: the dashboard shows the store to \
         anyone who can reach it (set EBB_DASHBOARD_TOKEN, or listen on a loopback address \
         such as 127.0.0.1:8460)"
    )]
    Unprotected {
        /// The address asked for.
        listen: SocketAddr,
    },

    /// The address could not be listened on (in use, not this machine's,
    /// not permitted).
    #[error("cannot listen on {listen}")]
    Bind {
        /// The address asked for.
        listen: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The server stopped on an error while accepting connections.
    #[error("the dashboard's server failed")]
    Serve(#[source] std::io::Error),
}

impl Error {
    /// Whether the error is the caller's settings' to fix before starting
    /// ([`Unprotected`](Error::Unprotected)): starting again the same way
    /// fails the same.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Unprotected { .. })
    }
}
