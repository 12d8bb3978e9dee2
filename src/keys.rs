//! The project's signing secret and the two API keys derived from it, plus
//! optional asymmetric signing keys (RS256/ES256) for access tokens.
//!
//! Verification ([`Keys::verify`]) is what every service uses: HS256 with
//! the secret (API keys are always HS256), or RS256/ES256 with one of the
//! configured public keys, chosen by the token's `kid`. With
//! `[jwt] algorithm = "ES256"` or `"RS256"` the first key of
//! `[jwt] signing_keys` signs new access tokens and every listed key still
//! verifies (rotation: put the new key first, drop the old one once its
//! tokens have expired); their public halves are served as JWKS. ES256
//! with no key file configured generates one in the data directory.
//! `alg: none` and any other algorithm are refused.
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

pub mod cache;
pub mod claims;
pub mod hs256;

/// Seconds a token is still accepted after its `exp` (clock skew).
pub const LEEWAY_SECS: i64 = 30;

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
    /// A configured signing key cannot be used.
    #[error("JWT signing key: {0}")]
    BadSigningKey(String),
}

/// File in the data directory that holds a generated ES256 signing key.
pub const SIGNING_KEY_FILE: &str = "jwt_signing_key.pem";

/// An asymmetric key that signs (the first) or verifies access tokens.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id (`kid`): the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// RS256 or ES256.
    pub alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public key as a JWK.
    pub jwk: serde_json::Value,
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (RSA or P-256).
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        use p256::pkcs8::DecodePrivateKey;
        use sha2::Digest;
        if let Ok(sk) = p256::SecretKey::from_pkcs8_pem(pem) {
            let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&sk.public_key(), false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(KeyError::BadSigningKey("P-256 key without coordinates".into()));
            };
            let (x, y) = (B64.encode(x), B64.encode(y));
            let thumb = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
            let kid = B64.encode(sha2::Sha256::digest(thumb.as_bytes()));
            let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&sk).map_err(|e| KeyError::BadSigningKey(e.to_string()))?;
            let encoding = EncodingKey::from_ec_der(der.as_bytes());
            let decoding = DecodingKey::from_ec_components(&x, &y)?;
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig", "key_ops": ["verify"]});
            return Ok(SigningKey { kid, alg: Algorithm::ES256, encoding, decoding, jwk });
        }
        use rsa::traits::PublicKeyParts;
        let rk = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_pem(pem))
            .map_err(|e| KeyError::BadSigningKey(format!("not a PKCS#8 P-256 or RSA private key: {e}")))?;
        let (n, e) = (B64.encode(rk.n().to_bytes_be()), B64.encode(rk.e().to_bytes_be()));
        let thumb = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = B64.encode(sha2::Sha256::digest(thumb.as_bytes()));
        let der = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_der(&rk).map_err(|e| KeyError::BadSigningKey(e.to_string()))?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let decoding = DecodingKey::from_rsa_components(&n, &e)?;
        let jwk = serde_json::json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "alg": "RS256", "use": "sig", "key_ops": ["verify"]});
        Ok(SigningKey { kid, alg: Algorithm::RS256, encoding, decoding, jwk })
    }
}

/// A new P-256 private key as PKCS#8 PEM.
pub fn generate_es256_pem() -> Result<String, KeyError> {
    use p256::pkcs8::EncodePrivateKey;
    let sk = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    sk.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
        .map(|z| z.to_string())
        .map_err(|e| KeyError::BadSigningKey(e.to_string()))
}

/// The secret and the keys derived from it.
#[derive(Clone)]
pub struct Keys {
    secret: String,
    /// The anon key (public, safe in browsers).
    pub anon: String,
    /// The service_role key (bypasses RLS; keep it server-side).
    pub service_role: String,
    /// Asymmetric keys; the first signs access tokens. Empty: HS256.
    signing: std::sync::Arc<[SigningKey]>,
    /// Claims of tokens already verified with these keys (shared by clones).
    verified: std::sync::Arc<cache::JwtCache>,
    /// The secret's fast verifier (shared by clones).
    hs256: std::sync::Arc<hs256::Hs256>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("anon", &self.anon)
            .field("service_role", &mask(&self.service_role))
            .field("signing_kids", &self.signing.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>())
            .finish()
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
        let hs256 = std::sync::Arc::new(hs256::Hs256::new(secret.as_bytes(), LEEWAY_SECS.unsigned_abs()));
        Ok(Keys { secret, anon, service_role, signing: Vec::new().into(), verified: new_cache(), hs256 })
    }

    /// Loads per `[jwt]`: the secret, then, for RS256/ES256, the signing keys
    /// (`signing_keys`: comma-separated PEM files, first signs), generating
    /// an ES256 key in the data directory when none is configured.
    pub fn load_config(jwt: &crate::config::JwtConfig, data_dir: &DataDir) -> Result<Keys, KeyError> {
        let keys = Keys::load(&jwt.secret, data_dir)?;
        let files: Vec<&str> = jwt.signing_keys.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
        let mut pems = Vec::new();
        for f in &files {
            pems.push(std::fs::read_to_string(f).map_err(|e| KeyError::BadSigningKey(format!("{f}: {e}")))?);
        }
        match jwt.algorithm.as_str() {
            "HS256" => Ok(keys),
            "ES256" if pems.is_empty() => {
                let mut err = None;
                let pem = data_dir.secret(SIGNING_KEY_FILE, || {
                    generate_es256_pem().unwrap_or_else(|e| {
                        err = Some(e);
                        String::new()
                    })
                })?;
                if let Some(e) = err {
                    return Err(e);
                }
                keys.with_signing_keys(&[pem])
            }
            _ => keys.with_signing_keys(&pems),
        }
    }

    /// These keys with asymmetric signing keys (PEM); the first signs.
    pub fn with_signing_keys(mut self, pems: &[String]) -> Result<Keys, KeyError> {
        let keys = pems.iter().map(|p| SigningKey::from_pem(p)).collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::BadSigningKey("RS256/ES256 needs at least one key in jwt.signing_keys".into()));
        }
        self.signing = keys.into();
        self.verified = new_cache();
        Ok(self)
    }

    /// The header and key that sign access tokens: the first asymmetric key
    /// (with its `kid`), else HS256 with the secret.
    pub fn access_token_signer(&self) -> (Header, EncodingKey) {
        match self.signing.first() {
            Some(k) => {
                let mut h = Header::new(k.alg);
                h.kid = Some(k.kid.clone());
                (h, k.encoding.clone())
            }
            None => (Header::new(Algorithm::HS256), self.encoding_key()),
        }
    }

    /// The public signing keys as a JWK set (empty with HS256 only).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.signing.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// The HS256 secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The key for verifying HS256 tokens (made once, with the fast verifier).
    pub fn decoding_key(&self) -> &DecodingKey {
        self.hs256.key()
    }

    /// The key for signing HS256 tokens.
    pub fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_secret(self.secret.as_bytes())
    }

    /// Verifies a token (HS256 with the secret, or RS256/ES256 with a
    /// configured key) and returns its claims. A new HS256 token goes the
    /// fast way ([`hs256::Hs256`]) when it surely verifies; anything else,
    /// and every refusal, goes through `jsonwebtoken::decode`.
    pub fn verify(&self, token: &str) -> Result<claims::Claims, jsonwebtoken::errors::Error> {
        use jsonwebtoken::errors::{Error, ErrorKind};
        if let Some(claims) = self.hs256.verify(token) {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token)?;
        let claims = match header.alg {
            Algorithm::HS256 => self.verify_hs256(token),
            alg @ (Algorithm::RS256 | Algorithm::ES256) => {
                let key = self
                    .signing
                    .iter()
                    .filter(|k| k.alg == alg)
                    .find(|k| header.kid.as_deref().is_none_or(|kid| kid == k.kid))
                    .ok_or_else(|| Error::from(ErrorKind::InvalidSignature))?;
                jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation(alg)).map(|d| d.claims)
            }
            _ => Err(ErrorKind::InvalidAlgorithm.into()),
        }?;
        Ok(claims::Claims::new(claims))
    }
}

impl Keys {
    /// An HS256 token checked against the secret.
    fn verify_hs256(&self, token: &str) -> Result<serde_json::Value, jsonwebtoken::errors::Error> {
        static HS256: std::sync::LazyLock<Validation> = std::sync::LazyLock::new(|| validation(Algorithm::HS256));
        jsonwebtoken::decode::<serde_json::Value>(token, self.decoding_key(), &HS256).map(|d| d.claims)
    }

    /// [`Keys::verify`] through the cache of verified tokens
    /// ([`cache::JwtCache`]): a token seen before and not yet expired is not
    /// verified again. What every caller-resolving path uses.
    pub fn verify_cached(&self, token: &str) -> Result<claims::Claims, jsonwebtoken::errors::Error> {
        let now = unix_now();
        if let Some(claims) = self.verified.get(token, now) {
            return Ok(claims);
        }
        let claims = self.verify(token)?;
        self.verified.insert(token, &claims, now);
        Ok(claims)
    }

    /// Tokens in the verification cache.
    pub fn verified_cached(&self) -> usize {
        self.verified.len()
    }
}

/// What every verification checks besides the signature: expiry (with
/// [`LEEWAY_SECS`]) when `exp` is present; no audience, no required claims.
fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = LEEWAY_SECS.unsigned_abs();
    v
}

fn new_cache() -> std::sync::Arc<cache::JwtCache> {
    std::sync::Arc::new(cache::JwtCache::new(cache::MAX_ENTRIES, LEEWAY_SECS))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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
    fn es256_keys_sign_verify_rotate_and_publish_jwks() {
        let old = generate_es256_pem().expect("pem");
        let new = generate_es256_pem().expect("pem");
        let k = Keys::from_secret(generate_secret()).expect("keys").with_signing_keys(std::slice::from_ref(&old)).expect("es256");
        let claims = serde_json::json!({"sub": "u", "role": "authenticated", "exp": 4_000_000_000u64});
        let (h, key) = k.access_token_signer();
        assert_eq!(h.alg, Algorithm::ES256);
        let t_old = jsonwebtoken::encode(&h, &claims, &key).expect("sign");
        assert_eq!(k.verify(&t_old).expect("verifies")["sub"], "u");
        assert_eq!(k.verify(&k.anon).expect("API keys stay HS256")["role"], "anon");
        assert_eq!(k.jwks()["keys"][0]["kty"], "EC");
        // Rotation: the new key signs, the old one still verifies.
        let rotated = Keys::from_secret(k.secret().to_owned()).expect("keys").with_signing_keys(&[new, old]).expect("rotated");
        assert!(rotated.verify(&t_old).is_ok());
        let (h2, key2) = rotated.access_token_signer();
        assert_ne!(h2.kid, h.kid);
        let t_new = jsonwebtoken::encode(&h2, &claims, &key2).expect("sign");
        assert!(rotated.verify(&t_new).is_ok());
        assert!(k.verify(&t_new).is_err(), "a key not configured does not verify");
        assert_eq!(rotated.jwks()["keys"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn verify_cached_agrees_with_verify() {
        let k = Keys::from_secret(generate_secret()).expect("keys");
        let other = Keys::from_secret(generate_secret()).expect("keys");
        let claims = serde_json::json!({"sub": "u", "role": "authenticated", "exp": 4_000_000_000u64});
        let t = jsonwebtoken::encode(&Header::default(), &claims, &k.encoding_key()).expect("sign");
        assert_eq!(k.verify_cached(&t).expect("first")["sub"], "u");
        assert_eq!(k.verify_cached(&t).expect("cached")["sub"], "u");
        assert_eq!(k.verified_cached(), 1);
        assert!(other.verify_cached(&t).is_err(), "another key set has its own cache");
        let clone = k.clone();
        assert_eq!(clone.verified_cached(), 1, "clones share the cache");
        let expired = serde_json::json!({"role": "authenticated", "exp": 1_000});
        let t = jsonwebtoken::encode(&Header::default(), &expired, &k.encoding_key()).expect("sign");
        assert!(k.verify_cached(&t).is_err());
        assert_eq!(k.verified_cached(), 1, "failures are not kept");
    }

    #[test]
    fn debug_hides_service_key() {
        let k = Keys::from_secret(generate_secret()).expect("keys");
        assert!(!format!("{k:?}").contains(&k.service_role));
    }
}
