//! Verifying an OpenID Connect ID token: signature against the issuer's
//! published keys (RS256/ES256 family only), `iss`, `aud` (one of the
//! configured client ids), `exp` and, where the flow has one, `nonce`.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::client::{Http, ProviderError};
use super::discovery::OidcCache;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// Not a JWT, or a header we do not accept.
    #[error("malformed ID token")]
    Malformed,
    /// `alg` outside RS256/RS384/RS512/ES256/ES384 (no `none`, no HMAC).
    #[error("ID token signing algorithm not allowed")]
    Algorithm,
    /// No published key matches the token's `kid`.
    #[error("ID token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("ID token signature is invalid")]
    Signature,
    /// `iss` is not the provider's issuer.
    #[error("ID token issuer mismatch")]
    Issuer,
    /// `aud` names none of our client ids.
    #[error("ID token audience mismatch")]
    Audience,
    /// Past `exp`.
    #[error("ID token has expired")]
    Expired,
    /// `nonce` missing or different.
    #[error("{0}")]
    Nonce(&'static str),
    /// The keys could not be fetched.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Verifies `token` from `issuer` for one of `audiences`, returning its claims.
pub async fn verify(
    http: &Http,
    cache: &OidcCache,
    issuer: &str,
    audiences: &[&str],
    token: &str,
) -> Result<Value, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::ES256 | Algorithm::ES384) {
        return Err(IdTokenError::Algorithm);
    }
    let jwk = cache.key(http, issuer, header.kid.as_deref()).await?.ok_or(IdTokenError::UnknownKey)?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).map_err(|_| IdTokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| IdTokenError::UnknownKey)?;
    let mut v = Validation::new(header.alg);
    v.leeway = LEEWAY_SECS;
    v.set_issuer(&[issuer, &format!("{issuer}/")]);
    v.set_audience(audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => IdTokenError::Signature,
            ErrorKind::InvalidIssuer => IdTokenError::Issuer,
            ErrorKind::InvalidAudience => IdTokenError::Audience,
            ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => IdTokenError::Expired,
            ErrorKind::InvalidAlgorithm => IdTokenError::Algorithm,
            _ => IdTokenError::Malformed,
        }
    })?;
    Ok(data.claims)
}

/// The nonce an authorization-code flow sends for `state`: an HMAC under
/// the project secret, so nothing needs storing and nobody else can make one.
pub fn flow_nonce(secret: &str, state: &str) -> String {
    use hmac::Mac;
    let mut mac = match hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"fluxbase-oauth-nonce:");
    mac.update(state.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Checks a flow's nonce: the token must carry exactly `expected`.
pub fn check_flow_nonce(claims: &Value, expected: &str) -> Result<(), IdTokenError> {
    let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if !expected.is_empty() && bool::from(got.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(IdTokenError::Nonce("Nonces mismatch"))
    }
}

/// GoTrue's `id_token` grant rule: the token's `nonce` and the request's
/// must both be there or both be absent; the token carries the SHA-256 (hex)
/// of the request's nonce (what native sign-in SDKs put there), or the
/// nonce itself.
pub fn check_grant_nonce(claims: &Value, given: Option<&str>) -> Result<(), IdTokenError> {
    let in_token = claims.get("nonce").and_then(Value::as_str).filter(|n| !n.is_empty());
    match (in_token, given.filter(|n| !n.is_empty())) {
        (None, None) => Ok(()),
        (Some(t), Some(g)) => {
            let hashed = hex::encode(Sha256::digest(g.as_bytes()));
            if bool::from(t.as_bytes().ct_eq(hashed.as_bytes())) || bool::from(t.as_bytes().ct_eq(g.as_bytes())) {
                Ok(())
            } else {
                Err(IdTokenError::Nonce("Nonces mismatch"))
            }
        }
        _ => Err(IdTokenError::Nonce("Passed nonce and nonce in id_token should either both exist or not.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nonces() {
        let n = flow_nonce("secret", "state-1");
        assert_ne!(n, flow_nonce("secret", "state-2"));
        assert_ne!(n, flow_nonce("other", "state-1"));
        assert!(check_flow_nonce(&json!({"nonce": n}), &n).is_ok());
        assert!(check_flow_nonce(&json!({}), &n).is_err());
        assert!(check_flow_nonce(&json!({"nonce": "x"}), &n).is_err());
        let hashed = hex::encode(Sha256::digest(b"raw"));
        assert!(check_grant_nonce(&json!({"nonce": hashed}), Some("raw")).is_ok());
        assert!(check_grant_nonce(&json!({"nonce": "raw"}), Some("raw")).is_ok());
        assert!(check_grant_nonce(&json!({"nonce": "x"}), Some("raw")).is_err());
        assert!(check_grant_nonce(&json!({"nonce": "x"}), None).is_err());
        assert!(check_grant_nonce(&json!({}), Some("raw")).is_err());
        assert!(check_grant_nonce(&json!({}), None).is_ok());
    }
}
