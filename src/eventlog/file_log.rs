//! [`FileLog`]: the event log on local disk.
//!
//! Appends go to the newest segment and are fsynced once per batch (group
//! commit: the ingest loop hands over every transaction that arrived while
//! the previous fsync ran). Only after the fsync do the bounds move, and
//! only then may the replication slot be acknowledged. Recent transactions
//! stay in memory (the tail, bounded by bytes) so live readers never touch
//! the disk; older positions are found through each segment's sparse index.
//! A large transaction arrives in parts ([`EventLog::append_part`]): each is
//! written to the segment as it comes (not fsynced, not visible) and the
//! closing append patches them with the commit LSN, so memory stays bounded
//! whatever the transaction's size; such a transaction is read from disk,
//! never kept whole in the tail.
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
    /// Parts of the transaction being received, written past `meta.len`.
    open: Option<OpenTxn>,
}

/// A transaction whose parts are written but not yet committed.
struct OpenTxn {
    xid: u32,
    parts: Vec<segment::WrittenPart>,
    /// Changes written so far (the index of the next change).
    changes: u32,
    /// Where the next part goes.
    end: u64,
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
    /// The oldest closed segment's first LSN and last write time, read from
    /// the disk once per segment rather than at every append's retention check.
    oldest_written: Mutex<Option<(Lsn, SystemTime)>>,
}

/// The local-disk event log. Cheap to clone.
#[derive(Clone)]
pub struct FileLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog")
            .field("dir", &self.inner.opts.dir)
            .field("bounds", &self.bounds())
            .finish()
    }
}

const HORIZON_FILE: &str = "horizon";

impl FileLog {
    /// Opens (or creates) the log, recovering a torn tail of the newest segment.
    pub fn open(opts: LogOptions) -> Result<FileLog, LogError> {
        let dir = opts.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| LogError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut names: Vec<(Lsn, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|source| LogError::Io {
                path: dir.clone(),
                source,
            })?
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
        let head_lsn = metas.iter().rev().find_map(SegmentMeta::last);
        let writer = match metas.pop() {
            Some(m) if m.last().is_none() => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&m.path)
                    .map_err(|source| LogError::Io {
                        path: m.path.clone(),
                        source,
                    })?;
                Writer {
                    meta: m,
                    file,
                    open: None,
                }
            }
            other => {
                if let Some(m) = other {
                    metas.push(m);
                }
                let first = Lsn(head_lsn.map(|l| l.0 + 1).unwrap_or(0).max(horizon.0 + 1));
                let (meta, file) = segment::create(&dir, first)?;
                Writer {
                    meta,
                    file,
                    open: None,
                }
            }
        };
        let head = metas.iter().rev().find_map(|m| m.head);
        let durable = head_lsn.unwrap_or(horizon).max(horizon);
        let oldest = Some(Position::end_of(horizon));
        let (bounds, _) = watch::channel(Bounds {
            oldest,
            head,
            durable,
        });
        let current = writer.meta.clone();
        Ok(FileLog {
            inner: Arc::new(Inner {
                opts,
                closed: RwLock::new(metas),
                writer: Mutex::new(writer),
                current: RwLock::new(current),
                tail: RwLock::new(Tail {
                    txns: VecDeque::new(),
                    bytes: 0,
                }),
                horizon: RwLock::new(horizon),
                bounds,
                oldest_written: Mutex::new(None),
            }),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.opts.dir
    }

    /// Total bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        let closed: u64 = self
            .inner
            .closed
            .read()
            .map(|c| c.iter().map(|m| m.len).sum())
            .unwrap_or(0);
        closed + self.inner.current.read().map(|m| m.len).unwrap_or(0)
    }

    fn corrupt(writer: &Writer, e: &serde_json::Error) -> LogError {
        LogError::Corrupt {
            path: writer.meta.path.clone(),
            offset: writer.meta.len,
            message: e.to_string(),
        }
    }

    fn append_part_blocking(&self, mut part: Txn) -> Result<(), LogError> {
        let inner = &self.inner;
        let mut writer = inner.writer.lock().map_err(|_| LogError::Closed)?;
        if writer.open.as_ref().is_some_and(|o| o.xid != part.xid) {
            return Err(LogError::OpenTransaction {
                xid: writer.open.as_ref().map_or(0, |o| o.xid),
            });
        }
        if writer.open.is_none() {
            let head = inner
                .bounds
                .borrow()
                .head
                .map(|p| p.lsn)
                .unwrap_or(Lsn::ZERO)
                .max(*inner.horizon.read().map_err(|_| LogError::Closed)?);
            if part.lsn <= head {
                return Err(LogError::OutOfOrder {
                    new: part.lsn,
                    head,
                });
            }
            // A transaction's records stay in one segment: roll before it starts.
            if writer.meta.len >= inner.opts.segment_bytes && writer.meta.last().is_some() {
                self.roll(&mut writer, part.lsn)?;
            }
            let end = writer.meta.len;
            writer.open = Some(OpenTxn {
                xid: part.xid,
                parts: Vec::new(),
                changes: 0,
                end,
            });
        }
        let w = &mut *writer;
        let Some(open) = w.open.as_mut() else {
            return Err(LogError::Closed);
        };
        part.first = open.changes;
        let records = segment::encode_txn(&part, false).map_err(|e| LogError::Corrupt {
            path: w.meta.path.clone(),
            offset: open.end,
            message: e.to_string(),
        })?;
        let end = segment::write_at(&w.meta, &w.file, open.end, &records)?;
        for e in &records {
            open.parts.push(segment::WrittenPart {
                header: e.header,
                offset: open.end,
                rest_crc: e.rest_crc,
                payload_len: e.bytes.len() - super::record::HEADER,
            });
            open.changes = open.changes.saturating_add(e.header.count);
            open.end += e.bytes.len() as u64;
        }
        debug_assert_eq!(open.end, end);
        Ok(())
    }

    fn discard_parts_blocking(&self) -> Result<(), LogError> {
        let mut writer = self.inner.writer.lock().map_err(|_| LogError::Closed)?;
        if writer.open.take().is_some() {
            let len = writer.meta.len;
            writer.file.set_len(len).map_err(|source| LogError::Io {
                path: writer.meta.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn append_blocking(&self, mut txns: Vec<Txn>) -> Result<Lsn, LogError> {
        let inner = &self.inner;
        let mut writer = inner.writer.lock().map_err(|_| LogError::Closed)?;
        let mut head = inner
            .bounds
            .borrow()
            .head
            .map(|p| p.lsn)
            .unwrap_or(Lsn::ZERO);
        let horizon = *inner.horizon.read().map_err(|_| LogError::Closed)?;
        head = head.max(horizon);
        for t in &txns {
            if t.lsn <= head {
                return Err(LogError::OutOfOrder { new: t.lsn, head });
            }
            head = t.lsn;
        }
        // The first transaction may close one written in parts.
        let closing = match (&writer.open, txns.first()) {
            (Some(open), Some(t)) if open.xid == t.xid => writer.open.take(),
            (Some(open), _) => return Err(LogError::OpenTransaction { xid: open.xid }),
            _ => None,
        };
        // Records written but not yet in `meta`, in file order, and the segment they go to.
        let mut placed: Vec<(segment::RecordHeader, u64)> = Vec::new();
        let mut at = writer.meta.len;
        if let Some(open) = &closing {
            for p in &open.parts {
                segment::patch_lsn(&writer.meta, &writer.file, p, txns[0].lsn)?;
                placed.push((
                    segment::RecordHeader {
                        lsn: txns[0].lsn,
                        ..p.header
                    },
                    p.offset,
                ));
            }
            txns[0].first = open.changes;
            at = open.end;
        }
        let mut batch_start = at;
        let mut sizes = Vec::with_capacity(txns.len());
        let mut batch: Vec<segment::Encoded> = Vec::new();
        for (i, t) in txns.iter().enumerate() {
            let records = segment::encode_txn(t, true).map_err(|e| Self::corrupt(&writer, &e))?;
            // Decoded JSON values take several times their encoded size in memory.
            sizes.push(
                records
                    .iter()
                    .map(|e| e.bytes.len())
                    .sum::<usize>()
                    .saturating_mul(4),
            );
            let continues = i == 0 && closing.is_some();
            if !continues
                && at >= inner.opts.segment_bytes
                && (writer.meta.last().is_some() || !placed.is_empty())
            {
                // Finish the current segment, then start the next with this one.
                let end = segment::write_at(&writer.meta, &writer.file, batch_start, &batch)?;
                segment::commit_written(&mut writer.meta, placed.drain(..), end);
                batch.clear();
                self.roll(&mut writer, t.lsn)?;
                at = writer.meta.len;
                batch_start = at;
            }
            for e in records {
                placed.push((e.header, at));
                at += e.bytes.len() as u64;
                batch.push(e);
            }
        }
        let end = segment::write_at(&writer.meta, &writer.file, batch_start, &batch)?;
        if inner.opts.fsync {
            writer.file.sync_data().map_err(|source| LogError::Io {
                path: writer.meta.path.clone(),
                source,
            })?;
        }
        segment::commit_written(&mut writer.meta, placed, end);
        if let Ok(mut c) = inner.current.write() {
            *c = writer.meta.clone();
        }
        drop(writer);
        // Durable: publish to the tail and the bounds.
        let last_pos = txns.last().map(Txn::last_position);
        if let Ok(mut tail) = inner.tail.write() {
            if closing.is_some() {
                // Its earlier parts are only on disk: the tail restarts after them.
                tail.txns.clear();
                tail.bytes = 0;
            }
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
            writer.file.sync_data().map_err(|source| LogError::Io {
                path: writer.meta.path.clone(),
                source,
            })?;
        }
        let (meta, file) = segment::create(&self.inner.opts.dir, next_first)?;
        let old = std::mem::replace(
            writer,
            Writer {
                meta,
                file,
                open: None,
            },
        );
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
                let Some(oldest) = closed.first() else {
                    return Ok(());
                };
                let too_big = total > inner.opts.max_bytes;
                let too_old = self
                    .written_at(oldest)
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > inner.opts.max_age);
                if !(too_big || too_old) {
                    return Ok(());
                }
                oldest.clone()
            };
            let new_horizon = victim.last().unwrap_or(victim.first);
            write_horizon(&inner.opts.dir, new_horizon)?;
            if let Ok(mut h) = inner.horizon.write() {
                *h = new_horizon;
            }
            if let Ok(mut closed) = inner.closed.write() {
                closed.retain(|m| m.path != victim.path);
            }
            std::fs::remove_file(&victim.path).map_err(|source| LogError::Io {
                path: victim.path.clone(),
                source,
            })?;
            segment::sync_dir(&inner.opts.dir)?;
            tracing::info!(segment = %victim.path.display(), horizon = %new_horizon, "event log: retention removed a segment");
            inner
                .bounds
                .send_modify(|b| b.oldest = Some(Position::end_of(new_horizon)));
        }
    }

    /// When a closed segment was last written (its file's modification
    /// time, which no longer changes), remembered for the oldest one.
    fn written_at(&self, meta: &SegmentMeta) -> Option<SystemTime> {
        let mut cached = self.inner.oldest_written.lock().ok()?;
        if let Some((first, at)) = *cached {
            if first == meta.first {
                return Some(at);
            }
        }
        let at = std::fs::metadata(&meta.path).and_then(|m| m.modified()).ok()?;
        *cached = Some((meta.first, at));
        Some(at)
    }

    /// Reads from the segments on disk (the caller has checked the horizon and the tail).
    fn read_blocking(
        &self,
        after: Position,
        max_changes: usize,
    ) -> Result<Vec<Arc<Txn>>, LogError> {
        let inner = &self.inner;
        // Cold path: segments on disk.
        let mut segments: Vec<SegmentMeta> =
            inner.closed.read().map_err(|_| LogError::Closed)?.clone();
        segments.push(inner.current.read().map_err(|_| LogError::Closed)?.clone());
        let mut out: Vec<Arc<Txn>> = Vec::new();
        let mut changes = 0usize;
        for seg in segments
            .iter()
            .filter(|s| s.head.is_some_and(|h| h > after))
        {
            if !out.is_empty() && changes >= max_changes {
                break;
            }
            for t in segment::read_after(seg, after, max_changes.saturating_sub(changes).max(1))? {
                changes += t.changes.len();
                out.push(Arc::new(t));
            }
        }
        Ok(out)
    }

    /// Reads from the in-memory tail when it covers `after` (`None` otherwise).
    fn read_tail(&self, after: Position, max_changes: usize) -> Option<Vec<Arc<Txn>>> {
        let tail = self.inner.tail.read().ok()?;
        let (front, _) = tail.txns.front()?;
        // Covered when everything after `after` is in the tail: `after` is at
        // or past the position just before the tail's first change.
        let covered = after.lsn > front.lsn
            || (after.lsn == front.lsn && after.index.saturating_add(1) >= front.first);
        if !covered {
            return None;
        }
        let start = tail.txns.partition_point(|(t, _)| t.lsn < after.lsn);
        let mut out = Vec::new();
        let mut changes = 0usize;
        for (t, _) in tail.txns.iter().skip(start) {
            if !out.is_empty() && changes >= max_changes {
                break;
            }
            if t.last_position() > after && !t.changes.is_empty() {
                changes += t.changes.len();
                out.push(Arc::clone(t));
            }
        }
        Some(out)
    }
}

fn read_horizon(dir: &Path) -> Lsn {
    std::fs::read_to_string(dir.join(HORIZON_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(Lsn::ZERO)
}

fn write_horizon(dir: &Path, lsn: Lsn) -> Result<(), LogError> {
    let path = dir.join(HORIZON_FILE);
    let tmp = dir.join(".horizon.tmp");
    std::fs::write(&tmp, lsn.to_string()).map_err(|source| LogError::Io {
        path: tmp.clone(),
        source,
    })?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|source| LogError::Io {
            path: tmp.clone(),
            source,
        })?;
    std::fs::rename(&tmp, &path).map_err(|source| LogError::Io {
        path: path.clone(),
        source,
    })?;
    segment::sync_dir(dir)
}

impl EventLog for FileLog {
    fn append(&self, txns: Vec<Txn>) -> BoxFuture<'_, Result<Lsn, LogError>> {
        let this = self.clone();
        async move {
            if txns.is_empty() {
                return Ok(this.bounds().durable);
            }
            tokio::task::spawn_blocking(move || this.append_blocking(txns))
                .await
                .map_err(|_| LogError::Closed)?
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

    fn append_part(&self, part: Txn) -> BoxFuture<'_, Result<(), LogError>> {
        let this = self.clone();
        async move {
            tokio::task::spawn_blocking(move || this.append_part_blocking(part))
                .await
                .map_err(|_| LogError::Closed)?
        }
        .boxed()
    }

    fn discard_parts(&self) -> BoxFuture<'_, Result<(), LogError>> {
        let this = self.clone();
        async move {
            tokio::task::spawn_blocking(move || this.discard_parts_blocking())
                .await
                .map_err(|_| LogError::Closed)?
        }
        .boxed()
    }

    fn read_after(
        &self,
        after: Position,
        max_changes: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Txn>>, LogError>> {
        let this = self.clone();
        async move {
            // The tail is served without leaving the task; the disk in a blocking thread.
            let horizon = this
                .inner
                .horizon
                .read()
                .map(|h| *h)
                .map_err(|_| LogError::Closed)?;
            if !horizon.is_zero() && after < Position::end_of(horizon) {
                return Err(LogError::Expired {
                    requested: after,
                    oldest: Position::end_of(horizon),
                });
            }
            if let Some(hit) = this.read_tail(after, max_changes) {
                return Ok(hit);
            }
            tokio::task::spawn_blocking(move || this.read_blocking(after, max_changes))
                .await
                .map_err(|_| LogError::Closed)?
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

    fn txn(lsn: u64, n: usize) -> Txn {
        crate::eventlog::event::test_txn(lsn, 0, n)
    }

    fn opts(dir: &Path) -> LogOptions {
        LogOptions {
            segment_bytes: 4096,
            tail_bytes: 2048,
            fsync: false,
            ..LogOptions::new(dir.to_owned())
        }
    }

    #[tokio::test]
    async fn append_read_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(opts(dir.path())).expect("open");
        for i in 1..=200u64 {
            log.append(vec![txn(i * 10, 2)]).await.expect("append");
        }
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(2000), 1)));
        assert!(
            log.append(vec![txn(1990, 1)]).await.is_err(),
            "out of order refused"
        );
        // Middle of a transaction: its remaining change, then the next ones.
        let got = log
            .read_after(Position::new(Lsn(500), 0), 5)
            .await
            .expect("read");
        assert_eq!(
            got.iter().map(|t| t.lsn.0).collect::<Vec<_>>(),
            vec![500, 510, 520]
        );
        let got = log
            .read_after(Position::new(Lsn(500), 1), 1)
            .await
            .expect("read");
        assert_eq!(got[0].lsn.0, 510);
        drop(log);
        let log = FileLog::open(opts(dir.path())).expect("reopen");
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(2000), 1)));
        let got = log
            .read_after(Position::START, 1000)
            .await
            .expect("read all");
        assert_eq!(got.len(), 200);
        log.append(vec![txn(2010, 1)])
            .await
            .expect("append after reopen");
    }

    #[tokio::test]
    async fn retention_expires_old_positions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(LogOptions {
            max_bytes: 16 * 1024,
            ..opts(dir.path())
        })
        .expect("open");
        for i in 1..=2000u64 {
            log.append(vec![txn(i, 1)]).await.expect("append");
        }
        assert!(
            log.size_bytes() <= 16 * 1024 + 4096,
            "size {}",
            log.size_bytes()
        );
        let oldest = log.bounds().oldest.expect("oldest");
        assert!(oldest.lsn > Lsn(1));
        match log.read_after(Position::new(Lsn(1), 0), 10).await {
            Err(LogError::Expired { .. }) => {}
            other => panic!("expected Expired, got {other:?}"),
        }
        let got = log.read_after(oldest, 1).await.expect("oldest is readable");
        assert_eq!(got.first().map(|t| t.lsn), Some(Lsn(oldest.lsn.0 + 1)));
        drop(log);
        let log = FileLog::open(opts(dir.path())).expect("reopen keeps the horizon");
        assert!(matches!(
            log.read_after(Position::new(Lsn(1), 0), 1).await,
            Err(LogError::Expired { .. })
        ));
    }

    #[tokio::test]
    async fn retention_removes_segments_past_their_age() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(LogOptions {
            max_age: Duration::ZERO,
            ..opts(dir.path())
        })
        .expect("open");
        for i in 1..=2000u64 {
            log.append(vec![txn(i, 1)]).await.expect("append");
        }
        // Every segment closed before the last append was older than zero
        // by the time of the next check: at most the newest closed one is left.
        let closed = log.inner.closed.read().expect("lock").len();
        assert!(closed <= 1, "{closed} closed segments kept");
        assert!(log.bounds().oldest.expect("oldest").lsn > Lsn(1));
    }

    #[tokio::test]
    async fn torn_tail_recovered_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(opts(dir.path())).expect("open");
        log.append(vec![txn(10, 1), txn(20, 1)])
            .await
            .expect("append");
        let seg = log.inner.current.read().expect("lock").path.clone();
        drop(log);
        let len = std::fs::metadata(&seg).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open")
            .set_len(len - 5)
            .expect("tear");
        let log = FileLog::open(opts(dir.path())).expect("recover");
        assert_eq!(log.bounds().head.map(|p| p.lsn), Some(Lsn(10)));
        log.append(vec![txn(20, 1)])
            .await
            .expect("the torn transaction can be appended again");
    }

    /// A large transaction in parts: invisible until closed, dropped when
    /// never closed, read back in parts (from the tail's edge and from disk).
    #[tokio::test]
    async fn transactions_in_parts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(LogOptions {
            segment_bytes: 1 << 20,
            ..opts(dir.path())
        })
        .expect("open");
        log.append(vec![txn(10, 1)]).await.expect("append");
        // Parts of xid 50 (Begin's LSN 40), then a session ends: discarded.
        let mut part = txn(40, 3);
        part.xid = 50;
        log.append_part(part.clone()).await.expect("part");
        assert_eq!(
            log.bounds().head,
            Some(Position::new(Lsn(10), 0)),
            "parts are not visible"
        );
        assert!(matches!(
            log.append(vec![txn(60, 1)]).await,
            Err(LogError::OpenTransaction { xid: 50 })
        ));
        log.discard_parts().await.expect("discard");
        // Sent again: three parts of 3 and a closing append of 2 at 48.
        for _ in 0..3 {
            log.append_part(part.clone()).await.expect("part");
        }
        let mut rest = txn(48, 2);
        rest.xid = 50;
        log.append(vec![rest, txn(70, 1)]).await.expect("close");
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(70), 0)));
        let count = |txns: &[Arc<Txn>], after: Position| {
            txns.iter()
                .flat_map(|t| (0..t.changes.len()).map(|i| t.position(i)))
                .filter(|p| *p > after)
                .count()
        };
        let after = Position::new(Lsn(10), 0);
        let got = log.read_after(after, 100).await.expect("read");
        assert_eq!(
            count(&got, after),
            12,
            "11 changes of the big transaction and one after"
        );
        let inside = Position::new(Lsn(48), 4);
        let got = log.read_after(inside, 1).await.expect("read inside");
        assert_eq!(
            (got[0].first, got[0].lsn),
            (3, Lsn(48)),
            "starts at the part holding index 5"
        );
        let got = log.read_after(inside, 100).await.expect("read inside");
        assert_eq!(count(&got, inside), 7);
        drop(log);
        // Reopened: the same from disk.
        let log = FileLog::open(opts(dir.path())).expect("reopen");
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(70), 0)));
        let got = log.read_after(after, 100).await.expect("read");
        assert_eq!(count(&got, after), 12);
        // A crash while parts are written: the reopened log has none of them.
        let mut p = txn(80, 2);
        p.xid = 90;
        log.append_part(p).await.expect("part");
        drop(log);
        let log = FileLog::open(opts(dir.path())).expect("reopen after crash");
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(70), 0)));
        log.append(vec![txn(100, 1)])
            .await
            .expect("appends continue");
    }

    /// A transaction larger than a record is stored as several records; a
    /// read inside it parses only from the record holding the position.
    #[tokio::test]
    async fn large_transactions_span_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::open(LogOptions {
            segment_bytes: 1 << 20,
            tail_bytes: 0,
            ..opts(dir.path())
        })
        .expect("open");
        log.append(vec![txn(10, 1000), txn(20, 1)])
            .await
            .expect("append");
        let got = log
            .read_after(Position::new(Lsn(10), 600), 1)
            .await
            .expect("read");
        assert_eq!(
            (got[0].lsn, got[0].first, got[0].changes.len()),
            (Lsn(10), 512, 256)
        );
        drop(log);
        let log = FileLog::open(opts(dir.path())).expect("reopen");
        assert_eq!(log.bounds().head, Some(Position::new(Lsn(20), 0)));
        let got = log
            .read_after(Position::START, 10_000)
            .await
            .expect("read all");
        assert_eq!(got.iter().map(|t| t.changes.len()).sum::<usize>(), 1001);
        assert_eq!(
            got.iter()
                .filter(|t| t.lsn == Lsn(10))
                .map(|t| t.first)
                .collect::<Vec<_>>(),
            vec![0, 256, 512, 768]
        );
    }
}
