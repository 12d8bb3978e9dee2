//! The edge: what happens to every request before and after routing.
//!
//! In order: a request id (the client's `X-Request-Id` if sane, else a new
//! UUID) and a tracing span carrying it; CORS preflights answered; the body
//! limit; the 503 while starting; the API-key gate; then the routes. On the
//! way out: an [`ApiError`] carried by the response is rendered in its
//! service's shape with the request id; `X-Request-Id` and CORS headers are
//! added (and `Connection: close` when a refused body may still be
//! arriving); the request is counted, timed and logged.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use tower_service::Service;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::apikey::{self, ApiKey};
use super::cors;
use super::error::{render, ApiError, Flavor};
use crate::app::AppState;
use crate::logging::access;

/// The request id, available to handlers as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The peer address, available to handlers as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The body type handed to the routes.
pub type EdgeBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Paths whose bodies are streamed and limited by their own service.
const STREAMING_PREFIXES: &[&str] = &["/storage/v1"];

/// Runs one request through the edge and `routes`.
pub async fn handle(
    state: Arc<AppState>,
    routes: super::router::Routes,
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Result<Response, Infallible> {
    let started = Instant::now();
    let request_id = request_id(req.headers());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // The span carries the request id into every line logged while the
    // request is handled; the access line joins it to the method and path.
    let span = tracing::info_span!("request", request_id = %request_id);
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let auth_api_version = req.headers().contains_key("x-supabase-api-version");
    let flavor = Flavor::for_path(&path, auth_api_version);

    let has_body = req.version() <= http::Version::HTTP_11 && carries_body(req.headers());
    let filters = routes.pick(&path).clone();
    let result = route(Arc::clone(&state), filters, req, peer, request_id.clone()).instrument(span).await;
    // The body may be unread when the request was refused before the routes
    // ran, or refused by a service its body is streamed to.
    let refused_unread = result.is_err() || is_streaming(&path);

    let mut res = match result {
        Ok(res) => match res.extensions().get::<ApiError>().cloned() {
            Some(err) => render(&err, flavor, &request_id),
            None => res,
        },
        Err(err) => render(&err, flavor, &request_id),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    if auth_api_version && path.starts_with("/auth/v1") {
        res.headers_mut().insert("x-supabase-api-version", HeaderValue::from_static("2024-01-01"));
    }
    cors::decorate(res.headers_mut(), origin.as_ref());
    // A refused body may still be arriving; the connection closes after the
    // answer (RFC 9112, section 9.6), and says so, lest the client send its
    // next request on it.
    if has_body && refused_unread && (res.status().is_client_error() || res.status().is_server_error()) {
        res.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.observe(super::metrics::service_of(&path), method.as_str(), status, elapsed.as_secs_f64());
    // The access line names the request itself rather than through the span:
    // it is written after the span has ended.
    let ms = elapsed.as_secs_f64() * 1e3;
    access::log(access::Request { request_id: &request_id, method: method.as_str(), path: &path, status, ms });
    Ok(res)
}

/// The checks before routing, then the routes.
async fn route(
    state: Arc<AppState>,
    routes: BoxedFilter<(Response,)>,
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    request_id: String,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    if cors::is_preflight(&parts.method, &parts.headers) {
        return Ok(cors::preflight(&parts.headers));
    }
    let path = parts.uri.path().to_owned();
    let streaming = is_streaming(&path);
    let limit = state.config.server.max_body_bytes;
    if !streaming && content_length(&parts.headers).is_some_and(|n| n > limit) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request body exceeds the limit of {limit} bytes"),
        ));
    }
    if apikey::is_gated(&path) {
        state.require_ready()?;
    }
    let key: ApiKey = apikey::check(&parts, &state.keys)?;
    parts.extensions.insert(key);
    parts.extensions.insert(RequestId(request_id));
    parts.extensions.insert(ClientAddr(peer));
    let body: EdgeBody = if streaming {
        body.map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) }).boxed()
    } else {
        Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)).boxed()
    };
    let mut svc = warp::service(routes);
    match svc.call(Request::from_parts(parts, body)).await {
        Ok(res) => Ok(res),
        Err(never) => match never {},
    }
}

/// The client's `X-Request-Id` when it is 1-128 visible ASCII characters, else a new UUID.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Whether `path`'s body is streamed to its service rather than read here.
fn is_streaming(path: &str) -> bool {
    STREAMING_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Whether the request says it has a body (a non-zero length, or chunks).
fn carries_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING) || content_length(headers).is_some_and(|n| n > 0)
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane() {
        let mut h = http::HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h), "has space");
        assert_eq!(request_id(&http::HeaderMap::new()).len(), 36);
    }

    #[test]
    fn bodies_are_announced_by_length_or_chunks() {
        let mut h = http::HeaderMap::new();
        assert!(!carries_body(&h));
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(!carries_body(&h));
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert!(carries_body(&h));
        let mut chunked = http::HeaderMap::new();
        chunked.insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(carries_body(&chunked));
        assert!(is_streaming("/storage/v1/object/b/x") && !is_streaming("/rest/v1/t"));
    }
}
