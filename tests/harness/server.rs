//! Fluxbase servers for tests: in-process on port 0 ([`TestServer`]), or the
//! real binary as a child process ([`TestProcess`]) for tests that kill it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fluxbase::config::{Config, Overrides};
use fluxbase::keys::Keys;
use fluxbase::server::RunningServer;

use super::database::TestDatabase;
use super::TEST_JWT_SECRET;

/// A server running inside the test process, on its own database.
pub struct TestServer {
    /// The server.
    pub server: Option<RunningServer>,
    /// Its base URL.
    pub url: String,
    /// Its keys.
    pub keys: Keys,
    /// Its database (dropped after the server).
    pub db: TestDatabase,
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    /// A server on a fresh database.
    pub async fn start() -> TestServer {
        TestServer::start_with(TestDatabase::fresh().await, |_| {}).await
    }

    /// A server on `db`, with `tweak` applied to its configuration.
    pub async fn start_with(db: TestDatabase, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut config = Config::load(
            None,
            Vec::new(),
            &Overrides {
                data_dir: Some(data_dir.path().to_owned()),
                host: Some("127.0.0.1".into()),
                port: Some(0),
                database_url: Some(db.url.clone()),
            },
        )
        .expect("test config");
        config.jwt.secret = TEST_JWT_SECRET.into();
        config.server.shutdown_grace_secs = 2;
        tweak(&mut config);
        let server = RunningServer::start(config).await.expect("server starts");
        let url = server.api_url().to_owned();
        let keys = server.state().keys.clone();
        TestServer { server: Some(server), url, keys, db, _data_dir: data_dir }
    }

    /// An HTTP client.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
    }

    /// `GET path` with the anon key.
    pub async fn get_anon(&self, path: &str) -> reqwest::Response {
        self.http().get(format!("{}{path}", self.url)).header("apikey", &self.keys.anon).send().await.expect("request")
    }

    /// Stops the server.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// The `fluxbase` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fluxbase"))
}

/// Runs `fluxbase <args>` to completion with a clean `FLUXBASE_*` environment plus `env`.
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FLUXBASE_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("fluxbase runs")
}

/// The real binary running `serve` as a child process.
pub struct TestProcess {
    /// The child.
    pub child: Child,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its base URL.
    pub url: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl TestProcess {
    /// Starts `fluxbase serve` on a free port with `data_dir`, plus `extra` arguments and `env`.
    pub fn spawn(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        TestProcess::spawn_on(port, data_dir, extra, env)
    }

    /// Like [`TestProcess::spawn`] on a given port (to restart a server where clients expect it).
    pub fn spawn_on(port: u16, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestProcess {
        let log = data_dir.with_extension("log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve").arg("--data-dir").arg(data_dir).arg("--port").arg(port.to_string()).args(extra);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FLUXBASE_")) {
            cmd.env_remove(k);
        }
        cmd.env("FLUXBASE_LOG_FORMAT", "json").env("FLUXBASE_EMBEDDED_FSYNC", "off");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("spawn fluxbase");
        TestProcess { child, data_dir: data_dir.to_owned(), url: format!("http://127.0.0.1:{port}"), log }
    }

    /// Waits until `/health` answers 200, or panics with the log.
    pub async fn wait_healthy(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/health", self.url)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("fluxbase exited ({status}):\n{}", self.log_text());
            }
            if Instant::now() > deadline {
                panic!("fluxbase not healthy within {within:?}:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What it printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                panic!("fluxbase did not exit within {within:?}:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Live `postgres` processes whose command line mentions `dir`.
pub fn postgres_processes_under(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes().to_vec();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
            // Zombies (state Z) are dead processes awaiting reaping.
            let state = stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()).unwrap_or("");
            state != "Z" && cmd.windows(needle.len()).any(|w| w == needle.as_slice()) && cmd.starts_with(b"/")
                && String::from_utf8_lossy(&cmd).contains("postgres")
        })
        .collect()
}
