//! The streaming replication sub-protocol carried in CopyData once
//! `START_REPLICATION` has switched the connection to CopyBoth
//! (PostgreSQL docs, "Streaming Replication Protocol").
//!
//! Server to client: XLogData (`'w'`, carrying one pgoutput message) and
//! Primary keepalive (`'k'`). Client to server: Standby status update
//! (`'r'`). Each has `decode` and `encode`; timestamps are
//! [`PgTimestamp`](crate::PgTimestamp)s (µs since 2000-01-01).

mod keepalive;
mod status_update;
mod xlog_data;

use bytes::{Bytes, BytesMut};

pub use keepalive::PrimaryKeepalive;
pub use status_update::StandbyStatusUpdate;
pub use xlog_data::XLogData;

use crate::codec::{Corruption, DecodeError, Reader};

/// A CopyData payload sent by the walsender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerMessage {
    /// `'w'`: WAL data (for logical replication, one pgoutput message).
    XLogData(XLogData),
    /// `'k'`: keepalive, possibly asking for an immediate status update.
    Keepalive(PrimaryKeepalive),
}

impl ServerMessage {
    /// Decodes a CopyData payload from the server.
    pub fn decode(data: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data, "replication message");
        let tag = r.u8().map_err(|_| r.corrupt(Corruption::Empty))?;
        let msg = match tag {
            XLogData::TAG => ServerMessage::XLogData(XLogData::decode(&mut r)?),
            PrimaryKeepalive::TAG => ServerMessage::Keepalive(PrimaryKeepalive::decode(&mut r)?),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the payload (tag and body).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            ServerMessage::XLogData(m) => m.encode(buf),
            ServerMessage::Keepalive(m) => m.encode(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lsn, PgTimestamp};

    #[test]
    fn roundtrips_and_rejects_garbage() {
        let msgs = [
            ServerMessage::XLogData(XLogData {
                wal_start: Lsn(0x16_B374_D848),
                wal_end: Lsn(0x16_B374_D900),
                server_time: PgTimestamp(776_000_000_000_000),
                data: Bytes::from_static(b"B\x00"),
            }),
            ServerMessage::Keepalive(PrimaryKeepalive {
                wal_end: Lsn(42),
                server_time: PgTimestamp(-5),
                reply_requested: true,
            }),
        ];
        for m in msgs {
            let mut buf = BytesMut::new();
            m.encode(&mut buf);
            let bytes = buf.freeze();
            assert_eq!(ServerMessage::decode(&bytes), Ok(m.clone()));
            for cut in 0..bytes.len().min(18) {
                let short = bytes.slice(..cut);
                assert!(ServerMessage::decode(&short).is_err(), "cut at {cut}");
            }
        }
        assert_eq!(ServerMessage::decode(&Bytes::from_static(b"x")), Err(DecodeError::UnknownTag(b'x')));
        let mut long = BytesMut::new();
        PrimaryKeepalive { wal_end: Lsn(1), server_time: PgTimestamp(1), reply_requested: false }
            .encode(&mut long);
        long.extend_from_slice(b"zz");
        assert!(matches!(
            ServerMessage::decode(&long.freeze()),
            Err(DecodeError::Corrupt { reason: Corruption::TrailingBytes(2), .. })
        ));
    }
}
