//! The PostgREST-compatible REST API at `/rest/v1`.
//!
//! A request goes: query string → typed AST ([`query`]) → plan checked
//! against the schema cache ([`plan`], [`schema_cache`]) → one SQL
//! statement with quoted identifiers and bound values ([`sql`]) → one
//! pipelined transaction as the caller ([`execute`]) → a response shaped
//! as PostgREST shapes it ([`response`]). Errors are [`errors::RestError`],
//! turned into PostgREST's `{code, message, details, hint}` once.
//!
//! - [`table`]: GET/HEAD/POST/PATCH/DELETE on tables and views.
//! - [`rpc`] serves `/rpc/{function}`.
//! - [`openapi`]: `GET /rest/v1/`.

pub mod body;
pub mod errors;
pub mod execute;
pub mod explain;
pub mod openapi;
pub mod overrides;
#[cfg(test)]
mod property_tests;
pub mod plan;
pub mod query;
pub mod response;
pub mod rpc;
pub mod schema_cache;
pub mod sql;
pub mod table;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::app::AppState;
use crate::http::caller::Caller;
use errors::RestError;
use schema_cache::{arc_swap_lite::Slot, SchemaCache};

/// `[rest]` configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RestConfig {
    /// Exposed schemas; the first is the default (`Accept-Profile` /
    /// `Content-Profile` choose among them).
    pub schemas: Vec<String>,
    /// Schemas appended to `search_path` after the request's schema.
    pub extra_search_path: Vec<String>,
    /// Cap on rows returned by a read; 0 means no cap.
    pub max_rows: u64,
    /// `statement_timeout` per request in ms; 0 means none.
    pub statement_timeout_ms: u64,
    /// Items allowed in an `in.(…)` list.
    pub max_in_list: u64,
    /// Nesting allowed for `or`/`and` groups.
    pub max_logic_depth: u64,
    /// Nesting allowed for embedded resources.
    pub max_embed_depth: u64,
    /// Items allowed in a `select`.
    pub max_select_items: u64,
    /// Nesting allowed in JSON bodies.
    pub max_json_depth: u64,
    /// Serve execution plans (`Accept: application/vnd.pgrst.plan…`), as
    /// PostgREST's `db-plan-enabled`. Off by default: a plan reveals the
    /// schema and data sizes.
    pub plan_enabled: bool,
    /// A function (`schema.name`, or `name` found by the search path) called
    /// with no arguments in every request's transaction, as the caller,
    /// after the request settings and before the statement: PostgREST's
    /// `db-pre-request`. Empty: none.
    pub pre_request: String,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            schemas: vec!["public".into()],
            extra_search_path: vec!["public".into(), "extensions".into()],
            max_rows: 0,
            statement_timeout_ms: 0,
            max_in_list: 5000,
            max_logic_depth: 10,
            max_embed_depth: 8,
            max_select_items: 500,
            max_json_depth: 64,
            plan_enabled: false,
            pre_request: String::new(),
        }
    }
}

impl RestConfig {
    /// Checks the values; the message names what is allowed.
    pub fn validate(&self) -> Result<(), (String, String, String)> {
        if self.schemas.is_empty() || self.schemas.iter().any(|s| s.trim().is_empty()) {
            return Err(("rest.schemas".into(), format!("{:?}", self.schemas), "a non-empty list of schema names".into()));
        }
        if !self.pre_request.is_empty() && self.pre_request_sql().is_none() {
            return Err(("rest.pre_request".into(), self.pre_request.clone(), "a function name: `name` or `schema.name`".into()));
        }
        for (key, v, lo, hi) in [
            ("rest.max_in_list", self.max_in_list, 1, 1_000_000),
            ("rest.max_logic_depth", self.max_logic_depth, 1, 100),
            ("rest.max_embed_depth", self.max_embed_depth, 1, 100),
            ("rest.max_select_items", self.max_select_items, 1, 100_000),
            ("rest.max_json_depth", self.max_json_depth, 1, 120),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err((key.into(), v.to_string(), format!("an integer from {lo} to {hi}")));
            }
        }
        Ok(())
    }

    /// `select "schema"."name"()` for [`RestConfig::pre_request`]; `None`
    /// when there is none or it is not `name` or `schema.name`.
    pub fn pre_request_sql(&self) -> Option<String> {
        let parts: Vec<&str> = self.pre_request.split('.').map(str::trim).collect();
        if parts.is_empty() || parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let name: Vec<String> = parts.iter().map(|p| sql::ident(p)).collect();
        Some(format!("select {}()", name.join(".")))
    }

    /// The parser limits.
    pub fn limits(&self) -> query::Limits {
        let u = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        query::Limits {
            max_in_list: u(self.max_in_list),
            max_logic_depth: u(self.max_logic_depth),
            max_embed_depth: u(self.max_embed_depth),
            max_select_items: u(self.max_select_items),
        }
    }
}

/// The REST service: the app state plus the schema cache.
#[derive(Debug)]
pub struct Rest {
    app: Arc<AppState>,
    cache: Slot,
    load: tokio::sync::Mutex<()>,
    listening: AtomicBool,
    /// `pg_timezone_names`, read once on the first `Prefer: timezone`.
    timezones: tokio::sync::OnceCell<std::collections::HashSet<String>>,
    /// [`RestConfig::pre_request_sql`], built once.
    pre_request: Option<Arc<str>>,
}

impl Rest {
    /// The current schema cache, loading it (and starting the listener) on first use.
    pub async fn cache(self: &Arc<Self>) -> Result<Arc<SchemaCache>, RestError> {
        if let Some(c) = self.cache.get() {
            return Ok(c);
        }
        let _guard = self.load.lock().await;
        if let Some(c) = self.cache.get() {
            return Ok(c);
        }
        self.reload().await?;
        self.start_listener();
        self.cache.get().ok_or_else(|| RestError::Unavailable("schema cache not loaded".into()))
    }

    /// The request's `Prefer` header with its timezone checked against
    /// `pg_timezone_names`: an unknown zone is dropped (lenient handling)
    /// or refused with PGRST122 (`handling=strict`), as PostgREST does.
    pub async fn prefer(&self, headers: &HeaderMap) -> Result<response::Prefer, RestError> {
        let mut p = response::Prefer::parse(headers);
        let Some(tz) = p.timezone.clone() else { return Ok(p) };
        let names = self
            .timezones
            .get_or_try_init(|| async {
                let ready = self.app.require_ready().map_err(|e| RestError::Unavailable(e.message))?;
                let client = ready.pool.get().await.map_err(|e| RestError::Unavailable(e.to_string()))?;
                let rows = client.query("select name from pg_timezone_names", &[]).await.map_err(|e| RestError::from_pg(&e))?;
                Ok::<_, RestError>(rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect())
            })
            .await?;
        if !names.contains(&tz) {
            if p.strict {
                return Err(RestError::Refused {
                    code: "PGRST122",
                    status: StatusCode::BAD_REQUEST,
                    message: "Invalid preferences given with handling=strict".into(),
                    details: Some(format!("Invalid preferences: timezone={tz}")),
                });
            }
            p.timezone = None;
        }
        Ok(p)
    }

    /// Reloads the schema cache now.
    pub async fn reload(&self) -> Result<(), RestError> {
        let ready = self.app.require_ready().map_err(|e| RestError::Unavailable(e.message))?;
        let client = ready.pool.get().await.map_err(|e| RestError::Unavailable(e.to_string()))?;
        let cache = schema_cache::load(&client, &self.app.config.rest.schemas, &self.app.config.rest.extra_search_path).await.map_err(|e| RestError::from_pg(&e))?;
        tracing::debug!(tables = cache.tables.len(), functions = cache.functions.len(), "schema cache loaded");
        self.cache.set(cache);
        Ok(())
    }

    fn listen_url(&self) -> Option<String> {
        let cfg = &self.app.config;
        if !cfg.database.url.is_empty() {
            return Some(cfg.database.url.clone());
        }
        crate::datadir::DataDir::existing(&cfg.data_dir).ok()?.read_state().ok()?.map(|s| s.db_url)
    }

    fn start_listener(self: &Arc<Self>) {
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Rest> = Arc::downgrade(self);
        tokio::spawn(async move {
            // The embedded database's URL is published just after start-up.
            let url = loop {
                let Some(rest) = weak.upgrade() else { return };
                if let Some(u) = rest.listen_url() {
                    break u;
                }
                drop(rest);
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            };
            let alive = Weak::clone(&weak);
            schema_cache::listen(
                url,
                move || {
                    let weak = Weak::clone(&weak);
                    async move {
                        if let Some(rest) = weak.upgrade() {
                            if let Err(e) = rest.reload().await {
                                tracing::warn!(error = %e, "schema cache reload failed");
                            }
                        }
                    }
                },
                move || alive.strong_count() > 0,
            )
            .await;
        });
    }
}

/// The `/rest/v1` routes.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let rest = Arc::new(Rest {
        app: Arc::clone(&state),
        cache: Slot::default(),
        load: Default::default(),
        listening: AtomicBool::new(false),
        timezones: Default::default(),
        pre_request: state.config.rest.pre_request_sql().map(Arc::from),
    });
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("rest")
        .and(warp::path("v1"))
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query)
        .and(warp::body::bytes())
        .and(crate::http::with_caller(state))
        .then(move |tail: warp::path::Tail, method: Method, headers: HeaderMap, query: String, body: Bytes, caller: Caller| {
            let rest = Arc::clone(&rest);
            async move {
                let req = Request { path: tail.as_str().to_owned(), method, headers, query, body, caller };
                let authenticated = req.caller.role != "anon";
                match handle(&rest, &req).await {
                    Ok(res) => res,
                    Err(e) => e.to_api(authenticated).into_response(),
                }
            }
        })
        .boxed()
}

/// One REST request.
#[derive(Debug)]
pub struct Request {
    /// Path after `/rest/v1/`, still percent-encoded.
    pub path: String,
    /// Method.
    pub method: Method,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw query string.
    pub query: String,
    /// Body.
    pub body: Bytes,
    /// Who is asking.
    pub caller: Caller,
}

impl Request {
    /// GET or HEAD.
    pub fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }

    /// The schema chosen by `Accept-Profile` (reads) or `Content-Profile`, else the first exposed.
    pub fn schema(&self, cfg: &RestConfig) -> Result<String, RestError> {
        let header = if self.is_read() { "accept-profile" } else { "content-profile" };
        match self.headers.get(header).and_then(|v| v.to_str().ok()).map(str::trim) {
            None | Some("") => Ok(cfg.schemas.first().cloned().unwrap_or_else(|| "public".into())),
            Some(s) if cfg.schemas.iter().any(|x| x == s) => Ok(s.to_owned()),
            Some(s) => Err(RestError::Schema { schema: s.to_owned(), exposed: cfg.schemas.clone() }),
        }
    }

    /// What PostgREST sets as `request.*` for this request.
    pub fn info(&self, schema: &str, cfg: &RestConfig) -> execute::RequestInfo {
        let mut cookies = serde_json::Map::new();
        for v in self.headers.get_all(http::header::COOKIE) {
            for pair in v.to_str().unwrap_or("").split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    cookies.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
                }
            }
        }
        let mut path = vec![sql::ident(schema)];
        path.extend(cfg.extra_search_path.iter().filter(|s| s.as_str() != schema).map(|s| sql::ident(s)));
        execute::RequestInfo {
            method: self.method.as_str().to_owned(),
            path: format!("/{}", self.path),
            headers: headers_json(&self.headers),
            cookies: serde_json::Value::Object(cookies).to_string(),
            search_path: path.join(", "),
            timeout_ms: cfg.statement_timeout_ms,
            timezone: None,
            pre_request: None,
        }
    }
}

/// `request.headers`: a JSON object of each header's last value that is
/// text, written straight from the header map.
fn headers_json(headers: &HeaderMap) -> String {
    struct Headers<'a>(&'a HeaderMap);
    impl serde::Serialize for Headers<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let text = |k: &http::HeaderName| self.0.get_all(k).iter().rev().find_map(|v| v.to_str().ok());
            s.collect_map(self.0.keys().filter_map(|k| Some((k.as_str(), text(k)?))))
        }
    }
    serde_json::to_string(&Headers(headers)).unwrap_or_else(|_| "{}".to_owned())
}

async fn handle(rest: &Arc<Rest>, req: &Request) -> Result<Response, RestError> {
    let cfg = &rest.app.config.rest;
    let path = percent_decode(&req.path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => {
            if !req.is_read() {
                return Err(method_not_allowed(&req.method));
            }
            let schema = req.schema(cfg)?;
            let cache = rest.cache().await?;
            Ok(openapi::response(&cache, &schema, req.method == Method::HEAD))
        }
        ["rpc", name] => {
            let cache = rest.cache().await?;
            rpc::handle(rest, &cache, req, name).await
        }
        [name] => {
            let cache = rest.cache().await?;
            table::handle(rest, &cache, req, name).await
        }
        _ => Err(RestError::Refused {
            code: "PGRST125",
            status: StatusCode::NOT_FOUND,
            message: format!("Invalid path specified in request URL: /{path}"),
            details: None,
        }),
    }
}

/// 405 for a method PostgREST does not serve here.
pub fn method_not_allowed(m: &Method) -> RestError {
    RestError::Refused {
        code: "PGRST117",
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("Unsupported HTTP method: {m}"),
        details: None,
    }
}

/// `%XX` escapes decoded (invalid ones kept as written), lossy UTF-8.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The JSON nesting depth of `v` (a scalar is 0).
pub fn json_depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Parses a JSON body with PostgREST's errors (PGRST102), enforcing the depth limit.
pub fn parse_body(body: &[u8], cfg: &RestConfig) -> Result<serde_json::Value, RestError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| RestError::Body(format!("Empty or invalid json: {e}")))?;
    if json_depth(&v) > usize::try_from(cfg.max_json_depth).unwrap_or(usize::MAX) {
        return Err(RestError::Body(format!("JSON body is nested deeper than {} levels", cfg.max_json_depth)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_paths() {
        assert_eq!(percent_decode("my%20table"), "my table");
        assert_eq!(percent_decode("bad%2"), "bad%2");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%+1"), "%+1", "a sign is not a hex digit");
    }

    #[test]
    fn json_depth_is_bounded() {
        let cfg = RestConfig::default();
        assert!(parse_body(b"{\"a\":[1,{\"b\":2}]}", &cfg).is_ok());
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_body(deep.as_bytes(), &cfg).is_err());
        assert!(parse_body(b"", &cfg).is_err());
    }

    #[test]
    fn pre_request_names_a_function() {
        let with = |f: &str| RestConfig { pre_request: f.to_owned(), ..RestConfig::default() };
        assert_eq!(with("").pre_request_sql(), None);
        assert!(with("").validate().is_ok());
        assert_eq!(with("check").pre_request_sql().as_deref(), Some("select \"check\"()"));
        assert_eq!(with("api.check").pre_request_sql().as_deref(), Some("select \"api\".\"check\"()"));
        assert_eq!(with("a\"b.c").pre_request_sql().as_deref(), Some("select \"a\"\"b\".\"c\"()"), "quoted, never pasted");
        for bad in ["a.b.c", ".x", "x.", " "] {
            assert_eq!(with(bad).pre_request_sql(), None, "{bad:?}");
            assert!(with(bad).validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_headers_are_one_object_of_last_text_values() {
        let mut h = HeaderMap::new();
        h.insert("apikey", http::HeaderValue::from_static("k"));
        h.append("x-dup", http::HeaderValue::from_static("first"));
        h.append("x-dup", http::HeaderValue::from_static("second"));
        h.insert("x-bin", http::HeaderValue::from_bytes(b"\xff").expect("opaque value"));
        h.insert("x-quote", http::HeaderValue::from_static("a\"b"));
        let v: serde_json::Value = serde_json::from_str(&headers_json(&h)).expect("json");
        assert_eq!(v, serde_json::json!({"apikey": "k", "x-dup": "second", "x-quote": "a\"b"}));
        assert_eq!(headers_json(&HeaderMap::new()), "{}");
    }
}
