//! The static files, embedded in the binary and served under names that
//! change with their content, so that a browser may keep them for a year
//! and still never runs an old copy after an upgrade.
//!
//! The vendored files carry their version in their name
//! (`htmx-2.0.11.min.js`); ours carry a hash of their content
//! (`dashboard.1f2e3d4c.css`). What is vendored, from where, and under
//! which licence is in `assets/VENDORED.md`.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The name it is served under, below `assets/`.
    pub(crate) name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Every asset, named.
#[derive(Debug)]
pub(crate) struct Assets {
    pub(crate) css: Asset,
    pub(crate) script: Asset,
    pub(crate) htmx: Asset,
    pub(crate) sse: Asset,
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

pub(crate) static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets {
    css: hashed(
        "dashboard",
        "css",
        CSS,
        include_bytes!("../assets/dashboard.css"),
    ),
    script: hashed(
        "dashboard",
        "js",
        JS,
        include_bytes!("../assets/dashboard.js"),
    ),
    htmx: Asset {
        name: "htmx-2.0.11.min.js".into(),
        content_type: JS,
        bytes: include_bytes!("../assets/htmx-2.0.11.min.js"),
    },
    sse: Asset {
        name: "htmx-ext-sse-2.2.4.min.js".into(),
        content_type: JS,
        bytes: include_bytes!("../assets/htmx-ext-sse-2.2.4.min.js"),
    },
});

/// `stem.HASH.extension`, HASH the content's FNV-1a digest: stable across
/// builds and compilers, unlike the standard library's hasher.
fn hashed(stem: &str, extension: &str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Asset {
        name: format!("{stem}.{:08x}.{extension}", hash as u32),
        content_type,
        bytes,
    }
}

/// `GET /assets/{name}`: the file, cached for a year as it never changes
/// under its name; 404 for any other name.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let assets = &*ASSETS;
    let found = [&assets.css, &assets.script, &assets.htmx, &assets.sse]
        .into_iter()
        .find(|asset| asset.name == name);
    match found {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
