//! `POST /invite` and `POST /admin/generate_link` (service role).
//!
//! `generate_link` answers GoTrue's flattened shape: the user's fields plus
//! `action_link`, `email_otp`, `hashed_token`, `redirect_to` and
//! `verification_type`; it sends no mail.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::reply::Response;

use crate::auth::errors::AuthError;
use crate::auth::mailer::{self, MailKind};
use crate::auth::password::check_strength;
use crate::auth::routes::{json, parse, Ctx};
use crate::auth::users::{find_by_email, insert_user, require_admin, validate_email, NewUser};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InviteParams {
    email: Option<String>,
    data: Option<Map<String, Value>>,
}

/// Creates (or reuses an unconfirmed) invited user; `email_exists` for a confirmed one.
async fn invited_user(
    ctx: &Ctx,
    client: &impl deadpool_postgres::GenericClient,
    email: &str,
    data: Map<String, Value>,
) -> Result<Uuid, AuthError> {
    match find_by_email(client, email).await? {
        Some(f) if f.confirmed => Err(AuthError::EmailExists),
        Some(f) => Ok(f.id),
        None => {
            let new = NewUser { email: email.to_owned(), data, provider: "email", invited: true, ..NewUser::default() };
            let _ = ctx;
            insert_user(client, &new).await?.ok_or(AuthError::EmailExists)
        }
    }
}

/// `POST /invite`.
pub async fn invite(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let p: InviteParams = parse(&body)?;
    let email = validate_email(p.email.as_deref().unwrap_or(""))?;
    let client = ctx.auth.db().await?;
    let id = invited_user(&ctx, &client, &email, p.data.unwrap_or_default()).await?;
    mailer::issue(&ctx, &client, id, &email, MailKind::Invite, None, true, false).await?;
    let user = ctx.auth.user_json(&client, id).await?.ok_or(AuthError::UserNotFound)?;
    Ok(json(&user))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LinkParams {
    #[serde(rename = "type")]
    kind: String,
    email: Option<String>,
    new_email: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
}

/// `POST /admin/generate_link`.
pub async fn generate_link(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let p: LinkParams = parse(&body)?;
    let email = validate_email(p.email.as_deref().unwrap_or(""))?;
    let client = ctx.auth.db().await?;
    let data = p.data.unwrap_or_default();
    let (id, kind, addr) = match p.kind.as_str() {
        "signup" => {
            let pw = p.password.unwrap_or_default();
            if pw.is_empty() {
                return Err(AuthError::Validation("Signup requires a valid password".into()));
            }
            check_strength(ctx.auth.config(), &pw)?;
            let id = match find_by_email(&client, &email).await? {
                Some(f) if f.confirmed => return Err(AuthError::EmailExists),
                Some(f) => f.id,
                None => {
                    let hash = ctx.auth.passwords.hash(pw).await?;
                    let new = NewUser { email: email.clone(), password_hash: Some(hash), data, provider: "email", ..NewUser::default() };
                    insert_user(&client, &new).await?.ok_or(AuthError::EmailExists)?
                }
            };
            (id, MailKind::Signup, email.clone())
        }
        "invite" => (invited_user(&ctx, &client, &email, data).await?, MailKind::Invite, email.clone()),
        "magiclink" | "recovery" => {
            let f = find_by_email(&client, &email).await?.ok_or(AuthError::UserNotFound)?;
            (f.id, if p.kind == "magiclink" { MailKind::MagicLink } else { MailKind::Recovery }, email.clone())
        }
        "email_change_current" | "email_change_new" => {
            let new_email = validate_email(p.new_email.as_deref().unwrap_or(""))?;
            let f = find_by_email(&client, &email).await?.ok_or(AuthError::UserNotFound)?;
            if find_by_email(&client, &new_email).await?.is_some() {
                return Err(AuthError::EmailExists);
            }
            client
                .execute(
                    "update auth.users set email_change = $2, email_change_confirm_status = 0 where id = $1",
                    &[&f.id, &new_email],
                )
                .await?;
            if p.kind == "email_change_current" {
                (f.id, MailKind::EmailChangeCurrent, email.clone())
            } else {
                (f.id, MailKind::EmailChangeNew, new_email)
            }
        }
        _ => {
            return Err(AuthError::Validation(
                "Invalid type: use signup, invite, magiclink, recovery, email_change_current or email_change_new".into(),
            ))
        }
    };
    let sent = mailer::issue(&ctx, &client, id, &addr, kind, None, false, false).await?;
    let user = ctx.auth.user_json(&client, id).await?.ok_or(AuthError::UserNotFound)?;
    let mut out = user.as_object().cloned().unwrap_or_default();
    out.insert("action_link".into(), json!(sent.action_link));
    out.insert("email_otp".into(), json!(sent.otp));
    out.insert("hashed_token".into(), json!(sent.hashed_token));
    out.insert("redirect_to".into(), json!(sent.redirect_to));
    out.insert("verification_type".into(), json!(kind.verify_type()));
    Ok(json(&Value::Object(out)))
}
