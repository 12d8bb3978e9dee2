//! The TypeScript SDK (`sdk-ts/`, `@fluxbase/client`): built with `tsc`, then
//! its `node --test` suite runs against a harness server and PostgreSQL.
//! Installs the pinned packages (`npm ci`) when `sdk-ts/node_modules` is missing.
//! A second test kills the server (`kill -9`) under a live subscription and
//! restarts it: the subscription must resume with nothing lost or repeated.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::server::TestProcess;
use crate::harness::{TestDatabase, TestServer, TEST_JWT_SECRET};

/// Installs (when missing) and builds the SDK, once per test binary.
fn built_sdk() -> PathBuf {
    static BUILD: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-ts");
    let mut built = BUILD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*built {
        if !dir.join("node_modules/@supabase/supabase-js").is_dir() || !dir.join("node_modules/typescript").is_dir() {
            let st = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().expect("npm runs");
            assert!(st.success(), "npm ci failed in {}", dir.display());
        }
        let st = Command::new("npm").args(["run", "build", "--silent"]).current_dir(&dir).status().expect("npm runs");
        assert!(st.success(), "tsc failed in {}", dir.display());
        *built = true;
    }
    dir
}

#[tokio::test]
async fn sdk_ts_suite() {
    let dir = built_sdk();
    let s = TestServer::start().await;
    let files = crate::harness::node::test_files(&dir.join("test"), "test/");
    crate::harness::node::run_suite(&dir, &files, &s, "the SDK suite").await;
    s.shutdown().await;
}

#[tokio::test]
async fn sdk_resumes_across_kill_9() {
    let dir = built_sdk();
    let db = TestDatabase::fresh().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("fb");
    let env = [("FLUXBASE_JWT_SECRET", TEST_JWT_SECRET)];
    let args = ["--database-url", db.url.as_str()];
    let mut server = TestProcess::spawn(&data, &args, &env);
    server.wait_healthy(Duration::from_secs(60)).await;
    let keys = fluxbase::keys::Keys::from_secret(TEST_JWT_SECRET.into()).expect("keys");

    let mut node = tokio::process::Command::new("node")
        .arg("test/restart.mjs")
        .current_dir(&dir)
        .env("FLUXBASE_URL", &server.url)
        .env("FLUXBASE_SERVICE_KEY", &keys.service_role)
        .env("FLUXBASE_DB_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut killed = false;
    let mut last = String::new();
    let read_all = async {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("restart.mjs: {line}");
            // Kill the server once the subscription has received a few changes, mid-stream.
            if !killed && line.starts_with("received ") && line.trim_start_matches("received ").parse::<u32>().is_ok_and(|n| n >= 30) {
                server.signal(Signal::SIGKILL);
                server.wait_exit(Duration::from_secs(10)).await;
                let port: u16 = server.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
                tokio::time::sleep(Duration::from_millis(500)).await;
                server = TestProcess::spawn_on(port, &data, &args, &env);
                server.wait_healthy(Duration::from_secs(60)).await;
                killed = true;
            }
            last = line;
        }
    };
    tokio::time::timeout(Duration::from_secs(240), read_all).await.expect("restart.mjs finished in time");
    let status = node.wait().await.expect("node exits");
    assert!(killed, "the server was never killed (last line: {last})");
    assert!(status.success() && last.starts_with("ok"), "restart.mjs failed: {last}");
    server.signal(Signal::SIGTERM);
    server.wait_exit(Duration::from_secs(30)).await;
}
