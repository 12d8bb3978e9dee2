//! Startup and authentication: the startup packet (for a walsender, with
//! `replication=database` and pinned output GUCs; for a plain session, with
//! only the client encoding), then trust, cleartext, MD5 or SCRAM-SHA-256
//! (via `postgres_protocol::authentication::sasl`), until ReadyForQuery.
//!
//! Channel binding (SCRAM-SHA-256-PLUS) needs TLS, which this client does
//! not speak; SCRAM runs without it.

use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::{backend, frontend};

use super::config::ConnectParams;
use super::connection::{server_error, Connection};
use super::error::ClientError;
use super::frame::BackendMessage;

/// Session settings sent in the startup packet so that text output of values
/// is deterministic whatever the server's defaults.
pub const PINNED_GUCS: [(&str, &str); 5] = [
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
];

fn io_to_client(e: std::io::Error) -> ClientError {
    ClientError::Protocol(e.to_string())
}

fn password(params: &ConnectParams) -> Result<&[u8], ClientError> {
    params
        .password
        .as_deref()
        .map(str::as_bytes)
        .ok_or_else(|| ClientError::Auth("the server asks for a password but none was given".into()))
}

/// What kind of session a connection starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A walsender (`replication=database`) with [`PINNED_GUCS`].
    Replication,
    /// An ordinary backend: only `client_encoding=UTF8` is pinned, so the
    /// server's own defaults (time zone, date style) apply as they do for
    /// any other client.
    Plain,
}

/// Sends the walsender startup packet and completes authentication; returns
/// once the server is ReadyForQuery.
pub async fn startup(conn: &mut Connection, params: &ConnectParams) -> Result<(), ClientError> {
    startup_as(conn, params, SessionKind::Replication).await
}

/// Sends the startup packet for `kind` and completes authentication;
/// returns once the server is ReadyForQuery.
pub async fn startup_as(conn: &mut Connection, params: &ConnectParams, kind: SessionKind) -> Result<(), ClientError> {
    let mut startup: Vec<(&str, &str)> =
        vec![("user", params.user.as_str()), ("database", params.dbname.as_str())];
    match kind {
        SessionKind::Replication => {
            startup.push(("replication", "database"));
            startup.push(("application_name", params.application_name.as_str()));
            startup.extend(PINNED_GUCS);
        }
        SessionKind::Plain => {
            startup.push(("application_name", params.application_name.as_str()));
            startup.push(("client_encoding", "UTF8"));
        }
    }
    frontend::startup_message(startup, &mut conn.write_buf).map_err(io_to_client)?;
    conn.flush().await?;
    let mut scram: Option<sasl::ScramSha256> = None;
    loop {
        let BackendMessage::Message(m) = conn.read_message().await? else {
            return Err(ClientError::Protocol("unexpected message during authentication".into()));
        };
        match m {
            backend::Message::AuthenticationOk => break,
            backend::Message::AuthenticationCleartextPassword => {
                frontend::password_message(password(params)?, &mut conn.write_buf).map_err(io_to_client)?;
                conn.flush().await?;
            }
            backend::Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(params.user.as_bytes(), password(params)?, body.salt());
                frontend::password_message(hash.as_bytes(), &mut conn.write_buf).map_err(io_to_client)?;
                conn.flush().await?;
            }
            backend::Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut has_scram = false;
                while let Some(m) = fallible_iterator::FallibleIterator::next(&mut mechanisms).map_err(io_to_client)? {
                    has_scram |= m == sasl::SCRAM_SHA_256;
                }
                if !has_scram {
                    return Err(ClientError::Auth("the server offers no SASL mechanism this client supports (needs SCRAM-SHA-256)".into()));
                }
                let s = sasl::ScramSha256::new(password(params)?, sasl::ChannelBinding::unsupported());
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut conn.write_buf)
                    .map_err(io_to_client)?;
                conn.flush().await?;
                scram = Some(s);
            }
            backend::Message::AuthenticationSaslContinue(body) => {
                let s = scram.as_mut().ok_or_else(|| ClientError::Protocol("SASL continue without SASL start".into()))?;
                s.update(body.data()).map_err(|e| ClientError::Auth(format!("SCRAM: {e}")))?;
                frontend::sasl_response(s.message(), &mut conn.write_buf).map_err(io_to_client)?;
                conn.flush().await?;
            }
            backend::Message::AuthenticationSaslFinal(body) => {
                let s = scram.as_mut().ok_or_else(|| ClientError::Protocol("SASL final without SASL start".into()))?;
                s.finish(body.data()).map_err(|e| ClientError::Auth(format!("SCRAM server verification failed: {e}")))?;
            }
            backend::Message::ErrorResponse(body) => return Err(server_error(&body)),
            backend::Message::AuthenticationKerberosV5
            | backend::Message::AuthenticationScmCredential
            | backend::Message::AuthenticationGss
            | backend::Message::AuthenticationGssContinue(_)
            | backend::Message::AuthenticationSspi => {
                return Err(ClientError::Auth("the server asks for an authentication method this client does not support (GSS/SSPI/Kerberos/SCM)".into()))
            }
            _ => return Err(ClientError::Protocol("unexpected message during authentication".into())),
        }
    }
    loop {
        match conn.read_message().await? {
            BackendMessage::Message(backend::Message::ReadyForQuery(_)) => return Ok(()),
            BackendMessage::Message(backend::Message::ErrorResponse(body)) => return Err(server_error(&body)),
            BackendMessage::NegotiateProtocolVersion { minor, unrecognized } => {
                tracing::debug!(minor, ?unrecognized, "server negotiated the protocol version down");
            }
            _ => return Err(ClientError::Protocol("unexpected message after authentication".into())),
        }
    }
}
