//! The HTTP client for calls to providers: rustls, a connect and a total
//! timeout, no redirects followed, and a cap on how much of an answer is
//! read, so a slow or hostile provider can neither hold a request nor fill
//! memory.

use std::time::Duration;

use serde_json::Value;

/// Longest wait for a provider's whole answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from a provider (JWKS, tokens, user data).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A failed provider call.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Connection refused, timeout, TLS failure.
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    /// A status other than 2xx.
    #[error("provider answered HTTP {status}")]
    Status {
        /// The status.
        status: u16,
        /// The OAuth `error`, if the body had one.
        error: Option<String>,
    },
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    #[error("provider answer exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The answer is not the JSON expected.
    #[error("provider answer is not valid: {0}")]
    Invalid(String),
}

/// A shared client (connection pool inside).
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// Builds the client.
    pub fn new() -> Result<Http, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Fluxbase/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
        Ok(Http { client })
    }

    /// `GET url` (with a bearer token) and parses the JSON answer.
    pub async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, ProviderError> {
        let mut req = self.client.get(url).header(http::header::ACCEPT, "application/json");
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        read_json(req.send().await).await
    }

    /// `POST url` with a form body and parses the JSON answer.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Value, ProviderError> {
        let req = self.client.post(url).header(http::header::ACCEPT, "application/json").form(form);
        read_json(req.send().await).await
    }
}

async fn read_json(sent: Result<reqwest::Response, reqwest::Error>) -> Result<Value, ProviderError> {
    let mut resp = sent.map_err(|e| ProviderError::Unreachable(without_url(&e)))?;
    let status = resp.status();
    if resp.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(ProviderError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ProviderError::Unreachable(without_url(&e)))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ProviderError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let value: Option<Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        let error = value.as_ref().and_then(|v| v.get("error")).and_then(Value::as_str).map(str::to_owned);
        return Err(ProviderError::Status { status: status.as_u16(), error });
    }
    value.ok_or_else(|| ProviderError::Invalid("not JSON".into()))
}

/// A reqwest error without its URL (which may carry a code or a token).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    match e.url().and_then(|u| u.host_str()) {
        Some(host) => format!("{kind} ({host})"),
        None => kind.to_owned(),
    }
}
