//! A real S3-compatible server for the storage tests: `moto` in server mode,
//! from PyPI, installed into a venv when missing, one per test run, on
//! loopback. A reaper shell (in its own process group, waiting on a pipe
//! from this process) kills it when the test process exits however it ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the venv lives (override with `FLUXBASE_TEST_MOTO_VENV`).
fn venv() -> PathBuf {
    std::env::var_os("FLUXBASE_TEST_MOTO_VENV").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp/fluxbase-moto-venv"))
}

/// The running moto server.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _reaper: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The server, installed and started on first call.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| match start() {
        Ok(m) => m,
        Err(e) => panic!("cannot start the moto S3 server: {e}"),
    })
}

fn install(venv: &Path) -> Result<PathBuf, String> {
    let bin = venv.join("bin/moto_server");
    if bin.exists() {
        return Ok(bin);
    }
    // A lock directory keeps two test processes from installing at once.
    let lock = venv.with_extension("lock");
    let deadline = Instant::now() + Duration::from_secs(600);
    while std::fs::create_dir(&lock).is_err() {
        if bin.exists() {
            return Ok(bin);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {}", lock.display()));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let result = (|| {
        if !venv.join("bin/pip").exists() {
            let st = Command::new("python3").arg("-m").arg("venv").arg(venv).status().map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("python3 -m venv failed".to_owned());
            }
        }
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "moto[server]"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("pip install moto[server] failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(bin.clone())
    })();
    let _ = std::fs::remove_dir(&lock);
    result
}

fn start() -> Result<Moto, String> {
    let bin = install(&venv())?;
    let port = super::cluster::free_port();
    let script = r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & m=$!; cat >/dev/null; kill $m"#;
    let port_arg = port.to_string();
    let reaper = super::reaper::spawn(script, &[bin.as_os_str(), port_arg.as_ref()])?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("moto_server did not listen within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Moto { endpoint: format!("http://127.0.0.1:{port}"), _reaper: Mutex::new(reaper) })
}

impl Moto {
    /// Creates a new, empty S3 bucket and returns its name.
    pub async fn bucket(&self) -> String {
        let name = format!("fb-{}", uuid::Uuid::new_v4().simple());
        let r = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.expect("moto reachable");
        assert!(r.status().is_success(), "create S3 bucket: {}", r.status());
        name
    }

    /// Points a configuration at `bucket` of this server.
    pub fn apply(&self, cfg: &mut fluxbase::config::Config, bucket: &str) {
        cfg.storage.backend = "s3".into();
        cfg.storage.s3_endpoint = self.endpoint.clone();
        cfg.storage.s3_bucket = bucket.to_owned();
        cfg.storage.s3_region = "us-east-1".into();
        cfg.storage.s3_access_key = "testing".into();
        cfg.storage.s3_secret_key = "testing".into();
        cfg.storage.s3_force_path_style = true;
    }
}
