//! The JavaScript suite: the real `@supabase/supabase-js` from npm, driven by
//! `node --test`, against a harness server. Installs the pinned packages
//! (`npm ci`) when `tests/js/node_modules` is missing.

use std::path::Path;
use std::process::Command;

use crate::harness::{TestDatabase, TestServer};

#[tokio::test]
async fn supabase_js_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !dir.join("node_modules/@supabase/supabase-js").is_dir() {
        let st = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().expect("npm runs");
        assert!(st.success(), "npm ci failed in {}", dir.display());
    }
    // Local-Supabase defaults, plus anonymous sign-ins (off by default, as
    // in Supabase) and rate limits high enough for a whole suite from one IP.
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.enable_anonymous_sign_ins = true;
        c.auth.rate_limit_sign_in_sign_ups = 10_000;
        c.auth.rate_limit_token_refresh = 10_000;
        c.auth.rate_limit_token_verifications = 10_000;
        c.auth.rate_limit_anonymous_users = 10_000;
        c.auth.rate_limit_email_sent = 10_000;
    })
    .await;
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/js")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.mjs"))
        .collect();
    assert!(!files.is_empty(), "no JS tests found");
    let out = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .args(&files)
        .current_dir(&dir)
        .env("FLUXBASE_URL", &s.url)
        .env("FLUXBASE_ANON_KEY", &s.keys.anon)
        .env("FLUXBASE_SERVICE_KEY", &s.keys.service_role)
        .env("FLUXBASE_JWT_SECRET", s.keys.secret())
        .env("FLUXBASE_DB_URL", &s.db.url)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Show the node report in cargo's output.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "JS suite failed");
    s.shutdown().await;
}
