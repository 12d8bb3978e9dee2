//! `[auth]`: settings of the auth server, with the defaults a local Supabase
//! stack (`supabase start`) gives: sign-ups open, e-mail confirmations off
//! (`mailer_autoconfirm = true`), anonymous sign-ins off, 6-character
//! passwords, refresh-token rotation on with a 10 s reuse interval, and
//! GoTrue's per-IP rate limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::oauth::config::ExternalProvider;
use crate::config::ConfigError;

/// The `[auth]` section. Every key is also `FLUXBASE_AUTH_<KEY>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Where links in mails send the user when no allowed `redirect_to` is given.
    pub site_url: String,
    /// Further allowed `redirect_to` URLs, comma-separated; a trailing `*`
    /// matches any suffix.
    pub additional_redirect_urls: String,
    /// Access-token lifetime in seconds.
    pub jwt_exp: u64,
    /// `iss` of access tokens; empty means `<api url>/auth/v1`.
    pub jwt_issuer: String,
    /// Whether new users may sign up (admins can always create users).
    pub enable_signup: bool,
    /// Whether `signInAnonymously` works.
    pub enable_anonymous_sign_ins: bool,
    /// Whether e-mail addresses count as confirmed without a confirmation mail.
    pub mailer_autoconfirm: bool,
    /// Whether an e-mail change must be confirmed from both addresses.
    pub secure_email_change: bool,
    /// Whether a password change needs a reauthentication nonce.
    pub secure_password_change: bool,
    /// Seconds a link or OTP from a mail stays valid.
    pub mailer_otp_exp: u64,
    /// Digits of e-mail OTPs.
    pub mailer_otp_length: u32,
    /// Shortest accepted password.
    pub password_min_length: u32,
    /// Character classes a password needs, `:`-separated (GoTrue's format),
    /// e.g. `abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789`.
    pub password_required_characters: String,
    /// Whether refresh tokens are single-use and replaced on each refresh.
    pub refresh_token_rotation: bool,
    /// Seconds during which a just-rotated refresh token may be presented
    /// again (concurrent tabs) without counting as reuse.
    pub refresh_token_reuse_interval: u64,
    /// Longest life of a session in seconds (0: unlimited).
    pub sessions_timebox: u64,
    /// Seconds without a refresh after which a session ends (0: never).
    pub sessions_inactivity_timeout: u64,
    /// Sign-ups and sign-ins per IP per 5 minutes.
    pub rate_limit_sign_in_sign_ups: u32,
    /// Refresh-token grants per IP per 5 minutes.
    pub rate_limit_token_refresh: u32,
    /// OTP and link verifications per IP per 5 minutes.
    pub rate_limit_token_verifications: u32,
    /// Anonymous sign-ins per IP per hour.
    pub rate_limit_anonymous_users: u32,
    /// Failed password sign-ins per address per 5 minutes before that
    /// address is refused (429) until the window ends (0 = off).
    pub rate_limit_sign_in_failures_per_address: u32,
    /// Failed OTP verifications (e-mail + code) per address per 5 minutes
    /// before that address is refused (429) until the window ends (0 = off).
    pub rate_limit_verify_failures_per_address: u32,
    /// SMTP relay host; empty = capture mail in `fluxbase.auth_mail` instead.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// SMTP user name (empty = no authentication).
    pub smtp_user: String,
    /// SMTP password.
    pub smtp_pass: String,
    /// The `From` mailbox, e.g. `Example <noreply@example.com>`.
    pub smtp_sender: String,
    /// `starttls`, `tls` (implicit, port 465) or `none` (plain text).
    pub smtp_tls: String,
    /// Where rate limits are counted: `database` (shared by every instance on
    /// the database) or `memory` (per process).
    pub rate_limit_store: String,
    /// Mails sent (signup confirmation, recovery, magic link, OTP) per IP per hour.
    pub rate_limit_email_sent: u32,
    /// Seconds before another mail of the same kind may go to the same address.
    pub email_max_frequency: u64,
    /// Key for TOTP secrets at rest (AES-256-GCM), base64 of 32 bytes; empty
    /// derives one from the JWT secret (then rotating that secret voids
    /// enrolled factors).
    pub mfa_encryption_key: String,
    /// Verified factors a user may have.
    pub mfa_max_enrolled_factors: u32,
    /// Seconds an MFA challenge stays open.
    pub mfa_challenge_expiry: u64,
    /// Failed MFA verifications per factor per 5 minutes before it locks.
    pub mfa_max_verify_failures: u32,
    /// Custom access-token hook: a SQL function, as `schema.function` or
    /// Supabase's `pg-functions://postgres/<schema>/<function>`; empty: none.
    pub hook_custom_access_token: String,
    /// Concurrent password hashes (0: the number of cores).
    pub password_workers: u32,
    /// Password hashes allowed to wait for a worker before requests get 429.
    pub password_queue: u32,
    /// Subject of the confirmation mail (GoTrue's `MAILER_SUBJECTS_*`); empty: the default.
    pub mailer_subjects_confirmation: String,
    /// Subject of the invite mail (GoTrue's `MAILER_SUBJECTS_*`); empty: the default.
    pub mailer_subjects_invite: String,
    /// Subject of the magic link mail (GoTrue's `MAILER_SUBJECTS_*`); empty: the default.
    pub mailer_subjects_magic_link: String,
    /// Subject of the recovery mail (GoTrue's `MAILER_SUBJECTS_*`); empty: the default.
    pub mailer_subjects_recovery: String,
    /// Subject of the email change mail (GoTrue's `MAILER_SUBJECTS_*`); empty: the default.
    pub mailer_subjects_email_change: String,
    /// Subject of the reauthentication mail (GoTrue's `MAILER_SUBJECTS_*`); empty: the default.
    pub mailer_subjects_reauthentication: String,
    /// HTML template file of the confirmation mail (GoTrue's `MAILER_TEMPLATES_*`, read at start); empty: the default.
    pub mailer_templates_confirmation: String,
    /// HTML template file of the invite mail (GoTrue's `MAILER_TEMPLATES_*`, read at start); empty: the default.
    pub mailer_templates_invite: String,
    /// HTML template file of the magic link mail (GoTrue's `MAILER_TEMPLATES_*`, read at start); empty: the default.
    pub mailer_templates_magic_link: String,
    /// HTML template file of the recovery mail (GoTrue's `MAILER_TEMPLATES_*`, read at start); empty: the default.
    pub mailer_templates_recovery: String,
    /// HTML template file of the email change mail (GoTrue's `MAILER_TEMPLATES_*`, read at start); empty: the default.
    pub mailer_templates_email_change: String,
    /// HTML template file of the reauthentication mail (GoTrue's `MAILER_TEMPLATES_*`, read at start); empty: the default.
    pub mailer_templates_reauthentication: String,
    /// Whether users may link further identities themselves (`linkIdentity`).
    pub manual_linking_enabled: bool,
    /// OAuth / OpenID Connect providers, `[auth.external.<name>]` (file only).
    pub external: BTreeMap<String, ExternalProvider>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            site_url: "http://localhost:3000".into(),
            additional_redirect_urls: String::new(),
            jwt_exp: 3600,
            jwt_issuer: String::new(),
            enable_signup: true,
            enable_anonymous_sign_ins: false,
            mailer_autoconfirm: true,
            secure_email_change: true,
            secure_password_change: false,
            mailer_otp_exp: 3600,
            mailer_otp_length: 6,
            password_min_length: 6,
            password_required_characters: String::new(),
            refresh_token_rotation: true,
            refresh_token_reuse_interval: 10,
            sessions_timebox: 0,
            sessions_inactivity_timeout: 0,
            rate_limit_sign_in_sign_ups: 30,
            rate_limit_token_refresh: 150,
            rate_limit_token_verifications: 30,
            rate_limit_anonymous_users: 30,
            rate_limit_sign_in_failures_per_address: 10,
            rate_limit_verify_failures_per_address: 10,
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_user: String::new(),
            smtp_pass: String::new(),
            smtp_sender: "Fluxbase <noreply@localhost>".into(),
            smtp_tls: "starttls".into(),
            rate_limit_store: "database".into(),
            rate_limit_email_sent: 30,
            email_max_frequency: 1,
            mfa_encryption_key: String::new(),
            mfa_max_enrolled_factors: 10,
            mfa_challenge_expiry: 300,
            mfa_max_verify_failures: 5,
            hook_custom_access_token: String::new(),
            password_workers: 0,
            password_queue: 256,
            mailer_subjects_confirmation: String::new(),
            mailer_subjects_invite: String::new(),
            mailer_subjects_magic_link: String::new(),
            mailer_subjects_recovery: String::new(),
            mailer_subjects_email_change: String::new(),
            mailer_subjects_reauthentication: String::new(),
            mailer_templates_confirmation: String::new(),
            mailer_templates_invite: String::new(),
            mailer_templates_magic_link: String::new(),
            mailer_templates_recovery: String::new(),
            mailer_templates_email_change: String::new(),
            mailer_templates_reauthentication: String::new(),
            manual_linking_enabled: false,
            external: BTreeMap::new(),
        }
    }
}

impl AuthConfig {
    /// Checks every value against what it allows.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: &dyn std::fmt::Display, allowed: &str| ConfigError::Invalid {
            key: format!("auth.{key}"),
            value: value.to_string(),
            allowed: allowed.into(),
        };
        if !self.site_url.starts_with("http://") && !self.site_url.starts_with("https://") {
            return Err(invalid("site_url", &self.site_url, "an http:// or https:// URL"));
        }
        if !(30..=7 * 24 * 3600).contains(&self.jwt_exp) {
            return Err(invalid("jwt_exp", &self.jwt_exp, "seconds from 30 to 604800"));
        }
        if !(60..=7 * 24 * 3600).contains(&self.mailer_otp_exp) {
            return Err(invalid("mailer_otp_exp", &self.mailer_otp_exp, "seconds from 60 to 604800"));
        }
        if !(6..=10).contains(&self.mailer_otp_length) {
            return Err(invalid("mailer_otp_length", &self.mailer_otp_length, "an integer from 6 to 10"));
        }
        if !(6..=72).contains(&self.password_min_length) {
            return Err(invalid("password_min_length", &self.password_min_length, "an integer from 6 to 72"));
        }
        if self.refresh_token_reuse_interval > 3600 {
            return Err(invalid("refresh_token_reuse_interval", &self.refresh_token_reuse_interval, "seconds from 0 to 3600"));
        }
        if !matches!(self.smtp_tls.as_str(), "starttls" | "tls" | "none") {
            return Err(invalid("smtp_tls", &self.smtp_tls, "starttls, tls or none"));
        }
        if !self.smtp_host.is_empty() && self.smtp_sender.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid("smtp_sender", &self.smtp_sender, "a mailbox such as Example <noreply@example.com>"));
        }
        if !matches!(self.rate_limit_store.as_str(), "database" | "memory") {
            return Err(invalid("rate_limit_store", &self.rate_limit_store, "database or memory"));
        }
        if !self.mfa_encryption_key.is_empty() && self.mfa_key_bytes().is_none() {
            return Err(invalid("mfa_encryption_key", &"<hidden>", "base64 of exactly 32 bytes, or empty"));
        }
        if !(1..=1000).contains(&self.mfa_max_enrolled_factors) {
            return Err(invalid("mfa_max_enrolled_factors", &self.mfa_max_enrolled_factors, "an integer from 1 to 1000"));
        }
        if !(30..=86_400).contains(&self.mfa_challenge_expiry) {
            return Err(invalid("mfa_challenge_expiry", &self.mfa_challenge_expiry, "seconds from 30 to 86400"));
        }
        if !self.hook_custom_access_token.is_empty() && self.hook_function().is_none() {
            return Err(invalid(
                "hook_custom_access_token",
                &self.hook_custom_access_token,
                "schema.function or pg-functions://postgres/<schema>/<function> (lower-case identifiers)",
            ));
        }
        if self.password_workers > 1024 {
            return Err(invalid("password_workers", &self.password_workers, "an integer from 0 (cores) to 1024"));
        }
        if !(1..=1_000_000).contains(&self.password_queue) {
            return Err(invalid("password_queue", &self.password_queue, "an integer from 1 to 1000000"));
        }
        for (key, path) in self.mail_template_paths() {
            if let Err(why) = super::templates::read_template(path) {
                return Err(invalid(key, &path, &format!("a readable UTF-8 file of at most 1 MiB ({why})")));
            }
        }
        for (name, provider) in &self.external {
            provider.validate(name)?;
        }
        Ok(())
    }

    /// The configured MFA key, if set and well-formed.
    pub fn mfa_key_bytes(&self) -> Option<[u8; 32]> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.decode(self.mfa_encryption_key.trim()).ok()?;
        raw.try_into().ok()
    }

    /// The hook function as a quoted `"schema"."function"`, if configured and well-formed.
    pub fn hook_function(&self) -> Option<String> {
        let h = self.hook_custom_access_token.trim();
        if h.is_empty() {
            return None;
        }
        let (schema, function) = match h.strip_prefix("pg-functions://") {
            Some(rest) => {
                let mut parts = rest.split('/');
                let (_db, schema, function) = (parts.next()?, parts.next()?, parts.next()?);
                if parts.next().is_some() {
                    return None;
                }
                (schema, function)
            }
            None => h.split_once('.')?,
        };
        let ident = |s: &str| {
            !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        (ident(schema) && ident(function)).then(|| format!("\"{schema}\".\"{function}\""))
    }

    /// The configured template files: (key, path).
    pub fn mail_template_paths(&self) -> Vec<(&'static str, &str)> {
        [
            ("mailer_templates_confirmation", &self.mailer_templates_confirmation),
            ("mailer_templates_invite", &self.mailer_templates_invite),
            ("mailer_templates_magic_link", &self.mailer_templates_magic_link),
            ("mailer_templates_recovery", &self.mailer_templates_recovery),
            ("mailer_templates_email_change", &self.mailer_templates_email_change),
            ("mailer_templates_reauthentication", &self.mailer_templates_reauthentication),
        ]
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(k, p)| (k, p.as_str()))
        .collect()
    }

    /// The enabled provider `name`, if configured.
    pub fn provider(&self, name: &str) -> Option<&ExternalProvider> {
        self.external.get(name).filter(|p| p.enabled)
    }

    /// The required character classes.
    pub fn required_classes(&self) -> Vec<&str> {
        self.password_required_characters.split(':').filter(|s| !s.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names() {
        let mut c = AuthConfig::default();
        assert_eq!(c.hook_function(), None);
        c.hook_custom_access_token = "pg-functions://postgres/public/my_hook".into();
        assert_eq!(c.hook_function().as_deref(), Some("\"public\".\"my_hook\""));
        c.hook_custom_access_token = "auth.hook".into();
        assert_eq!(c.hook_function().as_deref(), Some("\"auth\".\"hook\""));
        for bad in ["public.x; drop table y", "nohook", "pg-functions://postgres/a/b/c", "A.B"] {
            c.hook_custom_access_token = bad.into();
            assert_eq!(c.hook_function(), None, "{bad}");
            assert!(c.validate().is_err(), "{bad}");
        }
        assert!(AuthConfig::default().validate().is_ok());
    }

    #[test]
    fn external_providers_from_toml() {
        let c: AuthConfig = toml::from_str(
            "[external.github]\nclient_id = \"gh\"\nsecret = \"s\"\n[external.acme]\nclient_id = \"a\"\nissuer = \"https://id.example\"\nenabled = false\n",
        )
        .expect("toml");
        assert!(c.validate().is_ok());
        assert_eq!(c.provider("github").map(|p| p.client_id.as_str()), Some("gh"));
        assert!(c.provider("acme").is_none(), "disabled");
        let bad: AuthConfig = toml::from_str("[external.keycloak]\nclient_id = \"k\"\n").expect("toml");
        assert!(bad.validate().is_err(), "an OIDC provider needs an issuer");
        assert!(toml::from_str::<AuthConfig>("[external.github]\nclient_idd = \"x\"\n").is_err(), "unknown keys are refused");
    }
}
