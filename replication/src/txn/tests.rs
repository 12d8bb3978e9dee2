//! Assembly tests: the captured fixtures end to end, and synthetic streams
//! for interleaving, aborts and protocol violations.

use bytes::Bytes;

use super::*;
use crate::pgoutput::{
    Begin, Commit, Insert, OldKind, PgOutputMessage, Relation, RelationColumn, ReplicaIdentity,
    StreamAbort, StreamCommit, StreamStart, StreamStop, TupleData, TupleValue,
};
use crate::test_fixtures::decode_all;
use crate::{Lsn, PgTimestamp};

fn assemble(name: &str, streaming: bool) -> Vec<Assembled> {
    let mut a = TxnAssembler::new();
    let out = decode_all(name, streaming)
        .into_iter()
        .filter_map(|m| a.push(m).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    assert!(a.is_idle(), "{name}: nothing left open");
    out
}

fn txns(out: &[Assembled]) -> Vec<&Transaction> {
    out.iter()
        .filter_map(|a| match a {
            Assembled::Transaction(t) => Some(t),
            Assembled::Message(_) | Assembled::Part(_) => None,
        })
        .collect()
}

fn text(v: &TupleValue) -> &str {
    v.as_text().unwrap_or("<not text>")
}

#[test]
fn basic_fixture_assembles_resolved_changes() {
    let out = assemble("basic_v1", false);
    assert_eq!(out.len(), 8);
    let t = txns(&out);
    assert_eq!(t.len(), 7);
    for w in t.windows(2) {
        assert!(w[0].end_lsn < w[1].end_lsn, "commit order");
    }
    let first = &t[0];
    assert_eq!(first.changes.len(), 2);
    let rel = first.changes[0].relation().expect("insert has a relation");
    assert_eq!(
        (rel.schema.as_str(), rel.table.as_str()),
        ("public", "basic")
    );
    let cols: Vec<_> = rel
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_oid, c.type_modifier, c.is_key))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", 23, -1, true),
            ("name", 25, -1, false),
            ("note", 25, -1, false)
        ]
    );
    assert_eq!(
        first.changes[1].new_tuple().map(|t| text(&t.columns[2])),
        Some("second")
    );

    // Update of a key column: key-only old image.
    let Change::Update {
        old: Some(old),
        new,
        ..
    } = &t[2].changes[0]
    else {
        panic!("key update")
    };
    assert_eq!(old.kind, OldKind::Key);
    assert_eq!(text(&old.tuple.columns[0]), "2");
    assert_eq!(
        old.tuple.columns[1],
        TupleValue::Null,
        "non-key column not sent"
    );
    assert_eq!(text(&new.columns[0]), "10");
    assert_eq!(t[3].changes[0].op(), ChangeOp::Delete);

    // Transactional message inside, non-transactional outside.
    assert_eq!(
        t[4].changes.iter().map(Change::op).collect::<Vec<_>>(),
        [ChangeOp::Insert, ChangeOp::Message]
    );
    let Change::Message {
        prefix, content, ..
    } = &t[4].changes[1]
    else {
        panic!("message")
    };
    assert_eq!(
        (prefix.as_str(), &content[..]),
        ("fluxbase", &b"in transaction"[..])
    );
    let Assembled::Message(m) = &out[5] else {
        panic!("non-transactional message")
    };
    assert_eq!(m.prefix, "heartbeat");
    assert!(m.lsn > t[4].end_lsn);

    let Change::Truncate { relations, options } = &t[6].changes[0] else {
        panic!("truncate")
    };
    let names: Vec<_> = relations.iter().map(|r| r.table.as_str()).collect();
    assert_eq!(names, ["basic", "child"]);
    assert!(options.cascade() && options.restart_identity());
}

#[test]
fn alter_mid_transaction_resolves_each_change_as_of_its_position() {
    let out = assemble("alter_mid_txn_v1", false);
    let t = txns(&out);
    assert_eq!(t.len(), 1);
    let shapes: Vec<Vec<&str>> = t[0]
        .changes
        .iter()
        .map(|c| {
            c.relation()
                .expect("row change")
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect()
        })
        .collect();
    assert_eq!(
        shapes,
        [
            vec!["id", "a"],
            vec!["id", "a", "b"],
            vec!["id", "b"],
            vec!["id", "b"]
        ]
    );
}

#[test]
fn toast_unchanged_is_filled_only_from_a_full_old_row() {
    let out = assemble("toast_v1", false);
    let t = txns(&out);
    let default_update = &t[1].changes[0];
    let filled = default_update.new_with_unchanged_filled().expect("update");
    assert_eq!(
        filled.columns[2],
        TupleValue::Unchanged,
        "not recoverable with identity default"
    );
    let full_update = &t[3].changes[0];
    let filled = full_update.new_with_unchanged_filled().expect("update");
    assert_eq!(text(&filled.columns[1]), "changed");
    assert_eq!(filled.columns[2].as_bytes().map(Bytes::len), Some(12_800));
}

#[test]
fn type_messages_name_user_types() {
    let out = assemble("types_v1", false);
    let out_txns = txns(&out);
    let rel = out_txns[0].changes[0].relation().expect("insert");
    let named: Vec<_> = rel
        .columns
        .iter()
        .filter_map(|c| c.type_name.as_deref().map(|n| (c.name.as_str(), n)))
        .collect();
    assert_eq!(named, [("m", "public.mood"), ("p", "pg_catalog.int4")]);
}

#[test]
fn origin_is_kept_on_the_transaction() {
    let out = assemble("origin_v1", false);
    let origin = txns(&out)[0].origin.clone().expect("origin");
    assert_eq!(
        (origin.name.as_str(), origin.commit_lsn),
        ("fixture_origin", Lsn(0xABCDEF))
    );
}

#[test]
fn streaming_fixture_yields_only_committed_work_in_commit_order() {
    let out = assemble("streaming_v2", true);
    let t = txns(&out);
    assert_eq!(
        t.len(),
        3,
        "interleaved, streamed commit, streamed commit after subxact abort"
    );
    assert!(!t[0].streamed);
    assert_eq!(t[0].changes.len(), 1);
    assert_eq!(
        t[0].changes[0].relation().map(|r| r.table.as_str()),
        Some("basic")
    );
    assert!(t[1].streamed);
    assert_eq!(t[1].changes.len(), 901);
    assert_eq!(t[1].changes[900].op(), ChangeOp::Message);
    let ids: Vec<_> = t[1].changes[..900]
        .iter()
        .map(|c| text(&c.new_tuple().expect("insert").columns[0]).to_owned())
        .collect();
    assert_eq!(ids.first().map(String::as_str), Some("1"));
    assert_eq!(ids.last().map(String::as_str), Some("900"));
    let kept: Vec<_> = t[2]
        .changes
        .iter()
        .map(|c| text(&c.new_tuple().expect("insert").columns[1]).to_owned())
        .collect();
    assert_eq!(kept, ["kept", "kept too"]);
    assert!(t[0].end_lsn < t[1].end_lsn && t[1].end_lsn < t[2].end_lsn);
    assert_eq!(t[1].final_lsn, t[1].commit_lsn);
}

// ---- synthetic streams ----

fn rel(oid: u32, name: &str, cols: &[&str], xid: Option<u32>) -> PgOutputMessage {
    PgOutputMessage::Relation(Relation {
        xid,
        oid,
        namespace: "public".into(),
        name: name.into(),
        replica_identity: ReplicaIdentity::Default,
        columns: cols
            .iter()
            .enumerate()
            .map(|(i, c)| RelationColumn {
                flags: u8::from(i == 0),
                name: (*c).into(),
                type_oid: 25,
                type_modifier: -1,
            })
            .collect(),
    })
}

fn ins(oid: u32, xid: Option<u32>, vals: &[&str]) -> PgOutputMessage {
    PgOutputMessage::Insert(Insert {
        xid,
        rel_oid: oid,
        new: TupleData {
            columns: vals
                .iter()
                .map(|v| TupleValue::Text(Bytes::copy_from_slice(v.as_bytes())))
                .collect(),
        },
    })
}

fn begin(lsn: u64, xid: u32) -> PgOutputMessage {
    PgOutputMessage::Begin(Begin {
        final_lsn: Lsn(lsn),
        commit_time: PgTimestamp(0),
        xid,
    })
}

fn commit(lsn: u64) -> PgOutputMessage {
    PgOutputMessage::Commit(Commit {
        flags: 0,
        commit_lsn: Lsn(lsn),
        end_lsn: Lsn(lsn + 8),
        commit_time: PgTimestamp(0),
    })
}

fn start(xid: u32, first: bool) -> PgOutputMessage {
    PgOutputMessage::StreamStart(StreamStart {
        xid,
        first_segment: first,
    })
}

fn stop() -> PgOutputMessage {
    PgOutputMessage::StreamStop(StreamStop)
}

fn stream_commit(xid: u32, lsn: u64) -> PgOutputMessage {
    PgOutputMessage::StreamCommit(StreamCommit {
        xid,
        flags: 0,
        commit_lsn: Lsn(lsn),
        end_lsn: Lsn(lsn + 8),
        commit_time: PgTimestamp(0),
    })
}

fn abort(xid: u32, subxid: u32) -> PgOutputMessage {
    PgOutputMessage::StreamAbort(StreamAbort {
        xid,
        subxid,
        abort: None,
    })
}

fn run(msgs: Vec<PgOutputMessage>) -> Result<Vec<Assembled>, AssembleError> {
    let mut a = TxnAssembler::new();
    let mut out = Vec::new();
    for m in msgs {
        out.extend(a.push(m)?);
    }
    Ok(out)
}

fn values(t: &Transaction) -> Vec<String> {
    t.changes
        .iter()
        .map(|c| text(&c.new_tuple().expect("insert").columns[1]).to_owned())
        .collect()
}

#[test]
fn interleaved_streams_and_subtransaction_aborts() {
    let out = run(vec![
        rel(1, "t", &["id", "v"], None),
        start(100, true),
        ins(1, Some(100), &["1", "a1"]),
        ins(1, Some(101), &["2", "a-sub"]),
        stop(),
        start(200, true),
        ins(1, Some(200), &["3", "b1"]),
        stop(),
        begin(50, 300),
        ins(1, None, &["4", "plain"]),
        commit(50),
        start(100, false),
        ins(1, Some(100), &["5", "a2"]),
        stop(),
        abort(100, 101),
        abort(200, 200),
        stream_commit(100, 90),
    ])
    .expect("valid stream");
    let t: Vec<_> = txns(&out);
    assert_eq!(t.len(), 2);
    assert_eq!((t[0].xid, values(t[0])), (300, vec!["plain".to_owned()]));
    assert_eq!(
        (t[1].xid, values(t[1])),
        (100, vec!["a1".to_owned(), "a2".to_owned()])
    );
    assert!(t[1].streamed);
}

#[test]
fn relation_inside_an_aborted_stream_does_not_leak() {
    let out = run(vec![
        rel(1, "t", &["id", "v"], None),
        start(100, true),
        rel(1, "t", &["id", "v", "extra"], Some(100)),
        ins(1, Some(100), &["1", "x", "y"]),
        stop(),
        abort(100, 100),
        begin(60, 5),
        ins(1, None, &["2", "after"]),
        commit(60),
    ])
    .expect("the aborted ALTER's shape is not used for later changes");
    assert_eq!(values(txns(&out)[0]), ["after"]);
}

#[test]
fn relation_inside_a_committed_stream_is_kept() {
    let out = run(vec![
        rel(1, "t", &["id", "v"], None),
        start(100, true),
        rel(1, "t", &["id", "v", "extra"], Some(100)),
        ins(1, Some(100), &["1", "x", "y"]),
        stop(),
        stream_commit(100, 70),
        begin(80, 5),
        ins(1, None, &["2", "after", "z"]),
        commit(80),
    ])
    .expect("valid");
    assert_eq!(txns(&out).len(), 2);
}

#[test]
fn protocol_violations_are_errors() {
    let e = |msgs| run(msgs).expect_err("must fail");
    assert!(matches!(
        e(vec![ins(1, None, &["1"])]),
        AssembleError::UnknownRelation { oid: 1 }
    ));
    assert!(matches!(
        e(vec![rel(1, "t", &["id"], None), ins(1, None, &["1"])]),
        AssembleError::UnexpectedMessage {
            message: "Insert",
            ..
        }
    ));
    assert!(matches!(
        e(vec![
            rel(1, "t", &["id", "v"], None),
            begin(1, 1),
            ins(1, None, &["1"])
        ]),
        AssembleError::ColumnCountMismatch {
            expected: 2,
            actual: 1,
            ..
        }
    ));
    assert!(matches!(
        e(vec![commit(1)]),
        AssembleError::UnexpectedMessage {
            message: "Commit",
            ..
        }
    ));
    assert!(matches!(
        e(vec![begin(1, 1), begin(2, 2)]),
        AssembleError::UnexpectedMessage {
            message: "Begin",
            ..
        }
    ));
    assert!(matches!(
        e(vec![begin(1, 1), commit(2)]),
        AssembleError::CommitLsnMismatch { .. }
    ));
    assert!(matches!(
        e(vec![start(5, false)]),
        AssembleError::UnknownStream { xid: 5 }
    ));
    assert!(matches!(
        e(vec![stream_commit(5, 1)]),
        AssembleError::UnknownStream { xid: 5 }
    ));
    assert!(matches!(
        e(vec![start(5, true), stream_commit(5, 1)]),
        AssembleError::UnexpectedMessage { .. }
    ));
    assert!(matches!(
        e(vec![stop()]),
        AssembleError::UnexpectedMessage {
            message: "Stream Stop",
            ..
        }
    ));
}

#[test]
fn idle_tracking_and_reset() {
    let mut a = TxnAssembler::new();
    assert!(a.is_idle());
    a.push(rel(1, "t", &["id"], None)).expect("ok");
    a.push(begin(10, 1)).expect("ok");
    assert!(!a.is_idle());
    a.push(ins(1, None, &["1"])).expect("ok");
    assert_eq!(a.buffered_changes(), 1);
    a.push(commit(10)).expect("ok");
    assert!(a.is_idle());
    a.push(start(7, true)).expect("ok");
    a.push(stop()).expect("ok");
    assert!(
        !a.is_idle(),
        "a streamed transaction is still open between chunks"
    );
    a.reset();
    assert!(a.is_idle());
    assert!(a.relations().is_empty());
}

#[test]
fn large_transactions_are_handed_over_in_bounded_parts() {
    let mut a = TxnAssembler::with_parts(PartLimits {
        changes: 3,
        bytes: 1 << 20,
    });
    let mut msgs = vec![rel(1, "t", &["id", "v"], None), begin(1000, 7)];
    for i in 0..10 {
        msgs.push(ins(1, None, &[&i.to_string(), "x"]));
    }
    msgs.push(commit(1000));
    // A small transaction after it is delivered whole.
    msgs.extend([begin(2000, 8), ins(1, None, &["99", "y"]), commit(2000)]);
    let mut out = Vec::new();
    for m in msgs {
        out.extend(a.push(m).expect("valid stream"));
    }
    let mut seen = Vec::new();
    let mut firsts = Vec::new();
    for o in &out[..out.len() - 2] {
        let Assembled::Part(p) = o else {
            panic!("parts first: {o:?}")
        };
        assert_eq!((p.xid, p.final_lsn), (7, Lsn(1000)));
        assert!(p.changes.len() <= 3, "bounded");
        firsts.push(p.first_change);
        seen.extend(
            p.changes
                .iter()
                .map(|c| text(&c.new_tuple().expect("insert").columns[0]).to_owned()),
        );
    }
    assert_eq!(firsts, [0, 3, 6]);
    let Assembled::Transaction(t) = &out[out.len() - 2] else {
        panic!("the commit")
    };
    assert_eq!((t.earlier_changes, t.end_lsn), (9, Lsn(1008)));
    assert!(
        !t.changes.is_empty(),
        "the closing transaction is never empty"
    );
    seen.extend(
        t.changes
            .iter()
            .map(|c| text(&c.new_tuple().expect("insert").columns[0]).to_owned()),
    );
    assert_eq!(
        seen,
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>(),
        "every change once, in order"
    );
    let Assembled::Transaction(small) = &out[out.len() - 1] else {
        panic!("small txn")
    };
    assert_eq!((small.earlier_changes, small.changes.len()), (0, 1));
    // Parts by bytes too.
    let mut a = TxnAssembler::with_parts(PartLimits {
        changes: 1000,
        bytes: 300,
    });
    a.push(rel(1, "t", &["id", "v"], None)).expect("rel");
    a.push(begin(3000, 9)).expect("begin");
    let big = "z".repeat(200);
    let parts = (0..5)
        .filter_map(|i| a.push(ins(1, None, &[&i.to_string(), &big])).expect("ins"))
        .count();
    assert!(parts >= 2, "byte limit hands over parts: {parts}");
}
