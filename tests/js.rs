//! The JavaScript suite: the real `@supabase/supabase-js` from npm, driven by
//! `node --test`, against a harness server. Installs the pinned packages
//! (`npm ci`) when any of them is missing from `tests/js/node_modules`.

use std::path::Path;

use crate::harness::{TestDatabase, TestServer};

#[tokio::test]
async fn supabase_js_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    crate::harness::node::npm_ci_if_missing(&dir);
    // Local-Supabase defaults, plus execution plans (`.explain()`), anonymous sign-ins (off by default, as
    // in Supabase) and rate limits high enough for a whole suite from one IP.
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.enable_anonymous_sign_ins = true;
        c.auth.rate_limit_sign_in_sign_ups = 10_000;
        c.auth.rate_limit_token_refresh = 10_000;
        c.auth.rate_limit_token_verifications = 10_000;
        c.auth.rate_limit_anonymous_users = 10_000;
        c.auth.rate_limit_email_sent = 10_000;
        c.rest.plan_enabled = true;
    })
    .await;
    // OAuth needs its provider fixture: tests/oauth.rs runs that file.
    let files: Vec<String> = crate::harness::node::test_files(&dir, "").into_iter().filter(|f| !f.starts_with("oauth")).collect();
    crate::harness::node::run_suite(&dir, &files, &s, "the supabase-js suite").await;
    s.shutdown().await;
}
