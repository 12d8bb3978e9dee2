//! Fan-out by group. Every channel whose `postgres_changes` bindings are the
//! same (the same entries in the same order, so the same binding ids) is a
//! member of one group, and the group holds one subscription to the hub.
//! For each change the group matches the bindings once, judges RLS once per
//! audience (role plus the claims the table's policies read), serialises
//! the payload once per visibility and splices it once per (topic,
//! version) ([`Judged`]); each member's socket is offered that frame,
//! shared (a reference count, not a copy), without waiting. Members are
//! kept sorted by audience (`Partition`), so a change costs one
//! judgement per audience and one queue push per socket that may see it.
//!
//! A member starts *held*: live frames wait in its bounded hold until it
//! goes live ([`Member::go_live`]), after the join reply and, for a join
//! with `config.since`, after [`super::pg_changes::replay`] served the log
//! up to the member's start. So there is no gap and no duplicate at the
//! seam, and no change before the join reply. A member whose socket queue
//! is full is held the same way while a task of its own feeds the queue,
//! so the group never waits for one socket; a socket that takes nothing
//! for [`super::outbox::SLOW_GRACE`], or whose hold overflows, is cut loose.

use std::collections::VecDeque;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use dashmap::DashMap;
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::Message;

use super::frame::Vsn;
use super::outbox::{Item, Offer, Outbox};
use super::pg_changes::{AudienceMemo, Binding, Judged, Visibility};
use crate::rls::policy_eval::TablePolicy;
use crate::changes::ChangesCore;
use crate::eventlog::{Position, Txn};
use crate::fanout::Subscription;
use crate::http::caller::Caller;

/// Frames a member may hold (as the hub's per-subscription queue): what
/// arrives live while it replays, or beyond its socket's queue in a burst.
pub const HOLD_MAX: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Registry = DashMap<String, Arc<Group>>;

/// Every live group, by its bindings.
#[derive(Debug, Default)]
pub struct Groups {
    map: Arc<Registry>,
}

/// One joined channel with `postgres_changes`.
#[derive(Debug)]
pub struct Member {
    /// `realtime:<name>`.
    pub topic: Arc<str>,
    /// The socket's serializer.
    pub vsn: Vsn,
    /// The socket's queue.
    pub out: Outbox,
    /// Who the channel acts as (replaced by `access_token`).
    caller: watch::Receiver<Arc<Caller>>,
    /// The caller's audience, remembered between changes.
    pub memo: AudienceMemo,
    /// Live changes at or before this position are not sent (replayed, or before the join).
    start: OnceLock<Position>,
    /// Set when the channel left: frames still in flight are not sent.
    left: AtomicBool,
    held: AtomicBool,
    hold: Mutex<VecDeque<(Position, Message)>>,
    hold_max: usize,
}

impl Member {
    /// A held member; `hold_max` frames may wait in its hold (while it
    /// replays, or when a burst overflows its socket's queue).
    pub fn new(topic: &str, vsn: Vsn, out: Outbox, caller: watch::Receiver<Arc<Caller>>, hold_max: usize) -> Arc<Member> {
        Arc::new(Member {
            topic: topic.into(),
            vsn,
            out,
            caller,
            memo: AudienceMemo::default(),
            start: OnceLock::new(),
            left: AtomicBool::new(false),
            held: AtomicBool::new(true),
            hold: Mutex::new(VecDeque::new()),
            hold_max: hold_max.max(1),
        })
    }

    /// The channel's caller now.
    pub fn caller(&self) -> Arc<Caller> {
        Arc::clone(&self.caller.borrow())
    }

    fn deliver(self: &Arc<Self>, frame: Message, pos: Position) {
        if self.held.load(Ordering::Acquire) {
            let mut hold = lock(&self.hold);
            // Re-checked under the lock: going live clears it there.
            if self.held.load(Ordering::Acquire) {
                if hold.len() >= self.hold_max {
                    drop(hold);
                    self.out.cut();
                } else {
                    hold.push_back((pos, frame));
                }
                return;
            }
        }
        if let Offer::Full(frame) = self.out.offer_change(&self.topic, frame, pos) {
            // A burst larger than the queue: hold what follows and let a
            // task feed the queue, waiting for room at most the grace per
            // frame; a socket that takes nothing for that long is cut loose.
            lock(&self.hold).push_back((pos, frame));
            self.held.store(true, Ordering::Release);
            let me = Arc::clone(self);
            tokio::spawn(async move {
                if !me.go_live().await {
                    me.out.cut();
                }
            });
        }
    }

    /// Sends what waited in the hold, then lets live frames through; false
    /// when the socket is gone or cut loose.
    pub async fn go_live(&self) -> bool {
        loop {
            let batch: Vec<(Position, Message)> = {
                let mut hold = lock(&self.hold);
                if hold.is_empty() {
                    self.held.store(false, Ordering::Release);
                    return true;
                }
                hold.drain(..).collect()
            };
            for (pos, frame) in batch {
                if !self.out.send_change(&self.topic, Item::Frame(frame), pos).await {
                    return false;
                }
            }
        }
    }
}

struct State {
    members: Vec<Arc<Member>>,
    /// The last change handed to members.
    position: Position,
    closed: bool,
}

/// Channels with the same bindings, and their subscription's task.
pub struct Group {
    key: String,
    bindings: Vec<Binding>,
    core: Arc<ChangesCore>,
    state: Mutex<State>,
    /// Bumped when a member joins or leaves or a caller changes: the
    /// task's partitions by audience are then rebuilt.
    version: AtomicU64,
    stop: Notify,
    registry: Weak<Registry>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("key", &self.key).finish()
    }
}

/// The group key: the bindings as the client sent them, in order.
fn group_key(bindings: &[Binding]) -> String {
    let specs: Vec<&serde_json::Value> = bindings.iter().map(|b| &b.echo).collect();
    serde_json::to_string(&specs).unwrap_or_default()
}

impl Groups {
    /// Adds `member` to the group of `bindings` (started if there is none);
    /// returns the group and the position after which the member gets live
    /// changes (replay `(since, start]` to resume without a gap).
    pub fn join(&self, core: &Arc<ChangesCore>, bindings: &[Binding], member: &Arc<Member>) -> (Arc<Group>, Position) {
        let key = group_key(bindings);
        loop {
            let group = Arc::clone(self.map.entry(key.clone()).or_insert_with(|| Group::start(core, &self.map, key.clone(), bindings)).value());
            {
                let mut st = lock(&group.state);
                if !st.closed {
                    // Changes the hub dispatched but this group has not
                    // handed out yet are skipped for the newcomer (they are
                    // in the log, for a replay): it starts where the hub is.
                    let start = st.position.max(core.hub.position());
                    let _ = member.start.set(start);
                    st.members.push(Arc::clone(member));
                    group.version.fetch_add(1, Ordering::AcqRel);
                    return (Arc::clone(&group), start);
                }
            }
            // Closed by its last member meanwhile: start another.
            self.map.remove_if(&key, |_, g| Arc::ptr_eq(g, &group));
        }
    }

    /// Removes `member`; the last one out stops the group.
    pub fn leave(&self, group: &Arc<Group>, member: &Arc<Member>) {
        member.left.store(true, Ordering::Release);
        let empty = {
            let mut st = lock(&group.state);
            st.members.retain(|m| !Arc::ptr_eq(m, member));
            group.version.fetch_add(1, Ordering::AcqRel);
            st.closed |= st.members.is_empty();
            st.closed
        };
        if empty {
            group.stop.notify_one();
            self.map.remove_if(&group.key, |_, g| Arc::ptr_eq(g, group));
        }
    }

    /// A member's caller changed (`access_token`): its audience is judged anew.
    pub fn caller_changed(&self, group: &Group) {
        group.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Live groups.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Group {
    fn start(core: &Arc<ChangesCore>, registry: &Arc<Registry>, key: String, bindings: &[Binding]) -> Arc<Group> {
        let keys: Vec<(String, String)> = bindings.iter().map(|b| (b.schema.clone(), b.table.clone())).collect();
        let sub = core.hub.subscribe(keys);
        let group = Arc::new(Group {
            key,
            bindings: bindings.to_vec(),
            core: Arc::clone(core),
            state: Mutex::new(State { members: Vec::new(), position: sub.start, closed: false }),
            version: AtomicU64::new(0),
            stop: Notify::new(),
            registry: Arc::downgrade(registry),
        });
        tokio::spawn(Arc::clone(&group).run(sub));
        group
    }

    async fn run(self: Arc<Self>, sub: Subscription) {
        let mut partitions: HashMap<(String, String), Partition> = HashMap::new();
        loop {
            let next = tokio::select! {
                d = sub.rx.recv_async() => d,
                () = self.stop.notified() => break,
            };
            let Ok(d) = next else { break };
            if sub.cut_loose().is_some() {
                break;
            }
            self.deliver(&d.txn, d.index as usize, &mut partitions).await;
        }
        let members = {
            let mut st = lock(&self.state);
            st.closed = true;
            std::mem::take(&mut st.members)
        };
        if sub.cut_loose().is_some() {
            // The hub dropped the group's subscription (it fell behind): each
            // socket is cut loose and told where to resume (its outbox marks).
            tracing::warn!(group = %self.key, members = members.len(), "realtime group fell behind; its sockets are cut loose");
            for m in &members {
                m.out.cut();
            }
        }
        if let Some(registry) = self.registry.upgrade() {
            registry.remove_if(&self.key, |_, g| Arc::ptr_eq(g, &self));
        }
    }

    async fn deliver(&self, txn: &Txn, i: usize, partitions: &mut HashMap<(String, String), Partition>) {
        let pos = txn.position(i);
        // Members joining after this start after `pos` (see `join`).
        let version = {
            let mut st = lock(&self.state);
            st.position = pos;
            self.version.load(Ordering::Acquire)
        };
        let Some(mut judged) = Judged::new(&self.core, &self.bindings, txn, i) else {
            return;
        };
        let (schema, table) = judged.table();
        let key = (schema.to_owned(), table.to_owned());
        let fresh = match partitions.get(&key) {
            Some(p) => p.version == version && p.policies_unchanged(&self.core, schema, table).await,
            None => false,
        };
        if !fresh {
            let p = Partition::build(&self.core, &self.state, version, schema, table).await;
            partitions.insert(key.clone(), p);
        }
        let Some(part) = partitions.get(&key) else { return };
        for audience in &part.audiences {
            let vis = judged.judge(&audience.caller).await;
            if vis == Visibility::Hidden {
                continue;
            }
            for m in &audience.members {
                if m.start.get().is_none_or(|s| pos <= *s) || m.left.load(Ordering::Acquire) || m.out.is_cut() {
                    continue;
                }
                if let Some(frame) = judged.frame(vis, &m.topic, m.vsn) {
                    m.deliver(frame, pos);
                }
            }
        }
    }
}

/// A group's members sorted by audience for one table: each audience is
/// judged once per change, and only the members of audiences that may see
/// it are visited. Rebuilt when members or callers change ([`Group`]'s
/// version) or the table's policies are reloaded.
struct Partition {
    version: u64,
    /// The policies each role's audiences were computed under, with a caller of that role.
    policies: Vec<(Arc<Caller>, TablePolicy)>,
    audiences: Vec<Audience>,
}

struct Audience {
    /// One caller of the audience (all of them get its verdicts).
    caller: Arc<Caller>,
    members: Vec<Arc<Member>>,
}

impl Partition {
    async fn build(core: &ChangesCore, state: &Mutex<State>, version: u64, schema: &str, table: &str) -> Partition {
        let members = lock(state).members.clone();
        let mut policies: Vec<(Arc<Caller>, TablePolicy)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut audiences: Vec<Audience> = Vec::new();
        for m in members {
            let caller = m.caller();
            let key = if caller.is_service_role() {
                // Sees every row: one audience of its own.
                "\u{0}service_role".to_owned()
            } else {
                let policy = match policies.iter().find(|(c, _)| c.role == caller.role) {
                    Some((_, p)) => Some(p.clone()),
                    None => match core.evaluator.table_policy(&caller, schema, table).await {
                        Ok(p) => {
                            policies.push((Arc::clone(&caller), p.clone()));
                            Some(p)
                        }
                        // Policies that cannot be read: nothing is visible (an audience of one, hidden).
                        Err(_) => None,
                    },
                };
                match policy {
                    Some(p) => p.audience(&caller),
                    None => format!("\u{0}unreadable|{}|{}", caller.role, caller.claims),
                }
            };
            match index.get(&key) {
                Some(&n) => audiences[n].members.push(m),
                None => {
                    index.insert(key, audiences.len());
                    audiences.push(Audience { caller, members: vec![m] });
                }
            }
        }
        Partition { version, policies, audiences }
    }

    async fn policies_unchanged(&self, core: &ChangesCore, schema: &str, table: &str) -> bool {
        for (caller, policy) in &self.policies {
            match core.evaluator.table_policy(caller, schema, table).await {
                Ok(now) if now.same(policy) => {}
                _ => return false,
            }
        }
        true
    }
}
