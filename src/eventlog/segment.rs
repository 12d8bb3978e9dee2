//! One segment file of the log: `<first LSN as 16 hex digits>.seg`.
//!
//! Layout: an 8-byte magic, then records ([`super::record`]). A record holds
//! one transaction, or one part of a large one: its payload is a fixed
//! header ([`RecordHeader`]: commit LSN, index of its first change, change
//! count, whether it is the transaction's last record) and then the
//! changes as JSON, so a scan or a seek can skip records by position
//! without parsing JSON. The records of one transaction are contiguous, in
//! one segment, and the last one is flagged: a scan cuts a trailing
//! transaction whose last record is missing (a crash while its parts were
//! being written), since nothing of it was acknowledged.
//!
//! Parts of a transaction that is still being received are written before
//! its commit LSN is known (with Begin's LSN in its place) and **patched**
//! when it commits: the LSN and the checksum (combined from the checksum of
//! the rest of the payload, kept in memory) are rewritten in place, 12 bytes
//! per part. A sparse index (one entry per [`INDEX_EVERY`] bytes) makes
//! seeking to a position O(log n) plus a short bounded scan.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use fluxbase_replication::Lsn;

use super::record::{self, Decoded};
use super::{LogError, Position, Txn};

/// Magic at the start of every segment (format 2: records may be parts).
pub const MAGIC: &[u8; 8] = b"FLXLOG2\n";
/// Magic of the first format, refused with a clear error.
const MAGIC_V1: &[u8; 8] = b"FLXLOG1\n";
/// Bytes between sparse index entries.
pub const INDEX_EVERY: u64 = 64 * 1024;
/// Bytes of [`RecordHeader`] at the start of each payload.
pub const PAYLOAD_HEADER: usize = 17;
const FLAG_LAST: u8 = 1;

/// The fixed start of a record's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// The transaction's commit end LSN (Begin's LSN in an unpatched part).
    pub lsn: Lsn,
    /// Index in the transaction of the record's first change.
    pub first: u32,
    /// Changes in the record.
    pub count: u32,
    /// The transaction's last record.
    pub last: bool,
}

impl RecordHeader {
    /// Position of the record's first change (the index key).
    pub fn key(&self) -> Position {
        Position::new(self.lsn, self.first)
    }

    /// Position of its last change.
    pub fn end(&self) -> Position {
        Position::new(
            self.lsn,
            (self.first + self.count).saturating_sub(1).max(self.first),
        )
    }

    /// Whether it holds a change after `after`.
    pub fn has_after(&self, after: Position) -> bool {
        self.lsn > after.lsn
            || (self.lsn == after.lsn && self.count > 0 && self.end().index > after.index)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.lsn.0.to_le_bytes());
        out.extend_from_slice(&self.first.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.push(if self.last { FLAG_LAST } else { 0 });
    }

    /// Reads the header at the start of a payload.
    pub fn parse(payload: &[u8]) -> Option<RecordHeader> {
        let h = payload.get(..PAYLOAD_HEADER)?;
        let u32_at = |i: usize| {
            h.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        Some(RecordHeader {
            lsn: Lsn(u64::from_le_bytes(h.get(..8)?.try_into().ok()?)),
            first: u32_at(8)?,
            count: u32_at(12)?,
            last: h[16] & FLAG_LAST != 0,
        })
    }
}

/// What is known of a segment without reading it again.
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    /// Its file.
    pub path: PathBuf,
    /// LSN of its first record (from the file name).
    pub first: Lsn,
    /// Position of its last change.
    pub head: Option<Position>,
    /// Valid length in bytes.
    pub len: u64,
    /// `(position of the record's first change, offset)` of records at
    /// roughly every [`INDEX_EVERY`] bytes.
    pub index: Vec<(Position, u64)>,
    /// Number of transactions.
    pub txns: u64,
}

impl SegmentMeta {
    /// Commit LSN of its last complete transaction, if any.
    pub fn last(&self) -> Option<Lsn> {
        self.head.map(|h| h.lsn)
    }

    fn note_record(&mut self, h: &RecordHeader, offset: u64) {
        let due = self.index.last().map_or(0, |(_, o)| o + INDEX_EVERY);
        if offset >= due {
            self.index.push((h.key(), offset));
        }
        if h.last {
            self.head = Some(h.end());
            self.txns += 1;
        }
    }
}

/// An encoded record ready to be written.
#[derive(Debug)]
pub struct Encoded {
    /// Its header.
    pub header: RecordHeader,
    /// The framed bytes.
    pub bytes: Vec<u8>,
    /// Checksum of the payload after its LSN (to patch the LSN later).
    pub rest_crc: u32,
}

fn io(path: &Path, source: std::io::Error) -> LogError {
    LogError::Io {
        path: path.to_owned(),
        source,
    }
}

/// File name for a segment starting at `first`.
pub fn file_name(first: Lsn) -> String {
    format!("{:016X}.seg", first.0)
}

/// The first LSN a segment file name encodes.
pub fn parse_name(name: &str) -> Option<Lsn> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .map(Lsn)
}

/// Creates an empty segment.
pub fn create(dir: &Path, first: Lsn) -> Result<(SegmentMeta, File), LogError> {
    let path = dir.join(file_name(first));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    f.write_all(MAGIC).map_err(|e| io(&path, e))?;
    f.sync_all().map_err(|e| io(&path, e))?;
    sync_dir(dir)?;
    Ok((
        SegmentMeta {
            path,
            first,
            head: None,
            len: MAGIC.len() as u64,
            index: Vec::new(),
            txns: 0,
        },
        f,
    ))
}

/// Makes a directory's entries (new or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// Whether `h` may follow `prev` (the previous record of the segment).
fn follows(prev: Option<&RecordHeader>, h: &RecordHeader) -> bool {
    match prev {
        Some(p) if !p.last => h.lsn == p.lsn && h.first == p.first + p.count,
        Some(p) => h.first == 0 && h.lsn > p.lsn,
        None => h.first == 0,
    }
}

/// Scans a segment, building its index. With `repair`, a torn or corrupt
/// tail, or a trailing transaction without its last record, is cut off
/// (the file is truncated after the last complete transaction).
pub fn scan(path: &Path, repair: bool) -> Result<SegmentMeta, LogError> {
    let first = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_name)
        .ok_or_else(|| LogError::Corrupt {
            path: path.to_owned(),
            offset: 0,
            message: "not a segment file name".into(),
        })?;
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let mut meta = SegmentMeta {
        path: path.to_owned(),
        first,
        head: None,
        len: 0,
        index: Vec::new(),
        txns: 0,
    };
    if bytes.get(..MAGIC.len()) == Some(MAGIC_V1.as_slice()) {
        return Err(LogError::Corrupt {
            path: path.to_owned(),
            offset: 0,
            message: "written by an older Fluxbase (event log format 1); move the eventlog directory away to start a new log".into(),
        });
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        if !repair {
            return Err(LogError::Corrupt {
                path: path.to_owned(),
                offset: 0,
                message: "bad magic".into(),
            });
        }
        let mut f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        f.set_len(0).map_err(|e| io(path, e))?;
        f.write_all(MAGIC).map_err(|e| io(path, e))?;
        f.sync_all().map_err(|e| io(path, e))?;
        meta.len = MAGIC.len() as u64;
        return Ok(meta);
    }
    let mut offset = MAGIC.len();
    // End of the last complete transaction.
    meta.len = offset as u64;
    let mut prev: Option<RecordHeader> = None;
    while let Decoded::Record(payload, n) = record::decode(&bytes[offset..]) {
        let Some(h) = RecordHeader::parse(payload) else {
            break;
        };
        if !follows(prev.as_ref(), &h) {
            break;
        }
        meta.note_record(&h, offset as u64);
        offset += n;
        if h.last {
            meta.len = offset as u64;
        }
        prev = Some(h);
    }
    meta.index.retain(|(_, o)| *o < meta.len);
    if meta.len < bytes.len() as u64 {
        if !repair {
            return Err(LogError::Corrupt {
                path: path.to_owned(),
                offset: meta.len,
                message: "invalid or incomplete record".into(),
            });
        }
        tracing::warn!(path = %path.display(), valid = meta.len, dropped = bytes.len() as u64 - meta.len, "event log: cutting a torn tail");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        f.set_len(meta.len).map_err(|e| io(path, e))?;
        f.sync_all().map_err(|e| io(path, e))?;
    }
    Ok(meta)
}

/// Most changes in one record: a reader parses at most this many changes
/// to reach any position (so the first event of a resume leaves quickly).
pub const RECORD_CHANGES: usize = 256;

/// The JSON of a record: a run of a transaction's changes, serialised like
/// [`Txn`] (the relations are the whole transaction's, which `rel` indexes).
#[derive(serde::Serialize)]
struct RecordBody<'a> {
    xid: u32,
    commit_time_us: i64,
    relations: &'a [super::RelationInfo],
    changes: &'a [super::Change],
}

/// Encodes a transaction (or one part of it) as records of at most
/// [`RECORD_CHANGES`] changes; with `last`, the final one is flagged as the
/// transaction's last record.
pub fn encode_txn(txn: &Txn, last: bool) -> Result<Vec<Encoded>, serde_json::Error> {
    let mut out = Vec::with_capacity(txn.changes.len() / RECORD_CHANGES + 1);
    let chunks: Vec<&[super::Change]> = if txn.changes.is_empty() {
        vec![&[]]
    } else {
        txn.changes.chunks(RECORD_CHANGES).collect()
    };
    let n = chunks.len();
    let mut first = txn.first;
    for (i, changes) in chunks.into_iter().enumerate() {
        let count = u32::try_from(changes.len()).unwrap_or(u32::MAX);
        let header = RecordHeader {
            lsn: txn.lsn,
            first,
            count,
            last: last && i + 1 == n,
        };
        let body = RecordBody {
            xid: txn.xid,
            commit_time_us: txn.commit_time_us,
            relations: &txn.relations,
            changes,
        };
        out.push(encode_record(header, &body)?);
        first = first.saturating_add(count);
    }
    Ok(out)
}

fn encode_record(
    header: RecordHeader,
    body: &RecordBody<'_>,
) -> Result<Encoded, serde_json::Error> {
    let mut payload = Vec::with_capacity(256 + body.changes.len() * 128);
    header.write(&mut payload);
    serde_json::to_writer(&mut payload, body)?;
    let rest_crc = crc32c::crc32c(&payload[8..]);
    let mut bytes = Vec::with_capacity(record::HEADER + payload.len());
    record::encode(&payload, &mut bytes);
    Ok(Encoded {
        header,
        bytes,
        rest_crc,
    })
}

/// Writes records at `at` (past the valid length: not yet part of `meta`);
/// returns the offset after them.
pub fn write_at(
    meta: &SegmentMeta,
    file: &File,
    at: u64,
    records: &[Encoded],
) -> Result<u64, LogError> {
    let mut buf = Vec::with_capacity(records.iter().map(|r| r.bytes.len()).sum());
    for r in records {
        buf.extend_from_slice(&r.bytes);
    }
    file.write_all_at(&buf, at).map_err(|e| io(&meta.path, e))?;
    Ok(at + buf.len() as u64)
}

/// A part written ahead of its commit, to patch once the commit LSN is known.
#[derive(Debug, Clone)]
pub struct WrittenPart {
    /// Its header as written.
    pub header: RecordHeader,
    /// Offset of its record.
    pub offset: u64,
    /// Checksum of its payload after the LSN.
    pub rest_crc: u32,
    /// Payload length.
    pub payload_len: usize,
}

/// Rewrites a written part's LSN (and so its checksum) in place.
pub fn patch_lsn(
    meta: &SegmentMeta,
    file: &File,
    part: &WrittenPart,
    lsn: Lsn,
) -> Result<(), LogError> {
    let lsn_bytes = lsn.0.to_le_bytes();
    let crc = crc32c::crc32c_combine(
        crc32c::crc32c(&lsn_bytes),
        part.rest_crc,
        part.payload_len - 8,
    );
    let mut patch = [0u8; 12];
    patch[..4].copy_from_slice(&crc.to_le_bytes());
    patch[4..].copy_from_slice(&lsn_bytes);
    file.write_all_at(&patch, part.offset + 4)
        .map_err(|e| io(&meta.path, e))
}

/// Takes records written at `meta.len .. end` into `meta` (after they are durable).
pub fn commit_written(
    meta: &mut SegmentMeta,
    records: impl IntoIterator<Item = (RecordHeader, u64)>,
    end: u64,
) {
    for (h, offset) in records {
        meta.note_record(&h, offset);
    }
    meta.len = end;
}

/// Reads the records of a segment holding changes after `after`, until
/// they hold at least `max_changes` changes (at least one record).
pub fn read_after(
    meta: &SegmentMeta,
    after: Position,
    max_changes: usize,
) -> Result<Vec<Txn>, LogError> {
    let start = match meta.index.partition_point(|(key, _)| *key <= after) {
        0 => MAGIC.len() as u64,
        i => meta.index[i - 1].1,
    };
    let f = File::open(&meta.path).map_err(|e| io(&meta.path, e))?;
    let mut r = BufReader::with_capacity(256 * 1024, f);
    r.seek(SeekFrom::Start(start))
        .map_err(|e| io(&meta.path, e))?;
    let mut offset = start;
    let mut out = Vec::new();
    let mut changes = 0usize;
    let mut framing = [0u8; record::HEADER];
    let mut payload = Vec::new();
    while offset < meta.len && (out.is_empty() || changes < max_changes) {
        r.read_exact(&mut framing).map_err(|e| io(&meta.path, e))?;
        let corrupt = |message: &str| LogError::Corrupt {
            path: meta.path.clone(),
            offset,
            message: message.into(),
        };
        let (len, crc) = record::parse_header(&framing);
        if !(PAYLOAD_HEADER..=record::MAX_PAYLOAD).contains(&len) {
            return Err(corrupt("bad length"));
        }
        payload.resize(len, 0);
        r.read_exact(&mut payload).map_err(|e| io(&meta.path, e))?;
        let h = RecordHeader::parse(&payload).ok_or_else(|| corrupt("short payload"))?;
        if h.has_after(after) {
            if crc32c::crc32c(&payload) != crc {
                return Err(corrupt("checksum mismatch"));
            }
            let mut txn: Txn = serde_json::from_slice(&payload[PAYLOAD_HEADER..])
                .map_err(|e| corrupt(&e.to_string()))?;
            txn.lsn = h.lsn;
            txn.first = h.first;
            changes += txn.changes.len();
            out.push(txn);
        }
        offset += (record::HEADER + len) as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::eventlog::event::test_txn as txn;

    fn write(dir: &Path, lsns: &[u64]) -> SegmentMeta {
        let (mut meta, f) = create(dir, Lsn(lsns[0])).expect("create");
        let recs: Vec<Encoded> = lsns
            .iter()
            .flat_map(|l| encode_txn(&txn(*l, 0, 1), true).expect("encode"))
            .collect();
        let mut at = meta.len;
        let mut placed = Vec::new();
        for r in &recs {
            placed.push((r.header, at));
            at += r.bytes.len() as u64;
        }
        let end = write_at(&meta, &f, meta.len, &recs).expect("write");
        assert_eq!(end, at);
        f.sync_all().expect("sync");
        commit_written(&mut meta, placed, end);
        meta
    }

    #[test]
    fn scan_reads_back_and_seeks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lsns: Vec<u64> = (1..=5000).map(|i| i * 100).collect();
        let meta = write(dir.path(), &lsns);
        let scanned = scan(&meta.path, false).expect("scan");
        assert_eq!(
            (scanned.txns, scanned.last(), scanned.len),
            (5000, Some(Lsn(500_000)), meta.len)
        );
        assert_eq!(scanned.head, Some(Position::new(Lsn(500_000), 0)));
        assert!(scanned.index.len() > 1, "sparse index has several entries");
        let got = read_after(&scanned, Position::new(Lsn(250_050), 0), 3).expect("read");
        assert_eq!(
            got.iter().map(|t| t.lsn.0).collect::<Vec<_>>(),
            vec![250_100, 250_200, 250_300]
        );
        let got = read_after(&scanned, Position::new(Lsn(250_100), 0), 1).expect("read");
        assert_eq!(
            got[0].lsn.0, 250_200,
            "a transaction whose changes were all seen is skipped"
        );
        assert!(read_after(&scanned, Position::new(Lsn(900_000), 0), 3)
            .expect("read")
            .is_empty());
    }

    #[test]
    fn torn_tail_is_cut_on_repair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = write(dir.path(), &[10, 20, 30]);
        let full = std::fs::metadata(&meta.path).expect("meta").len();
        let f = OpenOptions::new()
            .write(true)
            .open(&meta.path)
            .expect("open");
        f.set_len(full - 3).expect("tear");
        assert!(scan(&meta.path, false).is_err());
        let repaired = scan(&meta.path, true).expect("repair");
        assert_eq!((repaired.txns, repaired.last()), (2, Some(Lsn(20))));
        assert_eq!(
            std::fs::metadata(&meta.path).expect("meta").len(),
            repaired.len
        );
    }

    /// Parts written ahead, patched at commit; an unfinished transaction is cut.
    #[test]
    fn parts_are_patched_and_unfinished_ones_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut meta = write(dir.path(), &[10]);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&meta.path)
            .expect("open");
        // Three parts of a transaction whose commit LSN is not known yet (Begin's is 40).
        let mut at = meta.len;
        let mut parts = Vec::new();
        for (first, n) in [(0u32, 3usize), (3, 3), (6, 2)] {
            let e = encode_txn(&txn(40, first, n), false)
                .expect("encode")
                .remove(0);
            parts.push(WrittenPart {
                header: e.header,
                offset: at,
                rest_crc: e.rest_crc,
                payload_len: e.bytes.len() - record::HEADER,
            });
            at = write_at(&meta, &f, at, std::slice::from_ref(&e)).expect("write");
        }
        // Crash now: the parts are cut.
        let cut = scan(&meta.path, false);
        assert!(cut.is_err(), "an unfinished transaction is not valid");
        // Commit at 48: patch, then the last record.
        for p in &parts {
            patch_lsn(&meta, &f, p, Lsn(48)).expect("patch");
        }
        let last = encode_txn(&txn(48, 8, 1), true).expect("encode").remove(0);
        let end = write_at(&meta, &f, at, std::slice::from_ref(&last)).expect("write");
        let mut placed: Vec<(RecordHeader, u64)> = parts
            .iter()
            .map(|p| {
                (
                    RecordHeader {
                        lsn: Lsn(48),
                        ..p.header
                    },
                    p.offset,
                )
            })
            .collect();
        placed.push((last.header, at));
        commit_written(&mut meta, placed, end);
        let scanned = scan(&meta.path, false).expect("complete");
        assert_eq!(
            (scanned.txns, scanned.head),
            (2, Some(Position::new(Lsn(48), 8)))
        );
        let got = read_after(&scanned, Position::new(Lsn(48), 4), 1).expect("read");
        assert_eq!(
            (got[0].lsn, got[0].first, got[0].changes.len()),
            (Lsn(48), 3, 3),
            "seek inside a transaction"
        );
        let all: usize = read_after(&scanned, Position::START, 100)
            .expect("read")
            .iter()
            .map(|t| t.changes.len())
            .sum();
        assert_eq!(all, 10);
        // Parts of a next transaction, never finished: repair cuts exactly them.
        let e = encode_txn(&txn(60, 0, 2), false).expect("encode").remove(0);
        write_at(&meta, &f, end, std::slice::from_ref(&e)).expect("write");
        let repaired = scan(&meta.path, true).expect("repair");
        assert_eq!((repaired.len, repaired.txns), (end, 2));
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(
            parse_name(&file_name(Lsn(0x16_B374_D848))),
            Some(Lsn(0x16_B374_D848))
        );
        assert_eq!(parse_name("garbage.seg"), None);
    }
}
