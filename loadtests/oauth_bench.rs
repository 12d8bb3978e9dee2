//! OAuth load test: `signInWithIdToken` sign-ins/s (RS256 ID token verified
//! against a provider's cached JWKS, identity found, session made) beside
//! token refreshes/s (one prepared statement: the cheapest sign-in-shaped
//! request) in the same run, plus in-process RS256 ID-token and HS256
//! access-token verifications/s.
//!
//! ```text
//! cargo run --release --example oauth_bench            # 5 s per scenario
//! cargo run --release --example oauth_bench -- --quick # 1 s per scenario
//! ```
//!
//! Starts a minimal OpenID provider (discovery + JWKS) and a server on an
//! embedded cluster in a temporary directory (fsync off, rate limits off),
//! on loopback only; every loop is bounded in time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fluxbase::auth::config::ExternalProvider;
#[path = "bench_common.rs"]
mod common;

use common::{drive, per_second};
use fluxbase::server::RunningServer;
use http_body_util::Full;
use serde_json::{json, Value};

const KEY: &str = include_str!("../tests/harness/keys/oidc_a.pem");

/// Serves discovery and the JWKS for `issuer` on `listener`.
fn serve_idp(listener: tokio::net::TcpListener, issuer: String, jwk: Value) {
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    })
    .to_string();
    let jwks = json!({ "keys": [jwk] }).to_string();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (discovery, jwks) = (discovery.clone(), jwks.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let body = if req.uri().path() == "/jwks" { jwks.clone() } else { discovery.clone() };
                    async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
            });
        }
    });
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs = if quick { 1.0 } else { 5.0 };
    let clients = 32;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("addr"));
    let key = fluxbase::keys::SigningKey::from_pem(KEY).expect("key");
    serve_idp(listener, issuer.clone(), key.jwk.clone());
    let der = {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        rsa::RsaPrivateKey::from_pkcs8_pem(KEY).expect("rsa").to_pkcs1_der().expect("der")
    };
    let encoding = jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // One provider user per client (one user signing in 32 times at once
    // would measure the lock on its rows).
    let id_tokens: Vec<String> = (0..clients)
        .map(|i| {
            let claims = json!({"iss": issuer, "sub": format!("bench-sub-{i}"), "aud": "bench",
                                "email": format!("idtoken-{i}@example.com"), "email_verified": true, "iat": now, "exp": now + 3600});
            jsonwebtoken::encode(&header, &claims, &encoding).expect("sign")
        })
        .collect();
    let id_token = id_tokens[0].clone();

    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = common::config(dir.path());
    config.auth.external.insert(
        "acme".into(),
        ExternalProvider { client_id: "bench".into(), secret: "s".into(), issuer: issuer.clone(), ..ExternalProvider::default() },
    );
    let server = RunningServer::start(config).await.expect("server starts");
    let url = server.api_url().to_owned();
    let keys = server.state().keys.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");

    // One sign-in makes the user; then one session per client for refreshes.
    let grant = |http: reqwest::Client, url: String, anon: String, token: String| async move {
        http.post(format!("{url}/auth/v1/token?grant_type=id_token"))
            .header("apikey", &anon)
            .json(&json!({"provider": "acme", "id_token": token}))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
    };
    let mut tokens = Vec::new();
    let mut access = String::new();
    for token in &id_tokens {
        let r = grant(http.clone(), url.clone(), keys.anon.clone(), token.clone()).await.expect("first id_token sign-in");
        let v: Value = r.json().await.expect("json");
        access = v["access_token"].as_str().unwrap_or_default().to_owned();
        tokens.push(tokio::sync::Mutex::new(v["refresh_token"].as_str().unwrap_or_default().to_owned()));
    }

    let id_sign_in = {
        let (http, url, anon, id_tokens) = (http.clone(), url.clone(), keys.anon.clone(), Arc::new(id_tokens));
        drive(clients, secs, move |i| {
            let f = grant(http.clone(), url.clone(), anon.clone(), id_tokens.get(i).cloned().unwrap_or_default());
            async move { f.await.is_some() }
        })
        .await
    };

    let tokens = Arc::new(tokens);
    let refresh = {
        let (http, url, anon) = (http.clone(), url.clone(), keys.anon.clone());
        drive(clients, secs, move |i| {
            let (http, url, anon, tokens) = (http.clone(), url.clone(), anon.clone(), Arc::clone(&tokens));
            async move {
                let Some(slot) = tokens.get(i) else { return false };
                common::refresh(&http, &url, &anon, slot).await
            }
        })
        .await
    };

    // In-process verification costs, on one core.
    let oauth = fluxbase::auth::oauth::Oauth::new().expect("http client");
    let rs256 = {
        let verify_once = || fluxbase::auth::oauth::id_token::verify(&oauth.http, &oauth.cache, &issuer, &["bench"], &id_token);
        let _ = verify_once().await; // warm the cache
        let deadline = Instant::now() + Duration::from_secs_f64(secs.min(2.0));
        let started = Instant::now();
        let mut n = 0u64;
        while Instant::now() < deadline {
            if verify_once().await.is_ok() {
                n += 1;
            }
        }
        n as f64 / started.elapsed().as_secs_f64()
    };
    let hs256 = per_second(secs.min(2.0), || keys.verify(&access).is_ok());

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    println!("OAuth load test ({cores} cores, {secs} s per scenario, {clients} clients, fsync=off)");
    println!("| scenario | figure | baseline (same run) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| ID-token sign-ins/s (`grant_type=id_token`, RS256) | {:.0} ({} failed) | token refreshes/s {:.0} ({} failed) | {:.2} |",
        id_sign_in.0,
        id_sign_in.1,
        refresh.0,
        refresh.1,
        id_sign_in.0 / refresh.0.max(1e-9)
    );
    println!("| RS256 ID-token verifications/s (1 core, cached JWKS) | {rs256:.0} | HS256 access-token verifications/s {hs256:.0} | {:.3} |", rs256 / hs256.max(1e-9));
    server.shutdown().await;
}
