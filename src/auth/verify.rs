//! `GET/POST /verify` (links and OTPs from mails), redirects, and PKCE:
//! the flow state kept in `auth.flow_state` (so any instance can finish a
//! flow another started) and the `pkce` grant.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use warp::reply::Response;

use super::errors::AuthError;
use super::mailer::token_hash;
use super::ratelimit::Action;
use super::routes::{json, parse, Ctx};
use super::users::validate_email;

/// Seconds an auth code stays exchangeable after it is issued.
pub const AUTH_CODE_TTL_SECS: i64 = 300;

/// A PKCE challenge sent with a request that starts a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// `s256` or `plain`.
    pub method: String,
    /// The challenge.
    pub challenge: String,
}

impl Pkce {
    /// Reads `code_challenge` / `code_challenge_method`; both or neither.
    pub fn from_params(challenge: Option<&str>, method: Option<&str>) -> Result<Option<Pkce>, AuthError> {
        let challenge = challenge.unwrap_or("").trim();
        let method = method.unwrap_or("").trim().to_ascii_lowercase();
        match (challenge.is_empty(), method.is_empty()) {
            (true, true) => Ok(None),
            (false, false) => {
                if method != "s256" && method != "plain" {
                    return Err(AuthError::Validation("code challenge method not supported".into()));
                }
                if !(43..=128).contains(&challenge.len()) {
                    return Err(AuthError::Validation("code challenge has to be between 43 and 128 characters".into()));
                }
                Ok(Some(Pkce { method, challenge: challenge.to_owned() }))
            }
            _ => Err(AuthError::Validation("PKCE flow requires code_challenge_method and code_challenge".into())),
        }
    }

    /// Stores the flow for `user_id`, replacing an older one of the same method.
    pub async fn save(&self, client: &impl deadpool_postgres::GenericClient, user_id: Uuid, method: &str) -> Result<(), AuthError> {
        client
            .execute(
                "insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,
                     provider_type, authentication_method, created_at, updated_at)
                 values (gen_random_uuid(), $1, gen_random_uuid()::text, $2::text::auth.code_challenge_method, $3,
                     'email', $4, now(), now())",
                &[&user_id, &self.method, &self.challenge, &method],
            )
            .await?;
        Ok(())
    }

    /// Whether `verifier` answers `challenge` under `method`, compared in constant time.
    pub fn matches(method: &str, challenge: &str, verifier: &str) -> bool {
        let expected = match method {
            "s256" => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            "plain" => verifier.to_owned(),
            _ => return false,
        };
        expected.as_bytes().ct_eq(challenge.as_bytes()).into()
    }
}

/// Where to send the user: `redirect_to` if allowed, else the site URL.
pub fn redirect_target(ctx: &Ctx) -> String {
    let cfg = ctx.auth.config();
    match ctx.param("redirect_to") {
        Some(r) if redirect_allowed(&cfg.site_url, &cfg.additional_redirect_urls, r) => r.to_owned(),
        _ => cfg.site_url.clone(),
    }
}

/// GoTrue's allow-list check: same origin as the site URL, or a listed URL
/// (a trailing `*` matches any suffix).
pub fn redirect_allowed(site_url: &str, allow: &str, target: &str) -> bool {
    fn origin(u: &str) -> Option<&str> {
        let (scheme, rest) = u.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Some(&u[..scheme.len() + 3 + end])
    }
    if target.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    if origin(target).is_some() && origin(target) == origin(site_url) {
        return true;
    }
    allow.split(',').map(str::trim).filter(|a| !a.is_empty()).any(|a| match a.strip_suffix('*') {
        Some(prefix) => target.starts_with(prefix),
        None => target == a || target.strip_prefix(a).is_some_and(|r| r.is_empty() || r.starts_with(['/', '?', '#'])),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerifyParams {
    #[serde(rename = "type")]
    kind: String,
    token: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    redirect_to: Option<String>,
}

/// What a verified token leads to.
enum Outcome {
    /// Signed in: a session.
    Session(Value),
    /// The first half of a secure e-mail change.
    Message(Value),
    /// PKCE: an auth code to hand the client.
    Code(String),
}

/// `POST /verify`: a token hash, or an address plus its OTP.
pub async fn post(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    let p: VerifyParams = parse(&body)?;
    match verify(&ctx, &p, false).await? {
        Outcome::Session(s) | Outcome::Message(s) => Ok(json(&s)),
        Outcome::Code(c) => Ok(json(&json!({ "code": c }))),
    }
}

/// `GET /verify?token=&type=&redirect_to=`: the link in a mail. Redirects
/// (303) with the session in the fragment, `?code=` for PKCE, or the error
/// in the fragment.
pub async fn get(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let p = VerifyParams {
        kind: ctx.param("type").unwrap_or("").to_owned(),
        token_hash: ctx.param("token").map(str::to_owned),
        redirect_to: ctx.param("redirect_to").map(str::to_owned),
        ..VerifyParams::default()
    };
    let target = redirect_target(&ctx);
    let location = match verify(&ctx, &p, true).await {
        Ok(Outcome::Session(s)) => {
            let g = |k: &str| s.get(k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())).unwrap_or_default();
            let frag = serde_urlencoded::to_string([
                ("access_token", g("access_token")),
                ("expires_at", g("expires_at")),
                ("expires_in", g("expires_in")),
                ("refresh_token", g("refresh_token")),
                ("token_type", "bearer".to_owned()),
                ("type", p.kind.clone()),
            ])
            .unwrap_or_default();
            format!("{target}#{frag}")
        }
        Ok(Outcome::Message(m)) => {
            let msg = m.get("msg").and_then(Value::as_str).unwrap_or("").to_owned();
            format!("{target}#{}", serde_urlencoded::to_string([("message", msg)]).unwrap_or_default())
        }
        Ok(Outcome::Code(code)) => {
            let sep = if target.contains('?') { '&' } else { '?' };
            format!("{target}{sep}code={code}")
        }
        Err(AuthError::Internal(e)) => return Err(AuthError::Internal(e)),
        Err(e) => {
            let (_, code) = e.status_code();
            let frag = serde_urlencoded::to_string([
                ("error", "access_denied"),
                ("error_code", code),
                ("error_description", &e.to_string()),
            ])
            .unwrap_or_default();
            format!("{target}#{frag}")
        }
    };
    let mut res = Response::new(Default::default());
    *res.status_mut() = http::StatusCode::SEE_OTHER;
    if let Ok(v) = http::HeaderValue::from_str(&location) {
        res.headers_mut().insert(http::header::LOCATION, v);
    }
    Ok(res)
}

/// The columns a verify `type` checks, in order.
fn columns(kind: &str) -> Result<&'static [&'static str], AuthError> {
    Ok(match kind {
        "signup" | "invite" => &["confirmation_token"],
        "magiclink" | "recovery" => &["recovery_token"],
        "email" => &["confirmation_token", "recovery_token"],
        "email_change" => &["email_change_token_new", "email_change_token_current"],
        "sms" | "phone_change" => return Err(AuthError::Validation("Phone verification is not supported".into())),
        _ => return Err(AuthError::Validation("Verify requires a verification type".into())),
    })
}

async fn verify(ctx: &Ctx, p: &VerifyParams, from_link: bool) -> Result<Outcome, AuthError> {
    let cfg = ctx.auth.config().clone();
    if !ctx.auth.allow(Action::Verify, &ctx.ip_key(), cfg.rate_limit_token_verifications, std::time::Duration::from_secs(300)).await? {
        return Err(AuthError::OverRequestRateLimit);
    }
    let cols = columns(&p.kind)?;
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    // Find the user and which column matched.
    let (user_id, column, pkce) = match (p.token_hash.as_deref().filter(|t| !t.is_empty()), p.email.as_deref(), p.token.as_deref()) {
        (Some(th), _, _) => {
            let (pkce, th) = match th.strip_prefix("pkce_") {
                Some(rest) => (true, rest),
                None => (false, th),
            };
            if th.len() != 56 {
                return Err(AuthError::OtpExpired);
            }
            let mut found = None;
            for col in cols {
                let sql = format!("select id from auth.users where {col} = $1 and deleted_at is null for update");
                if let Some(r) = tx.query_opt(&sql, &[&th]).await? {
                    found = Some((r.try_get::<_, Uuid>(0).map_err(AuthError::internal)?, *col));
                    break;
                }
            }
            let (id, col) = found.ok_or(AuthError::OtpExpired)?;
            (id, col, pkce)
        }
        (None, Some(email), Some(otp)) if !otp.is_empty() => {
            let email = validate_email(email)?;
            // Per address, only failures count: check first, count after a failure.
            let per = std::time::Duration::from_secs(300);
            let max_failures = cfg.rate_limit_verify_failures_per_address;
            if max_failures > 0 && ctx.auth.counted(Action::VerifyFailure, &email, per).await? >= max_failures {
                return Err(AuthError::OverRequestRateLimit);
            }
            let sql = "select id, email, confirmation_token, recovery_token, email_change_token_new, email_change_token_current, email_change
                         from auth.users where (lower(email) = $1 or lower(email_change) = $1) and deleted_at is null and not is_sso_user
                         for update";
            let rows = tx.query(sql, &[&email]).await?;
            let mut found = None;
            for r in &rows {
                for col in cols {
                    let stored: Option<String> = r.try_get(*col).map_err(AuthError::internal)?;
                    let addr = if *col == "email_change_token_new" {
                        r.try_get::<_, Option<String>>("email_change").map_err(AuthError::internal)?
                    } else {
                        r.try_get::<_, Option<String>>("email").map_err(AuthError::internal)?
                    };
                    let expected = token_hash(&addr.unwrap_or_default().to_lowercase(), otp);
                    if let Some(s) = stored.filter(|s| !s.is_empty()) {
                        if bool::from(s.as_bytes().ct_eq(expected.as_bytes())) && found.is_none() {
                            found = Some((r.try_get::<_, Uuid>("id").map_err(AuthError::internal)?, *col));
                        }
                    }
                }
            }
            let Some((id, col)) = found else {
                if max_failures > 0 {
                    ctx.auth.allow(Action::VerifyFailure, &email, u32::MAX, per).await?;
                }
                return Err(AuthError::OtpExpired);
            };
            (id, col, false)
        }
        _ => return Err(AuthError::Validation("Verify requires either a token or a token hash".into())),
    };
    // Expiry: the matching column's *_sent_at.
    let sent_col = match column {
        "confirmation_token" => "confirmation_sent_at",
        "recovery_token" => "recovery_sent_at",
        _ => "email_change_sent_at",
    };
    let sql = format!(
        "select coalesce({sent_col} + make_interval(secs => $2::float8) > now(), false) as fresh,
                coalesce(email_change, '') as email_change, coalesce(email_change_confirm_status, 0)::int4 as ecs,
                coalesce(email_change_token_new, '') <> '' and coalesce(email_change_token_current, '') <> '' as both
           from auth.users where id = $1"
    );
    let row = tx.query_one(&sql, &[&user_id, &(cfg.mailer_otp_exp as f64)]).await?;
    let fresh: bool = row.try_get("fresh").map_err(AuthError::internal)?;
    if !fresh {
        return Err(AuthError::OtpExpired);
    }
    let method = match column {
        "confirmation_token" => {
            tx.execute(
                "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()), confirmation_token = '',
                        raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || '{\"email_verified\": true}', updated_at = now()
                  where id = $1",
                &[&user_id],
            )
            .await?;
            tx.execute(
                "update auth.identities set identity_data = identity_data || '{\"email_verified\": true}', updated_at = now()
                  where user_id = $1 and provider = 'email'",
                &[&user_id],
            )
            .await?;
            if p.kind == "invite" { "invite" } else { "otp" }
        }
        "recovery_token" => {
            tx.execute(
                "update auth.users set recovery_token = '', email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now()
                  where id = $1",
                &[&user_id],
            )
            .await?;
            if p.kind == "recovery" { "recovery" } else { "otp" }
        }
        _ => {
            let ecs: i32 = row.try_get("ecs").map_err(AuthError::internal)?;
            let both: bool = row.try_get("both").map_err(AuthError::internal)?;
            let new_email: String = row.try_get("email_change").map_err(AuthError::internal)?;
            if both && cfg.secure_email_change && ecs == 0 {
                // First of two confirmations.
                tx.execute(
                    &format!("update auth.users set {column} = '', email_change_confirm_status = 1 where id = $1"),
                    &[&user_id],
                )
                .await?;
                tx.commit().await?;
                return Ok(Outcome::Message(json!({
                    "msg": "Confirmation link accepted. Please proceed to confirm link sent to the other email",
                    "code": 200
                })));
            }
            let taken = tx
                .query_opt(
                    "select 1 from auth.users where lower(email) = lower($1) and id <> $2 and not is_sso_user",
                    &[&new_email, &user_id],
                )
                .await?;
            if taken.is_some() {
                return Err(AuthError::EmailExists);
            }
            tx.execute(
                "update auth.users set email = $2::text, email_change = '', email_change_token_new = '', email_change_token_current = '',
                        email_change_confirm_status = 0, email_confirmed_at = coalesce(email_confirmed_at, now()),
                        raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || jsonb_build_object('email', $2::text),
                        is_anonymous = false, updated_at = now()
                  where id = $1",
                &[&user_id, &new_email],
            )
            .await?;
            super::user::upsert_email_identity(&tx, user_id, &new_email).await?;
            "email_change"
        }
    };
    tx.execute(
        "delete from auth.one_time_tokens where user_id = $1 and token_type = $2::text::auth.one_time_token_type",
        &[&user_id, &column],
    )
    .await?;
    if pkce {
        let code = tx
            .query_opt(
                "update auth.flow_state set auth_code_issued_at = now(), updated_at = now()
                  where id = (select id from auth.flow_state where user_id = $1 and authentication_method = $2
                              order by created_at desc limit 1)
                  returning auth_code",
                &[&user_id, &p.kind],
            )
            .await?;
        let code: String = code.ok_or(AuthError::FlowStateNotFound)?.try_get(0).map_err(AuthError::internal)?;
        tx.commit().await?;
        return Ok(Outcome::Code(code));
    }
    tx.commit().await?;
    drop(client);
    let _ = from_link;
    let session = ctx.auth.start_session(user_id, method, ctx.ip, ctx.user_agent.as_deref()).await?;
    Ok(Outcome::Session(session))
}

/// The `pkce` grant: trades an auth code and its verifier for a session.
pub async fn exchange_code(ctx: &Ctx, code: &str, verifier: &str) -> Result<Value, AuthError> {
    let client = ctx.auth.db().await?;
    let row = client
        .query_opt(
            "delete from auth.flow_state where auth_code = $1
             returning user_id, code_challenge_method::text as m, code_challenge as c, authentication_method as am,
                       provider_access_token as pat, provider_refresh_token as prt,
                       coalesce(auth_code_issued_at, created_at) + make_interval(secs => $2::float8) > now() as fresh",
            &[&code, &(AUTH_CODE_TTL_SECS as f64)],
        )
        .await?;
    let Some(row) = row else { return Err(AuthError::FlowStateNotFound) };
    let fresh: Option<bool> = row.try_get("fresh").map_err(AuthError::internal)?;
    let user_id: Option<Uuid> = row.try_get("user_id").map_err(AuthError::internal)?;
    let method: Option<String> = row.try_get("m").map_err(AuthError::internal)?;
    let challenge: Option<String> = row.try_get("c").map_err(AuthError::internal)?;
    let am: String = row.try_get("am").map_err(AuthError::internal)?;
    let pat: Option<String> = row.try_get("pat").map_err(AuthError::internal)?;
    let prt: Option<String> = row.try_get("prt").map_err(AuthError::internal)?;
    if fresh != Some(true) {
        return Err(AuthError::FlowStateNotFound);
    }
    if !Pkce::matches(method.as_deref().unwrap_or(""), challenge.as_deref().unwrap_or(""), verifier) {
        return Err(AuthError::BadCodeVerifier);
    }
    let user_id = user_id.ok_or(AuthError::FlowStateNotFound)?;
    drop(client);
    let amr = match am.as_str() {
        "recovery" => "recovery",
        "invite" => "invite",
        "email_change" => "email_change",
        "oauth" => "oauth",
        _ => "otp",
    };
    let mut session = ctx.auth.start_session(user_id, amr, ctx.ip, ctx.user_agent.as_deref()).await?;
    super::oauth::flow::provider_tokens(pat, prt, &mut session);
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_and_plain() {
        // RFC 7636 appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(Pkce::matches("s256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", v));
        assert!(!Pkce::matches("s256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cX", v));
        assert!(Pkce::matches("plain", v, v));
        assert!(!Pkce::matches("other", v, v));
        assert!(Pkce::from_params(Some("short"), Some("s256")).is_err());
        assert!(Pkce::from_params(Some(v), None).is_err());
        assert_eq!(Pkce::from_params(None, None).ok(), Some(None));
    }

    #[test]
    fn redirects_are_checked() {
        let site = "http://localhost:3000";
        assert!(redirect_allowed(site, "", "http://localhost:3000/welcome"));
        assert!(!redirect_allowed(site, "", "http://localhost:3000.evil.com/"));
        assert!(!redirect_allowed(site, "", "https://evil.com/"));
        assert!(redirect_allowed(site, "myapp://cb, https://app.example/*", "https://app.example/x/y"));
        assert!(redirect_allowed(site, "myapp://cb", "myapp://cb"));
        assert!(!redirect_allowed(site, "myapp://cb", "myapp://cbx"));
    }
}
