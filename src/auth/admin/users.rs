//! `/admin/users`: list (paginated, `X-Total-Count` and `Link` as GoTrue's
//! `pagination.go`), create, get, update (ban, metadata, password, e-mail,
//! role) and delete (hard, or soft as GoTrue: kept, obfuscated, signed out).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::reply::Response;

use super::parse_go_duration;
use crate::auth::errors::AuthError;
use crate::auth::password::check_strength;
use crate::auth::routes::{json, parse, Ctx};
use crate::auth::users::{insert_user, merge_metadata, require_admin, validate_email, NewUser};

fn user_id(id: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(id).map_err(|_| AuthError::Validation("user_id must be an UUID".into()))
}

/// `GET /admin/users?page=&per_page=&filter=`.
pub async fn list(ctx: Ctx, _body: Bytes) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let page: i64 = ctx.param("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let per_page: i64 = ctx.param("per_page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(50).min(1000);
    let filter = ctx.param("filter").map(|f| format!("%{}%", f.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    let offset = (page - 1).saturating_mul(per_page);
    let client = ctx.auth.db().await?;
    let row = client
        .query_one(
            "with f as (
               select id, created_at from auth.users
                where $3::text is null or email ilike $3 or raw_user_meta_data->>'full_name' ilike $3)
             select (select count(*) from f) as total,
                    (select coalesce(jsonb_agg(fluxbase.auth_user_json(p.id) order by p.created_at desc, p.id), '[]')
                       from (select id, created_at from f order by created_at desc, id limit $1 offset $2) p) as users",
            &[&per_page, &offset, &filter],
        )
        .await?;
    let total: i64 = row.try_get("total").map_err(AuthError::internal)?;
    let users: Value = row.try_get("users").map_err(AuthError::internal)?;
    let mut res = json(&json!({ "users": users, "aud": "authenticated" }));
    let last = ((total + per_page - 1) / per_page).max(1);
    let mut links = Vec::new();
    if page < last {
        links.push(format!("</admin/users?page={}&per_page={per_page}>; rel=\"next\"", page + 1));
    }
    links.push(format!("</admin/users?page={last}&per_page={per_page}>; rel=\"last\""));
    let h = res.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&total.to_string()) {
        h.insert("x-total-count", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&links.join(", ")) {
        h.insert("link", v);
    }
    Ok(res)
}

/// The admin create/update body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdminUserParams {
    id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    email_confirm: Option<bool>,
    phone_confirm: Option<bool>,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    role: Option<String>,
    ban_duration: Option<String>,
}

fn check_imported_hash(h: &str) -> Result<(), AuthError> {
    let ok = h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$") || h.starts_with("$argon2");
    if ok && h.len() <= 255 {
        Ok(())
    } else {
        Err(AuthError::Validation("Invalid password hash format: only bcrypt and argon2 are supported".into()))
    }
}

fn ban_until(d: &str) -> Result<Option<f64>, AuthError> {
    if d == "none" {
        return Ok(None);
    }
    match parse_go_duration(d) {
        Some(secs) if secs >= 0.0 => Ok(Some(secs)),
        _ => Err(AuthError::Validation("invalid format for ban duration: ban_duration must be a valid Go duration or 'none'".into())),
    }
}

/// `POST /admin/users`.
pub async fn create(ctx: Ctx, body: Bytes) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let p: AdminUserParams = parse(&body)?;
    let email = p.email.as_deref().unwrap_or("").trim();
    if email.is_empty() {
        if p.phone.as_deref().is_some_and(|ph| !ph.trim().is_empty()) {
            return Err(AuthError::Validation("Phone users are not supported".into()));
        }
        return Err(AuthError::Validation("Cannot create a user without either an email or phone".into()));
    }
    let email = validate_email(email)?;
    let id = match p.id.as_deref() {
        Some(i) => Some(user_id(i)?),
        None => None,
    };
    let hash = match (p.password.as_deref().filter(|s| !s.is_empty()), p.password_hash.as_deref().filter(|s| !s.is_empty())) {
        (Some(_), Some(_)) => return Err(AuthError::Validation("Only a password or a password hash should be provided".into())),
        (Some(pw), None) => {
            check_strength(ctx.auth.config(), pw)?;
            Some(ctx.auth.passwords.hash(pw.to_owned()).await?)
        }
        (None, Some(h)) => {
            check_imported_hash(h)?;
            Some(h.to_owned())
        }
        (None, None) => None,
    };
    let ban = match p.ban_duration.as_deref() {
        Some(d) => ban_until(d)?,
        None => None,
    };
    if let Some(role) = p.role.as_deref() {
        check_role(role)?;
    }
    let client = ctx.auth.db().await?;
    let new = NewUser {
        email: email.clone(),
        password_hash: hash,
        confirmed: p.email_confirm.unwrap_or(false),
        data: p.user_metadata.unwrap_or_default(),
        app_data: p.app_metadata.unwrap_or_default(),
        provider: "email",
        id,
        role: p.role.clone(),
        ..NewUser::default()
    };
    let _ = p.phone_confirm;
    let Some(id) = insert_user(&client, &new).await? else { return Err(AuthError::EmailExists) };
    if let Some(secs) = ban {
        client
            .execute("update auth.users set banned_until = now() + make_interval(secs => $2::float8) where id = $1", &[&id, &secs])
            .await?;
    }
    if new.confirmed {
        client
            .execute(
                "update auth.identities set identity_data = identity_data || '{\"email_verified\": true}' where user_id = $1",
                &[&id],
            )
            .await?;
    }
    let user = ctx.auth.user_json(&client, id).await?.ok_or(AuthError::UserNotFound)?;
    Ok(json(&user))
}

fn check_role(role: &str) -> Result<(), AuthError> {
    if crate::http::caller::ALLOWED_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(AuthError::Validation(format!("Invalid role {role:?}: use anon, authenticated or service_role")))
    }
}

/// `GET /admin/users/:id`.
pub async fn get(ctx: Ctx, id: String) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let id = user_id(&id)?;
    let client = ctx.auth.db().await?;
    let user = ctx.auth.user_json(&client, id).await?.ok_or(AuthError::UserNotFound)?;
    Ok(json(&user))
}

/// `PUT /admin/users/:id`.
pub async fn update(ctx: Ctx, id: String, body: Bytes) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let id = user_id(&id)?;
    let p: AdminUserParams = parse(&body)?;
    let hash = match (p.password.as_deref().filter(|s| !s.is_empty()), p.password_hash.as_deref().filter(|s| !s.is_empty())) {
        (Some(pw), _) => {
            check_strength(ctx.auth.config(), pw)?;
            Some(ctx.auth.passwords.hash(pw.to_owned()).await?)
        }
        (None, Some(h)) => {
            check_imported_hash(h)?;
            Some(h.to_owned())
        }
        (None, None) => None,
    };
    let mut client = ctx.auth.db().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "select coalesce(raw_user_meta_data, '{}') as um, coalesce(raw_app_meta_data, '{}') as am, coalesce(email, '') as email
               from auth.users where id = $1 for update",
            &[&id],
        )
        .await?;
    let Some(row) = row else { return Err(AuthError::UserNotFound) };
    if let Some(role) = p.role.as_deref() {
        check_role(role)?;
        tx.execute("update auth.users set role = $2 where id = $1", &[&id, &role]).await?;
    }
    if let Some(um) = &p.user_metadata {
        let base: Value = row.try_get("um").map_err(AuthError::internal)?;
        tx.execute("update auth.users set raw_user_meta_data = $2 where id = $1", &[&id, &merge_metadata(&base, um)]).await?;
    }
    if let Some(am) = &p.app_metadata {
        let base: Value = row.try_get("am").map_err(AuthError::internal)?;
        tx.execute("update auth.users set raw_app_meta_data = $2 where id = $1", &[&id, &merge_metadata(&base, am)]).await?;
    }
    if let Some(h) = &hash {
        tx.execute("update auth.users set encrypted_password = $2 where id = $1", &[&id, h]).await?;
    }
    if let Some(email) = p.email.as_deref().filter(|e| !e.trim().is_empty()) {
        let email = validate_email(email)?;
        let current: String = row.try_get("email").map_err(AuthError::internal)?;
        if email != current.to_lowercase() {
            let taken = tx
                .query_opt("select 1 from auth.users where lower(email) = $1 and id <> $2 and not is_sso_user", &[&email, &id])
                .await?;
            if taken.is_some() {
                return Err(AuthError::EmailExists);
            }
            tx.execute(
                "update auth.users set email = $2::text, raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || jsonb_build_object('email', $2::text)
                  where id = $1",
                &[&id, &email],
            )
            .await?;
            crate::auth::user::upsert_email_identity(&tx, id, &email).await?;
        }
    }
    match p.email_confirm {
        Some(true) => {
            tx.execute("update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) where id = $1", &[&id])
                .await?;
        }
        Some(false) => {
            tx.execute("update auth.users set email_confirmed_at = null where id = $1", &[&id]).await?;
        }
        None => {}
    }
    if let Some(d) = p.ban_duration.as_deref() {
        match ban_until(d)? {
            None => tx.execute("update auth.users set banned_until = null where id = $1", &[&id]).await?,
            Some(secs) => {
                tx.execute("update auth.users set banned_until = now() + make_interval(secs => $2::float8) where id = $1", &[&id, &secs])
                    .await?;
                // A ban ends the user's sessions.
                tx.execute("delete from auth.sessions where user_id = $1", &[&id]).await?
            }
        };
    }
    tx.execute("update auth.users set updated_at = now() where id = $1", &[&id]).await?;
    let user = ctx.auth.user_json(&tx, id).await?.ok_or(AuthError::UserNotFound)?;
    tx.commit().await?;
    Ok(json(&user))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DeleteParams {
    should_soft_delete: bool,
}

/// `DELETE /admin/users/:id` (`{should_soft_delete}`).
pub async fn delete(ctx: Ctx, id: String, body: Bytes) -> Result<Response, AuthError> {
    require_admin(&ctx)?;
    let id = user_id(&id)?;
    let p: DeleteParams = parse(&body)?;
    let client = ctx.auth.db().await?;
    let n = if p.should_soft_delete {
        // GoTrue's soft delete: the row stays (foreign keys keep working),
        // the address and phone are obfuscated so they can be reused, the
        // password and metadata go, and every session ends.
        client
            .execute(
                "with s as (delete from auth.sessions where user_id = $1),
                      i as (update auth.identities set provider_id = encode(sha256(convert_to(provider_id || id::text, 'utf8')), 'hex'),
                                   identity_data = '{}'::jsonb where user_id = $1)
                 update auth.users set
                    email = case when email is null then null else encode(sha256(convert_to(email || id::text, 'utf8')), 'hex') end,
                    phone = case when phone is null then null else encode(sha256(convert_to(phone || id::text, 'utf8')), 'hex') end,
                    encrypted_password = '', confirmation_token = '', recovery_token = '', email_change_token_new = '',
                    email_change_token_current = '', raw_app_meta_data = '{}', raw_user_meta_data = '{}',
                    deleted_at = now(), updated_at = now()
                  where id = $1 and deleted_at is null",
                &[&id],
            )
            .await?
    } else {
        client.execute("delete from auth.users where id = $1", &[&id]).await?
    };
    if n == 0 {
        return Err(AuthError::UserNotFound);
    }
    Ok(json(&json!({})))
}
