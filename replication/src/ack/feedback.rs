//! What a standby status update says and when one is sent.
//!
//! Rules (see the module docs of [`crate::ack`] and docs/replication.md §2.8):
//! 1. flush = the event log's durable LSN — never a position that is merely
//!    received or in the consumer's queue.
//! 2. Idle rule: when no transaction is open, everything delivered is
//!    durable, and a keepalive arrived since the last XLogData, flush may be
//!    that keepalive's WAL end.
//! 3. Positions never go backwards: each is clamped to what was last sent.
//! 4. Reply at once when the server sets reply-requested.
//! 5. Send a prompt update when flush advanced (throttled to
//!    `min_interval`), and at least every `status_interval` even when nothing
//!    changed (a slow consumer must not make the walsender time out).
//!
//! write = the highest WAL position received (monitoring only); apply =
//! flush, as supabase/etl reports.

use std::time::{Duration, Instant};

use crate::Lsn;

/// Timing of status updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackPolicy {
    /// Longest time between two updates, even with nothing new. Keep it at
    /// or below half of the server's `wal_sender_timeout`.
    pub status_interval: Duration,
    /// Shortest time between two updates, except when the server asks.
    pub min_interval: Duration,
}

impl Default for FeedbackPolicy {
    /// 10 s heartbeat (PostgreSQL's default `wal_sender_timeout` is 60 s),
    /// 100 ms throttle.
    fn default() -> Self {
        FeedbackPolicy { status_interval: Duration::from_secs(10), min_interval: Duration::from_millis(100) }
    }
}

impl FeedbackPolicy {
    /// A policy for a server whose `wal_sender_timeout` is `timeout`: the
    /// heartbeat is half of it (at most 10 s, at least 100 ms). A zero
    /// timeout (disabled) gives the default.
    pub fn for_wal_sender_timeout(timeout: Duration) -> Self {
        let mut p = Self::default();
        if !timeout.is_zero() {
            p.status_interval = (timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
            p.min_interval = p.min_interval.min(p.status_interval);
        }
        p
    }
}

/// What the stream knows when it decides on feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckState {
    /// The highest LSN the event log reported as durably stored.
    pub durable: Lsn,
    /// The highest WAL position received from the server (XLogData or
    /// keepalive WAL end).
    pub received: Lsn,
    /// The position of the last event handed downstream (a transaction's
    /// commit end LSN, a non-transactional message's LSN), including events
    /// still queued for the consumer.
    pub delivered: Lsn,
    /// A transaction is open (Begin seen without Commit, or streamed chunks
    /// buffered).
    pub txn_open: bool,
    /// WAL end of a keepalive received while no transaction was open, with
    /// no XLogData since. `None` once any XLogData arrives.
    pub idle_keepalive: Option<Lsn>,
}

impl AckState {
    /// True when nothing received is waiting to be persisted and no
    /// transaction is open.
    pub fn is_idle(&self) -> bool {
        !self.txn_open && self.durable >= self.delivered
    }
}

/// The three positions of a standby status update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusPositions {
    /// Received.
    pub write: Lsn,
    /// Durably stored (advances the slot).
    pub flush: Lsn,
    /// Applied (= flush).
    pub apply: Lsn,
}

/// The last update sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentStatus {
    /// Its positions.
    pub positions: StatusPositions,
    /// When it was sent.
    pub at: Instant,
}

/// The flush position allowed by rules 1 and 2 (before the monotonic clamp).
pub fn flush_position(s: &AckState) -> Lsn {
    match s.idle_keepalive {
        Some(k) if s.is_idle() => s.durable.max(k),
        _ => s.durable,
    }
}

/// The positions to report, clamped so none goes below what was last sent.
pub fn positions(s: &AckState, last: Option<&StatusPositions>) -> StatusPositions {
    let floor = last.copied().unwrap_or_default();
    let flush = flush_position(s).max(floor.flush);
    let write = s.received.max(flush).max(floor.write);
    StatusPositions { write, flush, apply: flush.max(floor.apply) }
}

/// Decides whether to send a status update now, and with which positions.
///
/// `last` is the previous update of this session (the stream seeds it with
/// its start LSN so that nothing below the start is ever reported).
pub fn decide(
    policy: &FeedbackPolicy,
    s: &AckState,
    last: Option<&SentStatus>,
    now: Instant,
    reply_requested: bool,
) -> Option<StatusPositions> {
    let p = positions(s, last.map(|l| &l.positions));
    let Some(last) = last else { return Some(p) };
    if reply_requested {
        return Some(p);
    }
    let since = now.saturating_duration_since(last.at);
    if since >= policy.status_interval {
        return Some(p);
    }
    if p.flush > last.positions.flush && since >= policy.min_interval {
        return Some(p);
    }
    None
}

/// When [`decide`] will next want to send without any new input: after
/// `min_interval` if flush can advance, otherwise after `status_interval`.
/// `None` when it wants to send now (nothing was sent yet).
pub fn next_deadline(policy: &FeedbackPolicy, s: &AckState, last: Option<&SentStatus>) -> Option<Instant> {
    let last = last?;
    let p = positions(s, Some(&last.positions));
    let wait = if p.flush > last.positions.flush { policy.min_interval } else { policy.status_interval };
    Some(last.at + wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: [u64; 4] = [0, 10, 20, 30];

    fn all_states() -> Vec<AckState> {
        let mut out = Vec::new();
        for durable in VALUES {
            for delivered in VALUES {
                for received in VALUES {
                    for txn_open in [false, true] {
                        for k in [None, Some(0), Some(10), Some(20), Some(30), Some(40)] {
                            out.push(AckState {
                                durable: Lsn(durable),
                                received: Lsn(received),
                                delivered: Lsn(delivered),
                                txn_open,
                                idle_keepalive: k.map(Lsn),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    fn lasts(at: Instant) -> Vec<Option<SentStatus>> {
        let mut out = vec![None];
        for f in VALUES {
            for w in VALUES {
                if w >= f {
                    out.push(Some(SentStatus {
                        positions: StatusPositions { write: Lsn(w), flush: Lsn(f), apply: Lsn(f) },
                        at,
                    }));
                }
            }
        }
        out
    }

    /// Every combination of a small grid: the invariants hold for each.
    #[test]
    fn invariants_hold_exhaustively() {
        let policy = FeedbackPolicy::default();
        let t0 = Instant::now();
        let mut checked = 0;
        for s in all_states() {
            for last in lasts(t0) {
                let floor = last.map(|l| l.positions).unwrap_or_default();
                let p = positions(&s, last.as_ref().map(|l| &l.positions));
                // Monotonic.
                assert!(p.flush >= floor.flush && p.write >= floor.write && p.apply >= floor.apply, "{s:?} {last:?}");
                // write >= flush, apply == flush.
                assert!(p.write >= p.flush);
                assert_eq!(p.apply, p.flush.max(floor.apply));
                // Never ahead of durable, except by the idle rule.
                let idle = !s.txn_open && s.durable >= s.delivered;
                let allowed = match s.idle_keepalive {
                    Some(k) if idle => s.durable.max(k),
                    _ => s.durable,
                };
                assert!(p.flush <= allowed.max(floor.flush), "{s:?} {last:?} -> {p:?}");
                // Inside a transaction, the keepalive never counts.
                if s.txn_open || s.durable < s.delivered {
                    assert_eq!(p.flush, s.durable.max(floor.flush), "{s:?} {last:?}");
                }
                // The server asking always gets an answer, immediately.
                for dt in [0, 50, 150, 10_000, 20_000] {
                    let now = t0 + Duration::from_millis(dt);
                    assert!(decide(&policy, &s, last.as_ref(), now, true).is_some());
                    let d = decide(&policy, &s, last.as_ref(), now, false);
                    match &last {
                        None => assert!(d.is_some()),
                        Some(l) => {
                            let since = Duration::from_millis(dt);
                            if since >= policy.status_interval {
                                assert!(d.is_some(), "heartbeat due");
                            } else if since < policy.min_interval {
                                assert!(d.is_none(), "throttled");
                            } else {
                                assert_eq!(d.is_some(), p.flush > l.positions.flush);
                            }
                        }
                    }
                    if let Some(d) = d {
                        assert_eq!(d, p);
                    }
                }
                checked += 1;
            }
        }
        assert!(checked >= 8_000, "{checked}");
    }

    #[test]
    fn flush_follows_durable_not_received() {
        let s = AckState { durable: Lsn(100), received: Lsn(500), delivered: Lsn(300), txn_open: false, idle_keepalive: Some(Lsn(600)) };
        let p = positions(&s, None);
        assert_eq!(p.flush, Lsn(100), "a delivered transaction not yet durable blocks the idle rule");
        assert_eq!(p.write, Lsn(500));
    }

    #[test]
    fn idle_rule_uses_keepalive_only_when_idle() {
        let mut s = AckState { durable: Lsn(300), received: Lsn(600), delivered: Lsn(300), txn_open: false, idle_keepalive: Some(Lsn(600)) };
        assert_eq!(flush_position(&s), Lsn(600));
        s.txn_open = true;
        assert_eq!(flush_position(&s), Lsn(300));
        s.txn_open = false;
        s.idle_keepalive = None;
        assert_eq!(flush_position(&s), Lsn(300));
        // A keepalive older than the durable position never lowers flush.
        s.idle_keepalive = Some(Lsn(100));
        assert_eq!(flush_position(&s), Lsn(300));
    }

    #[test]
    fn heartbeat_is_sent_even_when_nothing_changes() {
        let policy = FeedbackPolicy::default();
        let t0 = Instant::now();
        let s = AckState { durable: Lsn(5), ..AckState::default() };
        let last = SentStatus { positions: positions(&s, None), at: t0 };
        assert_eq!(decide(&policy, &s, Some(&last), t0 + Duration::from_secs(1), false), None);
        assert_eq!(next_deadline(&policy, &s, Some(&last)), Some(t0 + policy.status_interval));
        let d = decide(&policy, &s, Some(&last), t0 + policy.status_interval, false);
        assert_eq!(d, Some(last.positions));
    }

    #[test]
    fn durable_advance_is_sent_after_the_throttle() {
        let policy = FeedbackPolicy::default();
        let t0 = Instant::now();
        let mut s = AckState { durable: Lsn(5), ..AckState::default() };
        let last = SentStatus { positions: positions(&s, None), at: t0 };
        s.durable = Lsn(9);
        assert_eq!(next_deadline(&policy, &s, Some(&last)), Some(t0 + policy.min_interval));
        assert_eq!(decide(&policy, &s, Some(&last), t0 + Duration::from_millis(10), false), None);
        let d = decide(&policy, &s, Some(&last), t0 + policy.min_interval, false);
        assert_eq!(d.map(|p| p.flush), Some(Lsn(9)));
    }

    #[test]
    fn policy_from_wal_sender_timeout() {
        assert_eq!(FeedbackPolicy::for_wal_sender_timeout(Duration::from_secs(60)).status_interval, Duration::from_secs(10));
        assert_eq!(FeedbackPolicy::for_wal_sender_timeout(Duration::from_secs(4)).status_interval, Duration::from_secs(2));
        assert_eq!(FeedbackPolicy::for_wal_sender_timeout(Duration::ZERO), FeedbackPolicy::default());
        let tiny = FeedbackPolicy::for_wal_sender_timeout(Duration::from_millis(50));
        assert_eq!(tiny.status_interval, Duration::from_millis(100));
        assert!(tiny.min_interval <= tiny.status_interval);
    }
}
