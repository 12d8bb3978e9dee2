//! Execution: one transaction per request, pipelined into one round trip.
//!
//! The messages sent together on one pooled connection, in order:
//! `BEGIN [READ ONLY]` (simple protocol); one prepared statement setting
//! the caller (role and `request.jwt.claims`, as [`Caller::apply_sql`],
//! first) and the other request settings (`request.method`,
//! `request.path`, `request.headers`, `request.cookies`,
//! `statement_timeout`, `search_path`), all transaction-local; the
//! statement; optionally an
//! `EXPLAIN` for planned counts (or, for a plan request, `EXPLAIN` of the
//! statement instead of it); `set_config('timezone', …)` for
//! `Prefer: timezone`; `COMMIT` (or `ROLLBACK` for
//! `Prefer: tx=rollback`, simple protocol); and for writes `pg_current_wal_insert_lsn()`.
//!
//! Invariants:
//! - The role switch is the first statement after BEGIN, so the request's
//!   statement never runs as the pool's superuser: if the switch fails the
//!   transaction is aborted and every later statement fails.
//! - The pipeline runs on its own task, so a client that disconnects
//!   cannot leave a connection mid-transaction in the pool: BEGIN is always
//!   followed by its COMMIT/ROLLBACK.
//! - Statements are prepared with parameters of type `unknown` and bound
//!   in text format: PostgreSQL infers each parameter's type from its use,
//!   like a quoted literal. Prepared statements are cached per connection
//!   by text ([`STATEMENT_CACHE_MAX`] at most); RLS still applies, because
//!   PostgreSQL re-plans an RLS-dependent statement for the executing role.
//!
//! `X-Fluxbase-Lsn` semantics: `pg_current_wal_insert_lsn()` read on the same
//! connection right after COMMIT returned, so it is at or after the end (even with synchronous_commit off)
//! of this transaction's commit record. Once a change-stream consumer has
//! processed WAL up to that position, it has seen this write.

use bytes::BufMut;
use tokio_postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};

use super::errors::RestError;
use super::sql::Sql;
use crate::database::Pool;
use crate::http::caller::Caller;

/// A value sent in text format with type `unknown`.
#[derive(Debug)]
struct TextParam<'a>(Option<&'a str>);

impl ToSql for TextParam<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(s) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// What PostgREST exposes to SQL about the request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// `request.method`
    pub method: String,
    /// `request.path`
    pub path: String,
    /// `request.headers` (JSON object, lower-case names)
    pub headers: String,
    /// `request.cookies` (JSON object)
    pub cookies: String,
    /// `search_path` value (already quoted names).
    pub search_path: String,
    /// `statement_timeout` in ms; 0 = none.
    pub timeout_ms: u64,
    /// `Prefer: timezone=…`, already checked: the transaction's `timezone`.
    pub timezone: Option<String>,
}

/// How to end and what to read besides the statement.
#[derive(Debug, Clone, Copy)]
pub struct TxMode {
    /// `BEGIN READ ONLY` (GET/HEAD).
    pub read_only: bool,
    /// `ROLLBACK` instead of `COMMIT`.
    pub rollback: bool,
    /// Read the WAL position after COMMIT.
    pub lsn: bool,
    /// Run `EXPLAIN (…)` of the statement instead, and return the plan.
    pub plan: Option<super::explain::Plan>,
}

/// The statement's one result row, plus what the pipeline read around it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Rows in the body.
    pub page_total: i64,
    /// Exact total, when counted.
    pub total: Option<i64>,
    /// The JSON body.
    pub body: Option<String>,
    /// Rows inserted (not updated) by an upsert.
    pub inserted: Option<i64>,
    /// First row's primary key as a JSON object.
    pub location: Option<String>,
    /// Planner's row estimate, when asked.
    pub planned: Option<i64>,
    /// WAL position after COMMIT.
    pub lsn: Option<String>,
    /// The execution plan, when [`TxMode::plan`] asked for it.
    pub plan: Option<String>,
}

/// Prepared statements kept per pooled connection before the cache is emptied.
pub const STATEMENT_CACHE_MAX: usize = 64;

/// Most bound values one statement may carry.
pub const MAX_PARAMS: usize = 30_000;

/// The caller (as [`Caller::apply_sql`]: role first, then claims) and the
/// request settings in one statement: one Bind/Execute/Sync fewer per
/// request than two statements. Select-list items are evaluated in order,
/// so the role is switched before anything else.
const SETUP_SQL: &str = "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
     set_config('request.method', $3, true), set_config('request.path', $4, true), \
     set_config('request.headers', $5, true), set_config('request.cookies', $6, true), \
     set_config('statement_timeout', $7, true), set_config('search_path', $8, true)";

fn refs<'a>(ps: &'a [TextParam<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    ps.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn typed<'a>(ps: &'a [TextParam<'a>]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    ps.iter().map(|p| (p as &(dyn ToSql + Sync), Type::UNKNOWN)).collect()
}

/// Runs `stmt` (and `explain`, if given) for `caller` in one transaction.
pub async fn run(
    pool: &Pool,
    caller: &Caller,
    info: RequestInfo,
    mode: TxMode,
    stmt: Sql,
    explain: Option<Sql>,
) -> Result<Outcome, RestError> {
    // The protocol allows 65535 parameters per statement; refuse before sending.
    let params = stmt.params.len() + explain.as_ref().map_or(0, |e| e.params.len());
    if params > MAX_PARAMS {
        return Err(RestError::parse(
            "\"the request is too large\"",
            format!("it needs {params} bound values; at most {MAX_PARAMS} are allowed"),
        ));
    }
    let client = pool.get().await.map_err(|e| RestError::Unavailable(e.to_string()))?;
    let (role, claims) = caller.apply_params();
    let task = tokio::spawn(async move {
        let begin = if mode.read_only { "begin read only" } else { "begin" };
        let end = if mode.rollback { "rollback" } else { "commit" };
        let timeout = info.timeout_ms.to_string();
        let setup = [
            TextParam(Some(&role)),
            TextParam(Some(&claims)),
            TextParam(Some(&info.method)),
            TextParam(Some(&info.path)),
            TextParam(Some(&info.headers)),
            TextParam(Some(&info.cookies)),
            TextParam(Some(&timeout)),
            TextParam(Some(&info.search_path)),
        ];
        let main: Vec<TextParam<'_>> = stmt.params.iter().map(|p| TextParam(p.as_deref())).collect();
        let ex: Vec<TextParam<'_>> =
            explain.as_ref().map(|e| e.params.iter().map(|p| TextParam(p.as_deref())).collect()).unwrap_or_default();
        // Prepared statements, cached per connection by query text (one
        // round trip on a miss, none on a hit), bounded in number. Prepared
        // before BEGIN, so nothing of the transaction waits on them.
        if client.statement_cache.size() > STATEMENT_CACHE_MAX {
            client.statement_cache.clear();
        }
        let unknown = |n: usize| vec![Type::UNKNOWN; n];
        let (setup_types, main_types) = (unknown(setup.len()), unknown(main.len()));
        let prepared = futures_util::future::try_join(
            client.prepare_typed_cached(SETUP_SQL, &setup_types),
            client.prepare_typed_cached(&stmt.text, &main_types),
        )
        .await;
        let (setup_s, main_s) = prepared.map_err(|e| RestError::from_pg(&e))?;
        let (setup_r, main_r) = (refs(&setup), refs(&main));
        let ex_t = typed(&ex);
        let main_t = typed(&main);
        let plan_text = mode.plan.map(|p| format!("{}{}", p.prefix(), stmt.text));
        let tz = [TextParam(info.timezone.as_deref())];
        let tz_t = typed(&tz);
        let tz_fut = async {
            match info.timezone {
                Some(_) => Some(client.query_typed("select set_config('timezone', $1, true)", &tz_t).await),
                None => None,
            }
        };
        let main_fut = async {
            match &plan_text {
                Some(t) => client.query_typed(t, &main_t).await,
                None => client.query(&main_s, &main_r).await,
            }
        };
        let explain_fut = async {
            match &explain {
                Some(e) if mode.plan.is_none() => Some(client.query_typed(&e.text, &ex_t).await),
                _ => None,
            }
        };
        let lsn_fut = async {
            if mode.lsn {
                Some(client.query_typed("select pg_current_wal_insert_lsn()::text", &[]).await)
            } else {
                None
            }
        };
        let (b, s, z, m, x, e, l) = tokio::join!(
            client.batch_execute(begin),
            client.query(&setup_s, &setup_r),
            tz_fut,
            main_fut,
            explain_fut,
            client.batch_execute(end),
            lsn_fut,
        );
        // The first failure is the cause; later ones are "transaction aborted".
        b.map_err(|e| RestError::from_pg(&e))?;
        s.map_err(|e| RestError::from_pg(&e))?;
        if let Some(z) = z {
            z.map_err(|e| RestError::from_pg(&e))?;
        }
        let rows = m.map_err(|e| RestError::from_pg(&e))?;
        if let Some(p) = mode.plan {
            e.map_err(|e| RestError::from_pg(&e))?;
            return Ok(Outcome { plan: Some(plan_body(&rows, p.json)), page_total: 1, ..Outcome::default() });
        }
        let planned = match x {
            Some(r) => planned_rows(&r.map_err(|e| RestError::from_pg(&e))?),
            None => None,
        };
        e.map_err(|e| RestError::from_pg(&e))?;
        let lsn = match l {
            Some(r) => r.ok().and_then(|rows| rows.first().and_then(|row| row.try_get::<_, String>(0).ok())),
            None => None,
        };
        let row = rows.first().ok_or_else(|| RestError::Unavailable("statement returned no row".into()))?;
        let get_err = |e: tokio_postgres::Error| RestError::Unavailable(e.to_string());
        Ok(Outcome {
            page_total: row.try_get::<_, Option<i64>>(0).map_err(get_err)?.unwrap_or(0),
            total: row.try_get(1).map_err(get_err)?,
            body: row.try_get(2).map_err(get_err)?,
            inserted: row.try_get(3).map_err(get_err)?,
            location: row.try_get(4).map_err(get_err)?,
            planned,
            lsn,
            plan: None,
        })
    });
    task.await.map_err(|e| RestError::Unavailable(e.to_string()))?
}

/// EXPLAIN's output as the body: the JSON document, or the text lines.
fn plan_body(rows: &[tokio_postgres::Row], json: bool) -> String {
    if json {
        return rows
            .first()
            .and_then(|r| r.try_get::<_, serde_json::Value>(0).ok())
            .map(|v| v.to_string())
            .unwrap_or_else(|| "[]".into());
    }
    rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect::<Vec<_>>().join("\n")
}

/// `Plan Rows` of `explain (format json)`.
fn planned_rows(rows: &[tokio_postgres::Row]) -> Option<i64> {
    let v: serde_json::Value = rows.first()?.try_get(0).ok()?;
    v.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64().map(|f| f as i64)
}
