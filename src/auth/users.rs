//! Reading and writing users: who the bearer token belongs to, the admin
//! check, address validation, and creating a user with its identity the way
//! GoTrue does (`models.NewUser` + `models.NewIdentity`).

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::errors::AuthError;
use super::routes::Ctx;

/// GoTrue's instance id: all users share the nil instance.
pub const INSTANCE_ID: Uuid = Uuid::nil();

/// The user behind a request's access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user id (`sub`).
    pub user_id: Uuid,
    /// The session (`session_id`), if the token names one.
    pub session_id: Option<Uuid>,
    /// The verified claims.
    pub claims: crate::keys::claims::Claims,
    /// The user JSON, loaded with the check.
    pub user: Value,
}

/// Verifies the bearer token as a user's access token and loads the user;
/// a token whose session was revoked is refused (`session_not_found`), as
/// GoTrue does.
pub async fn authenticate(ctx: &Ctx) -> Result<Authenticated, AuthError> {
    let token = ctx.bearer.as_deref().ok_or(AuthError::NoAuthorization)?;
    let claims = ctx.auth.state.keys.verify(token).map_err(|e| AuthError::BadJwt(jwt_reason(&e)))?;
    let sub = claims.get("sub").and_then(Value::as_str).ok_or_else(|| AuthError::BadJwt("invalid claim: missing sub claim".into()))?;
    let user_id = Uuid::parse_str(sub).map_err(|_| AuthError::BadJwt("invalid claim: sub claim must be a UUID".into()))?;
    let session_id = match claims.get("session_id").and_then(Value::as_str) {
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| AuthError::SessionNotFound)?),
        None => None,
    };
    let client = ctx.auth.db().await?;
    let row = client
        .query_one(
            "select fluxbase.auth_user_json($1::uuid) as u,
                    $2::uuid is null or exists (select 1 from auth.sessions where id = $2::uuid and user_id = $1::uuid) as s",
            &[&user_id, &session_id],
        )
        .await?;
    let user: Option<Value> = row.try_get("u").map_err(AuthError::internal)?;
    let has_session: bool = row.try_get("s").map_err(AuthError::internal)?;
    let user = user.ok_or(AuthError::TokenUserGone)?;
    if !has_session {
        return Err(AuthError::SessionNotFound);
    }
    Ok(Authenticated { user_id, session_id, claims, user })
}

/// GoTrue's wording of why a JWT was refused.
fn jwt_reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "token has invalid claims: token is expired".into(),
        ErrorKind::InvalidSignature => "token signature is invalid: signature is invalid".into(),
        ErrorKind::InvalidAlgorithm => "token is unverifiable: signing method is invalid".into(),
        _ => "token is malformed: could not parse the token".into(),
    }
}

/// Requires the service role: the service key as bearer token (or a JWT
/// with `role: service_role`), or, with no bearer, the service key as API key.
pub fn require_admin(ctx: &Ctx) -> Result<(), AuthError> {
    match ctx.bearer.as_deref() {
        Some(t) => {
            let claims = ctx.auth.state.keys.verify(t).map_err(|e| AuthError::BadJwt(jwt_reason(&e)))?;
            if claims.get("role").and_then(Value::as_str) == Some("service_role") {
                Ok(())
            } else {
                Err(AuthError::NotAdmin)
            }
        }
        None if ctx.key == crate::http::apikey::ApiKey::ServiceRole => Ok(()),
        None => Err(AuthError::NoAuthorization),
    }
}

/// Validates and normalises an e-mail address (trimmed, lower-cased), as
/// GoTrue's `validateEmail`.
pub fn validate_email(email: &str) -> Result<String, AuthError> {
    let e = email.trim().to_lowercase();
    let bad = || AuthError::Validation("Unable to validate email address: invalid format".into());
    if e.len() > 255 {
        return Err(AuthError::Validation("An email address is too long".into()));
    }
    let (local, domain) = e.rsplit_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        && !domain.contains('@');
    if ok {
        Ok(e)
    } else {
        Err(bad())
    }
}

/// What a new user starts with.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Normalised address (empty for anonymous users).
    pub email: String,
    /// Phone (empty if none).
    pub phone: String,
    /// Argon2id hash, if a password was given.
    pub password_hash: Option<String>,
    /// Whether the address counts as confirmed now.
    pub confirmed: bool,
    /// `user_metadata` given at sign-up.
    pub data: Map<String, Value>,
    /// Extra `app_metadata` (admin-created users).
    pub app_data: Map<String, Value>,
    /// `anonymous` or `email`.
    pub provider: &'static str,
    /// Explicit id (admin API), else random.
    pub id: Option<Uuid>,
    /// Role (admin API), else `authenticated`.
    pub role: Option<String>,
    /// Set `invited_at`.
    pub invited: bool,
}

/// Inserts a user and its identity; `Ok(None)` if the address is taken.
pub async fn insert_user(client: &impl deadpool_postgres::GenericClient, u: &NewUser) -> Result<Option<Uuid>, AuthError> {
    let id = u.id.unwrap_or_else(Uuid::new_v4);
    let anonymous = u.provider == "anonymous";
    let mut identity = Map::new();
    identity.insert("sub".into(), json!(id.to_string()));
    if !anonymous {
        identity.insert("email".into(), json!(u.email));
        identity.insert("email_verified".into(), json!(false));
        identity.insert("phone_verified".into(), json!(false));
    }
    let mut user_meta = u.data.clone();
    for (k, v) in &identity {
        user_meta.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if anonymous {
        user_meta = u.data.clone();
    }
    let mut app = Map::new();
    if !anonymous {
        app.insert("provider".into(), json!(u.provider));
        app.insert("providers".into(), json!([u.provider]));
    }
    for (k, v) in &u.app_data {
        if k != "provider" && k != "providers" {
            app.insert(k.clone(), v.clone());
        }
    }
    let role = u.role.clone().unwrap_or_else(|| "authenticated".into());
    let email: Option<&str> = (!u.email.is_empty()).then_some(u.email.as_str());
    let phone: Option<&str> = (!u.phone.is_empty()).then_some(u.phone.as_str());
    let row = client
        .query_opt(
            "with u as (
               insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                   invited_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, phone, is_anonymous,
                   confirmation_token, recovery_token, email_change_token_new, email_change)
               values ($1, $2, 'authenticated', $3, $4, coalesce($5, ''),
                   case when $6 then now() end, case when $7 then now() end, $8, $9, now(), now(), $10, $11,
                   '', '', '', '')
               on conflict do nothing
               returning id),
             i as (
               insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at, id)
               select $2::uuid::text, id, $12, $13, now(), now(), gen_random_uuid() from u
               where not $11
               returning id)
             select (select id from u) as id, (select count(*) from i) as n",
            &[
                &INSTANCE_ID,
                &id,
                &role,
                &email,
                &u.password_hash,
                &u.confirmed,
                &u.invited,
                &Value::Object(app),
                &Value::Object(user_meta),
                &phone,
                &anonymous,
                &Value::Object(identity),
                &u.provider,
            ],
        )
        .await?;
    Ok(row.and_then(|r| r.try_get::<_, Option<Uuid>>("id").ok().flatten()))
}

/// Finds a (non-SSO) user by address: id, password hash, confirmed, banned, deleted.
#[derive(Debug, Clone)]
pub struct Found {
    /// The id.
    pub id: Uuid,
    /// `encrypted_password`.
    pub password_hash: Option<String>,
    /// `email_confirmed_at is not null`.
    pub confirmed: bool,
    /// Banned now.
    pub banned: bool,
}

/// Looks a user up by e-mail.
pub async fn find_by_email(client: &impl deadpool_postgres::GenericClient, email: &str) -> Result<Option<Found>, AuthError> {
    let stmt = client
        .prepare_cached(
            "select id, encrypted_password, email_confirmed_at is not null as confirmed,
                    coalesce(banned_until > now(), false) as banned
               from auth.users
              where lower(email) = lower($1) and not is_sso_user and deleted_at is null
              limit 1",
        )
        .await?;
    let row = client.query_opt(&stmt, &[&email]).await?;
    Ok(match row {
        None => None,
        Some(r) => Some(Found {
            id: r.try_get("id").map_err(AuthError::internal)?,
            password_hash: r.try_get("encrypted_password").map_err(AuthError::internal)?,
            confirmed: r.try_get("confirmed").map_err(AuthError::internal)?,
            banned: r.try_get("banned").map_err(AuthError::internal)?,
        }),
    })
}

/// Merges `patch` into `base` as GoTrue's `UpdateUserMetaData`: top-level
/// keys replace, a `null` removes.
pub fn merge_metadata(base: &Value, patch: &Map<String, Value>) -> Value {
    let mut out = base.as_object().cloned().unwrap_or_default();
    for (k, v) in patch {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(validate_email("  Foo@Example.COM ").ok().as_deref(), Some("foo@example.com"));
        for bad in ["", "foo", "@x.com", "a@", "a b@c.d", "a@.com", "a@b.", "<a@b.c>"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_merges_and_nulls_remove() {
        let base = json!({"a": 1, "b": 2});
        let patch = json!({"b": null, "c": 3});
        let out = merge_metadata(&base, patch.as_object().expect("obj"));
        assert_eq!(out, json!({"a": 1, "c": 3}));
    }
}
