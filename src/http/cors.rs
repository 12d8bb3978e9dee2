//! CORS as Supabase's gateway answers it: any origin, the headers the
//! Supabase clients send, and the response headers they read exposed.

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;

/// Request headers the clients send (supabase-js `cors.ts`, plus REST, auth and storage extras).
pub const ALLOW_HEADERS: &str = "authorization, x-client-info, apikey, content-type, x-retry-count, traceparent, tracestate, baggage, x-supabase-api-version, prefer, range, accept-profile, content-profile, x-upsert, cache-control, x-metadata, content-encoding, x-request-id, accept, if-none-match, if-match, upload-length, upload-offset, upload-metadata, tus-resumable, upload-defer-length, last-event-id";
/// Response headers scripts may read.
pub const EXPOSE_HEADERS: &str = "content-range, range-unit, x-total-count, link, x-supabase-api-version, x-sb-error-code, etag, location, x-request-id, x-fluxbase-lsn, preference-applied, upload-offset, upload-length, tus-resumable, location";
/// Methods allowed cross-origin.
pub const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Whether a request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(http::header::ORIGIN) && headers.contains_key("access-control-request-method")
}

/// The answer to a preflight.
pub fn preflight(headers: &HeaderMap) -> Response {
    let mut res = Response::new(Default::default());
    *res.status_mut() = StatusCode::OK;
    decorate(res.headers_mut(), headers.get(http::header::ORIGIN));
    let h = res.headers_mut();
    h.insert("access-control-allow-methods", HeaderValue::from_static(ALLOW_METHODS));
    let requested = headers.get("access-control-request-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
    let allow = if requested.is_empty() { ALLOW_HEADERS.to_owned() } else { format!("{ALLOW_HEADERS}, {requested}") };
    if let Ok(v) = HeaderValue::from_str(&allow) {
        h.insert("access-control-allow-headers", v);
    }
    h.insert("access-control-max-age", HeaderValue::from_static("3600"));
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

/// Adds the CORS headers of an ordinary response (when the request had an `Origin`).
pub fn decorate(out: &mut HeaderMap, origin: Option<&HeaderValue>) {
    let Some(origin) = origin else { return };
    out.insert("access-control-allow-origin", origin.clone());
    out.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
    out.insert("access-control-expose-headers", HeaderValue::from_static(EXPOSE_HEADERS));
    out.append(http::header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_allows_supabase_headers() {
        let mut req = HeaderMap::new();
        req.insert(http::header::ORIGIN, HeaderValue::from_static("http://app.local"));
        req.insert("access-control-request-method", HeaderValue::from_static("POST"));
        req.insert("access-control-request-headers", HeaderValue::from_static("x-custom"));
        assert!(is_preflight(&Method::OPTIONS, &req));
        let res = preflight(&req);
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "http://app.local");
        let allowed = h["access-control-allow-headers"].to_str().expect("ascii");
        for name in ["apikey", "prefer", "x-upsert", "x-custom", "accept-profile"] {
            assert!(allowed.contains(name), "{name} missing");
        }
        assert!(h["access-control-expose-headers"].to_str().expect("ascii").contains("content-range"));
    }
}
