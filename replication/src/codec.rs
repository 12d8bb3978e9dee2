//! Bounds-checked reading and writing of PostgreSQL wire primitives.
//!
//! Owns [`Reader`], the only way this crate reads bytes that came from the
//! network, and [`DecodeError`], the error every decoder returns.
//!
//! Invariant: no method here panics on any input. Every read checks the bytes
//! remaining first; lengths and counts read from the wire are checked for sign
//! and against what is left before anything is allocated or sliced.
//! (`bytes::Buf::get_*` panics on short input, so it is never used on
//! received data.)

use bytes::{BufMut, Bytes, BytesMut};

use crate::Lsn;

/// Why a byte string is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message ends before a field it must contain.
    #[error("truncated {context}: needed {needed} more bytes, {remaining} left")]
    Truncated {
        /// The message or field being read.
        context: &'static str,
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The first byte names no message this decoder knows (in this mode).
    #[error("unknown message tag {0:#04x} ({p})", p = printable(*.0))]
    UnknownTag(u8),
    /// The bytes are present but do not make a valid message.
    #[error("corrupt {context}: {reason}")]
    Corrupt {
        /// The message or field being read.
        context: &'static str,
        /// What is wrong with it.
        reason: Corruption,
    },
}

/// What is wrong with a [`DecodeError::Corrupt`] message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// A length field is negative (only `-1` means NULL, and only where the
    /// format says so).
    #[error("negative length {0}")]
    NegativeLength(i64),
    /// A count field is negative.
    #[error("negative count {0}")]
    NegativeCount(i64),
    /// A string has no NUL terminator before the end of the message.
    #[error("string without NUL terminator")]
    UnterminatedString,
    /// A string (a name) is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A marker or kind byte has a value the format does not allow here.
    #[error("unexpected byte {byte:#04x} ({}), expected {expected}", printable(*byte))]
    UnexpectedByte {
        /// The byte found.
        byte: u8,
        /// What the format allows at this point.
        expected: &'static str,
    },
    /// Bytes are left over after the last field.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// The message has no bytes at all (not even a tag).
    #[error("empty message")]
    Empty,
    /// A stream-control message arrived where the stream state forbids it
    /// (Stream Start inside a stream, Stream Stop outside one).
    #[error("{0}")]
    StreamState(&'static str),
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        "non-printable".to_owned()
    }
}

/// A cursor over one received message that never reads past its end.
///
/// Values it hands out ([`Reader::bytes`], [`Reader::cstr`]) are zero-copy
/// slices of the underlying [`Bytes`].
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    context: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`; `context` names the message in errors.
    pub fn new(buf: &'a Bytes, context: &'static str) -> Self {
        Reader { buf, pos: 0, context }
    }

    /// Names the message being read, for errors from here on.
    pub fn set_context(&mut self, context: &'static str) {
        self.context = context;
    }

    /// The message or field errors are attributed to.
    pub fn context(&self) -> &'static str {
        self.context
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// A [`DecodeError::Corrupt`] for the current context.
    pub fn corrupt(&self, reason: Corruption) -> DecodeError {
        DecodeError::Corrupt { context: self.context, reason }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::Truncated { context: self.context, needed: n, remaining });
        }
        let buf: &'a Bytes = self.buf;
        let start = self.pos;
        self.pos += n;
        buf.get(start..start + n).ok_or(DecodeError::Truncated {
            context: self.context,
            needed: n,
            remaining,
        })
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian Int16.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian Int32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian Int32 as unsigned (OIDs, xids).
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian Int64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian Int64 as an [`Lsn`].
    pub fn lsn(&mut self) -> Result<Lsn, DecodeError> {
        Ok(Lsn(u64::from_be_bytes(self.array()?)))
    }

    /// Reads an Int32 length that must not be negative.
    pub fn len_i32(&mut self) -> Result<usize, DecodeError> {
        let n = self.i32()?;
        usize::try_from(n).map_err(|_| self.corrupt(Corruption::NegativeLength(n.into())))
    }

    /// Reads an Int16 count that must not be negative and, with at least
    /// `min_item_size` bytes per item, must fit in what is left.
    pub fn count_i16(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let n = self.i16()?;
        let n = usize::try_from(n).map_err(|_| self.corrupt(Corruption::NegativeCount(n.into())))?;
        self.check_count(n, min_item_size)
    }

    /// Like [`Reader::count_i16`] for an Int32 count.
    pub fn count_i32(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| self.corrupt(Corruption::NegativeCount(n.into())))?;
        self.check_count(n, min_item_size)
    }

    fn check_count(&self, n: usize, min_item_size: usize) -> Result<usize, DecodeError> {
        let needed = n.saturating_mul(min_item_size);
        let remaining = self.remaining();
        if needed > remaining {
            return Err(DecodeError::Truncated { context: self.context, needed, remaining });
        }
        Ok(n)
    }

    /// Reads `n` bytes as a zero-copy slice.
    pub fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..start + n))
    }

    /// Reads everything that is left.
    pub fn rest(&mut self) -> Bytes {
        let start = self.pos.min(self.buf.len());
        self.pos = self.buf.len();
        self.buf.slice(start..)
    }

    /// Reads a NUL-terminated string's bytes (without the NUL).
    pub fn cstr(&mut self) -> Result<Bytes, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(self.corrupt(Corruption::UnterminatedString));
        };
        let s = self.bytes(nul)?;
        self.take(1)?;
        Ok(s)
    }

    /// Reads a NUL-terminated UTF-8 string (names: relations, columns, prefixes).
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.cstr()?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.corrupt(Corruption::InvalidUtf8))
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.corrupt(Corruption::TrailingBytes(n))),
        }
    }
}

/// Writes a NUL-terminated string.
///
/// Encoders are for tests and synthetic streams; a string containing NUL
/// would not decode back to itself, so such strings are cut at the NUL.
pub fn put_cstr(buf: &mut BytesMut, s: &[u8]) {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    buf.put_slice(s.get(..end).unwrap_or_default());
    buf.put_u8(0);
}

/// Writes an Int32 length followed by the bytes.
///
/// Values longer than `i32::MAX` cannot be represented on the wire; they are
/// never produced by the decoder, so the length saturates.
pub fn put_counted(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
    buf.put_slice(b);
}

/// Converts a count to the Int16 the wire uses, saturating.
pub fn i16_count(n: usize) -> i16 {
    i16::try_from(n).unwrap_or(i16::MAX)
}

/// Converts a count to the Int32 the wire uses, saturating.
pub fn i32_count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_are_truncated_errors() {
        let b = Bytes::from_static(&[1, 2, 3]);
        let mut r = Reader::new(&b, "test");
        assert!(matches!(r.i32(), Err(DecodeError::Truncated { needed: 4, remaining: 3, .. })));
        assert_eq!(r.i16(), Ok(0x0102));
        assert!(r.i16().is_err());
        assert_eq!(r.u8(), Ok(3));
        assert!(r.u8().is_err());
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn strings_need_a_terminator_and_utf8() {
        let b = Bytes::from_static(b"abc\0def");
        let mut r = Reader::new(&b, "test");
        assert_eq!(r.string().as_deref(), Ok("abc"));
        assert!(matches!(
            r.string(),
            Err(DecodeError::Corrupt { reason: Corruption::UnterminatedString, .. })
        ));
        let b = Bytes::from_static(b"\xff\0");
        assert!(matches!(
            Reader::new(&b, "t").string(),
            Err(DecodeError::Corrupt { reason: Corruption::InvalidUtf8, .. })
        ));
    }

    #[test]
    fn lengths_and_counts_are_checked() {
        let b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(matches!(
            Reader::new(&b, "t").len_i32(),
            Err(DecodeError::Corrupt { reason: Corruption::NegativeLength(-2), .. })
        ));
        let b = Bytes::from_static(&[0x7f, 0xff, 0, 0]);
        assert!(matches!(Reader::new(&b, "t").count_i16(1), Err(DecodeError::Truncated { .. })));
        let b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(Reader::new(&b, "t").count_i32(4), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn cstr_writer_cuts_at_nul() {
        let mut buf = BytesMut::new();
        put_cstr(&mut buf, b"ab\0cd");
        assert_eq!(&buf[..], b"ab\0");
    }
}
