//! [`Browser`]: headless Chromium driven through WebDriver, for tests that
//! check what a person sees in the dashboard.
//!
//! Each `Browser` starts its own `chromedriver` on a loopback port it
//! picks itself, with a fresh Chromium profile, and ends both when it is
//! dropped (or, more gently, [closed](Browser::close)), including when the
//! test panics or its process is killed. The helpers wait for what the
//! page shows by asking the browser's DOM again until it is there or a
//! bounded time has passed; a timeout names the selector and quotes the
//! page's text.
//!
//! Needs Debian's `chromium` and `chromium-driver` (and a font package, so
//! screenshots show text), which `.ci/run` installs; without them
//! [`Browser::start`] fails and says so, so the tests fail instead of
//! passing without having looked.
//!
//! ```no_run
//! # async fn example() -> Result<(), ebb_tests::browser::Error> {
//! use ebb_tests::browser::Browser;
//!
//! let browser = Browser::start().await?;
//! browser.goto("http://127.0.0.1:8460/parked").await?;
//! browser.click("button.replay").await?;
//! browser.accept_dialog().await?;
//! browser.wait_for_text("#flash", "replayed").await?;
//! browser.screenshot("replay_parked_message").await?;
//! browser.close().await
//! # }
//! ```

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use fantoccini;
use fantoccini::elements::Element;
use fantoccini::error::{CmdError, NewSessionError};
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

/// How long the `wait_for*` helpers wait by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// How long `chromedriver` may take to say it is listening.
const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long creating the session (which launches Chromium) may take; a
/// cold start on a busy two-core machine takes a few seconds.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a wait asks the DOM again: often enough that a test does not
/// dawdle, rarely enough to leave the page's own scripts the CPU.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The viewport of every screenshot, so that they compare across runs.
const WINDOW_SIZE: (u32, u32) = (1280, 900);

/// How much of the page's text a timeout quotes.
const PAGE_TEXT_LIMIT: usize = 2000;

/// How many of chromedriver's last output lines an error quotes.
const OUTPUT_LINES_KEPT: usize = 40;

/// What the Debian packages are called, for the errors that say what to
/// install.
const INSTALL_HINT: &str =
    "install Debian's packages: apt-get install chromium chromium-driver fonts-dejavu-core";

/// Why the browser could not be started or could not do what a test asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `chromedriver` on `PATH`: install it (see the message).
    #[error("no `chromedriver` on PATH; {INSTALL_HINT}")]
    DriverMissing,
    /// No `chromium` on `PATH`: install it (see the message).
    #[error("no `chromium` on PATH; {INSTALL_HINT}")]
    ChromiumMissing,
    /// The process that runs `chromedriver` could not be started.
    #[error("could not start chromedriver")]
    DriverSpawn(#[source] std::io::Error),
    /// `chromedriver` exited, or did not say it was listening in time;
    /// its output says why.
    #[error("chromedriver did not start ({reason}); its output:\n{output}")]
    DriverNotReady {
        /// What went wrong: it exited, or the time it was given.
        reason: String,
        /// Its last lines of output.
        output: String,
    },
    /// `chromedriver` is running but could not start a Chromium session;
    /// its output (often Chromium's own complaint) follows the cause.
    #[error("chromedriver could not start a Chromium session; chromedriver's output:\n{output}")]
    Session {
        /// Why the session was refused.
        #[source]
        source: NewSessionError,
        /// chromedriver's last lines of output.
        output: String,
    },
    /// Starting the session took longer than it may.
    #[error(
        "starting a Chromium session took longer than {waited:?}; chromedriver's output:\n{output}"
    )]
    SessionTimeout {
        /// How long it was given.
        waited: Duration,
        /// chromedriver's last lines of output.
        output: String,
    },
    /// A WebDriver command failed: the page is not what the test expects
    /// (a selector that matches something not clickable, say), or the
    /// browser has gone.
    #[error("could not {action}")]
    Command {
        /// What the test asked for.
        action: String,
        /// What WebDriver answered.
        #[source]
        source: CmdError,
    },
    /// The page did not come to show what the test waits for: the page's
    /// text is quoted to show what it did show.
    #[error(
        "timed out after {waited:?} waiting for {condition} on {url}; the page's text:\n{page_text}"
    )]
    Timeout {
        /// What was waited for, naming the selector.
        condition: String,
        /// How long.
        waited: Duration,
        /// The page's address then.
        url: String,
        /// The page's visible text then (cut to a couple of thousand
        /// characters).
        page_text: String,
    },
    /// A screenshot could not be saved.
    #[error("could not save the screenshot {}", path.display())]
    Screenshot {
        /// Where it was to go.
        path: PathBuf,
        /// Why it could not.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether this is a wait that ran out of time (rather than a browser
    /// that failed).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    fn command(action: impl Into<String>) -> impl FnOnce(CmdError) -> Error {
        let action = action.into();
        move |source| Error::Command { action, source }
    }
}

/// Headless Chromium under a private `chromedriver`: see the [module
/// docs](self).
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session, for what the helpers do not cover.
    client: Client,
    /// How long the `wait_for*` helpers (and the helpers that wait for an
    /// element before acting on it) wait.
    wait: Duration,
    /// chromedriver and its Chromium, ended with the `Browser` (at once
    /// on drop, after closing the session on [`Browser::close`]).
    driver: Driver,
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session with a fresh
    /// profile.
    pub async fn start() -> Result<Browser, Error> {
        let driver_program = find_on_path("chromedriver").ok_or(Error::DriverMissing)?;
        let chromium = find_on_path("chromium").ok_or(Error::ChromiumMissing)?;
        let driver = Driver::start_retrying(&driver_program).await?;

        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities(&chromium, driver.profile.path()));
        let url = format!("http://127.0.0.1:{}", driver.port);
        let client = match tokio::time::timeout(SESSION_TIMEOUT, builder.connect(&url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(source)) => {
                return Err(Error::Session {
                    source,
                    output: driver.output(),
                });
            }
            Err(_) => {
                return Err(Error::SessionTimeout {
                    waited: SESSION_TIMEOUT,
                    output: driver.output(),
                });
            }
        };
        let browser = Browser {
            client,
            wait: DEFAULT_WAIT,
            driver,
        };
        browser.fit_viewport().await?;
        Ok(browser)
    }

    /// Makes the page's viewport (what a screenshot shows) exactly
    /// [`WINDOW_SIZE`]: headless Chromium still counts room for a toolbar
    /// in the window's size.
    async fn fit_viewport(&self) -> Result<(), Error> {
        let (width, height) = WINDOW_SIZE;
        let action = || format!("size the viewport to {width}x{height}");
        let script = "return [window.outerWidth - window.innerWidth, \
                      window.outerHeight - window.innerHeight]";
        let frame = self
            .client
            .execute(script, Vec::new())
            .await
            .map_err(Error::command(action()))?;
        let frame = |i: usize| {
            frame[i]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        self.client
            .set_window_size(width + frame(0), height + frame(1))
            .await
            .map_err(Error::command(action()))
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sets how long the `wait_for*` helpers wait (default
    /// [`DEFAULT_WAIT`]).
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Opens `url` and returns once it has loaded.
    pub async fn goto(&self, url: &str) -> Result<(), Error> {
        self.client
            .goto(url)
            .await
            .map_err(Error::command(format!("open {url}")))
    }

    /// Waits until an element matches the CSS `selector`; returns the
    /// first.
    pub async fn wait_for(&self, selector: &str) -> Result<Element, Error> {
        self.poll(format!("an element matching `{selector}`"), async || {
            let found = self.client.find_all(Locator::Css(selector)).await?;
            Ok(found.into_iter().next())
        })
        .await
    }

    /// Waits until an element matching the CSS `selector` shows `text`
    /// (as part of its visible text); returns that element.
    pub async fn wait_for_text(&self, selector: &str, text: &str) -> Result<Element, Error> {
        self.poll(
            format!("an element matching `{selector}` to show {text:?}"),
            async || {
                for element in self.client.find_all(Locator::Css(selector)).await? {
                    if element.text().await?.contains(text) {
                        return Ok(Some(element));
                    }
                }
                Ok(None)
            },
        )
        .await
    }

    /// Waits until no element matches the CSS `selector` (a row gone from
    /// a list, say).
    pub async fn wait_for_absent(&self, selector: &str) -> Result<(), Error> {
        self.poll(format!("no element to match `{selector}`"), async || {
            let found = self.client.find_all(Locator::Css(selector)).await?;
            Ok(found.is_empty().then_some(()))
        })
        .await
    }

    /// Waits for an element matching `selector` and clicks it.
    pub async fn click(&self, selector: &str) -> Result<(), Error> {
        self.wait_for(selector)
            .await?
            .click()
            .await
            .map_err(Error::command(format!("click `{selector}`")))
    }

    /// Waits for the field matching `selector`, empties it and types
    /// `text` into it.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<(), Error> {
        let field = self.wait_for(selector).await?;
        let action = || format!("fill `{selector}` with {text:?}");
        field.clear().await.map_err(Error::command(action()))?;
        field
            .send_keys(text)
            .await
            .map_err(Error::command(action()))
    }

    /// Waits for an element matching `selector` and returns its visible
    /// text.
    pub async fn text(&self, selector: &str) -> Result<String, Error> {
        self.wait_for(selector)
            .await?
            .text()
            .await
            .map_err(Error::command(format!("read the text of `{selector}`")))
    }

    /// Waits for a `confirm()` (or `alert()`) dialog, accepts it and
    /// returns its message, so that the test can check what the page
    /// asked.
    pub async fn accept_dialog(&self) -> Result<String, Error> {
        let message = self
            .poll("a dialog".to_owned(), async || {
                match self.client.get_alert_text().await {
                    Ok(message) => Ok(Some(message)),
                    Err(err) if err.is_no_such_alert() => Ok(None),
                    Err(err) => Err(err),
                }
            })
            .await?;
        self.client
            .accept_alert()
            .await
            .map_err(Error::command(format!("accept the dialog {message:?}")))?;
        Ok(message)
    }

    /// Saves what the window shows as
    /// `<target dir>/dashboard-screenshots/<test_name>.png` and returns
    /// the path.
    pub async fn screenshot(&self, test_name: &str) -> Result<PathBuf, Error> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(Error::command("take a screenshot"))?;
        let dir = screenshot_dir();
        let path = dir.join(format!("{}.png", file_name(test_name)));
        let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png));
        saved.map_err(|source| Error::Screenshot {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Ends the session, which lets chromedriver close Chromium in order,
    /// then ends chromedriver. Dropping a `Browser` ends them too, at
    /// once.
    pub async fn close(self) -> Result<(), Error> {
        let Browser { client, driver, .. } = self;
        let closed = client
            .close()
            .await
            .map_err(Error::command("close the session"));
        drop(driver);
        closed
    }

    /// Asks `attempt` until it finds what it looks for, or until the wait
    /// is over. An element replaced between being found and being read
    /// (as live updates do) counts as not found yet.
    async fn poll<T>(
        &self,
        condition: String,
        mut attempt: impl AsyncFnMut() -> Result<Option<T>, CmdError>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + self.wait;
        loop {
            match attempt().await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(err) if err.is_stale_element_reference() || err.is_no_such_element() => {}
                Err(source) => {
                    return Err(Error::Command {
                        action: format!("wait for {condition}"),
                        source,
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(self.timeout(condition).await);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The error for a wait that ran out, with what the page shows.
    async fn timeout(&self, condition: String) -> Error {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(err) => format!("(address unknown: {err})"),
        };
        let script = "return document.body ? document.body.innerText : ''";
        let page_text = match self.client.execute(script, Vec::new()).await {
            Ok(text) => {
                let text = text.as_str().unwrap_or_default();
                match text.char_indices().nth(PAGE_TEXT_LIMIT) {
                    Some((cut, _)) => format!("{}…", &text[..cut]),
                    None => text.to_owned(),
                }
            }
            Err(err) => format!("(unreadable: {err})"),
        };
        Error::Timeout {
            condition,
            waited: self.wait,
            url,
            page_text,
        }
    }
}

/// Where screenshots go: `dashboard-screenshots` in the workspace's target
/// directory (`CARGO_TARGET_DIR`, taken relative to the workspace root as
/// CI sets it, else `target/` there).
pub fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ebb-tests lives inside the workspace");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    target.join("dashboard-screenshots")
}

/// A test's name as a file name: a module path's `::` and anything else
/// that could leave the directory become `_`.
fn file_name(test_name: &str) -> String {
    test_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn capabilities(chromium: &Path, profile: &Path) -> fantoccini::wd::Capabilities {
    let (width, height) = WINDOW_SIZE;
    let args = [
        "--headless=new".to_owned(),
        // The tests run as root (CI does), where Chromium's sandbox
        // refuses to start.
        "--no-sandbox".to_owned(),
        // /dev/shm is small in containers; Chromium crashes tabs when it
        // fills.
        "--disable-dev-shm-usage".to_owned(),
        "--disable-gpu".to_owned(),
        // No request to any host but the one under test: the machines
        // have no other network, and a test must not depend on one.
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-default-apps".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        "--metrics-recording-only".to_owned(),
        format!("--window-size={width},{height}"),
        format!("--user-data-dir={}", profile.display()),
    ];
    let options = serde_json::json!({
        "binary": chromium,
        "args": args,
    });
    let mut capabilities = fantoccini::wd::Capabilities::new();
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    capabilities
}

/// The first executable called `name` in `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// A running `chromedriver`, the Chromium it starts and their profile
/// directory, all ended when this is dropped.
///
/// Killing chromedriver alone leaves its Chromium running (chromedriver
/// only closes it on a request or a polite signal), so chromedriver runs
/// in a process group of its own, under a small shell that is the group's
/// leader, and the whole group is killed. That shell also waits for its
/// standard input to close, which happens when this process ends however
/// it ends (killed by a test runner's timeout, say), and then kills the
/// group itself: no browser outlives the tests.
#[derive(Debug)]
struct Driver {
    /// The shell that leads the group; `kill_on_drop` as a last resort.
    child: Child,
    /// The group's id (the shell's process id).
    group: libc::pid_t,
    /// Held only to be closed: its closing is the shell's signal to end
    /// the group.
    _lifeline: ChildStdin,
    /// The port chromedriver listens on, on 127.0.0.1.
    port: u16,
    /// chromedriver's (and Chromium's) last lines of output, for errors.
    output: Arc<Mutex<VecDeque<String>>>,
    /// Chromium's fresh profile, with its crash reports and caches.
    /// Declared after `child` so that it is removed after the group has
    /// been killed.
    profile: tempfile::TempDir,
}

impl Driver {
    /// [`start`](Self::start), tried again when chromedriver gives up at
    /// once: with `--port=0` it binds IPv6 first and then IPv4 on the same
    /// port, which another process may hold ("IPv4 port not available.
    /// Exiting..."); another try picks another port.
    async fn start_retrying(program: &Path) -> Result<Driver, Error> {
        const TRIES: usize = 3;
        let mut tried = 1;
        loop {
            match Driver::start(program).await {
                Err(Error::DriverNotReady { .. }) if tried < TRIES => tried += 1,
                started => return started,
            }
        }
    }

    async fn start(program: &Path) -> Result<Driver, Error> {
        let profile = tempfile::Builder::new()
            .prefix("ebb-chromium-")
            .tempdir()
            .map_err(Error::DriverSpawn)?;
        // `--port=0`: chromedriver picks a free port and says which, so
        // there is no window in which another process could take it.
        // Background jobs of a non-interactive shell read /dev/null, so
        // only the shell holds the lifeline.
        let script = r#""$@" 2>&1 & read -r _; kill -KILL 0"#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(program)
            .arg("--port=0")
            // Chromium keeps its crash reports and caches under these, not
            // in the profile: they go in the profile's directory too, so
            // that a run leaves nothing in the user's home.
            .env("XDG_CONFIG_HOME", profile.path().join("config"))
            .env("XDG_CACHE_HOME", profile.path().join("cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(Error::DriverSpawn)?;
        let lifeline = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let group = child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
            .expect("a process just spawned has an id");
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let mut driver = Driver {
            child,
            group,
            _lifeline: lifeline,
            port: 0,
            output: Arc::clone(&output),
            profile,
        };
        let ready = tokio::time::timeout(DRIVER_READY_TIMEOUT, read_port(stdout, output)).await;
        driver.port = match ready {
            Ok(Some(port)) => port,
            Ok(None) => {
                return Err(Error::DriverNotReady {
                    reason: "it exited".to_owned(),
                    output: driver.output(),
                });
            }
            Err(_) => {
                return Err(Error::DriverNotReady {
                    reason: format!("not listening after {DRIVER_READY_TIMEOUT:?}"),
                    output: driver.output(),
                });
            }
        };
        Ok(driver)
    }

    fn output(&self) -> String {
        let lines = self.output.lock().expect("output lock");
        let joined: Vec<&str> = lines.iter().map(String::as_str).collect();
        joined.join("\n")
    }
}

/// Reads chromedriver's output until it says which port it listens on;
/// `None` if it ends first. What follows keeps being read (by a task), so
/// that chromedriver never blocks on a full pipe.
async fn read_port(stdout: ChildStdout, output: Arc<Mutex<VecDeque<String>>>) -> Option<u16> {
    let mut lines = BufReader::new(stdout).lines();
    let keep = move |line: String| {
        let mut kept = output.lock().expect("output lock");
        if kept.len() == OUTPUT_LINES_KEPT {
            kept.pop_front();
        }
        kept.push_back(line);
    };
    while let Ok(Some(line)) = lines.next_line().await {
        // It gives up without closing its output, which the shell around
        // it holds: its last words are what says so.
        if line.contains("Exiting") {
            keep(line);
            return None;
        }
        let port = line
            .split_once("started successfully on port ")
            .and_then(|(_, rest)| rest.trim_end_matches('.').trim().parse().ok());
        keep(line);
        if port.is_some() {
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    keep(line);
                }
            });
            return port;
        }
    }
    None
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // it touches no memory of ours.
        unsafe {
            libc::kill(-self.group, libc::SIGKILL);
        }
        let _ = self.child.start_kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_cannot_leave_the_screenshot_directory() {
        assert_eq!(
            file_name("overview_lists_categories"),
            "overview_lists_categories"
        );
        assert_eq!(file_name("parked::replay"), "parked__replay");
        assert_eq!(file_name("../../etc/x"), "______etc_x");
    }
}
