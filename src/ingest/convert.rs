//! Decoded replication transactions turned into the event log's shape:
//! relations resolved once per transaction, values converted to JSON, and
//! unchanged TOAST values filled from the old image when REPLICA IDENTITY
//! FULL provides it, otherwise listed in `unchanged_toast` (never null).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use fluxbase_replication::pgoutput::{TupleData, TupleValue};
use fluxbase_replication::{Change as WalChange, RelationInfo as WalRelation, Transaction};
use serde_json::{Map, Value};

use super::types::TypeCache;
use super::values;
use crate::eventlog::event::LogicalMessage;
use crate::eventlog::{Change, ColumnInfo, Op, RelationInfo, Txn};

/// Every type OID a transaction's relations use (to load before converting).
pub fn type_oids(txn: &Transaction) -> Vec<u32> {
    let mut out = Vec::new();
    for c in &txn.changes {
        let rels: Vec<&Arc<WalRelation>> = match c {
            WalChange::Truncate { relations, .. } => relations.iter().collect(),
            other => other.relation().into_iter().collect(),
        };
        for r in rels {
            out.extend(r.columns.iter().map(|col| col.type_oid));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Converts one committed transaction.
pub fn transaction(txn: &Transaction, types: &TypeCache) -> Txn {
    let mut relations: Vec<RelationInfo> = Vec::new();
    let mut rel_index: HashMap<(String, String, usize), u32> = HashMap::new();
    let mut rel_of = |r: &WalRelation, relations: &mut Vec<RelationInfo>| -> u32 {
        // Key by name and shape: a mid-transaction ALTER yields a new entry.
        let key = (r.schema.clone(), r.table.clone(), shape_hash(r));
        *rel_index.entry(key).or_insert_with(|| {
            relations.push(RelationInfo {
                schema: r.schema.clone(),
                table: r.table.clone(),
                columns: r
                    .columns
                    .iter()
                    .map(|c| ColumnInfo {
                        name: c.name.clone(),
                        type_name: c.type_name.clone().unwrap_or_else(|| builtin_type_name(c.type_oid)),
                        type_oid: c.type_oid,
                        key: c.is_key,
                    })
                    .collect(),
            });
            u32::try_from(relations.len() - 1).unwrap_or(u32::MAX)
        })
    };
    let mut changes = Vec::with_capacity(txn.changes.len());
    for c in &txn.changes {
        match c {
            WalChange::Insert { relation, new } => {
                let rel = rel_of(relation, &mut relations);
                let (record, unchanged) = row(relation, new, types);
                changes.push(Change { op: Op::Insert, rel: Some(rel), record: Some(record), old_record: None, unchanged_toast: unchanged, message: None });
            }
            WalChange::Update { relation, old, .. } => {
                let rel = rel_of(relation, &mut relations);
                let filled = c.new_with_unchanged_filled().unwrap_or_default();
                let (record, unchanged) = row(relation, &filled, types);
                let old_record = old.as_ref().map(|o| row(relation, &o.tuple, types).0);
                changes.push(Change { op: Op::Update, rel: Some(rel), record: Some(record), old_record, unchanged_toast: unchanged, message: None });
            }
            WalChange::Delete { relation, old } => {
                let rel = rel_of(relation, &mut relations);
                let (old_record, _) = row(relation, &old.tuple, types);
                changes.push(Change { op: Op::Delete, rel: Some(rel), record: None, old_record: Some(old_record), unchanged_toast: vec![], message: None });
            }
            WalChange::Truncate { relations: rels, .. } => {
                for r in rels {
                    let rel = rel_of(r, &mut relations);
                    changes.push(Change { op: Op::Truncate, rel: Some(rel), record: None, old_record: None, unchanged_toast: vec![], message: None });
                }
            }
            WalChange::Message { prefix, content, .. } => changes.push(message_change(prefix, content)),
        }
    }
    Txn { lsn: txn.end_lsn, xid: txn.xid, commit_time_us: txn.commit_time.unix_micros(), relations, changes }
}

/// A logical decoding message as a change.
pub fn message_change(prefix: &str, content: &[u8]) -> Change {
    let message = match std::str::from_utf8(content) {
        Ok(s) => LogicalMessage { prefix: prefix.to_owned(), content: s.to_owned(), base64: false },
        Err(_) => LogicalMessage {
            prefix: prefix.to_owned(),
            content: base64::engine::general_purpose::STANDARD.encode(content),
            base64: true,
        },
    };
    Change { op: Op::Message, rel: None, record: None, old_record: None, unchanged_toast: vec![], message: Some(message) }
}

fn shape_hash(r: &WalRelation) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in &r.columns {
        c.name.hash(&mut h);
        c.type_oid.hash(&mut h);
    }
    h.finish() as usize
}

fn row(rel: &WalRelation, tuple: &TupleData, types: &TypeCache) -> (Map<String, Value>, Vec<String>) {
    let mut m = Map::with_capacity(rel.columns.len());
    let mut unchanged = Vec::new();
    for (col, v) in rel.columns.iter().zip(&tuple.columns) {
        match v {
            TupleValue::Null => {
                m.insert(col.name.clone(), Value::Null);
            }
            TupleValue::Unchanged => unchanged.push(col.name.clone()),
            TupleValue::Text(b) => {
                let text = String::from_utf8_lossy(b);
                m.insert(col.name.clone(), values::to_json(&types.kind(col.type_oid), &text));
            }
            TupleValue::Binary(b) => {
                m.insert(col.name.clone(), Value::String(base64::engine::general_purpose::STANDARD.encode(b)));
            }
        }
    }
    (m, unchanged)
}

/// Names of common built-in types (the Relation message carries only OIDs).
pub fn builtin_type_name(oid: u32) -> String {
    match oid {
        16 => "bool",
        17 => "bytea",
        18 => "char",
        19 => "name",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        25 => "text",
        26 => "oid",
        114 => "json",
        700 => "float4",
        701 => "float8",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1083 => "time",
        1114 => "timestamp",
        1184 => "timestamptz",
        1186 => "interval",
        1266 => "timetz",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        1000 => "_bool",
        1005 => "_int2",
        1007 => "_int4",
        1016 => "_int8",
        1009 => "_text",
        1015 => "_varchar",
        1021 => "_float4",
        1022 => "_float8",
        1231 => "_numeric",
        2951 => "_uuid",
        3807 => "_jsonb",
        199 => "_json",
        1185 => "_timestamptz",
        1115 => "_timestamp",
        _ => return format!("oid:{oid}"),
    }
    .to_owned()
}
