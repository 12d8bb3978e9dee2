//! Begin (`'B'`): the start of a (non-streamed) transaction.
//!
//! Layout: Int64 final LSN of the transaction (its commit record), Int64
//! commit timestamp, Int32 xid.

use bytes::{BufMut, BytesMut};

use crate::codec::{DecodeError, Reader};
use crate::{Lsn, PgTimestamp};

/// A Begin message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Begin {
    /// The LSN of the transaction's commit record.
    pub final_lsn: Lsn,
    /// Commit time.
    pub commit_time: PgTimestamp,
    /// Transaction id.
    pub xid: u32,
}

impl Begin {
    /// The message tag.
    pub const TAG: u8 = b'B';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Begin");
        Ok(Begin { final_lsn: r.lsn()?, commit_time: PgTimestamp(r.i64()?), xid: r.u32()? })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u64(self.final_lsn.0);
        buf.put_i64(self.commit_time.0);
        buf.put_u32(self.xid);
    }
}
