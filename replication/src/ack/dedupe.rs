//! [`should_skip`]: dropping re-delivered transactions after a reconnect.
//!
//! Delivery from a slot is at-least-once: `confirmed_flush_lsn` is persisted
//! only at checkpoints, and a restart resumes from it (or from the start LSN
//! we give, whichever is greater). A transaction whose commit end LSN is at
//! or below the event log's durable LSN is already stored.

use crate::Lsn;

/// True when a transaction (or non-transactional message) at `position` —
/// a transaction's commit end LSN, a message's LSN — is already durable and
/// must be dropped as a duplicate.
pub fn should_skip(position: Lsn, durable: Lsn) -> bool {
    position <= durable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_at_or_below_durable() {
        assert!(should_skip(Lsn(10), Lsn(10)));
        assert!(should_skip(Lsn(9), Lsn(10)));
        assert!(!should_skip(Lsn(11), Lsn(10)));
        assert!(!should_skip(Lsn(1), Lsn::ZERO));
        assert!(should_skip(Lsn::ZERO, Lsn::ZERO));
    }
}
