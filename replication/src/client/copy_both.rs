//! [`CopyBothStream`]: the connection after START_REPLICATION answered with
//! CopyBothResponse. Reads CopyData payloads (XLogData / keepalive) and sends
//! CopyData (standby status updates).

use bytes::Bytes;
use postgres_protocol::message::{backend, frontend};

use super::connection::{server_error, Connection};
use super::error::ClientError;
use super::frame::BackendMessage;
use crate::walsender::StandbyStatusUpdate;

/// A session in CopyBoth mode.
#[derive(Debug)]
pub struct CopyBothStream {
    conn: Connection,
    done: bool,
}

impl CopyBothStream {
    pub(crate) fn new(conn: Connection) -> Self {
        CopyBothStream { conn, done: false }
    }

    /// The next CopyData payload, or `None` once the server ended the copy
    /// (CopyDone). An ErrorResponse is [`ClientError::Server`].
    ///
    /// Cancel-safe: use it in `tokio::select!`.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.done {
            return Ok(None);
        }
        loop {
            match self.conn.read_message().await? {
                BackendMessage::Message(backend::Message::CopyData(d)) => return Ok(Some(d.into_bytes())),
                BackendMessage::Message(backend::Message::CopyDone) => {
                    self.done = true;
                    return Ok(None);
                }
                BackendMessage::Message(backend::Message::ErrorResponse(body)) => return Err(server_error(&body)),
                BackendMessage::Message(backend::Message::CommandComplete(_))
                | BackendMessage::Message(backend::Message::ReadyForQuery(_)) => {}
                _ => return Err(ClientError::Protocol("unexpected message during CopyBoth".into())),
            }
        }
    }

    /// Sends one CopyData payload.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        frontend::CopyData::new(payload)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?
            .write(&mut self.conn.write_buf);
        self.conn.flush().await
    }

    /// Sends a standby status update.
    pub async fn send_status(&mut self, update: &StandbyStatusUpdate) -> Result<(), ClientError> {
        self.send(&update.to_bytes()).await
    }

    /// Ends the session: CopyDone, Terminate, close. Errors are ignored past
    /// the first write (the server may already be gone).
    pub async fn close(mut self) -> Result<(), ClientError> {
        frontend::copy_done(&mut self.conn.write_buf);
        frontend::terminate(&mut self.conn.write_buf);
        self.conn.flush().await?;
        let _ = self.conn.shutdown().await;
        Ok(())
    }
}
