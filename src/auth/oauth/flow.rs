//! The authorization-code flow: `GET /authorize` sends the user to the
//! provider, `GET/POST /callback` finishes (GoTrue's `external.go`).
//!
//! The `state` handed to the provider is the id of an `auth.flow_state` row
//! (as current GoTrue does), so any instance on the database can finish a
//! flow another started. The row holds the provider, where to send the
//! user afterwards, the PKCE challenge (none for the implicit flow) and the
//! user being linked, if any. A state is good once and for
//! [`FLOW_STATE_TTL_SECS`]: the implicit flow deletes its row when the
//! callback arrives; the PKCE flow claims it by setting its auth code, and
//! the `pkce` grant deletes it.
//!
//! Errors after the state is known go back to the flow's `redirect_to` as
//! `error`, `error_code` and `error_description`, in the query and the
//! fragment, as GoTrue does; errors before it go to the site URL.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use warp::reply::Response;

use super::account;
use super::id_token::flow_nonce;
use super::provider::{CallbackError, Provider};
use crate::auth::errors::AuthError;
use crate::auth::ratelimit::Action;
use crate::auth::routes::{json, Ctx};
use crate::auth::users::authenticate;
use crate::auth::verify::{redirect_target, Pkce};

/// Seconds between `/authorize` and the callback that may pass.
pub const FLOW_STATE_TTL_SECS: i64 = 300;

/// Query parameters `/authorize` consumes (the rest go to the provider).
const OWN_PARAMS: &[&str] =
    &["provider", "scopes", "redirect_to", "code_challenge", "code_challenge_method", "skip_http_redirect", "apikey", "invite_token"];

/// The provider named `name`, if configured and enabled.
pub fn provider(ctx: &Ctx, name: &str) -> Result<Provider, AuthError> {
    let name = name.trim().to_ascii_lowercase();
    match ctx.auth.config().provider(&name) {
        Some(config) => Ok(Provider { name, config: config.clone() }),
        None => Err(AuthError::Coded(StatusCode::BAD_REQUEST, "provider_disabled", "Unsupported provider: provider is not enabled".into())),
    }
}

/// Where the provider sends the user back.
pub fn callback_url(ctx: &Ctx, p: &Provider) -> String {
    if p.config.redirect_uri.is_empty() {
        format!("{}/auth/v1/callback", ctx.base_url)
    } else {
        p.config.redirect_uri.clone()
    }
}

/// `GET /authorize`: 302 to the provider (or `{url}` with `skip_http_redirect=true`).
pub async fn authorize(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let url = start(&ctx, None).await?;
    if ctx.param("skip_http_redirect") == Some("true") {
        return Ok(json(&json!({ "url": url })));
    }
    Ok(redirect(StatusCode::FOUND, &url))
}

/// `GET /user/identities/authorize`: the same flow, linking the provider's
/// identity to the signed-in user; answers `{url}` (supabase-js's `linkIdentity`).
pub async fn link(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let a = authenticate(&ctx).await?;
    if !ctx.auth.config().manual_linking_enabled {
        return Err(AuthError::Coded(StatusCode::NOT_FOUND, "manual_linking_disabled", "Manual linking is disabled".into()));
    }
    let url = start(&ctx, Some(a.user_id)).await?;
    if ctx.param("skip_http_redirect") == Some("false") {
        return Ok(redirect(StatusCode::FOUND, &url));
    }
    Ok(json(&json!({ "url": url })))
}

/// Records the flow and builds the provider's authorization URL. Flows
/// abandoned for an hour are swept on the way (a hundred at a time), so
/// unfinished flows cannot pile up.
async fn start(ctx: &Ctx, link_to: Option<Uuid>) -> Result<String, AuthError> {
    let p = provider(ctx, ctx.param("provider").unwrap_or(""))?;
    let pkce = Pkce::from_params(ctx.param("code_challenge"), ctx.param("code_challenge_method"))?;
    let referrer = redirect_target(ctx);
    let endpoint = p.authorization_endpoint(&ctx.auth.oauth).await.map_err(|e| provider_failure(&p, &e.to_string()))?;
    let state = Uuid::new_v4();
    let client = ctx.auth.db().await?;
    let (method, challenge) = match &pkce {
        Some(k) => (Some(k.method.as_str()), Some(k.challenge.as_str())),
        None => (None, None),
    };
    client
        .execute(
            "with stale as (
               delete from auth.flow_state where id in (
                 select id from auth.flow_state
                  where authentication_method = 'oauth' and created_at < now() - interval '1 hour'
                  order by created_at limit 100))
             insert into auth.flow_state (id, provider_type, code_challenge_method, code_challenge, authentication_method,
                 referrer, linking_target_id, created_at, updated_at)
             values ($1, $2, $3::text::auth.code_challenge_method, $4, 'oauth', $5, $6, now(), now())",
            &[&state, &p.name, &method, &challenge, &referrer, &link_to],
        )
        .await?;
    let mut url = url::Url::parse(&endpoint).map_err(|_| provider_failure(&p, "bad authorization endpoint"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", p.client_id());
        q.append_pair("redirect_uri", &callback_url(ctx, &p));
        q.append_pair("response_type", "code");
        q.append_pair("scope", &p.scopes(ctx.param("scopes").unwrap_or("")));
        q.append_pair("state", &state.to_string());
        if p.kind() == super::config::Kind::Oidc {
            q.append_pair("nonce", &flow_nonce(ctx.auth.state.keys.secret(), &state.to_string()));
        }
        for (k, v) in &ctx.query {
            if !OWN_PARAMS.contains(&k.as_str()) && !matches!(k.as_str(), "client_id" | "redirect_uri" | "response_type" | "scope" | "state" | "nonce") {
                q.append_pair(k, v);
            }
        }
    }
    Ok(url.into())
}

/// A claimed flow state.
struct Flow {
    provider: String,
    referrer: String,
    pkce: bool,
    link_to: Option<Uuid>,
    state: Uuid,
}

/// `GET/POST /callback?code=&state=` (or `error=`): finishes the flow and
/// redirects (302) to the flow's `redirect_to`.
pub async fn callback(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    // Apple and others post the answer as a form.
    let mut params = ctx.query.clone();
    if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        params.extend(form);
    }
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let site = ctx.auth.config().site_url.clone();
    let flow = match claim(&ctx, get("state")).await {
        Ok(f) => f,
        Err(e) => return Ok(error_redirect(&site, &shown(e, "?"))),
    };
    let target = flow.referrer.clone();
    if let Some(err) = get("error") {
        let description = get("error_description").unwrap_or("").to_owned();
        return Ok(oauth_error_redirect(&target, err, &description, None));
    }
    match finish(&ctx, &flow, get("code")).await {
        Ok(location) => Ok(redirect(StatusCode::FOUND, &location)),
        Err(e) => Ok(error_redirect(&target, &shown(e, &flow.provider))),
    }
}

/// What a redirect may say about `e`: internal causes are logged, not shown.
fn shown(e: AuthError, provider: &str) -> AuthError {
    match e {
        AuthError::Internal(cause) => {
            tracing::error!(error = %cause, %provider, "OAuth callback failed");
            AuthError::Coded(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "Internal server error".into())
        }
        other => other,
    }
}

/// Takes the flow state named by `state`: once, and only while fresh.
async fn claim(ctx: &Ctx, state: Option<&str>) -> Result<Flow, AuthError> {
    let bad_state = |m: &str| AuthError::Coded(StatusCode::BAD_REQUEST, "bad_oauth_state", m.into());
    let state = state.ok_or_else(|| AuthError::Coded(StatusCode::BAD_REQUEST, "bad_oauth_callback", "OAuth state parameter missing".into()))?;
    let state = Uuid::parse_str(state).map_err(|_| bad_state("OAuth state parameter is invalid"))?;
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "select provider_type, coalesce(referrer, '') as referrer, linking_target_id, code_challenge is not null as pkce,
                    auth_code is not null as used, created_at + make_interval(secs => $2::float8) < now() as expired
               from auth.flow_state where id = $1 and authentication_method = 'oauth' for update",
            &[&state, &(FLOW_STATE_TTL_SECS as f64)],
        )
        .await?;
    let row = row.ok_or_else(|| bad_state("OAuth state not found or expired"))?;
    let g = |e| AuthError::internal(e);
    let flow = Flow {
        provider: row.try_get("provider_type").map_err(g)?,
        referrer: row.try_get("referrer").map_err(g)?,
        pkce: row.try_get("pkce").map_err(g)?,
        link_to: row.try_get("linking_target_id").map_err(g)?,
        state,
    };
    let used: bool = row.try_get("used").map_err(g)?;
    let expired: Option<bool> = row.try_get("expired").map_err(g)?;
    if used {
        return Err(AuthError::Coded(StatusCode::BAD_REQUEST, "flow_state_already_used", "State has already been used".into()));
    }
    if expired != Some(false) {
        tx.execute("delete from auth.flow_state where id = $1", &[&state]).await?;
        tx.commit().await?;
        return Err(bad_state("OAuth state has expired"));
    }
    if flow.pkce {
        tx.execute(
            "update auth.flow_state set auth_code = gen_random_uuid()::text, updated_at = now() where id = $1",
            &[&state],
        )
        .await?;
    } else {
        tx.execute("delete from auth.flow_state where id = $1", &[&state]).await?;
    }
    tx.commit().await?;
    Ok(flow)
}

/// Exchanges the code, finds or makes the user, and answers where to go.
async fn finish(ctx: &Ctx, flow: &Flow, code: Option<&str>) -> Result<String, AuthError> {
    let code = code.ok_or_else(|| {
        AuthError::Coded(StatusCode::BAD_REQUEST, "bad_oauth_callback", "OAuth callback with missing authorization code missing".into())
    })?;
    let p = provider(ctx, &flow.provider)?;
    let cfg = ctx.auth.config().clone();
    if !ctx.auth.allow(Action::SignIn, &ctx.ip_key(), cfg.rate_limit_sign_in_sign_ups, std::time::Duration::from_secs(300)).await? {
        return Err(AuthError::OverRequestRateLimit);
    }
    let nonce = flow_nonce(ctx.auth.state.keys.secret(), &flow.state.to_string());
    let (user, tokens) = p.exchange(&ctx.auth.oauth, code, &callback_url(ctx, &p), &nonce).await.map_err(|e| callback_failure(&p, &e))?;
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    let linked = account::resolve(&cfg, &tx, &p.name, &user, flow.link_to).await?;
    let user_id = linked.user_id();
    if flow.pkce {
        let row = tx
            .query_one(
                "update auth.flow_state set user_id = $2, provider_access_token = $3, provider_refresh_token = $4,
                        auth_code_issued_at = now(), updated_at = now()
                  where id = $1 returning auth_code",
                &[&flow.state, &user_id, &tokens.access_token, &tokens.refresh_token],
            )
            .await?;
        let code: String = row.try_get(0).map_err(AuthError::internal)?;
        tx.commit().await?;
        return Ok(with_query(&flow.referrer, &[("code", &code)]));
    }
    let session = ctx.auth.start_session_in(&tx, user_id, "oauth", ctx.ip, ctx.user_agent.as_deref()).await?;
    tx.commit().await?;
    let g = |k: &str| session.get(k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())).unwrap_or_default();
    let mut frag = vec![
        ("access_token", g("access_token")),
        ("expires_at", g("expires_at")),
        ("expires_in", g("expires_in")),
        ("provider_token", tokens.access_token.clone()),
        ("refresh_token", g("refresh_token")),
        ("token_type", "bearer".to_owned()),
    ];
    if let Some(rt) = &tokens.refresh_token {
        frag.push(("provider_refresh_token", rt.clone()));
    }
    let frag = serde_urlencoded::to_string(&frag).unwrap_or_default();
    Ok(format!("{}#{frag}", strip_fragment(&flow.referrer)))
}

/// A provider that could not be reached or answered nonsense: GoTrue's 500.
fn provider_failure(p: &Provider, why: &str) -> AuthError {
    tracing::warn!(provider = %p.name, error = %why, "OAuth provider call failed");
    AuthError::Coded(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "Error getting user profile from external provider".into())
}

/// Maps a failed exchange: a code the provider refuses is the client's
/// problem (400), an ID token that fails checks is refused as GoTrue does,
/// an unreachable provider is ours (500).
fn callback_failure(p: &Provider, e: &CallbackError) -> AuthError {
    use super::client::ProviderError;
    match e {
        CallbackError::Provider(ProviderError::Status { error: Some(err), .. }) => {
            tracing::info!(provider = %p.name, error = %err, "provider refused the authorization code");
            AuthError::Coded(StatusCode::BAD_REQUEST, "bad_oauth_callback", format!("Unable to exchange external code: {err}"))
        }
        CallbackError::IdToken(err) => {
            tracing::info!(provider = %p.name, error = %err, "ID token refused");
            AuthError::Coded(StatusCode::BAD_REQUEST, "bad_oauth_callback", format!("Bad ID token: {err}"))
        }
        CallbackError::Provider(err) => provider_failure(p, &err.to_string()),
    }
}

/// GoTrue's OAuth `error` for an HTTP status.
fn oauth_error_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized_client",
        403 => "access_denied",
        503 => "temporarily_unavailable",
        _ => "server_error",
    }
}

/// Redirects to `target` with `e` as `error`, `error_code`, `error_description`.
fn error_redirect(target: &str, e: &AuthError) -> Response {
    let (status, code) = e.status_code();
    let name = match code {
        "signup_disabled" | "user_banned" | "provider_email_needs_verification" => "access_denied",
        _ => oauth_error_name(status),
    };
    oauth_error_redirect(target, name, &e.to_string(), Some(code))
}

fn oauth_error_redirect(target: &str, error: &str, description: &str, code: Option<&str>) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(c) = code {
        pairs.push(("error_code", c));
    }
    let base = with_query(target, &pairs);
    let mut frag = pairs.clone();
    frag.push(("sb", ""));
    let frag = serde_urlencoded::to_string(&frag).unwrap_or_default();
    redirect(StatusCode::FOUND, &format!("{}#{frag}", strip_fragment(&base)))
}

/// `target` with `pairs` added to its query.
fn with_query(target: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(target) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.into()
        }
        Err(_) => {
            let sep = if target.contains('?') { '&' } else { '?' };
            format!("{target}{sep}{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
        }
    }
}

fn strip_fragment(u: &str) -> &str {
    u.split_once('#').map(|(a, _)| a).unwrap_or(u)
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut res = Response::new(Default::default());
    *res.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(location) {
        res.headers_mut().insert(http::header::LOCATION, v);
    }
    res
}

/// The `provider_token` fields the `pkce` grant adds to its session.
pub fn provider_tokens(access: Option<String>, refresh: Option<String>, session: &mut Value) {
    if let Some(obj) = session.as_object_mut() {
        if let Some(a) = access.filter(|a| !a.is_empty()) {
            obj.insert("provider_token".into(), json!(a));
        }
        if let Some(r) = refresh.filter(|r| !r.is_empty()) {
            obj.insert("provider_refresh_token".into(), json!(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_redirects_carry_query_and_fragment() {
        let r = oauth_error_redirect("http://app/cb?x=1#old", "access_denied", "no way", Some("bad_oauth_state"));
        let loc = r.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(loc.starts_with("http://app/cb?x=1&error=access_denied&error_description=no+way&error_code=bad_oauth_state#"), "{loc}");
        assert!(loc.ends_with("#error=access_denied&error_description=no+way&error_code=bad_oauth_state&sb="), "{loc}");
        assert_eq!(with_query("myapp://cb", &[("code", "c")]), "myapp://cb?code=c");
    }
}
