//! [`TxnAssembler`]: the Begin…Commit and streamed-chunk state machine.
//!
//! Feed it every decoded message of a session in order with
//! [`TxnAssembler::push`]; it returns a committed [`Transaction`] at each
//! Commit / Stream Commit and a [`NonTransactionalMessage`] for each
//! non-transactional logical message.
//!
//! Streamed transactions (`streaming on`) are buffered by the **top-level**
//! xid named by Stream Start; each buffered change remembers the
//! (sub)transaction xid its message carried so that a Stream Abort of a
//! subtransaction drops exactly its changes. Relation messages inside a chunk
//! go to a per-transaction overlay (merged into the session cache at Stream
//! Commit, dropped at a whole-transaction abort), so a rolled-back ALTER can
//! never change how other transactions are resolved.

use std::collections::HashMap;
use std::sync::Arc;

use super::change::{Change, NonTransactionalMessage, RelationInfo, Transaction, TransactionPart};
use super::relcache::RelationCache;
use crate::pgoutput::{
    Begin, Commit, Delete, Insert, Message, Origin, PgOutputMessage, StreamAbort, StreamCommit,
    StreamStart, Truncate, TupleData, Update,
};
use crate::Lsn;

/// A message sequence that breaks the protocol's rules. The session's state
/// is not trustworthy after one: reconnect (which resets the assembler).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    /// A change names a relation OID no Relation message described.
    #[error("change for relation OID {oid} without a preceding Relation message")]
    UnknownRelation {
        /// The OID.
        oid: u32,
    },
    /// A tuple's column count differs from its Relation's.
    #[error("{schema}.{table}: tuple has {actual} columns, Relation has {expected}")]
    ColumnCountMismatch {
        /// Schema of the relation.
        schema: String,
        /// Table name.
        table: String,
        /// Columns in the Relation message.
        expected: usize,
        /// Columns in the tuple.
        actual: usize,
    },
    /// A message arrived in a state where the protocol does not allow it.
    #[error("unexpected {message} {state}")]
    UnexpectedMessage {
        /// The message (e.g. "Commit").
        message: &'static str,
        /// Where it arrived (e.g. "outside a transaction").
        state: &'static str,
    },
    /// Commit's commit LSN differs from Begin's final LSN.
    #[error("Commit LSN {commit} differs from Begin's final LSN {begin}")]
    CommitLsnMismatch {
        /// Begin's final LSN.
        begin: Lsn,
        /// Commit's commit LSN.
        commit: Lsn,
    },
    /// A continuation chunk or Stream Commit for a streamed transaction whose
    /// first chunk was not seen in this session.
    #[error("streamed transaction {xid} continues but its first chunk was not seen")]
    UnknownStream {
        /// Top-level xid.
        xid: u32,
    },
}

/// What [`TxnAssembler::push`] completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A committed transaction.
    Transaction(Transaction),
    /// A non-transactional logical message.
    Message(NonTransactionalMessage),
    /// A leading part of a large transaction that is still open.
    Part(TransactionPart),
}

/// When an open (non-streamed) transaction is handed over in parts: once
/// it buffers more than `changes` changes or more than `bytes` bytes of
/// tuple data, everything but its newest change goes out as a
/// [`TransactionPart`]. The newest change is kept so that the closing
/// [`Transaction`] is never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    /// Most changes buffered before a part is handed over.
    pub changes: usize,
    /// Most tuple bytes buffered before a part is handed over.
    pub bytes: usize,
}

impl Default for PartLimits {
    fn default() -> Self {
        PartLimits {
            changes: 4096,
            bytes: 8 << 20,
        }
    }
}

#[derive(Debug)]
struct OpenTxn {
    begin: Begin,
    origin: Option<Origin>,
    changes: Vec<Change>,
    /// Tuple bytes in `changes`.
    bytes: usize,
    /// Changes already handed over as parts.
    earlier: usize,
}

/// Approximate memory of a change's tuple data.
fn change_bytes(c: &Change) -> usize {
    let tuple = |t: &TupleData| {
        t.columns
            .iter()
            .map(|v| 16 + v.as_bytes().map_or(0, |b| b.len()))
            .sum::<usize>()
    };
    64 + c.new_tuple().map_or(0, tuple) + c.old_tuple().map_or(0, |o| tuple(&o.tuple))
}

#[derive(Debug, Default)]
struct StreamedTxn {
    origin: Option<Origin>,
    /// (xid of the (sub)transaction that made it, change)
    changes: Vec<(u32, Change)>,
    /// Relations described inside this transaction's chunks.
    overlay: HashMap<u32, Arc<RelationInfo>>,
}

/// Assembles committed transactions from one session's messages.
#[derive(Debug, Default)]
pub struct TxnAssembler {
    relations: RelationCache,
    open: Option<OpenTxn>,
    /// Top-level xid of the chunk being received (between S and E).
    chunk: Option<u32>,
    streams: HashMap<u32, StreamedTxn>,
    /// `None`: open transactions are buffered whole.
    parts: Option<PartLimits>,
}

fn unexpected<T>(message: &'static str, state: &'static str) -> Result<T, AssembleError> {
    Err(AssembleError::UnexpectedMessage { message, state })
}

fn check_columns(rel: &RelationInfo, t: &TupleData) -> Result<(), AssembleError> {
    if rel.columns.len() == t.columns.len() {
        Ok(())
    } else {
        Err(AssembleError::ColumnCountMismatch {
            schema: rel.schema.clone(),
            table: rel.table.clone(),
            expected: rel.columns.len(),
            actual: t.columns.len(),
        })
    }
}

impl TxnAssembler {
    /// A fresh assembler (empty relation cache) that buffers open
    /// transactions whole.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh assembler that hands large open transactions over in parts.
    pub fn with_parts(limits: PartLimits) -> Self {
        TxnAssembler {
            parts: Some(limits),
            ..Self::default()
        }
    }

    /// Forgets the relation cache and every partial transaction. Call on
    /// reconnect: the server re-sends Relations before first use and re-sends
    /// unfinished (streamed) transactions from their start.
    pub fn reset(&mut self) {
        *self = TxnAssembler {
            parts: self.parts,
            ..Self::default()
        };
    }

    /// The session's relation cache.
    pub fn relations(&self) -> &RelationCache {
        &self.relations
    }

    /// True when a transaction is open: between Begin and Commit, inside a
    /// streamed chunk, or with streamed chunks buffered awaiting their
    /// Stream Commit/Abort. While not idle, a keepalive's WAL position must
    /// not be acknowledged (see [`crate::ack`]).
    pub fn is_idle(&self) -> bool {
        self.open.is_none() && self.chunk.is_none() && self.streams.is_empty()
    }

    /// Number of changes currently buffered (open and streamed transactions).
    pub fn buffered_changes(&self) -> usize {
        self.open.as_ref().map_or(0, |t| t.changes.len())
            + self
                .streams
                .values()
                .map(|s| s.changes.len())
                .sum::<usize>()
    }

    /// Feeds the next message of the session.
    pub fn push(&mut self, msg: PgOutputMessage) -> Result<Option<Assembled>, AssembleError> {
        let done = self.dispatch(msg)?;
        if done.is_some() {
            return Ok(done);
        }
        Ok(self.take_part().map(Assembled::Part))
    }

    /// Hands over all but the newest change of the open transaction once it
    /// is past the part limits.
    fn take_part(&mut self) -> Option<TransactionPart> {
        let limits = self.parts?;
        let open = self.open.as_mut()?;
        if open.changes.len() <= limits.changes && open.bytes <= limits.bytes {
            return None;
        }
        let newest = open.changes.pop()?;
        let changes = std::mem::replace(&mut open.changes, vec![newest]);
        open.bytes = open.changes.iter().map(change_bytes).sum();
        let first_change = open.earlier;
        open.earlier += changes.len();
        Some(TransactionPart {
            xid: open.begin.xid,
            final_lsn: open.begin.final_lsn,
            commit_time: open.begin.commit_time,
            first_change,
            changes,
        })
    }

    fn dispatch(&mut self, msg: PgOutputMessage) -> Result<Option<Assembled>, AssembleError> {
        match msg {
            PgOutputMessage::Begin(b) => self.begin(b),
            PgOutputMessage::Commit(c) => self.commit(c).map(|t| Some(Assembled::Transaction(t))),
            PgOutputMessage::Origin(o) => self.origin(o),
            PgOutputMessage::Relation(r) => {
                match self.chunk.and_then(|xid| self.streams.get_mut(&xid)) {
                    Some(s) => {
                        let info = self.relations.resolve(&r);
                        s.overlay.insert(r.oid, info);
                    }
                    None => {
                        self.relations.apply_relation(&r);
                    }
                }
                Ok(None)
            }
            PgOutputMessage::Type(t) => {
                self.relations.apply_type(&t);
                Ok(None)
            }
            PgOutputMessage::Insert(m) => self.insert(m),
            PgOutputMessage::Update(m) => self.update(m),
            PgOutputMessage::Delete(m) => self.delete(m),
            PgOutputMessage::Truncate(m) => self.truncate(m),
            PgOutputMessage::Message(m) => self.message(m),
            PgOutputMessage::StreamStart(s) => self.stream_start(s),
            PgOutputMessage::StreamStop(_) => match self.chunk.take() {
                Some(_) => Ok(None),
                None => unexpected("Stream Stop", "outside a streamed chunk"),
            },
            PgOutputMessage::StreamCommit(c) => self
                .stream_commit(c)
                .map(|t| Some(Assembled::Transaction(t))),
            PgOutputMessage::StreamAbort(a) => self.stream_abort(a),
        }
    }

    fn begin(&mut self, b: Begin) -> Result<Option<Assembled>, AssembleError> {
        if self.open.is_some() {
            return unexpected("Begin", "inside a transaction");
        }
        if self.chunk.is_some() {
            return unexpected("Begin", "inside a streamed chunk");
        }
        self.open = Some(OpenTxn {
            begin: b,
            origin: None,
            changes: Vec::new(),
            bytes: 0,
            earlier: 0,
        });
        Ok(None)
    }

    fn commit(&mut self, c: Commit) -> Result<Transaction, AssembleError> {
        let Some(open) = self.open.take() else {
            return unexpected("Commit", "outside a transaction");
        };
        if open.begin.final_lsn != c.commit_lsn {
            return Err(AssembleError::CommitLsnMismatch {
                begin: open.begin.final_lsn,
                commit: c.commit_lsn,
            });
        }
        Ok(Transaction {
            xid: open.begin.xid,
            final_lsn: open.begin.final_lsn,
            commit_lsn: c.commit_lsn,
            end_lsn: c.end_lsn,
            commit_time: c.commit_time,
            origin: open.origin,
            streamed: false,
            earlier_changes: open.earlier,
            changes: open.changes,
        })
    }

    fn origin(&mut self, o: Origin) -> Result<Option<Assembled>, AssembleError> {
        if let Some(open) = &mut self.open {
            open.origin = Some(o);
        } else if let Some(s) = self.chunk.and_then(|xid| self.streams.get_mut(&xid)) {
            s.origin = Some(o);
        } else {
            return unexpected("Origin", "outside a transaction");
        }
        Ok(None)
    }

    /// Resolves a relation OID as of this point of the stream.
    fn relation(&self, oid: u32) -> Result<Arc<RelationInfo>, AssembleError> {
        let overlay = self
            .chunk
            .and_then(|xid| self.streams.get(&xid))
            .and_then(|s| s.overlay.get(&oid));
        overlay
            .or_else(|| self.relations.get(oid))
            .cloned()
            .ok_or(AssembleError::UnknownRelation { oid })
    }

    /// Appends a change to the open transaction or the current chunk.
    fn add(
        &mut self,
        message: &'static str,
        xid: Option<u32>,
        change: Change,
    ) -> Result<(), AssembleError> {
        if let Some(top) = self.chunk {
            let s = self
                .streams
                .get_mut(&top)
                .ok_or(AssembleError::UnknownStream { xid: top })?;
            s.changes.push((xid.unwrap_or(top), change));
            Ok(())
        } else if let Some(open) = &mut self.open {
            if self.parts.is_some() {
                open.bytes += change_bytes(&change);
            }
            open.changes.push(change);
            Ok(())
        } else {
            unexpected(message, "outside a transaction")
        }
    }

    fn insert(&mut self, m: Insert) -> Result<Option<Assembled>, AssembleError> {
        let relation = self.relation(m.rel_oid)?;
        check_columns(&relation, &m.new)?;
        self.add(
            "Insert",
            m.xid,
            Change::Insert {
                relation,
                new: m.new,
            },
        )?;
        Ok(None)
    }

    fn update(&mut self, m: Update) -> Result<Option<Assembled>, AssembleError> {
        let relation = self.relation(m.rel_oid)?;
        check_columns(&relation, &m.new)?;
        if let Some(old) = &m.old {
            check_columns(&relation, &old.tuple)?;
        }
        self.add(
            "Update",
            m.xid,
            Change::Update {
                relation,
                old: m.old,
                new: m.new,
            },
        )?;
        Ok(None)
    }

    fn delete(&mut self, m: Delete) -> Result<Option<Assembled>, AssembleError> {
        let relation = self.relation(m.rel_oid)?;
        check_columns(&relation, &m.old.tuple)?;
        self.add(
            "Delete",
            m.xid,
            Change::Delete {
                relation,
                old: m.old,
            },
        )?;
        Ok(None)
    }

    fn truncate(&mut self, m: Truncate) -> Result<Option<Assembled>, AssembleError> {
        let relations = m
            .rel_oids
            .iter()
            .map(|&oid| self.relation(oid))
            .collect::<Result<Vec<_>, _>>()?;
        self.add(
            "Truncate",
            m.xid,
            Change::Truncate {
                relations,
                options: m.options,
            },
        )?;
        Ok(None)
    }

    fn message(&mut self, m: Message) -> Result<Option<Assembled>, AssembleError> {
        if !m.transactional() {
            return Ok(Some(Assembled::Message(NonTransactionalMessage {
                lsn: m.lsn,
                prefix: m.prefix,
                content: m.content,
            })));
        }
        self.add(
            "Message",
            m.xid,
            Change::Message {
                lsn: m.lsn,
                prefix: m.prefix,
                content: m.content,
            },
        )?;
        Ok(None)
    }

    fn stream_start(&mut self, s: StreamStart) -> Result<Option<Assembled>, AssembleError> {
        if self.open.is_some() {
            return unexpected("Stream Start", "inside a transaction");
        }
        if self.chunk.is_some() {
            return unexpected("Stream Start", "inside a streamed chunk");
        }
        if s.first_segment {
            if self.streams.insert(s.xid, StreamedTxn::default()).is_some() {
                tracing::warn!(
                    xid = s.xid,
                    "first chunk of a streamed transaction seen twice; restarting its buffer"
                );
            }
        } else if !self.streams.contains_key(&s.xid) {
            return Err(AssembleError::UnknownStream { xid: s.xid });
        }
        self.chunk = Some(s.xid);
        Ok(None)
    }

    fn stream_commit(&mut self, c: StreamCommit) -> Result<Transaction, AssembleError> {
        if self.chunk.is_some() {
            return unexpected("Stream Commit", "inside a streamed chunk");
        }
        let s = self
            .streams
            .remove(&c.xid)
            .ok_or(AssembleError::UnknownStream { xid: c.xid })?;
        for info in s.overlay.into_values() {
            self.relations.insert(info);
        }
        Ok(Transaction {
            xid: c.xid,
            final_lsn: c.commit_lsn,
            commit_lsn: c.commit_lsn,
            end_lsn: c.end_lsn,
            commit_time: c.commit_time,
            origin: s.origin,
            streamed: true,
            earlier_changes: 0,
            changes: s.changes.into_iter().map(|(_, ch)| ch).collect(),
        })
    }

    fn stream_abort(&mut self, a: StreamAbort) -> Result<Option<Assembled>, AssembleError> {
        if self.chunk.is_some() {
            return unexpected("Stream Abort", "inside a streamed chunk");
        }
        if a.is_whole_transaction() {
            self.streams.remove(&a.xid);
        } else if let Some(s) = self.streams.get_mut(&a.xid) {
            s.changes.retain(|(xid, _)| *xid != a.subxid);
        }
        Ok(None)
    }
}
