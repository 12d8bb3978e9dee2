//! [`ApiError`]: the one error type handlers return, and how it is rendered.
//!
//! Handlers never write error bodies themselves. They return an `ApiError`
//! (as a rejection or as a response carrying it in its extensions); the edge
//! ([`super::edge`]) renders it once, in the shape the service's Supabase
//! counterpart uses ([`Flavor`]), with the request id in the body.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};
use warp::reply::Response;

/// An error as an API caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`PGRST116`, `invalid_credentials`, `NoSuchKey`, a SQLSTATE …).
    pub code: Cow<'static, str>,
    /// Human-readable message.
    pub message: String,
    /// Further detail, if any.
    pub details: Option<String>,
    /// A hint at the fix, if any.
    pub hint: Option<String>,
    /// Shape to render in regardless of the path (the gate answers as the gateway).
    pub flavor: Option<Flavor>,
    /// Further top-level fields of the body (GoTrue's `weak_password: {reasons}`),
    /// merged into the rendered object without replacing its own keys.
    pub extra: Option<Box<serde_json::Map<String, Value>>>,
    /// Headers and a reason phrase for the response (a REST function's
    /// `RAISE SQLSTATE 'PGRST'` names them). Boxed: most errors have
    /// none, and `ApiError` travels in `Result`s.
    pub response: Option<Box<ResponseParts>>,
}

/// What an error's response carries besides its status and body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseParts {
    /// Headers, each replacing the response's headers of its name.
    pub headers: Vec<(http::header::HeaderName, HeaderValue)>,
    /// The status line's reason phrase in place of the standard one
    /// (HTTP/1 only; HTTP/2 has none).
    pub reason: Option<hyper::ext::ReasonPhrase>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            hint: None,
            flavor: None,
            extra: None,
            response: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: impl Into<String>) -> ApiError {
        self.details = Some(details.into());
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a top-level field to the rendered body.
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> ApiError {
        self.extra.get_or_insert_with(Default::default).insert(key.into(), value);
        self
    }

    /// Renders in `flavor`'s shape whatever the path.
    pub fn in_flavor(mut self, flavor: Flavor) -> ApiError {
        self.flavor = Some(flavor);
        self
    }

    /// 503: the server is starting or a dependency is down.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", message)
    }

    /// 500 with a generic message; the cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error")
    }

    /// A response that carries this error for the edge to render.
    pub fn into_response(self) -> Response {
        let mut res = Response::new(Default::default());
        *res.status_mut() = self.status;
        res.extensions_mut().insert(self);
        res
    }
}

impl warp::reject::Reject for ApiError {}

impl warp::Reply for ApiError {
    fn into_response(self) -> Response {
        ApiError::into_response(self)
    }
}

/// Which Supabase service's error shape a response uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The API gateway (Kong in Supabase): `{message, hint}`.
    Gateway,
    /// PostgREST: `{code, details, hint, message}`.
    Rest,
    /// GoTrue, current form (`X-Supabase-Api-Version` sent): `{code, message}`.
    Auth,
    /// GoTrue, legacy form: `{code: <status>, error_code, msg, error_id}`.
    AuthLegacy,
    /// storage-api: HTTP 400 (or 500) with `{statusCode, code, error, message}`.
    Storage,
}

impl Flavor {
    /// The flavour for a request path (and, for auth, whether the client sent
    /// `X-Supabase-Api-Version`).
    pub fn for_path(path: &str, auth_api_version: bool) -> Flavor {
        if path.starts_with("/rest/v1") {
            Flavor::Rest
        } else if path.starts_with("/auth/v1") {
            if auth_api_version {
                Flavor::Auth
            } else {
                Flavor::AuthLegacy
            }
        } else if path.starts_with("/storage/v1") {
            Flavor::Storage
        } else {
            Flavor::Gateway
        }
    }
}

/// Renders `err` as the final response for `flavor`, mentioning `request_id`.
pub fn render(err: &ApiError, flavor: Flavor, request_id: &str) -> Response {
    let flavor = err.flavor.unwrap_or(flavor);
    let (status, body) = match flavor {
        Flavor::Gateway => (
            err.status,
            json!({"message": err.message, "hint": err.hint, "code": err.code, "request_id": request_id}),
        ),
        Flavor::Rest => (
            err.status,
            json!({"code": err.code, "details": err.details, "hint": err.hint, "message": err.message, "request_id": request_id}),
        ),
        Flavor::Auth => (err.status, json!({"code": err.code, "message": err.message, "request_id": request_id})),
        Flavor::AuthLegacy => (
            err.status,
            json!({"code": err.status.as_u16(), "error_code": err.code, "msg": err.message, "error_id": request_id}),
        ),
        Flavor::Storage => {
            let http = if err.status.is_server_error() { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::BAD_REQUEST };
            let error = err.details.clone().unwrap_or_else(|| err.status.canonical_reason().unwrap_or("Error").to_owned());
            (
                http,
                json!({"statusCode": err.status.as_u16().to_string(), "code": err.code, "error": error, "message": err.message, "request_id": request_id}),
            )
        }
    };
    let mut body = body;
    if let (Some(extra), Some(obj)) = (&err.extra, body.as_object_mut()) {
        for (k, v) in extra.iter() {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut res = json_response(status, &body, flavor, &err.code);
    if let Some(parts) = &err.response {
        set_headers(res.headers_mut(), &parts.headers);
        if let Some(reason) = &parts.reason {
            res.extensions_mut().insert(reason.clone());
        }
    }
    res
}

/// Puts `headers` in `map`, each name's values replacing what `map` had
/// (several values of one name all stay).
pub fn set_headers(map: &mut http::HeaderMap, headers: &[(http::header::HeaderName, HeaderValue)]) {
    for (name, _) in headers {
        map.remove(name);
    }
    for (name, value) in headers {
        map.append(name.clone(), value.clone());
    }
}

fn json_response(status: StatusCode, body: &Value, flavor: Flavor, code: &str) -> Response {
    let mut res = Response::new(body.to_string().into());
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    // GoTrue sends no header for errors without a code of their own (it
    // answers `unknown` in the body then).
    if matches!(flavor, Flavor::Auth | Flavor::AuthLegacy) && code != "unknown" {
        if let Ok(v) = HeaderValue::from_str(code) {
            headers.insert("x-sb-error-code", v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(res: Response) -> Value {
        use http_body_util::BodyExt;
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("json")
    }

    fn sample() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "PGRST205", "Could not find the table").with_hint("Perhaps you meant x")
    }

    #[tokio::test]
    async fn rest_shape_has_all_four_keys() {
        let res = render(&sample(), Flavor::Rest, "rid");
        assert_eq!(res.status(), 404);
        let b = body(res).await;
        assert_eq!(b["code"], "PGRST205");
        assert_eq!(b["details"], Value::Null);
        assert_eq!(b["hint"], "Perhaps you meant x");
        assert_eq!(b["request_id"], "rid");
    }

    #[tokio::test]
    async fn storage_shape_uses_400_with_real_status_in_body() {
        let e = ApiError::new(StatusCode::NOT_FOUND, "NoSuchKey", "Object not found").with_details("not_found");
        let res = render(&e, Flavor::Storage, "rid");
        assert_eq!(res.status(), 400);
        let b = body(res).await;
        assert_eq!(b["statusCode"], "404");
        assert_eq!(b["error"], "not_found");
    }

    #[tokio::test]
    async fn auth_shapes() {
        let e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_credentials", "Invalid login credentials");
        let res = render(&e, Flavor::Auth, "rid");
        assert_eq!(res.headers()["x-sb-error-code"], "invalid_credentials");
        let b = body(res).await;
        assert_eq!(b["code"], "invalid_credentials");
        let b = body(render(&e, Flavor::AuthLegacy, "rid")).await;
        assert_eq!(b["code"], 400);
        assert_eq!(b["error_code"], "invalid_credentials");
        assert_eq!(b["msg"], "Invalid login credentials");
        assert_eq!(b["error_id"], "rid");
        let weak = e.with_extra("weak_password", json!({"reasons": ["length"]}));
        let b = body(render(&weak, Flavor::Auth, "rid")).await;
        assert_eq!(b["weak_password"]["reasons"][0], "length");
        assert_eq!(b["code"], "invalid_credentials");
    }

    #[test]
    fn flavor_by_path() {
        assert_eq!(Flavor::for_path("/rest/v1/todos", false), Flavor::Rest);
        assert_eq!(Flavor::for_path("/auth/v1/token", true), Flavor::Auth);
        assert_eq!(Flavor::for_path("/auth/v1/token", false), Flavor::AuthLegacy);
        assert_eq!(Flavor::for_path("/storage/v1/object", false), Flavor::Storage);
        assert_eq!(Flavor::for_path("/realtime/v1/api/broadcast", false), Flavor::Gateway);
    }
}
