//! `GET /settings` and `GET /health`: what the auth server offers.

use bytes::Bytes;
use serde_json::json;
use warp::reply::Response;

use super::errors::AuthError;
use super::routes::{json, Ctx};

/// Handles `GET /settings` (GoTrue's `Settings`).
pub async fn handle(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let c = ctx.auth.config();
    let mut external = json!({
        "anonymous_users": c.enable_anonymous_sign_ins,
        "email": true,
        "phone": false,
        "apple": false, "azure": false, "bitbucket": false, "discord": false, "facebook": false,
        "figma": false, "fly": false, "github": false, "gitlab": false, "google": false,
        "keycloak": false, "kakao": false, "linkedin": false, "linkedin_oidc": false, "notion": false,
        "slack": false, "slack_oidc": false, "spotify": false, "twitch": false, "twitter": false,
        "workos": false, "zoom": false, "saml": false,
    });
    if let Some(map) = external.as_object_mut() {
        for (name, p) in &c.external {
            map.insert(name.clone(), json!(p.enabled));
        }
    }
    Ok(json(&json!({
        "external": external,
        "disable_signup": !c.enable_signup,
        "mailer_autoconfirm": c.mailer_autoconfirm,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
        "password_min_length": c.password_min_length,
    })))
}

/// Handles `GET /health`.
pub async fn health(_ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    Ok(json(&json!({
        "version": crate::VERSION,
        "name": "GoTrue",
        "description": "Fluxbase's GoTrue-compatible auth API",
    })))
}

/// Handles `GET /.well-known/jwks.json`: the public keys of RS256/ES256
/// access tokens (empty with HS256, whose secret is never published).
pub async fn jwks(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let mut res = json(&ctx.auth.state.keys.jwks());
    res.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=600"));
    Ok(res)
}
