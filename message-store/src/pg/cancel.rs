//! Cancelling the statement a connection is running, and knowing that the
//! server has acted on the request before the connection is used again.
//!
//! A cancel request goes over a connection of its own, and the server acts
//! on it some time after it arrives: it signals the backend, which stops
//! the statement it is running at its next check. A request still on its
//! way when the connection has moved on to its next statement stops that
//! one instead. So, as libpq does, the request's connection is read until
//! the server closes it, which the server does only once it has signalled
//! the backend. Only a request confirmed that way is worth anything here,
//! and only a connection with one place to send it to can have one.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::tls::TlsConnect;
use tokio_postgres::{CancelToken, Client, Config, NoTls};

use super::tls::TlsSettings;
use super::tls_connect::MakeTls;

/// Where every connection opened with some settings goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// A server's Unix socket file.
    Socket(PathBuf),
    /// A host name or address, and a port.
    Tcp(String, u16),
}

/// The one place connections opened with `config` go to; `None` when the
/// settings name several (hosts, ports or addresses to try in turn).
fn endpoint(config: &Config) -> Option<Endpoint> {
    #[cfg(unix)]
    if let Some(path) = super::connect::unix::socket_path(config) {
        return Some(Endpoint::Socket(path));
    }
    let port = match config.get_ports() {
        [] => 5432,
        [port] => *port,
        _ => return None,
    };
    match (config.get_hosts(), config.get_hostaddrs()) {
        // An address given beside the host is where the connection goes.
        ([_], [address]) | ([], [address]) => Some(Endpoint::Tcp(address.to_string(), port)),
        ([Host::Tcp(host)], []) => Some(Endpoint::Tcp(host.clone(), port)),
        _ => None,
    }
}

/// Asks the server to cancel whatever `client` is running, and returns
/// once the server has acted on the request: true then, false if the
/// request could not be sent or confirmed. When `config` names several
/// hosts, the request is sent (over TCP) to the one the connection went to,
/// but cannot be confirmed: false. Over TCP the request goes with TLS if the
/// connection did, checked as `tls` says.
pub(super) async fn cancel_confirmed(client: &Client, config: &Config, tls: &TlsSettings) -> bool {
    let token = client.cancel_token();
    let sent = match endpoint(config) {
        #[cfg(unix)]
        Some(Endpoint::Socket(path)) => match tokio::net::UnixStream::connect(&path).await {
            Ok(stream) => send(&token, stream, NoTls).await,
            Err(err) => Err(err),
        },
        #[cfg(not(unix))]
        Some(Endpoint::Socket(_)) => return false,
        Some(Endpoint::Tcp(address, port)) => {
            // The certificate names the host, not the address.
            let name = match config.get_hosts() {
                [Host::Tcp(host)] => host.as_str(),
                _ => address.as_str(),
            };
            let connector = MakeTls::new(tls.clone()).connector(name);
            match tokio::net::TcpStream::connect((address.as_str(), port)).await {
                Ok(stream) => send(&token, stream, connector).await,
                Err(err) => Err(err),
            }
        }
        None => {
            // Several hosts: the driver knows which one a TCP connection
            // went to, and sends the request there, but does not wait for
            // the server to act on it. Worth sending; not a confirmation.
            if let Err(err) = token.cancel_query(MakeTls::new(tls.clone())).await {
                tracing::debug!(error = %err, "could not cancel the statement of an unfinished call");
            }
            return false;
        }
    };
    match sent {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(error = %err, "could not cancel the statement of an unfinished call");
            false
        }
    }
}

/// Sends the request over `stream` (with TLS by `tls` if the token's
/// connection used it) and reads until the server closes the connection.
///
/// Our end stays open for writing until then (the driver's shutdown after
/// the request is made a no-op), as libpq's does: PgBouncer 1.18 takes a
/// cancel connection whose client closes its end before the cancel is
/// through for a broken client, and exits (`bad client state`).
async fn send<S, T>(token: &CancelToken, stream: S, tls: T) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    for<'a> T: TlsConnect<&'a mut KeepOpen<S>>,
{
    let mut stream = KeepOpen(stream);
    token
        .cancel_query_raw(&mut stream, tls)
        .await
        .map_err(io::Error::other)?;
    let mut rest = Vec::new();
    stream.0.read_to_end(&mut rest).await?;
    Ok(())
}

/// A stream whose shutdown leaves it open (see [`send`]).
struct KeepOpen<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for KeepOpen<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for KeepOpen<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Flushed, not closed.
        Pin::new(&mut self.0).poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        text.parse().unwrap()
    }

    #[test]
    fn one_place_to_send_a_cancel_request_to() {
        assert_eq!(
            endpoint(&config("host=/run/pg port=5433")),
            Some(Endpoint::Socket("/run/pg/.s.PGSQL.5433".into()))
        );
        assert_eq!(
            endpoint(&config("host=db.example")),
            Some(Endpoint::Tcp("db.example".into(), 5432))
        );
        assert_eq!(
            endpoint(&config("host=db.example hostaddr=10.0.0.7 port=6000")),
            Some(Endpoint::Tcp("10.0.0.7".into(), 6000))
        );
    }

    #[test]
    fn several_places_are_none() {
        assert_eq!(endpoint(&config("host=a,b")), None);
        assert_eq!(endpoint(&config("host=a port=1,2")), None);
        assert_eq!(endpoint(&config("host=/run/a,/run/b")), None);
        assert_eq!(endpoint(&Config::new()), None);
    }
}
