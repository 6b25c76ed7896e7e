//! A minimal HTTP/1.1 client on loopback: one connection per request, as
//! a browser's first request to a page opens one, timed to the first byte
//! of the response; and the live pages' event streams, read as they come.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ebb_bench::BoxError;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fetched {
    /// From connecting to the first byte of the response.
    pub(crate) first_byte: Duration,
    /// From connecting to the end of the response.
    pub(crate) whole: Duration,
    pub(crate) status: u16,
    /// The response's size, headers included.
    pub(crate) bytes: usize,
}

fn request(path: &str, accept: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\
         User-Agent: ebb-bench\r\nConnection: close\r\n\r\n"
    )
}

/// `GET path`, read whole; an error when it takes longer than `timeout`.
pub(crate) async fn get(
    address: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<Fetched, BoxError> {
    tokio::time::timeout(timeout, fetch(address, path))
        .await
        .map_err(|_| format!("GET {path}: no whole response within {timeout:?}"))?
}

async fn fetch(address: SocketAddr, path: &str) -> Result<Fetched, BoxError> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    stream
        .write_all(request(path, "text/html").as_bytes())
        .await?;
    let mut response = Vec::with_capacity(64 * 1024);
    let mut buffer = [0_u8; 16 * 1024];
    let read = stream.read(&mut buffer).await?;
    let first_byte = started.elapsed();
    if read == 0 {
        return Err(format!("GET {path}: the connection closed without a response").into());
    }
    response.extend_from_slice(&buffer[..read]);
    stream.read_to_end(&mut response).await?;
    let whole = started.elapsed();
    Ok(Fetched {
        first_byte,
        whole,
        status: status(&response).ok_or_else(|| format!("GET {path}: not an HTTP response"))?,
        bytes: response.len(),
    })
}

/// The status code of an HTTP/1.1 response's first line.
fn status(response: &[u8]) -> Option<u16> {
    let line = response.split(|&byte| byte == b'\n').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A live page's event stream, open: `GET path` as the browser's
/// `EventSource` asks for it, the headers read.
#[derive(Debug)]
pub(crate) struct Events {
    reader: BufReader<TcpStream>,
    /// When it was asked for.
    pub(crate) opened: Instant,
}

impl Events {
    pub(crate) async fn open(address: SocketAddr, path: &str) -> Result<Self, BoxError> {
        let opened = Instant::now();
        let mut stream = TcpStream::connect(address).await?;
        stream
            .write_all(request(path, "text/event-stream").as_bytes())
            .await?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        if status(line.as_bytes()) != Some(200) {
            return Err(format!("GET {path}: {}", line.trim_end()).into());
        }
        // The headers, up to the blank line.
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Err(format!("GET {path}: the connection closed").into());
            }
            if line.trim_end().is_empty() {
                return Ok(Self { reader, opened });
            }
        }
    }

    /// Waits for the next event (not a keep-alive comment); false when
    /// the stream ended. The response is chunked: chunk sizes are lines
    /// of their own, which the `event:` test skips.
    pub(crate) async fn next(&mut self) -> Result<bool, BoxError> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Ok(false);
            }
            if line.starts_with("event:") {
                return Ok(true);
            }
        }
    }
}
