//! The Supabase-compatible storage API at `/storage/v1`, on `object_store`.
//!
//! Bytes live in an object store ([`backend`]); metadata lives in
//! `storage.buckets` / `storage.objects`, read and written as the caller
//! ([`db`]) so the project's RLS policies decide every operation.
//!
//! # Layout
//! - [`config`]: the storage section of the configuration.
//! - [`backend`]: builds the `Arc<dyn ObjectStore>` (file, s3, memory).
//! - [`durable`]: fsyncs the file backend's bytes before a row names them.
//! - [`file_write`]: streams an upload into the file backend, durably.
//! - [`keys`]: object name normalisation/validation; where bytes are stored.
//! - [`errors`]: [`errors::StorageError`] → storage-api's error codes.
//! - [`db`]: transactions as the caller; bucket and object rows.
//! - [`body`]: request bodies as streams, JSON bodies with a limit, responses.
//! - [`buckets`]: bucket CRUD and empty.
//! - [`objects`]: upload, download, list, copy/move, remove, info.
//! - [`signed`]: signed download and upload URLs (HS256 JWTs).
//! - [`tag`]: seals each row's `(id, version)` so bytes are served only for rows Fluxbase wrote.
//! - [`tus`]: TUS resumable uploads at `/upload/resumable`.
//! - [`render`]: image transformation at `/render/image`.
//! - [`sweep`]: removes bytes no row refers to, and stale resumable uploads.
//! - [`mod@routes`]: the URL table.
//!
//! # Consistency invariant
//! The bytes of an object version are written, completely, to
//! `objects/<xx>/<version>` ([`keys::data_path`]), and flushed to disk
//! ([`durable`]), *before* the row naming that version is committed; a version's bytes are deleted only *after* the row
//! stops naming it. So a row never names missing bytes, and a failed or
//! interrupted upload leaves at most unreferenced bytes, invisible to every
//! API, which the [`sweep`] removes.

pub mod backend;
pub mod body;
pub mod buckets;
pub mod config;
pub mod db;
pub mod durable;
pub mod errors;
pub mod file_write;
pub mod keys;
pub mod objects;
pub mod render;
pub mod routes;
pub mod signed;
pub mod sweep;
pub mod tag;
pub mod tus;

use std::sync::Arc;

use object_store::ObjectStore;

pub use config::StorageConfig;
pub use routes::routes;

use crate::app::AppState;

/// What every storage handler needs.
#[derive(Debug)]
pub struct Storage {
    /// The server's state (pool, keys, config).
    pub app: Arc<AppState>,
    /// Where bytes live.
    pub store: Arc<dyn ObjectStore>,
    /// The [`tag`] key, loaded from the database on first use.
    pub tag_key: tokio::sync::OnceCell<Vec<u8>>,
    /// Bounds the image transformations running at once ([`render`]).
    pub image_permits: Arc<tokio::sync::Semaphore>,
}

impl Storage {
    /// A storage service on `store`.
    pub fn new(app: Arc<AppState>, store: Arc<dyn ObjectStore>) -> Storage {
        let permits = Arc::new(tokio::sync::Semaphore::new(app.config.storage.image_concurrency.max(1)));
        Storage { app, store, tag_key: tokio::sync::OnceCell::new(), image_permits: permits }
    }

    /// The `[storage]` configuration.
    pub fn config(&self) -> &StorageConfig {
        &self.app.config.storage
    }
}
