//! Entry points for the cargo-fuzz targets in `replication/fuzz` (and the
//! randomized unit tests): they drive the decoders and the assembler with
//! arbitrary bytes and check the properties that must hold for any input.
//!
//! These functions panic only when a property is violated — that is the
//! finding a fuzzer reports. The decoders themselves never panic.

use bytes::Bytes;

use crate::pgoutput::{Decoder, PgOutputMessage};
use crate::txn::TxnAssembler;
use crate::walsender::{ServerMessage, StandbyStatusUpdate};

/// Decodes `data` as one pgoutput message in every mode; whatever decodes
/// must re-encode to bytes that decode to the same message.
pub fn decode_message(data: &[u8]) {
    let b = Bytes::copy_from_slice(data);
    for (streaming, in_stream) in [(false, false), (true, false), (true, true)] {
        if let Ok(m) = PgOutputMessage::decode(&b, streaming, in_stream) {
            let again = PgOutputMessage::decode(&m.to_bytes(), streaming, in_stream);
            assert_eq!(again.as_ref(), Ok(&m), "re-encoded message decodes differently");
        }
    }
    if let Ok(m) = ServerMessage::decode(&b) {
        let mut buf = bytes::BytesMut::new();
        m.encode(&mut buf);
        assert_eq!(ServerMessage::decode(&buf.freeze()).as_ref(), Ok(&m));
    }
    let _ = StandbyStatusUpdate::decode(&b);
}

/// Splits `data` into messages (one length byte, then that many bytes) and
/// feeds them through a streaming [`Decoder`] and a [`TxnAssembler`], as a
/// session would. Any sequence must be handled without panicking.
pub fn decode_session(data: &[u8]) {
    let mut decoder = Decoder::new(data.first().is_some_and(|b| b & 1 == 1));
    let mut assembler = TxnAssembler::new();
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (msg, tail) = tail.split_at(n);
        rest = tail;
        if let Ok(m) = decoder.decode(&Bytes::copy_from_slice(msg)) {
            if assembler.push(m).is_err() {
                assembler.reset();
                decoder.reset();
            }
        }
    }
}
