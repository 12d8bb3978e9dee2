//! Finding PostgreSQL's server programs (`initdb`, `postgres`, `pg_ctl`).
//!
//! Order: the configured `embedded.bin_dir`; `pg_config --bindir`; the
//! newest `/usr/lib/postgresql/<major>/bin` (Debian's layout). A directory
//! counts only if it holds both `initdb` and `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::EmbeddedError;

/// A directory holding PostgreSQL's server programs.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Finds the programs, or says which package installs them.
    pub fn find(configured: &str) -> Result<Binaries, EmbeddedError> {
        let mut searched = Vec::new();
        let mut candidates: Vec<PathBuf> = Vec::new();
        if !configured.is_empty() {
            candidates.push(PathBuf::from(configured));
        } else {
            if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
                if out.status.success() {
                    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    if !dir.is_empty() {
                        candidates.push(PathBuf::from(dir));
                    }
                }
            }
            candidates.extend(debian_bin_dirs(Path::new("/usr/lib/postgresql")));
        }
        for dir in candidates {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Ok(Binaries { dir });
            }
            searched.push(dir.display().to_string());
        }
        if searched.is_empty() {
            searched.push("pg_config --bindir, /usr/lib/postgresql/*/bin".into());
        }
        Err(EmbeddedError::BinariesNotFound { searched: searched.join(", ") })
    }

    /// Path of one program.
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `/usr/lib/postgresql/<major>/bin`, newest major first.
fn debian_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut majors: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    majors.sort_by_key(|m| std::cmp::Reverse(m.0));
    majors.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_debian_major_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        for m in ["9", "15", "13", "notanumber"] {
            std::fs::create_dir_all(dir.path().join(m).join("bin")).expect("mkdir");
        }
        let found = debian_bin_dirs(dir.path());
        assert_eq!(found.first(), Some(&dir.path().join("15").join("bin")));
        assert_eq!(found.len(), 3);
    }

    #[test]
    fn missing_binaries_name_the_package() {
        let e = Binaries::find("/nonexistent/bin").expect_err("nothing there");
        let m = e.to_string();
        assert!(m.contains("apt-get install postgresql") && m.contains("/nonexistent/bin"), "{m}");
    }
}
