//! [`Caller`]: who a request acts as, in database terms.
//!
//! PostgREST's model, shared by every service that touches user data: the
//! caller's JWT (from `Authorization: Bearer`, else the API key itself) is
//! verified, its `role` claim names the database role to run as, and its
//! claims are exposed to SQL as `request.jwt.claims` so RLS policies and
//! `auth.uid()` can read them. Only the service_role key (or a token whose
//! role is `service_role`) bypasses RLS, because that role has BYPASSRLS.
//!
//! Tokens are verified once: [`Keys::verify_cached`] keeps the claims of
//! each verified token until it expires (bounded; `keys/cache.rs`), so a
//! client repeating its token pays for a map lookup, not a signature check.
//!
//! [`Caller::apply_sql`] gives the one statement that switches a transaction
//! to the caller: run it first in every transaction that reads or writes
//! user data.

use http::StatusCode;
use serde_json::Value;

use super::apikey::ApiKey;
use super::error::ApiError;
use crate::keys::claims::Claims;
use crate::keys::Keys;

/// Roles a JWT may name. Anything else is refused rather than `SET ROLE`d.
pub const ALLOWED_ROLES: &[&str] = &["anon", "authenticated", "service_role"];

/// The database identity of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// Database role (`anon`, `authenticated` or `service_role`).
    pub role: String,
    /// The verified JWT claims (`{"role": "anon"}` for a bare anon key).
    pub claims: Claims,
    /// The raw token, when one was presented.
    pub token: Option<String>,
}

impl Caller {
    /// Resolves the caller from the `Authorization` bearer token (or, absent
    /// one, the API key the gate accepted).
    pub fn resolve(bearer: Option<&str>, key: ApiKey, keys: &Keys) -> Result<Caller, ApiError> {
        let token = match bearer {
            Some(t) => t,
            None => {
                return Ok(Caller {
                    role: key.role().to_owned(),
                    claims: Claims::new(serde_json::json!({ "role": key.role() })),
                    token: None,
                })
            }
        };
        let claims = keys.verify_cached(token).map_err(|e| jwt_error(&e))?;
        let role = claims.get("role").and_then(Value::as_str).unwrap_or("anon").to_owned();
        if !ALLOWED_ROLES.contains(&role.as_str()) {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "PGRST301", format!("JWT role \"{role}\" is not allowed"))
                .with_hint("Use a token whose role is anon, authenticated or service_role"));
        }
        Ok(Caller { role, claims, token: Some(token.to_owned()) })
    }

    /// Whether the caller bypasses RLS.
    pub fn is_service_role(&self) -> bool {
        self.role == "service_role"
    }

    /// The user id (`sub` claim), if any.
    pub fn user_id(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// SQL that switches the current transaction to this caller, with its two
    /// parameters (`$1` role, `$2` claims JSON): one round trip.
    pub fn apply_sql() -> &'static str {
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)"
    }

    /// The parameters for [`Caller::apply_sql`].
    pub fn apply_params(&self) -> (&str, &str) {
        (&self.role, self.claims.json())
    }
}

/// PostgREST's answer to a JWT that does not verify.
fn jwt_error(e: &jsonwebtoken::errors::Error) -> ApiError {
    use jsonwebtoken::errors::ErrorKind;
    let message = match e.kind() {
        ErrorKind::ExpiredSignature => "JWT expired".to_owned(),
        ErrorKind::InvalidSignature => "JWSError JWSInvalidSignature".to_owned(),
        ErrorKind::InvalidAlgorithm => "JWSError JWSInvalidAlgorithm".to_owned(),
        _ => format!("JWT invalid: {e}"),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "PGRST301", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, Header};

    fn keys() -> Keys {
        Keys::from_secret("super-secret-jwt-token-with-at-least-32-characters-long".into()).expect("keys")
    }

    fn token(keys: &Keys, claims: Value) -> String {
        encode(&Header::default(), &claims, &keys.encoding_key()).expect("sign")
    }

    #[test]
    fn bare_keys_act_as_their_role() {
        let k = keys();
        let c = Caller::resolve(None, ApiKey::Anon, &k).expect("anon");
        assert_eq!(c.role, "anon");
        let c = Caller::resolve(None, ApiKey::ServiceRole, &k).expect("service");
        assert!(c.is_service_role());
    }

    #[test]
    fn user_tokens_carry_role_and_claims() {
        let k = keys();
        let t = token(&k, serde_json::json!({"sub": "u1", "role": "authenticated", "exp": 4_000_000_000u64}));
        let c = Caller::resolve(Some(&t), ApiKey::Anon, &k).expect("user");
        assert_eq!((c.role.as_str(), c.user_id()), ("authenticated", Some("u1")));
        let (role, claims) = c.apply_params();
        assert_eq!(role, "authenticated");
        assert!(claims.contains("\"sub\":\"u1\""));
    }

    #[test]
    fn bad_tokens_are_401() {
        let k = keys();
        let other = Keys::from_secret("another-secret-another-secret-another-secret".into()).expect("keys");
        let forged = token(&other, serde_json::json!({"role": "service_role", "exp": 4_000_000_000u64}));
        let e = Caller::resolve(Some(&forged), ApiKey::Anon, &k).expect_err("wrong key");
        assert_eq!((e.status, e.code.as_ref()), (StatusCode::UNAUTHORIZED, "PGRST301"));
        let expired = token(&k, serde_json::json!({"role": "authenticated", "exp": 1_000}));
        let e = Caller::resolve(Some(&expired), ApiKey::Anon, &k).expect_err("expired");
        assert_eq!(e.message, "JWT expired");
        let postgres = token(&k, serde_json::json!({"role": "postgres", "exp": 4_000_000_000u64}));
        assert!(Caller::resolve(Some(&postgres), ApiKey::Anon, &k).is_err(), "superuser roles are refused");
        // alg none
        let none = format!("{}.{}.", b64("{\"alg\":\"none\",\"typ\":\"JWT\"}"), b64("{\"role\":\"service_role\"}"));
        assert!(Caller::resolve(Some(&none), ApiKey::Anon, &k).is_err(), "alg none is refused");
    }

    fn b64(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }
}
