//! Mail delivery over SMTP with `lettre` (tokio, rustls), when `[auth]
//! smtp_host` is set. Without it the embedded default captures mail in
//! `fluxbase.auth_mail` instead ([`super::mailer`]).
//!
//! TLS modes (`smtp_tls`): `starttls` (upgrade on the submission port,
//! required), `tls` (implicit TLS, port 465), `none` (plain text: local
//! relays and tests only).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::AuthConfig;

/// Why a mail could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// `smtp_sender` or the recipient is not a mailbox.
    #[error("invalid address: {0}")]
    Address(#[from] lettre::address::AddressError),
    /// Building the message failed.
    #[error("message: {0}")]
    Message(#[from] lettre::error::Error),
    /// The relay refused or could not be reached.
    #[error("smtp: {0}")]
    Transport(#[from] lettre::transport::smtp::Error),
}

/// A configured relay.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Smtp {
    /// The relay `cfg` names, or `None` when `smtp_host` is empty.
    pub fn from_config(cfg: &AuthConfig) -> Result<Option<Smtp>, SmtpError> {
        let host = cfg.smtp_host.trim();
        if host.is_empty() {
            return Ok(None);
        }
        let builder = match cfg.smtp_tls.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
        };
        let mut builder = builder.port(cfg.smtp_port).timeout(Some(Duration::from_secs(10)));
        if !cfg.smtp_user.is_empty() {
            builder = builder.credentials(Credentials::new(cfg.smtp_user.clone(), cfg.smtp_pass.clone()));
        }
        let from: Mailbox = cfg.smtp_sender.parse()?;
        Ok(Some(Smtp { transport: builder.build(), from }))
    }

    /// Sends one HTML mail to `to`.
    pub async fn send(&self, to: &str, subject: &str, html: String) -> Result<(), SmtpError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse::<Mailbox>()?)
            .subject(subject)
            .header(ContentType::TEXT_HTML)
            .body(html)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_host_means_no_relay_and_bad_senders_are_refused() {
        let mut cfg = AuthConfig::default();
        assert!(Smtp::from_config(&cfg).ok().flatten().is_none());
        cfg.smtp_host = "127.0.0.1".into();
        cfg.smtp_tls = "none".into();
        assert!(Smtp::from_config(&cfg).ok().flatten().is_some());
        cfg.smtp_sender = "not an address".into();
        assert!(matches!(Smtp::from_config(&cfg), Err(SmtpError::Address(_))));
    }
}
