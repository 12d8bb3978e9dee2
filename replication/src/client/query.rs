//! Simple-query execution (a walsender accepts only the simple protocol) and
//! its text results.

use postgres_protocol::message::{backend, frontend};

use super::connection::{collect_fallible, server_error, Connection};
use super::error::ClientError;
use super::frame::BackendMessage;

/// The result of one statement of a simple query, all values as text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResult {
    /// Column names (empty for statements that return no rows).
    pub columns: Vec<String>,
    /// Rows; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// The CommandComplete tag, e.g. `SELECT 1` or `CREATE_REPLICATION_SLOT`.
    pub command_tag: Option<String>,
}

impl QueryResult {
    /// The value of `column` in row `row`, when present and not NULL.
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row)?.get(i)?.as_deref()
    }
}

fn text(bytes: &[u8]) -> Result<String, ClientError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ClientError::Protocol("query result is not UTF-8".into()))
}

/// Runs `sql` with the simple query protocol and collects every statement's
/// result. An ErrorResponse becomes [`ClientError::Server`] once the server
/// is ReadyForQuery again (so the connection stays usable).
///
/// Results are collected in memory: use it for replication commands and
/// small catalog queries, not for bulk reads.
pub async fn simple_query(conn: &mut Connection, sql: &str) -> Result<Vec<QueryResult>, ClientError> {
    frontend::query(sql, &mut conn.write_buf).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
    conn.flush().await?;
    let mut results = Vec::new();
    let mut current = QueryResult::default();
    let mut error = None;
    loop {
        let m = match conn.read_message().await? {
            BackendMessage::Message(m) => m,
            BackendMessage::CopyBoth(_) => {
                return Err(ClientError::Protocol("unexpected CopyBothResponse to a simple query".into()))
            }
            BackendMessage::NegotiateProtocolVersion { .. } => {
                return Err(ClientError::Protocol("unexpected NegotiateProtocolVersion".into()))
            }
        };
        match m {
            backend::Message::RowDescription(body) => {
                let fields = collect_fallible(body.fields())?;
                current.columns = fields.iter().map(|f| f.name().to_owned()).collect();
            }
            backend::Message::DataRow(body) => {
                let ranges = collect_fallible(body.ranges())?;
                let buf = body.buffer();
                let row = ranges
                    .into_iter()
                    .map(|r| match r {
                        None => Ok(None),
                        Some(r) => buf
                            .get(r)
                            .ok_or_else(|| ClientError::Protocol("DataRow value out of bounds".into()))
                            .and_then(text)
                            .map(Some),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                current.rows.push(row);
            }
            backend::Message::CommandComplete(body) => {
                current.command_tag = body.tag().ok().map(str::to_owned);
                results.push(std::mem::take(&mut current));
            }
            backend::Message::EmptyQueryResponse => results.push(std::mem::take(&mut current)),
            backend::Message::ErrorResponse(body) => error = Some(server_error(&body)),
            backend::Message::ReadyForQuery(_) => {
                return match error {
                    Some(e) => Err(e),
                    None => Ok(results),
                }
            }
            backend::Message::CopyInResponse(_) | backend::Message::CopyOutResponse(_) => {
                return Err(ClientError::Protocol("COPY is not supported by simple_query".into()))
            }
            _ => return Err(ClientError::Protocol("unexpected message in a simple query response".into())),
        }
    }
}
