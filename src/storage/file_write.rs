//! Streaming an upload into the file backend, durably and at disk speed.
//!
//! object_store's local store stages multipart uploads through its own
//! part machinery and never fsyncs. Here the body goes to a staging file
//! next to its final name (`<version>#1`, a name object_store's listings
//! hide, so the orphan sweep never sees a half-written file), written by
//! one blocking task fed through a bounded channel. Every
//! `WRITEBACK_BYTES` the kernel is asked to start writing the range just
//! written (`sync_file_range`), so the disk works while the body still
//! arrives and the closing fsync waits only for the tail. Then the file is
//! fsynced, renamed into place, and its directory fsynced (directories
//! above it only the first time this process sees them, see
//! [`super::durable`]).
//!
//! The channel is closed without [`Msg::Finish`] when the upload fails or
//! its request is dropped (client gone): the staging file is removed and
//! nothing is renamed. Staging files a crash left behind are removed by the
//! sweep ([`remove_stale_staging`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::durable;
use super::errors::{StorageError, StorageResult};

/// Bytes between two requests to start writeback.
const WRITEBACK_BYTES: u64 = 8 << 20;
/// Chunks queued between the request and the writing task.
const QUEUE: usize = 16;

/// What the request sends the writing task.
#[derive(Debug)]
pub enum Msg {
    /// The next bytes of the body.
    Chunk(Bytes),
    /// The body is complete: make it durable and give it its name.
    Finish,
}

/// An upload in progress to `final_path`.
#[derive(Debug)]
pub struct FileWrite {
    tx: mpsc::Sender<Msg>,
    /// The writing task; taken once it has been awaited.
    task: Option<tokio::task::JoinHandle<StorageResult<()>>>,
}

impl FileWrite {
    /// Starts writing to `final_path` (under `root`, the backend's directory).
    pub fn start(root: PathBuf, final_path: PathBuf) -> FileWrite {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::task::spawn_blocking(move || write_all(&root, &final_path, rx));
        FileWrite { tx, task: Some(task) }
    }

    /// Queues `chunk`; waits while the queue is full.
    pub async fn put(&mut self, chunk: Bytes) -> StorageResult<()> {
        if self.tx.send(Msg::Chunk(chunk)).await.is_err() {
            // The task stopped early: its error says why.
            return Err(join(self.task.take()).await.err().unwrap_or_else(closed));
        }
        Ok(())
    }

    /// Completes the upload: the bytes are durable under their name on `Ok`.
    pub async fn finish(self) -> StorageResult<()> {
        let sent = self.tx.send(Msg::Finish).await.is_ok();
        let FileWrite { tx, task } = self;
        drop(tx);
        let done = join(task).await;
        if sent { done } else { done.and(Err(closed())) }
    }

    /// Abandons the upload; the staging file is removed.
    pub async fn abort(self) {
        let FileWrite { tx, task } = self;
        drop(tx);
        let _ = join(task).await;
    }
}

/// The writing task's outcome; an error if it was already awaited.
async fn join(task: Option<tokio::task::JoinHandle<StorageResult<()>>>) -> StorageResult<()> {
    match task {
        Some(task) => task.await.map_err(task_failed)?,
        None => Err(closed()),
    }
}

fn task_failed(e: tokio::task::JoinError) -> StorageError {
    StorageError::Flush { path: String::new(), source: std::io::Error::other(e.to_string()) }
}

fn closed() -> StorageError {
    StorageError::Flush { path: String::new(), source: std::io::Error::other("upload writer stopped") }
}

/// The staging name of `final_path`.
fn staging(final_path: &Path) -> PathBuf {
    let mut name = final_path.as_os_str().to_owned();
    name.push("#1");
    PathBuf::from(name)
}

/// Whether `name` is a staging name (`…#<digits>`, also object_store's).
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes staging files under `dir` (and its subdirectories) last
/// written before `cutoff`: uploads a crash or a stall longer than the
/// grace period left behind. An upload in flight rewrites its file
/// constantly, so it is never older. Returns how many were removed.
pub fn remove_stale_staging(dir: &Path, cutoff: std::time::SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            removed += remove_stale_staging(&path, cutoff);
        } else if entry.file_name().to_str().is_some_and(is_staging)
            && meta.modified().is_ok_and(|m| m <= cutoff)
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// The writing task: staging file, writeback as it goes, then on
/// [`Msg::Finish`] fsync, rename and directory fsync. Removes the staging
/// file on any failure or when the channel closes early.
fn write_all(root: &Path, final_path: &Path, mut rx: mpsc::Receiver<Msg>) -> StorageResult<()> {
    let stage = staging(final_path);
    let io = |source: std::io::Error| StorageError::Flush { path: stage.display().to_string(), source };
    let dir = final_path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = File::create(&stage).map_err(io)?;
    let result = (|| {
        let mut written: u64 = 0;
        let mut started: u64 = 0;
        loop {
            match rx.blocking_recv() {
                Some(Msg::Chunk(bytes)) => {
                    file.write_all(&bytes)?;
                    written += bytes.len() as u64;
                    if written - started >= WRITEBACK_BYTES {
                        start_writeback(&file, started, written - started);
                        started = written;
                    }
                }
                Some(Msg::Finish) => break,
                None => return Ok(false),
            }
        }
        file.sync_all()?;
        std::fs::rename(&stage, final_path)?;
        Ok(true)
    })();
    match result {
        Ok(true) => durable::sync_dirs(dir, root),
        Ok(false) => {
            let _ = std::fs::remove_file(&stage);
            Err(closed())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&stage);
            Err(io(e))
        }
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` back to disk,
/// without waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`; neither nix
/// nor rustix wraps it). Best effort: the closing fsync is what counts.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else { return };
    // SAFETY: a plain syscall on a descriptor `file` keeps open for the
    // call's duration; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        assert!(is_staging("0b6e-uuid#1"));
        assert!(is_staging("v#12"));
        assert!(!is_staging("v#"));
        assert!(!is_staging("v#1a"));
        assert!(!is_staging("v"));
    }

    #[test]
    fn stale_staging_files_are_removed() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("objects").join("ef");
        std::fs::create_dir_all(&dir).expect("dirs");
        std::fs::write(dir.join("v3#1"), b"left").expect("staging");
        std::fs::write(dir.join("v4"), b"kept").expect("object");
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        assert_eq!(remove_stale_staging(root.path(), before), 0);
        let after = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        assert_eq!(remove_stale_staging(root.path(), after), 1);
        assert!(dir.join("v4").exists());
        assert!(!dir.join("v3#1").exists());
    }

    #[tokio::test]
    async fn writes_renames_and_syncs() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("objects").join("ab").join("v1");
        let mut w = FileWrite::start(root.path().to_path_buf(), path.clone());
        let chunk = Bytes::from(vec![7u8; 3 << 20]);
        for _ in 0..4 {
            w.put(chunk.clone()).await.expect("put");
        }
        w.finish().await.expect("finish");
        assert_eq!(std::fs::metadata(&path).expect("written").len(), 12 << 20);
        assert!(!staging(&path).exists());
    }

    #[tokio::test]
    async fn an_abandoned_upload_leaves_nothing() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("objects").join("cd").join("v2");
        let mut w = FileWrite::start(root.path().to_path_buf(), path.clone());
        w.put(Bytes::from_static(b"half")).await.expect("put");
        w.abort().await;
        assert!(!path.exists());
        assert!(!staging(&path).exists());
        // Dropped without finish or abort (a request whose client left).
        let mut w = FileWrite::start(root.path().to_path_buf(), path.clone());
        w.put(Bytes::from_static(b"half")).await.expect("put");
        drop(w);
        for _ in 0..100 {
            if !staging(&path).exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!path.exists());
        assert!(!staging(&path).exists());
    }
}
