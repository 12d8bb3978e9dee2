//! The data directory: where Fluxbase keeps its secrets, its runtime state
//! and, by default, the embedded cluster.
//!
//! Files (all created on first start):
//! - `jwt_secret`: the generated HS256 secret, mode 0600;
//! - `state.json`: what the running server publishes for `fluxbase status`;
//! - `pg/`, `run/`, `postgresql.log`: the embedded cluster (see [`crate::embedded`]),
//!   or `cluster.json` saying where it was placed instead.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A data-directory problem, stated as one line a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The directory cannot be created or written.
    #[error("data directory {path} is not writable: {source} (choose another with --data-dir or FLUXBASE_DATA_DIR)")]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file inside it cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file inside it has unexpected content.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// An opened, writable data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// What a running server publishes in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuntimeState {
    /// Process id of the server.
    pub pid: u32,
    /// Base URL of the HTTP API.
    pub api_url: String,
    /// A URL a superuser client can connect with while the server runs.
    pub db_url: String,
    /// Fluxbase version that wrote the file.
    pub version: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Whether the database is the embedded cluster.
    pub embedded: bool,
}

impl DataDir {
    /// Creates the directory if needed and proves it writable.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let not_writable = |source| DataDirError::NotWritable { path: path.to_owned(), source };
        fs::create_dir_all(path).map_err(not_writable)?;
        let root = fs::canonicalize(path).map_err(not_writable)?;
        let probe = root.join(".write-test");
        fs::write(&probe, b"ok").map_err(|source| DataDirError::NotWritable { path: root.clone(), source })?;
        let _ = fs::remove_file(&probe);
        Ok(DataDir { root })
    }

    /// Opens an existing data directory without creating anything.
    pub fn existing(path: &Path) -> Result<DataDir, DataDirError> {
        let root = fs::canonicalize(path).map_err(|source| DataDirError::File { path: path.to_owned(), source })?;
        Ok(DataDir { root })
    }

    /// The directory's absolute path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Path of a file or directory inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Opens the directory for traversal by other users (mode 0711), so an
    /// unprivileged cluster user can reach a cluster placed inside it.
    pub fn allow_traversal(&self) -> Result<(), DataDirError> {
        let mode = fs::metadata(&self.root).map_err(|source| self.file_err(&self.root, source))?.permissions().mode();
        if mode & 0o011 != 0o011 {
            fs::set_permissions(&self.root, fs::Permissions::from_mode((mode & 0o700) | 0o011))
                .map_err(|source| self.file_err(&self.root, source))?;
        }
        Ok(())
    }

    fn file_err(&self, path: &Path, source: std::io::Error) -> DataDirError {
        DataDirError::File { path: path.to_owned(), source }
    }

    /// Reads a secret file, or creates it with `make()` (mode 0600) if absent.
    pub fn secret(&self, name: &str, make: impl FnOnce() -> String) -> Result<String, DataDirError> {
        let path = self.join(name);
        match fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(self.file_err(&path, source)),
        }
        let value = make();
        write_private(&path, value.as_bytes()).map_err(|source| self.file_err(&path, source))?;
        Ok(value)
    }

    /// Reads a secret file that must exist.
    pub fn read_secret(&self, name: &str) -> Result<Option<String>, DataDirError> {
        let path = self.join(name);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.file_err(&path, source)),
        }
    }

    /// Writes `state.json` atomically (mode 0600: it holds a database URL with a password).
    pub fn write_state(&self, state: &RuntimeState) -> Result<(), DataDirError> {
        let path = self.join("state.json");
        let tmp = self.join(".state.json.tmp");
        let body = serde_json::to_vec_pretty(state)
            .map_err(|e| DataDirError::Corrupt { path: path.clone(), message: e.to_string() })?;
        write_private(&tmp, &body).map_err(|source| self.file_err(&tmp, source))?;
        fs::rename(&tmp, &path).map_err(|source| self.file_err(&path, source))
    }

    /// Reads `state.json`, if a server has written one.
    pub fn read_state(&self) -> Result<Option<RuntimeState>, DataDirError> {
        let path = self.join("state.json");
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.file_err(&path, source)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| DataDirError::Corrupt { path, message: e.to_string() })
    }
}

/// An exclusive hold on a data directory, released when dropped or when the
/// process dies (it is an `flock`, so a `kill -9` releases it too).
#[derive(Debug)]
pub struct DataDirLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

impl DataDir {
    /// Takes the directory's lock, or says which process holds it.
    pub fn lock(&self) -> Result<DataDirLock, DataDirError> {
        let path = self.join("lock");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| self.file_err(&path, source))?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                use std::io::Seek;
                let _ = lock.set_len(0);
                let _ = lock.seek(std::io::SeekFrom::Start(0));
                let _ = write!(&mut *lock, "{}", std::process::id());
                Ok(DataDirLock { _lock: lock })
            }
            Err((_, errno)) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                Err(DataDirError::Corrupt {
                    path: self.root.clone(),
                    message: format!(
                        "another Fluxbase (pid {}) is using this data directory ({errno}); stop it or choose another --data-dir",
                        holder.trim()
                    ),
                })
            }
        }
    }

    /// Whether a live server holds the directory's lock.
    pub fn is_locked(&self) -> bool {
        match self.lock() {
            Ok(_) => false,
            Err(DataDirError::Corrupt { .. }) => true,
            Err(_) => false,
        }
    }
}

/// Writes a file readable only by its owner (0600), replacing any content.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        let a = d.secret("s", || "first".into()).expect("create");
        let b = d.secret("s", || "second".into()).expect("reuse");
        assert_eq!((a.as_str(), b.as_str()), ("first", "first"));
        let mode = fs::metadata(d.join("s")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        assert_eq!(d.read_state().expect("read"), None);
        let s = RuntimeState {
            pid: 1,
            api_url: "http://127.0.0.1:1".into(),
            db_url: "postgres://x".into(),
            version: "0".into(),
            started_at: "now".into(),
            embedded: true,
        };
        d.write_state(&s).expect("write");
        assert_eq!(d.read_state().expect("read"), Some(s));
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        let held = d.lock().expect("first lock");
        let e = d.lock().expect_err("second lock refused");
        assert!(e.to_string().contains("another Fluxbase"), "{e}");
        assert!(d.is_locked());
        drop(held);
        assert!(!d.is_locked());
        d.lock().expect("free again");
    }

    #[test]
    fn unwritable_directory_is_one_clear_error() {
        let e = DataDir::open(Path::new("/proc/fluxbase-cannot-exist")).expect_err("must fail");
        let m = e.to_string();
        assert!(m.contains("/proc/fluxbase-cannot-exist") && m.contains("--data-dir"), "{m}");
    }
}
