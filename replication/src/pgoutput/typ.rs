//! Type (`'Y'`): the name of a non-built-in data type, sent before a
//! Relation that has a column of that type.
//!
//! Layout: [Int32 xid inside a stream], Int32 type OID, String namespace
//! (`""` = `pg_catalog`), String type name. (For a domain, PostgreSQL 15
//! sends the domain's OID with its base type's name.)

use bytes::{BufMut, BytesMut};

use super::{put_xid, read_xid};
use crate::codec::{put_cstr, DecodeError, Reader};

/// A Type message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Type {
    /// The (sub)transaction id; present only inside a stream.
    pub xid: Option<u32>,
    /// Type OID.
    pub oid: u32,
    /// Namespace as sent; empty means `pg_catalog`.
    pub namespace: String,
    /// Type name.
    pub name: String,
}

impl Type {
    /// The message tag.
    pub const TAG: u8 = b'Y';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>, in_stream: bool) -> Result<Self, DecodeError> {
        r.set_context("Type");
        Ok(Type { xid: read_xid(r, in_stream)?, oid: r.u32()?, namespace: r.string()?, name: r.string()? })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        put_xid(buf, self.xid);
        buf.put_u32(self.oid);
        put_cstr(buf, self.namespace.as_bytes());
        put_cstr(buf, self.name.as_bytes());
    }
}
