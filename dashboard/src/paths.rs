//! Where the dashboard is mounted, and the URLs its pages link to.
//!
//! Every link and asset URL a page emits is absolute from the dashboard's
//! base path: the prefix `Router::nest` mounted the router under (found
//! by comparing the request's original URI with the one the router sees),
//! or [`Options::base_path`](crate::Options::base_path). So the pages
//! work mounted anywhere, and a page's URL can be pasted as it is.

use std::fmt::Write as _;

use axum::extract::{OriginalUri, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The path the dashboard is served under (`/ops`), or empty at the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base(pub(crate) String);

impl Base {
    /// The URL of the dashboard's `path` (which begins with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The URL of the page of the stream or category `name`.
    pub(crate) fn stream(&self, name: &str) -> String {
        format!("{}/streams/{}", self.0, encode(name))
    }

    /// The URL of the trace of `id` (a message id or a stream name).
    pub(crate) fn trace(&self, id: &str) -> String {
        format!("{}/trace/{}", self.0, encode(id))
    }

    /// The path cookies are scoped to.
    pub(crate) fn cookie_path(&self) -> &str {
        if self.0.is_empty() { "/" } else { &self.0 }
    }
}

/// Finds the base path of the request and leaves it in its extensions
/// for the handlers and the other layers.
pub(crate) async fn find_base(
    configured: Option<String>,
    mut request: Request,
    next: Next,
) -> Response {
    let base = configured.unwrap_or_else(|| {
        let inner = request.uri().path().to_owned();
        let original = request
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| inner.clone(), |original| original.0.path().to_owned());
        nest_prefix(&original, &inner)
    });
    request.extensions_mut().insert(Base(base));
    next.run(request).await
}

/// The prefix of `original` that `Router::nest` took away to leave
/// `inner`; empty when there is none.
fn nest_prefix(original: &str, inner: &str) -> String {
    let prefix = if inner == "/" {
        original.trim_end_matches('/')
    } else {
        original.strip_suffix(inner).unwrap_or("")
    };
    prefix.trim_end_matches('/').to_owned()
}

/// `text` percent-encoded for a path segment or a query value: every
/// byte but letters, digits and `-._~:+*` (which stream names and
/// patterns use, and URLs allow as they are).
pub(crate) fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:+*".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// `text` percent-decoded (invalid escapes kept as they are).
pub(crate) fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (bytes[index], hex(index + 1), hex(index + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                index += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A query string of `pairs`, each value encoded; pairs without a value
/// left out.
pub(crate) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| {
            value
                .as_ref()
                .map(|value| format!("{key}={}", encode(value)))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The pairs of a query string, decoded (`+` as a space); never refuses,
/// so that each page says itself what it cannot take.
pub(crate) fn params(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                decode(&key.replace('+', " ")),
                decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// The first value of `key` in `pairs`.
pub(crate) fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nest_prefix_is_what_was_taken_away() {
        assert_eq!(nest_prefix("/streams/a-1", "/streams/a-1"), "");
        assert_eq!(nest_prefix("/ops/streams/a-1", "/streams/a-1"), "/ops");
        assert_eq!(nest_prefix("/ops", "/"), "/ops");
        assert_eq!(nest_prefix("/ops/", "/"), "/ops");
        assert_eq!(nest_prefix("/", "/"), "");
    }

    #[test]
    fn names_survive_encoding() {
        for name in ["account:command+x-1", "a b/c?d#e%f&g=h", "ünï-1", ""] {
            assert_eq!(decode(&encode(name)), name);
        }
        assert_eq!(encode("account:command-1"), "account:command-1");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(decode("%zz%4"), "%zz%4");
        let pairs = params(Some("q=a+b%2A&after=&x"));
        assert_eq!(param(&pairs, "q"), Some("a b*"));
        assert_eq!(param(&pairs, "after"), Some(""));
        assert_eq!(param(&pairs, "x"), Some(""));
        assert_eq!(param(&pairs, "y"), None);
        assert_eq!(
            query(&[
                ("q", Some("a*".into())),
                ("after", None),
                ("x", Some("&".into()))
            ]),
            "?q=a*&x=%26"
        );
    }
}
