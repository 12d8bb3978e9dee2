//! Start-up checks of an external database.
//!
//! Fluxbase needs PostgreSQL 14 or newer (pgoutput's `messages` option),
//! `wal_level = logical`, replication slots and WAL senders, and a user with
//! the REPLICATION attribute (or superuser). Each unmet need is reported
//! with the statement or setting that fixes it.

use tokio_postgres::Client;

use super::DatabaseError;

/// Oldest supported server (`server_version_num`).
pub const MIN_SERVER_VERSION: i32 = 140_000;

/// What the server reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// `server_version_num`.
    pub version_num: i32,
    /// `server_version`.
    pub version: String,
    /// `wal_level`.
    pub wal_level: String,
    /// `max_replication_slots`.
    pub max_replication_slots: i32,
    /// `max_wal_senders`.
    pub max_wal_senders: i32,
    /// `current_user`.
    pub user: String,
    /// Whether the user may replicate (REPLICATION or superuser).
    pub can_replicate: bool,
}

/// Reads the facts [`problems`] judges.
pub async fn facts(client: &Client) -> Result<ServerFacts, DatabaseError> {
    let row = client
        .query_one(
            "select current_setting('server_version_num')::int,
                    current_setting('server_version'),
                    current_setting('wal_level'),
                    current_setting('max_replication_slots')::int,
                    current_setting('max_wal_senders')::int,
                    current_user::text,
                    (select rolreplication or rolsuper from pg_roles where rolname = current_user)",
            &[],
        )
        .await?;
    Ok(ServerFacts {
        version_num: row.get(0),
        version: row.get(1),
        wal_level: row.get(2),
        max_replication_slots: row.get(3),
        max_wal_senders: row.get(4),
        user: row.get(5),
        can_replicate: row.get::<_, Option<bool>>(6).unwrap_or(false),
    })
}

/// Every unmet requirement, each with its fix; empty when the server is suitable.
pub fn problems(f: &ServerFacts) -> Vec<String> {
    let mut out = Vec::new();
    if f.version_num < MIN_SERVER_VERSION {
        out.push(format!("- PostgreSQL {} is too old: Fluxbase needs 14 or newer.", f.version));
    }
    if f.wal_level != "logical" {
        out.push(format!(
            "- wal_level is '{}': run `ALTER SYSTEM SET wal_level = logical;` as a superuser and restart PostgreSQL.",
            f.wal_level
        ));
    }
    if f.max_replication_slots < 1 {
        out.push("- max_replication_slots is 0: `ALTER SYSTEM SET max_replication_slots = 10;` and restart PostgreSQL.".into());
    }
    if f.max_wal_senders < 1 {
        out.push("- max_wal_senders is 0: `ALTER SYSTEM SET max_wal_senders = 10;` and restart PostgreSQL.".into());
    }
    if !f.can_replicate {
        out.push(format!(
            "- user \"{}\" lacks the REPLICATION attribute: `ALTER ROLE \"{}\" WITH REPLICATION;` as a superuser.",
            f.user, f.user
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ServerFacts {
        ServerFacts {
            version_num: 150_018,
            version: "15.18".into(),
            wal_level: "logical".into(),
            max_replication_slots: 10,
            max_wal_senders: 10,
            user: "app".into(),
            can_replicate: true,
        }
    }

    #[test]
    fn suitable_server_has_no_problems() {
        assert!(problems(&good()).is_empty());
    }

    #[test]
    fn each_problem_says_what_to_change() {
        let f = ServerFacts { wal_level: "replica".into(), can_replicate: false, version_num: 130_000, version: "13.1".into(), ..good() };
        let p = problems(&f).join("\n");
        assert!(p.contains("wal_level = logical"), "{p}");
        assert!(p.contains("ALTER ROLE \"app\" WITH REPLICATION"), "{p}");
        assert!(p.contains("14 or newer"), "{p}");
    }
}
