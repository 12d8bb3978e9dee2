//! One segment file of the log: `<first LSN as 16 hex digits>.seg`.
//!
//! Layout: an 8-byte magic, then records ([`super::record`]) whose payload
//! is `[commit LSN: u64 LE][transaction as JSON]`, so a scan can skip
//! records by LSN without parsing JSON. A sparse index (one entry per
//! [`INDEX_EVERY`] bytes) makes seeking to a position O(log n) plus a short
//! bounded scan.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fluxbase_replication::Lsn;

use super::record::{self, Decoded};
use super::{LogError, Txn};

/// Magic at the start of every segment.
pub const MAGIC: &[u8; 8] = b"FLXLOG1\n";
/// Bytes between sparse index entries.
pub const INDEX_EVERY: u64 = 64 * 1024;

/// What is known of a segment without reading it again.
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    /// Its file.
    pub path: PathBuf,
    /// LSN of its first record (from the file name).
    pub first: Lsn,
    /// LSN of its last record, if any.
    pub last: Option<Lsn>,
    /// Valid length in bytes.
    pub len: u64,
    /// `(lsn, offset)` of records at roughly every [`INDEX_EVERY`] bytes.
    pub index: Vec<(Lsn, u64)>,
    /// Number of transactions.
    pub txns: u64,
}

fn io(path: &Path, source: std::io::Error) -> LogError {
    LogError::Io { path: path.to_owned(), source }
}

/// File name for a segment starting at `first`.
pub fn file_name(first: Lsn) -> String {
    format!("{:016X}.seg", first.0)
}

/// The first LSN a segment file name encodes.
pub fn parse_name(name: &str) -> Option<Lsn> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten().map(Lsn)
}

/// Creates an empty segment.
pub fn create(dir: &Path, first: Lsn) -> Result<(SegmentMeta, File), LogError> {
    let path = dir.join(file_name(first));
    let mut f = OpenOptions::new().create(true).truncate(true).write(true).read(true).open(&path).map_err(|e| io(&path, e))?;
    f.write_all(MAGIC).map_err(|e| io(&path, e))?;
    f.sync_all().map_err(|e| io(&path, e))?;
    sync_dir(dir)?;
    Ok((SegmentMeta { path, first, last: None, len: MAGIC.len() as u64, index: Vec::new(), txns: 0 }, f))
}

/// Makes a directory's entries (new or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))
}

/// Scans a segment, building its index. With `repair`, a torn or corrupt
/// tail is cut off (the file is truncated after the last valid record).
pub fn scan(path: &Path, repair: bool) -> Result<SegmentMeta, LogError> {
    let first = path.file_name().and_then(|n| n.to_str()).and_then(parse_name).ok_or_else(|| LogError::Corrupt {
        path: path.to_owned(),
        offset: 0,
        message: "not a segment file name".into(),
    })?;
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let mut meta = SegmentMeta { path: path.to_owned(), first, last: None, len: 0, index: Vec::new(), txns: 0 };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        if !repair {
            return Err(LogError::Corrupt { path: path.to_owned(), offset: 0, message: "bad magic".into() });
        }
        let mut f = OpenOptions::new().write(true).open(path).map_err(|e| io(path, e))?;
        f.set_len(0).map_err(|e| io(path, e))?;
        f.write_all(MAGIC).map_err(|e| io(path, e))?;
        f.sync_all().map_err(|e| io(path, e))?;
        meta.len = MAGIC.len() as u64;
        return Ok(meta);
    }
    let mut offset = MAGIC.len();
    let mut next_index = 0u64;
    while let Decoded::Record(payload, n) = record::decode(&bytes[offset..]) {
        let Some(lsn) = payload_lsn(payload) else { break };
        if meta.last.is_some_and(|l| lsn <= l) {
            break;
        }
        if offset as u64 >= next_index {
            meta.index.push((lsn, offset as u64));
            next_index = offset as u64 + INDEX_EVERY;
        }
        meta.last = Some(lsn);
        meta.txns += 1;
        offset += n;
    }
    meta.len = offset as u64;
    if offset < bytes.len() {
        if !repair {
            return Err(LogError::Corrupt { path: path.to_owned(), offset: offset as u64, message: "invalid record".into() });
        }
        tracing::warn!(path = %path.display(), valid = offset, dropped = bytes.len() - offset, "event log: cutting a torn tail");
        let f = OpenOptions::new().write(true).open(path).map_err(|e| io(path, e))?;
        f.set_len(offset as u64).map_err(|e| io(path, e))?;
        f.sync_all().map_err(|e| io(path, e))?;
    }
    Ok(meta)
}

fn payload_lsn(payload: &[u8]) -> Option<Lsn> {
    let b: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(Lsn(u64::from_le_bytes(b)))
}

/// Encodes a transaction as a record payload.
pub fn encode_txn(txn: &Txn, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let json = serde_json::to_vec(txn)?;
    let mut payload = Vec::with_capacity(8 + json.len());
    payload.extend_from_slice(&txn.lsn.0.to_le_bytes());
    payload.extend_from_slice(&json);
    record::encode(&payload, out);
    Ok(())
}

/// Appends encoded records to an open segment and records them in `meta`.
pub fn append(meta: &mut SegmentMeta, file: &mut File, batch: &[(Lsn, Vec<u8>)]) -> Result<(), LogError> {
    let mut buf = Vec::with_capacity(batch.iter().map(|(_, b)| b.len()).sum());
    let mut offset = meta.len;
    let mut next_index = meta.index.last().map(|(_, o)| o + INDEX_EVERY).unwrap_or(0);
    for (lsn, bytes) in batch {
        if offset >= next_index {
            meta.index.push((*lsn, offset));
            next_index = offset + INDEX_EVERY;
        }
        buf.extend_from_slice(bytes);
        offset += bytes.len() as u64;
        meta.last = Some(*lsn);
        meta.txns += 1;
    }
    file.seek(SeekFrom::Start(meta.len)).map_err(|e| io(&meta.path, e))?;
    file.write_all(&buf).map_err(|e| io(&meta.path, e))?;
    meta.len = offset;
    Ok(())
}

/// Reads the transactions of a segment with commit LSN ≥ `from`, at most `max`.
pub fn read_from(meta: &SegmentMeta, from: Lsn, max: usize) -> Result<Vec<Txn>, LogError> {
    let start = match meta.index.partition_point(|(lsn, _)| *lsn < from) {
        0 => MAGIC.len() as u64,
        i => meta.index[i - 1].1,
    };
    let f = File::open(&meta.path).map_err(|e| io(&meta.path, e))?;
    let mut r = BufReader::with_capacity(256 * 1024, f);
    r.seek(SeekFrom::Start(start)).map_err(|e| io(&meta.path, e))?;
    let mut offset = start;
    let mut out = Vec::new();
    let mut header = [0u8; record::HEADER];
    while offset < meta.len && out.len() < max {
        r.read_exact(&mut header).map_err(|e| io(&meta.path, e))?;
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        let len = u32::from_le_bytes(len) as usize;
        let corrupt = |message: &str| LogError::Corrupt { path: meta.path.clone(), offset, message: message.into() };
        if !(8..=record::MAX_PAYLOAD).contains(&len) {
            return Err(corrupt("bad length"));
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).map_err(|e| io(&meta.path, e))?;
        let lsn = payload_lsn(&payload).ok_or_else(|| corrupt("short payload"))?;
        if lsn >= from {
            let mut framed = Vec::with_capacity(record::HEADER + len);
            framed.extend_from_slice(&header);
            framed.extend_from_slice(&payload);
            if !matches!(record::decode(&framed), Decoded::Record(..)) {
                return Err(corrupt("checksum mismatch"));
            }
            let txn: Txn = serde_json::from_slice(&payload[8..]).map_err(|e| corrupt(&e.to_string()))?;
            out.push(txn);
        }
        offset += (record::HEADER + len) as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(lsn: u64) -> Txn {
        Txn { lsn: Lsn(lsn), xid: lsn as u32, commit_time_us: 0, relations: vec![], changes: vec![] }
    }

    fn write(dir: &Path, lsns: &[u64]) -> SegmentMeta {
        let (mut meta, mut f) = create(dir, Lsn(lsns[0])).expect("create");
        let batch: Vec<(Lsn, Vec<u8>)> = lsns
            .iter()
            .map(|l| {
                let mut b = Vec::new();
                encode_txn(&txn(*l), &mut b).expect("encode");
                (Lsn(*l), b)
            })
            .collect();
        append(&mut meta, &mut f, &batch).expect("append");
        f.sync_all().expect("sync");
        meta
    }

    #[test]
    fn scan_reads_back_and_seeks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lsns: Vec<u64> = (1..=5000).map(|i| i * 100).collect();
        let meta = write(dir.path(), &lsns);
        let scanned = scan(&meta.path, false).expect("scan");
        assert_eq!((scanned.txns, scanned.last, scanned.len), (5000, Some(Lsn(500_000)), meta.len));
        assert!(scanned.index.len() > 1, "sparse index has several entries");
        let got = read_from(&scanned, Lsn(250_050), 3).expect("read");
        assert_eq!(got.iter().map(|t| t.lsn.0).collect::<Vec<_>>(), vec![250_100, 250_200, 250_300]);
        assert!(read_from(&scanned, Lsn(900_000), 3).expect("read").is_empty());
    }

    #[test]
    fn torn_tail_is_cut_on_repair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = write(dir.path(), &[10, 20, 30]);
        let full = std::fs::metadata(&meta.path).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&meta.path).expect("open");
        f.set_len(full - 3).expect("tear");
        assert!(scan(&meta.path, false).is_err());
        let repaired = scan(&meta.path, true).expect("repair");
        assert_eq!((repaired.txns, repaired.last), (2, Some(Lsn(20))));
        assert_eq!(std::fs::metadata(&meta.path).expect("meta").len(), repaired.len);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_name(&file_name(Lsn(0x16_B374_D848))), Some(Lsn(0x16_B374_D848)));
        assert_eq!(parse_name("garbage.seg"), None);
    }
}
