//! Backend message framing: splits the byte stream into messages.
//!
//! `postgres-protocol` parses every backend message a walsender sends except
//! two it does not know: CopyBothResponse (`'W'`, the answer to
//! START_REPLICATION) and NegotiateProtocolVersion (`'v'`). Those are parsed
//! here by hand; everything else goes to `backend::Message::parse`.
//!
//! [`parse_frame`] is cancel-safe by construction: it consumes bytes from the
//! buffer only when a whole message is there.

use bytes::{Bytes, BytesMut};
use postgres_protocol::message::backend;

use super::error::ClientError;
use crate::codec::{DecodeError, Reader};

/// Largest backend message accepted (PostgreSQL's own limit on a message is
/// 1 GB; a bigger length means a corrupt or hostile stream).
pub const MAX_MESSAGE_LEN: usize = 1 << 30;

/// CopyBothResponse (`'W'`): the server entered CopyBoth mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyBothResponse {
    /// Overall format: 0 text, 1 binary (a walsender sends 0).
    pub format: u8,
    /// Per-column formats (a walsender sends none).
    pub column_formats: Vec<i16>,
}

/// One backend message.
pub enum BackendMessage {
    /// Any message `postgres-protocol` knows.
    Message(backend::Message),
    /// CopyBothResponse.
    CopyBoth(CopyBothResponse),
    /// NegotiateProtocolVersion: newest minor version supported and the
    /// protocol options it did not recognize.
    NegotiateProtocolVersion {
        /// Newest minor protocol version the server supports.
        minor: i32,
        /// Options it did not recognize.
        unrecognized: Vec<String>,
    },
}

impl std::fmt::Debug for BackendMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendMessage::Message(_) => f.write_str("Message(..)"),
            BackendMessage::CopyBoth(c) => f.debug_tuple("CopyBoth").field(c).finish(),
            BackendMessage::NegotiateProtocolVersion { minor, unrecognized } => f
                .debug_struct("NegotiateProtocolVersion")
                .field("minor", minor)
                .field("unrecognized", unrecognized)
                .finish(),
        }
    }
}

fn protocol(e: DecodeError) -> ClientError {
    ClientError::Protocol(e.to_string())
}

/// Takes one complete message off the front of `buf`, or returns `None` when
/// more bytes are needed (the buffer is left untouched then).
pub fn parse_frame(buf: &mut BytesMut) -> Result<Option<BackendMessage>, ClientError> {
    let (Some(&tag), Some(len)) = (buf.first(), buf.get(1..5)) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let len = usize::try_from(len).ok().filter(|&l| l >= 4).ok_or_else(|| {
        ClientError::Protocol(format!("invalid length {len} in message '{}'", tag.escape_ascii()))
    })?;
    if len > MAX_MESSAGE_LEN {
        return Err(ClientError::Protocol(format!("message length {len} exceeds the 1 GiB limit")));
    }
    let total = len + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    match tag {
        b'W' => {
            let body: Bytes = buf.split_to(total).freeze().slice(5..);
            let mut r = Reader::new(&body, "CopyBothResponse");
            let format = r.u8().map_err(protocol)?;
            let n = r.count_i16(2).map_err(protocol)?;
            let mut column_formats = Vec::with_capacity(n);
            for _ in 0..n {
                column_formats.push(r.i16().map_err(protocol)?);
            }
            r.finish().map_err(protocol)?;
            Ok(Some(BackendMessage::CopyBoth(CopyBothResponse { format, column_formats })))
        }
        b'v' => {
            let body: Bytes = buf.split_to(total).freeze().slice(5..);
            let mut r = Reader::new(&body, "NegotiateProtocolVersion");
            let minor = r.i32().map_err(protocol)?;
            let n = r.count_i32(1).map_err(protocol)?;
            let mut unrecognized = Vec::with_capacity(n);
            for _ in 0..n {
                unrecognized.push(String::from_utf8_lossy(&r.cstr().map_err(protocol)?).into_owned());
            }
            Ok(Some(BackendMessage::NegotiateProtocolVersion { minor, unrecognized }))
        }
        _ => match backend::Message::parse(buf) {
            Ok(Some(m)) => Ok(Some(BackendMessage::Message(m))),
            Ok(None) => Err(ClientError::Protocol("incomplete message after a complete frame".into())),
            Err(e) => Err(ClientError::Protocol(format!("malformed message '{}': {e}", tag.escape_ascii()))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_copy_both_and_copy_data() {
        let mut buf = BytesMut::from(&b"W\x00\x00\x00\x07\x00\x00\x00d\x00\x00\x00\x06hi"[..]);
        let m = parse_frame(&mut buf).expect("ok").expect("complete");
        assert!(matches!(m, BackendMessage::CopyBoth(CopyBothResponse { format: 0, ref column_formats }) if column_formats.is_empty()));
        // CopyData is incomplete until its last byte arrives.
        let mut partial = buf.clone();
        partial.truncate(partial.len() - 1);
        assert!(parse_frame(&mut partial).expect("ok").is_none());
        assert_eq!(partial.len(), 6);
        match parse_frame(&mut buf).expect("ok") {
            Some(BackendMessage::Message(backend::Message::CopyData(d))) => assert_eq!(d.data(), b"hi"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(buf.is_empty());
        assert!(parse_frame(&mut buf).expect("ok").is_none());
    }

    #[test]
    fn rejects_bad_lengths_and_tags() {
        assert!(parse_frame(&mut BytesMut::from(&b"d\x00\x00\x00\x03"[..])).is_err());
        assert!(parse_frame(&mut BytesMut::from(&b"d\xff\xff\xff\xff"[..])).is_err());
        assert!(parse_frame(&mut BytesMut::from(&b"d\x7f\xff\xff\xff"[..])).is_err());
        assert!(parse_frame(&mut BytesMut::from(&b"@\x00\x00\x00\x04"[..])).is_err());
        assert!(parse_frame(&mut BytesMut::from(&b"W\x00\x00\x00\x07\x00\xff\xff"[..])).is_err());
    }

    #[test]
    fn random_frames_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let tags = b"WvdDECZRSKTNIn1c@";
            let mut bytes = vec![tags[(seed >> 8) as usize % tags.len()]];
            let mut s = seed;
            for i in 0..len {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                bytes.push(if i < 3 { 0 } else { (s >> 33) as u8 });
            }
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = parse_frame(&mut buf);
        }
    }
}
