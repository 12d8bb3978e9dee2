//! `POST /token?grant_type=id_token` (`signInWithIdToken`, GoTrue's
//! `token_oidc.go`): an ID token a native SDK got from the provider,
//! verified against the provider's published keys, signs the user in.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use warp::reply::Response;

use super::account;
use super::config::Kind;
use super::flow::provider;
use super::id_token::{self, IdTokenError};
use super::provider::oidc_user;
use crate::auth::errors::AuthError;
use crate::auth::ratelimit::Action;
use crate::auth::routes::{json, parse, Ctx};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IdTokenGrant {
    provider: Option<String>,
    id_token: Option<String>,
    access_token: Option<String>,
    nonce: Option<String>,
}

/// Handles the grant.
pub async fn handle(ctx: &Ctx, body: &Bytes) -> Result<Response, AuthError> {
    let p: IdTokenGrant = parse(body)?;
    let cfg = ctx.auth.config().clone();
    if !ctx.auth.allow(Action::SignIn, &ctx.ip_key(), cfg.rate_limit_sign_in_sign_ups, Duration::from_secs(300)).await? {
        return Err(AuthError::OverRequestRateLimit);
    }
    let token = p.id_token.unwrap_or_default();
    let name = p.provider.unwrap_or_default();
    if token.is_empty() || name.is_empty() {
        return Err(AuthError::Validation("provider and id_token are required".into()));
    }
    let prov = provider(ctx, &name).map_err(|_| {
        AuthError::Coded(StatusCode::BAD_REQUEST, "validation_failed", format!("Custom OIDC provider \"{name}\" not allowed"))
    })?;
    if prov.kind() != Kind::Oidc {
        return Err(AuthError::Coded(StatusCode::BAD_REQUEST, "validation_failed", format!("Custom OIDC provider \"{name}\" not allowed")));
    }
    let issuer = prov.config.issuer_for(&prov.name);
    let o = &ctx.auth.oauth;
    let claims = id_token::verify(&o.http, &o.cache, &issuer, &prov.audiences(), &token).await.map_err(refused)?;
    if !prov.config.skip_nonce_check {
        id_token::check_grant_nonce(&claims, p.nonce.as_deref()).map_err(refused)?;
    }
    // `at_hash`, when present, binds the access token given with it.
    if let (Some(at_hash), Some(access)) = (claims.get("at_hash").and_then(|v| v.as_str()), p.access_token.as_deref()) {
        if !at_hash_matches(at_hash, access) {
            return Err(refused(IdTokenError::Nonce("Access token hash mismatch")));
        }
    }
    let user = oidc_user(&claims);
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    let linked = account::resolve(&cfg, &tx, &prov.name, &user, None).await?;
    let session = ctx.auth.start_session_in(&tx, linked.user_id(), "oauth", ctx.ip, ctx.user_agent.as_deref()).await?;
    tx.commit().await?;
    Ok(json(&session))
}

/// An ID token refused: GoTrue answers 400 with the reason.
fn refused(e: IdTokenError) -> AuthError {
    match e {
        IdTokenError::Provider(p) => {
            tracing::warn!(error = %p, "cannot fetch the provider's keys");
            AuthError::Coded(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "Error verifying ID token: provider unavailable".into())
        }
        IdTokenError::Nonce(m) => AuthError::Coded(StatusCode::BAD_REQUEST, "validation_failed", m.into()),
        other => AuthError::Coded(StatusCode::BAD_REQUEST, "validation_failed", format!("Bad ID token: {other}")),
    }
}

/// OIDC core 3.1.3.6: the left half of SHA-256 of the access token, base64url.
fn at_hash_matches(at_hash: &str, access_token: &str) -> bool {
    use base64::Engine;
    use sha2::Digest;
    let d = sha2::Sha256::digest(access_token.as_bytes());
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16]);
    bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), at_hash.as_bytes()))
}
