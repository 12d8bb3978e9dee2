//! Insert (`'I'`): a new row.
//!
//! Layout: [Int32 xid inside a stream], Int32 relation OID, `'N'`, TupleData.
//! The new tuple of an insert never carries `'u'`: TOASTed values are sent
//! inline.

use bytes::{BufMut, BytesMut};

use super::tuple_data::expect_new_marker;
use super::{put_xid, read_xid, TupleData};
use crate::codec::{DecodeError, Reader};

/// An Insert message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Insert {
    /// The (sub)transaction id; present only inside a stream.
    pub xid: Option<u32>,
    /// Relation OID (a Relation message for it came earlier).
    pub rel_oid: u32,
    /// The new row.
    pub new: TupleData,
}

impl Insert {
    /// The message tag.
    pub const TAG: u8 = b'I';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>, in_stream: bool) -> Result<Self, DecodeError> {
        r.set_context("Insert");
        let xid = read_xid(r, in_stream)?;
        let rel_oid = r.u32()?;
        expect_new_marker(r)?;
        Ok(Insert { xid, rel_oid, new: TupleData::decode(r)? })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        put_xid(buf, self.xid);
        buf.put_u32(self.rel_oid);
        buf.put_u8(b'N');
        self.new.encode(buf);
    }
}
