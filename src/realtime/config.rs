//! `[realtime]`: limits of the WebSocket endpoint.
//!
//! Every limit answers with the error Supabase Realtime sends for it (see
//! `docs/api/realtime.md`, "Limits"); every key is also settable as
//! `FLUXBASE_REALTIME_<KEY>`.

use serde::{Deserialize, Serialize};

/// `[realtime]` settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Open sockets one user (the JWT `sub` of its channels) may hold.
    pub max_connections_per_user: u32,
    /// Open sockets one client IP may hold while they carry no user (anon).
    pub max_connections_per_ip: u32,
    /// Channels one socket may have joined at once.
    pub max_channels_per_connection: u32,
    /// Joins one socket may make per second (a token bucket of this size,
    /// refilled at this rate); over it the join is refused and the socket closed.
    pub max_joins_per_second: u32,
    /// Frames queued for one socket; a socket whose queue fills is told its
    /// resume positions and disconnected.
    pub send_queue: u32,
    /// Largest frame accepted from a client, in bytes.
    pub max_message_bytes: u32,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            max_connections_per_user: 100,
            max_connections_per_ip: 10_000,
            max_channels_per_connection: 100,
            max_joins_per_second: 100,
            send_queue: 1024,
            max_message_bytes: 1 << 20,
        }
    }
}

impl RealtimeConfig {
    /// Checks the values: `(key, value, allowed)` for the first bad one.
    pub fn validate(&self) -> Result<(), (String, String, String)> {
        for (key, v, lo, hi) in [
            ("realtime.max_connections_per_user", self.max_connections_per_user, 1, 10_000_000),
            ("realtime.max_connections_per_ip", self.max_connections_per_ip, 1, 10_000_000),
            ("realtime.max_channels_per_connection", self.max_channels_per_connection, 1, 10_000),
            ("realtime.max_joins_per_second", self.max_joins_per_second, 1, 1_000_000),
            ("realtime.send_queue", self.send_queue, 1, 1_000_000),
            ("realtime.max_message_bytes", self.max_message_bytes, 1024, 1 << 30),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err((key.into(), v.to_string(), format!("an integer from {lo} to {hi}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_not() {
        assert!(RealtimeConfig::default().validate().is_ok());
        let c = RealtimeConfig { max_joins_per_second: 0, ..RealtimeConfig::default() };
        assert_eq!(c.validate().map_err(|e| e.0), Err("realtime.max_joins_per_second".to_owned()));
    }
}
