//! The API-key gate every API route sits behind, as Supabase's gateway does.
//!
//! A request to `/rest/v1`, `/auth/v1`, `/storage/v1`, `/realtime/v1` or
//! `/changes/v1` must carry the anon or service_role key: in the `apikey`
//! header, the `apikey` query parameter, or (when neither is present) as
//! `Authorization: Bearer <key>`. Keys are compared in constant time. The
//! few routes a browser reaches without headers (e-mail links, OAuth
//! redirects, public and signed storage URLs) are open, as in Supabase, and
//! so are TUS uploads (`/storage/v1/upload/resumable`), which Supabase
//! documents with only `Authorization: Bearer <user JWT>` (or, signed, only
//! `x-signature`): storage itself demands one of those there. An open route
//! still reports a valid key it was given.
//!
//! The gate decides only *which key* was presented ([`ApiKey`]); who the
//! caller is (a user's JWT in `Authorization`) is each service's business.

use http::request::Parts;
use http::StatusCode;
use subtle::ConstantTimeEq;

use super::error::{ApiError, Flavor};
use crate::keys::Keys;

/// Path prefixes behind the gate.
pub const GATED_PREFIXES: &[&str] = &["/rest/v1", "/auth/v1", "/storage/v1", "/realtime/v1", "/changes/v1"];

/// Routes under a gated prefix that browsers open without headers.
pub const OPEN_PREFIXES: &[&str] = &[
    "/auth/v1/verify",
    "/auth/v1/callback",
    "/auth/v1/authorize",
    "/auth/v1/.well-known/jwks.json",
    "/storage/v1/object/public/",
    "/storage/v1/object/sign/",
    "/storage/v1/render/image/public/",
    "/storage/v1/render/image/sign/",
    "/storage/v1/upload/resumable",
];

/// Which key a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKey {
    /// The anon key.
    Anon,
    /// The service_role key.
    ServiceRole,
    /// None needed: an open route.
    Open,
}

impl ApiKey {
    /// The database role the key stands for.
    pub fn role(self) -> &'static str {
        match self {
            ApiKey::ServiceRole => "service_role",
            ApiKey::Anon | ApiKey::Open => "anon",
        }
    }
}

/// Whether `path` is behind the gate.
pub fn is_gated(path: &str) -> bool {
    let under = |p: &&str| path.strip_prefix(*p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    GATED_PREFIXES.iter().any(under) && !OPEN_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Checks the key of a gated request.
pub fn check(parts: &Parts, keys: &Keys) -> Result<ApiKey, ApiError> {
    let presented = header_key(parts).or_else(|| query_key(parts)).or_else(|| bearer(parts));
    if !is_gated(parts.uri.path()) {
        let known = presented.filter(|k| eq(k, &keys.service_role) || eq(k, &keys.anon));
        return Ok(match known {
            Some(k) if eq(&k, &keys.service_role) => ApiKey::ServiceRole,
            Some(_) => ApiKey::Anon,
            None => ApiKey::Open,
        });
    }
    let Some(key) = presented else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "no_api_key", "No API key found in request")
            .with_hint("No `apikey` request header or url param was found.")
            .in_flavor(Flavor::Gateway));
    };
    if eq(&key, &keys.service_role) {
        Ok(ApiKey::ServiceRole)
    } else if eq(&key, &keys.anon) {
        Ok(ApiKey::Anon)
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", "Invalid API key")
            .with_hint("Double check your Supabase `anon` or `service_role` API key.")
            .in_flavor(Flavor::Gateway))
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn header_key(parts: &Parts) -> Option<String> {
    parts.headers.get("apikey").and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn query_key(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "apikey")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The token of `Authorization: Bearer <token>`, if any.
pub fn bearer(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    fn keys() -> Keys {
        Keys::from_secret("super-secret-jwt-token-with-at-least-32-characters-long".into()).expect("keys")
    }

    #[test]
    fn gated_and_open_paths() {
        assert!(is_gated("/rest/v1/todos"));
        assert!(is_gated("/rest/v1"));
        assert!(is_gated("/auth/v1/token"));
        assert!(!is_gated("/rest/v10"));
        assert!(!is_gated("/health"));
        assert!(!is_gated("/auth/v1/verify"));
        assert!(!is_gated("/storage/v1/object/public/b/x.png"));
        assert!(is_gated("/storage/v1/object/b/x.png"));
        assert!(!is_gated("/storage/v1/upload/resumable/sign"));
    }

    #[test]
    fn keys_from_header_query_or_bearer() {
        let k = keys();
        assert_eq!(check(&parts("/rest/v1/t", &[("apikey", &k.anon)]), &k), Ok(ApiKey::Anon));
        let q = format!("/realtime/v1/websocket?apikey={}&vsn=1.0.0", k.service_role);
        assert_eq!(check(&parts(&q, &[]), &k), Ok(ApiKey::ServiceRole));
        let auth = format!("Bearer {}", k.anon);
        assert_eq!(check(&parts("/rest/v1/t", &[("authorization", &auth)]), &k), Ok(ApiKey::Anon));
        assert_eq!(check(&parts("/health", &[]), &k), Ok(ApiKey::Open));
        // Open routes still report a valid key, and ignore anything else.
        let tus = "/storage/v1/upload/resumable";
        assert_eq!(check(&parts(tus, &[("apikey", &k.service_role)]), &k), Ok(ApiKey::ServiceRole));
        assert_eq!(check(&parts(tus, &[("authorization", "Bearer eyJ.x.y")]), &k), Ok(ApiKey::Open));
        assert_eq!(check(&parts(tus, &[("apikey", "nope")]), &k), Ok(ApiKey::Open));
    }

    #[test]
    fn missing_and_wrong_keys_are_401() {
        let k = keys();
        let e = check(&parts("/rest/v1/t", &[]), &k).expect_err("no key");
        assert_eq!((e.status, e.message.as_str()), (StatusCode::UNAUTHORIZED, "No API key found in request"));
        let e = check(&parts("/rest/v1/t", &[("apikey", "nope")]), &k).expect_err("bad key");
        assert_eq!((e.status, e.message.as_str()), (StatusCode::UNAUTHORIZED, "Invalid API key"));
        // A user token in Authorization does not stand in for a missing apikey
        // unless it is itself a key.
        let e = check(&parts("/rest/v1/t", &[("authorization", "Bearer eyJ.x.y")]), &k).expect_err("not a key");
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }
}
