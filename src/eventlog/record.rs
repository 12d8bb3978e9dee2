//! On-disk record framing: `[len: u32 LE][crc32c of payload: u32 LE][payload]`.
//!
//! A record is one committed transaction or one part of it (see
//! [`super::segment`] for the payload). The checksum makes a
//! torn or corrupted tail detectable: scanning stops at the first record
//! whose length or checksum does not hold.

/// Bytes of the header before each payload.
pub const HEADER: usize = 8;
/// Largest payload accepted (a guard against reading garbage as a length).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Frames a payload.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The length and checksum in a record's header.
pub fn parse_header(header: &[u8; HEADER]) -> (usize, u32) {
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    (
        u32::from_le_bytes([l0, l1, l2, l3]) as usize,
        u32::from_le_bytes([c0, c1, c2, c3]),
    )
}

/// What [`decode`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, valid record: its payload and total framed length.
    Record(&'a [u8], usize),
    /// The buffer ends inside a record.
    Incomplete,
    /// The bytes are not a valid record (bad length or checksum).
    Invalid,
}

/// Reads one record from the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some(header) = buf
        .get(..HEADER)
        .and_then(|h| <&[u8; HEADER]>::try_from(h).ok())
    else {
        return Decoded::Incomplete;
    };
    let (len, crc) = parse_header(header);
    if len == 0 || len > MAX_PAYLOAD {
        return Decoded::Invalid;
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Decoded::Incomplete;
    };
    if crc32c(payload) != crc {
        return Decoded::Invalid;
    }
    Decoded::Record(payload, HEADER + len)
}

fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tails() {
        let mut buf = Vec::new();
        encode(b"hello", &mut buf);
        encode(b"world!", &mut buf);
        let Decoded::Record(p, n) = decode(&buf) else {
            panic!("first record")
        };
        assert_eq!(p, b"hello");
        let Decoded::Record(p2, _) = decode(&buf[n..]) else {
            panic!("second record")
        };
        assert_eq!(p2, b"world!");
        for cut in 0..buf.len() - n {
            assert_eq!(
                decode(&buf[n..n + cut]),
                Decoded::Incomplete,
                "cut at {cut}"
            );
        }
        let mut bad = buf.clone();
        bad[HEADER + 1] ^= 0xff;
        assert_eq!(decode(&bad), Decoded::Invalid);
        assert_eq!(decode(&[0u8; 16]), Decoded::Invalid);
    }
}
