//! `POST /otp` (magic link / e-mail OTP, creating the user when allowed),
//! `POST /recover`, `POST /resend` and `GET /reauthenticate`.
//!
//! Like GoTrue, `/recover` and `/otp` (with `create_user: false`) answer
//! `{}` whether or not the address is registered, so they cannot be used to
//! find out which addresses are.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warp::reply::Response;

use super::errors::AuthError;
use super::mailer::{self, MailKind};
use super::routes::{json, parse, Ctx};
use super::users::{authenticate, find_by_email, insert_user, validate_email, NewUser};
use super::verify::Pkce;

#[derive(Debug, Deserialize)]
#[serde(default)]
struct OtpParams {
    email: Option<String>,
    phone: Option<String>,
    data: Option<Map<String, Value>>,
    create_user: bool,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl Default for OtpParams {
    fn default() -> Self {
        OtpParams { email: None, phone: None, data: None, create_user: true, code_challenge: None, code_challenge_method: None }
    }
}

fn empty() -> Response {
    json(&json!({}))
}

/// Handles `POST /otp` (and the legacy `/magiclink`).
pub async fn otp(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    let p: OtpParams = parse(&body)?;
    if p.phone.as_deref().is_some_and(|ph| !ph.is_empty()) {
        return Err(AuthError::Validation("Unsupported phone provider".into()));
    }
    let email = validate_email(p.email.as_deref().unwrap_or(""))?;
    let pkce = Pkce::from_params(p.code_challenge.as_deref(), p.code_challenge_method.as_deref())?;
    let cfg = ctx.auth.config().clone();
    let client = ctx.auth.db().await?;
    let found = find_by_email(&client, &email).await?;
    let (id, kind) = match found {
        Some(f) if f.confirmed => (f.id, MailKind::MagicLink),
        // Not confirmed yet: the sign-up confirmation doubles as the magic link.
        Some(f) => (f.id, MailKind::Signup),
        None if !p.create_user => return Ok(empty()),
        None if !cfg.enable_signup => return Err(AuthError::SignupDisabled),
        None => {
            let new = NewUser {
                email: email.clone(),
                data: p.data.unwrap_or_default(),
                provider: "email",
                ..NewUser::default()
            };
            match insert_user(&client, &new).await? {
                Some(id) => (id, MailKind::Signup),
                None => return Ok(empty()),
            }
        }
    };
    mailer::issue(&ctx, &client, id, &email, kind, pkce.as_ref(), true, true).await?;
    Ok(empty())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RecoverParams {
    email: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Handles `POST /recover`.
pub async fn recover(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    let p: RecoverParams = parse(&body)?;
    let email = validate_email(p.email.as_deref().unwrap_or(""))?;
    let pkce = Pkce::from_params(p.code_challenge.as_deref(), p.code_challenge_method.as_deref())?;
    let client = ctx.auth.db().await?;
    match find_by_email(&client, &email).await? {
        Some(f) => match mailer::issue(&ctx, &client, f.id, &email, MailKind::Recovery, pkce.as_ref(), true, true).await {
            Ok(_) => Ok(empty()),
            // The per-address limit would reveal the address: answer as if sent.
            Err(AuthError::OverEmailSendRateLimit(m)) if m.starts_with("For security") => Ok(empty()),
            Err(e) => Err(e),
        },
        None => Ok(empty()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResendParams {
    email: Option<String>,
    phone: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Handles `POST /resend` (`type`: `signup` or `email_change`).
pub async fn resend(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    let p: ResendParams = parse(&body)?;
    if p.phone.as_deref().is_some_and(|ph| !ph.is_empty()) {
        return Err(AuthError::Validation("Unsupported phone provider".into()));
    }
    let email = validate_email(p.email.as_deref().unwrap_or(""))?;
    let pkce = Pkce::from_params(p.code_challenge.as_deref(), p.code_challenge_method.as_deref())?;
    let client = ctx.auth.db().await?;
    match p.kind.as_str() {
        "signup" => {
            if let Some(f) = find_by_email(&client, &email).await? {
                if !f.confirmed {
                    mailer::issue(&ctx, &client, f.id, &email, MailKind::Signup, pkce.as_ref(), true, true).await?;
                }
            }
        }
        "email_change" => {
            let row = client
                .query_opt(
                    "select id from auth.users where lower(email_change) = $1 and deleted_at is null limit 1",
                    &[&email],
                )
                .await?;
            if let Some(r) = row {
                let id = r.try_get(0).map_err(AuthError::internal)?;
                mailer::issue(&ctx, &client, id, &email, MailKind::EmailChangeNew, pkce.as_ref(), true, true).await?;
            }
        }
        _ => return Err(AuthError::Validation("Missing one of these types: signup, email_change, sms, phone_change".into())),
    }
    Ok(empty())
}

/// Handles `GET /reauthenticate`: mails a nonce for a password change.
pub async fn reauthenticate(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let a = authenticate(&ctx).await?;
    let email = a.user.get("email").and_then(Value::as_str).unwrap_or("").to_owned();
    if email.is_empty() {
        return Err(AuthError::Validation("Reauthentication requires the user to have an email or a phone number".into()));
    }
    let client = ctx.auth.db().await?;
    mailer::issue(&ctx, &client, a.user_id, &email, MailKind::Reauthentication, None, true, true).await?;
    Ok(empty())
}
