//! Errors of the walsender client: [`ClientError`], and [`ServerError`] for an
//! ErrorResponse from PostgreSQL (with its SQLSTATE).

use std::fmt;
use std::io;

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::ErrorFields;

use crate::codec::DecodeError;

/// An ErrorResponse (or the fields of a NoticeResponse) from the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerError {
    /// Severity (`ERROR`, `FATAL`, `PANIC`; non-localized when available).
    pub severity: String,
    /// SQLSTATE code, e.g. `42704`.
    pub code: String,
    /// Primary message.
    pub message: String,
    /// Detail, if any.
    pub detail: Option<String>,
    /// Hint, if any.
    pub hint: Option<String>,
}

impl ServerError {
    /// Collects the fields of an ErrorResponse or NoticeResponse.
    pub fn from_fields(mut fields: ErrorFields<'_>) -> Result<Self, ClientError> {
        let mut e = ServerError::default();
        let mut localized_severity = None;
        while let Some(f) = fields.next().map_err(|err| ClientError::Protocol(format!("malformed error fields: {err}")))? {
            let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
            match f.type_() {
                b'V' => e.severity = v,
                b'S' => localized_severity = Some(v),
                b'C' => e.code = v,
                b'M' => e.message = v,
                b'D' => e.detail = Some(v),
                b'H' => e.hint = Some(v),
                _ => {}
            }
        }
        if e.severity.is_empty() {
            e.severity = localized_severity.unwrap_or_default();
        }
        Ok(e)
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " (detail: {d})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// Anything that can go wrong talking to the walsender.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection could not be established.
    #[error("connecting to {target}: {source}")]
    Connect {
        /// Host and port, or socket path.
        target: String,
        /// The cause.
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The server answered with an ErrorResponse.
    #[error("server error: {0}")]
    Server(ServerError),
    /// Authentication could not be completed (unsupported method, missing
    /// password, SCRAM verification failure).
    #[error("authentication: {0}")]
    Auth(String),
    /// The server sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A replication message could not be decoded.
    #[error("decoding replication data: {0}")]
    Decode(#[from] DecodeError),
    /// An operation took longer than its limit.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// A caller-supplied value cannot be used (e.g. a slot name).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The SQLSTATE of a server error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            ClientError::Server(e) => Some(&e.code),
            _ => None,
        }
    }

    /// True when reconnecting later may succeed: network failures, the
    /// server shutting down or starting up, too many connections, and a slot
    /// still held by a previous connection (`55006`). Authentication, missing
    /// slots or publications, invalidated slots and malformed data are not
    /// retryable: they need an operator or a code fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. } | ClientError::Io(_) | ClientError::Closed | ClientError::Timeout(_) => true,
            ClientError::Server(e) => {
                e.code.starts_with("08") // connection exception
                    || e.code.starts_with("53") // insufficient resources (too many connections…)
                    || e.code.starts_with("57P") // admin/crash shutdown, cannot connect now
                    || e.code == "55006" // object in use: slot active for another PID
                    || e.code == "40001"
                    || e.code == "40P01"
            }
            ClientError::Auth(_)
            | ClientError::Protocol(_)
            | ClientError::Decode(_)
            | ClientError::InvalidArgument(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> ClientError {
        ClientError::Server(ServerError { code: code.into(), ..ServerError::default() })
    }

    #[test]
    fn classifies_retryable_errors() {
        assert!(server("55006").is_retryable());
        assert!(server("57P01").is_retryable());
        assert!(server("08006").is_retryable());
        assert!(server("53300").is_retryable());
        assert!(!server("42704").is_retryable());
        assert!(!server("28P01").is_retryable());
        assert!(!server("55000").is_retryable());
        assert!(ClientError::Closed.is_retryable());
        assert!(!ClientError::Auth("x".into()).is_retryable());
        assert_eq!(server("42704").sqlstate(), Some("42704"));
    }

    #[test]
    fn displays_detail_and_hint() {
        let e = ServerError {
            severity: "ERROR".into(),
            code: "42704".into(),
            message: "replication slot \"s\" does not exist".into(),
            detail: Some("d".into()),
            hint: Some("h".into()),
        };
        assert_eq!(e.to_string(), "ERROR 42704: replication slot \"s\" does not exist (detail: d) (hint: h)");
    }
}
