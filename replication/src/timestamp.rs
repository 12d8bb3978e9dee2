//! [`PgTimestamp`]: PostgreSQL's wire timestamps, microseconds since
//! 2000-01-01 00:00:00 UTC.
//!
//! Begin, Commit and Stream Commit carry commit times in this form, and the
//! walsender's XLogData, keepalive and our standby status updates carry
//! clocks in it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the Unix epoch (1970-01-01) to the PostgreSQL epoch (2000-01-01).
pub const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
const PG_EPOCH_UNIX_MICROS: i64 = PG_EPOCH_UNIX_SECS * 1_000_000;

/// A point in time as PostgreSQL sends it: microseconds since 2000-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PgTimestamp(pub i64);

impl PgTimestamp {
    /// The current time of this machine's clock.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts from a [`SystemTime`], saturating at the representable range.
    pub fn from_system_time(t: SystemTime) -> Self {
        let unix_micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_micros()).map(|m| -m).unwrap_or(i64::MIN),
        };
        PgTimestamp(unix_micros.saturating_sub(PG_EPOCH_UNIX_MICROS))
    }

    /// Microseconds since 1970-01-01 UTC.
    pub fn unix_micros(self) -> i64 {
        self.0.saturating_add(PG_EPOCH_UNIX_MICROS)
    }

    /// Converts to a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let micros = self.unix_micros();
        if micros >= 0 {
            UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_2000() {
        assert_eq!(PgTimestamp(0).unix_micros(), 946_684_800_000_000);
        let t = UNIX_EPOCH + Duration::from_secs(946_684_800 + 1);
        assert_eq!(PgTimestamp::from_system_time(t), PgTimestamp(1_000_000));
        assert_eq!(PgTimestamp(1_000_000).to_system_time(), t);
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(PgTimestamp::from_system_time(before).unix_micros(), -1_000_000);
        assert_eq!(PgTimestamp::from_system_time(before).to_system_time(), before);
    }

    #[test]
    fn now_is_after_2024() {
        assert!(PgTimestamp::now().0 > 24 * 365 * 86_400 * 1_000_000);
    }
}
