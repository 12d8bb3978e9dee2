//! `DELETE /object/<bucket>` (bulk, `{prefixes}`) and `DELETE /object/<bucket>/<path>`.
//! Rows are deleted as the caller first; bytes after the commit.

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use warp::reply::Response;

use crate::http::caller::Caller;
use crate::storage::body::{json_reply, message};
use crate::storage::db;
use crate::storage::errors::{StorageError, StorageResult};
use crate::storage::{keys, Storage};

/// Most names one bulk delete takes (storage-api's limit).
pub const MAX_PREFIXES: usize = 1000;

/// A bulk delete entry: a name, or `{path, versionId}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Entry {
    /// A name.
    Name(String),
    /// A name with a version (ignored: versioning is not supported).
    WithVersion {
        /// The name.
        path: String,
    },
}

/// The bulk delete body.
#[derive(Debug, Deserialize)]
pub struct RemoveBody {
    prefixes: Vec<Entry>,
}

const RETURNING: &str = "returning json_build_object('name', name, 'bucket_id', bucket_id, 'owner', owner, 'owner_id', owner_id, \
     'id', id, 'updated_at', updated_at, 'created_at', created_at, 'last_accessed_at', last_accessed_at, 'metadata', metadata, \
     'user_metadata', user_metadata, 'version', version), version";

/// Deletes many objects; answers the deleted rows.
pub async fn remove_many(s: &Storage, caller: &Caller, bucket: &str, body: RemoveBody) -> StorageResult<Response> {
    if body.prefixes.is_empty() || body.prefixes.len() > MAX_PREFIXES {
        return Err(StorageError::InvalidRequest(format!("body/prefixes must hold 1 to {MAX_PREFIXES} names")));
    }
    let names: Vec<String> = body
        .prefixes
        .iter()
        .filter_map(|e| match e {
            Entry::Name(n) | Entry::WithVersion { path: n } => keys::object_name(n).ok(),
        })
        .collect();
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.object.delete").await?;
    let sql = format!("delete from storage.objects where bucket_id = $1 and name = any($2) {RETURNING}");
    let rows = tx.query(&sql, &[&bucket, &names]).await?;
    tx.commit().await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut versions = Vec::new();
    for r in &rows {
        out.push(r.try_get::<_, Value>(0)?);
        if let Some(v) = r.try_get::<_, Option<String>>(1)? {
            versions.push(v);
        }
    }
    delete_bytes(s, &versions).await;
    Ok(json_reply(StatusCode::OK, &Value::Array(out)))
}

/// Deletes one object.
pub async fn remove_one(s: &Storage, caller: &Caller, bucket: &str, raw_name: &str) -> StorageResult<Response> {
    let name = keys::object_name(raw_name)?;
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.object.delete").await?;
    let sql = format!("delete from storage.objects where bucket_id = $1 and name = $2 {RETURNING}");
    let row = tx.query_opt(&sql, &[&bucket, &name]).await?.ok_or(StorageError::NoSuchKey)?;
    tx.commit().await?;
    if let Some(v) = row.try_get::<_, Option<String>>(1)? {
        delete_bytes(s, &[v]).await;
    }
    Ok(message("Successfully deleted"))
}

/// Deletes the bytes of versions no row names any more. Failures are logged
/// and left to the sweep.
pub async fn delete_bytes(s: &Storage, versions: &[String]) {
    for v in versions {
        match s.store.delete(&keys::data_path(v)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(version = %v, error = %e, "deleting object bytes failed; the sweep will retry"),
        }
    }
}
