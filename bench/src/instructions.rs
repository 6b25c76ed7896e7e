//! Instructions retired, which unlike wall time hardly move with other
//! work on a shared machine or with code placement.
//!
//! Two ways: the kernel's hardware counter for the current thread
//! ([`Counter`], `perf_event_open`), where the kernel and the machine
//! offer one (a virtual machine often has no PMU: the kernel then refuses
//! with `ENOENT`); else [`callgrind`], valgrind's count of a program's
//! whole run, where valgrind is installed.

use std::path::Path;
use std::process::Command;

use crate::BoxError;

/// `struct perf_event_attr` up to its first published size
/// (`PERF_ATTR_SIZE_VER0`, 64 bytes), which every kernel accepts.
#[repr(C)]
#[derive(Debug, Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// The bit fields: `disabled` is bit 0, `exclude_kernel` bit 5,
    /// `exclude_hv` bit 6.
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_COUNT_HW_INSTRUCTIONS: u64 = 1;
const DISABLED: u64 = 1;
const EXCLUDE_KERNEL: u64 = 1 << 5;
const EXCLUDE_HV: u64 = 1 << 6;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_EVENT_IOC_RESET: libc::c_ulong = 0x2403;

/// The user-space instructions the current thread retires, counted by
/// the kernel.
#[derive(Debug)]
pub struct Counter {
    fd: libc::c_int,
}

impl Counter {
    /// A counter of the calling thread; an error saying why when the
    /// kernel refuses (no hardware counter, `perf_event_paranoid`, a
    /// seccomp filter).
    pub fn new() -> Result<Self, String> {
        let attr = PerfEventAttr {
            kind: PERF_TYPE_HARDWARE,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: PERF_COUNT_HW_INSTRUCTIONS,
            flags: DISABLED | EXCLUDE_KERNEL | EXCLUDE_HV,
            ..PerfEventAttr::default()
        };
        // SAFETY: the attribute is a valid, fully initialized
        // perf_event_attr of the size it states; pid 0 and cpu -1 count
        // the calling thread on any CPU; no group, no flags.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &raw const attr,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                0 as libc::c_ulong,
            )
        };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            return Err(format!(
                "perf_event_open(PERF_COUNT_HW_INSTRUCTIONS) refused: {err} \
                 (perf_event_paranoid {})",
                std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                    .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned())
            ));
        }
        Ok(Self {
            fd: fd as libc::c_int,
        })
    }

    fn ioctl(&self, request: libc::c_ulong) {
        // SAFETY: fd is a perf event this counter owns; these requests
        // take no argument.
        unsafe {
            libc::ioctl(self.fd, request as _, 0);
        }
    }

    /// The instructions retired while `f` ran.
    pub fn count(&self, f: impl FnOnce()) -> Result<u64, BoxError> {
        self.ioctl(PERF_EVENT_IOC_RESET);
        self.ioctl(PERF_EVENT_IOC_ENABLE);
        f();
        self.ioctl(PERF_EVENT_IOC_DISABLE);
        let mut value = 0u64;
        // SAFETY: reads 8 bytes into a u64 owned here.
        let read = unsafe { libc::read(self.fd, (&raw mut value).cast(), 8) };
        if read != 8 {
            return Err(format!(
                "reading the instruction counter: {}",
                std::io::Error::last_os_error()
            )
            .into());
        }
        Ok(value)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        // SAFETY: fd is owned by this counter and closed once.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// Whether `valgrind` can be run.
pub fn callgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The instructions of `program args`'s whole run under callgrind (its
/// `summary`), with the output file kept in `dir`.
pub fn callgrind(program: &Path, args: &[&str], dir: &Path) -> Result<u64, BoxError> {
    let out = dir.join(format!("callgrind.{}.out", std::process::id()));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(program)
        .args(args)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "callgrind of {} {}: {}\n{}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .ok_or_else(|| "no summary in callgrind's output".into())
}
