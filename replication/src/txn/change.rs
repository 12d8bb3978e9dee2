//! The assembled, domain-level output: [`Transaction`]s of [`Change`]s whose
//! relations are resolved to schema, table and column names with type OIDs
//! and modifiers — never bare OIDs, which change when a table is dropped and
//! re-created.

use std::sync::Arc;

use bytes::Bytes;

use crate::pgoutput::{OldKind, OldTuple, ReplicaIdentity, TruncateOptions, TupleData, TupleValue};
use crate::{Lsn, PgTimestamp};

/// A table as described by its latest Relation message at the point of a
/// change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelationInfo {
    /// Relation OID in this database (informational; names identify it).
    pub oid: u32,
    /// Schema name (`pg_catalog` when PostgreSQL sent an empty namespace).
    pub schema: String,
    /// Table name.
    pub table: String,
    /// REPLICA IDENTITY of the table.
    pub replica_identity: ReplicaIdentity,
    /// Published columns, in tuple order.
    pub columns: Vec<ColumnInfo>,
}

impl RelationInfo {
    /// The index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// One column of a [`RelationInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier (atttypmod; -1 for none).
    pub type_modifier: i32,
    /// Part of the replica identity key.
    pub is_key: bool,
    /// Qualified type name (`schema.name`) when the session sent a Type
    /// message for it (non-built-in types); `None` for built-in types.
    pub type_name: Option<String>,
}

/// What a [`Change`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOp {
    /// A row was inserted.
    Insert,
    /// A row was updated.
    Update,
    /// A row was deleted.
    Delete,
    /// Tables were truncated.
    Truncate,
    /// A transactional logical decoding message.
    Message,
}

/// One change of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A new row.
    Insert {
        /// The table, as of this change.
        relation: Arc<RelationInfo>,
        /// The row.
        new: TupleData,
    },
    /// A changed row. `new` may hold [`TupleValue::Unchanged`] for TOASTed
    /// values the update did not touch; see [`Change::new_with_unchanged_filled`].
    Update {
        /// The table, as of this change.
        relation: Arc<RelationInfo>,
        /// The old key (identity DEFAULT/INDEX when a key column changed) or
        /// full old row (identity FULL); `None` otherwise.
        old: Option<OldTuple>,
        /// The new row.
        new: TupleData,
    },
    /// A removed row.
    Delete {
        /// The table, as of this change.
        relation: Arc<RelationInfo>,
        /// The old key or full old row.
        old: OldTuple,
    },
    /// A TRUNCATE of one or more tables.
    Truncate {
        /// The tables.
        relations: Vec<Arc<RelationInfo>>,
        /// CASCADE / RESTART IDENTITY.
        options: TruncateOptions,
    },
    /// A transactional `pg_logical_emit_message`.
    Message {
        /// LSN of the message.
        lsn: Lsn,
        /// The prefix.
        prefix: String,
        /// The content.
        content: Bytes,
    },
}

impl Change {
    /// The kind of change.
    pub fn op(&self) -> ChangeOp {
        match self {
            Change::Insert { .. } => ChangeOp::Insert,
            Change::Update { .. } => ChangeOp::Update,
            Change::Delete { .. } => ChangeOp::Delete,
            Change::Truncate { .. } => ChangeOp::Truncate,
            Change::Message { .. } => ChangeOp::Message,
        }
    }

    /// The table of an insert, update or delete.
    pub fn relation(&self) -> Option<&Arc<RelationInfo>> {
        match self {
            Change::Insert { relation, .. }
            | Change::Update { relation, .. }
            | Change::Delete { relation, .. } => Some(relation),
            Change::Truncate { .. } | Change::Message { .. } => None,
        }
    }

    /// The new row of an insert or update.
    pub fn new_tuple(&self) -> Option<&TupleData> {
        match self {
            Change::Insert { new, .. } | Change::Update { new, .. } => Some(new),
            _ => None,
        }
    }

    /// The old row of an update or delete, if one was sent.
    pub fn old_tuple(&self) -> Option<&OldTuple> {
        match self {
            Change::Update { old, .. } => old.as_ref(),
            Change::Delete { old, .. } => Some(old),
            _ => None,
        }
    }

    /// For an update whose old image is the full row (REPLICA IDENTITY
    /// FULL), the new row with every [`TupleValue::Unchanged`] replaced by
    /// the old value of that column. Otherwise the new row as sent: with a
    /// key-only or no old image an unchanged TOAST value cannot be recovered
    /// from the stream and stays `Unchanged` (never NULL).
    pub fn new_with_unchanged_filled(&self) -> Option<TupleData> {
        let Change::Update { old, new, .. } = self else {
            return self.new_tuple().cloned();
        };
        let Some(OldTuple {
            kind: OldKind::Full,
            tuple: old,
        }) = old
        else {
            return Some(new.clone());
        };
        let columns = new
            .columns
            .iter()
            .enumerate()
            .map(|(i, v)| match (v, old.columns.get(i)) {
                (TupleValue::Unchanged, Some(o)) => o.clone(),
                (v, _) => v.clone(),
            })
            .collect();
        Some(TupleData { columns })
    }
}

/// A committed transaction, in commit order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// Top-level transaction id.
    pub xid: u32,
    /// Begin's final LSN (the commit record's LSN; for a streamed
    /// transaction, which has no Begin, the commit LSN).
    pub final_lsn: Lsn,
    /// LSN of the commit record.
    pub commit_lsn: Lsn,
    /// End LSN of the commit record: the transaction's position. Acknowledge
    /// this once the transaction is durable; skip transactions whose
    /// `end_lsn` is at or below what is already durable.
    pub end_lsn: Lsn,
    /// Commit time.
    pub commit_time: PgTimestamp,
    /// Replication origin, when the transaction was replayed from elsewhere.
    pub origin: Option<crate::pgoutput::Origin>,
    /// True when it arrived in streamed chunks (`streaming on`).
    pub streamed: bool,
    /// How many of the transaction's changes were delivered earlier as
    /// [`TransactionPart`]s (0 when it is delivered whole); `changes` are
    /// the rest, starting at this index.
    pub earlier_changes: usize,
    /// The changes, in order.
    pub changes: Vec<Change>,
}

/// A leading part of a large transaction that is still being received:
/// the assembler hands these over once the open transaction passes its
/// size limit ([`crate::txn::PartLimits`]), so memory stays bounded. The
/// transaction may still be unfinished on the wire (a reconnect re-sends it
/// whole); only its [`Transaction`] (with the remaining changes and
/// [`Transaction::earlier_changes`]) says it committed. Never acknowledge a
/// part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionPart {
    /// Top-level transaction id.
    pub xid: u32,
    /// Begin's final LSN (the commit record's LSN, known from Begin).
    pub final_lsn: Lsn,
    /// Commit time, known from Begin.
    pub commit_time: PgTimestamp,
    /// Index in the transaction of the first change of this part.
    pub first_change: usize,
    /// The changes, in order.
    pub changes: Vec<Change>,
}

impl Transaction {
    /// The transaction's position: its commit end LSN.
    pub fn position(&self) -> Lsn {
        self.end_lsn
    }
}

/// A non-transactional `pg_logical_emit_message`: delivered as soon as it is
/// decoded, outside any transaction, and never rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NonTransactionalMessage {
    /// LSN of the message (its position).
    pub lsn: Lsn,
    /// The prefix.
    pub prefix: String,
    /// The content.
    pub content: Bytes,
}
