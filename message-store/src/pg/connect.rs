//! How the pool opens its connections.
//!
//! Each host the settings name is tried in turn (see `hosts`). A TCP host
//! is opened by tokio-postgres as usual, with the store's TLS settings (see
//! `tls_connect`). A Unix socket directory, where no TLS is used, is opened
//! here, on a socket that asks to be woken only when there is something to
//! read.
//!
//! The reason is a round trip's cost. tokio registers a socket for both
//! readability and writability, and a Unix socket reports itself writable
//! again each time the server takes a request out of it: every request
//! would wake the client once for nothing, while the server is still
//! working on it, one extra sleep and wake-up of the client's thread per
//! statement, which a single writer (one statement after another) pays in
//! full. `pgbench` waits for readability only. Write readiness is asked
//! for here only while a write is actually blocked (a large batch filling
//! the socket's buffer), and given up again once it has gone through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use deadpool_postgres::Connect;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres::{Client, Config, Error, NoTls};

use super::hosts::Refusal;
use super::tls::TlsSettings;

/// Opens the pool's connections (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    /// The store's TLS settings, for connections over TCP.
    tls: TlsSettings,
}

impl Connector {
    pub(crate) fn new(tls: TlsSettings) -> Self {
        Self { tls }
    }
}

impl Connect for Connector {
    fn connect(&self, config: &Config) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), Error>> {
        let config = config.clone();
        Box::pin(async move {
            let wanted = config.get_target_session_attrs();
            super::hosts::connect_any(&config, |config, host| {
                let socket = host.is_socket();
                async move {
                    #[cfg(unix)]
                    if socket {
                        return connect_socket(config, wanted).await;
                    }
                    let _ = socket;
                    let (client, mut connection) =
                        super::tls_connect::connect_one(&config, &self.tls).await?;
                    super::hosts::check_session(&client, &mut connection, wanted).await?;
                    Ok((client, spawn(connection)))
                }
            })
            .await
        })
    }
}

/// Opens a connection to the one socket directory `config` names, on a
/// socket that wakes the client only to read (see the module
/// documentation).
#[cfg(unix)]
async fn connect_socket(
    mut config: Config,
    wanted: tokio_postgres::config::TargetSessionAttrs,
) -> Result<(Client, JoinHandle<()>), Refusal> {
    let Some(path) = unix::socket_path(&config) else {
        let err = io::Error::new(io::ErrorKind::InvalidInput, "not a socket directory");
        return Err(driver_error(&config, err).await.into());
    };
    // No TLS over a socket; the cancel token made from these settings must
    // not ask for it either.
    config.ssl_mode(DriverMode::Disable);
    let stream = match unix::connect(&path, &config).await {
        Ok(stream) => stream,
        Err(err) => return Err(driver_error(&config, err).await.into()),
    };
    let (client, mut connection) = config.connect_raw(stream, NoTls).await?;
    super::hosts::check_session(&client, &mut connection, wanted).await?;
    Ok((client, spawn(connection)))
}

/// `err`, a failed socket connect, as the driver's I/O error with `err`
/// kept as its source (which is what
/// [`Error::is_transient`](crate::Error::is_transient) reads).
///
/// The driver makes its errors itself, so it is handed a stream that
/// fails with `err` at once: the handshake on it fails with nothing sent.
pub(crate) async fn driver_error(config: &Config, err: io::Error) -> Error {
    match config.connect_raw(Failed(Some(err)), NoTls).await {
        Err(err) => err,
        Ok(_) => unreachable!("a handshake on a stream that fails cannot succeed"),
    }
}

/// A stream whose first use fails with the error it holds.
struct Failed(Option<io::Error>);

impl Failed {
    fn error(&mut self) -> io::Error {
        self.0
            .take()
            .unwrap_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for Failed {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.get_mut().error()))
    }
}

impl AsyncWrite for Failed {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(self.get_mut().error()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.get_mut().error()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn spawn<F>(connection: F) -> JoinHandle<()>
where
    F: Future<Output = Result<(), Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "PostgreSQL connection closed with an error");
        }
    })
}

#[cfg(unix)]
pub(crate) mod unix {
    use std::io::{self, Read as _, Write as _};
    use std::os::unix::net::UnixStream as StdUnixStream;
    use std::path::{Path, PathBuf};
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use tokio::io::unix::AsyncFd;
    use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
    use tokio_postgres::Config;
    use tokio_postgres::config::Host;

    /// The server's socket file for `config`, when its only host is a
    /// socket directory; `None` sends the connection the ordinary way
    /// (TCP, several hosts, `hostaddr`).
    pub(crate) fn socket_path(config: &Config) -> Option<PathBuf> {
        let [Host::Unix(dir)] = config.get_hosts() else {
            return None;
        };
        if !config.get_hostaddrs().is_empty() {
            return None;
        }
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => return None,
        };
        Some(dir.join(format!(".s.PGSQL.{port}")))
    }

    /// Connects to the server's socket at `path` within the connect
    /// timeout of `config`.
    pub(crate) async fn connect(path: &Path, config: &Config) -> io::Result<ReadWakeStream> {
        let stream = tokio::net::UnixStream::connect(path);
        let stream = match config.get_connect_timeout() {
            Some(limit) => tokio::time::timeout(*limit, stream)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??,
            None => stream.await?,
        };
        ReadWakeStream::new(stream.into_std()?)
    }

    /// A connected, non-blocking Unix stream registered for readability
    /// only; writability is registered (on a duplicate descriptor) only
    /// while a write is blocked.
    #[derive(Debug)]
    pub(crate) struct ReadWakeStream {
        read: AsyncFd<StdUnixStream>,
        /// Present while a write waits for room in the socket's buffer.
        write: Option<AsyncFd<StdUnixStream>>,
    }

    impl ReadWakeStream {
        pub(crate) fn new(stream: StdUnixStream) -> io::Result<Self> {
            stream.set_nonblocking(true)?;
            Ok(Self {
                read: register(stream, Interest::READABLE)?,
                write: None,
            })
        }

        /// True while a blocked write keeps write readiness registered.
        #[cfg(test)]
        pub(crate) fn waits_for_room(&self) -> bool {
            self.write.is_some()
        }
    }

    /// Registers `stream` with the runtime's reactor for `interest`.
    fn register(stream: StdUnixStream, interest: Interest) -> io::Result<AsyncFd<StdUnixStream>> {
        // SAFETY: a std `UnixStream` owns its descriptor: it stays open, and
        // `as_raw_fd` returns the same one, until the stream is dropped, which
        // happens only when the `AsyncFd` holding it is dropped.
        unsafe { AsyncFd::register_with_interest(stream, interest) }.map_err(io::Error::from)
    }

    impl AsyncRead for ReadWakeStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            loop {
                let mut guard = ready!(self.read.poll_read_ready(cx))?;
                let unfilled = buf.initialize_unfilled();
                match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                    Ok(Ok(read)) => {
                        buf.advance(read);
                        return Poll::Ready(Ok(()));
                    }
                    Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
                    Ok(Err(err)) => return Poll::Ready(Err(err)),
                    // Readiness was stale and has been cleared: wait again.
                    Err(_would_block) => {}
                }
            }
        }
    }

    impl AsyncWrite for ReadWakeStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            loop {
                match this.read.get_ref().write(data) {
                    Ok(written) => {
                        // Done waiting for room: stop being woken by it.
                        this.write = None;
                        return Poll::Ready(Ok(written));
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Poll::Ready(Err(err)),
                }
                let waiting = match &mut this.write {
                    Some(waiting) => waiting,
                    unregistered => {
                        let duplicate = this.read.get_ref().try_clone()?;
                        unregistered.insert(register(duplicate, Interest::WRITABLE)?)
                    }
                };
                // Cleared before the next attempt, so room made after it is
                // reported again and never missed.
                ready!(waiting.poll_write_ready(cx))?.clear_ready();
            }
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(self.read.get_ref().shutdown(std::net::Shutdown::Write))
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::net::UnixStream as StdUnixStream;
    use std::path::Path;
    use std::pin::Pin;
    use std::task::Poll;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

    use super::unix::{ReadWakeStream, socket_path};

    #[test]
    fn a_single_socket_directory_is_connected_here() {
        let mut config = tokio_postgres::Config::new();
        config.host_path("/run/pg").port(5433);
        assert_eq!(
            socket_path(&config).as_deref(),
            Some(Path::new("/run/pg/.s.PGSQL.5433"))
        );
        let mut default_port = tokio_postgres::Config::new();
        default_port.host_path("/run/pg");
        assert_eq!(
            socket_path(&default_port).as_deref(),
            Some(Path::new("/run/pg/.s.PGSQL.5432"))
        );
    }

    #[test]
    fn tcp_and_several_hosts_go_the_ordinary_way() {
        let mut tcp = tokio_postgres::Config::new();
        tcp.host("localhost");
        assert_eq!(socket_path(&tcp), None);
        let mut two = tokio_postgres::Config::new();
        two.host_path("/run/a").host_path("/run/b");
        assert_eq!(socket_path(&two), None);
        assert_eq!(socket_path(&tokio_postgres::Config::new()), None);
    }

    /// Our end as `PgStore`'s connections have it, and a plain tokio peer.
    fn pair() -> (ReadWakeStream, tokio::net::UnixStream) {
        let (ours, theirs) = StdUnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        (
            ReadWakeStream::new(ours).unwrap(),
            tokio::net::UnixStream::from_std(theirs).unwrap(),
        )
    }

    /// A write larger than the socket's buffer blocks until the peer reads,
    /// and then completes: the wait for room is neither lost nor left
    /// registered.
    #[tokio::test]
    async fn a_write_that_fills_the_buffer_waits_for_room_and_completes() {
        let (mut ours, mut theirs) = pair();
        let sent: Vec<u8> = (0..8 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
        let expected = sent.len();
        assert!(!ours.waits_for_room());

        // Write, with nobody reading, until the buffer is full and the
        // write has to wait.
        let mut written = 0;
        std::future::poll_fn(|cx| {
            loop {
                match Pin::new(&mut ours).poll_write(cx, &sent[written..]) {
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(err)) => panic!("write failed: {err}"),
                    Poll::Pending => return Poll::Ready(()),
                }
                assert!(written < expected, "the socket took all of it at once");
            }
        })
        .await;
        assert!(ours.waits_for_room(), "a blocked write asks to be woken");

        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            theirs.read_to_end(&mut received).await.unwrap();
            received
        });
        ours.write_all(&sent[written..]).await.unwrap();
        assert!(!ours.waits_for_room(), "room found, the wait is given up");
        // A write after the wait goes straight through.
        ours.write_all(b"!").await.unwrap();
        assert!(!ours.waits_for_room());
        ours.shutdown().await.unwrap();
        let received = reader.await.unwrap();
        assert_eq!(received.len(), expected + 1);
        assert!(
            received[..expected] == sent[..],
            "the bytes arrive intact and in order"
        );
        assert_eq!(received[expected], b'!');
    }

    /// Reads wait for data that arrives later, and see the end of the
    /// stream when the peer closes.
    #[tokio::test]
    async fn reads_wait_for_data_and_see_the_end() {
        let (mut ours, mut theirs) = pair();
        let writer = tokio::spawn(async move {
            // Data that arrives later: the behaviour under test.
            tokio::time::sleep(Duration::from_millis(20)).await;
            theirs.write_all(b"hello").await.unwrap();
            // Data that arrives later: the behaviour under test.
            tokio::time::sleep(Duration::from_millis(20)).await;
            theirs.write_all(b", world").await.unwrap();
        });
        let mut received = String::new();
        ours.read_to_string(&mut received).await.unwrap();
        writer.await.unwrap();
        assert_eq!(received, "hello, world");
    }
}
