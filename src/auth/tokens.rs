//! Access tokens, sessions and refresh tokens.
//!
//! An access token is an HS256 JWT (the project secret, so REST, realtime
//! and storage verify it with [`crate::keys::Keys::verify`]) with GoTrue's
//! claims. A session is a row of `auth.sessions`; its refresh tokens are
//! rows of `auth.refresh_tokens` chained by `parent`.
//!
//! Invariants of the refresh grant, kept in one statement
//! (`fluxbase.auth_refresh()`) that locks the presented token's row:
//! - a live token is used once: it is revoked and a child is issued;
//! - a revoked token presented again within `refresh_token_reuse_interval`
//!   of its rotation (two tabs racing) gets the session's current token;
//! - any other reuse is taken as theft: the whole session is deleted (its
//!   tokens cascade), so both the thief's and the victim's refresh tokens
//!   and the session's access tokens stop working.

use std::net::IpAddr;

use base64::Engine;
use deadpool_postgres::GenericClient;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::errors::AuthError;
use super::Auth;

/// The claims of an access token (GoTrue's `AccessTokenClaims`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// Issuer: `<api url>/auth/v1`.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// `authenticated`.
    pub aud: String,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// The user's e-mail.
    pub email: String,
    /// The user's phone.
    pub phone: String,
    /// `raw_app_meta_data`.
    pub app_metadata: Value,
    /// `raw_user_meta_data`.
    pub user_metadata: Value,
    /// Database role (`authenticated`).
    pub role: String,
    /// Assurance level: `aal1` or `aal2`.
    pub aal: String,
    /// How the session was authenticated.
    pub amr: Vec<Value>,
    /// The session.
    pub session_id: String,
    /// Whether the user signed in anonymously.
    pub is_anonymous: bool,
}

/// A new random refresh token: 128 bits, base64url (22 characters).
pub fn new_refresh_token() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// What a session response is built from.
#[derive(Debug, Clone)]
pub struct SessionParts {
    /// The user JSON (`fluxbase.auth_user_json`).
    pub user: Value,
    /// The session id.
    pub session_id: Uuid,
    /// `aal1`/`aal2`.
    pub aal: String,
    /// `[{method, timestamp}]`.
    pub amr: Vec<Value>,
    /// The refresh token to hand out.
    pub refresh_token: String,
}

impl Auth {
    /// The claims of an access token for `parts`.
    pub fn claims(&self, parts: &SessionParts) -> AccessClaims {
        let iat = now_secs();
        let exp = iat + self.config().jwt_exp as i64;
        let u = &parts.user;
        let s = |k: &str| u.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        AccessClaims {
            iss: self.issuer(),
            sub: s("id"),
            aud: if s("aud").is_empty() { "authenticated".into() } else { s("aud") },
            exp,
            iat,
            email: s("email"),
            phone: s("phone"),
            app_metadata: u.get("app_metadata").cloned().unwrap_or_else(|| json!({})),
            user_metadata: u.get("user_metadata").cloned().unwrap_or_else(|| json!({})),
            role: if s("role").is_empty() { "authenticated".into() } else { s("role") },
            aal: parts.aal.clone(),
            amr: parts.amr.clone(),
            session_id: parts.session_id.to_string(),
            is_anonymous: u.get("is_anonymous").and_then(Value::as_bool).unwrap_or(false),
        }
    }

    /// Runs the custom access-token hook (`auth.hook_custom_access_token`),
    /// as Supabase does, on `db` (the transaction that made the session, so
    /// the hook sees the new user and a refusal undoes everything): the SQL
    /// function gets `{user_id, claims, authentication_method}` and answers
    /// `{claims}` (or `{error: {http_code, message}}`). The claims GoTrue
    /// requires must survive. Errors are GoTrue's: the hook's own status
    /// (500 when it gives none) and message with code `unknown` (or
    /// `unexpected_failure` for a 500); a hook that fails to run answers
    /// 500 `Error running hook URI: …`.
    async fn run_hook(&self, db: &impl GenericClient, function: &str, claims: Value, method: &str) -> Result<Value, AuthError> {
        let event = json!({ "user_id": claims["sub"], "claims": claims, "authentication_method": method });
        let sql = format!("select {function}($1::jsonb)");
        let row = db.query_one(&sql, &[&event]).await.map_err(|e| {
            tracing::warn!(error = %e, hook = %function, "custom access-token hook failed");
            AuthError::Coded(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "unexpected_failure",
                format!("Error running hook URI: {}", self.config().hook_custom_access_token.trim()),
            )
        })?;
        let out: Option<Value> = row.try_get(0).map_err(AuthError::internal)?;
        let out = out.unwrap_or(Value::Null);
        if let Some(err) = out.get("error").filter(|e| !e.is_null()) {
            let status = err.get("http_code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
            let status = status
                .and_then(|c| http::StatusCode::from_u16(c).ok())
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            let message = err.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
            let code = if status == http::StatusCode::INTERNAL_SERVER_ERROR { "unexpected_failure" } else { "unknown" };
            return Err(AuthError::Coded(status, code, message));
        }
        let new = out.get("claims").cloned().filter(Value::is_object).ok_or_else(|| {
            AuthError::Coded(http::StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "output claims field is missing".into())
        })?;
        for k in ["iss", "aud", "exp", "iat", "sub", "role", "aal", "session_id", "is_anonymous"] {
            if new.get(k).is_none() {
                return Err(AuthError::Coded(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "unexpected_failure",
                    format!("output claims do not conform to the expected schema: \n- (root): {k} is required\n"),
                ));
            }
        }
        if !new.get("role").and_then(Value::as_str).is_some_and(|r| crate::http::caller::ALLOWED_ROLES.contains(&r)) {
            return Err(AuthError::Coded(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "unexpected_failure",
                "Output claims name a role that is not allowed".into(),
            ));
        }
        Ok(new)
    }

    /// The session JSON GoTrue answers sign-ins with; `method` is what the
    /// access-token hook is told, `db` where it runs (the session's
    /// transaction).
    pub async fn session_json(&self, db: &impl GenericClient, parts: &SessionParts, method: &str) -> Result<Value, AuthError> {
        let Some(function) = self.config().hook_function() else {
            return self.session_json_unhooked(parts);
        };
        let claims = self.claims(parts);
        let exp = claims.exp;
        let claims = serde_json::to_value(&claims).map_err(AuthError::internal)?;
        let claims = self.run_hook(db, &function, claims, method).await?;
        Ok(self.session_body(self.sign(&claims)?, exp, parts))
    }

    /// The session JSON when no access-token hook is configured: no
    /// database work.
    fn session_json_unhooked(&self, parts: &SessionParts) -> Result<Value, AuthError> {
        let claims = self.claims(parts);
        Ok(self.session_body(self.sign(&claims)?, claims.exp, parts))
    }

    fn session_body(&self, access_token: String, exp: i64, parts: &SessionParts) -> Value {
        json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": self.config().jwt_exp,
            "expires_at": exp,
            "refresh_token": parts.refresh_token,
            "user": parts.user,
        })
    }

    /// Signs access-token claims with the project's signing key.
    fn sign(&self, claims: &impl Serialize) -> Result<String, AuthError> {
        let (header, key) = self.state.keys.access_token_signer();
        jsonwebtoken::encode(&header, claims, &key).map_err(AuthError::internal)
    }

    /// Starts a session for `user_id` authenticated by `method`, and returns
    /// the session JSON, in one transaction with the access-token hook: a
    /// refusal leaves no session behind. Also records the sign-in time.
    pub async fn start_session(
        &self,
        user_id: Uuid,
        method: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<Value, AuthError> {
        let mut client = self.db().await?;
        let tx = client.transaction().await?;
        let session = self.start_session_in(&tx, user_id, method, ip, user_agent).await?;
        tx.commit().await?;
        self.cleanup.maybe_run(&self.state);
        Ok(session)
    }

    /// [`Auth::start_session`] inside the caller's transaction `db` (sign-up
    /// creates the user and its session in one transaction).
    pub async fn start_session_in(
        &self,
        db: &impl GenericClient,
        user_id: Uuid,
        method: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<Value, AuthError> {
        let session_id = Uuid::new_v4();
        let refresh_token = new_refresh_token();
        // Prepared once per connection: PostgreSQL plans this statement once,
        // not on every sign-in.
        let stmt = db
            .prepare_cached(
                "with s as (
                   insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip, refreshed_at)
                   values ($1::uuid, $2::uuid, now(), now(), 'aal1', $3::text, $4::text::inet, now() at time zone 'utc')
                   returning id),
                 rt as (
                   insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
                   select '00000000-0000-0000-0000-000000000000'::uuid, $5::text, $2::uuid::text, false, now(), now(), id from s
                   returning id),
                 amr as (
                   insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
                   select id, now(), now(), $6::text, gen_random_uuid() from s
                   returning created_at),
                 u as (
                   update auth.users set last_sign_in_at = now() where id = $2::uuid returning id),
                 i as (
                   update auth.identities set last_sign_in_at = now()
                   where user_id = $2::uuid and provider = case when $6::text = 'anonymous' then 'anonymous' else provider end
                   returning id)
                 select (select count(*) from rt) + (select count(*) from u) + (select count(*) from i) as n,
                        extract(epoch from (select created_at from amr))::bigint as ts",
            )
            .await?;
        let row = db.query_one(&stmt, &[&session_id, &user_id, &user_agent, &ip.map(|i| i.to_string()), &refresh_token, &method]).await?;
        let ts: i64 = row.try_get("ts").map_err(AuthError::internal)?;
        let user = self.user_json(db, user_id).await?.ok_or(AuthError::UserNotFound)?;
        let parts =
            SessionParts { user, session_id, aal: "aal1".into(), amr: vec![json!({"method": method, "timestamp": ts})], refresh_token };
        self.session_json(db, &parts, method).await
    }

    /// Raises a session to AAL2 after a verified factor: records the method,
    /// issues a fresh refresh token in the same session (revoking the
    /// others) and answers the new session JSON.
    pub async fn upgrade_session(&self, session_id: Uuid, user_id: Uuid, factor_id: Uuid, method: &str) -> Result<Value, AuthError> {
        let mut client = self.db().await?;
        let tx = client.transaction().await?;
        let refresh_token = new_refresh_token();
        let n = tx
            .execute(
                "update auth.sessions set aal = 'aal2', factor_id = $2, updated_at = now() where id = $1 and user_id = $3",
                &[&session_id, &factor_id, &user_id],
            )
            .await?;
        if n == 0 {
            return Err(AuthError::SessionNotFound);
        }
        tx.execute(
            "insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
             values ($1, now(), now(), $2, gen_random_uuid())
             on conflict (session_id, authentication_method) do update set updated_at = now(), created_at = now()",
            &[&session_id, &method],
        )
        .await?;
        let row = tx
            .query_one(
                "with r as (update auth.refresh_tokens set revoked = true, updated_at = now()
                              where session_id = $1 and not revoked returning token),
                      n as (insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
                            values ('00000000-0000-0000-0000-000000000000'::uuid, $2::text, $3::uuid::text, false, now(), now(),
                                    (select max(token) from r), $1::uuid)
                            returning id)
                 select (select count(*) from n) as n,
                        (select coalesce(jsonb_agg(jsonb_build_object('method', a.authentication_method,
                                 'timestamp', extract(epoch from a.created_at)::bigint) order by a.created_at desc), '[]')
                           from auth.mfa_amr_claims a where a.session_id = $1::uuid) as amr",
                &[&session_id, &refresh_token, &user_id],
            )
            .await?;
        let amr: Value = row.try_get("amr").map_err(AuthError::internal)?;
        let user = self.user_json(&tx, user_id).await?.ok_or(AuthError::TokenUserGone)?;
        let amr = amr.as_array().cloned().unwrap_or_default();
        let parts = SessionParts { user, session_id, aal: "aal2".into(), amr, refresh_token };
        let session = self.session_json(&tx, &parts, method).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// The refresh-token grant: rotation with reuse detection (see the module
    /// doc), `fluxbase.auth_refresh()` (migrations `0201`, `0204`). Without
    /// an access-token hook the grant joins the next batch
    /// ([`super::refresh_batch`]); with one, the call and the hook share one
    /// transaction, so a refusal leaves the token unrotated.
    pub async fn refresh(&self, token: &str) -> Result<Value, AuthError> {
        if token.is_empty() || token.len() > 255 {
            return Err(AuthError::RefreshTokenNotFound);
        }
        if self.config().hook_function().is_none() {
            let rotation = self.refreshes.rotate(&self.state, token.to_owned(), new_refresh_token()).await?;
            self.cleanup.maybe_run(&self.state);
            return self.session_json_unhooked(&rotation.into_parts()?);
        }
        let mut client = self.db().await?;
        let tx = client.transaction().await?;
        let rotated = super::refresh_batch::rotate_one(&tx, self.config(), token, &new_refresh_token()).await;
        match rotated.and_then(Rotation::into_parts) {
            Ok(parts) => {
                let session = self.session_json(&tx, &parts, "token_refresh").await?;
                tx.commit().await?;
                self.cleanup.maybe_run(&self.state);
                Ok(session)
            }
            Err(e) => {
                // Expiry and reuse delete the session: keep that.
                if matches!(e, AuthError::SessionExpired | AuthError::RefreshTokenAlreadyUsed) {
                    tx.commit().await?;
                }
                Err(e)
            }
        }
    }
}

/// What `fluxbase.auth_refresh()` answered for one grant.
#[derive(Debug)]
pub struct Rotation {
    outcome: String,
    session_id: Option<Uuid>,
    aal: Option<String>,
    amr: Option<Value>,
    refresh_token: Option<String>,
    user: Option<Value>,
}

impl Rotation {
    /// Reads the columns `outcome, session_id, aal, amr, refresh_token, user_json`.
    pub fn from_row(row: &tokio_postgres::Row) -> Result<Rotation, AuthError> {
        Ok(Rotation {
            outcome: row.try_get("outcome").map_err(AuthError::internal)?,
            session_id: row.try_get("session_id").map_err(AuthError::internal)?,
            aal: row.try_get("aal").map_err(AuthError::internal)?,
            amr: row.try_get("amr").map_err(AuthError::internal)?,
            refresh_token: row.try_get("refresh_token").map_err(AuthError::internal)?,
            user: row.try_get("user_json").map_err(AuthError::internal)?,
        })
    }

    /// The session to hand out, or the grant's error.
    pub fn into_parts(self) -> Result<SessionParts, AuthError> {
        match self.outcome.as_str() {
            "ok" => {}
            "expired" => return Err(AuthError::SessionExpired),
            "reused" => {
                tracing::warn!(session_id = ?self.session_id, "refresh token reused; session revoked");
                return Err(AuthError::RefreshTokenAlreadyUsed);
            }
            _ => return Err(AuthError::RefreshTokenNotFound),
        }
        let missing = |what: &str| AuthError::Internal(format!("auth_refresh returned no {what}"));
        let amr = match self.amr {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        Ok(SessionParts {
            user: self.user.ok_or(AuthError::RefreshTokenNotFound)?,
            session_id: self.session_id.ok_or_else(|| missing("session"))?,
            aal: self.aal.ok_or_else(|| missing("aal"))?,
            amr,
            refresh_token: self.refresh_token.ok_or_else(|| missing("refresh token"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_url_safe() {
        let a = new_refresh_token();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_refresh_token());
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
