//! Running a `node --test` suite against a harness server.

use std::path::Path;

use super::TestServer;

/// Installs a package's pinned npm dependencies (`npm ci`) when any
/// dependency named in its `package.json` is missing from `node_modules`
/// (a fresh clone, or a pin added since the last install).
pub fn npm_ci_if_missing(dir: &Path) {
    let manifest: serde_json::Value = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let deps = ["dependencies", "devDependencies"].into_iter().filter_map(|k| manifest.get(k)?.as_object()).flat_map(|m| m.keys());
    let mut missing = deps.filter(|d| !dir.join("node_modules").join(d).join("package.json").exists()).peekable();
    if missing.peek().is_some() || !dir.join("node_modules").exists() {
        let st = std::process::Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir).status().expect("npm runs");
        assert!(st.success(), "npm ci failed in {}", dir.display());
    }
}

/// Runs `node --test` on `files` in `dir`, with the server's URL, keys and
/// database URL in the environment; asserts that every test passed and
/// prints the node report into cargo's output.
pub async fn run_suite(dir: &Path, files: &[String], s: &TestServer, what: &str) {
    run_suite_with(dir, files, s, what, &[]).await
}

/// [`run_suite`] with more environment variables.
pub async fn run_suite_with(dir: &Path, files: &[String], s: &TestServer, what: &str, env: &[(&str, &str)]) {
    assert!(!files.is_empty(), "no tests for {what}");
    let out = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .args(files)
        .current_dir(dir)
        .env("FLUXBASE_URL", &s.url)
        .env("FLUXBASE_ANON_KEY", &s.keys.anon)
        .env("FLUXBASE_SERVICE_KEY", &s.keys.service_role)
        .env("FLUXBASE_JWT_SECRET", s.keys.secret())
        .env("FLUXBASE_DB_URL", &s.db.url)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("node runs");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed");
}

/// The `*.test.mjs` files of `dir` (sorted), each prefixed with `prefix`.
pub fn test_files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".test.mjs"))
                .map(|n| format!("{prefix}{n}"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
