//! TupleData: the column values of a row image inside Insert, Update and
//! Delete, and the old-row marker (`'K'` key / `'O'` full) of Update/Delete.
//!
//! Layout: Int16 column count, then per column one kind byte: `'n'` NULL,
//! `'u'` unchanged TOASTed value (not sent), `'t'` Int32 length + text output,
//! `'b'` Int32 length + binary (`typsend`) output. One tuple can mix `'t'` and
//! `'b'` (types without a send function fall back to text).

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{i16_count, put_counted, Corruption, DecodeError, Reader};

/// One column of a row image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TupleValue {
    /// `'n'`: SQL NULL — or, in a `'K'` old tuple, a non-key column that was
    /// not sent.
    Null,
    /// `'u'`: an on-disk TOASTed value the UPDATE did not change; its value is
    /// not in the stream. Never the same as NULL.
    Unchanged,
    /// `'t'`: the type's text output.
    Text(Bytes),
    /// `'b'`: the type's binary (`typsend`) output.
    Binary(Bytes),
}

impl TupleValue {
    /// The text value as UTF-8, if this is a `'t'` value that is valid UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            TupleValue::Text(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The raw bytes of a `'t'` or `'b'` value.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            TupleValue::Text(b) | TupleValue::Binary(b) => Some(b),
            TupleValue::Null | TupleValue::Unchanged => None,
        }
    }
}

/// A row image: one [`TupleValue`] per column of the relation, in the
/// relation's column order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TupleData {
    /// The columns, in the order of the Relation message's columns.
    pub columns: Vec<TupleValue>,
}

impl TupleData {
    /// Decodes a TupleData (starting at its Int16 column count).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // Every column needs at least its kind byte.
        let n = r.count_i16(1)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = r.u8()?;
            let value = match kind {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::Unchanged,
                b't' => {
                    let len = r.len_i32()?;
                    TupleValue::Text(r.bytes(len)?)
                }
                b'b' => {
                    let len = r.len_i32()?;
                    TupleValue::Binary(r.bytes(len)?)
                }
                byte => {
                    return Err(r.corrupt(Corruption::UnexpectedByte {
                        byte,
                        expected: "a column kind 'n', 'u', 't' or 'b'",
                    }))
                }
            };
            columns.push(value);
        }
        Ok(TupleData { columns })
    }

    /// Encodes this TupleData (its Int16 count and columns).
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_i16(i16_count(self.columns.len()));
        for c in &self.columns {
            match c {
                TupleValue::Null => buf.put_u8(b'n'),
                TupleValue::Unchanged => buf.put_u8(b'u'),
                TupleValue::Text(b) => {
                    buf.put_u8(b't');
                    put_counted(buf, b);
                }
                TupleValue::Binary(b) => {
                    buf.put_u8(b'b');
                    put_counted(buf, b);
                }
            }
        }
    }
}

/// Which old-row image an Update or Delete carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OldKind {
    /// `'K'`: the replica identity key columns; other columns are sent as
    /// `'n'` and are not real NULLs (use the Relation's key flags).
    Key,
    /// `'O'`: the whole old row (REPLICA IDENTITY FULL), TOAST inlined.
    Full,
}

impl OldKind {
    /// The marker byte on the wire.
    pub fn marker(self) -> u8 {
        match self {
            OldKind::Key => b'K',
            OldKind::Full => b'O',
        }
    }

    /// The kind for a marker byte, if it is `'K'` or `'O'`.
    pub fn from_marker(b: u8) -> Option<Self> {
        match b {
            b'K' => Some(OldKind::Key),
            b'O' => Some(OldKind::Full),
            _ => None,
        }
    }
}

/// The old-row image of an Update or Delete.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OldTuple {
    /// Key columns only, or the full row.
    pub kind: OldKind,
    /// The values.
    pub tuple: TupleData,
}

impl OldTuple {
    /// Decodes the TupleData that follows an already-read `'K'`/`'O'` marker.
    pub fn decode_after_marker(kind: OldKind, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OldTuple { kind, tuple: TupleData::decode(r)? })
    }

    /// Encodes the marker and the TupleData.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.kind.marker());
        self.tuple.encode(buf);
    }
}

/// Reads the `'N'` marker that precedes a new tuple.
pub(crate) fn expect_new_marker(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.u8()? {
        b'N' => Ok(()),
        byte => Err(r.corrupt(Corruption::UnexpectedByte { byte, expected: "'N' (new tuple)" })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &'static [u8]) -> Result<TupleData, DecodeError> {
        let b = Bytes::from_static(bytes);
        let mut r = Reader::new(&b, "TupleData");
        let t = TupleData::decode(&mut r)?;
        r.finish()?;
        Ok(t)
    }

    #[test]
    fn decodes_every_kind() {
        let t = decode(b"\x00\x04nu\x74\x00\x00\x00\x02hib\x00\x00\x00\x01\xff").expect("valid");
        assert_eq!(
            t.columns,
            vec![
                TupleValue::Null,
                TupleValue::Unchanged,
                TupleValue::Text(Bytes::from_static(b"hi")),
                TupleValue::Binary(Bytes::from_static(b"\xff")),
            ]
        );
        assert_eq!(t.columns[2].as_text(), Some("hi"));
        let mut buf = BytesMut::new();
        t.encode(&mut buf);
        assert_eq!(&buf[..], b"\x00\x04nu\x74\x00\x00\x00\x02hib\x00\x00\x00\x01\xff");
    }

    #[test]
    fn rejects_malformed_tuples() {
        assert!(matches!(decode(b"\xff\xff"), Err(DecodeError::Corrupt { .. })));
        assert!(matches!(decode(b"\x00\x05nn"), Err(DecodeError::Truncated { .. })));
        assert!(matches!(decode(b"\x00\x01t\xff\xff\xff\xff"), Err(DecodeError::Corrupt { .. })));
        assert!(matches!(decode(b"\x00\x01t\x00\x00\x00\x09ab"), Err(DecodeError::Truncated { .. })));
        assert!(matches!(
            decode(b"\x00\x01x"),
            Err(DecodeError::Corrupt { reason: Corruption::UnexpectedByte { byte: b'x', .. }, .. })
        ));
        assert!(matches!(decode(b"\x00\x01nn"), Err(DecodeError::Corrupt { .. })));
    }
}
