//! OpenID Connect discovery and the issuers' signing keys, cached.
//!
//! Each configured issuer's discovery document and JWKS are kept for
//! [`TTL`]; an ID token naming a `kid` the cached set lacks refetches the
//! JWKS (key rotation), at most once per [`REFETCH_INTERVAL`] per issuer,
//! so unknown kids cannot make us hammer the provider. The cache holds only
//! configured issuers, so it is bounded by the configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Http, ProviderError};

/// How long discovery and keys are trusted.
pub const TTL: Duration = Duration::from_secs(600);
/// Shortest time between two fetches of one issuer's keys.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// What discovery tells us about an issuer.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// `issuer`, which ID tokens must carry as `iss`.
    pub issuer: String,
    /// Where users are sent to sign in.
    pub authorization_endpoint: String,
    /// Where codes are exchanged.
    pub token_endpoint: String,
    /// Claims about the user, given the access token.
    pub userinfo_endpoint: Option<String>,
    /// The signing keys.
    pub jwks_uri: String,
}

#[derive(Debug, Clone)]
struct Entry {
    discovery: Discovery,
    keys: Vec<Value>,
    fetched: Instant,
}

/// The cache, shared by every request.
#[derive(Debug, Default)]
pub struct OidcCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl OidcCache {
    fn get(&self, issuer: &str) -> Option<Entry> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(issuer).cloned()
    }

    fn put(&self, issuer: &str, entry: Entry) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).insert(issuer.to_owned(), entry);
    }

    /// Discovery for `issuer`, fetched when missing or stale.
    pub async fn discovery(&self, http: &Http, issuer: &str) -> Result<Discovery, ProviderError> {
        match self.get(issuer) {
            Some(e) if e.fetched.elapsed() < TTL => Ok(e.discovery),
            _ => Ok(self.fetch(http, issuer).await?.discovery),
        }
    }

    /// The key for `kid` (or the only key, when the token names none).
    pub async fn key(&self, http: &Http, issuer: &str, kid: Option<&str>) -> Result<Option<Value>, ProviderError> {
        let entry = match self.get(issuer) {
            Some(e) if e.fetched.elapsed() < TTL => e,
            _ => self.fetch(http, issuer).await?,
        };
        if let Some(k) = pick(&entry.keys, kid) {
            return Ok(Some(k));
        }
        if entry.fetched.elapsed() < REFETCH_INTERVAL {
            return Ok(None);
        }
        let entry = self.fetch(http, issuer).await?;
        Ok(pick(&entry.keys, kid))
    }

    async fn fetch(&self, http: &Http, issuer: &str) -> Result<Entry, ProviderError> {
        let doc = http.get_json(&format!("{issuer}/.well-known/openid-configuration"), None).await?;
        let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        let missing = |k: &str| ProviderError::Invalid(format!("discovery document without {k}"));
        let discovery = Discovery {
            issuer: s("issuer").ok_or_else(|| missing("issuer"))?,
            authorization_endpoint: s("authorization_endpoint").ok_or_else(|| missing("authorization_endpoint"))?,
            token_endpoint: s("token_endpoint").ok_or_else(|| missing("token_endpoint"))?,
            userinfo_endpoint: s("userinfo_endpoint"),
            jwks_uri: s("jwks_uri").ok_or_else(|| missing("jwks_uri"))?,
        };
        if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ProviderError::Invalid("discovery names another issuer".into()));
        }
        let jwks = http.get_json(&discovery.jwks_uri, None).await?;
        let keys = jwks.get("keys").and_then(Value::as_array).cloned().ok_or_else(|| missing("keys"))?;
        let entry = Entry { discovery, keys, fetched: Instant::now() };
        self.put(issuer, entry.clone());
        Ok(entry)
    }
}

fn pick(keys: &[Value], kid: Option<&str>) -> Option<Value> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).cloned(),
        None if keys.len() == 1 => keys.first().cloned(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_picked_by_kid() {
        let keys = vec![json!({"kid": "a"}), json!({"kid": "b"})];
        assert_eq!(pick(&keys, Some("b")), Some(json!({"kid": "b"})));
        assert_eq!(pick(&keys, Some("c")), None);
        assert_eq!(pick(&keys, None), None, "two keys and no kid: ambiguous");
        assert_eq!(pick(&keys[..1], None), Some(json!({"kid": "a"})));
    }
}
