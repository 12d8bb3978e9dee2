//! Test-only access to the captured pgoutput fixtures under `fixtures/`
//! (see `fixtures/capture.sh`) and a compact text rendering of decoded
//! messages for data-driven assertions.

use std::collections::HashMap;
use std::fmt::Write as _;

use bytes::Bytes;

use crate::pgoutput::{Decoder, OldKind, PgOutputMessage, TupleData, TupleValue};
use crate::Lsn;

/// The fixture files, with whether they were captured with `streaming on`.
pub const ALL: [(&str, bool); 8] = [
    ("basic_v1", false),
    ("replica_full_v1", false),
    ("toast_v1", false),
    ("types_v1", false),
    ("types_binary_v1", false),
    ("alter_mid_txn_v1", false),
    ("origin_v1", false),
    ("streaming_v2", true),
];

fn unhex(s: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex digit {c}"),
    };
    s.as_bytes().chunks(2).map(|p| digit(p[0]) << 4 | digit(p[1])).collect()
}

/// Loads `fixtures/<name>.hex`: (peek LSN, message bytes) per line.
pub fn load(name: &str) -> Vec<(Lsn, Bytes)> {
    let path = format!("{}/fixtures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (lsn, hex) = l.split_once(' ').unwrap_or_else(|| panic!("bad line {l}"));
            (lsn.parse().unwrap_or_else(|e| panic!("{e}")), Bytes::from(unhex(hex.trim())))
        })
        .collect()
}

/// Decodes a whole fixture with a [`Decoder`].
pub fn decode_all(name: &str, streaming: bool) -> Vec<PgOutputMessage> {
    let mut d = Decoder::new(streaming);
    load(name)
        .iter()
        .enumerate()
        .map(|(i, (_, b))| d.decode(b).unwrap_or_else(|e| panic!("{name} message {i}: {e}")))
        .collect()
}

fn value(v: &TupleValue) -> String {
    match v {
        TupleValue::Null => "NULL".into(),
        TupleValue::Unchanged => "UNCHANGED".into(),
        TupleValue::Text(b) if b.len() > 60 => format!("text({} bytes)", b.len()),
        TupleValue::Text(b) => format!("'{}'", String::from_utf8_lossy(b)),
        TupleValue::Binary(b) if b.len() > 30 => format!("bin({} bytes)", b.len()),
        TupleValue::Binary(b) => {
            let mut s = "x".to_owned();
            for byte in b.iter() {
                let _ = write!(s, "{byte:02x}");
            }
            s
        }
    }
}

fn tuple(t: &TupleData) -> String {
    format!("({})", t.columns.iter().map(value).collect::<Vec<_>>().join(","))
}

fn old(kind: OldKind) -> &'static str {
    match kind {
        OldKind::Key => "K",
        OldKind::Full => "O",
    }
}

/// Renders decoded messages as one stable line each (no OIDs, xids, LSNs or
/// timestamps, which change between captures).
pub fn render(msgs: &[PgOutputMessage]) -> Vec<String> {
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut out = Vec::new();
    let xid = |x: Option<u32>| if x.is_some() { " [xid]" } else { "" };
    for m in msgs {
        let line = match m {
            PgOutputMessage::Begin(_) => "BEGIN".to_owned(),
            PgOutputMessage::Commit(c) => format!("COMMIT flags={}", c.flags),
            PgOutputMessage::Origin(o) => format!("ORIGIN {} {}", o.name, o.commit_lsn),
            PgOutputMessage::Relation(r) => {
                names.insert(r.oid, r.name.clone());
                let cols: Vec<String> = r
                    .columns
                    .iter()
                    .map(|c| {
                        // OIDs of user-defined types change between captures.
                        let oid = if c.type_oid >= 16384 { "user".to_owned() } else { c.type_oid.to_string() };
                        format!("{}{}:{oid}/{}", if c.is_key() { "*" } else { "" }, c.name, c.type_modifier)
                    })
                    .collect();
                format!(
                    "RELATION{} {}.{} ident={} [{}]",
                    xid(r.xid),
                    r.schema(),
                    r.name,
                    r.replica_identity.byte() as char,
                    cols.join(", ")
                )
            }
            PgOutputMessage::Type(t) => format!("TYPE{} {:?}.{}", xid(t.xid), t.namespace, t.name),
            PgOutputMessage::Insert(i) => {
                format!("INSERT{} {} {}", xid(i.xid), names.get(&i.rel_oid).map_or("?", |s| s), tuple(&i.new))
            }
            PgOutputMessage::Update(u) => format!(
                "UPDATE{} {}{} new={}",
                xid(u.xid),
                names.get(&u.rel_oid).map_or("?", |s| s),
                u.old.as_ref().map(|o| format!(" old={}{}", old(o.kind), tuple(&o.tuple))).unwrap_or_default(),
                tuple(&u.new)
            ),
            PgOutputMessage::Delete(d) => format!(
                "DELETE{} {} old={}{}",
                xid(d.xid),
                names.get(&d.rel_oid).map_or("?", |s| s),
                old(d.old.kind),
                tuple(&d.old.tuple)
            ),
            PgOutputMessage::Truncate(t) => format!(
                "TRUNCATE{} cascade={} restart_identity={} [{}]",
                xid(t.xid),
                t.options.cascade(),
                t.options.restart_identity(),
                t.rel_oids.iter().map(|o| names.get(o).map_or("?", |s| s.as_str())).collect::<Vec<_>>().join(", ")
            ),
            PgOutputMessage::Message(m) => format!(
                "MESSAGE{} transactional={} prefix={:?} content={:?}",
                xid(m.xid),
                m.transactional(),
                m.prefix,
                String::from_utf8_lossy(&m.content)
            ),
            PgOutputMessage::StreamStart(s) => format!("STREAM_START first={}", s.first_segment),
            PgOutputMessage::StreamStop(_) => "STREAM_STOP".to_owned(),
            PgOutputMessage::StreamCommit(_) => "STREAM_COMMIT".to_owned(),
            PgOutputMessage::StreamAbort(a) => {
                format!("STREAM_ABORT {}", if a.is_whole_transaction() { "whole" } else { "subtransaction" })
            }
        };
        out.push(line);
    }
    out
}

/// Collapses runs of more than three consecutive lines that share a prefix
/// up to the first `(` into one `prefix ×N` line.
pub fn squash(lines: Vec<String>) -> Vec<String> {
    let key = |l: &str| l.split('(').next().unwrap_or(l).to_owned();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let k = key(&lines[i]);
        let mut j = i;
        while j < lines.len() && lines[j].contains('(') && key(&lines[j]) == k {
            j += 1;
        }
        if j - i > 3 {
            out.push(format!("{}x{}", k, j - i));
            i = j;
        } else {
            out.push(lines[i].clone());
            i += 1;
        }
    }
    out
}
