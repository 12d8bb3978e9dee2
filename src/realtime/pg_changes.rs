//! `postgres_changes` for one channel: the bindings of its join, the live
//! subscription to the fan-out hub (with replay from the event log when the
//! join carries `config.since`), filtering, RLS, and the payload realtime-js
//! expects.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::filter::Filter;
use super::frame::Msg;
use super::outbox::Outbox;
use crate::changes::ChangesCore;
use crate::eventlog::{Op, Position, Txn};
use crate::fanout::Subscription;
use crate::http::caller::Caller;
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

/// What a forwarder needs.
pub struct Forwarder {
    /// The change pipeline.
    pub core: Arc<ChangesCore>,
    /// The channel's bindings.
    pub bindings: Vec<Binding>,
    /// The channel's current caller (updated by `access_token`).
    pub caller: watch::Receiver<Caller>,
    /// `realtime:<name>`.
    pub topic: String,
    /// The socket's outgoing queue (it records the channel's resume position).
    pub out: Outbox,
    /// Replay after this position before going live.
    pub since: Option<Position>,
}

impl Forwarder {
    /// Runs until the socket goes away or falls behind (its queue fills, or
    /// the hub cuts the subscription loose): then the socket is cut loose
    /// and the outbox tells the client where to resume.
    pub async fn run(self, sub: Subscription) {
        if let Some(since) = self.since {
            // Replay (since, sub.start] from the log, then continue live: no gap, no duplicate.
            let mut pos = since;
            loop {
                let txns = match self.core.log.read_after(pos, 4096).await {
                    Ok(t) => t,
                    Err(e) => {
                        self.system_error(&format!("cannot replay from {since}: {e}; refetch and rejoin without since"));
                        return;
                    }
                };
                if txns.is_empty() {
                    break;
                }
                for txn in txns {
                    for i in 0..txn.changes.len() {
                        let p = txn.position(i);
                        if p <= pos || p > sub.start {
                            continue;
                        }
                        if !self.deliver(&txn, i).await {
                            return;
                        }
                    }
                    pos = pos.max(txn.last_position());
                }
                if pos >= sub.start {
                    break;
                }
            }
        }
        while let Ok(d) = sub.rx.recv_async().await {
            if sub.cut_loose().is_some() {
                break;
            }
            if !self.deliver(&d.txn, d.index as usize).await {
                return;
            }
        }
        if sub.cut_loose().is_some() {
            // The hub dropped this subscription (its queue filled): the
            // outbox's mark for this channel is where the client resumes.
            self.out.cut();
        }
    }

    fn system_error(&self, message: &str) {
        let name = self.topic.strip_prefix("realtime:").unwrap_or(&self.topic);
        let payload = json!({"extension": "postgres_changes", "status": "error", "message": message, "channel": name});
        self.out.offer(Msg::new(None, None, &self.topic, "system", payload));
    }

    /// Sends change `i` if any binding matches and the caller may see it;
    /// false when the socket is gone or cut loose.
    async fn deliver(&self, txn: &Txn, i: usize) -> bool {
        let Some(change) = txn.changes.get(i) else {
            return true;
        };
        let Some(rel) = txn.relation(change) else {
            return true;
        };
        let empty = Map::new();
        let image = match change.op {
            Op::Delete => change.old_record.as_ref().unwrap_or(&empty),
            Op::Insert | Op::Update => change.record.as_ref().unwrap_or(&empty),
            _ => return true,
        };
        let ids: Vec<u32> = self.bindings.iter().filter(|b| b.matches(&rel.schema, &rel.table, change.op, image)).map(|b| b.id).collect();
        if ids.is_empty() {
            return true;
        }
        let caller = self.caller.borrow().clone();
        let mut record = change.record.clone();
        if !caller.is_service_role() {
            let pos = txn.position(i);
            let visible = |row: Map<String, Value>, old: bool| {
                let caller = caller.clone();
                async move { self.core.evaluator.verdict_at(&caller, &rel.schema, &rel.table, pos, old, &row).await == Verdict::Visible }
            };
            match change.op {
                Op::Update => {
                    if !visible(image.clone(), false).await {
                        // A row that moved out of view: only a subscriber who saw it learns, by key.
                        let old = change.old_record.clone().unwrap_or_default();
                        if change.old_record.is_none() || !visible(old, true).await {
                            return true;
                        }
                        record = Some(
                            image
                                .iter()
                                .filter(|(k, _)| rel.columns.iter().any(|c| c.key && &c.name == *k))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        );
                    }
                }
                _ => {
                    if !visible(image.clone(), change.op == Op::Delete).await {
                        return true;
                    }
                }
            }
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
        let msg = Msg::new(None, None, &self.topic, "postgres_changes", json!({"ids": ids, "data": data}));
        self.out.send_change(&self.topic, msg, txn.position(i)).await
    }
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

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(commit_timestamp(1_700_000_000_123_456), "2023-11-14T22:13:20.123Z");
    }
}
