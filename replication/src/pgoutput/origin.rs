//! Origin (`'O'` at top level): the replication origin a transaction came
//! from, sent after Begin (or the first Stream Start) and before any change.
//!
//! Layout: Int64 commit LSN on the origin server, String origin name.
//! (Inside Update/Delete, `'O'` instead marks a full old tuple; the decoder
//! only reads it as Origin at top level.)

use bytes::{BufMut, BytesMut};

use crate::codec::{put_cstr, DecodeError, Reader};
use crate::Lsn;

/// An Origin message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The commit LSN of the transaction on the origin server.
    pub commit_lsn: Lsn,
    /// The origin's name.
    pub name: String,
}

impl Origin {
    /// The message tag.
    pub const TAG: u8 = b'O';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.set_context("Origin");
        Ok(Origin { commit_lsn: r.lsn()?, name: r.string()? })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u64(self.commit_lsn.0);
        put_cstr(buf, self.name.as_bytes());
    }
}
