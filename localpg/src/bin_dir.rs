//! Finding PostgreSQL's server binaries.

use std::path::{Path, PathBuf};

use crate::Error;

/// Where Debian and Ubuntu install each major version's server binaries
/// (`/usr/lib/postgresql/15/bin`); they are not on `PATH` there.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// Finds a directory holding both `postgres` and `initdb`.
///
/// `PATH` comes first, so a user's own build wins; then
/// `/usr/lib/postgresql/*/bin`, highest version first.
pub fn find_bin_dir() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|dir| has_server_binaries(dir)) {
            return Ok(real_bin_dir(dir));
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            // "15", "9.6": compare numerically so that 10 sorts above 9.6.
            let version = name
                .split('.')
                .map(str::parse::<u32>)
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions
        .into_iter()
        .map(|(_, dir)| dir)
        .find(|dir| has_server_binaries(dir))
        .ok_or_else(|| Error::BinariesNotFound {
            searched: format!("PATH or {DEBIAN_ROOT}/*/bin"),
        })
}

/// Where the binaries really are when `dir` only holds links to them (e.g.
/// `/usr/local/bin/postgres -> /usr/lib/postgresql/15/bin/postgres`): the
/// real directory also has `psql` and `pgbench`, which
/// [`Cluster::command`](crate::Cluster::command) looks for there.
fn real_bin_dir(dir: PathBuf) -> PathBuf {
    std::fs::canonicalize(dir.join("postgres"))
        .ok()
        .and_then(|postgres| postgres.parent().map(Path::to_path_buf))
        .filter(|real| has_server_binaries(real))
        .unwrap_or(dir)
}

/// Whether `dir` holds both programs a cluster needs.
pub(crate) fn has_server_binaries(dir: &Path) -> bool {
    is_executable(&dir.join("postgres")) && is_executable(&dir.join("initdb"))
}

/// Whether `path` is a regular file someone may execute.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
