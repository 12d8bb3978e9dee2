//! The TypeScript SDK (`sdk-ts/`, `@fluxbase/client`): built with `tsc`, then
//! its `node --test` suite runs against a harness server and PostgreSQL.
//! Installs the pinned packages (`npm ci`) when `sdk-ts/node_modules` is missing.

use std::path::Path;
use std::process::Command;

use crate::harness::TestServer;

#[tokio::test]
async fn sdk_ts_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-ts");
    if !dir.join("node_modules/@supabase/supabase-js").is_dir() || !dir.join("node_modules/typescript").is_dir() {
        let st = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().expect("npm runs");
        assert!(st.success(), "npm ci failed in {}", dir.display());
    }
    let st = Command::new("npm").args(["run", "build", "--silent"]).current_dir(&dir).status().expect("npm runs");
    assert!(st.success(), "tsc failed in {}", dir.display());
    let s = TestServer::start().await;
    let mut files: Vec<String> = std::fs::read_dir(dir.join("test"))
        .expect("sdk-ts/test")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.mjs"))
        .map(|n| format!("test/{n}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no SDK tests found");
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
    // Show the node report in cargo's output.
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "SDK suite failed");
    s.shutdown().await;
}
