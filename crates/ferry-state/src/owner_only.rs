//! The state file holds sign-in tokens, so it and every file beside it that SQLite or
//! ferry keep (`-wal`, `-shm`, the run lock) are readable by their owner only, whatever
//! the umask. New files are created `0600`; an existing file open to group or others is
//! tightened, and the caller is told so it can say it.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A file whose permissions ferry narrowed to owner-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightened {
    pub path: PathBuf,
    /// The permission bits it had (`0o644`).
    pub was: u32,
}

impl std::fmt::Display for Tightened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was readable by other users (mode {:04o}); it is now owner-only (0600) because it holds sign-in tokens",
            self.path.display(),
            self.was
        )
    }
}

/// Opens `path` for reading and writing, creating it `0600` if it does not exist (the
/// mode is set at creation, so no other user ever sees it open).
pub fn open_owner_only(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Creates `path` empty and `0600` unless it exists.
pub fn create_owner_only(path: &Path) -> io::Result<()> {
    open_owner_only(path).map(drop)
}

/// Narrows an existing file open to group or others to `0600`. `Ok(None)`: it was
/// already owner-only, or it does not exist.
#[cfg(unix)]
pub fn tighten(path: &Path) -> io::Result<Option<Tightened>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700 | 0o600))?;
    Ok(Some(Tightened {
        path: path.to_path_buf(),
        was: mode,
    }))
}

/// Elsewhere permissions are ACLs ferry does not manage.
#[cfg(not(unix))]
pub fn tighten(_path: &Path) -> io::Result<Option<Tightened>> {
    Ok(None)
}

/// `path` with `suffix` appended to its file name (`ferry.db` → `ferry.db-wal`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_file_is_owner_only_and_a_loose_one_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        create_owner_only(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(tighten(&p).unwrap(), None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = tighten(&p).unwrap().unwrap();
        assert_eq!(t.was, 0o644);
        assert_eq!(mode(&p), 0o600);
        assert!(t.to_string().contains(&p.display().to_string()), "{t}");
        assert_eq!(tighten(&dir.path().join("missing")).unwrap(), None);
    }
}
