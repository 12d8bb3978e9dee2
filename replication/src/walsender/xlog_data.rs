//! XLogData (`'w'`): a chunk of WAL — in logical replication, exactly one
//! pgoutput message.
//!
//! Layout: Int64 start of the data in WAL, Int64 current end of WAL on the
//! server, Int64 server clock, then the payload. For logical replication
//! start and end both carry the LSN of the record being emitted; only the
//! commit LSNs inside the payload increase monotonically.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{DecodeError, Reader};
use crate::{Lsn, PgTimestamp};

/// An XLogData message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XLogData {
    /// Starting point of the data in WAL.
    pub wal_start: Lsn,
    /// Current end of WAL on the server.
    pub wal_end: Lsn,
    /// Server clock at transmission.
    pub server_time: PgTimestamp,
    /// The payload (a pgoutput message).
    pub data: Bytes,
}

impl XLogData {
    /// The message tag.
    pub const TAG: u8 = b'w';

    /// Decodes the body (after the tag); the payload is a zero-copy slice.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("XLogData");
        Ok(XLogData {
            wal_start: r.lsn()?,
            wal_end: r.lsn()?,
            server_time: PgTimestamp(r.i64()?),
            data: r.rest(),
        })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u64(self.wal_start.0);
        buf.put_u64(self.wal_end.0);
        buf.put_i64(self.server_time.0);
        buf.put_slice(&self.data);
    }
}
