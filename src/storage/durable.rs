//! Durability of the file backend. object_store's local store writes a
//! file and renames it into place but never fsyncs, so a crash could lose
//! bytes whose row was already committed. [`flush`] runs after the bytes
//! are written and before the row that names them is committed: it
//! fsyncs the file and every directory from it up to the backend's root
//! (new shard directories included). Other backends (S3) are durable when
//! their put returns; for them it does nothing.
//!
//! A directory's own entry in its parent needs an fsync only once: the
//! directories above a file's own directory are fsynced the first time
//! this process meets them and remembered ([`sync_dirs`]), so a steady
//! stream of uploads costs one file fsync and one directory fsync each.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::errors::{StorageError, StorageResult};
use super::{backend, Storage};

/// Makes the bytes at `path` (an object_store path) durable.
pub async fn flush(s: &Storage, path: &object_store::path::Path) -> StorageResult<()> {
    if s.config().backend != "file" {
        return Ok(());
    }
    let root = backend::file_root(&s.app.config);
    let file = backend::file_path(&root, path);
    tokio::task::spawn_blocking(move || sync_up_to(&file, &root))
        .await
        .map_err(|e| StorageError::Flush { path: String::new(), source: std::io::Error::other(e.to_string()) })?
}

fn sync(p: &Path) -> StorageResult<()> {
    File::open(p).and_then(|f| f.sync_all()).map_err(|source| StorageError::Flush { path: p.display().to_string(), source })
}

/// fsyncs `file`, then the directories above it ([`sync_dirs`]).
fn sync_up_to(file: &Path, root: &Path) -> StorageResult<()> {
    sync(file)?;
    sync_dirs(file.parent().unwrap_or(root), root)
}

/// Directories whose entries in their parents are known durable.
fn durable_dirs() -> &'static Mutex<HashSet<PathBuf>> {
    static DIRS: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    DIRS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Makes the entries of `dir` durable (fsync of `dir`), and `dir`'s own
/// entry and those above it up to and including `root`, unless this
/// process already did so.
pub fn sync_dirs(dir: &Path, root: &Path) -> StorageResult<()> {
    sync(dir)?;
    let known = |d: &Path| durable_dirs().lock().map(|set| set.contains(d)).unwrap_or(false);
    let mut d = dir.to_path_buf();
    while d != root && d.starts_with(root) && !known(&d) {
        let Some(parent) = d.parent().map(Path::to_path_buf) else { break };
        sync(&parent)?;
        if let Ok(mut set) = durable_dirs().lock() {
            set.insert(d);
        }
        d = parent;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_a_file_and_its_directories() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("objects").join("ab");
        std::fs::create_dir_all(&dir).expect("dirs");
        let file = dir.join("v1");
        std::fs::write(&file, b"bytes").expect("write");
        assert!(sync_up_to(&file, root.path()).is_ok());
        let missing = sync_up_to(&dir.join("gone"), root.path());
        assert!(matches!(missing, Err(StorageError::Flush { .. })));
    }
}
