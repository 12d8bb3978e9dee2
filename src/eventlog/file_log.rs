//! [`FileLog`]: the event log on local disk.
//!
//! Appends go to the newest segment and are fsynced once per batch (group
//! commit: the ingest loop hands over every transaction that arrived while
//! the previous fsync ran). Only after the fsync do the bounds move, and
//! only then may the replication slot be acknowledged. Recent transactions
//! stay in memory (the tail, bounded by bytes) so live readers never touch
//! the disk; older positions are found through each segment's sparse index.
//! Retention deletes whole old segments by total size and age and records
//! the horizon (the last deleted LSN) so too-old positions get `Expired`.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::watch;

use super::segment::{self, SegmentMeta};
use super::{Bounds, EventLog, LogError, Lsn, Position, Txn};

/// Settings of a [`FileLog`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Directory holding the segments.
    pub dir: PathBuf,
    /// Roll to a new segment past this size.
    pub segment_bytes: u64,
    /// Delete old segments while the log is larger than this.
    pub max_bytes: u64,
    /// Delete segments whose newest record is older than this.
    pub max_age: Duration,
    /// Bytes of recent transactions kept in memory.
    pub tail_bytes: usize,
    /// Whether appends are fsynced (off only for throwaway test logs).
    pub fsync: bool,
}

impl LogOptions {
    /// Defaults for a directory: 64 MiB segments, 1 GiB and 7 days retained, 64 MiB tail.
    pub fn new(dir: PathBuf) -> LogOptions {
        LogOptions {
            dir,
            segment_bytes: 64 << 20,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(7 * 24 * 3600),
            tail_bytes: 64 << 20,
            fsync: true,
        }
    }
}

struct Writer {
    meta: SegmentMeta,
    file: File,
}

struct Tail {
    txns: VecDeque<(Arc<Txn>, usize)>,
    bytes: usize,
}

struct Inner {
    opts: LogOptions,
    /// Closed segments, oldest first (the writer's segment is not in here).
    closed: RwLock<Vec<SegmentMeta>>,
    writer: Mutex<Writer>,
    /// Snapshot of the writer's segment for readers.
    current: RwLock<SegmentMeta>,
    tail: RwLock<Tail>,
    horizon: RwLock<Lsn>,
    bounds: watch::Sender<Bounds>,
}

/// The local-disk event log. Cheap to clone.
#[derive(Clone)]
pub struct FileLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog").field("dir", &self.inner.opts.dir).field("bounds", &self.bounds()).finish()
    }
}

const HORIZON_FILE: &str = "horizon";

impl FileLog {
    /// Opens (or creates) the log, recovering a torn tail of the newest segment.
    pub fn open(opts: LogOptions) -> Result<FileLog, LogError> {
        let dir = opts.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| LogError::Io { path: dir.clone(), source })?;
        let mut names: Vec<(Lsn, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|source| LogError::Io { path: dir.clone(), source })?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name();
                segment::parse_name(name.to_str()?).map(|l| (l, e.path()))
            })
            .collect();
        names.sort();
        let horizon = read_horizon(&dir);
        let mut metas = Vec::new();
        let count = names.len();
        for (i, (_, path)) in names.iter().enumerate() {
            metas.push(segment::scan(path, i + 1 == count)?);
        }
        // An empty newest segment is reused; otherwise start a new one after the head.
        let head_lsn = metas.iter().rev().find_map(|m| m.last);
        let writer = match metas.pop() {
            Some(m) if m.last.is_none() => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&m.path)
                    .map_err(|source| LogError::Io { path: m.path.clone(), source })?;
                Writer { meta: m, file }
            }
            other => {
                if let Some(m) = other {
                    metas.push(m);
                }
                let first = Lsn(head_lsn.map(|l| l.0 + 1).unwrap_or(0).max(horizon.0 + 1));
                let (meta, file) = segment::create(&dir, first)?;
                Writer { meta, file }
            }
        };
        let head = head_lsn.map(Position::end_of);
        let durable = head_lsn.unwrap_or(horizon).max(horizon);
        let oldest = Some(Position::end_of(horizon));
        let (bounds, _) = watch::channel(Bounds { oldest, head, durable });
        let current = writer.meta.clone();
        let log = FileLog {
            inner: Arc::new(Inner {
                opts,
                closed: RwLock::new(metas),
                writer: Mutex::new(writer),
                current: RwLock::new(current),
                tail: RwLock::new(Tail { txns: VecDeque::new(), bytes: 0 }),
                horizon: RwLock::new(horizon),
                bounds,
            }),
        };
        log.fix_head_index_positions();
        Ok(log)
    }

    /// Sets the head position precisely (the last change index of the newest transaction).
    fn fix_head_index_positions(&self) {
        let Some(head) = self.inner.bounds.borrow().head else { return };
        let Ok(txns) = self.read_blocking(Position::new(head.lsn, 0), 1) else { return };
        if let Some(t) = txns.iter().find(|t| t.lsn == head.lsn) {
            let last = t.changes.len().saturating_sub(1);
            self.inner.bounds.send_modify(|b| b.head = Some(t.position(last)));
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.opts.dir
    }

    /// Total bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        let closed: u64 = self.inner.closed.read().map(|c| c.iter().map(|m| m.len).sum()).unwrap_or(0);
        closed + self.inner.current.read().map(|m| m.len).unwrap_or(0)
    }

    fn append_blocking(&self, txns: Vec<Txn>) -> Result<Lsn, LogError> {
        let inner = &self.inner;
        let mut writer = inner.writer.lock().map_err(|_| LogError::Closed)?;
        let mut head = inner.bounds.borrow().head.map(|p| p.lsn).unwrap_or(Lsn::ZERO);
        let horizon = *inner.horizon.read().map_err(|_| LogError::Closed)?;
        head = head.max(horizon);
        let mut encoded = Vec::with_capacity(txns.len());
        for t in &txns {
            if t.lsn <= head {
                return Err(LogError::OutOfOrder { new: t.lsn, head });
            }
            head = t.lsn;
            let mut buf = Vec::new();
            segment::encode_txn(t, &mut buf).map_err(|e| LogError::Corrupt {
                path: writer.meta.path.clone(),
                offset: writer.meta.len,
                message: e.to_string(),
            })?;
            encoded.push((t.lsn, buf));
        }
        let mut start = 0;
        while start < encoded.len() {
            if writer.meta.len >= inner.opts.segment_bytes && writer.meta.last.is_some() {
                self.roll(&mut writer, encoded[start].0)?;
            }
            // Fill the current segment up to its size, at least one record.
            let mut end = start;
            let mut size = writer.meta.len;
            while end < encoded.len() && (end == start || size + encoded[end].1.len() as u64 <= inner.opts.segment_bytes) {
                size += encoded[end].1.len() as u64;
                end += 1;
            }
            let w = &mut *writer;
            segment::append(&mut w.meta, &mut w.file, &encoded[start..end])?;
            start = end;
        }
        if inner.opts.fsync {
            writer.file.sync_data().map_err(|source| LogError::Io { path: writer.meta.path.clone(), source })?;
        }
        if let Ok(mut c) = inner.current.write() {
            *c = writer.meta.clone();
        }
        drop(writer);
        // Durable: publish to the tail and the bounds.
        let last_pos = txns.last().map(|t| t.position(t.changes.len().saturating_sub(1)));
        // Decoded JSON values take several times their encoded size in memory.
        let sizes: Vec<usize> = encoded.iter().map(|(_, b)| b.len().saturating_mul(4)).collect();
        if let Ok(mut tail) = inner.tail.write() {
            for (t, size) in txns.into_iter().zip(sizes) {
                tail.bytes += size;
                tail.txns.push_back((Arc::new(t), size));
            }
            while tail.bytes > inner.opts.tail_bytes && tail.txns.len() > 1 {
                if let Some((_, s)) = tail.txns.pop_front() {
                    tail.bytes -= s;
                }
            }
        }
        inner.bounds.send_modify(|b| {
            if let Some(p) = last_pos {
                b.head = Some(p);
                b.durable = b.durable.max(p.lsn);
            }
            if b.oldest.is_none() {
                b.oldest = Some(Position::end_of(horizon));
            }
        });
        self.enforce_retention()?;
        Ok(inner.bounds.borrow().durable)
    }

    fn roll(&self, writer: &mut Writer, next_first: Lsn) -> Result<(), LogError> {
        if self.inner.opts.fsync {
            writer.file.sync_data().map_err(|source| LogError::Io { path: writer.meta.path.clone(), source })?;
        }
        let (meta, file) = segment::create(&self.inner.opts.dir, next_first)?;
        let old = std::mem::replace(writer, Writer { meta, file });
        if let Ok(mut closed) = self.inner.closed.write() {
            closed.push(old.meta);
        }
        Ok(())
    }

    fn enforce_retention(&self) -> Result<(), LogError> {
        let inner = &self.inner;
        let now = SystemTime::now();
        loop {
            let total = self.size_bytes();
            let victim = {
                let closed = inner.closed.read().map_err(|_| LogError::Closed)?;
                let Some(oldest) = closed.first() else { return Ok(()) };
                let too_big = total > inner.opts.max_bytes;
                let too_old = std::fs::metadata(&oldest.path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > inner.opts.max_age);
                if !(too_big || too_old) {
                    return Ok(());
                }
                oldest.clone()
            };
            let new_horizon = victim.last.unwrap_or(victim.first);
            write_horizon(&inner.opts.dir, new_horizon)?;
            if let Ok(mut h) = inner.horizon.write() {
                *h = new_horizon;
            }
            if let Ok(mut closed) = inner.closed.write() {
                closed.retain(|m| m.path != victim.path);
            }
            std::fs::remove_file(&victim.path).map_err(|source| LogError::Io { path: victim.path.clone(), source })?;
            segment::sync_dir(&inner.opts.dir)?;
            tracing::info!(segment = %victim.path.display(), horizon = %new_horizon, "event log: retention removed a segment");
            inner.bounds.send_modify(|b| b.oldest = Some(Position::end_of(new_horizon)));
        }
    }

    fn read_blocking(&self, after: Position, max_txns: usize) -> Result<Vec<Arc<Txn>>, LogError> {
        let inner = &self.inner;
        let horizon = *inner.horizon.read().map_err(|_| LogError::Closed)?;
        if !horizon.is_zero() && after < Position::end_of(horizon) {
            return Err(LogError::Expired { requested: after, oldest: Position::end_of(horizon) });
        }
        let wanted = |t: &Txn| t.lsn > after.lsn || (t.lsn == after.lsn && (after.index as usize) + 1 < t.changes.len());
        // Hot path: the in-memory tail covers `after`.
        if let Ok(tail) = inner.tail.read() {
            if let Some((front, _)) = tail.txns.front() {
                if after.lsn >= front.lsn {
                    let start = tail.txns.partition_point(|(t, _)| t.lsn < after.lsn);
                    return Ok(tail.txns.iter().skip(start).filter(|(t, _)| wanted(t)).take(max_txns).map(|(t, _)| Arc::clone(t)).collect());
                }
            }
        }
        // Cold path: segments on disk.
        let mut segments: Vec<SegmentMeta> = inner.closed.read().map_err(|_| LogError::Closed)?.clone();
        segments.push(inner.current.read().map_err(|_| LogError::Closed)?.clone());
        let mut out = Vec::new();
        for seg in segments.iter().filter(|s| s.last.is_some_and(|l| l >= after.lsn)) {
            if out.len() >= max_txns {
                break;
            }
            // One more than needed: the transaction at `after.lsn` may hold nothing after `after`.
            for t in segment::read_from(seg, after.lsn, max_txns - out.len() + 1)? {
                if wanted(&t) && out.len() < max_txns {
                    out.push(Arc::new(t));
                }
            }
        }
        Ok(out)
    }
}

fn read_horizon(dir: &Path) -> Lsn {
    std::fs::read_to_string(dir.join(HORIZON_FILE)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(Lsn::ZERO)
}

fn write_horizon(dir: &Path, lsn: Lsn) -> Result<(), LogError> {
    let path = dir.join(HORIZON_FILE);
    let tmp = dir.join(".horizon.tmp");
    std::fs::write(&tmp, lsn.to_string()).map_err(|source| LogError::Io { path: tmp.clone(), source })?;
    File::open(&tmp).and_then(|f| f.sync_all()).map_err(|source| LogError::Io { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, &path).map_err(|source| LogError::Io { path: path.clone(), source })?;
    segment::sync_dir(dir)
}

impl EventLog for FileLog {
    fn append(&self, txns: Vec<Txn>) -> BoxFuture<'_, Result<Lsn, LogError>> {
        let this = self.clone();
        async move {
            if txns.is_empty() {
                return Ok(this.bounds().durable);
            }
            tokio::task::spawn_blocking(move || this.append_blocking(txns)).await.map_err(|_| LogError::Closed)?
        }
        .boxed()
    }

    fn mark_durable(&self, lsn: Lsn) {
        self.inner.bounds.send_if_modified(|b| {
            if lsn > b.durable {
                b.durable = lsn;
                true
            } else {
                false
            }
        });
    }

    fn read_after(&self, after: Position, max_txns: usize) -> BoxFuture<'_, Result<Vec<Arc<Txn>>, LogError>> {
        let this = self.clone();
        async move {
            // The tail is served without leaving the task; the disk in a blocking thread.
            let in_tail = this
                .inner
                .tail
                .read()
                .ok()
                .and_then(|t| t.txns.front().map(|(f, _)| after.lsn >= f.lsn))
                .unwrap_or(false);
            if in_tail {
                return this.read_blocking(after, max_txns);
            }
            tokio::task::spawn_blocking(move || this.read_blocking(after, max_txns)).await.map_err(|_| LogError::Closed)?
        }
        .boxed()
    }

    fn bounds(&self) -> Bounds {
        *self.inner.bounds.borrow()
    }

    fn watch(&self) -> watch::Receiver<Bounds> {
        self.inner.bounds.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::{Change, Op};

    fn txn(lsn: u64, n: usize) -> Txn {
        Txn {
            lsn: Lsn(lsn),
            xid: 1,
            commit_time_us: 0,
            relations: vec![],
            changes: (0..n)
                .map(|_| Change { op: Op::Insert, rel: None, record: None, old_record: None, unchanged_toast: vec![], message: None })
                .collect(),
        }
    }

    fn opts(dir: &Path) -> LogOptions {
        LogOptions { segment_bytes: 4096, tail_bytes: 2048, fsync: false, ..LogOptions::new(dir.to_owned()) }
    }

    #[tokio::test]
    async fn append_read_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(opts(dir.path())).expect("open");
        for i in 1..=200u64 {
            log.append(vec![txn(i * 10, 2)]).await.expect("append");
        }
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(2000), 1)));
        assert!(log.append(vec![txn(1990, 1)]).await.is_err(), "out of order refused");
        // Middle of a transaction: its remaining change, then the next ones.
        let got = log.read_after(Position::new(Lsn(500), 0), 3).await.expect("read");
        assert_eq!(got.iter().map(|t| t.lsn.0).collect::<Vec<_>>(), vec![500, 510, 520]);
        let got = log.read_after(Position::new(Lsn(500), 1), 1).await.expect("read");
        assert_eq!(got[0].lsn.0, 510);
        drop(log);
        let log = FileLog::open(opts(dir.path())).expect("reopen");
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(2000), 1)));
        let got = log.read_after(Position::START, 1000).await.expect("read all");
        assert_eq!(got.len(), 200);
        log.append(vec![txn(2010, 1)]).await.expect("append after reopen");
    }

    #[tokio::test]
    async fn retention_expires_old_positions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(LogOptions { max_bytes: 16 * 1024, ..opts(dir.path()) }).expect("open");
        for i in 1..=2000u64 {
            log.append(vec![txn(i, 1)]).await.expect("append");
        }
        assert!(log.size_bytes() <= 16 * 1024 + 4096, "size {}", log.size_bytes());
        let oldest = log.bounds().oldest.expect("oldest");
        assert!(oldest.lsn > Lsn(1));
        match log.read_after(Position::new(Lsn(1), 0), 10).await {
            Err(LogError::Expired { .. }) => {}
            other => panic!("expected Expired, got {other:?}"),
        }
        let got = log.read_after(oldest, 5).await.expect("oldest is readable");
        assert_eq!(got.first().map(|t| t.lsn), Some(Lsn(oldest.lsn.0 + 1)));
        drop(log);
        let log = FileLog::open(opts(dir.path())).expect("reopen keeps the horizon");
        assert!(matches!(log.read_after(Position::new(Lsn(1), 0), 1).await, Err(LogError::Expired { .. })));
    }

    #[tokio::test]
    async fn torn_tail_recovered_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(opts(dir.path())).expect("open");
        log.append(vec![txn(10, 1), txn(20, 1)]).await.expect("append");
        let seg = log.inner.current.read().expect("lock").path.clone();
        drop(log);
        let len = std::fs::metadata(&seg).expect("meta").len();
        std::fs::OpenOptions::new().write(true).open(&seg).expect("open").set_len(len - 5).expect("tear");
        let log = FileLog::open(opts(dir.path())).expect("recover");
        assert_eq!(log.bounds().head.map(|p| p.lsn), Some(Lsn(10)));
        log.append(vec![txn(20, 1)]).await.expect("the torn transaction can be appended again");
    }
}
