//! Roundtrip tests over synthetic messages of every kind, and randomized
//! "never panics" tests: thousands of random byte strings and mutated
//! fixtures (fixed seed, so failures reproduce).

use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::{Corruption, DecodeError};
use crate::test_fixtures::{load, ALL};
use crate::txn::TxnAssembler;
use crate::{Lsn, PgTimestamp};

fn tuple(vals: &[TupleValue]) -> TupleData {
    TupleData { columns: vals.to_vec() }
}

/// One message of every kind, with and without the in-stream xid.
fn samples(in_stream: bool) -> Vec<PgOutputMessage> {
    let xid = in_stream.then_some(77);
    let t = tuple(&[
        TupleValue::Null,
        TupleValue::Unchanged,
        TupleValue::Text(Bytes::from_static(b"hello")),
        TupleValue::Binary(Bytes::from_static(b"\x00\x01")),
        TupleValue::Text(Bytes::new()),
    ]);
    let mut v = vec![
        PgOutputMessage::Relation(Relation {
            xid,
            oid: 16384,
            namespace: String::new(),
            name: "t".into(),
            replica_identity: ReplicaIdentity::Index,
            columns: vec![
                RelationColumn { flags: 1, name: "id".into(), type_oid: 23, type_modifier: -1 },
                RelationColumn { flags: 0, name: "ü".into(), type_oid: 1043, type_modifier: 14 },
            ],
        }),
        PgOutputMessage::Type(Type { xid, oid: 99999, namespace: "s".into(), name: "e".into() }),
        PgOutputMessage::Insert(Insert { xid, rel_oid: 1, new: t.clone() }),
        PgOutputMessage::Update(Update { xid, rel_oid: 1, old: None, new: t.clone() }),
        PgOutputMessage::Update(Update {
            xid,
            rel_oid: 1,
            old: Some(OldTuple { kind: OldKind::Key, tuple: t.clone() }),
            new: t.clone(),
        }),
        PgOutputMessage::Update(Update {
            xid,
            rel_oid: 1,
            old: Some(OldTuple { kind: OldKind::Full, tuple: tuple(&[]) }),
            new: t.clone(),
        }),
        PgOutputMessage::Delete(Delete { xid, rel_oid: 2, old: OldTuple { kind: OldKind::Key, tuple: t.clone() } }),
        PgOutputMessage::Delete(Delete { xid, rel_oid: 2, old: OldTuple { kind: OldKind::Full, tuple: t } }),
        PgOutputMessage::Truncate(Truncate { xid, options: TruncateOptions(3), rel_oids: vec![1, 2, 3] }),
        PgOutputMessage::Truncate(Truncate { xid, options: TruncateOptions(0), rel_oids: vec![] }),
        PgOutputMessage::Message(Message {
            xid,
            flags: 1,
            lsn: Lsn(5),
            prefix: "p".into(),
            content: Bytes::from_static(b"\x00binary\xff"),
        }),
    ];
    if !in_stream {
        v.extend([
            PgOutputMessage::Begin(Begin { final_lsn: Lsn(10), commit_time: PgTimestamp(-1), xid: u32::MAX }),
            PgOutputMessage::Commit(Commit {
                flags: 0,
                commit_lsn: Lsn(10),
                end_lsn: Lsn(11),
                commit_time: PgTimestamp(i64::MAX),
            }),
            PgOutputMessage::Origin(Origin { commit_lsn: Lsn(u64::MAX), name: "o".into() }),
            PgOutputMessage::StreamStart(StreamStart { xid: 7, first_segment: true }),
            PgOutputMessage::StreamStart(StreamStart { xid: 7, first_segment: false }),
            PgOutputMessage::StreamStop(StreamStop),
            PgOutputMessage::StreamCommit(StreamCommit {
                xid: 7,
                flags: 0,
                commit_lsn: Lsn(20),
                end_lsn: Lsn(21),
                commit_time: PgTimestamp(3),
            }),
            PgOutputMessage::StreamAbort(StreamAbort { xid: 7, subxid: 7, abort: None }),
            PgOutputMessage::StreamAbort(StreamAbort { xid: 7, subxid: 8, abort: Some((Lsn(30), PgTimestamp(4))) }),
        ]);
    }
    v
}

#[test]
fn every_message_kind_roundtrips() {
    for in_stream in [false, true] {
        for m in samples(in_stream) {
            let b = m.to_bytes();
            assert_eq!(b[0], m.tag());
            assert_eq!(PgOutputMessage::decode(&b, true, in_stream), Ok(m.clone()), "{m:?}");
            // Every proper prefix is an error, never a panic or a wrong value.
            for cut in 0..b.len() {
                if cut == 9 && matches!(m, PgOutputMessage::StreamAbort(StreamAbort { abort: Some(_), .. })) {
                    continue; // the v2 form without the optional v4 fields
                }
                assert!(PgOutputMessage::decode(&b.slice(..cut), true, in_stream).is_err(), "{m:?} cut {cut}");
            }
            // A trailing byte is an error too (except Stream Abort, whose
            // optional v4 fields make a longer body legal only at +16).
            let mut longer = BytesMut::from(&b[..]);
            longer.extend_from_slice(b"\x00");
            assert!(PgOutputMessage::decode(&longer.freeze(), true, in_stream).is_err(), "{m:?} + 1 byte");
        }
    }
}

#[test]
fn malformed_messages_are_typed_errors() {
    let d = |b: &'static [u8]| PgOutputMessage::decode(&Bytes::from_static(b), false, false);
    assert!(matches!(d(b""), Err(DecodeError::Corrupt { reason: Corruption::Empty, .. })));
    assert_eq!(d(b"Z"), Err(DecodeError::UnknownTag(b'Z')));
    assert_eq!(d(b"K"), Err(DecodeError::UnknownTag(b'K')), "two-phase tags are not decoded");
    assert!(matches!(d(b"B\x00"), Err(DecodeError::Truncated { context: "Begin", .. })));
    // Relation name without NUL.
    assert!(matches!(
        d(b"R\x00\x00\x00\x01public\x00tbl"),
        Err(DecodeError::Corrupt { context: "Relation", reason: Corruption::UnterminatedString })
    ));
    // Relation with a bad replica identity byte.
    assert!(matches!(
        d(b"R\x00\x00\x00\x01\x00t\x00x\x00\x00"),
        Err(DecodeError::Corrupt { reason: Corruption::UnexpectedByte { byte: b'x', .. }, .. })
    ));
    // Relation claiming more columns than bytes.
    assert!(matches!(d(b"R\x00\x00\x00\x01\x00t\x00d\x7f\xff"), Err(DecodeError::Truncated { .. })));
    // Insert without 'N'.
    assert!(matches!(
        d(b"I\x00\x00\x00\x01K\x00\x00"),
        Err(DecodeError::Corrupt { reason: Corruption::UnexpectedByte { byte: b'K', .. }, .. })
    ));
    // Update with a bad marker, delete with 'N'.
    assert!(matches!(d(b"U\x00\x00\x00\x01X\x00\x00"), Err(DecodeError::Corrupt { .. })));
    assert!(matches!(d(b"D\x00\x00\x00\x01N\x00\x00"), Err(DecodeError::Corrupt { .. })));
    // Truncate with a negative and a huge count.
    assert!(matches!(
        d(b"T\xff\xff\xff\xff\x00"),
        Err(DecodeError::Corrupt { reason: Corruption::NegativeCount(-1), .. })
    ));
    assert!(matches!(d(b"T\x7f\xff\xff\xff\x00\x00\x00\x00\x01"), Err(DecodeError::Truncated { .. })));
    // Message with a negative content length, and a too-long one.
    assert!(matches!(
        d(b"M\x01\x00\x00\x00\x00\x00\x00\x00\x01p\x00\xff\xff\xff\xf0"),
        Err(DecodeError::Corrupt { reason: Corruption::NegativeLength(-16), .. })
    ));
    assert!(matches!(d(b"M\x01\x00\x00\x00\x00\x00\x00\x00\x01p\x00\x00\x00\x00\x09abc"), Err(DecodeError::Truncated { .. })));
    // Non-UTF-8 name.
    assert!(matches!(
        d(b"O\x00\x00\x00\x00\x00\x00\x00\x01\xc3\x28\x00"),
        Err(DecodeError::Corrupt { reason: Corruption::InvalidUtf8, .. })
    ));
}

#[test]
fn decoder_tracks_stream_state() {
    let start = PgOutputMessage::StreamStart(StreamStart { xid: 9, first_segment: true }).to_bytes();
    let stop = PgOutputMessage::StreamStop(StreamStop).to_bytes();
    let ins_stream = PgOutputMessage::Insert(Insert { xid: Some(9), rel_oid: 1, new: TupleData::default() }).to_bytes();
    let ins = PgOutputMessage::Insert(Insert { xid: None, rel_oid: 1, new: TupleData::default() }).to_bytes();
    let mut d = Decoder::new(true);
    assert!(d.decode(&stop).is_err(), "stop outside a stream");
    assert!(d.decode(&start).is_ok());
    assert!(d.in_stream());
    assert!(d.decode(&start).is_err(), "nested start");
    assert!(matches!(d.decode(&ins_stream), Ok(PgOutputMessage::Insert(Insert { xid: Some(9), .. }))));
    assert!(d.decode(&stop).is_ok());
    assert!(matches!(d.decode(&ins), Ok(PgOutputMessage::Insert(Insert { xid: None, .. }))));
    let mut plain = Decoder::new(false);
    assert_eq!(plain.decode(&start), Err(DecodeError::UnknownTag(b'S')));
}

/// xorshift64*: deterministic, dependency-free randomness for the tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Decodes with every mode; whatever decodes must re-encode to something
/// that decodes to the same value.
fn decode_any(b: &Bytes) -> usize {
    let mut ok = 0;
    for (streaming, in_stream) in [(false, false), (true, false), (true, true)] {
        if let Ok(m) = PgOutputMessage::decode(b, streaming, in_stream) {
            let again = PgOutputMessage::decode(&m.to_bytes(), streaming, in_stream);
            assert_eq!(again.as_ref(), Ok(&m), "re-encode of {b:?}");
            ok += 1;
        }
    }
    ok
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let tags = b"BCORYIUDTMSEcAKNntub";
    let mut decoded = 0;
    for _ in 0..20_000 {
        let len = rng.below(64);
        let mut v = Vec::with_capacity(len + 1);
        v.push(tags[rng.below(tags.len())]);
        for _ in 0..len {
            // Bias towards bytes that matter to the format.
            let b = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => tags[rng.below(tags.len())],
                _ => rng.next() as u8,
            };
            v.push(b);
        }
        crate::fuzzing::decode_message(&v);
        crate::fuzzing::decode_session(&v);
        decoded += decode_any(&Bytes::from(v));
    }
    // Some random strings are valid messages (e.g. Stream Stop 'E').
    assert!(decoded > 0);
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0xF1C5_7E5E_ED00_0002);
    let mut runs = 0;
    for (name, _) in ALL {
        let msgs = load(name);
        // Every message of the small fixtures, a sample of the streaming one.
        let picks: Vec<usize> = if msgs.len() > 64 { (0..64).map(|_| rng.below(msgs.len())).collect() } else { (0..msgs.len()).collect() };
        for i in picks {
            let orig = &msgs[i].1;
            // Truncations: all for small messages, a sample for big ones.
            let cuts: Vec<usize> =
                if orig.len() <= 256 { (0..orig.len()).collect() } else { (0..128).map(|_| rng.below(orig.len())).collect() };
            for cut in cuts {
                decode_any(&orig.slice(..cut));
                runs += 1;
            }
            for _ in 0..40 {
                let mut v = orig.to_vec();
                for _ in 0..1 + rng.below(4) {
                    let pos = rng.below(v.len());
                    match rng.below(5) {
                        0 => v[pos] ^= 1 << rng.below(8),
                        1 => v[pos] = rng.next() as u8,
                        2 => v[pos] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)],
                        3 => {
                            v.insert(pos, rng.next() as u8);
                        }
                        _ => {
                            if v.len() > 1 {
                                v.remove(pos);
                            }
                        }
                    }
                }
                decode_any(&Bytes::from(v));
                runs += 1;
            }
        }
    }
    assert!(runs > 5_000, "{runs}");
}

#[test]
fn assembler_survives_mutated_streams() {
    let mut rng = Rng(0xA55E_3B1E_0000_0003);
    for (name, streaming) in ALL {
        let msgs = load(name);
        let limit = msgs.len().min(200);
        for _ in 0..20 {
            let mut decoder = Decoder::new(streaming);
            let mut asm = TxnAssembler::new();
            for (_, orig) in msgs.iter().take(limit) {
                let mut v = orig.to_vec();
                if rng.below(8) == 0 && !v.is_empty() {
                    let pos = rng.below(v.len());
                    v[pos] = rng.next() as u8;
                }
                if rng.below(16) == 0 {
                    continue; // drop a message
                }
                if let Ok(m) = decoder.decode(&Bytes::from(v)) {
                    let _ = asm.push(m);
                }
            }
        }
    }
}
