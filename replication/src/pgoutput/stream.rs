//! The stream-control messages of `streaming on` (protocol version 2+):
//! Stream Start (`'S'`), Stream Stop (`'E'`), Stream Commit (`'c'`) and
//! Stream Abort (`'A'`).
//!
//! Between Stream Start and Stream Stop, data messages (Relation, Type,
//! Insert, Update, Delete, Truncate, Message) carry an Int32 xid first: the
//! xid of the *subtransaction* that made the change. Stream Start names the
//! top-level xid the chunk belongs to.

use bytes::{BufMut, BytesMut};

use crate::codec::{DecodeError, Reader};
use crate::{Lsn, PgTimestamp};

/// Stream Start: the next messages, up to Stream Stop, belong to `xid`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamStart {
    /// Top-level transaction id.
    pub xid: u32,
    /// True for the first chunk of this transaction.
    pub first_segment: bool,
}

impl StreamStart {
    /// The message tag.
    pub const TAG: u8 = b'S';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Stream Start");
        Ok(StreamStart { xid: r.u32()?, first_segment: r.u8()? == 1 })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u32(self.xid);
        buf.put_u8(u8::from(self.first_segment));
    }
}

/// Stream Stop: the end of a chunk. No body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamStop;

impl StreamStop {
    /// The message tag.
    pub const TAG: u8 = b'E';

    /// Decodes the (empty) body.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Stream Stop");
        Ok(StreamStop)
    }

    /// Encodes the tag.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
    }
}

/// Stream Commit: the streamed transaction `xid` committed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamCommit {
    /// Top-level transaction id.
    pub xid: u32,
    /// Flags; currently unused (0).
    pub flags: u8,
    /// LSN of the commit record.
    pub commit_lsn: Lsn,
    /// End LSN of the transaction.
    pub end_lsn: Lsn,
    /// Commit time.
    pub commit_time: PgTimestamp,
}

impl StreamCommit {
    /// The message tag.
    pub const TAG: u8 = b'c';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Stream Commit");
        Ok(StreamCommit {
            xid: r.u32()?,
            flags: r.u8()?,
            commit_lsn: r.lsn()?,
            end_lsn: r.lsn()?,
            commit_time: PgTimestamp(r.i64()?),
        })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u32(self.xid);
        buf.put_u8(self.flags);
        buf.put_u64(self.commit_lsn.0);
        buf.put_u64(self.end_lsn.0);
        buf.put_i64(self.commit_time.0);
    }
}

/// Stream Abort: the (sub)transaction `subxid` of `xid` rolled back. When
/// `subxid == xid` the whole streamed transaction is gone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamAbort {
    /// Top-level transaction id.
    pub xid: u32,
    /// The aborted subtransaction (equal to `xid` for the whole transaction).
    pub subxid: u32,
    /// Abort LSN and time, sent only with `streaming parallel` (protocol 4,
    /// PostgreSQL 16+); decoded when present.
    pub abort: Option<(Lsn, PgTimestamp)>,
}

impl StreamAbort {
    /// The message tag.
    pub const TAG: u8 = b'A';

    /// True when the whole top-level transaction is aborted.
    pub fn is_whole_transaction(&self) -> bool {
        self.xid == self.subxid
    }

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Stream Abort");
        let xid = r.u32()?;
        let subxid = r.u32()?;
        let abort = if r.remaining() > 0 { Some((r.lsn()?, PgTimestamp(r.i64()?))) } else { None };
        Ok(StreamAbort { xid, subxid, abort })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u32(self.xid);
        buf.put_u32(self.subxid);
        if let Some((lsn, ts)) = self.abort {
            buf.put_u64(lsn.0);
            buf.put_i64(ts.0);
        }
    }
}
