//! `[auth.external.<name>]`: one OAuth / OpenID Connect provider.
//!
//! `github` speaks GitHub's OAuth 2.0 API (`/user`, `/user/emails`); every
//! other name is an OpenID Connect provider found by discovery from its
//! `issuer` (`google` defaults to `https://accounts.google.com`). Base URLs
//! can be pointed elsewhere (GitHub Enterprise, a test fixture).

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Google's issuer, used when `[auth.external.google]` names none.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// One provider's settings.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalProvider {
    /// Whether the provider may be used (a configured provider is on unless
    /// this says otherwise).
    pub enabled: bool,
    /// The OAuth client id; for ID tokens, also the audience accepted.
    pub client_id: String,
    /// The OAuth client secret. Never logged.
    pub secret: String,
    /// The callback URL registered with the provider; empty means
    /// `<api url>/auth/v1/callback`.
    pub redirect_uri: String,
    /// OpenID Connect issuer (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// GitHub: the web base URL (authorize and token endpoints), default `https://github.com`.
    pub url: String,
    /// GitHub: the API base URL, default `https://api.github.com`.
    pub api_url: String,
    /// Scopes always requested, space-separated (added to the client's `scopes`).
    pub scopes: String,
    /// Accept ID tokens without checking their nonce (GoTrue's `skip_nonce_check`).
    pub skip_nonce_check: bool,
}

impl Default for ExternalProvider {
    fn default() -> Self {
        ExternalProvider {
            enabled: true,
            client_id: String::new(),
            secret: String::new(),
            redirect_uri: String::new(),
            issuer: String::new(),
            url: String::new(),
            api_url: String::new(),
            scopes: String::new(),
            skip_nonce_check: false,
        }
    }
}

impl std::fmt::Debug for ExternalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalProvider")
            .field("enabled", &self.enabled)
            .field("client_id", &self.client_id)
            .field("secret", &if self.secret.is_empty() { "" } else { "<hidden>" })
            .field("redirect_uri", &self.redirect_uri)
            .field("issuer", &self.issuer)
            .field("url", &self.url)
            .field("api_url", &self.api_url)
            .field("scopes", &self.scopes)
            .field("skip_nonce_check", &self.skip_nonce_check)
            .finish()
    }
}

/// What protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// GitHub's OAuth 2.0 plus REST API.
    GitHub,
    /// OpenID Connect (Google and any other issuer).
    Oidc,
}

impl ExternalProvider {
    /// The protocol `name` speaks.
    pub fn kind(name: &str) -> Kind {
        if name == "github" {
            Kind::GitHub
        } else {
            Kind::Oidc
        }
    }

    /// The issuer, with Google's default.
    pub fn issuer_for(&self, name: &str) -> String {
        match (self.issuer.trim(), name) {
            ("", "google") => GOOGLE_ISSUER.to_owned(),
            (i, _) => i.trim_end_matches('/').to_owned(),
        }
    }

    /// GitHub's web base URL.
    pub fn github_web(&self) -> String {
        if self.url.is_empty() { "https://github.com".into() } else { self.url.trim_end_matches('/').to_owned() }
    }

    /// GitHub's API base URL.
    pub fn github_api(&self) -> String {
        if self.api_url.is_empty() { "https://api.github.com".into() } else { self.api_url.trim_end_matches('/').to_owned() }
    }

    /// Checks one provider's settings.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: &str, allowed: &str| ConfigError::Invalid {
            key: format!("auth.external.{name}.{key}"),
            value: value.to_owned(),
            allowed: allowed.into(),
        };
        let name_ok = !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(invalid("", name, "a provider name of lower-case letters, digits, '_' or '-'"));
        }
        if matches!(name, "email" | "phone" | "anonymous" | "anonymous_users" | "saml") {
            return Err(invalid("", name, "a name other than email, phone, anonymous or saml"));
        }
        if self.client_id.is_empty() {
            return Err(invalid("client_id", "", "the OAuth client id"));
        }
        let url_ok = |u: &str| u.is_empty() || u.starts_with("http://") || u.starts_with("https://");
        for (key, value) in [("redirect_uri", &self.redirect_uri), ("issuer", &self.issuer), ("url", &self.url), ("api_url", &self.api_url)] {
            if !url_ok(value) {
                return Err(invalid(key, value, "an http:// or https:// URL"));
            }
        }
        if Self::kind(name) == Kind::Oidc && self.issuer_for(name).is_empty() {
            return Err(invalid("issuer", "", "the OpenID Connect issuer URL (discovery)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_issuers_and_hidden_secrets() {
        let p = ExternalProvider { client_id: "c".into(), secret: "s3cret".into(), ..Default::default() };
        assert_eq!(ExternalProvider::kind("github"), Kind::GitHub);
        assert_eq!(ExternalProvider::kind("keycloak"), Kind::Oidc);
        assert_eq!(p.issuer_for("google"), GOOGLE_ISSUER);
        assert!(p.validate("github").is_ok());
        assert!(p.validate("google").is_ok());
        assert!(p.validate("acme").is_err(), "an OIDC provider needs an issuer");
        assert!(p.validate("Bad Name").is_err());
        assert!(ExternalProvider { issuer: "ftp://x".into(), ..p.clone() }.validate("acme").is_err());
        assert!(!format!("{p:?}").contains("s3cret"));
    }
}
