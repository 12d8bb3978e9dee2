//! OAuth / OpenID Connect against a real provider on loopback
//! (`harness::oidc`): the supabase-js suite `tests/js/oauth.test.mjs`.

use std::path::Path;

use fluxbase::auth::config::ExternalProvider;

use crate::harness::oidc::{secret_for, OidcProvider};
use crate::harness::{TestDatabase, TestServer};

#[tokio::test]
async fn oauth_js_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    crate::harness::node::npm_ci_if_missing(&dir);
    let idp = OidcProvider::start().await;
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.rate_limit_sign_in_sign_ups = 10_000;
        c.auth.rate_limit_token_refresh = 10_000;
        c.auth.additional_redirect_urls = "http://app.test/*".into();
        c.auth.manual_linking_enabled = true;
        let provider = |client_id: &str| ExternalProvider {
            client_id: client_id.into(),
            secret: secret_for(client_id.split(',').next().unwrap_or("")),
            ..ExternalProvider::default()
        };
        c.auth.external.insert("github".into(), ExternalProvider { url: idp.url.clone(), api_url: idp.url.clone(), ..provider("client-github") });
        c.auth.external.insert("google".into(), ExternalProvider { issuer: idp.url.clone(), ..provider("client-google") });
        c.auth.external.insert("acme".into(), ExternalProvider { issuer: idp.url.clone(), ..provider("client-acme,client-acme-ios") });
        // Nothing listens on port 9 of loopback: an unreachable provider.
        c.auth.external.insert("dead".into(), ExternalProvider { issuer: "http://127.0.0.1:9".into(), ..provider("client-dead") });
        c.auth.external.insert("huge".into(), ExternalProvider { issuer: format!("{}/huge", idp.url), ..provider("client-huge") });
    })
    .await;
    let files = vec!["oauth.test.mjs".to_owned()];
    crate::harness::node::run_suite_with(&dir, &files, &s, "the OAuth suite", &[("FLUXBASE_OIDC_URL", idp.url.as_str())]).await;
    s.shutdown().await;
}
