//! REST errors: [`RestError`] inside the module, mapped once to
//! [`ApiError`] in PostgREST's shape (`{code, message, details, hint}`),
//! and PostgreSQL errors passed through with PostgREST's SQLSTATE → HTTP
//! status mapping.

use http::StatusCode;

use crate::http::error::ApiError;

/// Everything that can go wrong serving a REST request.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// PGRST100: the query string (or a header value) does not parse.
    #[error("{message}")]
    Parse {
        /// What failed, e.g. `failed to parse filter (eq)`.
        message: String,
        /// Where and why.
        details: String,
    },
    /// PGRST102: the body is not valid JSON (or not the right shape).
    #[error("{0}")]
    Body(String),
    /// PGRST103: the requested range cannot be satisfied.
    #[error("Requested range not satisfiable")]
    Range(String),
    /// PGRST106: the schema is not exposed.
    #[error("Invalid schema: {schema}")]
    Schema {
        /// The schema asked for.
        schema: String,
        /// The exposed ones.
        exposed: Vec<String>,
    },
    /// PGRST107: a media type we cannot produce or consume.
    #[error("{0}")]
    MediaType(String, StatusCode),
    /// PGRST116: `vnd.pgrst.object+json` with other than exactly one row.
    #[error("Cannot coerce the result to a single JSON object")]
    NotSingular(i64),
    /// PGRST200: no relationship between two resources.
    #[error("Could not find a relationship between '{0}' and '{1}' in the schema cache")]
    NoRelationship(String, String, Option<String>),
    /// PGRST201: more than one relationship; a hint is needed.
    #[error("Could not embed because more than one relationship was found for '{0}' and '{1}'")]
    AmbiguousRelationship(String, String, Vec<String>),
    /// PGRST202: no such function.
    #[error("Could not find the function {name} in the schema cache")]
    NoFunction {
        /// `schema.name(args)`, as in PostgREST's message.
        name: String,
        /// What was searched for.
        details: String,
        /// What to try instead, if anything.
        hint: Option<String>,
    },
    /// PGRST204: a body column the table does not have.
    #[error("Could not find the '{column}' column of '{table}' in the schema cache")]
    NoColumnInBody {
        /// The column.
        column: String,
        /// The table.
        table: String,
    },
    /// 42703: a column the table does not have (select, filter, order).
    #[error("column {table}.{column} does not exist")]
    NoColumn {
        /// The column.
        column: String,
        /// The table.
        table: String,
    },
    /// PGRST205: no such table or view.
    #[error("Could not find the table '{0}' in the schema cache")]
    NoTable(String, Option<String>),
    /// A request PostgREST refuses for its shape (method, missing PK…).
    #[error("{message}")]
    Refused {
        /// PGRST code.
        code: &'static str,
        /// HTTP status.
        status: StatusCode,
        /// Message.
        message: String,
        /// Details.
        details: Option<String>,
    },
    /// PGRST109 (PostgREST 12): a limited update or delete without an order.
    #[error("A 'limit' was applied without an explicit 'order'")]
    LimitWithoutOrder,
    /// An error raised by PostgreSQL.
    #[error("{}", .0.message)]
    Db(DbError),
    /// The database could not be reached or failed outside SQL.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// A PostgreSQL error's fields.
#[derive(Debug, Clone)]
pub struct DbError {
    /// SQLSTATE.
    pub code: String,
    /// Message.
    pub message: String,
    /// DETAIL.
    pub details: Option<String>,
    /// HINT.
    pub hint: Option<String>,
}

impl RestError {
    /// PGRST100 with a message and details.
    pub fn parse(message: impl Into<String>, details: impl Into<String>) -> RestError {
        RestError::Parse { message: message.into(), details: details.into() }
    }

    /// From the server's refusal of a pipelined statement: the SQLSTATE,
    /// message, detail and hint as PostgreSQL sent them.
    pub fn from_server(e: fluxbase_replication::client::ServerError) -> RestError {
        RestError::Db(DbError { code: e.code, message: e.message, details: e.detail, hint: e.hint })
    }

    /// From a driver error: SQL errors keep their SQLSTATE, anything else
    /// (connection lost, protocol) becomes 503.
    pub fn from_pg(e: &tokio_postgres::Error) -> RestError {
        match e.as_db_error() {
            Some(db) => RestError::Db(DbError {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
                details: db.detail().map(str::to_owned),
                hint: db.hint().map(str::to_owned),
            }),
            None => RestError::Unavailable(e.to_string()),
        }
    }

    /// The API error, rendered by the edge. `authenticated` decides 42501's status.
    pub fn to_api(&self, authenticated: bool) -> ApiError {
        let msg = self.to_string();
        match self {
            RestError::Parse { details, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "PGRST100", msg).with_details(details.clone())
            }
            RestError::Body(_) => ApiError::new(StatusCode::BAD_REQUEST, "PGRST102", msg),
            RestError::Range(d) => {
                ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103", msg).with_details(d.clone())
            }
            RestError::Schema { exposed, .. } => ApiError::new(StatusCode::NOT_ACCEPTABLE, "PGRST106", msg)
                .with_hint(format!("Only the following schemas are exposed: {}", exposed.join(", "))),
            RestError::MediaType(_, status) => ApiError::new(*status, "PGRST107", msg),
            RestError::NotSingular(n) => ApiError::new(StatusCode::NOT_ACCEPTABLE, "PGRST116", msg)
                .with_details(format!("The result contains {n} rows")),
            RestError::NoRelationship(_, _, hint) => {
                let e = ApiError::new(StatusCode::BAD_REQUEST, "PGRST200", msg).with_details(
                    "Searched for a foreign key relationship in the schema cache, but no matches were found.",
                );
                match hint {
                    Some(h) => e.with_hint(h.clone()),
                    None => e,
                }
            }
            RestError::AmbiguousRelationship(_, _, candidates) => {
                ApiError::new(StatusCode::MULTIPLE_CHOICES, "PGRST201", msg)
                    .with_details(candidates.join("; "))
                    .with_hint("Try changing the embedded resource to one of the hints listed in details, e.g. 'table!fkey_name'")
            }
            RestError::NoFunction { details, hint, .. } => {
                let e = ApiError::new(StatusCode::NOT_FOUND, "PGRST202", msg).with_details(details.clone());
                match hint {
                    Some(h) => e.with_hint(h.clone()),
                    None => e,
                }
            }
            RestError::NoColumnInBody { .. } => ApiError::new(StatusCode::BAD_REQUEST, "PGRST204", msg),
            RestError::NoColumn { .. } => ApiError::new(StatusCode::BAD_REQUEST, "42703", msg),
            RestError::NoTable(_, hint) => {
                let e = ApiError::new(StatusCode::NOT_FOUND, "PGRST205", msg);
                match hint {
                    Some(h) => e.with_hint(h.clone()),
                    None => e,
                }
            }
            RestError::LimitWithoutOrder => ApiError::new(StatusCode::BAD_REQUEST, "PGRST109", msg)
                .with_hint("Apply an 'order' using unique column(s)"),
            RestError::Refused { code, status, details, .. } => {
                let e = ApiError::new(*status, *code, msg);
                match details {
                    Some(d) => e.with_details(d.clone()),
                    None => e,
                }
            }
            RestError::Db(db) if db.code == "PGRST" => super::overrides::raised(db),
            RestError::Db(db) => {
                let mut e = ApiError::new(pg_status(&db.code, authenticated), db.code.clone(), db.message.clone());
                e.details = db.details.clone();
                e.hint = db.hint.clone();
                e
            }
            RestError::Unavailable(_) => {
                tracing::warn!(error = %msg, "REST database error");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST000", "Could not connect with the database")
            }
        }
    }
}

/// PostgREST's HTTP status for a SQLSTATE.
pub fn pg_status(code: &str, authenticated: bool) -> StatusCode {
    let b = code.as_bytes();
    let p2 = code.get(0..2).unwrap_or("");
    match code {
        "23503" | "23505" => return StatusCode::CONFLICT,
        "25006" => return StatusCode::METHOD_NOT_ALLOWED,
        "53400" => return StatusCode::INTERNAL_SERVER_ERROR,
        "57P01" => return StatusCode::SERVICE_UNAVAILABLE,
        "P0001" => return StatusCode::BAD_REQUEST,
        "42883" | "42P01" => return StatusCode::NOT_FOUND,
        "42P17" => return StatusCode::INTERNAL_SERVER_ERROR,
        "42501" => {
            return if authenticated { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
        }
        _ => {}
    }
    if b.len() == 5 && p2 == "PT" {
        return code
            .get(2..)
            .and_then(|n| n.parse::<u16>().ok())
            .and_then(|n| StatusCode::from_u16(n).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    match p2 {
        "08" | "53" => StatusCode::SERVICE_UNAVAILABLE,
        "0L" | "0P" | "28" => StatusCode::FORBIDDEN,
        "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0" | "HV" | "P0" | "XX" => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_mapping_follows_postgrest() {
        assert_eq!(pg_status("23505", true), StatusCode::CONFLICT);
        assert_eq!(pg_status("23503", true), StatusCode::CONFLICT);
        assert_eq!(pg_status("42501", false), StatusCode::UNAUTHORIZED);
        assert_eq!(pg_status("42501", true), StatusCode::FORBIDDEN);
        assert_eq!(pg_status("42P01", true), StatusCode::NOT_FOUND);
        assert_eq!(pg_status("P0001", true), StatusCode::BAD_REQUEST);
        assert_eq!(pg_status("25006", true), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(pg_status("08006", true), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(pg_status("PT402", true), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(pg_status("22P02", true), StatusCode::BAD_REQUEST);
        assert_eq!(pg_status("XX000", true), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
