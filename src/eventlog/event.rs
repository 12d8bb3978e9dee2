//! The stored shapes: a committed [`Txn`] with its [`Change`]s.
//!
//! Names and types are resolved at decode time and stored with the change
//! (OIDs change on drop and re-create). A transaction lists the relations
//! it touched once ([`RelationInfo`]) and each change points at one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::position::Position;
use fluxbase_replication::Lsn;

/// A committed transaction, or a run of its changes: a large transaction
/// is stored and read in parts, each a `Txn` whose `first` says where its
/// changes start within the transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Txn {
    /// The commit's end LSN (the transaction's position in the log); kept
    /// in the record header, not the JSON.
    #[serde(skip)]
    pub lsn: Lsn,
    /// Index within the transaction of `changes[0]` (0 unless this is a
    /// later part of a large transaction); kept in the record header.
    #[serde(skip)]
    pub first: u32,
    /// Transaction id.
    pub xid: u32,
    /// Commit time, microseconds since the Unix epoch.
    pub commit_time_us: i64,
    /// Relations the changes refer to.
    pub relations: Vec<RelationInfo>,
    /// The changes, in order.
    pub changes: Vec<Change>,
}

/// A table as of a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationInfo {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Columns in order.
    pub columns: Vec<ColumnInfo>,
}

/// A column as of a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Name.
    pub name: String,
    /// Type name as PostgreSQL formats it (`int8`, `text`, `_int4`, …).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Part of the replica identity key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key: bool,
}

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Op {
    /// A row inserted.
    Insert,
    /// A row updated.
    Update,
    /// A row deleted.
    Delete,
    /// A table truncated.
    Truncate,
    /// A logical decoding message (`pg_logical_emit_message`).
    Message,
    /// Changes were lost (the slot was invalidated): clients must resnapshot.
    Gap,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// What happened.
    pub op: Op,
    /// Index into [`Txn::relations`] (absent for messages and gaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<u32>,
    /// The new row (insert, update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Map<String, Value>>,
    /// The old row (update, delete): the full row with REPLICA IDENTITY FULL, else the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_record: Option<Map<String, Value>>,
    /// Columns whose value is an unchanged TOASTed value not known here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged_toast: Vec<String>,
    /// The message of a `MESSAGE` change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<LogicalMessage>,
}

/// A logical decoding message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogicalMessage {
    /// The prefix given to `pg_logical_emit_message`.
    pub prefix: String,
    /// The content: text when it is valid UTF-8.
    pub content: String,
    /// Whether the content was base64-encoded because it was not UTF-8.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base64: bool,
}

impl Txn {
    /// Position of change `i` (of this `Txn`'s changes).
    pub fn position(&self, i: usize) -> Position {
        Position::new(
            self.lsn,
            self.first
                .saturating_add(u32::try_from(i).unwrap_or(u32::MAX)),
        )
    }

    /// Position of the last change here (of the first index when empty).
    pub fn last_position(&self) -> Position {
        self.position(self.changes.len().saturating_sub(1))
    }

    /// The relation of a change.
    pub fn relation(&self, change: &Change) -> Option<&RelationInfo> {
        change.rel.and_then(|r| self.relations.get(r as usize))
    }

    /// The change as a client sees it: one self-contained JSON object.
    pub fn change_json(&self, i: usize) -> Option<Value> {
        serde_json::to_value(self.change_view(i, false)?).ok()
    }

    /// Writes change `i` as a client sees it (the same object as
    /// [`Txn::change_json`]) straight to `out`, without building a value
    /// tree; with `left_view` the new row is left out and `left_view: true`
    /// says the row moved out of the reader's view.
    pub fn write_change_json(&self, i: usize, left_view: bool, out: &mut Vec<u8>) -> bool {
        match self.change_view(i, left_view) {
            Some(view) => serde_json::to_writer(out, &view).is_ok(),
            None => false,
        }
    }

    fn change_view(&self, i: usize, left_view: bool) -> Option<ChangeView<'_>> {
        let c = self.changes.get(i)?;
        let rel = self.relation(c);
        Some(ChangeView {
            position: self.position(i),
            lsn: self.lsn,
            xid: self.xid,
            commit_timestamp: format_timestamp(self.commit_time_us),
            op: c.op,
            schema: rel.map(|r| r.schema.as_str()),
            table: rel.map(|r| r.table.as_str()),
            columns: rel.map(|r| ColumnsView(&r.columns)),
            record: if left_view { None } else { c.record.as_ref() },
            old_record: c.old_record.as_ref(),
            unchanged_toast: &c.unchanged_toast,
            message: c.message.as_ref(),
            left_view: left_view.then_some(true),
        })
    }
}

/// A change as sent to clients, borrowing from the stored transaction.
#[derive(Serialize)]
struct ChangeView<'a> {
    #[serde(serialize_with = "display")]
    position: Position,
    #[serde(serialize_with = "display")]
    lsn: Lsn,
    xid: u32,
    commit_timestamp: String,
    #[serde(rename = "type")]
    op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<ColumnsView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_record: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    unchanged_toast: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a LogicalMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    left_view: Option<bool>,
}

/// `[{name, type}]` of a relation's columns.
struct ColumnsView<'a>(&'a [ColumnInfo]);

impl Serialize for ColumnsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Col<'a>(&'a ColumnInfo);
        impl Serialize for Col<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("name", &self.0.name)?;
                m.serialize_entry("type", &self.0.type_name)?;
                m.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            seq.serialize_element(&Col(c))?;
        }
        seq.end()
    }
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// RFC 3339 with microseconds and `Z`, as Supabase's `commit_timestamp`.
pub fn format_timestamp(us: i64) -> String {
    let nanos = i128::from(us) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A transaction of `n` empty inserts at commit `lsn`, starting at change
/// index `first`: the log's unit tests write and read these.
#[cfg(test)]
pub(crate) fn test_txn(lsn: u64, first: u32, n: usize) -> Txn {
    let blank = || Change { op: Op::Insert, rel: None, record: None, old_record: None, unchanged_toast: vec![], message: None };
    Txn { lsn: Lsn(lsn), first, xid: lsn as u32, commit_time_us: 0, relations: vec![], changes: (0..n).map(|_| blank()).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_json_is_self_contained() {
        let mut rec = Map::new();
        rec.insert("id".into(), Value::from(1));
        let t = Txn {
            lsn: Lsn(0x10),
            first: 0,
            xid: 7,
            commit_time_us: 1_700_000_000_123_456,
            relations: vec![RelationInfo {
                schema: "public".into(),
                table: "todos".into(),
                columns: vec![ColumnInfo {
                    name: "id".into(),
                    type_name: "int8".into(),
                    type_oid: 20,
                    key: true,
                }],
            }],
            changes: vec![Change {
                op: Op::Insert,
                rel: Some(0),
                record: Some(rec),
                old_record: None,
                unchanged_toast: vec![],
                message: None,
            }],
        };
        let j = t.change_json(0).expect("change");
        assert_eq!(j["position"], "0/10:0");
        assert_eq!(j["table"], "todos");
        assert_eq!(j["type"], "INSERT");
        assert_eq!(j["record"]["id"], 1);
        assert_eq!(j["commit_timestamp"], "2023-11-14T22:13:20.123456Z");
        let mut back: Txn =
            serde_json::from_value(serde_json::to_value(&t).expect("ser")).expect("de");
        back.lsn = t.lsn;
        assert_eq!(back, t);
    }
}
