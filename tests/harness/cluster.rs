//! One PostgreSQL cluster per test run.
//!
//! Started on first use. A reaper process (a shell in its own process group
//! waiting on a pipe from this process) stops the cluster and deletes its
//! directory when the test process exits, even on panic, abort or SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};

use fluxbase::embedded::binaries::Binaries;

/// Password of the cluster's superuser `postgres`.
pub const PASSWORD: &str = "fluxbase-test";
/// The migrated database every test database is cloned from.
pub const TEMPLATE: &str = "fluxbase_template";

/// The shared cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Its directory (data in `data/`, socket in the directory itself).
    pub dir: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Server programs.
    pub bins: Binaries,
    _reaper: Mutex<Child>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster, started on first call.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| match start() {
        Ok(c) => c,
        Err(e) => panic!("cannot start the test PostgreSQL cluster: {e}"),
    })
}

impl Cluster {
    /// A superuser URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs a PostgreSQL program as the cluster's user.
    pub fn run(&self, program: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
        as_cluster_user(&self.bins.program(program), args).output()
    }

    /// `pg_ctl restart -m immediate`: a crash and recovery of PostgreSQL.
    pub fn restart_immediate(&self) {
        let data = self.dir.join("data");
        let out = self
            .run("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "-l", path(&self.dir.join("log")), "restart"])
            .expect("pg_ctl runs");
        assert!(out.status.success(), "pg_ctl restart failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn as_cluster_user(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn start() -> Result<Cluster, String> {
    let bins = Binaries::find(&std::env::var("FLUXBASE_EMBEDDED_BIN_DIR").unwrap_or_default()).map_err(|e| e.to_string())?;
    let dir = tempfile::Builder::new().prefix("fbtest-").tempdir_in("/tmp").map_err(|e| e.to_string())?.keep();
    if is_root() {
        let pg = nix::unistd::User::from_name("postgres").ok().flatten().ok_or("no postgres user")?;
        nix::unistd::chown(&dir, Some(pg.uid), Some(pg.gid)).map_err(|e| e.to_string())?;
    }
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
    if is_root() {
        let pg = nix::unistd::User::from_name("postgres").ok().flatten().ok_or("no postgres user")?;
        nix::unistd::chown(&pwfile, Some(pg.uid), Some(pg.gid)).map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let out = as_cluster_user(
        &bins.program("initdb"),
        &["-D", path(&data), "-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions", &format!("--pwfile={}", path(&pwfile))],
    )
    .output()
    .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = free_port();
    let opts = format!(
        "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c wal_level=logical -c fsync=off \
         -c full_page_writes=off -c synchronous_commit=off -c max_connections=400 -c max_replication_slots=64 \
         -c max_wal_senders=64 -c wal_sender_timeout=10s -c shared_buffers=64MB -c timezone=UTC",
        path(&dir)
    );
    // The reaper first, so even a failed start is cleaned up.
    let pg_ctl = bins.program("pg_ctl");
    let stop = format!(
        "{} -D {} -m immediate -w stop >/dev/null 2>&1",
        path(&pg_ctl),
        path(&data)
    );
    let stop = if is_root() { format!("runuser -u postgres -- {stop}") } else { stop };
    let script = format!("cat >/dev/null; {stop}; rm -rf {}", path(&dir));
    let reaper = super::reaper::spawn(&script, &[])?;
    let out = as_cluster_user(&pg_ctl, &["-D", path(&data), "-l", path(&dir.join("log")), "-w", "-o", &opts, "start"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        return Err(format!("pg_ctl start: {}{log}", String::from_utf8_lossy(&out.stderr)));
    }
    let cluster = Cluster { dir, port, bins, _reaper: Mutex::new(reaper) };
    make_template(&cluster)?;
    Ok(cluster)
}

/// Creates and migrates the template database (on a private runtime: this
/// runs inside `OnceLock::get_or_init`, possibly within a test's runtime).
fn make_template(cluster: &Cluster) -> Result<(), String> {
    let admin = cluster.url("postgres");
    let template = cluster.url(TEMPLATE);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let c = fluxbase::database::connect_one(&admin, "harness").await.map_err(|e| e.to_string())?;
            c.batch_execute(&format!("create database {TEMPLATE}")).await.map_err(|e| e.to_string())?;
            let mut t = fluxbase::database::connect_one(&template, "harness").await.map_err(|e| e.to_string())?;
            fluxbase::migrate::run(&mut t).await.map_err(|e| e.to_string())?;
            drop(t);
            c.batch_execute(&format!("alter database {TEMPLATE} with is_template true allow_connections false"))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        })
    })
    .join()
    .map_err(|_| "template thread panicked".to_owned())?
}
