//! The pages timed, and how: in rounds, each page once per round in turn,
//! so that a swing in the speed of the (shared) machine falls on all
//! alike.

use std::net::SocketAddr;
use std::time::Duration;

use ebb_bench::{BoxError, progress};

use crate::http;
use crate::settings::Settings;
use crate::store::Targets;

/// One page and what it answered.
#[derive(Debug)]
pub(crate) struct Page {
    /// What the report calls it.
    pub(crate) name: String,
    /// The path asked for.
    pub(crate) path: String,
    /// The timed requests' times to the first byte, in ms.
    pub(crate) first_bytes: Vec<f64>,
    /// The timed requests' times to the last byte, in ms.
    pub(crate) wholes: Vec<f64>,
    /// The response's size (the untimed request's), in bytes.
    pub(crate) bytes: usize,
    /// Why it was asked for fewer times than the others, if it was.
    pub(crate) stopped: Option<String>,
}

impl Page {
    fn new(name: &str, path: String) -> Self {
        Self {
            name: name.to_owned(),
            path,
            first_bytes: Vec::new(),
            wholes: Vec::new(),
            bytes: 0,
            stopped: None,
        }
    }

    fn spent(&self) -> Duration {
        Duration::from_secs_f64(self.wholes.iter().sum::<f64>() / 1000.0)
    }
}

/// Every page of the dashboard, on what `targets` names.
pub(crate) fn pages(targets: &Targets) -> Vec<Page> {
    let Targets {
        stream,
        category,
        middle,
        middle_id,
        oldest_id,
        newest_id,
    } = targets;
    vec![
        Page::new("overview", "/".to_owned()),
        Page::new("search, prefix", format!("/streams?q={category}-*")),
        Page::new("search, leading *", "/streams?q=*-0*".to_owned()),
        Page::new("stream, newest", format!("/streams/{stream}")),
        Page::new("stream, from 0", format!("/streams/{stream}?from=0")),
        Page::new("category, newest", format!("/streams/{category}")),
        Page::new(
            "category, from the middle",
            format!("/streams/{category}?from={middle}"),
        ),
        Page::new("consumers", "/consumers".to_owned()),
        Page::new(
            "parked, one category",
            format!("/parked?category={category}"),
        ),
        Page::new("parked, all", "/parked".to_owned()),
        Page::new("trace, newest message", format!("/trace/{newest_id}")),
        Page::new(
            "trace, a message in the middle",
            format!("/trace/{middle_id}"),
        ),
        Page::new("trace, oldest message", format!("/trace/{oldest_id}")),
    ]
}

/// Asks for each page once, untimed (it warms the server's caches and
/// checks that it answers 200), then `settings.requests` times in turn
/// with the others; a page stops early when its requests have taken
/// `settings.page_budget` together or one takes longer than
/// `settings.timeout`.
pub(crate) async fn measure(
    address: SocketAddr,
    pages: &mut [Page],
    settings: &Settings,
) -> Result<(), BoxError> {
    for page in pages.iter_mut() {
        match http::get(address, &page.path, settings.timeout).await {
            Ok(fetched) if fetched.status == 200 => {
                page.bytes = fetched.bytes;
                progress(format!(
                    "{} ({}): {} bytes, first byte {:.1} ms, whole {:.1} ms",
                    page.name,
                    page.path,
                    fetched.bytes,
                    ms(fetched.first_byte),
                    ms(fetched.whole)
                ));
            }
            Ok(fetched) => {
                return Err(format!("GET {}: status {}", page.path, fetched.status).into());
            }
            Err(err) => {
                progress(format!("{}: {err}", page.name));
                page.stopped = Some(format!("the untimed request: {err}"));
            }
        }
    }
    progress(format!(
        "timing, {} requests of each page in turn",
        settings.requests
    ));
    for round in 0..settings.requests {
        for page in pages.iter_mut().filter(|page| page.stopped.is_none()) {
            match http::get(address, &page.path, settings.timeout).await {
                Ok(fetched) if fetched.status == 200 => {
                    page.first_bytes.push(ms(fetched.first_byte));
                    page.wholes.push(ms(fetched.whole));
                }
                Ok(fetched) => {
                    return Err(format!("GET {}: status {}", page.path, fetched.status).into());
                }
                Err(err) => page.stopped = Some(err.to_string()),
            }
            if page.stopped.is_none() && page.spent() >= settings.page_budget {
                page.stopped = Some(format!(
                    "its {} requests took {:?} together",
                    page.first_bytes.len(),
                    settings.page_budget
                ));
            }
        }
        if (round + 1) % 50 == 0 {
            progress(format!("{} rounds", round + 1));
        }
    }
    Ok(())
}

/// The first request of a page the dashboard has not shown before: no
/// shared figures read yet.
pub(crate) async fn cold(
    address: SocketAddr,
    path: &str,
    settings: &Settings,
) -> Result<http::Fetched, BoxError> {
    let fetched = http::get(address, path, settings.timeout).await?;
    if fetched.status != 200 {
        return Err(format!("GET {path}: status {}", fetched.status).into());
    }
    Ok(fetched)
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
