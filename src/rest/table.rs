//! Tables and views: GET/HEAD (read), POST (insert, upsert), PATCH
//! (update), DELETE, with PostgREST's status codes and headers.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::Value;
use warp::reply::Response;

use super::errors::RestError;
use super::execute::{self, TxMode};
use super::query::{parse_query, ApiQuery};
use super::response::{self, Count, Format, Negotiated, Prefer, Return, Shape};
use super::schema_cache::{MediaAggregate, SchemaCache, Table};
use super::sql::values;
use super::sql::write::{self, Conflict, Returning, Rows};
use super::sql::{read, Sql};
use super::body::{self, Media};
use super::{plan, Request, Rest};

/// A table write's body as JSON, read by its `Content-Type`.
fn json_body(req: &Request, cfg: &super::RestConfig) -> Result<Value, RestError> {
    body::to_json(Media::of(&req.headers)?, &req.body, cfg)
}

/// Serves `/rest/v1/<name>`.
pub async fn handle(rest: &Arc<Rest>, cache: &SchemaCache, req: &Request, name: &str) -> Result<Response, RestError> {
    let cfg = &rest.app.config.rest;
    let schema = req.schema(cfg)?;
    let read = matches!(req.method, Method::GET | Method::HEAD);
    let q = parse_query(&req.query, &cfg.limits(), &|_| false)?;
    // Reads may be answered by a media type handler aggregate.
    let handlers: Vec<&MediaAggregate> = if read { cache.row_handlers(Some((&schema, name)), q.whole_rows()) } else { Vec::new() };
    let types: Vec<&str> = handlers.iter().map(|a| a.media.media_type.as_str()).collect();
    let (format, handler) = match response::negotiate(&req.headers, cfg.plan_enabled, &types)? {
        Negotiated::Builtin(f) => (f.check(cache)?, None),
        Negotiated::Handler(i) => (Format::Json, handlers.get(i).copied()),
    };
    let table = plan::table(cache, &schema, name)?;
    let prefer = rest.prefer(&req.headers).await?;
    let mut node = plan::plan(cache, table, &q)?;
    match req.method {
        Method::GET | Method::HEAD => {
            apply_range_header(req, &mut node.range)?;
            if cfg.max_rows > 0 {
                let cap = i64::try_from(cfg.max_rows).unwrap_or(i64::MAX);
                node.range.limit = Some(node.range.limit.map_or(cap, |l| l.min(cap)));
            }
            let head = req.method == Method::HEAD;
            let exact = matches!(prefer.count, Some(Count::Exact | Count::Estimated));
            let mode = TxMode { read_only: true, rollback: prefer.rollback == Some(true), lsn: false, plan: format.plan() };
            if let Some(agg) = handler {
                let stmt = if head { read::read_statement(&node, exact, format.body(false)) } else { read::handled_read_statement(&node, exact, agg) };
                let out = run(rest, req, &schema, &prefer, mode, stmt, None).await?;
                return response::build_handled(&out, &response::handler_content_type(&agg.media.media_type), agg.media.bytes, head);
            }
            let stmt = read::read_statement(&node, exact, format.body(!head));
            let explain = matches!(prefer.count, Some(Count::Planned | Count::Estimated)).then(|| read::planned_count_statement(&node));
            let mut out = run(rest, req, &schema, &prefer, mode, stmt, explain).await?;
            if response::strip_nulls_wanted(&req.headers) {
                out.body = response::strip_nulls(out.body);
            }
            let total = match prefer.count {
                Some(Count::Exact) => out.total,
                Some(Count::Planned) => out.planned,
                Some(Count::Estimated) => {
                    let max = i64::try_from(cfg.max_rows).unwrap_or(i64::MAX);
                    match (out.planned, out.total) {
                        (Some(p), _) if cfg.max_rows > 0 && p > max => Some(p),
                        (_, t) => t,
                    }
                }
                None => None,
            };
            response::build(
                &out,
                Shape {
                    status: StatusCode::OK,
                    format,
                    no_body: head,
                    offset: node.range.offset.unwrap_or(0),
                    total,
                    applied: prefer.applied(false),
                    location: None,
                    write_range: false,
                },
            )
        }
        Method::POST => insert(rest, req, table, &q, &node, &schema, &prefer, format).await,
        Method::PUT => put(rest, req, table, &node, &schema, &prefer, format).await,
        Method::PATCH | Method::DELETE => {
            let limited = node.range.limit.is_some() || node.range.offset.is_some();
            if limited && node.order.is_empty() {
                return Err(RestError::LimitWithoutOrder);
            }
            if limited && node.order.iter().any(|o| o.relation.is_some()) {
                return Err(RestError::Refused {
                    code: "PGRST118",
                    status: StatusCode::BAD_REQUEST,
                    message: "A related order is not possible on an update or a delete".into(),
                    details: None,
                });
            }
            let ret = prefer.ret.unwrap_or_default();
            let returning = Returning {
                rows: ret != Return::Minimal || prefer.count.is_some() || format == Format::Object || prefer.max_affected().is_some(),
                body: format.body(ret == Return::Representation),
                single: format == Format::Object,
                max_affected: prefer.max_affected(),
            };
            let stmt = if req.method == Method::PATCH {
                let body = json_body(req, cfg)?;
                let Value::Object(obj) = &body else {
                    return Err(RestError::Body("Empty or invalid json: PATCH takes a JSON object".into()));
                };
                let columns: Vec<String> = obj.keys().cloned().collect();
                check_body_columns(table, &columns)?;
                if columns.is_empty() {
                    return Ok(empty_write(ret, &prefer));
                }
                let rows = values::bind_row(table, &columns, obj, false).map_or_else(|| Rows::Json(body.to_string()), Rows::One);
                write::update(table, &node, rows, &columns, returning)
            } else {
                write::delete(table, &node, returning)
            };
            let mode = TxMode { read_only: false, rollback: prefer.rollback == Some(true), lsn: true, plan: format.plan() };
            let mut out = run(rest, req, &schema, &prefer, mode, stmt, None).await?;
            if response::strip_nulls_wanted(&req.headers) {
                out.body = response::strip_nulls(out.body);
            }
            let status = if ret == Return::Representation { StatusCode::OK } else { StatusCode::NO_CONTENT };
            response::build(
                &out,
                Shape {
                    status,
                    format,
                    no_body: ret != Return::Representation,
                    offset: 0,
                    total: prefer.count.map(|_| out.page_total),
                    applied: prefer.applied(true),
                    location: None,
                    write_range: true,
                },
            )
        }
        ref m => Err(super::method_not_allowed(m)),
    }
}

/// `Range: 0-9` (with `Range-Unit: items`) as offset/limit when the query has none.
fn apply_range_header(req: &Request, range: &mut super::query::Range) -> Result<(), RestError> {
    let Some(v) = req.headers.get(http::header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let v = v.trim().trim_start_matches("items=");
    let Some((from, to)) = v.split_once('-') else { return Ok(()) };
    let Ok(from) = from.trim().parse::<i64>() else { return Ok(()) };
    let to = to.trim().parse::<i64>().ok();
    if let Some(t) = to {
        if t < from {
            return Err(RestError::Range("The lower boundary must be lower than or equal to the upper boundary".into()));
        }
    }
    if range.offset.is_none() {
        range.offset = Some(from);
    }
    if let Some(t) = to {
        let n = t.saturating_sub(from).saturating_add(1);
        range.limit = Some(range.limit.map_or(n, |l| l.min(n)));
    }
    Ok(())
}

fn check_body_columns(table: &Table, columns: &[String]) -> Result<(), RestError> {
    for c in columns {
        if table.column(c).is_none() {
            return Err(RestError::NoColumnInBody { column: c.clone(), table: table.name.clone() });
        }
    }
    Ok(())
}

fn empty_write(ret: Return, prefer: &Prefer) -> Response {
    let out = execute::Outcome { body: Some("[]".into()), ..Default::default() };
    let status = if ret == Return::Representation { StatusCode::OK } else { StatusCode::NO_CONTENT };
    let shape = Shape {
        status,
        format: Format::Json,
        no_body: ret != Return::Representation,
        offset: 0,
        total: prefer.count.map(|_| 0),
        applied: prefer.applied(true),
        location: None,
        write_range: true,
    };
    response::build(&out, shape).unwrap_or_else(|e| e.to_api(true).into_response())
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    rest: &Arc<Rest>,
    req: &Request,
    table: &Table,
    q: &ApiQuery,
    node: &plan::Node,
    schema: &str,
    prefer: &Prefer,
    format: Format,
) -> Result<Response, RestError> {
    let cfg = &rest.app.config.rest;
    let body = json_body(req, cfg)?;
    let rows: Vec<&serde_json::Map<String, Value>> = match &body {
        Value::Object(o) => vec![o],
        Value::Array(a) => a
            .iter()
            .map(|v| match v {
                Value::Object(o) => Ok(o),
                // PostgREST's words when it reads the keys itself (no `columns=`).
                _ if q.columns.is_none() => Err(RestError::Body("All object keys must match".into())),
                _ => Err(RestError::Body("Empty or invalid json: expecting objects".into())),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(RestError::Body("Empty or invalid json: expecting an object or an array of objects".into())),
    };
    let columns: Vec<String> = match (&q.columns, rows.split_first()) {
        (Some(c), _) => c.clone(),
        (None, None) => Vec::new(),
        // Without `columns=`, PostgREST takes the keys of the first object and
        // refuses an array whose objects do not all have exactly those keys.
        (None, Some((first, rest))) => {
            if rest.iter().any(|r| r.len() != first.len() || !r.keys().all(|k| first.contains_key(k))) {
                return Err(RestError::Body("All object keys must match".into()));
            }
            first.keys().cloned().collect()
        }
    };
    check_body_columns(table, &columns)?;
    let conflict = match prefer.merge {
        Some(merge) => {
            let keys = q.on_conflict.clone().unwrap_or_else(|| table.pk.clone());
            for k in &keys {
                if table.column(k).is_none() {
                    return Err(RestError::NoColumn { column: k.clone(), table: table.name.clone() });
                }
            }
            if merge && keys.is_empty() {
                return Err(RestError::Refused {
                    code: "PGRST100",
                    status: StatusCode::BAD_REQUEST,
                    message: "An upsert needs on_conflict or a primary key".into(),
                    details: None,
                });
            }
            Some(if merge { Conflict::Merge(keys) } else { Conflict::Ignore(keys) })
        }
        None => None,
    };
    if rows.is_empty() {
        let out = execute::Outcome { body: Some("[]".into()), ..Default::default() };
        return response::build(
            &out,
            Shape {
                status: StatusCode::CREATED,
                format,
                no_body: prefer.ret != Some(Return::Representation),
                offset: 0,
                total: prefer.count.map(|_| 0),
                applied: prefer.applied(true),
                location: None,
                write_range: true,
            },
        );
    }
    let ret = prefer.ret.unwrap_or_default();
    let returning = Returning {
        rows: ret != Return::Minimal || prefer.count.is_some() || format == Format::Object,
        body: format.body(ret == Return::Representation),
        single: format == Format::Object,
        max_affected: None,
    };
    let source = Rows::of(table, &columns, &rows, prefer.missing_default);
    let stmt = write::insert(table, node, source, &columns, prefer.missing_default, conflict.as_ref(), returning);
    let mode = TxMode { read_only: false, rollback: prefer.rollback == Some(true), lsn: true, plan: format.plan() };
    let mut out = run(rest, req, schema, prefer, mode, stmt, None).await?;
    if response::strip_nulls_wanted(&req.headers) {
        out.body = response::strip_nulls(out.body);
    }
    let status = match out.inserted {
        Some(0) if out.page_total > 0 => StatusCode::OK,
        _ => StatusCode::CREATED,
    };
    let location = if out.page_total == 1 {
        out.location.as_deref().and_then(|l| response::location(&table.name, l))
    } else {
        None
    };
    response::build(
        &out,
        Shape {
            status,
            format,
            no_body: ret != Return::Representation,
            offset: 0,
            total: prefer.count.map(|_| out.page_total),
            applied: prefer.applied(true),
            location,
            write_range: true,
        },
    )
}

/// PUT: upsert of one row whose primary key is given by `eq` filters on
/// every (and only) primary-key column, matching the body.
async fn put(
    rest: &Arc<Rest>,
    req: &Request,
    table: &Table,
    node: &plan::Node,
    schema: &str,
    prefer: &Prefer,
    format: Format,
) -> Result<Response, RestError> {
    use super::query::filter::{Logic, Op, Operand};
    let refused = || RestError::Refused {
        code: "PGRST105",
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "Filters must include all and only primary key columns with 'eq' operators".into(),
        details: None,
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    for l in &node.filters {
        match l {
            Logic::Cond(c) if c.op == Op::Eq && !c.negate && c.field.json.is_empty() && table.pk.contains(&c.field.name) => {
                let Operand::Value(v) = &c.operand else { return Err(refused()) };
                keys.push((c.field.name.clone(), v.clone()));
            }
            _ => return Err(refused()),
        }
    }
    let mut names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut pk: Vec<&str> = table.pk.iter().map(String::as_str).collect();
    pk.sort_unstable();
    if pk.is_empty() || names != pk || keys.len() != pk.len() {
        return Err(refused());
    }
    let body = json_body(req, &rest.app.config.rest)?;
    let Value::Object(obj) = &body else {
        return Err(RestError::Body("Empty or invalid json: PUT takes one JSON object".into()));
    };
    for (k, v) in &keys {
        let same = match obj.get(k) {
            Some(Value::String(s)) => s == v,
            Some(other) => &other.to_string() == v,
            None => false,
        };
        if !same {
            return Err(RestError::Refused {
                code: "PGRST115",
                status: StatusCode::BAD_REQUEST,
                message: "Payload values do not match URL in primary key column(s)".into(),
                details: None,
            });
        }
    }
    let columns: Vec<String> = obj.keys().cloned().collect();
    check_body_columns(table, &columns)?;
    let ret = prefer.ret.unwrap_or_default();
    let returning = Returning {
        rows: ret != Return::Minimal || format == Format::Object,
        body: format.body(ret == Return::Representation),
        single: format == Format::Object,
        max_affected: None,
    };
    let conflict = Conflict::Merge(table.pk.clone());
    let rows = Rows::of(table, &columns, &[obj], false);
    let stmt = write::insert(table, node, rows, &columns, false, Some(&conflict), returning);
    let mode = TxMode { read_only: false, rollback: prefer.rollback == Some(true), lsn: true, plan: format.plan() };
    let out = run(rest, req, schema, prefer, mode, stmt, None).await?;
    let status = if ret == Return::Representation { StatusCode::OK } else { StatusCode::NO_CONTENT };
    response::build(
        &out,
        Shape {
            status,
            format,
            no_body: ret != Return::Representation,
            offset: 0,
            total: None,
            applied: prefer.applied(true),
            location: None,
            write_range: true,
        },
    )
}

/// Runs a statement for the request, mapping the single-row guard's error to PGRST116.
pub async fn run(
    rest: &Arc<Rest>,
    req: &Request,
    schema: &str,
    prefer: &Prefer,
    mode: TxMode,
    stmt: Sql,
    explain: Option<Sql>,
) -> Result<execute::Outcome, RestError> {
    let ready = rest.app.require_ready().map_err(|e| RestError::Unavailable(e.message))?;
    let mut info = req.info(schema, &rest.app.config.rest);
    info.timezone.clone_from(&prefer.timezone);
    info.pre_request.clone_from(&rest.pre_request);
    match execute::run(ready.sessions.current(), &req.caller, info, mode, stmt, explain).await {
        Err(RestError::Db(db)) if db.message.contains(write::MAX_AFFECTED_GUARD) => {
            let n = db.message.split(write::MAX_AFFECTED_GUARD).nth(1).unwrap_or("").trim_matches(|c: char| !c.is_ascii_digit());
            Err(RestError::Refused {
                code: "PGRST124",
                status: StatusCode::BAD_REQUEST,
                message: "Query result exceeds max-affected preference constraint".into(),
                details: Some(format!("The query affects {n} rows")),
            })
        }
        Err(RestError::Db(db)) if db.message.contains(write::SINGLE_GUARD) => {
            let n = db
                .message
                .split(write::SINGLE_GUARD)
                .nth(1)
                .map(|s| s.chars().take_while(char::is_ascii_digit).collect::<String>())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Err(RestError::NotSingular(n))
        }
        other => other,
    }
}
