//! How the dashboard is set up: plain data, each field with its default.

use std::time::Duration;

/// The environment variable [`Options::from_env`] reads the token from.
pub const TOKEN_VARIABLE: &str = "EBB_DASHBOARD_TOKEN";

/// The address [`serve`](crate::serve) listens on unless told otherwise
/// (`ebb dashboard`'s default): loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8460";

/// The shortest refresh interval: however many pages are open, no query
/// runs more often than this.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);

/// How the dashboard behaves. `Options::default()` is a dashboard with
/// actions, without a token, refreshing every 2 s.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    /// Hide every action (replay, discard) and refuse every action
    /// request with 403. Default: false.
    pub read_only: bool,
    /// The token every request must carry (`Authorization: Bearer TOKEN`,
    /// or the cookie that opening a page with `?token=TOKEN` once sets).
    /// Required by [`serve`](crate::serve) on a non-loopback address. An
    /// empty token counts as none. Default: None.
    pub token: Option<String>,
    /// The path the dashboard is served under, as the browser sees it
    /// (`/ops/dashboard`), for a proxy that strips its prefix before the
    /// request reaches the router. Default: None, which takes the prefix
    /// `Router::nest` mounted the router under (none when not nested).
    pub base_path: Option<String>,
    /// How often the live figures (consumers, write rates, a stream's
    /// newest messages) are read again while a page shows them; at least
    /// [`MIN_REFRESH`] (a shorter one is taken as that). Default: 2 s.
    pub refresh: Duration,
    /// How often the message counts by category are estimated again
    /// while a page shows them (a sample of the table; see
    /// [`ebb_admin::stats`]); at least [`MIN_REFRESH`]. Default: 10 s.
    pub counts_refresh: Duration,
    /// The span the write rates are over. Default: 5 minutes.
    pub activity_window: Duration,
    /// How long a page waits for figures not read yet (the first page
    /// after a quiet spell) before it is sent without them, to be filled
    /// in live. Default: 250 ms.
    pub first_render_wait: Duration,
    /// Messages, streams or parked messages on one page. Default: 50.
    pub page_size: usize,
    /// The most parked messages one replay or discard acts on. Default:
    /// 1000.
    pub action_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            read_only: false,
            token: None,
            base_path: None,
            refresh: Duration::from_secs(2),
            counts_refresh: Duration::from_secs(10),
            activity_window: Duration::from_secs(300),
            first_render_wait: Duration::from_millis(250),
            page_size: 50,
            action_limit: 1000,
        }
    }
}

impl Options {
    /// The defaults, with the token from `EBB_DASHBOARD_TOKEN` when it is
    /// set and not empty.
    pub fn from_env() -> Self {
        Self {
            token: std::env::var(TOKEN_VARIABLE)
                .ok()
                .filter(|token| !token.is_empty()),
            ..Self::default()
        }
    }

    /// The token, if there is one that is not empty.
    pub(crate) fn active_token(&self) -> Option<&str> {
        self.token.as_deref().filter(|token| !token.is_empty())
    }

    /// The options as the dashboard uses them: intervals raised to
    /// [`MIN_REFRESH`], sizes to 1, a base path without a trailing `/`.
    pub(crate) fn normalized(mut self) -> Self {
        self.refresh = self.refresh.max(MIN_REFRESH);
        self.counts_refresh = self.counts_refresh.max(MIN_REFRESH);
        self.page_size = self.page_size.max(1);
        self.action_limit = self.action_limit.max(1);
        self.base_path = self
            .base_path
            .map(|path| path.trim_end_matches('/').to_owned());
        self
    }
}

/// The token is never printed.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("read_only", &self.read_only)
            .field("token", &self.active_token().map(|_| "(set)"))
            .field("base_path", &self.base_path)
            .field("refresh", &self.refresh)
            .field("counts_refresh", &self.counts_refresh)
            .field("activity_window", &self.activity_window)
            .field("first_render_wait", &self.first_render_wait)
            .field("page_size", &self.page_size)
            .field("action_limit", &self.action_limit)
            .finish()
    }
}
