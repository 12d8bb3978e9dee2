//! [`EmbeddedCluster`]: prepares, starts and supervises the embedded cluster.
//!
//! One dedicated OS thread owns the `postgres` child for its whole life (the
//! parent-death signal is tied to the thread that spawned the child). It
//! waits for readiness, restarts the server with backoff if it dies, and on
//! [`EmbeddedCluster::stop`] (or drop) performs a fast shutdown and waits for
//! the process to exit. Its state is published on a `watch` channel for
//! `/health`.

use std::process::Child;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::binaries::Binaries;
use super::layout::{ClusterLayout, ClusterUser};
use super::postmaster::{self, Settings};
use super::{initdb, log_tail, pidfile, EmbeddedError};
use crate::config::EmbeddedConfig;
use crate::datadir::DataDir;

/// File in the data directory holding the superuser's password.
pub const PASSWORD_FILE: &str = "pg_password";

/// What the supervised cluster is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// Starting, not yet accepting connections.
    Starting,
    /// Accepting connections.
    Running,
    /// Died and is being restarted (attempt number).
    Restarting(u32),
    /// Stopped on request.
    Stopped,
}

impl ClusterState {
    /// A short word for `/health`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClusterState::Starting => "starting",
            ClusterState::Running => "running",
            ClusterState::Restarting(_) => "restarting",
            ClusterState::Stopped => "stopped",
        }
    }
}

/// A running, supervised embedded cluster.
#[derive(Debug)]
pub struct EmbeddedCluster {
    layout: ClusterLayout,
    port: u16,
    password: String,
    state: watch::Receiver<ClusterState>,
    stop_tx: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedCluster {
    /// Creates the cluster if needed, starts it and waits until it accepts
    /// connections. Blocking: call it from `spawn_blocking`.
    pub fn start(config: &EmbeddedConfig, data_dir: &DataDir) -> Result<EmbeddedCluster, EmbeddedError> {
        let bins = Binaries::find(&config.bin_dir)?;
        let user = ClusterUser::detect()?;
        let layout = ClusterLayout::resolve(data_dir, &user)?;
        if layout.relocated {
            tracing::info!(path = %layout.base.display(), "cluster placed outside the data directory (the cluster user cannot reach it)");
        }
        let password = data_dir.secret(PASSWORD_FILE, || hex::encode(rand::random::<[u8; 16]>()))?;
        if !initdb::is_initialized(&layout) {
            tracing::info!(pgdata = %layout.pgdata.display(), user = %user.name, "creating the embedded PostgreSQL cluster");
            initdb::run(&bins, &layout, &user, &password)?;
        }
        match pidfile::recover(&layout.pgdata)? {
            pidfile::Recovery::Clean => {}
            other => tracing::warn!(?other, "recovered from a previous unclean stop"),
        }
        let port = choose_port(config.port, layout.last_port);
        layout.record(data_dir, port)?;
        let settings = Settings {
            port,
            fsync: config.fsync,
            max_connections: config.max_connections,
            shared_buffers: config.shared_buffers.clone(),
        };
        let timeout = Duration::from_secs(config.start_timeout_secs);
        let (state_tx, state_rx) = watch::channel(ClusterState::Starting);
        let (stop_tx, stop_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let sup = Supervisor { bins, layout: layout.clone(), user, settings, timeout, state: state_tx };
        let thread = std::thread::Builder::new()
            .name("pg-supervisor".into())
            .spawn(move || sup.run(stop_rx, ready_tx))
            .map_err(|e| EmbeddedError::Supervisor(e.to_string()))?;
        let cluster = EmbeddedCluster {
            layout,
            port,
            password,
            state: state_rx,
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(cluster),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(EmbeddedError::Supervisor("supervisor thread ended during start".into())),
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the cluster lives.
    pub fn layout(&self) -> &ClusterLayout {
        &self.layout
    }

    /// A superuser URL over loopback TCP.
    pub fn superuser_url(&self) -> String {
        format!("postgres://{}:{}@127.0.0.1:{}/postgres", initdb::SUPERUSER, self.password, self.port)
    }

    /// A superuser URL over the cluster's Unix-domain socket, when the
    /// socket exists (PostgreSQL skips a socket whose path is too long).
    /// Cheaper than loopback TCP for both sides: the server's own pools
    /// use it.
    pub fn socket_url(&self) -> Option<String> {
        let dir = &self.layout.socket_dir;
        if !dir.join(format!(".s.PGSQL.{}", self.port)).exists() {
            return None;
        }
        let dir = dir.to_str()?;
        let host = percent_encoding::utf8_percent_encode(dir, percent_encoding::NON_ALPHANUMERIC);
        Some(format!("postgres://{}:{}@/postgres?host={host}&port={}", initdb::SUPERUSER, self.password, self.port))
    }

    /// The live state, for health reporting.
    pub fn state(&self) -> watch::Receiver<ClusterState> {
        self.state.clone()
    }

    /// Fast shutdown; returns when the server process has exited. Blocking.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The configured port, else the last one if it is still free, else any free one.
fn choose_port(configured: u16, last: u16) -> u16 {
    if configured != 0 {
        return configured;
    }
    if last != 0 && std::net::TcpListener::bind(("127.0.0.1", last)).is_ok() {
        return last;
    }
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(54322)
}

struct Supervisor {
    bins: Binaries,
    layout: ClusterLayout,
    user: ClusterUser,
    settings: Settings,
    timeout: Duration,
    state: watch::Sender<ClusterState>,
}

/// How the supervisor's wait for a child ended.
enum Waited {
    Stop,
    Exited(String),
}

impl Supervisor {
    fn run(self, stop: mpsc::Receiver<()>, ready: mpsc::Sender<Result<(), EmbeddedError>>) {
        let mut child = match self.start_once(&stop) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let _ = ready.send(Err(EmbeddedError::Supervisor("stopped during start".into())));
                return;
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        self.state.send_replace(ClusterState::Running);
        let _ = ready.send(Ok(()));
        let mut attempt = 0u32;
        loop {
            match self.wait(&mut child, &stop) {
                Waited::Stop => break,
                Waited::Exited(status) => {
                    attempt += 1;
                    tracing::error!(%status, attempt, log = %self.layout.log_file.display(), "PostgreSQL exited unexpectedly; restarting");
                    self.state.send_replace(ClusterState::Restarting(attempt));
                    let backoff = Duration::from_millis(250 * 2u64.pow(attempt.min(7)));
                    if stop.recv_timeout(backoff.min(Duration::from_secs(30))).is_ok() {
                        self.state.send_replace(ClusterState::Stopped);
                        return;
                    }
                    match self.start_once(&stop) {
                        Ok(Some(c)) => {
                            child = c;
                            attempt = 0;
                            tracing::info!("PostgreSQL restarted");
                            self.state.send_replace(ClusterState::Running);
                        }
                        Ok(None) => {
                            self.state.send_replace(ClusterState::Stopped);
                            return;
                        }
                        Err(e) => tracing::error!(error = %e, "restart failed; will retry"),
                    }
                }
            }
        }
        postmaster::stop(&mut child, Duration::from_secs(30));
        self.state.send_replace(ClusterState::Stopped);
        tracing::info!("PostgreSQL stopped");
    }

    /// Recovers the pid file, spawns, and waits for readiness. `None` if asked to stop meanwhile.
    fn start_once(&self, stop: &mpsc::Receiver<()>) -> Result<Option<Child>, EmbeddedError> {
        pidfile::recover(&self.layout.pgdata)?;
        let mut child = postmaster::spawn(&self.bins, &self.layout, &self.user, &self.settings)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(EmbeddedError::ExitedAtStart {
                    status: status.to_string(),
                    log: self.layout.log_file.clone(),
                    tail: log_tail(&self.layout.log_file, 20),
                });
            }
            if postmaster::is_ready(&self.bins, &self.layout, self.settings.port) {
                return Ok(Some(child));
            }
            if Instant::now() > deadline {
                postmaster::stop(&mut child, Duration::from_secs(5));
                return Err(EmbeddedError::StartTimeout {
                    secs: self.timeout.as_secs(),
                    log: self.layout.log_file.clone(),
                    tail: log_tail(&self.layout.log_file, 20),
                });
            }
            if stop.recv_timeout(Duration::from_millis(100)).is_ok() {
                postmaster::stop(&mut child, Duration::from_secs(30));
                return Ok(None);
            }
        }
    }

    fn wait(&self, child: &mut Child, stop: &mpsc::Receiver<()>) -> Waited {
        loop {
            match stop.recv_timeout(Duration::from_millis(200)) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return Waited::Stop,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            match child.try_wait() {
                Ok(Some(status)) => return Waited::Exited(status.to_string()),
                Ok(None) => {}
                Err(e) => return Waited::Exited(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_port_wins() {
        assert_eq!(choose_port(5555, 6666), 5555);
    }

    #[test]
    fn busy_last_port_is_replaced() {
        let held = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let busy = held.local_addr().expect("addr").port();
        let p = choose_port(0, busy);
        assert_ne!(p, busy);
        assert_ne!(p, 0);
    }
}
