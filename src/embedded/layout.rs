//! Where the embedded cluster lives and which user runs it.
//!
//! Normally the cluster is `<data-dir>/pg` with its socket in
//! `<data-dir>/run`. PostgreSQL refuses to run as root, so when Fluxbase runs
//! as root the cluster runs as the unprivileged `postgres` user, who must be
//! able to reach those directories: Fluxbase opens the data directory for
//! traversal (0711), and where an ancestor still blocks the user (a data
//! directory under root's home, say) or the socket path would be too long,
//! the cluster is placed in `/var/lib/fluxbase/<id>` instead. Either way the
//! choice is recorded in `<data-dir>/cluster.json` and reused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::EmbeddedError;
use crate::datadir::{write_private, DataDir};

/// Where relocated clusters go.
pub const RELOCATED_ROOT: &str = "/var/lib/fluxbase";
/// Longest Unix socket path the kernel accepts, less a margin.
const MAX_SOCKET_PATH: usize = 100;

/// The operating-system user the cluster runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUser {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its name.
    pub name: String,
    /// Whether Fluxbase must switch to it (true when Fluxbase runs as root).
    pub switch: bool,
}

impl ClusterUser {
    /// `postgres` when running as root, the current user otherwise.
    pub fn detect() -> Result<ClusterUser, EmbeddedError> {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            let gid = nix::unistd::getegid().as_raw();
            let name = nix::unistd::User::from_uid(euid).ok().flatten().map(|u| u.name).unwrap_or_default();
            return Ok(ClusterUser { uid: euid.as_raw(), gid, name, switch: false });
        }
        match nix::unistd::User::from_name("postgres") {
            Ok(Some(u)) => Ok(ClusterUser { uid: u.uid.as_raw(), gid: u.gid.as_raw(), name: u.name, switch: true }),
            _ => Err(EmbeddedError::NoClusterUser),
        }
    }

    /// Applies this user to a command that must run as it.
    pub fn apply(&self, cmd: &mut Command) {
        if self.switch {
            use std::os::unix::process::CommandExt;
            cmd.uid(self.uid).gid(self.gid);
            cmd.env("HOME", "/tmp").env("USER", &self.name).env("LOGNAME", &self.name);
        }
    }

    /// Whether this user can traverse into `path` (every ancestor searchable).
    pub fn can_reach(&self, path: &Path) -> bool {
        if !self.switch {
            return true;
        }
        let mut cmd = Command::new("test");
        cmd.arg("-x").arg(path).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        self.apply(&mut cmd);
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }

    /// Gives `path` to this user.
    pub fn chown(&self, path: &Path) -> Result<(), EmbeddedError> {
        if !self.switch {
            return Ok(());
        }
        nix::unistd::chown(path, Some(self.uid.into()), Some(self.gid.into())).map_err(|e| EmbeddedError::Io {
            what: "cannot give to the cluster user",
            path: path.to_owned(),
            source: std::io::Error::from(e),
        })
    }
}

/// What `cluster.json` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterRecord {
    /// Directory holding `pg/`, `run/` and the log.
    pub base: PathBuf,
    /// The TCP port last used on loopback.
    pub port: u16,
}

/// The resolved places of one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterLayout {
    /// Directory holding everything below.
    pub base: PathBuf,
    /// `PGDATA`.
    pub pgdata: PathBuf,
    /// `unix_socket_directories`.
    pub socket_dir: PathBuf,
    /// Where PostgreSQL's stderr goes.
    pub log_file: PathBuf,
    /// Whether the cluster lives outside the data directory.
    pub relocated: bool,
    /// Port recorded by a previous start (0 if none).
    pub last_port: u16,
}

const RECORD: &str = "cluster.json";

impl ClusterLayout {
    /// Reads the recorded placement, or decides one and creates its directories.
    pub fn resolve(data_dir: &DataDir, user: &ClusterUser) -> Result<ClusterLayout, EmbeddedError> {
        let record_path = data_dir.join(RECORD);
        let record: Option<ClusterRecord> = match std::fs::read(&record_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(_) => None,
        };
        let (base, last_port) = match record {
            Some(r) => (r.base, r.port),
            None => {
                if user.switch {
                    data_dir.allow_traversal()?;
                }
                let socket_len = data_dir.join("run").join(".s.PGSQL.65535").as_os_str().len();
                if socket_len <= MAX_SOCKET_PATH && user.can_reach(data_dir.path()) {
                    (data_dir.path().to_owned(), 0)
                } else {
                    (relocated_base(data_dir.path()), 0)
                }
            }
        };
        let layout = ClusterLayout::at(&base, data_dir.path(), last_port);
        for dir in [&layout.base, &layout.pgdata, &layout.socket_dir] {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::Io {
                    what: "cannot create",
                    path: dir.clone(),
                    source,
                })?;
            }
        }
        if layout.relocated {
            set_mode(&layout.base, 0o711)?;
        }
        for dir in [&layout.pgdata, &layout.socket_dir] {
            set_mode(dir, 0o700)?;
            user.chown(dir)?;
        }
        layout.record(data_dir, last_port)?;
        Ok(layout)
    }

    fn at(base: &Path, data_dir: &Path, last_port: u16) -> ClusterLayout {
        ClusterLayout {
            base: base.to_owned(),
            pgdata: base.join("pg"),
            socket_dir: base.join("run"),
            log_file: base.join("postgresql.log"),
            relocated: base != data_dir,
            last_port,
        }
    }

    /// Writes `cluster.json` with the port in use.
    pub fn record(&self, data_dir: &DataDir, port: u16) -> Result<(), EmbeddedError> {
        let path = data_dir.join(RECORD);
        let body = serde_json::to_vec_pretty(&ClusterRecord { base: self.base.clone(), port }).map_err(|e| {
            EmbeddedError::Io { what: "cannot encode", path: path.clone(), source: std::io::Error::other(e) }
        })?;
        write_private(&path, &body).map_err(|source| EmbeddedError::Io { what: "cannot write", path, source })
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EmbeddedError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| EmbeddedError::Io {
        what: "cannot set permissions of",
        path: path.to_owned(),
        source,
    })
}

/// `/var/lib/fluxbase/<16 hex digits of the data directory's hash>`.
fn relocated_base(data_dir: &Path) -> PathBuf {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    Path::new(RELOCATED_ROOT).join(hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocation_is_stable_per_data_dir() {
        let a = relocated_base(Path::new("/root/project/.fluxbase"));
        assert_eq!(a, relocated_base(Path::new("/root/project/.fluxbase")));
        assert_ne!(a, relocated_base(Path::new("/root/other/.fluxbase")));
        assert!(a.starts_with(RELOCATED_ROOT));
    }

    #[test]
    fn layout_inside_data_dir() {
        let l = ClusterLayout::at(Path::new("/d"), Path::new("/d"), 0);
        assert_eq!(l.pgdata, Path::new("/d/pg"));
        assert_eq!(l.socket_dir, Path::new("/d/run"));
        assert!(!l.relocated);
    }
}
