//! Creating the cluster on first start with `initdb`.
//!
//! The superuser is `postgres` with a generated password (kept in the data
//! directory, mode 0600); local and host connections, replication included,
//! use SCRAM-SHA-256. Encoding UTF8, locale C, so behaviour does not depend
//! on the machine's locale.

use std::process::{Command, Stdio};

use super::binaries::Binaries;
use super::layout::{ClusterLayout, ClusterUser};
use super::EmbeddedError;

/// The cluster's superuser.
pub const SUPERUSER: &str = "postgres";

/// Whether `initdb` has already run in this layout.
pub fn is_initialized(layout: &ClusterLayout) -> bool {
    layout.pgdata.join("PG_VERSION").is_file()
}

/// Runs `initdb` as the cluster user.
pub fn run(bins: &Binaries, layout: &ClusterLayout, user: &ClusterUser, password: &str) -> Result<(), EmbeddedError> {
    // initdb reads the password from a file the cluster user can read; it
    // lives in the user's own 0700 socket directory and is removed at once.
    let pwfile = layout.socket_dir.join(".initdb-pw");
    crate::datadir::write_private(&pwfile, password.as_bytes())
        .map_err(|source| EmbeddedError::Io { what: "cannot write", path: pwfile.clone(), source })?;
    user.chown(&pwfile)?;
    let mut cmd = Command::new(bins.program("initdb"));
    cmd.arg("-D")
        .arg(&layout.pgdata)
        .args(["-U", SUPERUSER, "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdin(Stdio::null());
    user.apply(&mut cmd);
    let out = cmd.output();
    let _ = std::fs::remove_file(&pwfile);
    let out = out.map_err(|source| EmbeddedError::Io { what: "cannot run", path: bins.program("initdb"), source })?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        return Err(EmbeddedError::Program {
            program: "initdb".into(),
            status: out.status.to_string(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(())
}
