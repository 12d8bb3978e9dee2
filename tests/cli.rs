//! The command line: version, configuration errors, status without a server.

use crate::harness::server::run_binary;

#[test]
fn version_prints_the_crate_version() {
    let out = run_binary(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("fluxbase {}", fluxbase::VERSION));
}

fn config_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run_binary(args, env);
    assert_eq!(out.status.code(), Some(2), "exit status for {args:?} {env:?}: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_exits_2_naming_key_value_and_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let m = config_error(&["serve", "--data-dir", d], &[("FLUXBASE_PORT", "eighty")]);
    assert!(m.contains("port") && m.contains("eighty") && m.contains("integer"), "{m}");
    let m = config_error(&["serve", "--data-dir", d], &[("FLUXBASE_LOG_FORMAT", "yaml")]);
    assert!(m.contains("log.format") && m.contains("yaml") && m.contains("auto, pretty, json"), "{m}");
    let m = config_error(&["serve", "--data-dir", d], &[("FLUXBASE_DATABASE_POOL_SIZE", "-3")]);
    assert!(m.contains("database.pool_size") && m.contains("-3"), "{m}");
    let m = config_error(&["serve", "--data-dir", d], &[("FLUXBASE_NOT_A_KEY", "1")]);
    assert!(m.contains("FLUXBASE_NOT_A_KEY"), "{m}");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[embedded]\nshared_buffers = \"lots\"\n").expect("write");
    let m = config_error(&["serve", "--data-dir", d, "--config", file.to_str().expect("utf-8")], &[]);
    assert!(m.contains("embedded.shared_buffers") && m.contains("lots"), "{m}");
    let m = config_error(&["serve", "--port", "99999"], &[]);
    assert!(m.contains("99999"), "{m}");
}

#[test]
fn status_without_a_server_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_binary(&["status", "--json", "--data-dir", dir.path().to_str().expect("utf-8")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server has run"), "{out:?}");
}

#[test]
fn unwritable_data_dir_is_one_clear_line() {
    let out = run_binary(&["serve", "--data-dir", "/proc/fluxbase-nope", "--port", "0"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/proc/fluxbase-nope") && err.contains("not writable"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
