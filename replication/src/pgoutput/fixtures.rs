//! Decoder tests against the byte fixtures captured from PostgreSQL 15 by
//! `fixtures/capture.sh`: every message of every fixture decodes, renders to
//! the expected structure, and re-encodes to the captured bytes.

use bytes::BytesMut;

use super::{Decoder, PgOutputMessage, TupleValue};
use crate::test_fixtures::{decode_all, load, render, squash, ALL};
use crate::Lsn;

fn check(name: &str, streaming: bool, expected: &[&str]) {
    let got = squash(render(&decode_all(name, streaming)));
    let want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    if got != want {
        panic!("{name} rendered differently:\n{}", got.join("\n"));
    }
}

#[test]
fn every_fixture_reencodes_to_the_captured_bytes() {
    let mut total = 0;
    for (name, streaming) in ALL {
        let mut d = Decoder::new(streaming);
        for (i, (_, bytes)) in load(name).iter().enumerate() {
            let in_stream = d.in_stream();
            let m = d.decode(bytes).unwrap_or_else(|e| panic!("{name}[{i}]: {e}"));
            let mut buf = BytesMut::new();
            m.encode(&mut buf);
            assert_eq!(&buf[..], &bytes[..], "{name}[{i}] re-encodes differently");
            assert_eq!(PgOutputMessage::decode(bytes, streaming, in_stream).as_ref(), Ok(&m));
            total += 1;
        }
    }
    assert!(total > 1600, "{total}");
}

#[test]
fn basic_inserts_updates_deletes_truncate_messages() {
    check(
        "basic_v1",
        false,
        &[
            "BEGIN",
            "RELATION public.basic ident=d [*id:23/-1, name:25/-1, note:25/-1]",
            "INSERT basic ('1','one',NULL)",
            "INSERT basic ('2','two','second')",
            "COMMIT flags=0",
            "BEGIN",
            "UPDATE basic new=('1','uno',NULL)",
            "COMMIT flags=0",
            "BEGIN",
            "UPDATE basic old=K('2',NULL,NULL) new=('10','two','second')",
            "COMMIT flags=0",
            "BEGIN",
            "DELETE basic old=K('1',NULL,NULL)",
            "COMMIT flags=0",
            "BEGIN",
            "INSERT basic ('3','three','it's \"quoted\"')",
            "MESSAGE transactional=true prefix=\"fluxbase\" content=\"in transaction\"",
            "COMMIT flags=0",
            "MESSAGE transactional=false prefix=\"heartbeat\" content=\"\"",
            "BEGIN",
            "RELATION public.child ident=d [*id:23/-1, basic_id:23/-1]",
            "INSERT child ('1','3')",
            "COMMIT flags=0",
            "BEGIN",
            "RELATION public.basic ident=d [*id:23/-1, name:25/-1, note:25/-1]",
            "RELATION public.child ident=d [*id:23/-1, basic_id:23/-1]",
            "TRUNCATE cascade=true restart_identity=true [basic, child]",
            "COMMIT flags=0",
        ],
    );
}

#[test]
fn begin_and_commit_positions_agree() {
    for (name, streaming) in ALL {
        let mut begin = None;
        for m in decode_all(name, streaming) {
            match m {
                PgOutputMessage::Begin(b) => {
                    assert!(b.commit_time.unix_micros() > 1_700_000_000_000_000, "{name}: commit time");
                    begin = Some(b);
                }
                PgOutputMessage::Commit(c) => {
                    let b = begin.take().expect("Begin before Commit");
                    assert_eq!(b.final_lsn, c.commit_lsn, "{name}");
                    assert!(c.end_lsn > c.commit_lsn, "{name}");
                    assert_eq!(b.commit_time, c.commit_time, "{name}");
                }
                PgOutputMessage::StreamCommit(c) => assert!(c.end_lsn > c.commit_lsn && c.commit_lsn > Lsn::ZERO),
                _ => {}
            }
        }
    }
}

#[test]
fn replica_identity_full_sends_whole_old_rows() {
    check(
        "replica_full_v1",
        false,
        &[
            "BEGIN",
            "RELATION public.full_t ident=f [*id:23/-1, *v:25/-1]",
            "INSERT full_t ('1','a')",
            "INSERT full_t ('2',NULL)",
            "COMMIT flags=0",
            "BEGIN",
            "UPDATE full_t old=O('1','a') new=('1','b')",
            "COMMIT flags=0",
            "BEGIN",
            "UPDATE full_t old=O('2',NULL) new=('2','c')",
            "COMMIT flags=0",
            "BEGIN",
            "DELETE full_t old=O('1','b')",
            "COMMIT flags=0",
        ],
    );
}

#[test]
fn unchanged_toast_is_u_and_full_identity_inlines_it() {
    check(
        "toast_v1",
        false,
        &[
            "BEGIN",
            "RELATION public.toast_t ident=d [*id:23/-1, small:25/-1, big:25/-1]",
            "INSERT toast_t ('1','small',text(12800 bytes))",
            "COMMIT flags=0",
            "BEGIN",
            "UPDATE toast_t new=('1','changed',UNCHANGED)",
            "COMMIT flags=0",
            "BEGIN",
            "RELATION public.toast_full ident=f [*id:23/-1, *small:25/-1, *big:25/-1]",
            "INSERT toast_full ('1','small',text(12800 bytes))",
            "COMMIT flags=0",
            "BEGIN",
            "UPDATE toast_full old=O('1','small',text(12800 bytes)) new=('1','changed',UNCHANGED)",
            "COMMIT flags=0",
            "BEGIN",
            "DELETE toast_full old=O('1','changed',text(12800 bytes))",
            "COMMIT flags=0",
        ],
    );
    // The inline value is the full text: md5('1') || md5('2') || ...
    let msgs = decode_all("toast_v1", false);
    let Some(PgOutputMessage::Insert(i)) = msgs.get(2) else { panic!("insert expected") };
    let big = i.new.columns[2].as_text().expect("text");
    assert!(big.starts_with("c4ca4238a0b923820dcc509a6f75849bc81e728d9d4c2f636f067f89cc14862c"));
    assert_eq!(i.new.columns[1], TupleValue::Text("small".into()));
}

const TYPES_RELATION: &str = "RELATION public.types_t ident=d [*id:23/-1, i2:21/-1, i8:20/-1, n:1700/655366, \
     f4:700/-1, f8:701/-1, b:16/-1, t:25/-1, vc:1043/14, c:1042/7, ba:17/-1, d:1082/-1, tm:1083/-1, ts:1114/-1, \
     tstz:1184/-1, iv:1186/-1, u:2950/-1, j:114/-1, jb:3802/-1, arr:1007/-1, ip:869/-1, m:user/-1, p:user/-1, nul:25/-1]";

#[test]
fn many_types_in_text_form() {
    check(
        "types_v1",
        false,
        &[
            "BEGIN",
            "TYPE \"public\".mood",
            // A domain: its own OID, its base type's name.
            "TYPE \"\".int4",
            TYPES_RELATION,
            "INSERT types_t ('1','2','9007199254740993','12345.67','1.5','3.141592653589793','t','héllo ✓','abc','xy ',\
             '\\xdeadbeef','2024-02-29','13:14:15.5','2024-02-29 13:14:15.123456','2024-02-29 11:14:15.123456+00',\
             '1 day 02:03:04','a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11','{\"a\": [1, 2]}','{\"b\": {\"c\": null}}',\
             '{1,2,NULL}','192.168.0.1/24','happy','7',NULL)",
            "COMMIT flags=0",
        ],
    );
}

#[test]
fn many_types_in_binary_form() {
    check(
        "types_binary_v1",
        false,
        &[
            "BEGIN",
            "TYPE \"public\".mood",
            "TYPE \"\".int4",
            TYPES_RELATION,
            "INSERT types_t (x00000002,x0002,x0020000000000001,x0003000100000002000109291a2c,x3fc00000,\
             x400921fb54442d18,x01,x68c3a96c6c6f20e29c93,x616263,x787920,xdeadbeef,x00002279,x0000000b187d38e0,\
             x0002b583ce03da00,x0002b58220dc9200,x00000001b81ee6000000000100000000,xa0eebc999c0b4ef8bb6d6bb9bd380a11,\
             x7b2261223a205b312c20325d7d,x017b2262223a207b2263223a206e756c6c7d7d,bin(40 bytes),x02180004c0a80001,\
             x6861707079,x00000007,NULL)",
            "COMMIT flags=0",
        ],
    );
}

#[test]
fn alter_table_mid_transaction_resends_relation() {
    check(
        "alter_mid_txn_v1",
        false,
        &[
            "BEGIN",
            "RELATION public.alt ident=d [*id:23/-1, a:25/-1]",
            "INSERT alt ('1','one')",
            "RELATION public.alt ident=d [*id:23/-1, a:25/-1, b:23/-1]",
            "INSERT alt ('2','two','22')",
            "RELATION public.alt ident=d [*id:23/-1, b:23/-1]",
            "INSERT alt ('3','33')",
            "UPDATE alt new=('3','34')",
            "COMMIT flags=0",
        ],
    );
}

#[test]
fn origin_follows_begin() {
    check(
        "origin_v1",
        false,
        &[
            "BEGIN",
            "ORIGIN fixture_origin 0/ABCDEF",
            "RELATION public.basic ident=d [*id:23/-1, name:25/-1, note:25/-1]",
            "INSERT basic ('100','from origin',NULL)",
            "COMMIT flags=0",
        ],
    );
}

#[test]
fn streamed_transactions_chunks_aborts_and_interleaving() {
    check(
        "streaming_v2",
        true,
        &[
            "STREAM_START first=true",
            "RELATION [xid] public.big ident=d [*id:23/-1, payload:25/-1]",
            "INSERT [xid] big x459",
            "STREAM_STOP",
            // A small transaction committed by another session mid-stream.
            "BEGIN",
            "RELATION public.basic ident=d [*id:23/-1, name:25/-1, note:25/-1]",
            "INSERT basic ('200','interleaved',NULL)",
            "COMMIT flags=0",
            "STREAM_START first=false",
            "INSERT [xid] big x441",
            "MESSAGE [xid] transactional=true prefix=\"stream\" content=\"in stream\"",
            "STREAM_STOP",
            "STREAM_COMMIT",
            // Rolled back after streaming.
            "STREAM_START first=true",
            "RELATION [xid] public.big ident=d [*id:23/-1, payload:25/-1]",
            "INSERT [xid] big x459",
            "STREAM_STOP",
            "STREAM_ABORT whole",
            // A streamed subtransaction rolled back, then a commit.
            "STREAM_START first=true",
            "RELATION [xid] public.big ident=d [*id:23/-1, payload:25/-1]",
            "INSERT [xid] big x459",
            "STREAM_STOP",
            "STREAM_ABORT subtransaction",
            "STREAM_START first=false",
            "RELATION [xid] public.big ident=d [*id:23/-1, payload:25/-1]",
            "INSERT [xid] big ('3001','kept too')",
            "STREAM_STOP",
            "STREAM_COMMIT",
        ],
    );
}

#[test]
fn streamed_changes_carry_their_subtransaction_xid() {
    let msgs = decode_all("streaming_v2", true);
    let mut top = None;
    let mut sub_xids = std::collections::BTreeSet::new();
    let mut last_top = 0;
    for m in &msgs {
        match m {
            PgOutputMessage::StreamStart(s) => top = Some(s.xid),
            PgOutputMessage::StreamStop(_) => top = None,
            PgOutputMessage::Insert(i) => {
                let t = top.expect("every insert is in a chunk or in B..C");
                if t == 0 {
                    assert_eq!(i.xid, None, "no xid outside a stream");
                    continue;
                }
                let x = i.xid.expect("xid inside a stream");
                if x != t {
                    sub_xids.insert(x);
                }
                last_top = t;
            }
            PgOutputMessage::StreamAbort(a) if !a.is_whole_transaction() => {
                assert_eq!(a.xid, last_top);
                assert!(sub_xids.contains(&a.subxid), "aborted subxid {} made changes", a.subxid);
            }
            PgOutputMessage::Begin(_) => top = Some(0),
            PgOutputMessage::Commit(_) => top = None,
            _ => {}
        }
    }
    // The rolled-back savepoint, and the new subtransaction ROLLBACK TO
    // starts (the savepoint stays established) which wrote 'kept too'.
    assert_eq!(sub_xids.len(), 2, "two subtransactions");
}

#[test]
fn stream_tags_need_the_streaming_flag() {
    let (_, first) = load("streaming_v2").into_iter().next().expect("non-empty");
    assert_eq!(PgOutputMessage::decode(&first, false, false), Err(crate::DecodeError::UnknownTag(b'S')));
    assert!(PgOutputMessage::decode(&first, true, false).is_ok());
}
