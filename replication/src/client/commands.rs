//! The replication commands this client issues, their text, and their typed
//! results: IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT … LOGICAL pgoutput,
//! DROP_REPLICATION_SLOT, SHOW and START_REPLICATION with pgoutput options.

use std::time::Duration;

use super::error::ClientError;
use super::query::QueryResult;
use crate::Lsn;

/// The answer to IDENTIFY_SYSTEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The cluster's system identifier (a decimal number as text).
    pub system_id: String,
    /// Current timeline.
    pub timeline: u32,
    /// Current WAL flush position.
    pub xlogpos: Lsn,
    /// The database connected to.
    pub dbname: Option<String>,
}

/// What CREATE_REPLICATION_SLOT does with the snapshot it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotAction {
    /// `EXPORT_SNAPSHOT`: export it (usable with `SET TRANSACTION SNAPSHOT`
    /// while this connection runs no other command).
    Export,
    /// `NOEXPORT_SNAPSHOT`: build it for the slot only.
    #[default]
    NoExport,
}

/// Options of CREATE_REPLICATION_SLOT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotOptions {
    /// A slot dropped when the session ends.
    pub temporary: bool,
    /// Snapshot handling.
    pub snapshot: SnapshotAction,
}

/// The answer to CREATE_REPLICATION_SLOT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// Slot name.
    pub slot_name: String,
    /// The LSN from which the slot is consistent: changes committed after it
    /// will be streamed.
    pub consistent_point: Lsn,
    /// Exported snapshot name (with [`SnapshotAction::Export`]).
    pub snapshot_name: Option<String>,
    /// Output plugin (`pgoutput`).
    pub output_plugin: Option<String>,
}

/// A row of `pg_replication_slots`, as [`slot_info`](super::ReplicationClient::slot_info)
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// Slot name.
    pub slot_name: String,
    /// Output plugin (`pgoutput` for ours).
    pub plugin: Option<String>,
    /// `logical` or `physical`.
    pub slot_type: String,
    /// Database of a logical slot.
    pub database: Option<String>,
    /// A walsender is using the slot now.
    pub active: bool,
    /// PID of that walsender.
    pub active_pid: Option<i32>,
    /// Oldest WAL the slot retains.
    pub restart_lsn: Option<Lsn>,
    /// What the slot has confirmed; START_REPLICATION starts at least here.
    pub confirmed_flush_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
}

impl SlotInfo {
    /// True when the slot was invalidated (`wal_status = 'lost'`): the WAL
    /// it needed is gone and a full resynchronisation is required.
    pub fn is_lost(&self) -> bool {
        self.wal_status.as_deref() == Some("lost")
    }
}

/// The query behind [`slot_info`](super::ReplicationClient::slot_info).
pub fn slot_info_query(name: &str) -> Result<String, ClientError> {
    validate_slot_name(name)?;
    Ok(format!(
        "select slot_name, plugin, slot_type, database, active, active_pid, restart_lsn, confirmed_flush_lsn, \
         wal_status from pg_replication_slots where slot_name = '{name}'"
    ))
}

/// Parses the result of [`slot_info_query`].
pub fn parse_slot_info(results: &[QueryResult]) -> Result<Option<SlotInfo>, ClientError> {
    let Some(r) = results.iter().find(|r| !r.rows.is_empty()) else { return Ok(None) };
    let c = "pg_replication_slots";
    let lsn = |col: &str| r.get(0, col).map(|s| parse_lsn(s, c)).transpose();
    Ok(Some(SlotInfo {
        slot_name: required(r, "slot_name", c)?.to_owned(),
        plugin: r.get(0, "plugin").map(str::to_owned),
        slot_type: required(r, "slot_type", c)?.to_owned(),
        database: r.get(0, "database").map(str::to_owned),
        active: r.get(0, "active") == Some("t"),
        active_pid: r.get(0, "active_pid").and_then(|p| p.parse().ok()),
        restart_lsn: lsn("restart_lsn")?,
        confirmed_flush_lsn: lsn("confirmed_flush_lsn")?,
        wal_status: r.get(0, "wal_status").map(str::to_owned),
    }))
}

/// pgoutput options for START_REPLICATION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOutputOptions {
    /// `proto_version`: 1, or 2 with `streaming`.
    pub proto_version: u32,
    /// `publication_names` (quoted as identifiers, then as a literal).
    pub publication_names: Vec<String>,
    /// `messages`: forward `pg_logical_emit_message` (PostgreSQL 14+).
    pub messages: bool,
    /// `binary`: binary values (`'b'` columns).
    pub binary: bool,
    /// `streaming`: stream large in-progress transactions (needs
    /// `proto_version` ≥ 2).
    pub streaming: bool,
}

impl PgOutputOptions {
    /// Fluxbase's settings: protocol 1, messages on, binary and streaming off.
    pub fn new(publications: impl IntoIterator<Item = impl Into<String>>) -> Self {
        PgOutputOptions {
            proto_version: 1,
            publication_names: publications.into_iter().map(Into::into).collect(),
            messages: true,
            binary: false,
            streaming: false,
        }
    }
}

/// Checks a slot name the way PostgreSQL does: 1–63 characters of
/// lower-case letters, digits and underscores. Slot names are spliced into
/// commands, so nothing else is ever accepted.
pub fn validate_slot_name(name: &str) -> Result<(), ClientError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ClientError::InvalidArgument(format!(
            "invalid replication slot name {name:?}: use 1-63 lower-case letters, digits and underscores"
        )))
    }
}

/// Quotes an identifier (`"a""b"`).
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for the replication command grammar (`'it''s'`).
/// Its scanner treats backslashes literally and knows no `E''` strings.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The CREATE_REPLICATION_SLOT command (the keyword syntax every version
/// from 10 on accepts).
pub fn create_slot_command(name: &str, opts: &SlotOptions) -> Result<String, ClientError> {
    validate_slot_name(name)?;
    let temporary = if opts.temporary { " TEMPORARY" } else { "" };
    let snapshot = match opts.snapshot {
        SnapshotAction::Export => "EXPORT_SNAPSHOT",
        SnapshotAction::NoExport => "NOEXPORT_SNAPSHOT",
    };
    Ok(format!("CREATE_REPLICATION_SLOT {name}{temporary} LOGICAL pgoutput {snapshot}"))
}

/// The START_REPLICATION command.
pub fn start_replication_command(slot: &str, start: Lsn, opts: &PgOutputOptions) -> Result<String, ClientError> {
    validate_slot_name(slot)?;
    if opts.publication_names.is_empty() {
        return Err(ClientError::InvalidArgument("at least one publication is needed".into()));
    }
    if opts.streaming && opts.proto_version < 2 {
        return Err(ClientError::InvalidArgument("streaming needs proto_version 2 or later".into()));
    }
    let pubs: Vec<String> = opts.publication_names.iter().map(|p| quote_ident(p)).collect();
    let mut options = vec![
        format!("\"proto_version\" '{}'", opts.proto_version),
        format!("\"publication_names\" {}", quote_literal(&pubs.join(","))),
    ];
    if opts.messages {
        options.push("\"messages\" 'true'".into());
    }
    if opts.binary {
        options.push("\"binary\" 'true'".into());
    }
    if opts.streaming {
        options.push("\"streaming\" 'on'".into());
    }
    Ok(format!("START_REPLICATION SLOT {slot} LOGICAL {start} ({})", options.join(", ")))
}

fn single_row<'a>(results: &'a [QueryResult], command: &str) -> Result<&'a QueryResult, ClientError> {
    results
        .iter()
        .find(|r| !r.rows.is_empty())
        .ok_or_else(|| ClientError::Protocol(format!("{command} returned no row")))
}

fn required<'a>(r: &'a QueryResult, column: &str, command: &str) -> Result<&'a str, ClientError> {
    r.get(0, column).ok_or_else(|| ClientError::Protocol(format!("{command} returned no {column}")))
}

fn parse_lsn(s: &str, command: &str) -> Result<Lsn, ClientError> {
    s.parse().map_err(|e| ClientError::Protocol(format!("{command}: {e}")))
}

/// Parses the result of IDENTIFY_SYSTEM.
pub fn parse_identify_system(results: &[QueryResult]) -> Result<SystemIdentity, ClientError> {
    let c = "IDENTIFY_SYSTEM";
    let r = single_row(results, c)?;
    Ok(SystemIdentity {
        system_id: required(r, "systemid", c)?.to_owned(),
        timeline: required(r, "timeline", c)?
            .parse()
            .map_err(|_| ClientError::Protocol("IDENTIFY_SYSTEM: bad timeline".into()))?,
        xlogpos: parse_lsn(required(r, "xlogpos", c)?, c)?,
        dbname: r.get(0, "dbname").map(str::to_owned),
    })
}

/// Parses the result of CREATE_REPLICATION_SLOT.
pub fn parse_created_slot(results: &[QueryResult]) -> Result<CreatedSlot, ClientError> {
    let c = "CREATE_REPLICATION_SLOT";
    let r = single_row(results, c)?;
    Ok(CreatedSlot {
        slot_name: required(r, "slot_name", c)?.to_owned(),
        consistent_point: parse_lsn(required(r, "consistent_point", c)?, c)?,
        snapshot_name: r.get(0, "snapshot_name").map(str::to_owned),
        output_plugin: r.get(0, "output_plugin").map(str::to_owned),
    })
}

/// Parses a PostgreSQL duration setting as SHOW prints it (`60s`, `500ms`,
/// `1min`, `0`).
pub fn parse_duration_setting(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit.trim() {
        "" | "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        "us" => Duration::from_micros(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_start_replication() {
        let opts = PgOutputOptions::new(["pub", "we\"ird's"]);
        let cmd = start_replication_command("fluxbase_slot", Lsn(0x16_B374_D848), &opts).expect("valid");
        assert_eq!(
            cmd,
            "START_REPLICATION SLOT fluxbase_slot LOGICAL 16/B374D848 (\"proto_version\" '1', \
             \"publication_names\" '\"pub\",\"we\"\"ird''s\"', \"messages\" 'true')"
        );
        let streaming = PgOutputOptions { proto_version: 2, streaming: true, binary: true, ..opts.clone() };
        let cmd = start_replication_command("s", Lsn::ZERO, &streaming).expect("valid");
        assert!(cmd.ends_with("\"binary\" 'true', \"streaming\" 'on')"), "{cmd}");
        let bad = PgOutputOptions { streaming: true, ..opts.clone() };
        assert!(start_replication_command("s", Lsn::ZERO, &bad).is_err());
        assert!(start_replication_command("S; drop", Lsn::ZERO, &opts).is_err());
        assert!(start_replication_command("s", Lsn::ZERO, &PgOutputOptions::new(Vec::<String>::new())).is_err());
    }

    #[test]
    fn validates_slot_names() {
        assert!(validate_slot_name("a_1").is_ok());
        for bad in ["", "A", "a-b", "a b", &"x".repeat(64)] {
            assert!(validate_slot_name(bad).is_err(), "{bad:?}");
        }
        let cmd = create_slot_command("s1", &SlotOptions { temporary: true, snapshot: SnapshotAction::Export });
        assert_eq!(cmd.expect("valid"), "CREATE_REPLICATION_SLOT s1 TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT");
    }

    #[test]
    fn quotes() {
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_literal("a\\b"), "'a\\b'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn parses_results() {
        let r = QueryResult {
            columns: vec!["systemid".into(), "timeline".into(), "xlogpos".into(), "dbname".into()],
            rows: vec![vec![Some("7300".into()), Some("1".into()), Some("0/1A2B".into()), None]],
            command_tag: None,
        };
        let id = parse_identify_system(&[r]).expect("valid");
        assert_eq!(id.xlogpos, Lsn(0x1A2B));
        assert_eq!(id.timeline, 1);
        assert_eq!(id.dbname, None);
        assert!(parse_identify_system(&[]).is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration_setting("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration_setting("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration_setting("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration_setting("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration_setting("x"), None);
    }
}
