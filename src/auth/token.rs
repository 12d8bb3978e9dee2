//! `POST /token?grant_type=password|refresh_token|pkce|id_token` (GoTrue's `token.go`).

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use warp::reply::Response;

use super::errors::AuthError;
use super::ratelimit::Action;
use super::routes::{json, parse, Ctx};
use super::users::{find_by_email, validate_email};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PasswordGrant {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RefreshGrant {
    refresh_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PkceGrant {
    auth_code: Option<String>,
    code_verifier: Option<String>,
}

/// Handles `POST /token`.
pub async fn handle(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    match ctx.param("grant_type") {
        Some("password") => password(&ctx, parse(&body)?).await,
        Some("refresh_token") => {
            let p: RefreshGrant = parse(&body)?;
            let cfg = ctx.auth.config();
            if !ctx.auth.allow(Action::Refresh, &ctx.ip_key(), cfg.rate_limit_token_refresh, Duration::from_secs(300)).await? {
                return Err(AuthError::OverRequestRateLimit);
            }
            let token = p.refresh_token.unwrap_or_default();
            if token.is_empty() {
                return Err(AuthError::RefreshTokenNotFound);
            }
            Ok(json(&ctx.auth.refresh(&token).await?))
        }
        Some("pkce") => {
            let p: PkceGrant = parse(&body)?;
            let (code, verifier) = (p.auth_code.unwrap_or_default(), p.code_verifier.unwrap_or_default());
            if code.is_empty() || verifier.is_empty() {
                return Err(AuthError::Validation("invalid request: both auth code and code verifier should be non-empty".into()));
            }
            Ok(json(&super::verify::exchange_code(&ctx, &code, &verifier).await?))
        }
        Some("id_token") => super::oauth::grant::handle(&ctx, &body).await,
        _ => Err(AuthError::UnsupportedGrantType),
    }
}

async fn password(ctx: &Ctx, p: PasswordGrant) -> Result<Response, AuthError> {
    let cfg = ctx.auth.config();
    if !ctx.auth.allow(Action::SignIn, &ctx.ip_key(), cfg.rate_limit_sign_in_sign_ups, Duration::from_secs(300)).await? {
        return Err(AuthError::OverRequestRateLimit);
    }
    let password = p.password.unwrap_or_default();
    let email = p.email.unwrap_or_default();
    if email.trim().is_empty() {
        if p.phone.is_some_and(|ph| !ph.is_empty()) {
            return Err(AuthError::InvalidCredentials);
        }
        return Err(AuthError::Validation("missing email or phone".into()));
    }
    let email = validate_email(&email).map_err(|_| AuthError::InvalidCredentials)?;
    // Per address, only failures count: check first, count after a failure.
    let per = Duration::from_secs(300);
    let max_failures = cfg.rate_limit_sign_in_failures_per_address;
    if max_failures > 0 && ctx.auth.counted(Action::SignInFailure, &email, per).await? >= max_failures {
        return Err(AuthError::OverRequestRateLimit);
    }
    let client = ctx.auth.db().await?;
    let found = find_by_email(&client, &email).await?;
    // The hash runs whether or not the user exists: same time either way.
    let verified = ctx.auth.passwords.verify(password, found.as_ref().and_then(|f| f.password_hash.clone())).await?;
    let Some(found) = found.filter(|_| verified.ok) else {
        if max_failures > 0 {
            ctx.auth.allow(Action::SignInFailure, &email, u32::MAX, per).await?;
        }
        return Err(AuthError::InvalidCredentials);
    };
    if found.banned {
        return Err(AuthError::UserBanned);
    }
    if !found.confirmed {
        return Err(AuthError::EmailNotConfirmed);
    }
    if let Some(new_hash) = verified.rehash {
        client
            .execute("update auth.users set encrypted_password = $2 where id = $1", &[&found.id, &new_hash])
            .await?;
    }
    drop(client);
    let session = ctx.auth.start_session(found.id, "password", ctx.ip, ctx.user_agent.as_deref()).await?;
    Ok(json(&session))
}
