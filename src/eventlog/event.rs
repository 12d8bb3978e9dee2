//! The stored shapes: a committed [`Txn`] with its [`Change`]s.
//!
//! Names and types are resolved at decode time and stored with the change
//! (OIDs change on drop and re-create). A transaction lists the relations
//! it touched once ([`RelationInfo`]) and each change points at one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::position::Position;
use fluxbase_replication::Lsn;

/// A committed transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Txn {
    /// The commit's end LSN (the transaction's position in the log).
    #[serde(with = "lsn_text")]
    pub lsn: Lsn,
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
    /// Position of change `i`.
    pub fn position(&self, i: usize) -> Position {
        Position::new(self.lsn, u32::try_from(i).unwrap_or(u32::MAX))
    }

    /// The relation of a change.
    pub fn relation(&self, change: &Change) -> Option<&RelationInfo> {
        change.rel.and_then(|r| self.relations.get(r as usize))
    }

    /// The change as a client sees it: one self-contained JSON object.
    pub fn change_json(&self, i: usize) -> Option<Value> {
        let c = self.changes.get(i)?;
        let mut o = Map::new();
        o.insert("position".into(), Value::String(self.position(i).to_string()));
        o.insert("lsn".into(), Value::String(self.lsn.to_string()));
        o.insert("xid".into(), Value::from(self.xid));
        o.insert("commit_timestamp".into(), Value::String(format_timestamp(self.commit_time_us)));
        o.insert("type".into(), serde_json::to_value(c.op).unwrap_or(Value::Null));
        if let Some(rel) = self.relation(c) {
            o.insert("schema".into(), Value::String(rel.schema.clone()));
            o.insert("table".into(), Value::String(rel.table.clone()));
            o.insert(
                "columns".into(),
                Value::Array(
                    rel.columns
                        .iter()
                        .map(|col| serde_json::json!({"name": col.name, "type": col.type_name}))
                        .collect(),
                ),
            );
        }
        if let Some(r) = &c.record {
            o.insert("record".into(), Value::Object(r.clone()));
        }
        if let Some(r) = &c.old_record {
            o.insert("old_record".into(), Value::Object(r.clone()));
        }
        if !c.unchanged_toast.is_empty() {
            o.insert("unchanged_toast".into(), serde_json::json!(c.unchanged_toast));
        }
        if let Some(m) = &c.message {
            o.insert("message".into(), serde_json::to_value(m).unwrap_or(Value::Null));
        }
        Some(Value::Object(o))
    }
}

/// LSNs stored in their `X/X` text form.
mod lsn_text {
    use fluxbase_replication::Lsn;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(lsn: &Lsn, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(lsn)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Lsn, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// RFC 3339 with microseconds and `Z`, as Supabase's `commit_timestamp`.
pub fn format_timestamp(us: i64) -> String {
    let nanos = i128::from(us) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
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
            xid: 7,
            commit_time_us: 1_700_000_000_123_456,
            relations: vec![RelationInfo {
                schema: "public".into(),
                table: "todos".into(),
                columns: vec![ColumnInfo { name: "id".into(), type_name: "int8".into(), type_oid: 20, key: true }],
            }],
            changes: vec![Change { op: Op::Insert, rel: Some(0), record: Some(rec), old_record: None, unchanged_toast: vec![], message: None }],
        };
        let j = t.change_json(0).expect("change");
        assert_eq!(j["position"], "0/10:0");
        assert_eq!(j["table"], "todos");
        assert_eq!(j["type"], "INSERT");
        assert_eq!(j["record"]["id"], 1);
        assert_eq!(j["commit_timestamp"], "2023-11-14T22:13:20.123456Z");
        let back: Txn = serde_json::from_value(serde_json::to_value(&t).expect("ser")).expect("de");
        assert_eq!(back, t);
    }
}
