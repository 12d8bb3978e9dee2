//! Update (`'U'`): a changed row.
//!
//! Layout: [Int32 xid inside a stream], Int32 relation OID, optionally `'K'`
//! (old key columns) or `'O'` (old full row) followed by TupleData — never
//! both — then `'N'` and the new TupleData. The new tuple may hold `'u'` for
//! TOASTed values the update did not touch.

use bytes::{BufMut, BytesMut};

use super::tuple_data::{expect_new_marker, OldKind, OldTuple};
use super::{put_xid, read_xid, TupleData};
use crate::codec::{Corruption, DecodeError, Reader};

/// An Update message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Update {
    /// The (sub)transaction id; present only inside a stream.
    pub xid: Option<u32>,
    /// Relation OID.
    pub rel_oid: u32,
    /// The old row: key columns (identity DEFAULT/INDEX, only when a key
    /// column changed) or the full row (identity FULL); absent otherwise.
    pub old: Option<OldTuple>,
    /// The new row.
    pub new: TupleData,
}

impl Update {
    /// The message tag.
    pub const TAG: u8 = b'U';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>, in_stream: bool) -> Result<Self, DecodeError> {
        r.set_context("Update");
        let xid = read_xid(r, in_stream)?;
        let rel_oid = r.u32()?;
        let marker = r.u8()?;
        let old = match marker {
            b'N' => None,
            m => match OldKind::from_marker(m) {
                Some(kind) => {
                    let old = OldTuple::decode_after_marker(kind, r)?;
                    expect_new_marker(r)?;
                    Some(old)
                }
                None => {
                    return Err(r.corrupt(Corruption::UnexpectedByte {
                        byte: m,
                        expected: "'K', 'O' or 'N'",
                    }))
                }
            },
        };
        Ok(Update { xid, rel_oid, old, new: TupleData::decode(r)? })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        put_xid(buf, self.xid);
        buf.put_u32(self.rel_oid);
        if let Some(old) = &self.old {
            old.encode(buf);
        }
        buf.put_u8(b'N');
        self.new.encode(buf);
    }
}
