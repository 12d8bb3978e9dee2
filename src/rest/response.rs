//! Request preferences and response shaping: `Prefer` (parsed leniently,
//! as postgrest-js may send an empty header or `,`-joined values), `Accept`
//! negotiation (JSON, `vnd.pgrst.object+json`, CSV), `Content-Range`,
//! `Preference-Applied`, `Location` and `X-Fluxbase-Lsn`.

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use warp::reply::Response;

use super::errors::RestError;
use super::execute::Outcome;
use super::overrides::Overrides;
use super::schema_cache::SchemaCache;
use super::sql::read::Body;

/// `Prefer: count=…`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `exact`
    Exact,
    /// `planned`
    Planned,
    /// `estimated`
    Estimated,
}

/// `Prefer: return=…`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    /// Nothing.
    #[default]
    Minimal,
    /// Only headers (Location).
    HeadersOnly,
    /// The rows.
    Representation,
}

/// The parsed `Prefer` header(s).
#[derive(Debug, Clone, Default)]
pub struct Prefer {
    /// `return=`
    pub ret: Option<Return>,
    /// `count=`
    pub count: Option<Count>,
    /// `resolution=merge-duplicates` → `Some(true)`, ignore → `Some(false)`.
    pub merge: Option<bool>,
    /// `missing=default`
    pub missing_default: bool,
    /// `tx=rollback`
    pub rollback: Option<bool>,
    /// `params=single-object`
    pub single_object: bool,
    /// `handling=strict`
    pub strict: bool,
    /// `max-affected=n`
    pub max_affected: Option<i64>,
    /// `timezone=…` (checked against `pg_timezone_names` before use).
    pub timezone: Option<String>,
}

impl Prefer {
    /// Parses every `Prefer` header; unknown preferences are ignored (lenient handling).
    pub fn parse(headers: &HeaderMap) -> Prefer {
        let mut p = Prefer::default();
        for v in headers.get_all("prefer") {
            let Ok(v) = v.to_str() else { continue };
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match item {
                    "return=minimal" => p.ret = Some(Return::Minimal),
                    "return=headers-only" => p.ret = Some(Return::HeadersOnly),
                    "return=representation" => p.ret = Some(Return::Representation),
                    "count=exact" => p.count = Some(Count::Exact),
                    "count=planned" => p.count = Some(Count::Planned),
                    "count=estimated" => p.count = Some(Count::Estimated),
                    "resolution=merge-duplicates" => p.merge = Some(true),
                    "resolution=ignore-duplicates" => p.merge = Some(false),
                    "missing=default" => p.missing_default = true,
                    "missing=null" => p.missing_default = false,
                    "tx=rollback" => p.rollback = Some(true),
                    "tx=commit" => p.rollback = Some(false),
                    "params=single-object" => p.single_object = true,
                    "handling=strict" => p.strict = true,
                    "handling=lenient" => p.strict = false,
                    other if other.starts_with("timezone=") => {
                        p.timezone = other.strip_prefix("timezone=").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
                    }
                    other => {
                        if let Some(n) = other.strip_prefix("max-affected=").and_then(|n| n.trim().parse::<i64>().ok()) {
                            p.max_affected = Some(n.max(0));
                        }
                    }
                }
            }
        }
        p
    }

    /// The `Preference-Applied` value for what was honoured.
    pub fn applied(&self, write: bool) -> Option<String> {
        let mut out = Vec::new();
        if let Some(m) = self.merge {
            out.push(if m { "resolution=merge-duplicates" } else { "resolution=ignore-duplicates" });
        }
        if self.missing_default {
            out.push("missing=default");
        }
        if write {
            match self.ret {
                Some(Return::Minimal) => out.push("return=minimal"),
                Some(Return::HeadersOnly) => out.push("return=headers-only"),
                Some(Return::Representation) => out.push("return=representation"),
                None => {}
            }
        }
        match self.count {
            Some(Count::Exact) => out.push("count=exact"),
            Some(Count::Planned) => out.push("count=planned"),
            Some(Count::Estimated) => out.push("count=estimated"),
            None => {}
        }
        if self.strict {
            out.push("handling=strict");
        }
        let max;
        if let (true, Some(n)) = (self.strict && write, self.max_affected) {
            max = format!("max-affected={n}");
            out.push(&max);
        }
        let tz;
        if let Some(t) = &self.timezone {
            tz = format!("timezone={t}");
            out.push(&tz);
        }
        match self.rollback {
            Some(true) => out.push("tx=rollback"),
            Some(false) => out.push("tx=commit"),
            None => {}
        }
        (!out.is_empty()).then(|| out.join(", "))
    }
}

/// The max-affected limit in force (only with `handling=strict`, as PostgREST 13).
impl Prefer {
    /// `Some(n)` when `handling=strict, max-affected=n`.
    pub fn max_affected(&self) -> Option<i64> {
        if self.strict {
            self.max_affected
        } else {
            None
        }
    }
}

/// Whether `Accept` asks for `nulls=stripped`.
pub fn strip_nulls_wanted(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.to_ascii_lowercase().replace(' ', "").contains(";nulls=stripped"))
}

/// Removes null-valued keys from the body's objects (top level and in arrays), as `json_strip_nulls`.
pub fn strip_nulls(body: Option<String>) -> Option<String> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, v| !v.is_null());
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let b = body?;
    match serde_json::from_str::<Value>(&b) {
        Ok(mut v) => {
            strip(&mut v);
            Some(v.to_string())
        }
        Err(_) => Some(b),
    }
}

/// The representation asked for by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (the default)
    Json,
    /// `application/vnd.pgrst.object+json`
    Object,
    /// `text/csv`
    Csv,
    /// `application/geo+json` (a FeatureCollection; needs PostGIS)
    GeoJson,
    /// `application/openapi+json`
    OpenApi,
    /// `application/vnd.pgrst.plan…`: the statement's execution plan.
    Plan(super::explain::Plan),
}

impl Format {
    /// The body a statement builds for this format; `wanted` is false for
    /// HEAD and `return=minimal`.
    pub fn body(self, wanted: bool) -> Body {
        match (wanted, self) {
            (false, _) => Body::None,
            (true, Format::GeoJson) => Body::GeoJson,
            (true, _) => Body::Json,
        }
    }

    /// Refuses what this database cannot produce: GeoJSON without PostGIS
    /// (406 PGRST107, as PostgREST).
    pub fn check(self, cache: &SchemaCache) -> Result<Format, RestError> {
        if self == Format::GeoJson && !cache.postgis {
            return Err(media_unavailable("application/geo+json"));
        }
        Ok(self)
    }

    /// The plan asked for, if this is a plan media type.
    pub fn plan(self) -> Option<super::explain::Plan> {
        match self {
            Format::Plan(p) => Some(p),
            _ => None,
        }
    }
}

/// What `Accept` chose: a built-in representation, or one of the media
/// type handlers on offer ([`negotiate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// A representation Fluxbase builds.
    Builtin(Format),
    /// The media type of the handler at this index of those offered.
    Handler(usize),
}

/// PGRST107 (406): none of `accept` can be produced.
pub fn media_unavailable(accept: &str) -> RestError {
    RestError::MediaType(format!("None of these media types are available: {accept}"), StatusCode::NOT_ACCEPTABLE)
}

/// Picks the most preferred acceptable media type of `Accept`, else
/// PGRST107 (406), with media type handlers on offer (`handlers`: the
/// media types of handler functions or aggregates, in lookup order; `*/*`
/// for one that answers any type). As PostgREST: entries in order of
/// preference (`q`), the first that anything can produce wins; a handler
/// before the built-in of the same name (except the `vnd.pgrst` vendor
/// types), and a `*/*` handler a match for every entry. No `Accept`
/// means `*/*`. Plan media types are acceptable only when `plan_enabled`.
pub fn negotiate(headers: &HeaderMap, plan_enabled: bool, handlers: &[&str]) -> Result<Negotiated, RestError> {
    let accept = accept(headers);
    for part in accepted(accept) {
        if let Some(plan) = super::explain::Plan::parse(part) {
            if plan_enabled {
                return Ok(Negotiated::Builtin(Format::Plan(plan)));
            }
            continue;
        }
        let mt = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if matches!(mt.as_str(), "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object") {
            return Ok(Negotiated::Builtin(Format::Object));
        }
        if let Some(i) = handlers.iter().position(|h| *h == "*/*" || *h == mt) {
            return Ok(Negotiated::Handler(i));
        }
        match mt.as_str() {
            "application/json" | "*/*" | "application/*" | "application/vnd.pgrst.array+json" => return Ok(Negotiated::Builtin(Format::Json)),
            "text/csv" | "text/*" => return Ok(Negotiated::Builtin(Format::Csv)),
            "application/geo+json" => return Ok(Negotiated::Builtin(Format::GeoJson)),
            "application/openapi+json" => return Ok(Negotiated::Builtin(Format::OpenApi)),
            _ => {}
        }
    }
    Err(media_unavailable(accept))
}

/// The request's `Accept`, `*/*` when there is none.
pub fn accept(headers: &HeaderMap) -> &str {
    let accept = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    if accept.is_empty() {
        "*/*"
    } else {
        accept
    }
}

/// The entries of an `Accept` header, most preferred first: by `q`
/// (entries of equal `q` keep their order), without those at `q=0`.
fn accepted(accept: &str) -> Vec<&str> {
    let q = |part: &str| {
        part.split(';')
            .skip(1)
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
    };
    let mut parts: Vec<(f32, &str)> = accept.split(',').map(|p| (q(p), p)).filter(|(q, _)| *q > 0.0).collect();
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    parts.into_iter().map(|(_, p)| p).collect()
}

/// The `Content-Type` of a handler's media type: `application/octet-stream`
/// for one that answers any type (its function may set another through
/// `response.headers`), with a UTF-8 charset for the text types PostgREST
/// gives one.
pub fn handler_content_type(media_type: &str) -> String {
    match media_type {
        "*/*" => "application/octet-stream".to_owned(),
        "text/plain" | "text/xml" | "text/csv" | "application/json" | "application/geo+json" => format!("{media_type}; charset=utf-8"),
        other => other.to_owned(),
    }
}

/// The response of a media type handler function: its value is the body
/// (`body` as the statement returned it, bytes in hex for a `bytea`
/// domain; none when the value is NULL or for HEAD), in `content_type`.
pub fn build_handled(outcome: &Outcome, content_type: &str, bytes: bool, head: bool) -> Result<Response, RestError> {
    let overrides = Overrides::from_settings(outcome.response_headers.as_deref(), outcome.response_status.as_deref())?;
    let body: Vec<u8> = match outcome.body.as_deref() {
        Some(_) if head => Vec::new(),
        None => Vec::new(),
        // PostgreSQL's own hex encoding; its text as it is, should it ever not be.
        Some(hex_text) if bytes => hex::decode(hex_text).unwrap_or_else(|_| hex_text.as_bytes().to_vec()),
        Some(text) => text.as_bytes().to_vec(),
    };
    let mut res = Response::new(body.into());
    if let Ok(v) = HeaderValue::from_str(content_type) {
        res.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    Ok(finish(res, outcome, overrides))
}

/// The last of every response: the WAL position of a write, then what
/// the transaction set (`response.status`, `response.headers`) over all.
fn finish(mut res: Response, outcome: &Outcome, overrides: Overrides) -> Response {
    if let Some(lsn) = outcome.lsn.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
        res.headers_mut().insert("x-fluxbase-lsn", lsn);
    }
    let mut status = res.status();
    overrides.apply(&mut status, res.headers_mut());
    *res.status_mut() = status;
    res
}

/// Everything a response needs besides the outcome.
#[derive(Debug, Clone)]
pub struct Shape {
    /// 200, 201…
    pub status: StatusCode,
    /// Representation.
    pub format: Format,
    /// Omit the body (HEAD, minimal, headers-only).
    pub no_body: bool,
    /// The offset of the first row (Content-Range).
    pub offset: i64,
    /// Total to report, if counted.
    pub total: Option<i64>,
    /// `Preference-Applied`.
    pub applied: Option<String>,
    /// `Location`, for single inserts.
    pub location: Option<String>,
    /// Content-Range written as `*/total` (writes).
    pub write_range: bool,
}

/// Builds the response. `.single()` / `vnd.pgrst.object+json` needs exactly one row (PGRST116).
/// The status and headers the transaction set (`response.status`,
/// `response.headers`) come last, over what the request made.
pub fn build(outcome: &Outcome, shape: Shape) -> Result<Response, RestError> {
    let overrides = Overrides::from_settings(outcome.response_headers.as_deref(), outcome.response_status.as_deref())?;
    if let Format::Plan(plan) = shape.format {
        let mut res = Response::new(outcome.plan.clone().unwrap_or_default().into());
        if let Ok(v) = HeaderValue::from_str(&plan.content_type()) {
            res.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        return Ok(res);
    }
    let n = outcome.page_total;
    let mut body = outcome.body.clone().unwrap_or_default();
    let mut content_type = "application/json; charset=utf-8";
    if shape.format == Format::Object {
        if n != 1 {
            return Err(RestError::NotSingular(n));
        }
        if !shape.no_body {
            body = match serde_json::from_str::<Value>(&body) {
                Ok(Value::Array(mut a)) if !a.is_empty() => a.swap_remove(0).to_string(),
                _ => body,
            };
        }
        content_type = "application/vnd.pgrst.object+json; charset=utf-8";
    } else if shape.format == Format::Csv && !shape.no_body {
        body = to_csv(&body);
        content_type = "text/csv; charset=utf-8";
    } else if shape.format == Format::GeoJson {
        content_type = "application/geo+json; charset=utf-8";
    }
    let range = if shape.write_range {
        format!("*/{}", shape.total.map(|t| t.to_string()).unwrap_or_else(|| "*".into()))
    } else {
        let total = shape.total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
        if n == 0 {
            format!("*/{total}")
        } else {
            format!("{}-{}/{total}", shape.offset, shape.offset.saturating_add(n - 1))
        }
    };
    let mut status = shape.status;
    if !shape.write_range && status == StatusCode::OK {
        if let Some(t) = shape.total {
            if shape.offset > 0 && shape.offset >= t && !(t == 0 && shape.offset == 0) {
                return Err(RestError::Range(format!(
                    "An offset of {} was requested, but there are only {t} rows.",
                    shape.offset
                )));
            }
            if n < t {
                status = StatusCode::PARTIAL_CONTENT;
            }
        }
    }
    let mut res = if shape.no_body { Response::new(Default::default()) } else { Response::new(body.into()) };
    *res.status_mut() = status;
    let h = res.headers_mut();
    if !shape.no_body || status != StatusCode::NO_CONTENT {
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Ok(v) = HeaderValue::from_str(&range) {
        h.insert("content-range", v);
    }
    if let Some(a) = shape.applied.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        h.insert("preference-applied", a);
    }
    if let Some(l) = shape.location.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
        h.insert(http::header::LOCATION, l);
    }
    Ok(finish(res, outcome, overrides))
}

/// `/table?pk=eq.value&…` from the first row's key (a JSON object).
pub fn location(table: &str, key_json: &str) -> Option<String> {
    let Value::Object(m) = serde_json::from_str::<Value>(key_json).ok()? else { return None };
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}=eq.{}", enc(k), enc(&v))
        })
        .collect();
    Some(format!("/{}?{}", enc(table), parts.join("&")))
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|x| x.trim_start_matches('=').to_owned()).unwrap_or_default()
}

/// A JSON array of objects as CSV (header from the first object's keys).
fn to_csv(json: &str) -> String {
    let Ok(Value::Array(rows)) = serde_json::from_str::<Value>(json) else { return String::new() };
    let Some(Value::Object(first)) = rows.first() else { return String::new() };
    let keys: Vec<String> = first.keys().cloned().collect();
    let field = |v: Option<&Value>| -> String {
        let s = match v {
            None | Some(Value::Null) => return String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = keys.iter().map(|k| field(Some(&Value::String(k.clone())))).collect::<Vec<_>>().join(",");
    for r in &rows {
        out.push('\n');
        out.push_str(&keys.iter().map(|k| field(r.get(k))).collect::<Vec<_>>().join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_is_lenient() {
        let mut h = HeaderMap::new();
        h.append("prefer", HeaderValue::from_static("resolution=merge-duplicates, count=exact,return=representation"));
        h.append("prefer", HeaderValue::from_static(""));
        let p = Prefer::parse(&h);
        assert_eq!((p.merge, p.count, p.ret), (Some(true), Some(Count::Exact), Some(Return::Representation)));
        assert_eq!(p.applied(true).as_deref(), Some("resolution=merge-duplicates, return=representation, count=exact"));
    }

    #[test]
    fn accept_negotiation() {
        let builtin = |h: &HeaderMap| match negotiate(h, false, &[]) {
            Ok(Negotiated::Builtin(f)) => Some(f),
            _ => None,
        };
        assert_eq!(builtin(&HeaderMap::new()), Some(Format::Json));
        for (accept, want) in [
            ("application/vnd.pgrst.object+json", Some(Format::Object)),
            ("text/csv", Some(Format::Csv)),
            ("image/png", None),
            // By preference, not by order; q=0 is "not this".
            ("application/json;q=0.5, text/csv", Some(Format::Csv)),
            ("text/csv;q=0, application/json", Some(Format::Json)),
            ("text/csv;q=0", None),
        ] {
            let mut h = HeaderMap::new();
            h.insert("accept", HeaderValue::from_static(accept));
            assert_eq!(builtin(&h), want, "{accept}");
        }
    }

    #[test]
    fn handler_negotiation() {
        let pick = |accept: Option<&'static str>, handler: &str| {
            let mut h = HeaderMap::new();
            if let Some(a) = accept {
                h.insert("accept", HeaderValue::from_static(a));
            }
            negotiate(&h, false, &[handler]).ok()
        };
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/png,*/*;q=0.8";
        assert_eq!(pick(Some(browser), "image/png"), Some(Negotiated::Handler(0)));
        assert_eq!(pick(Some(browser), "text/html"), Some(Negotiated::Handler(0)));
        assert_eq!(pick(Some(browser), "image/gif"), Some(Negotiated::Builtin(Format::Json)));
        assert_eq!(pick(Some("image/png, */*"), "image/png"), Some(Negotiated::Handler(0)));
        // `*/*` asked for is JSON, unless the function answers any type.
        assert_eq!(pick(None, "text/html"), Some(Negotiated::Builtin(Format::Json)));
        assert_eq!(pick(None, "*/*"), Some(Negotiated::Handler(0)));
        assert_eq!(pick(Some("app/bingo"), "*/*"), Some(Negotiated::Handler(0)));
        assert_eq!(pick(Some("application/json"), "*/*"), Some(Negotiated::Handler(0)));
        // The vendor types cannot be overridden.
        assert_eq!(pick(Some("application/vnd.pgrst.object+json"), "*/*"), Some(Negotiated::Builtin(Format::Object)));
        assert_eq!(pick(Some("text/xml"), "text/plain"), None);
        // Several on offer: the first that the most preferred entry names.
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_static("application/vnd.count;q=0.5, text/tab-separated-values"));
        let offered = ["application/vnd.count", "text/tab-separated-values"];
        assert_eq!(negotiate(&h, false, &offered).ok(), Some(Negotiated::Handler(1)));
        assert_eq!(negotiate(&h, false, &offered[..1]).ok(), Some(Negotiated::Handler(0)));
        assert_eq!(handler_content_type("text/plain"), "text/plain; charset=utf-8");
        assert_eq!(handler_content_type("text/html"), "text/html");
        assert_eq!(handler_content_type("*/*"), "application/octet-stream");
    }

    #[test]
    fn csv_and_location() {
        assert_eq!(to_csv(r#"[{"a":1,"b":"x,y"},{"a":null,"b":"q\"r"}]"#), "a,b\n1,\"x,y\"\n,\"q\"\"r\"");
        assert_eq!(location("todos", r#"{"id":5}"#).as_deref(), Some("/todos?id=eq.5"));
    }
}
