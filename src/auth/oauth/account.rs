//! From "the provider says this is user X" to a row of `auth.users` with its
//! `auth.identities` row, as GoTrue's `createAccountFromExternalIdentity`
//! and `DetermineAccountLinking` decide:
//!
//! - the identity `(provider, provider_id)` exists: that user signs in, and
//!   the identity's data is refreshed;
//! - a linking flow (`linkIdentity`) names its user: the identity is added to
//!   it, unless another user already owns it (`identity_already_exists`);
//! - otherwise a user whose address the provider *verified* gets the new
//!   identity (automatic linking by verified e-mail);
//! - otherwise a new user is made (if sign-ups are open).
//!
//! A user whose address was never confirmed loses its password and e-mail
//! identity when an identity with a verified address is attached (someone
//! else may have registered the address), then counts as confirmed.

use deadpool_postgres::GenericClient;
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::provider::UserData;
use crate::auth::errors::AuthError;
use crate::auth::AuthConfig;

/// What happened to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    /// The identity already belonged to this user.
    Existing(Uuid),
    /// The identity was added to this user (linking flow or verified e-mail).
    Added(Uuid),
    /// A new user was made.
    Created(Uuid),
}

impl Linked {
    /// The user.
    pub fn user_id(self) -> Uuid {
        match self {
            Linked::Existing(u) | Linked::Added(u) | Linked::Created(u) => u,
        }
    }
}

/// Finds or makes the user for `data` from `provider`, in `tx`. With
/// `link_to`, the identity is attached to that user.
pub async fn resolve(
    cfg: &AuthConfig,
    tx: &impl GenericClient,
    provider: &str,
    data: &UserData,
    link_to: Option<Uuid>,
) -> Result<Linked, AuthError> {
    if data.provider_id.is_empty() {
        return Err(AuthError::Coded(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "Error getting user from external provider".into()));
    }
    let identity_data = Value::Object(data.identity_data.clone());
    let existing = tx
        .query_opt(
            "select user_id from auth.identities where provider = $1 and provider_id = $2 for update",
            &[&provider, &data.provider_id],
        )
        .await?
        .map(|r| r.try_get::<_, Uuid>(0))
        .transpose()
        .map_err(AuthError::internal)?;
    let linked = match (existing, link_to) {
        (Some(owner), Some(target)) if owner != target => {
            return Err(AuthError::Coded(StatusCode::UNPROCESSABLE_ENTITY, "identity_already_exists", "Identity is already linked to another user".into()));
        }
        (Some(owner), _) => {
            tx.execute(
                "update auth.identities set identity_data = $3, last_sign_in_at = now(), updated_at = now()
                  where provider = $1 and provider_id = $2",
                &[&provider, &data.provider_id, &identity_data],
            )
            .await?;
            tx.execute(
                "update auth.users set raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || $2, updated_at = now() where id = $1",
                &[&owner, &identity_data],
            )
            .await?;
            Linked::Existing(owner)
        }
        (None, Some(target)) => {
            add_identity(tx, target, provider, data).await?;
            Linked::Added(target)
        }
        (None, None) => {
            let trusted = data.email.as_deref().filter(|_| data.email_verified || cfg.mailer_autoconfirm);
            let owners = match trusted {
                Some(email) => {
                    let rows = tx
                        .query(
                            "select id from auth.users where lower(email) = lower($1) and not is_sso_user and deleted_at is null for update",
                            &[&email],
                        )
                        .await?;
                    rows.iter().map(|r| r.try_get::<_, Uuid>(0)).collect::<Result<Vec<_>, _>>().map_err(AuthError::internal)?
                }
                None => Vec::new(),
            };
            match owners.as_slice() {
                [owner] => {
                    add_identity(tx, *owner, provider, data).await?;
                    Linked::Added(*owner)
                }
                [] => Linked::Created(create_user(cfg, tx, provider, data).await?),
                _ => {
                    return Err(AuthError::Coded(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "unexpected_failure",
                        "Multiple accounts with the same email address in the same linking domain detected: default".into(),
                    ))
                }
            }
        }
    };
    let user_id = linked.user_id();
    if !matches!(linked, Linked::Existing(_)) {
        refresh_providers(tx, user_id).await?;
    }
    let row = tx
        .query_one(
            "select email_confirmed_at is not null as confirmed, coalesce(banned_until > now(), false) as banned
               from auth.users where id = $1",
            &[&user_id],
        )
        .await?;
    let banned: bool = row.try_get("banned").map_err(AuthError::internal)?;
    if banned {
        return Err(AuthError::UserBanned);
    }
    let confirmed: bool = row.try_get("confirmed").map_err(AuthError::internal)?;
    if !confirmed {
        if !(data.email_verified || cfg.mailer_autoconfirm) {
            return Err(AuthError::Coded(
                StatusCode::FORBIDDEN,
                "provider_email_needs_verification",
                format!("Unverified email with {provider}. Verify the email with {provider} in order to sign in"),
            ));
        }
        // An unconfirmed address may not be this person's: drop the password
        // and the e-mail identity someone else may have set up, then confirm.
        tx.execute(
            "update auth.users set encrypted_password = '', email_confirmed_at = now(), confirmation_token = '', updated_at = now()
              where id = $1",
            &[&user_id],
        )
        .await?;
        tx.execute("delete from auth.identities where user_id = $1 and provider = 'email'", &[&user_id]).await?;
        refresh_providers(tx, user_id).await?;
    }
    Ok(linked)
}

async fn add_identity(tx: &impl GenericClient, user_id: Uuid, provider: &str, data: &UserData) -> Result<(), AuthError> {
    tx.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id)
         values ($1, $2, $3, $4, now(), now(), now(), gen_random_uuid())",
        &[&data.provider_id, &user_id, &Value::Object(data.identity_data.clone()), &provider],
    )
    .await?;
    Ok(())
}

async fn create_user(cfg: &AuthConfig, tx: &impl GenericClient, provider: &str, data: &UserData) -> Result<Uuid, AuthError> {
    if !cfg.enable_signup {
        return Err(AuthError::Coded(StatusCode::FORBIDDEN, "signup_disabled", "Signups not allowed for this instance".into()));
    }
    let Some(email) = data.email.as_deref() else {
        return Err(AuthError::Coded(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Error getting user email from external provider".into(),
        ));
    };
    let taken = tx
        .query_opt("select 1 from auth.users where lower(email) = lower($1) and not is_sso_user", &[&email])
        .await?;
    if taken.is_some() {
        // The address is registered, and this provider does not vouch for it.
        return Err(AuthError::EmailExists);
    }
    let id = Uuid::new_v4();
    let app = json!({ "provider": provider, "providers": [provider] });
    let confirmed = data.email_verified || cfg.mailer_autoconfirm;
    tx.execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
             raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous,
             confirmation_token, recovery_token, email_change_token_new, email_change)
         values ($1, $2, 'authenticated', 'authenticated', $3, '', case when $4 then now() end,
             $5, $6, now(), now(), false, '', '', '', '')",
        &[&crate::auth::users::INSTANCE_ID, &id, &email, &confirmed, &app, &Value::Object(data.identity_data.clone())],
    )
    .await?;
    add_identity(tx, id, provider, data).await?;
    Ok(id)
}

/// Sets `app_metadata.providers` to the user's identities' providers.
pub async fn refresh_providers(tx: &impl GenericClient, user_id: Uuid) -> Result<(), AuthError> {
    tx.execute(
        "update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}') || jsonb_build_object('providers',
             (select coalesce(jsonb_agg(distinct provider), '[]') from auth.identities where user_id = $1)), updated_at = now()
          where id = $1",
        &[&user_id],
    )
    .await?;
    Ok(())
}
