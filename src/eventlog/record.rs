//! On-disk record framing: `[len: u32 LE][crc32c of payload: u32 LE][payload]`.
//!
//! A record is one committed transaction, JSON-encoded. The checksum makes a
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
    let Some(header) = buf.get(..HEADER) else { return Decoded::Incomplete };
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[..4]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&header[4..]);
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return Decoded::Invalid;
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else { return Decoded::Incomplete };
    if crc32c(payload) != u32::from_le_bytes(crc) {
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
        let Decoded::Record(p, n) = decode(&buf) else { panic!("first record") };
        assert_eq!(p, b"hello");
        let Decoded::Record(p2, _) = decode(&buf[n..]) else { panic!("second record") };
        assert_eq!(p2, b"world!");
        for cut in 0..buf.len() - n {
            assert_eq!(decode(&buf[n..n + cut]), Decoded::Incomplete, "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[HEADER + 1] ^= 0xff;
        assert_eq!(decode(&bad), Decoded::Invalid);
        assert_eq!(decode(&[0u8; 16]), Decoded::Invalid);
    }
}
