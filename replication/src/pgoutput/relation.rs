//! Relation (`'R'`): the shape of a published table, sent before its first
//! change in a session and again whenever its definition changes — possibly
//! in the middle of a transaction.
//!
//! Layout: [Int32 xid inside a stream], Int32 relation OID, String namespace
//! (`""` means `pg_catalog`), String relation name, Int8 replica identity
//! (`d`/`n`/`f`/`i`), Int16 column count, then per column: Int8 flags (1 =
//! part of the replica identity key), String name, Int32 type OID, Int32
//! type modifier (atttypmod).

use bytes::{BufMut, BytesMut};

use super::{put_xid, read_xid};
use crate::codec::{i16_count, put_cstr, Corruption, DecodeError, Reader};

/// A table's REPLICA IDENTITY setting, which decides the old-row image of
/// updates and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaIdentity {
    /// `'d'`: the primary key.
    Default,
    /// `'n'`: nothing.
    Nothing,
    /// `'f'`: all columns.
    Full,
    /// `'i'`: the columns of a chosen unique index.
    Index,
}

impl ReplicaIdentity {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            ReplicaIdentity::Default => b'd',
            ReplicaIdentity::Nothing => b'n',
            ReplicaIdentity::Full => b'f',
            ReplicaIdentity::Index => b'i',
        }
    }

    /// The setting for a wire byte, if it is one of `d`, `n`, `f`, `i`.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'd' => ReplicaIdentity::Default,
            b'n' => ReplicaIdentity::Nothing,
            b'f' => ReplicaIdentity::Full,
            b'i' => ReplicaIdentity::Index,
            _ => return None,
        })
    }
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelationColumn {
    /// Flags: bit 1 marks a replica identity key column.
    pub flags: u8,
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier (atttypmod; -1 for none).
    pub type_modifier: i32,
}

impl RelationColumn {
    /// True when the column is part of the replica identity key.
    pub fn is_key(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// A Relation message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    /// The (sub)transaction id; present only inside a stream.
    pub xid: Option<u32>,
    /// Relation OID.
    pub oid: u32,
    /// Namespace as sent; empty means `pg_catalog`.
    pub namespace: String,
    /// Relation name.
    pub name: String,
    /// Replica identity setting.
    pub replica_identity: ReplicaIdentity,
    /// Published columns, in tuple order.
    pub columns: Vec<RelationColumn>,
}

impl Relation {
    /// The message tag.
    pub const TAG: u8 = b'R';

    /// The schema name (`pg_catalog` when the wire namespace is empty).
    pub fn schema(&self) -> &str {
        if self.namespace.is_empty() {
            "pg_catalog"
        } else {
            &self.namespace
        }
    }

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>, in_stream: bool) -> Result<Self, DecodeError> {
        r.set_context("Relation");
        let xid = read_xid(r, in_stream)?;
        let oid = r.u32()?;
        let namespace = r.string()?;
        let name = r.string()?;
        let ident = r.u8()?;
        let replica_identity = ReplicaIdentity::from_byte(ident).ok_or_else(|| {
            r.corrupt(Corruption::UnexpectedByte {
                byte: ident,
                expected: "a replica identity 'd', 'n', 'f' or 'i'",
            })
        })?;
        // flags(1) + name NUL(1) + type oid(4) + typmod(4)
        let n = r.count_i16(10)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            columns.push(RelationColumn {
                flags: r.u8()?,
                name: r.string()?,
                type_oid: r.u32()?,
                type_modifier: r.i32()?,
            });
        }
        Ok(Relation { xid, oid, namespace, name, replica_identity, columns })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        put_xid(buf, self.xid);
        buf.put_u32(self.oid);
        put_cstr(buf, self.namespace.as_bytes());
        put_cstr(buf, self.name.as_bytes());
        buf.put_u8(self.replica_identity.byte());
        buf.put_i16(i16_count(self.columns.len()));
        for c in &self.columns {
            buf.put_u8(c.flags);
            put_cstr(buf, c.name.as_bytes());
            buf.put_u32(c.type_oid);
            buf.put_i32(c.type_modifier);
        }
    }
}
