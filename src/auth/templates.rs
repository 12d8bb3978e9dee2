//! The mails' subjects and HTML bodies: GoTrue's default templates for
//! each kind (confirmation, invite, magic link, recovery, e-mail change,
//! reauthentication), with GoTrue's template variables
//! (`{{ .ConfirmationURL }}`, `{{ .Token }}`, `{{ .TokenHash }}`,
//! `{{ .SiteURL }}`, `{{ .Email }}`, `{{ .NewEmail }}`, `{{ .RedirectTo }}`),
//! so a template written for Supabase renders the same here. Values are
//! HTML-escaped. Subjects and bodies can be replaced per kind from the
//! configuration ([`Overrides`]).

use std::collections::HashMap;

use super::config::AuthConfig;
use super::mailer::MailKind;

/// Largest template file accepted.
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// Reads a template file: UTF-8, at most [`MAX_TEMPLATE_BYTES`].
pub fn read_template(path: &str) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.len() > MAX_TEMPLATE_BYTES {
        return Err("not a file of at most 1 MiB".into());
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// The configured subjects and bodies (GoTrue's `mailer.subjects.*` and
/// `mailer.templates.*`), read once at start; a kind without one uses the default.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    subjects: HashMap<&'static str, String>,
    bodies: HashMap<&'static str, String>,
}

/// The configuration's name of `kind` (`mailer_subjects_<name>`).
fn config_name(kind: MailKind) -> &'static str {
    match kind {
        MailKind::Signup => "confirmation",
        MailKind::Invite => "invite",
        MailKind::MagicLink => "magic_link",
        MailKind::Recovery => "recovery",
        MailKind::EmailChangeNew | MailKind::EmailChangeCurrent => "email_change",
        MailKind::Reauthentication => "reauthentication",
    }
}

impl Overrides {
    /// Reads the configured templates.
    pub fn load(cfg: &AuthConfig) -> Result<Overrides, String> {
        let mut o = Overrides::default();
        let subjects = [
            ("confirmation", &cfg.mailer_subjects_confirmation),
            ("invite", &cfg.mailer_subjects_invite),
            ("magic_link", &cfg.mailer_subjects_magic_link),
            ("recovery", &cfg.mailer_subjects_recovery),
            ("email_change", &cfg.mailer_subjects_email_change),
            ("reauthentication", &cfg.mailer_subjects_reauthentication),
        ];
        for (name, subject) in subjects {
            if !subject.trim().is_empty() {
                o.subjects.insert(name, subject.clone());
            }
        }
        for (key, path) in cfg.mail_template_paths() {
            let name = key.trim_start_matches("mailer_templates_");
            let name = subjects.iter().map(|(n, _)| *n).find(|n| *n == name).unwrap_or("confirmation");
            o.bodies.insert(name, read_template(path).map_err(|e| format!("{key} = {path}: {e}"))?);
        }
        Ok(o)
    }

    /// The subject template of `kind`.
    pub fn subject(&self, kind: MailKind) -> &str {
        self.subjects.get(config_name(kind)).map(String::as_str).unwrap_or_else(|| default_subject(kind))
    }

    /// The body template of `kind`.
    pub fn body(&self, kind: MailKind) -> &str {
        self.bodies.get(config_name(kind)).map(String::as_str).unwrap_or_else(|| default_body(kind))
    }
}

/// The values a template may use.
#[derive(Debug, Clone, Default)]
pub struct TemplateData<'a> {
    /// The link that verifies the token.
    pub confirmation_url: &'a str,
    /// The numeric OTP.
    pub token: &'a str,
    /// The stored token hash.
    pub token_hash: &'a str,
    /// `site_url`.
    pub site_url: &'a str,
    /// The user's current address.
    pub email: &'a str,
    /// The new address of an e-mail change.
    pub new_email: &'a str,
    /// Where the link leads after verifying.
    pub redirect_to: &'a str,
}

/// GoTrue's default subject of `kind`.
pub fn default_subject(kind: MailKind) -> &'static str {
    match kind {
        MailKind::Signup => "Confirm your email address",
        MailKind::Invite => "You've been invited",
        MailKind::MagicLink => "Your sign-in link",
        MailKind::Recovery => "Reset your password",
        MailKind::EmailChangeNew | MailKind::EmailChangeCurrent => "Confirm your new email address",
        MailKind::Reauthentication => "{{ .Token }} is your verification code",
    }
}

/// The default body of `kind`, in GoTrue's template syntax.
pub fn default_body(kind: MailKind) -> &'static str {
    match kind {
        MailKind::Signup => {
            "<h2>Confirm your email address</h2>\n\n<p>Follow the link below to confirm this email address and finish signing up.</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Confirm email address</a></p>\n<p>Or enter this code: {{ .Token }}</p>\n"
        }
        MailKind::Invite => {
            "<h2>You've been invited</h2>\n\n<p>You've been invited to create an account. Follow the link below to accept.</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Accept invitation</a></p>\n"
        }
        MailKind::MagicLink => {
            "<h2>Your sign-in link</h2>\n\n<p>Follow the link below to sign in. It expires shortly and works once.</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Sign in</a></p>\n<p>Or enter this code: {{ .Token }}</p>\n"
        }
        MailKind::Recovery => {
            "<h2>Reset your password</h2>\n\n<p>We received a request to reset your password. Follow the link below to choose a new one.</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Reset password</a></p>\n<p>Or enter this code: {{ .Token }}</p>\n\
             <p>If you didn't request this, you can safely ignore this email.</p>\n"
        }
        MailKind::EmailChangeNew | MailKind::EmailChangeCurrent => {
            "<h2>Confirm your new email address</h2>\n\n<p>Follow the link below to confirm {{ .NewEmail }} as your new email address.</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Confirm new email address</a></p>\n<p>Or enter this code: {{ .Token }}</p>\n\
             <p>If you didn't request this change, you can safely ignore this email.</p>\n"
        }
        MailKind::Reauthentication => {
            "<h2>Your verification code</h2>\n\n<p>Use the code below to verify your identity. It expires shortly.</p>\n<p>{{ .Token }}</p>\n"
        }
    }
}

/// Renders `template`: each `{{ .Name }}` (spaces optional) of a known
/// variable becomes its HTML-escaped value; anything else stays as written.
pub fn render(template: &str, d: &TemplateData<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let value = match name {
            ".ConfirmationURL" => Some(d.confirmation_url),
            ".Token" => Some(d.token),
            ".TokenHash" => Some(d.token_hash),
            ".SiteURL" => Some(d.site_url),
            ".Email" => Some(d.email),
            ".NewEmail" => Some(d.new_email),
            ".RedirectTo" => Some(d.redirect_to),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&html_escape(v)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Escapes `&`, `<`, `>` and `"`.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted_and_escaped() {
        let d = TemplateData { confirmation_url: "http://x/verify?a=1&b=2", token: "123456", ..TemplateData::default() };
        assert_eq!(render("<a href=\"{{ .ConfirmationURL }}\">{{.Token}}</a>", &d), "<a href=\"http://x/verify?a=1&amp;b=2\">123456</a>");
        assert_eq!(render("{{ .Unknown }} {{ unclosed", &d), "{{ .Unknown }} {{ unclosed");
        assert_eq!(render(default_subject(MailKind::Reauthentication), &d), "123456 is your verification code");
    }

    #[test]
    fn every_kind_has_a_link_or_a_code() {
        for kind in [
            MailKind::Signup,
            MailKind::Invite,
            MailKind::MagicLink,
            MailKind::Recovery,
            MailKind::EmailChangeNew,
            MailKind::EmailChangeCurrent,
            MailKind::Reauthentication,
        ] {
            let body = default_body(kind);
            assert!(body.contains("{{ .ConfirmationURL }}") || body.contains("{{ .Token }}"), "{kind:?}");
        }
    }
}
