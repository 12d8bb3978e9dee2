//! The auth server: GoTrue's `/auth/v1` API (supabase/auth), so that
//! `@supabase/supabase-js`'s `auth` and `auth.admin` work unchanged.
//!
//! State lives in GoTrue's own tables (`auth.users`, `auth.identities`,
//! `auth.sessions`, `auth.refresh_tokens`, `auth.one_time_tokens`,
//! `auth.flow_state`, `auth.mfa_*`), so users exported from Supabase sign in
//! here and the other way round.
//!
//! # Layout
//! - [`config`]: the `[auth]` section.
//! - [`errors`]: [`errors::AuthError`], GoTrue's error codes.
//! - [`mod@routes`]: the warp routes and the request context.
//! - [`tokens`]: access-token claims, sessions, refresh rotation with reuse detection.
//! - [`password`]: Argon2id on a bounded pool, bcrypt import, strength rules.
//! - [`ratelimit`]: per-IP and per-address limits, in process.
//! - [`shared_limits`]: the same limits in the database, shared by instances.
//! - [`mailer`]: one-time tokens in mails, the captured mailbox.
//! - [`templates`], [`smtp`]: the mails' text (GoTrue's defaults), delivery over SMTP.
//! - [`users`]: reading and writing `auth.users` and identities.
//! - [`signup`], [`token`], [`user`], [`logout`], [`settings`]: the user-facing endpoints.
//! - [`otp`], [`verify`]: magic links, OTPs, recovery, resend, confirmation links, PKCE.
//! - [`mfa`]: TOTP factors, AAL2 sessions.
//! - [`oauth`]: OAuth / OpenID Connect providers, the `id_token` grant, identity linking.
//! - [`admin`]: the service-role endpoints.

pub mod admin;
pub mod cleanup;
pub mod config;
pub mod errors;
pub mod logout;
pub mod mailer;
pub mod mfa;
pub mod oauth;
pub mod otp;
pub mod password;
pub mod ratelimit;
pub mod refresh_batch;
pub mod routes;
pub mod settings;
pub mod shared_limits;
pub mod smtp;
pub mod templates;
pub mod signup;
pub mod token;
pub mod tokens;
pub mod user;
pub mod users;
pub mod verify;

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::app::AppState;
pub use config::AuthConfig;
use errors::AuthError;
pub use routes::routes;

/// What every auth handler shares: the server state, the password pool and
/// the rate limiter.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The server.
    pub state: Arc<AppState>,
    /// Password hashing.
    pub passwords: password::PasswordPool,
    /// Rate limits counted in this process.
    pub limits: Arc<ratelimit::RateLimiter>,
    /// Rate limits counted in the database: the refusal cache.
    pub shared: Arc<shared_limits::SharedLimits>,
    /// The SMTP relay, when `smtp_host` is set.
    pub smtp: Option<Arc<smtp::Smtp>>,
    /// The OAuth providers' HTTP client and key cache.
    pub oauth: oauth::Oauth,
    /// Refresh-token grants coalesced into batches.
    pub refreshes: Arc<refresh_batch::RefreshBatcher>,
    /// Old rotated tokens and ended sessions, swept now and then.
    pub cleanup: Arc<cleanup::Cleanup>,
    /// Configured mail subjects and templates.
    pub templates: Arc<templates::Overrides>,
}

/// A pooled connection of `state`: for the background tasks (refresh
/// batches, cleanup), which hold the server and not an [`Auth`].
pub async fn db_of(state: &AppState) -> Result<deadpool_postgres::Object, AuthError> {
    Ok(state.require_ready()?.pool.get().await?)
}

impl Auth {
    /// The auth service of `state`.
    pub fn new(state: Arc<AppState>) -> Result<Auth, AuthError> {
        let passwords = password::PasswordPool::new(&state.config.auth)?;
        let smtp = smtp::Smtp::from_config(&state.config.auth).map_err(AuthError::internal)?.map(Arc::new);
        let oauth = oauth::Oauth::new().map_err(AuthError::internal)?;
        let templates = Arc::new(templates::Overrides::load(&state.config.auth).map_err(AuthError::Internal)?);
        Ok(Auth { state, passwords, limits: Arc::new(ratelimit::RateLimiter::default()), shared: Arc::default(), smtp, oauth, refreshes: Arc::default(), cleanup: Arc::default(), templates })
    }

    /// The `[auth]` configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.state.config.auth
    }

    /// The public base URL of the API.
    pub fn api_url(&self) -> String {
        let c = &self.state.config;
        if c.server.public_url.is_empty() {
            c.api_url(c.port)
        } else {
            c.server.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// `iss` of access tokens.
    pub fn issuer(&self) -> String {
        let c = self.config();
        if c.jwt_issuer.is_empty() {
            format!("{}/auth/v1", self.api_url())
        } else {
            c.jwt_issuer.clone()
        }
    }

    /// A pooled connection.
    pub async fn db(&self) -> Result<deadpool_postgres::Object, AuthError> {
        db_of(&self.state).await
    }

    /// GoTrue's User JSON for `id`, if the user exists.
    pub async fn user_json(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        id: Uuid,
    ) -> Result<Option<Value>, AuthError> {
        let stmt = client.prepare_cached("select fluxbase.auth_user_json($1)").await?;
        let row = client.query_one(&stmt, &[&id]).await?;
        row.try_get::<_, Option<Value>>(0).map_err(AuthError::internal)
    }
}
