//! The project's signing secret and the two API keys derived from it.
//!
//! The HS256 secret comes from `[jwt] secret` (`FLUXBASE_JWT_SECRET`) or is
//! generated on first start and kept in the data directory (mode 0600). The
//! anon and service_role keys are JWTs carrying the `role` claim, as
//! Supabase's are; they are derived deterministically from the secret (fixed
//! `iat`/`exp`), so they stay the same across restarts.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::datadir::{DataDir, DataDirError};

/// File in the data directory that holds a generated secret.
pub const SECRET_FILE: &str = "jwt_secret";
/// Issuer written into the API keys.
pub const ISSUER: &str = "fluxbase";
/// `iat` of the API keys: 2025-01-01T00:00:00Z.
const KEY_IAT: i64 = 1_735_689_600;
/// `exp` of the API keys: 2035-01-01T00:00:00Z.
const KEY_EXP: i64 = 2_051_222_400;

/// The claims of an API key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyClaims {
    /// Issuer.
    pub iss: String,
    /// Database role the key acts as: `anon` or `service_role`.
    pub role: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
}

/// Errors minting keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The secret file could not be read or written.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// Signing failed.
    #[error("cannot sign API key: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The secret and the keys derived from it.
#[derive(Clone)]
pub struct Keys {
    secret: String,
    /// The anon key (public, safe in browsers).
    pub anon: String,
    /// The service_role key (bypasses RLS; keep it server-side).
    pub service_role: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("anon", &self.anon).field("service_role", &mask(&self.service_role)).finish()
    }
}

impl Keys {
    /// Uses `configured` if non-empty, else the data directory's secret
    /// (generating and persisting one on first use).
    pub fn load(configured: &str, data_dir: &DataDir) -> Result<Keys, KeyError> {
        let secret = if configured.is_empty() {
            data_dir.secret(SECRET_FILE, generate_secret)?
        } else {
            configured.to_owned()
        };
        Keys::from_secret(secret)
    }

    /// Derives the API keys from a secret.
    pub fn from_secret(secret: String) -> Result<Keys, KeyError> {
        let anon = sign(&secret, "anon")?;
        let service_role = sign(&secret, "service_role")?;
        Ok(Keys { secret, anon, service_role })
    }

    /// The HS256 secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The key for verifying HS256 tokens.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_secret(self.secret.as_bytes())
    }

    /// The key for signing HS256 tokens.
    pub fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_secret(self.secret.as_bytes())
    }

    /// Verifies an HS256 token signed with this secret and returns its claims.
    pub fn verify(&self, token: &str) -> Result<serde_json::Value, jsonwebtoken::errors::Error> {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_aud = false;
        v.required_spec_claims.clear();
        v.leeway = 30;
        jsonwebtoken::decode::<serde_json::Value>(token, &self.decoding_key(), &v).map(|d| d.claims)
    }
}

fn sign(secret: &str, role: &str) -> Result<String, KeyError> {
    let claims = KeyClaims { iss: ISSUER.into(), role: role.into(), iat: KEY_IAT, exp: KEY_EXP };
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))?)
}

/// A fresh 256-bit secret, base64url-encoded (43 characters).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Shows the first 12 characters of a secret and hides the rest.
pub fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(12).collect();
    format!("{shown}…(hidden; --show-secrets prints it)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_persists_and_keys_are_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        let a = Keys::load("", &d).expect("generate");
        let b = Keys::load("", &d).expect("reload");
        assert_eq!(a.secret(), b.secret());
        assert_eq!(a.anon, b.anon);
        assert_eq!(a.service_role, b.service_role);
        assert!(a.secret().len() >= 32);
    }

    #[test]
    fn configured_secret_wins_and_keys_carry_roles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        let k = Keys::load("super-secret-jwt-token-with-at-least-32-characters-long", &d).expect("keys");
        assert!(d.read_secret(SECRET_FILE).expect("read").is_none(), "configured secret is not persisted");
        assert_eq!(k.verify(&k.anon).expect("valid")["role"], "anon");
        assert_eq!(k.verify(&k.service_role).expect("valid")["role"], "service_role");
        let other = Keys::from_secret(generate_secret()).expect("keys");
        assert!(other.verify(&k.anon).is_err(), "a key signed with another secret is refused");
    }

    #[test]
    fn debug_hides_service_key() {
        let k = Keys::from_secret(generate_secret()).expect("keys");
        assert!(!format!("{k:?}").contains(&k.service_role));
    }
}
