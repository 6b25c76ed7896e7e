//! Which operating-system user runs the server.
//!
//! PostgreSQL refuses to run as root, and CI containers commonly run as
//! root; so when we are root we hand the server to an unprivileged account.

use std::ffi::CString;

use crate::Error;

/// An unprivileged account to run PostgreSQL (and its client tools) as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    /// The account's user id, for `setuid` in the child.
    pub(crate) uid: u32,
    /// Its primary group, for `setgid` in the child.
    pub(crate) gid: u32,
}

/// `None` when we are not root: then everything runs as the current user.
/// As root: the `postgres` system user if it exists (it does wherever
/// Debian's package is installed), else `nobody`.
pub(crate) fn run_as() -> Result<Option<RunAs>, Error> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(account) = lookup(name)? {
            if account.uid != 0 {
                return Ok(Some(account));
            }
        }
    }
    Err(Error::NoUnprivilegedUser)
}

/// Looks up a user by name with the thread-safe `getpwnam_r`.
fn lookup(name: &str) -> Result<Option<RunAs>, Error> {
    let c_name =
        CString::new(name).map_err(|e| Error::io(format!("look up user `{name}`"), e.into()))?;
    let mut buf_len = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; buf_len];
        // SAFETY: zeroed passwd is a valid value of a plain C struct.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size;
        // `result` is set to `&mut pwd` or null.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf_len < 1 << 20 {
            buf_len *= 4;
            continue;
        }
        if rc != 0 {
            return Err(Error::io(
                format!("look up user `{name}`"),
                std::io::Error::from_raw_os_error(rc),
            ));
        }
        if result.is_null() {
            return Ok(None);
        }
        return Ok(Some(RunAs {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_and_missing_user_does_not() {
        assert_eq!(lookup("root").unwrap().map(|a| a.uid), Some(0));
        assert_eq!(lookup("no-such-user-ebb-localpg").unwrap(), None);
    }
}
