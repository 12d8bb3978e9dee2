//! Primary keepalive (`'k'`): the walsender's heartbeat.
//!
//! Layout: Int64 current end of WAL on the server, Int64 server clock, Byte1
//! reply-requested (1 = answer with a status update now, or be timed out).

use bytes::{BufMut, BytesMut};

use crate::codec::{DecodeError, Reader};
use crate::{Lsn, PgTimestamp};

/// A Primary keepalive message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrimaryKeepalive {
    /// The walsender's current WAL end (for logical replication: what it has
    /// sent or skipped so far).
    pub wal_end: Lsn,
    /// Server clock at transmission.
    pub server_time: PgTimestamp,
    /// The server asks for an immediate reply.
    pub reply_requested: bool,
}

impl PrimaryKeepalive {
    /// The message tag.
    pub const TAG: u8 = b'k';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Primary keepalive");
        Ok(PrimaryKeepalive {
            wal_end: r.lsn()?,
            server_time: PgTimestamp(r.i64()?),
            reply_requested: r.u8()? != 0,
        })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u64(self.wal_end.0);
        buf.put_i64(self.server_time.0);
        buf.put_u8(u8::from(self.reply_requested));
    }
}
