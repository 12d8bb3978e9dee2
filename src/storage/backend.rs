//! The object store holding the bytes, built from `[storage]`: the local
//! filesystem under the data directory (default), any S3-compatible service,
//! or memory (tests).

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ClientOptions, ObjectStore};

use crate::config::Config;

/// Why the store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The file root could not be created.
    #[error("cannot create storage directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// object_store refused the configuration.
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// Unknown backend name (caught earlier by `Config::validate`).
    #[error("unknown storage backend {0:?}")]
    Unknown(String),
}

/// The directory of the file backend.
pub fn file_root(config: &Config) -> PathBuf {
    if config.storage.file_root.is_empty() {
        config.data_dir.join("storage")
    } else {
        PathBuf::from(&config.storage.file_root)
    }
}

/// Where the file backend keeps `path` (an object_store path) under `root`
/// ([`file_root`]).
pub fn file_path(root: &std::path::Path, path: &object_store::path::Path) -> PathBuf {
    path.parts().fold(root.to_path_buf(), |p, part| p.join(part.as_ref()))
}

/// Builds the store `config` names.
pub fn build(config: &Config) -> Result<Arc<dyn ObjectStore>, BackendError> {
    let s = &config.storage;
    match s.backend.as_str() {
        "file" => {
            let root = file_root(config);
            std::fs::create_dir_all(&root).map_err(|source| BackendError::Dir { path: root.clone(), source })?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true)))
        }
        "memory" => Ok(Arc::new(InMemory::new())),
        "s3" => {
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(&s.s3_bucket)
                .with_region(&s.s3_region)
                .with_virtual_hosted_style_request(!s.s3_force_path_style)
                .with_client_options(ClientOptions::new().with_allow_http(true));
            if !s.s3_endpoint.is_empty() {
                b = b.with_endpoint(&s.s3_endpoint);
            }
            if !s.s3_access_key.is_empty() {
                b = b.with_access_key_id(&s.s3_access_key).with_secret_access_key(&s.s3_secret_key);
            }
            Ok(Arc::new(b.build()?))
        }
        other => Err(BackendError::Unknown(other.to_owned())),
    }
}
