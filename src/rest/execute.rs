//! Execution: one transaction per request, as one pipeline: one write,
//! one Sync, one round trip (see [`crate::database::session`]).
//!
//! The statements of the pipeline, in order: `BEGIN` (writes only); one
//! statement setting the caller (role and `request.jwt.claims`, as
//! [`Caller::apply_sql`], first) and the other request settings
//! (`request.method`, `request.path`, `request.headers`,
//! `request.cookies`, `statement_timeout`, `search_path`, and for reads
//! `transaction_read_only`), all transaction-local;
//! `set_config('timezone', …)` for `Prefer: timezone`; the
//! `db-pre-request` function, if configured; the statement (or,
//! for a plan request, `EXPLAIN` of it); optionally an `EXPLAIN` for
//! planned counts; for writes `COMMIT` (or `ROLLBACK` for
//! `Prefer: tx=rollback`) and `pg_current_wal_insert_lsn()`.
//!
//! A read (GET/HEAD) has no `BEGIN` and no `COMMIT`: the statements an
//! extended-protocol pipeline runs before its one Sync are one implicit
//! transaction, so the transaction-local settings hold until the Sync ends
//! it, and `transaction_read_only` makes it read-only as `BEGIN READ ONLY`
//! would. That is two statements fewer for PostgreSQL to run per read.
//!
//! Invariants:
//! - The role switch is the first statement of the transaction, so the
//!   request's statement never runs as the pool's superuser: if the switch
//!   fails the server skips every later statement of the pipeline (after
//!   an error it discards messages up to the Sync, in a transaction block
//!   or not).
//! - A session the server ended while it sat idle (terminated, restarted)
//!   costs no request: the pipeline runs again on another session when the
//!   server provably ran none of it, and a read-only one whenever the
//!   connection was lost (`run_pipeline`).
//! - A client that disconnects cannot leave a session mid-transaction in
//!   the pool: a session is marked broken from the moment it sends until
//!   it has read the pipeline's ReadyForQuery, and the pool drops broken
//!   sessions (PostgreSQL rolls back what a closed connection left open).
//!   A write pipeline that failed after BEGIN is rolled back by the
//!   session before it is reused.
//! - Statements are cached per session by text; RLS still applies, because
//!   PostgreSQL re-plans an RLS-dependent statement for the executing role.
//!
//! `X-Fluxbase-Lsn` semantics: `pg_current_wal_insert_lsn()` read on the same
//! connection right after COMMIT returned, so it is at or after the end (even with synchronous_commit off)
//! of this transaction's commit record. Once a change-stream consumer has
//! processed WAL up to that position, it has seen this write.

use std::sync::Arc;

use super::errors::RestError;
use super::sql::Sql;
use crate::database::session::{Replies, Step, TextRow};
use crate::database::SessionPool;
use crate::http::caller::Caller;

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
    /// The `db-pre-request` call (`select "s"."f"()`), if configured.
    pub pre_request: Option<Arc<str>>,
}

/// How to end and what to read besides the statement.
#[derive(Debug, Clone, Copy)]
pub struct TxMode {
    /// A read-only implicit transaction (GET/HEAD): no `BEGIN`/`COMMIT`.
    pub read_only: bool,
    /// `ROLLBACK` instead of `COMMIT` (moot for a read-only transaction).
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
    /// `response.headers` as the transaction left it (see
    /// [`super::overrides`]).
    pub response_headers: Option<String>,
    /// `response.status` as the transaction left it.
    pub response_status: Option<String>,
}

/// Most bound values one statement may carry.
pub const MAX_PARAMS: usize = 30_000;

/// The caller (as [`Caller::apply_sql`]: role first, then claims) and the
/// request settings in one statement: one Bind/Execute/Sync fewer per
/// request than two statements. Select-list items are evaluated in order,
/// so the role is switched before anything else. A macro, so that
/// [`READ_SETUP_SQL`] extends this very text.
macro_rules! setup_sql {
    () => {
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
         set_config('request.method', $3, true), set_config('request.path', $4, true), \
         set_config('request.headers', $5, true), set_config('request.cookies', $6, true), \
         set_config('statement_timeout', $7, true), set_config('search_path', $8, true)"
    };
}

/// The settings statement of a write (see `setup_sql!`).
const SETUP_SQL: &str = setup_sql!();

/// [`SETUP_SQL`] for a read: also makes the implicit transaction read-only,
/// as `BEGIN READ ONLY` would (turning it on is allowed at any point of a
/// transaction; turning it back off after the first query is not).
const READ_SETUP_SQL: &str = concat!(setup_sql!(), ", set_config('transaction_read_only', 'on', true)");

/// `Prefer: timezone=…` for the transaction.
const TIMEZONE_SQL: &str = "select set_config('timezone', $1, true)";

/// The WAL position read after COMMIT (`X-Fluxbase-Lsn`).
const LSN_SQL: &str = "select pg_current_wal_insert_lsn()::text";

/// Runs `stmt` (and `explain`, if given) for `caller` in one transaction.
pub async fn run(
    pool: &SessionPool,
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
    let (role, claims) = caller.apply_params();
    {
        let timeout = info.timeout_ms.to_string();
        let setup = [
            Some(role),
            Some(claims),
            Some(info.method.as_str()),
            Some(info.path.as_str()),
            Some(info.headers.as_str()),
            Some(info.cookies.as_str()),
            Some(timeout.as_str()),
            Some(info.search_path.as_str()),
        ];
        let main: Vec<Option<&str>> = stmt.params.iter().map(|p| p.as_deref()).collect();
        let ex: Vec<Option<&str>> =
            explain.as_ref().map(|e| e.params.iter().map(|p| p.as_deref()).collect()).unwrap_or_default();
        let tz = [info.timezone.as_deref()];
        let plan_text = mode.plan.map(|p| format!("{}{}", p.prefix(), stmt.text));

        let mut steps = if mode.read_only {
            vec![Step::cached(READ_SETUP_SQL, &setup)]
        } else {
            vec![Step::cached("begin", &[]), Step::cached(SETUP_SQL, &setup)]
        };
        if info.timezone.is_some() {
            steps.push(Step::cached(TIMEZONE_SQL, &tz));
        }
        if let Some(call) = &info.pre_request {
            steps.push(Step::cached(call, &[]));
        }
        let main_at = steps.len();
        steps.push(match &plan_text {
            Some(t) => Step::once(t, &main),
            None => Step::cached(&stmt.text, &main),
        });
        let explain_at = match (&explain, mode.plan) {
            (Some(e), None) => {
                steps.push(Step::once(&e.text, &ex));
                Some(steps.len() - 1)
            }
            _ => None,
        };
        // For a read, the Sync ends the transaction: its last step stands
        // in for COMMIT where failures and the WAL position are placed.
        if !mode.read_only {
            steps.push(Step::cached(if mode.rollback { "rollback" } else { "commit" }, &[]));
        }
        let end_at = steps.len() - 1;
        if mode.lsn {
            steps.push(Step::cached(LSN_SQL, &[]));
        }
        let Replies { rows, failed } = run_pipeline(pool, &steps, mode.read_only).await?;
        // The first failure is the cause. One after COMMIT (reading the
        // WAL position) leaves the write committed: no LSN, no error.
        if let Some((step, e)) = failed {
            if step <= end_at {
                return Err(RestError::from_server(e));
            }
        }
        let at = |i: usize| rows.get(i).map(Vec::as_slice).unwrap_or_default();
        if let Some(p) = mode.plan {
            return Ok(Outcome { plan: Some(plan_body(at(main_at), p.json)), page_total: 1, ..Outcome::default() });
        }
        let planned = explain_at.and_then(|i| planned_rows(at(i)));
        let lsn = at(end_at + 1).first().and_then(|r| r.text(0).ok().flatten().map(str::to_owned));
        let row = at(main_at).first().ok_or_else(|| RestError::Unavailable("statement returned no row".into()))?;
        let bad = |e: fluxbase_replication::ClientError| RestError::Unavailable(e.to_string());
        let int = |i: usize| -> Result<Option<i64>, RestError> {
            match row.text(i).map_err(bad)? {
                Some(t) => t.parse().map(Some).map_err(|e| RestError::Unavailable(format!("column {i}: {e}"))),
                None => Ok(None),
            }
        };
        let text = |i: usize| -> Result<Option<String>, RestError> { Ok(row.text(i).map_err(bad)?.map(str::to_owned)) };
        Ok(Outcome {
            page_total: int(0)?.unwrap_or(0),
            total: int(1)?,
            body: text(2)?,
            inserted: int(3)?,
            location: text(4)?,
            planned,
            lsn,
            plan: None,
            response_headers: text(5)?,
            response_status: text(6)?,
        })
    }
}

/// Runs `steps` on a session from `pool`. A session the server had ended
/// while it sat idle (a PostgreSQL restart ends them all) fails the
/// pipeline without running it, and the pipeline runs again on the next
/// session, up to one more time than the pool has sessions. A read-only
/// pipeline also runs again after a lost connection whatever it got to.
async fn run_pipeline(pool: &SessionPool, steps: &[Step<'_>], read_only: bool) -> Result<Replies, RestError> {
    let attempts = pool.status().max_size + 1;
    let mut attempt = 1;
    loop {
        let mut session = pool.get().await.map_err(|e| RestError::Unavailable(e.to_string()))?;
        match session.pipeline(steps).await {
            Ok(replies) => return Ok(replies),
            Err(e) if attempt < attempts && (e.not_run || (read_only && e.connection_lost())) => {
                tracing::debug!(attempt, error = %e, "REST session lost; running the request on another");
                attempt += 1;
            }
            Err(e) => return Err(RestError::Unavailable(e.to_string())),
        }
    }
}

/// EXPLAIN's output as the body: the JSON document (compacted), or the
/// text lines.
fn plan_body(rows: &[TextRow], json: bool) -> String {
    if json {
        return rows
            .first()
            .and_then(|r| r.text(0).ok().flatten())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .map(|v| v.to_string())
            .unwrap_or_else(|| "[]".into());
    }
    rows.iter().filter_map(|r| r.text(0).ok().flatten()).collect::<Vec<_>>().join("\n")
}

/// `Plan Rows` of `explain (format json)`.
fn planned_rows(rows: &[TextRow]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(rows.first()?.text(0).ok()??).ok()?;
    v.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64().map(|f| f as i64)
}
