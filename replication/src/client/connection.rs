//! [`Connection`]: a framed backend-message reader and frontend-message
//! writer over a [`Socket`], shared by every phase of a session (startup,
//! simple queries, CopyBoth).

use std::collections::HashMap;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{ClientError, ServerError};
use super::frame::{parse_frame, BackendMessage};
use super::socket::Socket;

/// A framed connection to the server.
#[derive(Debug)]
pub struct Connection {
    socket: Socket,
    read_buf: BytesMut,
    /// Frontend messages are encoded here, then written by [`Connection::flush`].
    pub(crate) write_buf: BytesMut,
    parameters: HashMap<String, String>,
    backend_key: Option<(i32, i32)>,
}

impl Connection {
    /// Wraps a connected socket.
    pub fn new(socket: Socket) -> Self {
        Connection {
            socket,
            read_buf: BytesMut::with_capacity(16 * 1024),
            write_buf: BytesMut::with_capacity(1024),
            parameters: HashMap::new(),
            backend_key: None,
        }
    }

    /// Server parameters reported with ParameterStatus (`server_version`,
    /// `client_encoding`, …).
    pub fn parameters(&self) -> &HashMap<String, String> {
        &self.parameters
    }

    /// The backend's process id and cancel key (BackendKeyData).
    pub fn backend_key(&self) -> Option<(i32, i32)> {
        self.backend_key
    }

    /// The buffer frontend messages are encoded into (see
    /// `postgres_protocol::message::frontend`); [`Connection::flush`] sends it.
    pub fn write_buf(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    /// Writes everything encoded into the write buffer.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.write_buf.is_empty() {
            self.socket.write_all(&self.write_buf).await?;
            self.write_buf.clear();
        }
        self.socket.flush().await?;
        Ok(())
    }

    /// Reads the next backend message. NoticeResponse (logged),
    /// ParameterStatus and BackendKeyData (recorded) are handled here and
    /// never returned.
    ///
    /// Cancel-safe: a message is consumed from the buffer only when complete,
    /// and bytes read so far stay in the buffer.
    pub async fn read_message(&mut self) -> Result<BackendMessage, ClientError> {
        loop {
            while let Some(m) = parse_frame(&mut self.read_buf)? {
                match m {
                    BackendMessage::Message(backend::Message::NoticeResponse(n)) => {
                        match ServerError::from_fields(n.fields()) {
                            Ok(n) => tracing::info!(severity = %n.severity, code = %n.code, "server notice: {}", n.message),
                            Err(e) => tracing::warn!("malformed notice: {e}"),
                        }
                    }
                    BackendMessage::Message(backend::Message::ParameterStatus(p)) => {
                        if let (Ok(k), Ok(v)) = (p.name(), p.value()) {
                            self.parameters.insert(k.to_owned(), v.to_owned());
                        }
                    }
                    BackendMessage::Message(backend::Message::BackendKeyData(k)) => {
                        self.backend_key = Some((k.process_id(), k.secret_key()));
                    }
                    other => return Ok(other),
                }
            }
            self.read_buf.reserve(8 * 1024);
            let n = self.socket.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Shuts the write side down (after Terminate).
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        self.socket.shutdown().await?;
        Ok(())
    }
}

/// Turns an ErrorResponse into a [`ClientError::Server`].
pub(crate) fn server_error(body: &backend::ErrorResponseBody) -> ClientError {
    match ServerError::from_fields(body.fields()) {
        Ok(e) => ClientError::Server(e),
        Err(e) => e,
    }
}

/// Collects the items of one of `postgres-protocol`'s fallible iterators
/// (row description fields, data row ranges).
pub(crate) fn collect_fallible<I, T>(mut it: I) -> Result<Vec<T>, ClientError>
where
    I: FallibleIterator<Item = T, Error = std::io::Error>,
{
    let mut out = Vec::new();
    while let Some(x) = it.next().map_err(|e| ClientError::Protocol(format!("malformed message: {e}")))? {
        out.push(x);
    }
    Ok(out)
}
