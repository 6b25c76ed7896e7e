//! Running instances of the component as child processes, the way a
//! supervisor does: start them, kill one (SIGKILL) and start it again,
//! restart one that exited with an error, stop them all with SIGTERM.
//! What `ebb demo` and the failure tests use.
//!
//! Each instance's log (standard error) is read line by line as it is
//! written: the lines are counted into a [`Tally`] (re-deliveries and
//! re-sends ignored, expected-version conflicts retried, errors) and,
//! when asked, copied into one file, each prefixed with its instance's
//! name. A killed process has written every line it counted, so the tally
//! survives kills, which counters kept inside the process would not.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::{LOG_CONFLICT, LOG_CONFLICT_KIND, LOG_REDELIVERY, LOG_RESEND};

/// What the instances' logs said, summed over every instance and every
/// start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The sequence (global position) of each command found applied
    /// already (by the other instance, or before a crash), once per line.
    pub redeliveries_ignored: Vec<i64>,
    /// The distinct commands ignored as re-sends (an instance each may log
    /// the same one).
    pub resends_ignored: BTreeSet<i64>,
    /// Expected-version conflicts retried.
    pub conflicts_retried: u64,
    /// Lines logged at ERROR, as written (the latest last).
    pub errors: Vec<String>,
}

/// How to start one instance: a program, its arguments, and environment
/// variables added to the supervisor's own.
#[derive(Debug, Clone)]
pub struct Program {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Tally {
    /// The re-deliveries and re-sends of the commands after global
    /// position `after` only (those of this run, when the database holds
    /// earlier ones that a restarted instance may see again); conflicts
    /// and errors name no command and are kept whole.
    #[must_use]
    pub fn after(&self, after: i64) -> Self {
        Self {
            redeliveries_ignored: self
                .redeliveries_ignored
                .iter()
                .copied()
                .filter(|&sequence| sequence > after)
                .collect(),
            resends_ignored: self
                .resends_ignored
                .iter()
                .copied()
                .filter(|&sequence| sequence > after)
                .collect(),
            conflicts_retried: self.conflicts_retried,
            errors: self.errors.clone(),
        }
    }
}

impl Program {
    /// `program` with no arguments.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds an argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// One started instance.
#[derive(Debug)]
struct Running {
    child: Child,
    /// Reads its log; ends at its end (the process's exit).
    reader: JoinHandle<()>,
    /// Set once its log says every consumer has started (its position
    /// read, its signal handlers in place).
    ready: Arc<AtomicBool>,
}

/// The host's line once every consumer has started.
const READY_LINE: &str = "every consumer has started";

/// Instances of the component under supervision; see the module
/// documentation. Dropping it kills every instance still running.
#[derive(Debug)]
pub struct Supervisor {
    programs: Vec<(String, Program)>,
    running: Vec<Option<Running>>,
    starts: Vec<u32>,
    tally: Arc<Mutex<Tally>>,
    log: Option<Arc<Mutex<File>>>,
}

impl Supervisor {
    /// Instances, each a name and how to start it; none started yet.
    pub fn new(instances: impl IntoIterator<Item = (String, Program)>) -> Self {
        let programs: Vec<_> = instances.into_iter().collect();
        let count = programs.len();
        Self {
            programs,
            running: (0..count).map(|_| None).collect(),
            starts: vec![0; count],
            tally: Arc::default(),
            log: None,
        }
    }

    /// Copies every instance's log lines, prefixed with its name, into
    /// the file at `path` (created, or truncated).
    pub fn log_to(&mut self, path: &Path) -> std::io::Result<()> {
        self.log = Some(Arc::new(Mutex::new(File::create(path)?)));
        Ok(())
    }

    /// How many instances there are.
    pub fn len(&self) -> usize {
        self.programs.len()
    }

    /// True with no instances.
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    /// Starts instance `index` (it must not be running).
    pub fn start(&mut self, index: usize) -> std::io::Result<()> {
        assert!(self.running[index].is_none(), "instance {index} is running");
        let (name, program) = &self.programs[index];
        let mut child = program.command().spawn()?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let tally = Arc::clone(&self.tally);
        let log = self.log.clone();
        let name = name.clone();
        let ready = Arc::new(AtomicBool::new(false));
        let readied = Arc::clone(&ready);
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(READY_LINE) {
                    readied.store(true, Ordering::Relaxed);
                }
                count(&tally, &line);
                if let Some(log) = &log {
                    let mut file = log.lock().expect("the log file's lock");
                    let _ = writeln!(file, "[{name}] {line}");
                }
            }
        });
        self.starts[index] += 1;
        self.running[index] = Some(Running {
            child,
            reader,
            ready,
        });
        Ok(())
    }

    /// Starts every instance not running.
    pub fn start_all(&mut self) -> std::io::Result<()> {
        for index in 0..self.len() {
            if self.running[index].is_none() {
                self.start(index)?;
            }
        }
        Ok(())
    }

    /// True while instance `index` runs (as far as the supervisor has
    /// seen: [`exited`](Self::exited) notices an exit).
    pub fn is_running(&self, index: usize) -> bool {
        self.running[index].is_some()
    }

    /// True once instance `index`, running, has logged that every
    /// consumer has started: from then on SIGTERM stops it cleanly.
    pub fn is_ready(&self, index: usize) -> bool {
        self.running[index]
            .as_ref()
            .is_some_and(|running| running.ready.load(Ordering::Relaxed))
    }

    /// Kills instance `index` with SIGKILL and waits for it; false if it
    /// was not running.
    pub async fn kill(&mut self, index: usize) -> std::io::Result<bool> {
        let Some(mut running) = self.running[index].take() else {
            return Ok(false);
        };
        running.child.kill().await?;
        let _ = running.reader.await;
        Ok(true)
    }

    /// The instances that have exited since last asked, with their exit
    /// status; each is no longer running, for the caller to start again.
    pub async fn exited(&mut self) -> std::io::Result<Vec<(usize, ExitStatus)>> {
        let mut exited = Vec::new();
        for index in 0..self.len() {
            let status = match &mut self.running[index] {
                Some(running) => running.child.try_wait()?,
                None => None,
            };
            if let Some(status) = status {
                let running = self.running[index].take().expect("running");
                let _ = running.reader.await;
                exited.push((index, status));
            }
        }
        Ok(exited)
    }

    /// Sends SIGTERM to every running instance and waits up to `timeout`
    /// for each to exit; one still running then is killed. Each
    /// instance's exit status, `None` for one killed or not running. An
    /// instance not yet [ready](Self::is_ready) may not have its signal
    /// handlers in place, and then dies of the signal.
    pub async fn stop(&mut self, timeout: Duration) -> Vec<Option<ExitStatus>> {
        let mut statuses = Vec::new();
        for running in self.running.iter().flatten() {
            if let Some(pid) = running.child.id() {
                // SAFETY: kill(2) with a child's pid we still own (not yet
                // waited for, so the pid is not reused) and a valid signal.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        for slot in &mut self.running {
            let Some(mut running) = slot.take() else {
                statuses.push(None);
                continue;
            };
            let status = match tokio::time::timeout(timeout, running.child.wait()).await {
                Ok(Ok(status)) => Some(status),
                _ => {
                    let _ = running.child.kill().await;
                    None
                }
            };
            let _ = running.reader.await;
            statuses.push(status);
        }
        statuses
    }

    /// How many times instance `index` was started.
    pub fn starts(&self, index: usize) -> u32 {
        self.starts[index]
    }

    /// Starts beyond each instance's first: the restarts.
    pub fn restarts(&self) -> u32 {
        self.starts
            .iter()
            .map(|starts| starts.saturating_sub(1))
            .sum()
    }

    /// What the logs have said so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().expect("the tally's lock").clone()
    }
}

/// Counts one log line.
fn count(tally: &Mutex<Tally>, line: &str) {
    let mut tally = tally.lock().expect("the tally's lock");
    if line.contains(LOG_REDELIVERY) {
        if let Some(sequence) = field(line, "sequence") {
            tally.redeliveries_ignored.push(sequence);
        }
    } else if line.contains(LOG_RESEND) {
        if let Some(sequence) = field(line, "sequence") {
            tally.resends_ignored.insert(sequence);
        }
    } else if line.contains(LOG_CONFLICT) && line.contains(LOG_CONFLICT_KIND) {
        tally.conflicts_retried += 1;
    } else if line.contains(" ERROR ") {
        tally.errors.push(line.to_owned());
    }
}

/// The integer `name=N` in a log line.
fn field(line: &str, name: &str) -> Option<i64> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_counted_by_what_they_say() {
        let tally = Mutex::new(Tally::default());
        for line in [
            format!(
                "2026-12-02T10:00:00Z  INFO account_component::handlers: {LOG_REDELIVERY} stream=account:command-1 sequence=7 applied=9"
            ),
            format!(
                "2026-12-02T10:00:00Z  INFO account_component::handlers: {LOG_RESEND} stream=account:command-1 sequence=12 reserved_by=3 id=\"d\""
            ),
            format!(
                "2026-12-02T10:00:00Z  INFO account_component::handlers: {LOG_RESEND} stream=account:command-1 sequence=12 reserved_by=3 id=\"d\""
            ),
            format!(
                "2026-12-02T10:00:00Z  INFO ebb_retry: {LOG_CONFLICT} cycle=0 error=Wrong expected version: 0 (Stream: account-1, Stream Version: 1) wait_ms=10 {LOG_CONFLICT_KIND}"
            ),
            format!(
                "2026-12-02T10:00:00Z  INFO ebb_retry: {LOG_CONFLICT} cycle=0 error=timed out wait_ms=10 kind=\"transient\""
            ),
            "2026-12-02T10:00:00Z ERROR ebb::consumer::host: the consumer stopped".to_owned(),
            "2026-12-02T10:00:00Z  INFO ebb_consumer: caught up".to_owned(),
        ] {
            count(&tally, &line);
        }
        let tally = tally.into_inner().unwrap();
        assert_eq!(tally.redeliveries_ignored, [7]);
        assert_eq!(tally.resends_ignored, BTreeSet::from([12]));
        assert_eq!(tally.conflicts_retried, 1);
        assert_eq!(tally.errors.len(), 1);
    }
}
