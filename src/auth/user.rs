//! `GET /user` and `PUT /user` (GoTrue's `user.go`): the signed-in user,
//! metadata, password change (with reauthentication when configured) and
//! e-mail change (confirmed from both addresses when configured).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;
use warp::reply::Response;

use super::errors::AuthError;
use super::mailer::{self, MailKind};
use super::password::check_strength;
use super::routes::{json, parse, Ctx};
use super::users::{authenticate, merge_metadata, validate_email};
use super::verify::Pkce;

/// Handles `GET /user`.
pub async fn get(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    let a = authenticate(&ctx).await?;
    Ok(json(&a.user))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateParams {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    nonce: Option<String>,
    data: Option<Map<String, Value>>,
    app_metadata: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Handles `PUT /user`.
pub async fn update(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    let p: UpdateParams = parse(&body)?;
    let a = authenticate(&ctx).await?;
    let cfg = ctx.auth.config().clone();
    if p.phone.as_deref().is_some_and(|ph| !ph.is_empty()) {
        return Err(AuthError::Validation("Phone changes are not supported".into()));
    }
    let _ = p.app_metadata; // Users cannot change their app_metadata; GoTrue ignores it.
    let pkce = Pkce::from_params(p.code_challenge.as_deref(), p.code_challenge_method.as_deref())?;
    // Work out the password hash first (slow, outside the transaction).
    let mut new_hash = None;
    if let Some(pw) = p.password.as_deref().filter(|s| !s.is_empty()) {
        check_strength(&cfg, pw)?;
        let client = ctx.auth.db().await?;
        let row = client
            .query_one(
                "select encrypted_password, coalesce(reauthentication_token, '') as nonce_hash,
                        coalesce(reauthentication_sent_at + make_interval(secs => $2::float8) > now(), false) as nonce_fresh,
                        coalesce(email, '') as email
                   from auth.users where id = $1",
                &[&a.user_id, &(cfg.mailer_otp_exp as f64)],
            )
            .await?;
        let current: Option<String> = row.try_get("encrypted_password").map_err(AuthError::internal)?;
        if cfg.secure_password_change && current.as_deref().is_some_and(|c| !c.is_empty()) {
            let nonce = p.nonce.as_deref().unwrap_or("");
            if nonce.is_empty() {
                return Err(AuthError::ReauthenticationNeeded);
            }
            let stored: String = row.try_get("nonce_hash").map_err(AuthError::internal)?;
            let fresh: bool = row.try_get("nonce_fresh").map_err(AuthError::internal)?;
            let email: String = row.try_get("email").map_err(AuthError::internal)?;
            let expected = mailer::token_hash(&email, nonce);
            if !fresh || stored.is_empty() || !bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), expected.as_bytes())) {
                return Err(AuthError::ReauthenticationNotValid);
            }
        }
        drop(client);
        if current.as_deref().is_some_and(|c| !c.is_empty())
            && ctx.auth.passwords.verify(pw.to_owned(), current).await?.ok
        {
            return Err(AuthError::SamePassword);
        }
        new_hash = Some(ctx.auth.passwords.hash(pw.to_owned()).await?);
    }
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    if let Some(data) = &p.data {
        let row = tx.query_one("select coalesce(raw_user_meta_data, '{}') from auth.users where id = $1 for update", &[&a.user_id]).await?;
        let base: Value = row.try_get(0).map_err(AuthError::internal)?;
        let merged = merge_metadata(&base, data);
        tx.execute("update auth.users set raw_user_meta_data = $2, updated_at = now() where id = $1", &[&a.user_id, &merged])
            .await?;
    }
    if let Some(hash) = &new_hash {
        tx.execute(
            "update auth.users set encrypted_password = $2, reauthentication_token = '', updated_at = now() where id = $1",
            &[&a.user_id, hash],
        )
        .await?;
        // A new password signs out every other session (GoTrue's UpdatePassword).
        tx.execute("delete from auth.sessions where user_id = $1 and id is distinct from $2", &[&a.user_id, &a.session_id])
            .await?;
    }
    if let Some(email) = p.email.as_deref().filter(|e| !e.trim().is_empty()) {
        let email = validate_email(email)?;
        let current = a.user.get("email").and_then(Value::as_str).unwrap_or("").to_lowercase();
        if email != current {
            let taken = tx
                .query_opt("select 1 from auth.users where lower(email) = $1 and id <> $2 and not is_sso_user", &[&email, &a.user_id])
                .await?;
            if taken.is_some() {
                return Err(AuthError::EmailExists);
            }
            if cfg.mailer_autoconfirm {
                tx.execute(
                    "update auth.users set email = $2::text, email_confirmed_at = coalesce(email_confirmed_at, now()),
                            raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || jsonb_build_object('email', $2::text),
                            is_anonymous = false, updated_at = now()
                      where id = $1",
                    &[&a.user_id, &email],
                )
                .await?;
                upsert_email_identity(&tx, a.user_id, &email).await?;
            } else {
                tx.execute(
                    "update auth.users set email_change = $2, email_change_confirm_status = 0, email_change_token_current = '',
                            updated_at = now() where id = $1",
                    &[&a.user_id, &email],
                )
                .await?;
                mailer::issue(&ctx, &tx, a.user_id, &email, MailKind::EmailChangeNew, pkce.as_ref(), true, true).await?;
                if cfg.secure_email_change && !current.is_empty() {
                    mailer::issue(&ctx, &tx, a.user_id, &current, MailKind::EmailChangeCurrent, None, true, false).await?;
                }
            }
        }
    }
    let user = ctx.auth.user_json(&tx, a.user_id).await?.ok_or(AuthError::TokenUserGone)?;
    tx.commit().await?;
    Ok(json(&user))
}

/// Points the user's `email` identity at `email`, creating it for a user
/// who had none (an anonymous user adding an address), and records the
/// `email` provider in `app_metadata`.
pub async fn upsert_email_identity(
    client: &impl deadpool_postgres::GenericClient,
    user_id: Uuid,
    email: &str,
) -> Result<(), AuthError> {
    client
        .execute(
            "with up as (
               update auth.identities
                  set identity_data = identity_data || jsonb_build_object('email', $2::text, 'email_verified', true),
                      updated_at = now()
                where user_id = $1 and provider = 'email'
                returning id)
             insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at, id)
             select $1::uuid::text, $1, jsonb_build_object('sub', $1::uuid::text, 'email', $2::text, 'email_verified', true,
                                                  'phone_verified', false), 'email', now(), now(), gen_random_uuid()
              where not exists (select 1 from up)",
            &[&user_id, &email],
        )
        .await?;
    client
        .execute(
            "update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}')
                 || jsonb_build_object('provider', coalesce(raw_app_meta_data->>'provider', 'email'),
                                       'providers', (select coalesce(jsonb_agg(distinct p), '[\"email\"]')
                                                       from (select jsonb_array_elements_text(coalesce(raw_app_meta_data->'providers', '[]')) as p
                                                             union select 'email') x))
              where id = $1",
            &[&user_id],
        )
        .await?;
    Ok(())
}

/// `DELETE /user/identities/:identity_id`: unlinks an identity; the last
/// one cannot go (`single_identity_not_deletable`).
pub async fn unlink_identity(ctx: Ctx, identity_id: String) -> Result<Response, AuthError> {
    use http::StatusCode;
    let a = authenticate(&ctx).await?;
    let not_found = || AuthError::Coded(StatusCode::NOT_FOUND, "identity_not_found", "Identity doesn't exist".into());
    let iid = Uuid::parse_str(&identity_id).map_err(|_| not_found())?;
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    let rows = tx.query("select id from auth.identities where user_id = $1 for update", &[&a.user_id]).await?;
    if !rows.iter().any(|r| r.try_get::<_, Uuid>(0).ok() == Some(iid)) {
        return Err(not_found());
    }
    if rows.len() <= 1 {
        return Err(AuthError::Coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "single_identity_not_deletable",
            "User must have at least 1 identity after unlinking".into(),
        ));
    }
    tx.execute("delete from auth.identities where id = $1", &[&iid]).await?;
    tx.execute(
        "update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}') || jsonb_build_object('providers',
             (select coalesce(jsonb_agg(distinct provider), '[]') from auth.identities where user_id = $1)), updated_at = now()
          where id = $1",
        &[&a.user_id],
    )
    .await?;
    tx.commit().await?;
    Ok(json(&serde_json::json!({})))
}
