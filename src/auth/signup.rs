//! `POST /signup`: e-mail + password sign-up (with or without confirmation)
//! and anonymous sign-in, as GoTrue's `signup.go`.
//!
//! With confirmations on, the answer is the bare user (no session) and a
//! confirmation mail goes out. Signing up again with a confirmed address
//! answers `422 user_already_exists` when autoconfirm is on (as GoTrue does);
//! with confirmations on it answers 200 with an obfuscated user (random id,
//! no identities), so sign-up does not reveal which addresses are registered.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::reply::Response;

use super::errors::AuthError;
use super::mailer::{self, MailKind};
use super::password::check_strength;
use super::ratelimit::Action;
use super::routes::{json, parse, Ctx};
use super::users::{find_by_email, insert_user, validate_email, NewUser};
use super::verify::Pkce;

/// The body supabase-js sends.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupParams {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Handles `POST /signup`.
pub async fn handle(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    let p: SignupParams = parse(&body)?;
    let cfg = ctx.auth.config().clone();
    let email = p.email.as_deref().unwrap_or("").trim();
    let phone = p.phone.as_deref().unwrap_or("").trim();
    if email.is_empty() && phone.is_empty() {
        return anonymous(&ctx, p.data.unwrap_or_default()).await;
    }
    if !cfg.enable_signup {
        return Err(AuthError::SignupDisabled);
    }
    if email.is_empty() {
        return Err(AuthError::Validation("Phone signups are disabled".into()));
    }
    let email = validate_email(email)?;
    let password = p.password.unwrap_or_default();
    if password.is_empty() {
        return Err(AuthError::Validation("Signup requires a valid password".into()));
    }
    check_strength(&cfg, &password)?;
    if !ctx.auth.allow(Action::SignIn, &ctx.ip_key(), cfg.rate_limit_sign_in_sign_ups, Duration::from_secs(300)).await? {
        return Err(AuthError::OverRequestRateLimit);
    }
    let pkce = Pkce::from_params(p.code_challenge.as_deref(), p.code_challenge_method.as_deref())?;
    let data = p.data.unwrap_or_default();
    let client = ctx.auth.db().await?;
    if let Some(found) = find_by_email(&client, &email).await? {
        // Spend the same time as a real sign-up before answering.
        let _ = ctx.auth.passwords.hash(password).await?;
        if found.confirmed {
            if cfg.mailer_autoconfirm {
                return Err(AuthError::UserAlreadyExists);
            }
            return Ok(json(&obfuscated_user(&email, &data)));
        }
        // Unconfirmed: send the confirmation again (rate limits apply).
        mailer::send_confirmation(&ctx, &client, found.id, &email, MailKind::Signup, pkce.as_ref()).await?;
        let user = ctx.auth.user_json(&client, found.id).await?.ok_or(AuthError::UserNotFound)?;
        return Ok(json(&user));
    }
    let hash = ctx.auth.passwords.hash(password).await?;
    let new = NewUser {
        email: email.clone(),
        password_hash: Some(hash),
        confirmed: cfg.mailer_autoconfirm,
        data: data.clone(),
        provider: "email",
        ..NewUser::default()
    };
    // The user and its session (with the access-token hook), or the user and
    // its confirmation mail, in one transaction: a hook refusal or a mail
    // that cannot be sent leaves no user behind.
    let mut client = client;
    let tx = client.transaction().await?;
    let Some(id) = insert_user(&tx, &new).await? else {
        // Lost a race with another sign-up for the same address.
        return if cfg.mailer_autoconfirm { Err(AuthError::UserAlreadyExists) } else { Ok(json(&obfuscated_user(&email, &data))) };
    };
    if cfg.mailer_autoconfirm {
        let session = ctx.auth.start_session_in(&tx, id, "password", ctx.ip, ctx.user_agent.as_deref()).await?;
        tx.commit().await?;
        return Ok(json(&session));
    }
    mailer::send_confirmation(&ctx, &tx, id, &email, MailKind::Signup, pkce.as_ref()).await?;
    let user = ctx.auth.user_json(&tx, id).await?.ok_or(AuthError::UserNotFound)?;
    tx.commit().await?;
    Ok(json(&user))
}

async fn anonymous(ctx: &Ctx, data: Map<String, Value>) -> Result<Response, AuthError> {
    let cfg = ctx.auth.config();
    if !cfg.enable_anonymous_sign_ins {
        return Err(AuthError::AnonymousDisabled);
    }
    if !cfg.enable_signup {
        return Err(AuthError::SignupDisabled);
    }
    if !ctx.auth.allow(Action::Anonymous, &ctx.ip_key(), cfg.rate_limit_anonymous_users, Duration::from_secs(3600)).await? {
        return Err(AuthError::OverRequestRateLimit);
    }
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    let new = NewUser { data, provider: "anonymous", ..NewUser::default() };
    let id = insert_user(&tx, &new).await?.ok_or_else(|| AuthError::internal("anonymous user id collision"))?;
    let session = ctx.auth.start_session_in(&tx, id, "anonymous", ctx.ip, ctx.user_agent.as_deref()).await?;
    tx.commit().await?;
    Ok(json(&session))
}

/// The stand-in user GoTrue returns for an address that is already
/// registered when confirmations are on (`sanitizeUser`).
fn obfuscated_user(email: &str, data: &Map<String, Value>) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let ts = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    json!({
        "id": Uuid::new_v4(),
        "aud": "authenticated",
        "role": "",
        "email": email,
        "phone": "",
        "confirmation_sent_at": ts,
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": data,
        "identities": [],
        "created_at": ts,
        "updated_at": ts,
        "is_anonymous": false,
    })
}
