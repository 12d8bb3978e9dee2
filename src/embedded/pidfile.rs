//! Recovery from a stale `postmaster.pid`.
//!
//! After a `kill -9` of Fluxbase the cluster's pid file may remain. If the
//! pid it names is gone, or is some other program that reused the number,
//! the file is removed so PostgreSQL can start. If it is still our own
//! orphaned postmaster (same data directory on its command line), it is
//! stopped: fast shutdown first, then immediate, then SIGKILL.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::EmbeddedError;

/// What [`recover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// No pid file.
    Clean,
    /// The pid file named a dead or foreign process and was removed.
    RemovedStale(i32),
    /// An orphaned postmaster of this cluster was stopped.
    StoppedOrphan(i32),
}

/// Makes the data directory startable: see the module documentation.
pub fn recover(pgdata: &Path) -> Result<Recovery, EmbeddedError> {
    let pidfile = pgdata.join("postmaster.pid");
    let text = match std::fs::read_to_string(&pidfile) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recovery::Clean),
        Err(source) => return Err(EmbeddedError::Io { what: "cannot read", path: pidfile, source }),
    };
    let pid = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()).unwrap_or(0);
    if pid > 0 && is_postmaster_of(pid, pgdata) {
        stop_orphan(pid, pgdata)?;
        // A stopped postmaster removes its pid file; make sure.
        let _ = std::fs::remove_file(&pidfile);
        return Ok(Recovery::StoppedOrphan(pid));
    }
    std::fs::remove_file(&pidfile).map_err(|source| EmbeddedError::Io { what: "cannot remove stale", path: pidfile, source })?;
    Ok(Recovery::RemovedStale(pid))
}

/// Whether `pid` is alive and is a postgres process serving `pgdata`.
fn is_postmaster_of(pid: i32, pgdata: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_postgres = args.first().is_some_and(|a| a.ends_with(b"postgres") || a.ends_with(b"postmaster"));
    let dir = pgdata.as_os_str().as_encoded_bytes();
    is_postgres && args.contains(&dir)
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

fn stop_orphan(pid: i32, pgdata: &Path) -> Result<(), EmbeddedError> {
    for (signal, wait) in [
        (Signal::SIGINT, Duration::from_secs(30)),
        (Signal::SIGQUIT, Duration::from_secs(10)),
        (Signal::SIGKILL, Duration::from_secs(10)),
    ] {
        tracing::warn!(pid, ?signal, "stopping an orphaned PostgreSQL left by a previous run");
        let _ = kill(Pid::from_raw(pid), signal);
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !alive(pid) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(EmbeddedError::Busy { pid, path: pgdata.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pidfile_is_clean() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(recover(dir.path()).expect("recover"), Recovery::Clean);
    }

    #[test]
    fn dead_or_foreign_pid_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("postmaster.pid");
        // Our own pid is alive but is not a postmaster of this directory.
        let me = std::process::id() as i32;
        std::fs::write(&file, format!("{me}\n{}\n", dir.path().display())).expect("write");
        assert_eq!(recover(dir.path()).expect("recover"), Recovery::RemovedStale(me));
        assert!(!file.exists());
        std::fs::write(&file, "garbage").expect("write");
        assert_eq!(recover(dir.path()).expect("recover"), Recovery::RemovedStale(0));
    }
}
