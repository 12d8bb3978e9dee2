//! Spawning and stopping the `postgres` server process.
//!
//! The child runs in its own process group (a terminal's Ctrl-C reaches
//! Fluxbase only, which then stops PostgreSQL in order) and carries a
//! parent-death signal (SIGQUIT: immediate shutdown), so a killed Fluxbase
//! never leaves a running cluster behind. The parent-death signal is bound to
//! the spawning *thread*, which is why only the supervisor's own long-lived
//! thread calls [`spawn`].

use std::fs::OpenOptions;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::binaries::Binaries;
use super::layout::{ClusterLayout, ClusterUser};
use super::EmbeddedError;

/// Server settings passed on the command line (`-c name=value`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// `fsync` (and `full_page_writes` with it).
    pub fsync: bool,
    /// `max_connections`.
    pub max_connections: u32,
    /// `shared_buffers`.
    pub shared_buffers: String,
}

impl Settings {
    /// The `-c` arguments: loopback only, logical WAL, enough slots and senders.
    pub fn args(&self, layout: &ClusterLayout) -> Vec<String> {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let pairs = [
            ("listen_addresses", "127.0.0.1".to_owned()),
            ("port", self.port.to_string()),
            ("unix_socket_directories", layout.socket_dir.display().to_string()),
            ("wal_level", "logical".into()),
            ("max_replication_slots", "16".into()),
            ("max_wal_senders", "16".into()),
            ("max_connections", self.max_connections.to_string()),
            ("shared_buffers", self.shared_buffers.clone()),
            ("fsync", on_off(self.fsync).into()),
            ("full_page_writes", on_off(self.fsync).into()),
            ("logging_collector", "off".into()),
            ("timezone", "UTC".into()),
            ("log_timezone", "UTC".into()),
        ];
        pairs.into_iter().flat_map(|(k, v)| ["-c".to_owned(), format!("{k}={v}")]).collect()
    }
}

/// Starts `postgres -D <pgdata>` as the cluster user, output appended to the log file.
#[allow(unsafe_code)]
pub fn spawn(
    bins: &Binaries,
    layout: &ClusterLayout,
    user: &ClusterUser,
    settings: &Settings,
) -> Result<Child, EmbeddedError> {
    use std::os::unix::process::CommandExt;
    let io_err = |what, source| EmbeddedError::Io { what, path: layout.log_file.clone(), source };
    let log = OpenOptions::new().create(true).append(true).open(&layout.log_file).map_err(|e| io_err("cannot open", e))?;
    let log2 = log.try_clone().map_err(|e| io_err("cannot open", e))?;
    let mut cmd = Command::new(bins.program("postgres"));
    cmd.arg("-D").arg(&layout.pgdata).args(settings.args(layout));
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2).process_group(0);
    user.apply(&mut cmd);
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Some(Signal::SIGQUIT)).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl.
            if nix::unistd::getppid().as_raw() != parent as i32 {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| EmbeddedError::Io { what: "cannot start", path: bins.program("postgres"), source })
}

/// Stops the server: fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL.
pub fn stop(child: &mut Child, grace: Duration) {
    let pid = Pid::from_raw(child.id() as i32);
    for (signal, wait) in [
        (Signal::SIGINT, grace),
        (Signal::SIGQUIT, Duration::from_secs(5)),
        (Signal::SIGKILL, Duration::from_secs(5)),
    ] {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = kill(pid, signal);
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(?signal, "PostgreSQL did not stop in time; escalating");
    }
}

/// Whether the server accepts connections, asked with `pg_isready` over the socket.
pub fn is_ready(bins: &Binaries, layout: &ClusterLayout, port: u16) -> bool {
    Command::new(bins.program("pg_isready"))
        .arg("-q")
        .arg("-h")
        .arg(&layout.socket_dir)
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
