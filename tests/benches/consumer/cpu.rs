//! Where a pass's time goes: CPU seconds of the client process (pgbench or the consumer's) and of the server, measured around each pass.
//!
//! On a shared machine wall time swings with other work; CPU time barely
//! does, so these figures tell the client's cost from the server's even
//! when the rates are disturbed.

use std::path::Path;

use ebb_bench::BoxError;

/// Clock ticks per second of `/proc`'s times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU seconds (user + system) of this process's reaped children: each
/// pass's client process (pgbench, or the consumer) is one.
pub(crate) fn children_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU seconds of the whole server: the postmaster, its reaped children
/// (a pass's backend exits with its connection) and its live ones (the
/// background writer, the WAL writer, ...).
pub(crate) fn server_seconds(socket_dir: &Path) -> Result<f64, BoxError> {
    let pid_file = std::fs::read_to_string(socket_dir.join("data").join("postmaster.pid"))?;
    let postmaster: u32 = pid_file
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or("no pid in postmaster.pid")?;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command name, which is in parentheses and
        // may hold spaces: state is field 3, ppid 4, utime 14, stime 15,
        // cutime 16, cstime 17.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .take(15)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        if fields.len() < 15 {
            continue;
        }
        let (ppid, utime, stime, cutime, cstime) =
            (fields[0], fields[10], fields[11], fields[12], fields[13]);
        if pid == postmaster {
            ticks += utime + stime + cutime + cstime;
        } else if ppid == u64::from(postmaster) {
            ticks += utime + stime;
        }
    }
    Ok(ticks as f64 / ticks_per_second())
}
