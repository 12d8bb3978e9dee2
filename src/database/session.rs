//! [`PgSession`]: one PostgreSQL session that runs a whole request as one
//! pipeline of extended-protocol messages ended by a single Sync.
//!
//! tokio-postgres ends every statement with its own Sync, so a transaction
//! of four statements costs the backend four ReadyForQuery cycles (and as
//! many wake-ups and sends). Here every statement of a request (BEGIN, the
//! settings, the statement, COMMIT, …) is written as Parse (first use
//! only) / Bind / Execute into one buffer, followed by one Sync, and sent
//! in one write; the answers are read back in order.
//!
//! Invariants:
//! - Named statements are cached per session by text, at most
//!   [`STATEMENT_CACHE_MAX`]; a name is recorded only once its
//!   ParseComplete arrived, so a statement that failed to parse is parsed
//!   again next time, never reused.
//! - After the first error the server skips everything up to the Sync; the
//!   steps after it report nothing ([`Replies::failed`] names the step). A session whose pipeline left a
//!   transaction open (an error after BEGIN) is rolled back before it is
//!   used again.
//! - A session whose exchange was cut short (I/O error, protocol surprise)
//!   is marked broken and never returned to use ([`PgSession::is_broken`]).
//!   [`PipelineError::not_run`] says when the server provably ran none of
//!   the pipeline (it had ended the session before reading it), so the
//!   caller may run it again on another session.
//! - Parameters are sent as text with type `unknown`, results come back as
//!   text: PostgreSQL infers each parameter's type from its use, as for a
//!   quoted literal.

use std::collections::HashMap;
use std::time::Duration;

use fallible_iterator::FallibleIterator;
use fluxbase_replication::client::auth::{startup_as, SessionKind};
use fluxbase_replication::client::connection::Connection;
use fluxbase_replication::client::frame::BackendMessage;
use fluxbase_replication::client::socket::Socket;
use fluxbase_replication::client::{ClientError, ConnectParams, ServerError};
use postgres_protocol::message::{backend, frontend};
use postgres_protocol::IsNull;
use rustc_hash::FxBuildHasher;

/// Named statements kept per session before the cache is emptied.
pub const STATEMENT_CACHE_MAX: usize = 64;

/// OID of `unknown`: parameters typed like quoted literals.
const UNKNOWN_OID: u32 = 705;

/// What a pipeline produced: the rows of every step that completed, and
/// the error that stopped the rest, if one did.
#[derive(Debug)]
pub struct Replies {
    /// Rows per completed step, in step order.
    pub rows: Vec<Vec<TextRow>>,
    /// The first failing step and the server's error; the steps after it
    /// did not run.
    pub failed: Option<(usize, ServerError)>,
}

/// A pipeline whose session failed; the session is now broken.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PipelineError {
    /// What failed.
    pub error: ClientError,
    /// The server ran none of the pipeline. Either nothing was sent, or the
    /// server's first answer was its farewell: the FATAL error of class 57P
    /// it sends when it ends a session (terminated, shut down, idle too
    /// long). It writes that after any replies it had queued, so a
    /// farewell first means no message of the pipeline was processed.
    pub not_run: bool,
}

impl PipelineError {
    fn ran(error: ClientError) -> PipelineError {
        PipelineError { error, not_run: false }
    }

    /// The connection itself ended or failed (as opposed to a protocol surprise).
    pub fn connection_lost(&self) -> bool {
        matches!(self.error, ClientError::Closed | ClientError::Io(_))
    }
}

/// Whether `e` is the server ending the session rather than answering.
fn is_farewell(e: &ServerError) -> bool {
    matches!(e.severity.as_str(), "FATAL" | "PANIC") && e.code.starts_with("57P")
}

/// How long to look for a farewell after a write to a closed session failed.
const FAREWELL_WAIT: Duration = Duration::from_millis(250);

/// One statement of a pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// SQL text with `$n` placeholders.
    pub sql: &'a str,
    /// Parameter values in text form; `None` is NULL.
    pub params: &'a [Option<&'a str>],
    /// Keep the parsed statement for the next use of the same text.
    pub cache: bool,
}

impl<'a> Step<'a> {
    /// A statement kept prepared in the session's cache.
    pub fn cached(sql: &'a str, params: &'a [Option<&'a str>]) -> Step<'a> {
        Step { sql, params, cache: true }
    }

    /// A statement parsed for this use only (texts that rarely repeat).
    pub fn once(sql: &'a str, params: &'a [Option<&'a str>]) -> Step<'a> {
        Step { sql, params, cache: false }
    }
}

/// A result row; every column in text form.
#[derive(Debug)]
pub struct TextRow {
    body: backend::DataRowBody,
}

impl TextRow {
    /// Column `i` as text (`None` for NULL or a missing column).
    pub fn text(&self, i: usize) -> Result<Option<&str>, ClientError> {
        let bad = |m: String| ClientError::Protocol(format!("malformed data row: {m}"));
        let range = self.body.ranges().nth(i).map_err(|e| bad(e.to_string()))?.flatten();
        match range {
            Some(r) => {
                let bytes = self.body.buffer().get(r).ok_or_else(|| bad("column out of bounds".into()))?;
                std::str::from_utf8(bytes).map(Some).map_err(|e| bad(e.to_string()))
            }
            None => Ok(None),
        }
    }
}

/// A connected session with its statement cache.
#[derive(Debug)]
pub struct PgSession {
    conn: Connection,
    /// By text; FxHash, since a pipeline looks up every statement's text
    /// (hundreds of bytes) and the cache is small and bounded.
    statements: HashMap<Box<str>, u32, FxBuildHasher>,
    next_name: u32,
    broken: bool,
}

impl PgSession {
    /// Connects and authenticates an ordinary session, within `timeout`.
    pub async fn connect(params: &ConnectParams, timeout: Duration) -> Result<PgSession, ClientError> {
        let fut = async {
            let mut conn = Connection::new(Socket::connect(params).await?);
            startup_as(&mut conn, params, SessionKind::Plain).await?;
            Ok(PgSession { conn, statements: HashMap::default(), next_name: 0, broken: false })
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| ClientError::Timeout("connecting"))?
    }

    /// The backend's process id (BackendKeyData).
    pub fn backend_pid(&self) -> Option<i32> {
        self.conn.backend_key().map(|(pid, _)| pid)
    }

    /// True when an exchange was cut short: the session must be dropped.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Runs `steps` as one pipeline (one write, one Sync). A statement the
    /// server refuses is reported in [`Replies::failed`]; an `Err` means
    /// the session itself failed (and is now broken).
    pub async fn pipeline(&mut self, steps: &[Step<'_>]) -> Result<Replies, PipelineError> {
        if self.broken {
            return Err(PipelineError { error: ClientError::Protocol("the session is broken".into()), not_run: true });
        }
        self.broken = true;
        let (closes, parses) = self.encode(steps).map_err(|error| PipelineError { error, not_run: true })?;
        if let Err(error) = self.conn.flush().await {
            // A session the server ended while it was idle refuses the write
            // (on a Unix socket); its farewell may still be there to read.
            let read = tokio::time::timeout(FAREWELL_WAIT, self.conn.read_message()).await;
            let not_run = match read {
                Ok(Ok(BackendMessage::Message(backend::Message::ErrorResponse(body)))) => {
                    ServerError::from_fields(body.fields()).is_ok_and(|e| is_farewell(&e))
                }
                _ => false,
            };
            return Err(PipelineError { error, not_run });
        }
        let replies = self.read_replies(steps, closes, &parses).await?;
        self.broken = false;
        Ok(replies)
    }

    /// Encodes the pipeline. Returns how many statements it closes first
    /// and, per step, the cache name it parses (recorded on ParseComplete).
    fn encode(&mut self, steps: &[Step<'_>]) -> Result<(usize, Vec<Option<u32>>), ClientError> {
        let io = |e: std::io::Error| ClientError::Protocol(format!("encoding a message: {e}"));
        let mut closes = 0;
        let mut cached: Vec<Option<u32>> = steps.iter().map(|s| self.statements.get(s.sql).copied()).collect();
        let fresh = steps.iter().zip(&cached).filter(|(s, c)| s.cache && c.is_none()).count();
        if self.statements.len() + fresh > STATEMENT_CACHE_MAX {
            for name in std::mem::take(&mut self.statements).into_values() {
                frontend::close(b'S', &statement_name(name), self.conn.write_buf()).map_err(io)?;
                closes += 1;
            }
            cached.iter_mut().for_each(|c| *c = None);
        }
        let mut parses = Vec::with_capacity(steps.len());
        let mut this_pipeline: Vec<(&str, u32)> = Vec::new();
        for (step, cached) in steps.iter().zip(cached) {
            let known = cached.or_else(|| this_pipeline.iter().find(|(sql, _)| *sql == step.sql).map(|(_, n)| *n));
            let name = match (step.cache, known) {
                (true, Some(n)) => {
                    parses.push(None);
                    statement_name(n)
                }
                (cache, _) => {
                    let name = if cache {
                        self.next_name = self.next_name.wrapping_add(1);
                        this_pipeline.push((step.sql, self.next_name));
                        parses.push(Some(self.next_name));
                        statement_name(self.next_name)
                    } else {
                        parses.push(None);
                        String::new()
                    };
                    let types = std::iter::repeat_n(UNKNOWN_OID, step.params.len());
                    frontend::parse(&name, step.sql, types, self.conn.write_buf()).map_err(io)?;
                    name
                }
            };
            let bound = frontend::bind(
                "",
                &name,
                std::iter::empty::<i16>(),
                step.params.iter(),
                |p, buf| match p {
                    Some(s) => {
                        buf.extend_from_slice(s.as_bytes());
                        Ok(IsNull::No)
                    }
                    None => Ok(IsNull::Yes),
                },
                std::iter::empty::<i16>(),
                self.conn.write_buf(),
            );
            bound.map_err(|e| match e {
                frontend::BindError::Conversion(e) => ClientError::Protocol(e.to_string()),
                frontend::BindError::Serialization(e) => io(e),
            })?;
            frontend::execute("", 0, self.conn.write_buf()).map_err(io)?;
        }
        frontend::sync(self.conn.write_buf());
        Ok((closes, parses))
    }

    async fn read_replies(
        &mut self,
        steps: &[Step<'_>],
        closes: usize,
        parses: &[Option<u32>],
    ) -> Result<Replies, PipelineError> {
        let mut results: Vec<Vec<TextRow>> = Vec::with_capacity(steps.len());
        let mut failed: Option<(usize, ServerError)> = None;
        let mut closed = 0;
        let mut rows = Vec::new();
        // Whether the server answered any message of this pipeline, and
        // whether its first word was a farewell instead.
        let (mut answered, mut farewell) = (false, false);
        let status = loop {
            let m = match self.conn.read_message().await {
                Ok(BackendMessage::Message(m)) => m,
                Ok(other) => return Err(PipelineError::ran(unexpected(&format!("{other:?}")))),
                Err(error) => return Err(PipelineError { error, not_run: farewell }),
            };
            if !matches!(m, backend::Message::ErrorResponse(_) | backend::Message::NotificationResponse(_)) {
                answered = true;
            }
            match m {
                backend::Message::CloseComplete if closed < closes => closed += 1,
                backend::Message::ParseComplete => {
                    let step = steps.get(results.len()).ok_or_else(|| PipelineError::ran(unexpected("ParseComplete")))?;
                    if let Some(Some(name)) = parses.get(results.len()) {
                        self.statements.insert(step.sql.into(), *name);
                    }
                }
                backend::Message::BindComplete => {}
                backend::Message::DataRow(body) => rows.push(TextRow { body }),
                backend::Message::CommandComplete(_) | backend::Message::EmptyQueryResponse => {
                    results.push(std::mem::take(&mut rows));
                }
                backend::Message::ErrorResponse(body) => {
                    let error = ServerError::from_fields(body.fields()).map_err(PipelineError::ran)?;
                    farewell = !answered && is_farewell(&error);
                    failed = Some((results.len(), error));
                }
                backend::Message::ReadyForQuery(body) => break body.status(),
                backend::Message::NotificationResponse(_) => {}
                _ => return Err(PipelineError::ran(unexpected("a message outside the extended protocol"))),
            }
        };
        if status != b'I' {
            self.rollback().await.map_err(PipelineError::ran)?;
        }
        if failed.is_none() && results.len() != steps.len() {
            return Err(PipelineError::ran(unexpected("fewer results than statements")));
        }
        Ok(Replies { rows: results, failed })
    }

    /// Ends a transaction the pipeline left open or failed.
    async fn rollback(&mut self) -> Result<(), ClientError> {
        frontend::query("rollback", self.conn.write_buf()).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.conn.flush().await?;
        loop {
            match self.conn.read_message().await? {
                BackendMessage::Message(backend::Message::ReadyForQuery(b)) if b.status() == b'I' => return Ok(()),
                BackendMessage::Message(backend::Message::ReadyForQuery(_)) => {
                    return Err(unexpected("still in a transaction after ROLLBACK"))
                }
                _ => {}
            }
        }
    }
}

fn statement_name(n: u32) -> String {
    format!("fx{n}")
}

fn unexpected(what: &str) -> ClientError {
    ClientError::Protocol(format!("unexpected reply in a pipeline: {what}"))
}

