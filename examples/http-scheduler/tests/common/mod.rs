//! What the scheduler's tests share: the real binary as a child process,
//! a client of its API, and a target server on 127.0.0.1 that counts the
//! calls it gets by path and `Idempotency-Key`.

#![allow(dead_code)] // each test file uses its own share of this module

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebb_localpg::TestDatabase;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// Settings every test instance gets unless it says otherwise: loopback
/// targets allowed, short timeouts and leases.
pub const TEST_SETTINGS: &[(&str, &str)] = &[
    ("EBB_SCHEDULER_ADDR", "127.0.0.1:0"),
    ("EBB_SCHEDULER_ALLOW_LOOPBACK", "1"),
    ("EBB_SCHEDULER_CALL_TIMEOUT_MS", "1000"),
    ("EBB_SCHEDULER_MAX_RETRY_AFTER_MS", "1500"),
    ("EBB_SCHEDULER_CALLBACK_RETRY_MS", "50,100"),
    ("EBB_SCHEDULER_LEASE_MARGIN_MS", "300"),
    ("RUST_LOG", "info"),
];

/// One running `http-scheduler`.
pub struct Instance {
    child: Child,
    /// Where its API listens.
    pub addr: SocketAddr,
    /// Its log lines so far.
    log: Arc<Mutex<Vec<String>>>,
    name: String,
}

impl Instance {
    /// Starts the binary on `db` with [`TEST_SETTINGS`], overridden or
    /// extended by `env`, and waits until its API answers.
    pub async fn start(name: &str, db: &TestDatabase, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_http-scheduler"));
        command
            .env("DATABASE_URL", db.connection_string())
            .env_remove("EBB_SCHEDULER_ALLOW_PRIVATE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in TEST_SETTINGS {
            command.env(key, value);
        }
        for (key, value) in env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        let mut child = command.spawn().expect("the http-scheduler binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = tokio::sync::oneshot::channel();
        let lines = Arc::clone(&log);
        tokio::spawn(async move {
            let mut found = Some(found);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(at) = line.find(http_scheduler::LOG_LISTENING) {
                    let addr = line[at + http_scheduler::LOG_LISTENING.len()..]
                        .split_whitespace()
                        .next()
                        .and_then(|addr| addr.parse::<SocketAddr>().ok());
                    if let (Some(found), Some(addr)) = (found.take(), addr) {
                        let _ = found.send(addr);
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let Ok(Ok(addr)) = tokio::time::timeout(Duration::from_secs(20), address).await else {
            panic!(
                "{name} did not say where it listens:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        let instance = Self {
            child,
            addr,
            log,
            name: name.to_owned(),
        };
        let api = instance.api();
        wait_until(
            &format!("{name}'s API answers"),
            Duration::from_secs(20),
            || {
                let api = api.clone();
                async move { api.try_get("/jobs").await.is_some() }
            },
        )
        .await;
        instance
    }

    /// A client of its API.
    pub fn api(&self) -> Api {
        Api {
            base: format!("http://{}", self.addr),
            client: reqwest::Client::new(),
        }
    }

    /// SIGKILLs it and waits for it to die.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }

    /// SIGTERMs it; its exit code.
    pub async fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: kill(2) on our own child, not yet waited for.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("it stops within 20 s")
            .expect("wait");
        status.code()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Instance {
    // A failing test shows what the instance logged.
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log());
        }
    }
}

/// A client of an instance's API.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// The status and JSON of `GET path`, `None` when it cannot be
    /// reached.
    pub async fn try_get(&self, path: &str) -> Option<(u16, Value)> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, json_of(response).await))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.try_get(path)
            .await
            .unwrap_or_else(|| panic!("GET {path} got no answer"))
    }

    /// `POST path` with `body` as it is.
    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("POST answered");
        let status = response.status().as_u16();
        (status, json_of(response).await)
    }

    /// `POST /jobs` with `job`; the new job's id (panics unless 201).
    pub async fn create(&self, job: &Value) -> String {
        let (status, body) = self.post_raw("/jobs", &job.to_string()).await;
        assert_eq!(status, 201, "POST /jobs {job}: {body}");
        body["id"].as_str().expect("an id").to_owned()
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .delete(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("DELETE answered");
        let status = response.status().as_u16();
        (status, json_of(response).await)
    }

    /// `GET /jobs/ID` (panics unless 200).
    pub async fn job(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/jobs/{id}")).await;
        assert_eq!(status, 200, "GET /jobs/{id}: {body}");
        body
    }

    /// `GET /jobs/ID/history`'s runs.
    pub async fn history(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/jobs/{id}/history?limit=1000")).await;
        assert_eq!(status, 200, "history of {id}: {body}");
        body["runs"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until job `id` is in one of `states`; the job.
    pub async fn wait_for_state(&self, id: &str, states: &[&str], within: Duration) -> Value {
        let api = self.clone();
        let owned: Vec<String> = states.iter().map(|s| (*s).to_owned()).collect();
        wait_until(&format!("job {id} in {states:?}"), within, move || {
            let (api, owned) = (api.clone(), owned.clone());
            let id = id.to_owned();
            async move {
                match api.try_get(&format!("/jobs/{id}")).await {
                    Some((200, job)) => owned.iter().any(|state| job["state"] == **state),
                    _ => false,
                }
            }
        })
        .await;
        self.job(id).await
    }
}

/// A response's body as JSON (`null` when it is not).
async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Polls `check` every 50 ms until it holds; panics after `within`.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(started.elapsed() < within, "waited {within:?} for {what}");
        // A poll: `check` is asked again until it holds.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request the target got.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The path, without the query.
    pub path: String,
    /// The `Idempotency-Key` header.
    pub key: String,
    /// The method.
    pub method: String,
    /// Headers, names lowercase.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: String,
    /// What it answered: a status, or 0 for a reset connection.
    pub answered: u16,
    /// When it arrived.
    pub at: Instant,
}

/// A test's target on 127.0.0.1: answers by path (see [`Target::start`])
/// and records every request.
#[derive(Clone)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Lets the calls to `/held` answer, once true.
    released: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Target {
    /// Starts a target. Its paths:
    ///
    /// - `/ok`: 200, body `ok KEY`;
    /// - `/status/N`: status N;
    /// - `/slow?ms=D`: 200 after D ms;
    /// - `/held`: 200 once the test lets it ([`Target::release_held`]);
    /// - `/flaky?fail=N&mode=503|reset&retryAfter=S`: the first N
    ///   requests with a key fail (503 with `Retry-After: S`, or a reset
    ///   connection), later ones get 200;
    /// - `/big?bytes=N`: 200 with N bytes of `x`;
    /// - `/redirect?to=URL`: 302 to URL;
    /// - anything else: 404.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new(tokio::sync::watch::Sender::new(false));
        let recorded = Arc::clone(&hits);
        let release = Arc::clone(&released);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let hits = Arc::clone(&recorded);
                let released = release.subscribe();
                tokio::spawn(async move {
                    let _ = serve(socket, hits, released).await;
                });
            }
        });
        Self {
            addr,
            hits,
            released,
        }
    }

    /// Lets every call to `/held`, under way or to come, answer.
    pub fn release_held(&self) {
        self.released.send_replace(true);
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The requests to `path` with `key`.
    pub fn hits_for(&self, path: &str, key: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|hit| hit.path == path && hit.key == key)
            .collect()
    }
}

async fn serve(
    mut socket: TcpStream,
    hits: Arc<Mutex<Vec<Hit>>>,
    mut released: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let at = Instant::now();
    let mut reader = BufReader::new(&mut socket);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|length| length.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: HashMap<&str, String> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k, percent_decode(v)))
        .collect();
    let key = headers.get("idempotency-key").cloned().unwrap_or_default();
    let earlier = hits
        .lock()
        .unwrap()
        .iter()
        .filter(|hit| hit.path == path && hit.key == key)
        .count();
    let number = |name: &str, default: u64| {
        query
            .get(name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    // (status, extra headers, body); status 0 resets the connection.
    let mut delay = Duration::ZERO;
    let mut held = false;
    let (status, extra, reply): (u16, Vec<(String, String)>, String) = match path {
        "/ok" => (200, vec![], format!("ok {key}")),
        "/held" => {
            held = true;
            (200, vec![], format!("held {key}"))
        }
        "/slow" => {
            delay = Duration::from_millis(number("ms", 500));
            (200, vec![], format!("slow {key}"))
        }
        "/flaky" if (earlier as u64) < number("fail", 1) => {
            if query.get("mode").map(String::as_str) == Some("reset") {
                (0, vec![], String::new())
            } else {
                let after = number("retryAfter", 0).to_string();
                (503, vec![("Retry-After".into(), after)], "busy".into())
            }
        }
        "/flaky" => (200, vec![], format!("flaky {key}")),
        "/big" => (200, vec![], "x".repeat(number("bytes", 10_000) as usize)),
        "/redirect" => (
            302,
            vec![(
                "Location".into(),
                query.get("to").cloned().unwrap_or_default(),
            )],
            String::new(),
        ),
        _ => match path.strip_prefix("/status/").and_then(|n| n.parse().ok()) {
            Some(status) => (status, vec![], format!("status {status}")),
            None => (404, vec![], "no such path".into()),
        },
    };
    hits.lock().unwrap().push(Hit {
        path: path.to_owned(),
        key,
        method,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: status,
        at,
    });
    // Recorded on arrival, answered after the delay (a slow target is
    // what `/slow` is) or once let go: a test sees the call under way.
    tokio::time::sleep(delay).await;
    if held {
        let _ = released.wait_for(|released| *released).await;
    }
    if status == 0 {
        socket.set_zero_linger()?;
        drop(socket);
        return Ok(());
    }
    let mut response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.len()
    );
    for (name, value) in extra {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&reply);
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&value[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The store of `db`, for reading what the scheduler wrote.
pub fn store(db: &TestDatabase) -> ebb_message_store::PgStore {
    ebb_tests::store_for(db, 2)
}

/// The messages of `stream`.
pub async fn stream(db: &TestDatabase, stream: &str) -> Vec<ebb_message_store::Message> {
    use ebb_message_store::MessageStore as _;
    use futures_util::TryStreamExt as _;
    let store = store(db);
    store
        .read_stream(stream, ebb_message_store::StreamQuery::new())
        .try_collect()
        .await
        .expect("the stream reads")
}

/// The number of messages in the store.
pub async fn message_count(db: &TestDatabase) -> i64 {
    ebb_tests::count_messages(&ebb_tests::connect(db).await).await
}
