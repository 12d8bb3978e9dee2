//! Fan-out: live delivery of the log's changes to many subscribers.
//!
//! One dispatcher task follows the event log in order (from the in-memory
//! tail) and hands each durable transaction to every shard over a flume
//! channel. Each shard is a task owning its subscribers, registered per
//! table in a `DashMap` (keys: `schema.table`, `schema.*`, `*.*`). Every
//! subscriber has a bounded queue; a subscriber whose queue is full is cut
//! loose: removed, its channel closed, and told the position after which it
//! must resume (from the log) — it is never silently skipped, never blocks
//! the others, and never grows memory.
//!
//! Subscribing returns the position the live feed starts after, so a client
//! resuming from an older position replays `(since, start]` from the log and
//! then continues live with no gap and no duplicate at the seam.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;

use crate::eventlog::{EventLog, Position, Txn};

/// A table key: `(schema, table)`, where either may be `*`.
pub type TableKey = (String, String);

/// One change delivered to a subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The transaction.
    pub txn: Arc<Txn>,
    /// Index of the change in it.
    pub index: u32,
}

impl Delivery {
    /// The change's position.
    pub fn position(&self) -> Position {
        Position::new(self.txn.lsn, self.index)
    }
}

struct Slot {
    tx: flume::Sender<Delivery>,
    /// Deliver only positions after this.
    start: Position,
    /// Set when the subscriber was cut loose: resume after this position.
    cut: Arc<OnceLock<Position>>,
    /// Last position enqueued.
    last: Mutex<Position>,
}

/// Subscribers of one shard, by table key.
type Registry = DashMap<TableKey, Vec<(u64, Arc<Slot>)>>;

struct Shard {
    tx: flume::Sender<Arc<Txn>>,
    subs: Arc<Registry>,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Changes enqueued to subscribers.
    pub delivered: AtomicU64,
    /// Subscribers cut loose for falling behind.
    pub cut_loose: AtomicU64,
    /// Live subscriptions.
    pub subscribers: AtomicU64,
}

/// The fan-out hub.
pub struct Hub {
    shards: Vec<Shard>,
    next_id: AtomicU64,
    position: Arc<Mutex<Position>>,
    queue: usize,
    /// Counters.
    pub stats: Arc<HubStats>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("shards", &self.shards.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// A live subscription. Dropping it unsubscribes.
pub struct Subscription {
    /// Deliveries, in log order.
    pub rx: flume::Receiver<Delivery>,
    /// Changes after this position are delivered live.
    pub start: Position,
    cut: Arc<OnceLock<Position>>,
    id: u64,
    keys: Vec<TableKey>,
    subs: Arc<Registry>,
    stats: Arc<HubStats>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("start", &self.start)
            .finish()
    }
}

impl Subscription {
    /// If the subscriber was cut loose: the position to resume after.
    pub fn cut_loose(&self) -> Option<Position> {
        self.cut.get().copied()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for k in &self.keys {
            if let Some(mut v) = self.subs.get_mut(k) {
                v.retain(|(id, _)| *id != self.id);
            }
        }
        self.subs.retain(|_, v| !v.is_empty());
        self.stats.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    /// Starts the dispatcher and `shards` shard tasks following `log` from its head.
    pub fn start(log: Arc<dyn EventLog>, shards: usize, queue: usize) -> Arc<Hub> {
        let stats = Arc::new(HubStats::default());
        let mut list = Vec::new();
        for _ in 0..shards.max(1) {
            let (tx, rx) = flume::bounded::<Arc<Txn>>(1024);
            let subs: Arc<Registry> = Arc::new(DashMap::new());
            tokio::spawn(shard_loop(rx, Arc::clone(&subs), Arc::clone(&stats)));
            list.push(Shard { tx, subs });
        }
        let head = log
            .bounds()
            .head
            .unwrap_or(Position::end_of(log.bounds().durable));
        let position = Arc::new(Mutex::new(head));
        let senders: Vec<flume::Sender<Arc<Txn>>> = list.iter().map(|s| s.tx.clone()).collect();
        let registries: Vec<Arc<Registry>> = list.iter().map(|s| Arc::clone(&s.subs)).collect();
        tokio::spawn(dispatch(log, senders, registries, Arc::clone(&position)));
        Arc::new(Hub {
            shards: list,
            next_id: AtomicU64::new(1),
            position,
            queue,
            stats,
        })
    }

    /// The position of the last transaction dispatched to the shards.
    pub fn position(&self) -> Position {
        self.position.lock().map(|p| *p).unwrap_or(Position::START)
    }

    /// Subscribes to changes of `keys` (`*` as schema or table matches all).
    pub fn subscribe(&self, mut keys: Vec<TableKey>) -> Subscription {
        keys.sort();
        keys.dedup();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shard = &self.shards[(id as usize) % self.shards.len()];
        let (tx, rx) = flume::bounded(self.queue);
        let cut = Arc::new(OnceLock::new());
        // Registration and reading the dispatch position happen under the
        // position lock, so the live feed starts exactly after `start`.
        let start = match self.position.lock() {
            Ok(p) => {
                let slot = Arc::new(Slot {
                    tx,
                    start: *p,
                    cut: Arc::clone(&cut),
                    last: Mutex::new(*p),
                });
                for k in &keys {
                    shard
                        .subs
                        .entry(k.clone())
                        .or_default()
                        .push((id, Arc::clone(&slot)));
                }
                *p
            }
            Err(_) => Position::START,
        };
        self.stats.subscribers.fetch_add(1, Ordering::Relaxed);
        Subscription {
            rx,
            start,
            cut,
            id,
            keys,
            subs: Arc::clone(&shard.subs),
            stats: Arc::clone(&self.stats),
        }
    }
}

/// Changes the dispatcher reads from the log per step.
const READ_CHANGES: usize = 8192;

/// With nobody subscribed, moves the dispatch position to the log's head
/// without reading (true when it did). Checked under the position lock,
/// where subscribers register, so none can miss a change.
fn skip_when_unwatched(
    log: &dyn EventLog,
    registries: &[Arc<Registry>],
    position: &Mutex<Position>,
    pos: &mut Position,
) -> bool {
    let Ok(mut p) = position.lock() else {
        return false;
    };
    if !registries.iter().all(|r| r.is_empty()) {
        return false;
    }
    if let Some(head) = log.bounds().head {
        *p = (*p).max(head);
    }
    *pos = *p;
    true
}

async fn dispatch(
    log: Arc<dyn EventLog>,
    shards: Vec<flume::Sender<Arc<Txn>>>,
    registries: Vec<Arc<Registry>>,
    position: Arc<Mutex<Position>>,
) {
    let mut watch = log.watch();
    let mut pos = position.lock().map(|p| *p).unwrap_or(Position::START);
    loop {
        if skip_when_unwatched(log.as_ref(), &registries, &position, &mut pos) {
            if watch.changed().await.is_err() {
                return;
            }
            continue;
        }
        let txns = match log.read_after(pos, READ_CHANGES).await {
            Ok(t) => t,
            Err(crate::eventlog::LogError::Expired { oldest, .. }) => {
                pos = oldest;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "fan-out dispatcher cannot read the log");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if txns.is_empty() {
            if watch.changed().await.is_err() {
                return;
            }
            continue;
        }
        for txn in txns {
            // Publish the position first, then hand the transaction over: a
            // subscriber registered before this point gets it live; one
            // registered after starts after it (shards skip positions at or
            // before a subscriber's start) and replays it from the log.
            let last = txn.last_position();
            match position.lock() {
                Ok(mut p) => *p = last,
                Err(_) => return,
            }
            pos = last;
            for s in &shards {
                // Shards never block on subscribers, so this wait is short.
                if s.send_async(Arc::clone(&txn)).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn shard_loop(rx: flume::Receiver<Arc<Txn>>, subs: Arc<Registry>, stats: Arc<HubStats>) {
    let star: String = "*".into();
    while let Ok(txn) = rx.recv_async().await {
        if subs.is_empty() {
            continue;
        }
        for (i, change) in txn.changes.iter().enumerate() {
            let keys = match txn.relation(change) {
                // Messages and gaps go to `*.*` subscribers.
                None => vec![(star.clone(), star.clone())],
                Some(rel) => vec![
                    (rel.schema.clone(), rel.table.clone()),
                    (rel.schema.clone(), star.clone()),
                    (star.clone(), star.clone()),
                ],
            };
            deliver(&subs, &keys, &txn, i, &stats);
        }
    }
}

/// Offers change `i` once to every subscriber registered under any of `keys`.
fn deliver(subs: &Registry, keys: &[TableKey], txn: &Arc<Txn>, i: usize, stats: &HubStats) {
    let mut cut_any = false;
    let mut seen: Vec<u64> = Vec::new();
    for key in keys {
        let Some(list) = subs.get(key) else { continue };
        for (id, slot) in list.iter() {
            if slot.cut.get().is_some() || seen.contains(id) {
                continue;
            }
            seen.push(*id);
            let d = Delivery {
                txn: Arc::clone(txn),
                index: u32::try_from(i).unwrap_or(u32::MAX),
            };
            let pos = d.position();
            if pos <= slot.start {
                continue;
            }
            match slot.tx.try_send(d) {
                Ok(()) => {
                    if let Ok(mut l) = slot.last.lock() {
                        *l = pos;
                    }
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(flume::TrySendError::Full(_)) => {
                    let resume = slot.last.lock().map(|l| *l).unwrap_or(Position::START);
                    let _ = slot.cut.set(resume);
                    stats.cut_loose.fetch_add(1, Ordering::Relaxed);
                    cut_any = true;
                }
                Err(flume::TrySendError::Disconnected(_)) => cut_any = true,
            }
        }
    }
    if cut_any {
        for key in keys {
            if let Some(mut list) = subs.get_mut(key) {
                // Dropping the sender closes the subscriber's channel.
                list.retain(|(_, s)| s.cut.get().is_none() && !s.tx.is_disconnected());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::{Change, ColumnInfo, FileLog, LogOptions, Lsn, Op, RelationInfo};

    fn txn(lsn: u64, table: &str, n: usize) -> Txn {
        Txn {
            lsn: Lsn(lsn),
            first: 0,
            xid: 1,
            commit_time_us: 0,
            relations: vec![RelationInfo {
                schema: "public".into(),
                table: table.into(),
                columns: vec![ColumnInfo {
                    name: "id".into(),
                    type_name: "int4".into(),
                    type_oid: 23,
                    key: true,
                }],
            }],
            changes: (0..n)
                .map(|_| Change {
                    op: Op::Insert,
                    rel: Some(0),
                    record: None,
                    old_record: None,
                    unchanged_toast: vec![],
                    message: None,
                })
                .collect(),
        }
    }

    fn log(dir: &std::path::Path) -> Arc<dyn EventLog> {
        Arc::new(
            FileLog::open(LogOptions {
                fsync: false,
                ..LogOptions::new(dir.to_owned())
            })
            .expect("open"),
        )
    }

    #[tokio::test]
    async fn delivers_by_table_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let hub = Hub::start(Arc::clone(&log), 4, 100);
        let todos = hub.subscribe(vec![("public".into(), "todos".into())]);
        let all = hub.subscribe(vec![("*".into(), "*".into())]);
        log.append(vec![
            txn(10, "todos", 2),
            txn(20, "other", 1),
            txn(30, "todos", 1),
        ])
        .await
        .expect("append");
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(todos.rx.recv_async().await.expect("delivery").position());
        }
        assert_eq!(
            got,
            vec![
                Position::new(Lsn(10), 0),
                Position::new(Lsn(10), 1),
                Position::new(Lsn(30), 0)
            ]
        );
        let mut n = 0;
        while all.rx.try_recv().is_ok() || n < 4 {
            n += 1;
            if n > 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(todos.rx.try_recv().is_err(), "nothing more for todos");
    }

    #[tokio::test]
    async fn slow_subscriber_is_cut_loose_with_its_resume_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let hub = Hub::start(Arc::clone(&log), 2, 3);
        let slow = hub.subscribe(vec![("public".into(), "t".into())]);
        let fast = hub.subscribe(vec![("public".into(), "t".into())]);
        // The fast subscriber takes each change before the next is appended
        // (a burst larger than its queue would cut it loose too, by design).
        let mut got = Vec::new();
        for i in 1..=10u64 {
            log.append(vec![txn(i * 10, "t", 1)]).await.expect("append");
            let next = fast.rx.recv_async();
            let d = tokio::time::timeout(std::time::Duration::from_secs(10), next)
                .await
                .expect("the fast subscriber is served in time")
                .expect("the fast subscriber stays subscribed");
            got.push(d.position().lsn.0);
        }
        assert_eq!(
            got,
            (1..=10u64).map(|i| i * 10).collect::<Vec<_>>(),
            "the fast subscriber got everything, in order"
        );
        assert_eq!(fast.cut_loose(), None);
        // The slow subscriber sits on another shard: wait until it has seen the fourth change.
        for _ in 0..1000 {
            if slow.cut_loose().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            slow.cut_loose(),
            Some(Position::new(Lsn(30), 0)),
            "resume after the last queued change"
        );
        let queued: Vec<Position> = slow.rx.drain().map(|d| d.position()).collect();
        assert_eq!(queued.len(), 3);
        assert_eq!(hub.stats.cut_loose.load(Ordering::Relaxed), 1);
    }
}
