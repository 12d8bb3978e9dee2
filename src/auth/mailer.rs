//! Mail: the one-time tokens GoTrue puts in mails, the mails' text, and the
//! captured mailbox.
//!
//! A mail carries a numeric OTP and a link. The database keeps only
//! `token_hash = hex(sha224(email || otp))`, GoTrue's format, in the user's
//! token column and in `auth.one_time_tokens`; the link carries the hash
//! (prefixed `pkce_` when the flow is PKCE). The embedded default captures
//! mail in `fluxbase.auth_mail` instead of sending it; the service role
//! reads it through `GET /auth/v1/admin/mail`, so confirmation and magic
//! links work out of the box. With `smtp_host` set, mail goes out over SMTP
//! ([`super::smtp`]) and is not captured. Subjects and bodies come from
//! [`super::templates`].

use std::time::Duration;

use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha224};
use uuid::Uuid;

use super::errors::AuthError;
use super::ratelimit::Action;
use super::routes::Ctx;
use super::templates::{self, TemplateData};
use super::verify::Pkce;

/// Which mail, and so which token column and verify `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// Sign-up confirmation (`confirmation_token`).
    Signup,
    /// Invitation (`confirmation_token`).
    Invite,
    /// Magic link / e-mail OTP (`recovery_token`, as GoTrue).
    MagicLink,
    /// Password recovery (`recovery_token`).
    Recovery,
    /// E-mail change, mail to the new address (`email_change_token_new`).
    EmailChangeNew,
    /// E-mail change, mail to the current address (`email_change_token_current`).
    EmailChangeCurrent,
    /// Reauthentication nonce (`reauthentication_token`).
    Reauthentication,
}

impl MailKind {
    /// The verify `type` of the link.
    pub fn verify_type(self) -> &'static str {
        match self {
            MailKind::Signup => "signup",
            MailKind::Invite => "invite",
            MailKind::MagicLink => "magiclink",
            MailKind::Recovery => "recovery",
            MailKind::EmailChangeNew | MailKind::EmailChangeCurrent => "email_change",
            MailKind::Reauthentication => "reauthentication",
        }
    }

    /// `auth.one_time_token_type` of the token.
    pub fn token_type(self) -> &'static str {
        match self {
            MailKind::Signup | MailKind::Invite => "confirmation_token",
            MailKind::MagicLink | MailKind::Recovery => "recovery_token",
            MailKind::EmailChangeNew => "email_change_token_new",
            MailKind::EmailChangeCurrent => "email_change_token_current",
            MailKind::Reauthentication => "reauthentication_token",
        }
    }

    /// How GoTrue names the mail in its sending errors.
    fn label(self) -> &'static str {
        match self {
            MailKind::Signup => "confirmation",
            MailKind::Invite => "invite",
            MailKind::MagicLink => "magic link",
            MailKind::Recovery => "recovery",
            MailKind::EmailChangeNew | MailKind::EmailChangeCurrent => "email change",
            MailKind::Reauthentication => "reauthentication",
        }
    }

    /// SQL that stores the token hash in the user's column and stamps when it was sent.
    fn column_sql(self) -> &'static str {
        match self {
            MailKind::Signup => "update auth.users set confirmation_token = $2, confirmation_sent_at = now() where id = $1",
            MailKind::Invite => {
                "update auth.users set confirmation_token = $2, confirmation_sent_at = now(), invited_at = coalesce(invited_at, now()) where id = $1"
            }
            MailKind::MagicLink | MailKind::Recovery => {
                "update auth.users set recovery_token = $2, recovery_sent_at = now() where id = $1"
            }
            MailKind::EmailChangeNew => {
                "update auth.users set email_change_token_new = $2, email_change_sent_at = now() where id = $1"
            }
            MailKind::EmailChangeCurrent => {
                "update auth.users set email_change_token_current = $2, email_change_sent_at = now() where id = $1"
            }
            MailKind::Reauthentication => {
                "update auth.users set reauthentication_token = $2, reauthentication_sent_at = now() where id = $1"
            }
        }
    }
}

/// GoTrue's token hash: `hex(sha224(email || otp))`.
pub fn token_hash(email: &str, otp: &str) -> String {
    hex::encode(Sha224::digest(format!("{email}{otp}").as_bytes()))
}

/// A numeric OTP of `digits` digits.
pub fn new_otp(digits: u32) -> String {
    let mut rng = rand::rng();
    (0..digits).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

/// What a sent mail carried (also what `generate_link` answers with).
#[derive(Debug, Clone)]
pub struct Sent {
    /// The link in the mail.
    pub action_link: String,
    /// The OTP in the mail.
    pub otp: String,
    /// The stored hash.
    pub hashed_token: String,
    /// Where the link leads after verifying.
    pub redirect_to: String,
}

/// Issues a one-time token of `kind` for `user_id` at `email` and, when
/// `deliver`, sends (captures) the mail. Applies the per-IP and
/// per-address mail limits when `limited`.
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    ctx: &Ctx,
    client: &impl deadpool_postgres::GenericClient,
    user_id: Uuid,
    email: &str,
    kind: MailKind,
    pkce: Option<&Pkce>,
    deliver: bool,
    limited: bool,
) -> Result<Sent, AuthError> {
    let cfg = ctx.auth.config();
    if limited {
        let freq = Duration::from_secs(cfg.email_max_frequency.max(1));
        let addr_key = format!("{}:{}", kind.token_type(), email);
        if !ctx.auth.allow_on(client, Action::EmailFrequency, &addr_key, 1, freq).await? {
            return Err(AuthError::OverEmailSendRateLimit(format!(
                "For security purposes, you can only request this after {} seconds.",
                cfg.email_max_frequency.max(1)
            )));
        }
        if !ctx.auth.allow_on(client, Action::Email, &ctx.ip_key(), cfg.rate_limit_email_sent, Duration::from_secs(3600)).await? {
            return Err(AuthError::OverEmailSendRateLimit("Email rate limit exceeded".into()));
        }
    }
    let otp = new_otp(cfg.mailer_otp_length);
    let hash = token_hash(email, &otp);
    client.execute(kind.column_sql(), &[&user_id, &hash]).await?;
    client
        .execute(
            "insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to, created_at, updated_at)
             values (gen_random_uuid(), $1, $2::text::auth.one_time_token_type, $3, $4, now(), now())
             on conflict (user_id, token_type) do update
               set token_hash = excluded.token_hash, relates_to = excluded.relates_to,
                   created_at = now(), updated_at = now()",
            &[&user_id, &kind.token_type(), &hash, &email],
        )
        .await?;
    let redirect_to = super::verify::redirect_target(ctx);
    let link_token = match pkce {
        Some(p) => {
            p.save(client, user_id, kind.verify_type()).await?;
            format!("pkce_{hash}")
        }
        None => hash.clone(),
    };
    let action_link = format!(
        "{}/auth/v1/verify?token={}&type={}&redirect_to={}",
        ctx.base_url,
        link_token,
        kind.verify_type(),
        urlencode(&redirect_to)
    );
    if deliver {
        let (current, new_email) = match kind {
            MailKind::EmailChangeNew | MailKind::EmailChangeCurrent => {
                let row = client
                    .query_one("select coalesce(email, ''), coalesce(email_change, '') from auth.users where id = $1", &[&user_id])
                    .await?;
                (row.try_get::<_, String>(0).map_err(AuthError::internal)?, row.try_get::<_, String>(1).map_err(AuthError::internal)?)
            }
            _ => (email.to_owned(), String::new()),
        };
        let data = TemplateData {
            confirmation_url: &action_link,
            token: &otp,
            token_hash: &hash,
            site_url: &cfg.site_url,
            email: &current,
            new_email: &new_email,
            redirect_to: &redirect_to,
        };
        let subject = templates::render(ctx.auth.templates.subject(kind), &data);
        let body = templates::render(ctx.auth.templates.body(kind), &data);
        match ctx.auth.smtp.as_ref() {
            Some(smtp) => {
                smtp.send(email, &subject, body).await.map_err(|e| {
                    tracing::warn!(error = %e, kind = kind.verify_type(), "sending mail failed");
                    AuthError::Coded(http::StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", format!("Error sending {} email", kind.label()))
                })?;
                tracing::info!(kind = kind.verify_type(), "mail sent");
            }
            None => {
                client
                    .execute(
                        "insert into fluxbase.auth_mail (recipient, subject, kind, body, data) values ($1, $2, $3, $4, $5)",
                        &[
                            &email,
                            &subject,
                            &kind.verify_type(),
                            &body,
                            &json!({"action_link": action_link, "otp": otp, "token_hash": hash, "redirect_to": redirect_to, "type": kind.verify_type()}),
                        ],
                    )
                    .await?;
                tracing::info!(kind = kind.verify_type(), "mail captured");
            }
        }
    }
    Ok(Sent { action_link, otp, hashed_token: hash, redirect_to })
}

/// Sends a sign-up confirmation or invitation.
pub async fn send_confirmation(
    ctx: &Ctx,
    client: &impl deadpool_postgres::GenericClient,
    user_id: Uuid,
    email: &str,
    kind: MailKind,
    pkce: Option<&Pkce>,
) -> Result<(), AuthError> {
    issue(ctx, client, user_id, email, kind, pkce, true, true).await.map(|_| ())
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).map(|e| e[2..].to_owned()).unwrap_or_default()
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_gotrue_format() {
        // sha224("a@b.c123456")
        let h = token_hash("a@b.c", "123456");
        assert_eq!(h.len(), 56);
        assert_eq!(h, hex::encode(Sha224::digest(b"a@b.c123456")));
        let otp = new_otp(6);
        assert_eq!(otp.len(), 6);
        assert!(otp.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(urlencode("http://x/y?a=1&b"), "http%3A%2F%2Fx%2Fy%3Fa%3D1%26b");
    }
}
