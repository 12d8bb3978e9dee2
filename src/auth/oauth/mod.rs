//! OAuth 2.0 and OpenID Connect sign-in (GoTrue's external providers):
//! GitHub, Google and any OpenID Connect issuer, configured under
//! `[auth.external.<name>]`.
//!
//! - [`config`]: one provider's settings.
//! - [`client`]: the HTTP client for provider calls (timeouts, size limit).
//! - [`discovery`]: discovery documents and JWKS, cached with a TTL.
//! - [`id_token`]: ID-token verification and nonces.
//! - [`provider`]: authorize URL, code exchange, the user's data per provider.
//! - [`account`]: finding or making the user and its identity (linking).
//! - [`flow`]: `/authorize`, `/callback`, `/user/identities/authorize`.
//! - [`grant`]: `POST /token?grant_type=id_token`.

pub mod account;
pub mod client;
pub mod config;
pub mod discovery;
pub mod flow;
pub mod grant;
pub mod id_token;
pub mod provider;

use std::sync::Arc;

/// What every OAuth request shares: the HTTP client and the key cache.
#[derive(Debug, Clone)]
pub struct Oauth {
    /// Calls to providers.
    pub http: client::Http,
    /// Discovery and keys of OpenID Connect issuers.
    pub cache: Arc<discovery::OidcCache>,
}

impl Oauth {
    /// Builds the client and an empty cache.
    pub fn new() -> Result<Oauth, client::ProviderError> {
        Ok(Oauth { http: client::Http::new()?, cache: Arc::default() })
    }
}
