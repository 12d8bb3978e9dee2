//! A real OpenID Connect provider on loopback, for the OAuth tests: an HTTP
//! server with discovery, a JWKS of RS256 keys, an `/authorize` that
//! approves at once and redirects back with a code, `/token` (ID tokens
//! signed with its key), `/userinfo`, and GitHub's shapes (`/login/oauth/*`,
//! `/user`, `/user/emails`). It is a fixture standing in for Google or
//! GitHub, not a mock of anything Fluxbase owns.
//!
//! Who signs in is chosen by the `login_hint` the client passes through
//! `/authorize` (supabase-js `queryParams`): `alice@example.com` (verified),
//! `alice@example.com|unverified`, or `deny` (the provider answers
//! `error=access_denied`). `fixture_nonce` replaces the nonce put in the
//! ID token. `POST /fixture/id_token` mints ID tokens for the `id_token`
//! grant (any issuer, audience, nonce, expiry, or signed by a key not
//! published); `POST /fixture/rotate` publishes a second key and signs with it.
//! The issuer `<url>/huge` answers discovery with 1 MiB (a hostile provider).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

const KEY_A: &str = include_str!("keys/oidc_a.pem");
const KEY_B: &str = include_str!("keys/oidc_b.pem");

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl Key {
    fn load(pem: &str) -> Key {
        let sk = fluxbase::keys::SigningKey::from_pem(pem).expect("fixture key");
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let der = rsa::RsaPrivateKey::from_pkcs8_pem(pem).and_then(|k| Ok(k.to_pkcs1_der()?)).expect("rsa key");
        Key { kid: sk.kid.clone(), encoding: EncodingKey::from_rsa_der(der.as_bytes()), jwk: sk.jwk.clone() }
    }
}

#[derive(Clone, Debug)]
struct Profile {
    email: String,
    verified: bool,
}

impl Profile {
    fn sub(&self) -> String {
        format!("sub-{}", self.email)
    }
    /// GitHub ids are numbers.
    fn github_id(&self) -> u64 {
        self.email.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 1_000_000_000
    }
    fn claims(&self) -> Value {
        json!({ "sub": self.sub(), "email": self.email, "email_verified": self.verified, "name": format!("Name of {}", self.email) })
    }
}

struct Grant {
    profile: Profile,
    nonce: Option<String>,
    client_id: String,
    redirect_uri: String,
}

struct State {
    url: String,
    keys: Vec<Key>,
    /// How many of `keys` are published; the last published one signs.
    published: usize,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Profile>,
    counter: u64,
}

/// The running provider.
pub struct OidcProvider {
    /// Its base URL (also the issuer).
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The client secret the fixture expects for `client_id`.
pub fn secret_for(client_id: &str) -> String {
    format!("secret-{client_id}")
}

impl OidcProvider {
    /// Starts the provider on a free loopback port.
    pub async fn start() -> OidcProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State {
            url: url.clone(),
            keys: vec![Key::load(KEY_A), Key::load(KEY_B)],
            published: 1,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            counter: 0,
        }));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        });
        OidcProvider { url, task }
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut().insert(hyper::header::LOCATION, location.parse().expect("location"));
    r
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn sign(st: &State, key: usize, claims: &Value) -> String {
    sign_as(st, key, key, claims)
}

/// Signs with key `key` under the `kid` of key `named`.
fn sign_as(st: &State, key: usize, named: usize, claims: &Value) -> String {
    let k = &st.keys[key];
    let mut h = Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(st.keys[named].kid.clone());
    jsonwebtoken::encode(&h, claims, &k.encoding).expect("sign")
}

async fn handle(state: Arc<Mutex<State>>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = serde_urlencoded::from_str(req.uri().query().unwrap_or("")).unwrap_or_default();
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::to_owned);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut st = state.lock().expect("fixture state");
    match (method.as_str(), path.as_str()) {
        ("GET", "/.well-known/openid-configuration") => reply(
            StatusCode::OK,
            json!({
                "issuer": st.url,
                "authorization_endpoint": format!("{}/authorize", st.url),
                "token_endpoint": format!("{}/token", st.url),
                "userinfo_endpoint": format!("{}/userinfo", st.url),
                "jwks_uri": format!("{}/jwks", st.url),
                "id_token_signing_alg_values_supported": ["RS256"],
            }),
        ),
        // A hostile issuer: a discovery document of 1 MiB.
        // (Valid but for its size: without the limit, `/authorize` would succeed.)
        ("GET", "/huge/.well-known/openid-configuration") => reply(
            StatusCode::OK,
            json!({
                "issuer": format!("{}/huge", st.url),
                "authorization_endpoint": format!("{}/authorize", st.url),
                "token_endpoint": format!("{}/token", st.url),
                "jwks_uri": format!("{}/jwks", st.url),
                "padding": "x".repeat(1 << 20),
            }),
        ),
        ("GET", "/jwks") => reply(StatusCode::OK, json!({ "keys": st.keys[..st.published].iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })),
        ("GET", "/authorize") | ("GET", "/login/oauth/authorize") => {
            let redirect_uri = query.get("redirect_uri").cloned().unwrap_or_default();
            let state_param = query.get("state").cloned().unwrap_or_default();
            let hint = query.get("login_hint").cloned().unwrap_or_else(|| "user@example.com".into());
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            if hint == "deny" {
                let q = serde_urlencoded::to_string([("error", "access_denied"), ("error_description", "The user denied access"), ("state", &state_param)]).unwrap_or_default();
                return redirect(&format!("{redirect_uri}{sep}{q}"));
            }
            let (email, verified) = match hint.split_once('|') {
                Some((e, "unverified")) => (e.to_owned(), false),
                _ => (hint.clone(), true),
            };
            st.counter += 1;
            let code = format!("code-{}-{}", st.counter, now());
            let nonce = query.get("fixture_nonce").or_else(|| query.get("nonce")).cloned();
            st.codes.insert(
                code.clone(),
                Grant { profile: Profile { email, verified }, nonce, client_id: query.get("client_id").cloned().unwrap_or_default(), redirect_uri: redirect_uri.clone() },
            );
            let q = serde_urlencoded::to_string([("code", code.as_str()), ("state", state_param.as_str())]).unwrap_or_default();
            redirect(&format!("{redirect_uri}{sep}{q}"))
        }
        ("POST", "/token") | ("POST", "/login/oauth/access_token") => {
            let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let code = form.get("code").cloned().unwrap_or_default();
            let Some(grant) = st.codes.remove(&code) else {
                return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": "unknown or used code"}));
            };
            let client_id = form.get("client_id").cloned().unwrap_or_default();
            if client_id != grant.client_id || form.get("client_secret") != Some(&secret_for(&client_id)) {
                return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
            }
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": "redirect_uri mismatch"}));
            }
            let access = format!("at-{code}");
            st.tokens.insert(access.clone(), grant.profile.clone());
            let mut claims = grant.profile.claims();
            claims["iss"] = json!(st.url);
            claims["aud"] = json!(client_id);
            claims["iat"] = json!(now());
            claims["exp"] = json!(now() + 600);
            if let Some(n) = grant.nonce {
                claims["nonce"] = json!(n);
            }
            let id_token = sign(&st, st.published - 1, &claims);
            reply(StatusCode::OK, json!({"access_token": access, "token_type": "bearer", "expires_in": 600, "refresh_token": format!("rt-{code}"), "id_token": id_token, "scope": "openid email"}))
        }
        ("GET", "/userinfo") | ("GET", "/user") | ("GET", "/user/emails") => {
            let Some(p) = bearer.and_then(|t| st.tokens.get(&t).cloned()) else {
                return reply(StatusCode::UNAUTHORIZED, json!({"message": "Bad credentials"}));
            };
            match path.as_str() {
                "/userinfo" => reply(StatusCode::OK, p.claims()),
                "/user" => reply(
                    StatusCode::OK,
                    json!({"id": p.github_id(), "login": p.email.split('@').next().unwrap_or(""), "name": format!("Name of {}", p.email), "email": null, "avatar_url": "https://avatars.example/1"}),
                ),
                _ => reply(StatusCode::OK, json!([{"email": "other@example.net", "primary": false, "verified": true}, {"email": p.email, "primary": true, "verified": p.verified}])),
            }
        }
        ("POST", "/fixture/id_token") => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let email = v.get("email").and_then(Value::as_str).unwrap_or("user@example.com").to_owned();
            let profile = Profile { email, verified: v.get("email_verified").and_then(Value::as_bool).unwrap_or(true) };
            let mut claims = profile.claims();
            claims["iss"] = v.get("iss").cloned().unwrap_or(json!(st.url));
            claims["aud"] = v.get("aud").cloned().unwrap_or(json!("client-id"));
            claims["iat"] = json!(now());
            claims["exp"] = json!(now() + v.get("exp_in").and_then(Value::as_i64).unwrap_or(600));
            if let Some(n) = v.get("nonce") {
                claims["nonce"] = n.clone();
            }
            // `unpublished`: signed by a key the JWKS does not list (yet).
            let key = if v.get("unpublished").and_then(Value::as_bool) == Some(true) { st.published } else { st.published - 1 };
            let key = key.min(st.keys.len() - 1);
            // `forged`: names the published key but is signed by the other one.
            let token = if v.get("forged").and_then(Value::as_bool) == Some(true) {
                sign_as(&st, (st.published) % st.keys.len(), st.published - 1, &claims)
            } else {
                sign(&st, key, &claims)
            };
            reply(StatusCode::OK, json!({"id_token": token, "sub": profile.sub()}))
        }
        ("POST", "/fixture/rotate") => {
            st.published = st.keys.len();
            reply(StatusCode::OK, json!({"kid": st.keys[st.published - 1].kid}))
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "not_found"})),
    }
}
