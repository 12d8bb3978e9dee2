//! Standby status update (`'r'`): the client's feedback, sent as CopyData.
//!
//! Layout: Int64 write, Int64 flush, Int64 apply (each "the last WAL byte +
//! 1" received, durably stored, applied), Int64 client clock (µs since
//! 2000-01-01), Byte1 reply-requested. For a logical slot the walsender
//! advances `confirmed_flush_lsn` from **flush** only; what flush may say is
//! decided by [`crate::ack`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Corruption, DecodeError, Reader};
use crate::{Lsn, PgTimestamp};

/// A Standby status update.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StandbyStatusUpdate {
    /// Last WAL byte + 1 received.
    pub write: Lsn,
    /// Last WAL byte + 1 durably stored (advances the slot).
    pub flush: Lsn,
    /// Last WAL byte + 1 applied.
    pub apply: Lsn,
    /// Client clock at transmission.
    pub client_time: PgTimestamp,
    /// Ask the server to reply immediately (with a keepalive).
    pub reply_requested: bool,
}

impl StandbyStatusUpdate {
    /// The message tag.
    pub const TAG: u8 = b'r';

    /// Decodes a complete payload (tag included).
    pub fn decode(data: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data, "Standby status update");
        match r.u8()? {
            Self::TAG => {}
            other => return Err(DecodeError::UnknownTag(other)),
        }
        let m = StandbyStatusUpdate {
            write: r.lsn()?,
            flush: r.lsn()?,
            apply: r.lsn()?,
            client_time: PgTimestamp(r.i64()?),
            reply_requested: r.u8()? != 0,
        };
        if r.remaining() != 0 {
            return Err(r.corrupt(Corruption::TrailingBytes(r.remaining())));
        }
        Ok(m)
    }

    /// Encodes tag and body.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(Self::TAG);
        buf.put_u64(self.write.0);
        buf.put_u64(self.flush.0);
        buf.put_u64(self.apply.0);
        buf.put_i64(self.client_time.0);
        buf.put_u8(u8::from(self.reply_requested));
    }

    /// Encodes into a fresh buffer (the CopyData payload).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(34);
        self.encode(&mut buf);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_34_bytes_and_roundtrips() {
        let m = StandbyStatusUpdate {
            write: Lsn(3),
            flush: Lsn(2),
            apply: Lsn(1),
            client_time: PgTimestamp(7),
            reply_requested: true,
        };
        let b = m.to_bytes();
        assert_eq!(b.len(), 34);
        assert_eq!(&b[..9], b"r\0\0\0\0\0\0\0\x03");
        assert_eq!(StandbyStatusUpdate::decode(&b), Ok(m));
        assert!(StandbyStatusUpdate::decode(&b.slice(..33)).is_err());
    }
}
