//! What each kind of provider needs: where to send the user, how to trade
//! the code, and how to learn who the user is (GoTrue's `provider` package,
//! for GitHub and OpenID Connect).

use serde_json::{json, Map, Value};

use super::client::ProviderError;
use super::config::{ExternalProvider, Kind};
use super::id_token::{self, IdTokenError};
use super::Oauth;

/// Who the provider says the user is.
#[derive(Debug, Clone, PartialEq)]
pub struct UserData {
    /// The provider's stable id for the user (`sub`, GitHub's numeric id).
    pub provider_id: String,
    /// The address, lower-cased, if the provider gave one.
    pub email: Option<String>,
    /// Whether the provider vouches for the address.
    pub email_verified: bool,
    /// `identity_data` (GoTrue's claims: `iss`, `sub`, `name`, `email`, …).
    pub identity_data: Map<String, Value>,
}

/// Tokens the provider handed us.
#[derive(Debug, Clone, Default)]
pub struct ProviderTokens {
    /// The provider's access token (`provider_token` to the client).
    pub access_token: String,
    /// Its refresh token, if any.
    pub refresh_token: Option<String>,
}

/// A failure talking to a provider, or in what it answered.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The ID token was refused.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// A configured provider, ready to use.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Its name (`github`, `google`, …): `auth.identities.provider`.
    pub name: String,
    /// Its settings.
    pub config: ExternalProvider,
}

impl Provider {
    /// The protocol it speaks.
    pub fn kind(&self) -> Kind {
        ExternalProvider::kind(&self.name)
    }

    /// The client ids ID tokens may be issued to.
    pub fn audiences(&self) -> Vec<&str> {
        self.config.client_id.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    }

    /// The client id used in the code flow.
    pub fn client_id(&self) -> &str {
        self.audiences().first().copied().unwrap_or("")
    }

    /// The scopes to request: the provider's defaults, the configured ones and the client's.
    pub fn scopes(&self, extra: &str) -> String {
        let base = match self.kind() {
            Kind::GitHub => "user:email",
            Kind::Oidc => "openid email profile",
        };
        let mut out: Vec<&str> = Vec::new();
        for s in base.split(' ').chain(self.config.scopes.split([' ', ','])).chain(extra.split([' ', ','])) {
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        }
        out.join(" ")
    }

    /// The provider's authorization endpoint.
    pub async fn authorization_endpoint(&self, o: &Oauth) -> Result<String, ProviderError> {
        match self.kind() {
            Kind::GitHub => Ok(format!("{}/login/oauth/authorize", self.config.github_web())),
            Kind::Oidc => Ok(o.cache.discovery(&o.http, &self.config.issuer_for(&self.name)).await?.authorization_endpoint),
        }
    }

    /// Trades `code` for tokens and the user's data; `nonce` is what the
    /// flow sent (checked in the ID token).
    pub async fn exchange(
        &self,
        o: &Oauth,
        code: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<(UserData, ProviderTokens), CallbackError> {
        let token_url = match self.kind() {
            Kind::GitHub => format!("{}/login/oauth/access_token", self.config.github_web()),
            Kind::Oidc => o.cache.discovery(&o.http, &self.config.issuer_for(&self.name)).await?.token_endpoint,
        };
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.client_id()),
            ("client_secret", self.config.secret.as_str()),
        ];
        let answer = o.http.post_form(&token_url, &form).await?;
        if let Some(err) = answer.get("error").and_then(Value::as_str) {
            return Err(ProviderError::Status { status: 200, error: Some(err.to_owned()) }.into());
        }
        let access_token = answer.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
        let access_token = access_token.ok_or_else(|| ProviderError::Invalid("token answer without access_token".into()))?;
        let tokens = ProviderTokens {
            access_token: access_token.to_owned(),
            refresh_token: answer.get("refresh_token").and_then(Value::as_str).map(str::to_owned),
        };
        let user = match self.kind() {
            Kind::GitHub => self.github_user(o, access_token).await?,
            Kind::Oidc => {
                let id_token = answer.get("id_token").and_then(Value::as_str);
                let id_token = id_token.ok_or_else(|| ProviderError::Invalid("token answer without id_token".into()))?;
                let issuer = self.config.issuer_for(&self.name);
                let claims = id_token::verify(&o.http, &o.cache, &issuer, &self.audiences(), id_token).await?;
                if !self.config.skip_nonce_check {
                    id_token::check_flow_nonce(&claims, nonce)?;
                }
                let mut user = oidc_user(&claims);
                if user.email.is_none() {
                    if let Some(ui) = o.cache.discovery(&o.http, &issuer).await?.userinfo_endpoint {
                        let info = o.http.get_json(&ui, Some(access_token)).await?;
                        if info.get("sub") == claims.get("sub") {
                            let mut merged = claims.as_object().cloned().unwrap_or_default();
                            for (k, v) in info.as_object().cloned().unwrap_or_default() {
                                merged.insert(k, v);
                            }
                            user = oidc_user(&Value::Object(merged));
                        }
                    }
                }
                user
            }
        };
        Ok((user, tokens))
    }

    /// GitHub: `/user` and `/user/emails`.
    async fn github_user(&self, o: &Oauth, token: &str) -> Result<UserData, ProviderError> {
        let api = self.config.github_api();
        let u = o.http.get_json(&format!("{api}/user"), Some(token)).await?;
        let id = match u.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ProviderError::Invalid("GitHub user without id".into())),
        };
        let emails = o.http.get_json(&format!("{api}/user/emails"), Some(token)).await?;
        let emails = emails.as_array().cloned().unwrap_or_default();
        let flag = |e: &Value, k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(false);
        let chosen = emails
            .iter()
            .find(|e| flag(e, "primary") && flag(e, "verified"))
            .or_else(|| emails.iter().find(|e| flag(e, "verified")))
            .or_else(|| emails.iter().find(|e| flag(e, "primary")));
        let (email, verified) = match chosen {
            Some(e) => (e.get("email").and_then(Value::as_str).map(str::to_lowercase), flag(e, "verified")),
            None => (u.get("email").and_then(Value::as_str).map(str::to_lowercase), false),
        };
        let s = |k: &str| u.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let mut data = Map::new();
        data.insert("iss".into(), json!(api));
        data.insert("sub".into(), json!(id));
        data.insert("provider_id".into(), json!(id));
        data.insert("name".into(), json!(s("name")));
        data.insert("full_name".into(), json!(s("name")));
        data.insert("user_name".into(), json!(s("login")));
        data.insert("preferred_username".into(), json!(s("login")));
        data.insert("avatar_url".into(), json!(s("avatar_url")));
        if let Some(e) = &email {
            data.insert("email".into(), json!(e));
        }
        data.insert("email_verified".into(), json!(verified));
        data.insert("phone_verified".into(), json!(false));
        Ok(UserData { provider_id: id, email, email_verified: verified, identity_data: data })
    }
}

/// The user an OpenID Connect provider's claims describe.
pub fn oidc_user(claims: &Value) -> UserData {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    let sub = s("sub").unwrap_or_default();
    let email = s("email").filter(|e| !e.is_empty()).map(|e| e.to_lowercase());
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(v)) => v == "true",
        _ => false,
    };
    let mut data = Map::new();
    for k in ["iss", "sub", "name", "picture", "given_name", "family_name", "preferred_username", "locale", "hd"] {
        if let Some(v) = claims.get(k).filter(|v| !v.is_null()) {
            data.insert(k.into(), v.clone());
        }
    }
    if let Some(name) = s("name") {
        data.insert("full_name".into(), json!(name));
    }
    if let Some(p) = s("picture") {
        data.insert("avatar_url".into(), json!(p));
    }
    data.insert("provider_id".into(), json!(sub));
    if let Some(e) = &email {
        data.insert("email".into(), json!(e));
    }
    data.insert("email_verified".into(), json!(verified));
    data.insert("phone_verified".into(), json!(false));
    UserData { provider_id: sub, email, email_verified: verified, identity_data: data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_merge_without_duplicates() {
        let p = Provider { name: "github".into(), config: ExternalProvider { scopes: "read:org".into(), ..Default::default() } };
        assert_eq!(p.scopes("repo user:email"), "user:email read:org repo");
        let g = Provider { name: "google".into(), config: ExternalProvider::default() };
        assert_eq!(g.scopes(""), "openid email profile");
    }

    #[test]
    fn oidc_claims_become_identity_data() {
        let u = oidc_user(&json!({"iss": "https://i", "sub": "42", "email": "A@X.com", "email_verified": "true", "name": "A"}));
        assert_eq!(u.provider_id, "42");
        assert_eq!(u.email.as_deref(), Some("a@x.com"));
        assert!(u.email_verified);
        assert_eq!(u.identity_data["full_name"], "A");
        assert_eq!(u.identity_data["provider_id"], "42");
    }
}
