//! [`ReplicationClient`]: one replication-mode (`replication=database`)
//! session — connect and authenticate, run replication commands, then
//! START_REPLICATION into a [`CopyBothStream`].

use std::collections::HashMap;
use std::time::Duration;

use postgres_protocol::message::{backend, frontend};

use super::auth::startup;
use super::commands::{
    create_slot_command, parse_created_slot, parse_slot_info, slot_info_query, SlotInfo, parse_duration_setting, parse_identify_system, start_replication_command,
    validate_slot_name, CreatedSlot, PgOutputOptions, SlotOptions, SystemIdentity,
};
use super::config::ConnectParams;
use super::connection::{server_error, Connection};
use super::copy_both::CopyBothStream;
use super::error::ClientError;
use super::frame::BackendMessage;
use super::query::{simple_query, QueryResult};
use super::socket::Socket;
use crate::Lsn;

/// A replication-mode session, ready for commands.
#[derive(Debug)]
pub struct ReplicationClient {
    conn: Connection,
}

impl ReplicationClient {
    /// Connects, sends the startup packet (`replication=database`, pinned
    /// output GUCs) and authenticates (trust, password, MD5, SCRAM-SHA-256),
    /// within `params.connect_timeout`.
    pub async fn connect(params: &ConnectParams) -> Result<Self, ClientError> {
        let fut = async {
            let mut conn = Connection::new(Socket::connect(params).await?);
            startup(&mut conn, params).await?;
            Ok(ReplicationClient { conn })
        };
        match params.connect_timeout {
            Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| ClientError::Timeout("connecting"))?,
            None => fut.await,
        }
    }

    /// Server parameters reported at startup (`server_version`, …).
    pub fn parameters(&self) -> &HashMap<String, String> {
        self.conn.parameters()
    }

    /// The backend process id, as in `pg_stat_replication.pid`.
    pub fn backend_pid(&self) -> Option<i32> {
        self.conn.backend_key().map(|(pid, _)| pid)
    }

    /// `server_version` as a number like `server_version_num` (15.18 →
    /// 150018), from the startup parameters.
    pub fn server_version_num(&self) -> Option<u32> {
        let v = self.parameters().get("server_version")?;
        let mut parts = v.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        Some(major * 10_000 + minor)
    }

    /// Runs a simple query (SQL or a replication command); see
    /// [`simple_query`](super::query::simple_query()).
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>, ClientError> {
        simple_query(&mut self.conn, sql).await
    }

    /// IDENTIFY_SYSTEM.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, ClientError> {
        parse_identify_system(&self.simple_query("IDENTIFY_SYSTEM").await?)
    }

    /// `SHOW name` (a walsender supports SHOW for settings).
    pub async fn show(&mut self, name: &str) -> Result<String, ClientError> {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            return Err(ClientError::InvalidArgument(format!("invalid setting name {name:?}")));
        }
        let r = self.simple_query(&format!("SHOW {name}")).await?;
        r.first()
            .and_then(|r| r.rows.first())
            .and_then(|row| row.first().cloned().flatten())
            .ok_or_else(|| ClientError::Protocol(format!("SHOW {name} returned no value")))
    }

    /// The server's `wal_sender_timeout` (zero when disabled).
    pub async fn wal_sender_timeout(&mut self) -> Result<Duration, ClientError> {
        let v = self.show("wal_sender_timeout").await?;
        parse_duration_setting(&v).ok_or_else(|| ClientError::Protocol(format!("unparsable wal_sender_timeout {v:?}")))
    }

    /// `CREATE_REPLICATION_SLOT name [TEMPORARY] LOGICAL pgoutput`.
    pub async fn create_slot(&mut self, name: &str, opts: &SlotOptions) -> Result<CreatedSlot, ClientError> {
        let cmd = create_slot_command(name, opts)?;
        parse_created_slot(&self.simple_query(&cmd).await?)
    }

    /// The slot's row in `pg_replication_slots` (SQL over this replication
    /// connection), or `None` when there is no such slot. Check
    /// [`SlotInfo::is_lost`] and `confirmed_flush_lsn` before streaming.
    pub async fn slot_info(&mut self, name: &str) -> Result<Option<SlotInfo>, ClientError> {
        let q = slot_info_query(name)?;
        parse_slot_info(&self.simple_query(&q).await?)
    }

    /// `DROP_REPLICATION_SLOT name [WAIT]`.
    pub async fn drop_slot(&mut self, name: &str, wait: bool) -> Result<(), ClientError> {
        validate_slot_name(name)?;
        let wait = if wait { " WAIT" } else { "" };
        self.simple_query(&format!("DROP_REPLICATION_SLOT {name}{wait}")).await?;
        Ok(())
    }

    /// START_REPLICATION SLOT slot LOGICAL start (pgoutput options); the
    /// server starts at `start` or the slot's `confirmed_flush_lsn`,
    /// whichever is greater.
    pub async fn start_replication(
        mut self,
        slot: &str,
        start: Lsn,
        opts: &PgOutputOptions,
    ) -> Result<CopyBothStream, ClientError> {
        let cmd = start_replication_command(slot, start, opts)?;
        frontend::query(&cmd, &mut self.conn.write_buf).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        self.conn.flush().await?;
        let mut error = None;
        loop {
            match self.conn.read_message().await? {
                BackendMessage::CopyBoth(_) if error.is_none() => return Ok(CopyBothStream::new(self.conn)),
                BackendMessage::Message(backend::Message::ErrorResponse(body)) => error = Some(server_error(&body)),
                BackendMessage::Message(backend::Message::ReadyForQuery(_)) => {
                    return Err(error.unwrap_or_else(|| {
                        ClientError::Protocol("START_REPLICATION ended without CopyBothResponse".into())
                    }))
                }
                _ => return Err(ClientError::Protocol("unexpected answer to START_REPLICATION".into())),
            }
        }
    }

    /// Sends Terminate and closes the connection.
    pub async fn close(mut self) -> Result<(), ClientError> {
        frontend::terminate(&mut self.conn.write_buf);
        self.conn.flush().await?;
        let _ = self.conn.shutdown().await;
        Ok(())
    }
}
