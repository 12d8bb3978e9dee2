//! Truncate (`'T'`): one TRUNCATE statement over one or more relations.
//!
//! Layout: [Int32 xid inside a stream], Int32 relation count, Int8 options
//! (bit 1 = CASCADE, bit 2 = RESTART IDENTITY), Int32 relation OID per
//! relation. Relation messages for them are sent first.

use bytes::{BufMut, BytesMut};

use super::{put_xid, read_xid};
use crate::codec::{i32_count, DecodeError, Reader};

/// The option bits of a [`Truncate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TruncateOptions(pub u8);

impl TruncateOptions {
    /// Bit for `CASCADE`.
    pub const CASCADE: u8 = 1;
    /// Bit for `RESTART IDENTITY`.
    pub const RESTART_IDENTITY: u8 = 2;

    /// True for `TRUNCATE ... CASCADE`.
    pub fn cascade(self) -> bool {
        self.0 & Self::CASCADE != 0
    }

    /// True for `TRUNCATE ... RESTART IDENTITY`.
    pub fn restart_identity(self) -> bool {
        self.0 & Self::RESTART_IDENTITY != 0
    }
}

/// A Truncate message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Truncate {
    /// The (sub)transaction id; present only inside a stream.
    pub xid: Option<u32>,
    /// Option bits.
    pub options: TruncateOptions,
    /// OIDs of the truncated published relations.
    pub rel_oids: Vec<u32>,
}

impl Truncate {
    /// The message tag.
    pub const TAG: u8 = b'T';

    /// Decodes the body (after the tag).
    pub fn decode(r: &mut Reader<'_>, in_stream: bool) -> Result<Self, DecodeError> {
        r.set_context("Truncate");
        let xid = read_xid(r, in_stream)?;
        let n = r.i32()?;
        let options = TruncateOptions(r.u8()?);
        let n = usize::try_from(n)
            .map_err(|_| r.corrupt(crate::codec::Corruption::NegativeCount(n.into())))?;
        if n.saturating_mul(4) > r.remaining() {
            return Err(DecodeError::Truncated {
                context: r.context(),
                needed: n.saturating_mul(4),
                remaining: r.remaining(),
            });
        }
        let mut rel_oids = Vec::with_capacity(n);
        for _ in 0..n {
            rel_oids.push(r.u32()?);
        }
        Ok(Truncate { xid, options, rel_oids })
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        put_xid(buf, self.xid);
        buf.put_i32(i32_count(self.rel_oids.len()));
        buf.put_u8(self.options.0);
        for oid in &self.rel_oids {
            buf.put_u32(*oid);
        }
    }
}
