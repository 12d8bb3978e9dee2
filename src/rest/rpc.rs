//! `/rest/v1/rpc/<function>`: GET and HEAD (arguments in the query string,
//! in a read-only transaction, so a function that writes gets 25006 → 405
//! as with PostgREST), POST (named arguments in a JSON object or a form,
//! the whole body as the one unnamed `json`/`jsonb` argument, or a raw
//! `text/plain`, `text/xml` or `application/octet-stream` body as the one
//! unnamed `text`, `xml` or `bytea` argument). Scalar,
//! composite, SETOF and TABLE returns; filters, order and limit apply to
//! set results. `columns=` on POST picks the body keys that are arguments.
//! A function returning a domain named as a media type answers with its
//! value as the body when `Accept` asks for that type (PostgREST's media
//! type handlers, [`response::negotiate`]).

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::Value;
use warp::reply::Response;

use super::errors::RestError;
use super::execute::TxMode;
use super::query::parse_query;
use super::response::{self, Count, Format, Negotiated, Prefer, Shape};
use super::schema_cache::{Function, MediaAggregate, Returns, SchemaCache};
use super::sql::rpc::{handled_rows_statement, handled_statement, statement, Args};
use super::table::run;
use super::body::{self, Media};
use super::query::ApiQuery;
use super::{plan, Request, Rest};

/// Serves one RPC request.
pub async fn handle(rest: &Arc<Rest>, cache: &SchemaCache, req: &Request, name: &str) -> Result<Response, RestError> {
    let cfg = &rest.app.config.rest;
    let schema = req.schema(cfg)?;
    let prefer = rest.prefer(&req.headers).await?;
    let overloads = cache.functions.get(&(schema.clone(), name.to_owned())).map(Vec::as_slice).unwrap_or_default();
    let read = req.is_read();
    if !read && req.method != Method::POST {
        return Err(super::method_not_allowed(&req.method));
    }
    let is_arg = |k: &str| read && overloads.iter().any(|f| f.args.iter().any(|a| a.name == k));
    let q = parse_query(&req.query, &cfg.limits(), &is_arg)?;
    let format = negotiate(cache, req, cfg.plan_enabled, overloads, q.whole_rows())?;
    let media = if read { Media::Json } else { Media::of(&req.headers)? };
    if let Some(ty) = media.raw_type() {
        // A raw body goes whole to the one unnamed parameter of its type.
        let f = overloads.iter().find(|f| matches!(f.args.as_slice(), [a] if a.name.is_empty() && a.data_type == ty));
        let f = f.ok_or_else(|| RestError::NoFunction {
            name: format!("{schema}.{name}"),
            details: format!(
                "Searched for the function {schema}.{name} with a single unnamed {ty} parameter, but no matches were found in the schema cache."
            ),
            hint: None,
        })?;
        let args = Args::Single(body::raw_value(media, &req.body)?);
        return call(rest, req, &schema, &prefer, format, &q, f, &args).await;
    }
    // The arguments as a JSON object (or the single json argument).
    let (given, single_body): (serde_json::Map<String, Value>, Option<Value>) = if read {
        (field_args(overloads, &q.args), None)
    } else if media == Media::Form {
        (field_args(overloads, &body::form_fields(&req.body)?), None)
    } else {
        let body = if req.body.is_empty() { Value::Object(Default::default()) } else { body::to_json(media, &req.body, cfg)? };
        match body {
            Value::Object(o) if !prefer.single_object => (o, None),
            other => (Default::default(), Some(other)),
        }
    };
    // `columns=a,b` (POST): only those keys are arguments; the rest of the
    // body is ignored, and a listed key the body lacks is NULL, as PostgREST.
    let given = match (&q.columns, read, &single_body) {
        (Some(cols), false, None) => cols.iter().map(|c| (c.clone(), given.get(c).cloned().unwrap_or(Value::Null))).collect(),
        _ => given,
    };
    // A body object no overload takes by name goes whole to a function of one unnamed json argument.
    let (given, single_body) = match (single_body, choose(overloads, &given, false), choose(overloads, &given, true)) {
        (None, None, Some(_)) if !read => (Default::default(), Some(Value::Object(given))),
        (sb, _, _) => (given, sb),
    };
    let f = choose(overloads, &given, single_body.is_some() || prefer.single_object).ok_or_else(|| {
        let mut names: Vec<&str> = given.keys().map(String::as_str).collect();
        names.sort_unstable();
        let sig = if names.is_empty() { "without parameters".to_owned() } else { format!("with parameters {}", names.join(", ")) };
        let json = if read || media != Media::Json { "" } else { " or with a single unnamed json/jsonb parameter" };
        RestError::NoFunction {
            name: format!("{schema}.{name}({})", names.join(", ")),
            details: format!("Searched for the function {schema}.{name} {sig}{json}, but no matches were found in the schema cache."),
            hint: Some(format!(
                "Perhaps you meant to call the function {schema}.{name} {sig} differently, or the function is not in an exposed schema"
            )),
        }
    })?;
    let args = match (&single_body, prefer.single_object) {
        (Some(b), _) => Args::Single(b.to_string()),
        (None, true) => Args::Single(Value::Object(given.clone()).to_string()),
        (None, false) => {
            let list = f.args.iter().filter(|a| given.contains_key(&a.name)).collect();
            Args::Named(Value::Object(given.clone()).to_string(), list)
        }
    };
    call(rest, req, &schema, &prefer, format, &q, f, &args).await
}

/// Runs the call of `f` with `args` and shapes its result.
#[allow(clippy::too_many_arguments)]
async fn call(
    rest: &Arc<Rest>,
    req: &Request,
    schema: &str,
    prefer: &Prefer,
    format: Answer<'_>,
    q: &ApiQuery,
    f: &Function,
    args: &Args<'_>,
) -> Result<Response, RestError> {
    let read = req.is_read();
    let head = req.method == Method::HEAD;
    let node = plan::plan_untyped(schema, &f.name, q)?;
    let exact = matches!(prefer.count, Some(Count::Exact | Count::Estimated));
    let mode = |plan| TxMode { read_only: read, rollback: prefer.rollback == Some(true), lsn: !read, plan };
    // A handler's statement and media type, or (no handler) the built-in format.
    let handled = match format {
        Answer::Builtin(format) => Err(format),
        Answer::Value => match &f.media {
            Some(m) => Ok((handled_statement(f, args, m.bytes), m)),
            // Another overload's media type was chosen: this one has none.
            None => return Err(not_available(req)),
        },
        // Rows to aggregate: this overload must return rows.
        Answer::Rows(agg) if f.returns == Returns::Composite => Ok((handled_rows_statement(f, args, &node, exact, agg), &agg.media)),
        Answer::Rows(_) => return Err(not_available(req)),
    };
    let format = match handled {
        Err(format) => format,
        Ok((stmt, media)) => {
            let out = run(rest, req, schema, prefer, mode(None), stmt, None).await?;
            return response::build_handled(&out, &response::handler_content_type(&media.media_type), media.bytes, head);
        }
    };
    let stmt = statement(f, args, &node, exact, format.body(!head));
    let mut out = run(rest, req, schema, prefer, mode(format.plan()), stmt, None).await?;
    if response::strip_nulls_wanted(&req.headers) {
        out.body = response::strip_nulls(out.body);
    }
    let (status, no_body) = match (&f.returns, f.returns_set) {
        (Returns::Void, _) => (StatusCode::NO_CONTENT, true),
        (Returns::Composite, false) => {
            // A single composite is an object, not an array.
            if let Some(b) = out.body.as_deref() {
                out.body = Some(match serde_json::from_str::<Value>(b) {
                    Ok(Value::Array(mut a)) if !a.is_empty() => a.swap_remove(0).to_string(),
                    _ => "null".to_owned(),
                });
            }
            (StatusCode::OK, head)
        }
        _ => (StatusCode::OK, head),
    };
    let single_value = !f.returns_set;
    let shape = Shape {
        status,
        format: if single_value && format == response::Format::Object { response::Format::Json } else { format },
        no_body,
        offset: node.range.offset.unwrap_or(0),
        total: if prefer.count.is_some() { out.total } else { None },
        applied: prefer.applied(false),
        location: None,
        write_range: false,
    };
    let mut res = response::build(&out, shape)?;
    if status == StatusCode::NO_CONTENT && out.response_headers.is_none() {
        res.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    Ok(res)
}

/// What answers the request: a built-in representation of the result,
/// the function's value itself (it returns a media type domain), or its
/// rows handed to a media type handler aggregate.
#[derive(Debug, Clone, Copy)]
enum Answer<'a> {
    Builtin(Format),
    Value,
    Rows(&'a MediaAggregate),
}

/// Negotiates `Accept` for the function `overloads` name: its own media
/// type first, then the handlers of the rows it returns (those of its
/// relation only when `whole_rows`, as for a table), then the built-ins.
fn negotiate<'a>(
    cache: &'a SchemaCache,
    req: &Request,
    plan_enabled: bool,
    overloads: &[Function],
    whole_rows: bool,
) -> Result<Answer<'a>, RestError> {
    let value: Vec<&str> = overloads.iter().find_map(|f| f.media.as_ref()).map(|m| m.media_type.as_str()).into_iter().collect();
    let rows: Vec<&MediaAggregate> = match overloads.iter().find(|f| f.returns == Returns::Composite) {
        Some(f) => cache.row_handlers(f.returns_table.as_ref().map(|(s, n)| (s.as_str(), n.as_str())), whole_rows),
        None => Vec::new(),
    };
    let offered: Vec<&str> = value.iter().copied().chain(rows.iter().map(|a| a.media.media_type.as_str())).collect();
    Ok(match response::negotiate(&req.headers, plan_enabled, &offered)? {
        Negotiated::Builtin(f) => Answer::Builtin(f.check(cache)?),
        Negotiated::Handler(i) if i < value.len() => Answer::Value,
        Negotiated::Handler(i) => rows.get(i - value.len()).map_or(Answer::Builtin(Format::Json), |a| Answer::Rows(a)),
    })
}

/// PGRST107 for the request's `Accept`.
fn not_available(req: &Request) -> RestError {
    response::media_unavailable(response::accept(&req.headers))
}

/// Named arguments from query or form fields, as PostgREST reads them: a
/// repeated name's first value, or, for a variadic parameter, every value
/// in order as its array.
fn field_args(overloads: &[Function], fields: &[(String, String)]) -> serde_json::Map<String, Value> {
    let variadic = |k: &str| overloads.iter().any(|f| f.args.iter().any(|a| a.variadic && a.name == k));
    let mut args = serde_json::Map::new();
    for (k, v) in fields {
        if variadic(k) {
            if let Value::Array(items) = args.entry(k.as_str()).or_insert_with(|| Value::Array(Vec::new())) {
                items.push(Value::String(v.clone()));
            }
        } else {
            args.entry(k.as_str()).or_insert_with(|| Value::String(v.clone()));
        }
    }
    args
}

/// The overload whose named arguments cover `given` and whose missing
/// arguments all have defaults; or, for a single body, the one taking one
/// unnamed `json`/`jsonb` argument.
fn choose<'a>(overloads: &'a [Function], given: &serde_json::Map<String, Value>, single: bool) -> Option<&'a Function> {
    if single {
        return overloads.iter().find(|f| {
            f.args.len() == 1 && matches!(f.args[0].data_type.as_str(), "json" | "jsonb")
        });
    }
    overloads.iter().find(|f| {
        given.keys().all(|k| f.args.iter().any(|a| &a.name == k))
            && f.args.iter().all(|a| a.has_default || given.contains_key(&a.name))
    })
}
