//! Reapers: a shell in its own process group that runs `script` and waits on
//! a pipe from the test process; when the test process exits (however it
//! exits) the pipe closes and the script's cleanup runs. The caller keeps
//! the returned child (and so the pipe) alive for the whole test run.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// Starts `sh -c script args...`; `script` must read stdin to EOF (`cat >/dev/null`) before cleaning up.
pub fn spawn(script: &str, args: &[&OsStr]) -> Result<Child, String> {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| e.to_string())
}
