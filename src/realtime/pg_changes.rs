//! `postgres_changes`: the bindings of a join, and one change judged for
//! them ([`Judged`]): which bindings match (`ids`), what each audience may
//! see of the row (RLS, once per audience), and the frame realtime-js
//! expects, serialised once per visibility and spliced per (topic,
//! version). Live delivery is by group ([`super::groups`]); [`replay`]
//! serves a join's `config.since` from the event log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

use super::filter::Filter;
use super::frame::{change_payload, splice_change, Msg, Vsn};
use super::outbox::{Item, Outbox};
use crate::changes::ChangesCore;
use crate::eventlog::{Change, ColumnInfo, Op, Position, RelationInfo, Txn};
use crate::http::caller::Caller;
use crate::rls::policy_eval::TablePolicy;
use crate::rls::Verdict;

/// One `postgres_changes` entry of a join.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The id echoed in the join reply and listed in `ids`.
    pub id: u32,
    /// `INSERT`, `UPDATE`, `DELETE` or `*`.
    pub event: String,
    /// Schema (`*` for all).
    pub schema: String,
    /// Table (`*` for all of the schema).
    pub table: String,
    /// Row filter.
    pub filter: Filter,
    /// The entry as the client sent it (echoed with `id`).
    pub echo: Value,
}

impl Binding {
    /// Parses one entry of `config.postgres_changes`.
    pub fn parse(entry: &Value) -> Result<Binding, String> {
        let o = entry.as_object().ok_or("postgres_changes entries must be objects")?;
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let raw_event = text("event").unwrap_or_else(|| "*".into());
        let event = match raw_event.to_ascii_uppercase().as_str() {
            e @ ("INSERT" | "UPDATE" | "DELETE") => e.to_owned(),
            _ => "*".to_owned(),
        };
        let table = text("table").filter(|t| !t.is_empty()).unwrap_or_else(|| "*".into());
        let schema = text("schema").filter(|s| !s.is_empty()).unwrap_or_else(|| "public".into());
        let filter = Filter::parse(&text("filter").unwrap_or_default())?;
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (raw_event.as_str(), &schema, &table, text("filter")).hash(&mut h);
        let id = (h.finish() as u32) % 100_000_000 + 1;
        let mut echo = o.clone();
        echo.insert("id".into(), Value::from(id));
        Ok(Binding { id, event, schema, table, filter, echo: Value::Object(echo) })
    }

    fn matches(&self, schema: &str, table: &str, op: Op, row: &Map<String, Value>) -> bool {
        let op_name = match op {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
            _ => return false,
        };
        (self.schema == "*" || self.schema == schema)
            && (self.table == "*" || self.table == table)
            && (self.event == "*" || self.event == op_name)
            && self.filter.matches(row)
    }
}

/// `commit_timestamp` as Supabase formats it: milliseconds and `Z`.
fn commit_timestamp(us: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// What one audience may see of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Nothing: the change is not sent.
    Hidden,
    /// The whole change.
    Full,
    /// An update that moved the row out of view: `record` holds only the
    /// key, so a subscriber who saw the row learns it left.
    KeyOnly,
}

/// `data` of a `postgres_changes` event, fields in the order `serde_json`
/// writes a map's keys (sorted), so the bytes equal those of a `json!` map.
#[derive(Serialize)]
struct Data<'a> {
    columns: Vec<ColumnOut<'a>>,
    commit_timestamp: &'a str,
    errors: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_record: Option<&'a Map<String, Value>>,
    position: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a Map<String, Value>>,
    schema: &'a str,
    table: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct ColumnOut<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
}

impl<'a> From<&'a ColumnInfo> for ColumnOut<'a> {
    fn from(c: &'a ColumnInfo) -> Self {
        ColumnOut { name: &c.name, type_name: &c.type_name }
    }
}

/// A caller's audience for one table's policies, remembered between changes
/// while neither the caller nor the policies changed.
#[derive(Debug, Default)]
pub struct AudienceMemo(Mutex<Option<Remembered>>);

/// The caller and policies an audience was computed for, and the audience.
type Remembered = (Arc<Caller>, TablePolicy, Arc<str>);

/// One change judged for one set of bindings.
pub struct Judged<'a> {
    core: &'a ChangesCore,
    txn: &'a Txn,
    change: &'a Change,
    rel: &'a RelationInfo,
    /// The row image policies and filters are judged on.
    image: &'a Map<String, Value>,
    /// The change's position.
    pub pos: Position,
    ids: Vec<u32>,
    policies: HashMap<String, TablePolicy>,
    verdicts: HashMap<Arc<str>, Visibility>,
    payloads: HashMap<Visibility, String>,
    frames: HashMap<(Visibility, Arc<str>, Vsn), Message>,
}

impl<'a> Judged<'a> {
    /// Change `i` of `txn` for `bindings`; `None` when no binding matches it.
    pub fn new(core: &'a ChangesCore, bindings: &[Binding], txn: &'a Txn, i: usize) -> Option<Judged<'a>> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let change = txn.changes.get(i)?;
        let rel = txn.relation(change)?;
        let empty = EMPTY.get_or_init(Map::new);
        let image = match change.op {
            Op::Delete => change.old_record.as_ref().unwrap_or(empty),
            Op::Insert | Op::Update => change.record.as_ref().unwrap_or(empty),
            _ => return None,
        };
        let ids: Vec<u32> = bindings.iter().filter(|b| b.matches(&rel.schema, &rel.table, change.op, image)).map(|b| b.id).collect();
        if ids.is_empty() {
            return None;
        }
        Some(Judged {
            core,
            txn,
            change,
            rel,
            image,
            pos: txn.position(i),
            ids,
            policies: HashMap::new(),
            verdicts: HashMap::new(),
            payloads: HashMap::new(),
            frames: HashMap::new(),
        })
    }

    /// What `caller` may see; judged once per audience of this change.
    pub async fn visibility(&mut self, caller: &Arc<Caller>, memo: &AudienceMemo) -> Visibility {
        if caller.is_service_role() {
            return Visibility::Full;
        }
        let Some(audience) = self.audience(caller, memo).await else {
            return Visibility::Hidden;
        };
        if let Some(v) = self.verdicts.get(&audience) {
            return *v;
        }
        let v = self.judge(caller).await;
        self.verdicts.insert(audience, v);
        v
    }

    async fn audience(&mut self, caller: &Arc<Caller>, memo: &AudienceMemo) -> Option<Arc<str>> {
        let policy = match self.policies.get(&caller.role) {
            Some(p) => p.clone(),
            None => {
                let p = self.core.evaluator.table_policy(caller, &self.rel.schema, &self.rel.table).await.ok()?;
                self.policies.insert(caller.role.clone(), p.clone());
                p
            }
        };
        let Ok(mut m) = memo.0.lock() else {
            return Some(policy.audience(caller).into());
        };
        if let Some((c, p, a)) = m.as_ref() {
            if Arc::ptr_eq(c, caller) && p.same(&policy) {
                return Some(Arc::clone(a));
            }
        }
        let a: Arc<str> = policy.audience(caller).into();
        *m = Some((Arc::clone(caller), policy, Arc::clone(&a)));
        Some(a)
    }

    /// The changed table: `(schema, table)`.
    pub fn table(&self) -> (&'a str, &'a str) {
        (&self.rel.schema, &self.rel.table)
    }

    /// RLS on the WAL's row image: the new row for inserts and updates, the
    /// old one for deletes and for updates that move a row out of view.
    /// One call per audience: every caller of it gets the same answer.
    pub async fn judge(&self, caller: &Caller) -> Visibility {
        if caller.is_service_role() {
            return Visibility::Full;
        }
        let (schema, table, pos) = (&self.rel.schema, &self.rel.table, self.pos);
        let ev = &self.core.evaluator;
        let visible = |row: &'a Map<String, Value>, old: bool| async move { ev.verdict_at(caller, schema, table, pos, old, row).await == Verdict::Visible };
        match self.change.op {
            Op::Update => {
                if visible(self.image, false).await {
                    Visibility::Full
                } else {
                    match &self.change.old_record {
                        Some(old) if visible(old, true).await => Visibility::KeyOnly,
                        _ => Visibility::Hidden,
                    }
                }
            }
            op => {
                if visible(self.image, op == Op::Delete).await {
                    Visibility::Full
                } else {
                    Visibility::Hidden
                }
            }
        }
    }

    /// The frame for a socket of version `vsn` on `topic`; `None` when hidden.
    pub fn frame(&mut self, vis: Visibility, topic: &Arc<str>, vsn: Vsn) -> Option<Message> {
        if vis == Visibility::Hidden {
            return None;
        }
        let key = (vis, Arc::clone(topic), vsn);
        if let Some(f) = self.frames.get(&key) {
            return Some(f.clone());
        }
        if !self.payloads.contains_key(&vis) {
            let p = self.payload(vis);
            self.payloads.insert(vis, p);
        }
        let payload = self.payloads.get(&vis)?;
        let f = Message::Text(splice_change(vsn, topic, payload).into());
        self.frames.insert(key, f.clone());
        Some(f)
    }

    /// `{"data": …, "ids": […]}`, serialised once per visibility.
    fn payload(&self, vis: Visibility) -> String {
        change_payload(&data_json(self.txn, self.change, self.rel, self.image, self.pos, vis), &self.ids)
    }
}

/// The `data` of a change as `vis` lets it be seen, serialised.
fn data_json(txn: &Txn, change: &Change, rel: &RelationInfo, image: &Map<String, Value>, pos: Position, vis: Visibility) -> String {
    let key_only: Map<String, Value>;
    let record = match (change.op, vis) {
        (Op::Delete, _) => None,
        (_, Visibility::KeyOnly) => {
            key_only = image
                .iter()
                .filter(|(k, _)| rel.columns.iter().any(|c| c.key && &c.name == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Some(&key_only)
        }
        _ => Some(change.record.as_ref().unwrap_or(image)),
    };
    let empty = Map::new();
    let data = Data {
        columns: rel.columns.iter().map(ColumnOut::from).collect(),
        commit_timestamp: &commit_timestamp(txn.commit_time_us),
        errors: None,
        old_record: (change.op != Op::Insert).then(|| change.old_record.as_ref().unwrap_or(&empty)),
        position: pos.to_string(),
        record,
        schema: &rel.schema,
        table: &rel.table,
        kind: match change.op {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            _ => "DELETE",
        },
    };
    // Serialising borrowed maps and strings cannot fail.
    serde_json::to_string(&data).unwrap_or_default()
}

/// Replays `(since, start]` from the event log to one channel (a join with
/// `config.since`), filtered and RLS-checked as live changes are. Live
/// changes after `start` wait meanwhile in the member's hold
/// ([`super::groups::Member::go_live`]), so there is no gap and no
/// duplicate at the seam. False when the socket is gone or cut loose.
pub async fn replay(
    core: &ChangesCore,
    bindings: &[Binding],
    member: &super::groups::Member,
    since: Position,
    start: Position,
) -> bool {
    let mut pos = since;
    loop {
        let txns = match core.log.read_after(pos, 4096).await {
            Ok(t) => t,
            Err(e) => {
                system_error(&member.out, &member.topic, &format!("cannot replay from {since}: {e}; refetch and rejoin without since"));
                return false;
            }
        };
        if txns.is_empty() {
            return true;
        }
        for txn in txns {
            for i in 0..txn.changes.len() {
                let p = txn.position(i);
                if p <= pos || p > start {
                    continue;
                }
                let Some(mut j) = Judged::new(core, bindings, &txn, i) else { continue };
                let caller = member.caller();
                let vis = j.visibility(&caller, &member.memo).await;
                if let Some(frame) = j.frame(vis, &member.topic, member.vsn) {
                    if !member.out.send_change(&member.topic, Item::Frame(frame), p).await {
                        return false;
                    }
                }
            }
            pos = pos.max(txn.last_position());
        }
        if pos >= start {
            return true;
        }
    }
}

fn system_error(out: &Outbox, topic: &str, message: &str) {
    let name = topic.strip_prefix("realtime:").unwrap_or(topic);
    let payload = json!({"extension": "postgres_changes", "status": "error", "message": message, "channel": name});
    out.offer(Msg::new(None, None, topic, "system", payload));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_default_and_echo() {
        let b = Binding::parse(&json!({"event": "insert", "schema": "public", "table": "todos", "filter": "id=eq.1"})).expect("valid");
        assert_eq!((b.event.as_str(), b.schema.as_str(), b.table.as_str()), ("INSERT", "public", "todos"));
        assert_eq!(b.echo["id"], b.id);
        assert_eq!(b.echo["event"], "insert", "echoed verbatim");
        let all = Binding::parse(&json!({"event": "*", "schema": "public"})).expect("valid");
        assert_eq!(all.table, "*");
        assert!(Binding::parse(&json!({"event": "*", "schema": "public", "filter": "undefined"})).is_err());
        assert!(b.id > 0);
    }

    /// The frames before shared encoding: a `json!` map per socket.
    fn frame_as_before(txn: &Txn, i: usize, vis: Visibility, ids: &[u32], topic: &str, vsn: Vsn) -> String {
        let change = &txn.changes[i];
        let rel = txn.relation(change).expect("relation");
        let empty = Map::new();
        let image = match change.op {
            Op::Delete => change.old_record.as_ref().unwrap_or(&empty),
            _ => change.record.as_ref().unwrap_or(&empty),
        };
        let mut record = change.record.clone();
        if vis == Visibility::KeyOnly {
            record = Some(image.iter().filter(|(k, _)| rel.columns.iter().any(|c| c.key && &c.name == *k)).map(|(k, v)| (k.clone(), v.clone())).collect());
        }
        let columns: Vec<Value> = rel.columns.iter().map(|c| json!({"name": c.name, "type": c.type_name})).collect();
        let mut data = json!({
            "schema": rel.schema,
            "table": rel.table,
            "commit_timestamp": commit_timestamp(txn.commit_time_us),
            "type": match change.op { Op::Insert => "INSERT", Op::Update => "UPDATE", _ => "DELETE" },
            "columns": columns,
            "errors": null,
            "position": txn.position(i).to_string(),
        });
        if change.op != Op::Delete {
            data["record"] = Value::Object(record.unwrap_or_default());
        }
        if change.op != Op::Insert {
            data["old_record"] = Value::Object(change.old_record.clone().unwrap_or_default());
        }
        match Msg::new(None, None, topic, "postgres_changes", json!({"ids": ids, "data": data})).encode(vsn) {
            Some(super::super::frame::Wire::Text(t)) => t,
            other => panic!("text frame expected, got {other:?}"),
        }
    }

    #[test]
    fn shared_frames_are_byte_for_byte_the_per_socket_frames() {
        use crate::eventlog::{Lsn, RelationInfo};
        let row = |id: i64, owner: &str| json!({"id": id, "owner": owner, "note": "é \"q\" \\ \u{7}", "n": null, "tags": ["a", "b"]});
        let obj = |v: Value| v.as_object().cloned();
        let change = |op: Op, record: Option<Map<String, Value>>, old: Option<Map<String, Value>>| Change {
            op,
            rel: Some(0),
            record,
            old_record: old,
            unchanged_toast: vec![],
            message: None,
        };
        let col = |name: &str, type_name: &str, key: bool| ColumnInfo { name: name.into(), type_name: type_name.into(), type_oid: 0, key };
        let txn = Txn {
            lsn: Lsn(0x1_0000_0010),
            first: 3,
            xid: 9,
            commit_time_us: 1_700_000_000_123_456,
            relations: vec![RelationInfo {
                schema: "public".into(),
                table: "to\"dos".into(),
                columns: vec![col("id", "int8", true), col("owner", "uuid", false), col("note", "text", false), col("n", "int4", false), col("tags", "_text", false)],
            }],
            changes: vec![
                change(Op::Insert, obj(row(1, "a")), None),
                change(Op::Update, obj(row(1, "b")), obj(row(1, "a"))),
                change(Op::Delete, None, obj(row(1, "b"))),
                change(Op::Update, None, None),
            ],
        };
        for i in 0..txn.changes.len() {
            let c = &txn.changes[i];
            let rel = txn.relation(c).expect("relation");
            let empty = Map::new();
            let image = match c.op {
                Op::Delete => c.old_record.as_ref().unwrap_or(&empty),
                _ => c.record.as_ref().unwrap_or(&empty),
            };
            for vis in [Visibility::Full, Visibility::KeyOnly] {
                let data = data_json(&txn, c, rel, image, txn.position(i), vis);
                for ids in [vec![5], vec![41_234_567, 8]] {
                    let payload = change_payload(&data, &ids);
                    for topic in ["realtime:room", "realtime:a\"b"] {
                        for vsn in [Vsn::V1, Vsn::V2] {
                            assert_eq!(splice_change(vsn, topic, &payload), frame_as_before(&txn, i, vis, &ids, topic, vsn), "change {i} {vis:?} {vsn:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(commit_timestamp(1_700_000_000_123_456), "2023-11-14T22:13:20.123Z");
    }
}
