//! Decoded replication transactions turned into the event log's shape:
//! relations resolved once per transaction, values converted to JSON, and
//! unchanged TOAST values filled from the old image when REPLICA IDENTITY
//! FULL provides it, otherwise listed in `unchanged_toast` (never null).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use fluxbase_replication::pgoutput::{TupleData, TupleValue};
use fluxbase_replication::{
    Change as WalChange, Lsn, RelationInfo as WalRelation, Transaction, TransactionPart,
};
use serde_json::{Map, Value};

use super::types::TypeCache;
use super::values::{self, Kind};
use crate::eventlog::event::LogicalMessage;
use crate::eventlog::{Change, ColumnInfo, Op, RelationInfo, Txn};

/// Every type OID the changes' relations use (to load before converting).
pub fn type_oids(changes: &[WalChange]) -> Vec<u32> {
    let mut out = Vec::new();
    for c in changes {
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

/// Converts one committed transaction (the rest of it, when parts came first).
pub fn transaction(txn: &Transaction, types: &TypeCache) -> Txn {
    changes(
        txn.end_lsn,
        txn.xid,
        txn.commit_time.unix_micros(),
        &txn.changes,
        types,
    )
}

/// Converts a leading part of a large transaction (its `lsn` is Begin's;
/// the log patches it at the commit).
pub fn part(part: &TransactionPart, types: &TypeCache) -> Txn {
    changes(
        part.final_lsn,
        part.xid,
        part.commit_time.unix_micros(),
        &part.changes,
        types,
    )
}

/// The relations of one converted transaction (or part): each distinct
/// table shape once, with its columns' kinds resolved once.
#[derive(Default)]
struct Relations {
    list: Vec<RelationInfo>,
    kinds: Vec<Arc<[Kind]>>,
    /// By the decoder's shared relation (changes of one table share one `Arc`).
    by_ptr: HashMap<usize, u32>,
    /// By name and shape: a mid-transaction ALTER yields a new entry.
    by_shape: HashMap<(String, String, usize), u32>,
}

impl Relations {
    fn of(&mut self, r: &Arc<WalRelation>, types: &TypeCache) -> (u32, Arc<[Kind]>) {
        let ptr = Arc::as_ptr(r) as usize;
        let i = match self.by_ptr.get(&ptr) {
            Some(i) => *i,
            None => {
                let key = (r.schema.clone(), r.table.clone(), shape_hash(r));
                let i = match self.by_shape.get(&key) {
                    Some(i) => *i,
                    None => {
                        self.list.push(RelationInfo {
                            schema: r.schema.clone(),
                            table: r.table.clone(),
                            columns: r
                                .columns
                                .iter()
                                .map(|c| ColumnInfo {
                                    name: c.name.clone(),
                                    type_name: c
                                        .type_name
                                        .clone()
                                        .unwrap_or_else(|| builtin_type_name(c.type_oid)),
                                    type_oid: c.type_oid,
                                    key: c.is_key,
                                })
                                .collect(),
                        });
                        self.kinds
                            .push(r.columns.iter().map(|c| types.kind(c.type_oid)).collect());
                        let i = u32::try_from(self.list.len() - 1).unwrap_or(u32::MAX);
                        self.by_shape.insert(key, i);
                        i
                    }
                };
                self.by_ptr.insert(ptr, i);
                i
            }
        };
        (
            i,
            self.kinds
                .get(i as usize)
                .cloned()
                .unwrap_or_else(|| Arc::from(Vec::new())),
        )
    }
}

fn changes(lsn: Lsn, xid: u32, commit_time_us: i64, wal: &[WalChange], types: &TypeCache) -> Txn {
    let mut rels = Relations::default();
    let mut changes = Vec::with_capacity(wal.len());
    for c in wal {
        match c {
            WalChange::Insert { relation, new } => {
                let (rel, kinds) = rels.of(relation, types);
                let (record, unchanged) = row(relation, &kinds, new);
                changes.push(Change {
                    op: Op::Insert,
                    rel: Some(rel),
                    record: Some(record),
                    old_record: None,
                    unchanged_toast: unchanged,
                    message: None,
                });
            }
            WalChange::Update { relation, old, .. } => {
                let (rel, kinds) = rels.of(relation, types);
                let filled = c.new_with_unchanged_filled().unwrap_or_default();
                let (record, unchanged) = row(relation, &kinds, &filled);
                let old_record = old.as_ref().map(|o| row(relation, &kinds, &o.tuple).0);
                changes.push(Change {
                    op: Op::Update,
                    rel: Some(rel),
                    record: Some(record),
                    old_record,
                    unchanged_toast: unchanged,
                    message: None,
                });
            }
            WalChange::Delete { relation, old } => {
                let (rel, kinds) = rels.of(relation, types);
                let (old_record, _) = row(relation, &kinds, &old.tuple);
                changes.push(Change {
                    op: Op::Delete,
                    rel: Some(rel),
                    record: None,
                    old_record: Some(old_record),
                    unchanged_toast: vec![],
                    message: None,
                });
            }
            WalChange::Truncate {
                relations: truncated,
                ..
            } => {
                for r in truncated {
                    let (rel, _) = rels.of(r, types);
                    changes.push(Change {
                        op: Op::Truncate,
                        rel: Some(rel),
                        record: None,
                        old_record: None,
                        unchanged_toast: vec![],
                        message: None,
                    });
                }
            }
            WalChange::Message {
                prefix, content, ..
            } => changes.push(message_change(prefix, content)),
        }
    }
    Txn {
        lsn,
        first: 0,
        xid,
        commit_time_us,
        relations: rels.list,
        changes,
    }
}

/// A logical decoding message as a change.
pub fn message_change(prefix: &str, content: &[u8]) -> Change {
    let message = match std::str::from_utf8(content) {
        Ok(s) => LogicalMessage {
            prefix: prefix.to_owned(),
            content: s.to_owned(),
            base64: false,
        },
        Err(_) => LogicalMessage {
            prefix: prefix.to_owned(),
            content: base64::engine::general_purpose::STANDARD.encode(content),
            base64: true,
        },
    };
    Change {
        op: Op::Message,
        rel: None,
        record: None,
        old_record: None,
        unchanged_toast: vec![],
        message: Some(message),
    }
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

fn row(rel: &WalRelation, kinds: &[Kind], tuple: &TupleData) -> (Map<String, Value>, Vec<String>) {
    let mut m = Map::new();
    let mut unchanged = Vec::new();
    for ((col, v), kind) in rel.columns.iter().zip(&tuple.columns).zip(kinds) {
        match v {
            TupleValue::Null => {
                m.insert(col.name.clone(), Value::Null);
            }
            TupleValue::Unchanged => unchanged.push(col.name.clone()),
            TupleValue::Text(b) => {
                let text = match std::str::from_utf8(b) {
                    Ok(t) => std::borrow::Cow::Borrowed(t),
                    Err(_) => String::from_utf8_lossy(b),
                };
                m.insert(col.name.clone(), values::to_json(kind, &text));
            }
            TupleValue::Binary(b) => {
                m.insert(
                    col.name.clone(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
                );
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
