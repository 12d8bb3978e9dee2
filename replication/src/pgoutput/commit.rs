//! Commit (`'C'`): the end of a (non-streamed) transaction.
//!
//! Layout: Int8 flags (unused, 0), Int64 commit LSN, Int64 end LSN (the end of
//! the commit record — the position to acknowledge once the transaction is
//! durable), Int64 commit timestamp.

use bytes::{BufMut, BytesMut};

use crate::codec::{DecodeError, Reader};
use crate::{Lsn, PgTimestamp};

/// A Commit message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Commit {
    /// Flags; currently unused by PostgreSQL (0).
    pub flags: u8,
    /// LSN of the commit record.
    pub commit_lsn: Lsn,
    /// End LSN of the transaction (end of the commit record).
    pub end_lsn: Lsn,
    /// Commit time.
    pub commit_time: PgTimestamp,
}

impl Commit {
    /// The message tag.
    pub const TAG: u8 = b'C';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Commit");
        Ok(Commit {
            flags: r.u8()?,
            commit_lsn: r.lsn()?,
            end_lsn: r.lsn()?,
            commit_time: PgTimestamp(r.i64()?),
        })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u8(self.flags);
        buf.put_u64(self.commit_lsn.0);
        buf.put_u64(self.end_lsn.0);
        buf.put_i64(self.commit_time.0);
    }
}
