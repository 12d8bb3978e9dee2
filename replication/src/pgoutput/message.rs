//! Message (`'M'`): a logical decoding message written with
//! `pg_logical_emit_message` (forwarded when the `messages` option is on).
//!
//! Layout: [Int32 xid inside a stream], Int8 flags (1 = transactional),
//! Int64 LSN of the message, String prefix, Int32 content length, content
//! bytes. Non-transactional messages arrive outside Begin/Commit, as soon as
//! they are decoded, and are never rolled back.

use bytes::{BufMut, Bytes, BytesMut};

use super::{put_xid, read_xid};
use crate::codec::{put_counted, put_cstr, DecodeError, Reader};
use crate::Lsn;

/// A logical decoding Message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The (sub)transaction id; present only inside a stream.
    pub xid: Option<u32>,
    /// Flags: bit 1 = transactional.
    pub flags: u8,
    /// LSN of the message.
    pub lsn: Lsn,
    /// The prefix given to `pg_logical_emit_message`.
    pub prefix: String,
    /// The content, uninterpreted.
    pub content: Bytes,
}

impl Message {
    /// The message tag.
    pub const TAG: u8 = b'M';

    /// True when the message was emitted as part of its transaction.
    pub fn transactional(&self) -> bool {
        self.flags & 1 != 0
    }

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>, in_stream: bool) -> Result<Self, DecodeError> {
        r.set_context("Message");
        let xid = read_xid(r, in_stream)?;
        let flags = r.u8()?;
        let lsn = r.lsn()?;
        let prefix = r.string()?;
        let len = r.len_i32()?;
        Ok(Message { xid, flags, lsn, prefix, content: r.bytes(len)? })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        put_xid(buf, self.xid);
        buf.put_u8(self.flags);
        buf.put_u64(self.lsn.0);
        put_cstr(buf, self.prefix.as_bytes());
        put_counted(buf, &self.content);
    }
}
