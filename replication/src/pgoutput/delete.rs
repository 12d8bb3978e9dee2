//! Delete (`'D'`): a removed row.
//!
//! Layout: [Int32 xid inside a stream], Int32 relation OID, `'K'` (key
//! columns; other columns `'n'`) or `'O'` (full old row), TupleData.

use bytes::{BufMut, BytesMut};

use super::tuple_data::{OldKind, OldTuple};
use super::{put_xid, read_xid};
use crate::codec::{Corruption, DecodeError, Reader};

/// A Delete message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delete {
    /// The (sub)transaction id; present only inside a stream.
    pub xid: Option<u32>,
    /// Relation OID.
    pub rel_oid: u32,
    /// The old row: key columns or the full row.
    pub old: OldTuple,
}

impl Delete {
    /// The message tag.
    pub const TAG: u8 = b'D';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>, in_stream: bool) -> Result<Self, DecodeError> {
        r.set_context("Delete");
        let xid = read_xid(r, in_stream)?;
        let rel_oid = r.u32()?;
        let marker = r.u8()?;
        let kind = OldKind::from_marker(marker).ok_or_else(|| {
            r.corrupt(Corruption::UnexpectedByte { byte: marker, expected: "'K' or 'O'" })
        })?;
        Ok(Delete { xid, rel_oid, old: OldTuple::decode_after_marker(kind, r)? })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        put_xid(buf, self.xid);
        buf.put_u32(self.rel_oid);
        self.old.encode(buf);
    }
}
