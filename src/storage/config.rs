//! `[storage]`: where object bytes live and the limits uploads get.

use serde::{Deserialize, Serialize};

/// `[storage]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `file` (default, under `file_root`), `s3` or `memory` (tests only: lost on exit).
    pub backend: String,
    /// Directory of the file backend; empty means `<data_dir>/storage`.
    pub file_root: String,
    /// S3 endpoint URL (empty: AWS for `s3_region`).
    pub s3_endpoint: String,
    /// S3 region.
    pub s3_region: String,
    /// S3 bucket holding every Fluxbase bucket's objects.
    pub s3_bucket: String,
    /// S3 access key id.
    pub s3_access_key: String,
    /// S3 secret access key.
    pub s3_secret_key: String,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers.
    pub s3_force_path_style: bool,
    /// Largest object accepted, in bytes; buckets may only lower it.
    pub file_size_limit: u64,
    /// Lifetime of signed upload URLs, in seconds.
    pub upload_url_expiry_secs: u64,
    /// Seconds after which unreferenced bytes are removed by the sweep.
    pub orphan_grace_secs: u64,
    /// Largest source object `/render/image` transforms, in bytes.
    pub image_max_source_bytes: u64,
    /// Largest source image `/render/image` decodes, in pixels (width × height,
    /// read from the header before decoding: decompression bombs are refused).
    pub image_max_pixels: u64,
    /// Image transformations running at once (each on a blocking thread).
    pub image_concurrency: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: "file".into(),
            file_root: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_bucket: String::new(),
            s3_access_key: String::new(),
            s3_secret_key: String::new(),
            s3_force_path_style: true,
            file_size_limit: 50 * 1024 * 1024,
            upload_url_expiry_secs: 7200,
            orphan_grace_secs: 3600,
            image_max_source_bytes: 25 * 1024 * 1024,
            image_max_pixels: 25_000_000,
            image_concurrency: 2,
        }
    }
}

impl StorageConfig {
    /// Checks the values; on error returns `(key, value, allowed)`.
    pub fn check(&self) -> Result<(), (String, String, String)> {
        let bad = |k: &str, v: &str, a: &str| Err((format!("storage.{k}"), v.to_owned(), a.to_owned()));
        match self.backend.as_str() {
            "file" | "memory" => {}
            "s3" => {
                if self.s3_bucket.is_empty() {
                    return bad("s3_bucket", "", "the name of an existing S3 bucket when storage.backend = s3");
                }
                let e = &self.s3_endpoint;
                if !e.is_empty() && !e.starts_with("http://") && !e.starts_with("https://") {
                    return bad("s3_endpoint", e, "an http:// or https:// URL, or empty for AWS");
                }
            }
            other => return bad("backend", other, "one of file, s3, memory"),
        }
        if self.file_size_limit == 0 || self.file_size_limit > 1 << 44 {
            return bad("file_size_limit", &self.file_size_limit.to_string(), "an integer from 1 to 2^44 (bytes)");
        }
        if !(1..=604_800).contains(&self.upload_url_expiry_secs) {
            return bad("upload_url_expiry_secs", &self.upload_url_expiry_secs.to_string(), "an integer from 1 to 604800");
        }
        if self.image_max_pixels == 0 || self.image_max_pixels > 1 << 32 {
            return bad("image_max_pixels", &self.image_max_pixels.to_string(), "an integer from 1 to 2^32");
        }
        if !(1..=256).contains(&self.image_concurrency) {
            return bad("image_concurrency", &self.image_concurrency.to_string(), "an integer from 1 to 256");
        }
        Ok(())
    }
}

/// Parses a size as storage-api accepts it: a number of bytes, or a string
/// such as `"50MB"`, `"1.5 GB"`, `"100kb"` (units B, KB, MB, GB, TB, base 1024).
pub fn parse_size(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.is_finite()).map(|f| f as u64)),
        serde_json::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let num: f64 = num.parse().ok()?;
            let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kb" => 1 << 10,
                "m" | "mb" => 1 << 20,
                "g" | "gb" => 1 << 30,
                "t" | "tb" => 1 << 40,
                _ => return None,
            };
            let v = num * mult as f64;
            (v.is_finite() && v >= 0.0).then_some(v as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&json!(10)), Some(10));
        assert_eq!(parse_size(&json!("50MB")), Some(50 << 20));
        assert_eq!(parse_size(&json!("1 kb")), Some(1024));
        assert_eq!(parse_size(&json!("1.5GB")), Some(3 << 29));
        assert_eq!(parse_size(&json!("lots")), None);
        assert_eq!(parse_size(&json!(-1)), None);
    }

    #[test]
    fn checks() {
        assert!(StorageConfig::default().check().is_ok());
        let c = StorageConfig { backend: "ftp".into(), ..StorageConfig::default() };
        assert!(c.check().is_err());
        let c = StorageConfig { backend: "s3".into(), ..StorageConfig::default() };
        assert_eq!(c.check().map_err(|e| e.0), Err("storage.s3_bucket".to_owned()));
    }
}
