//! `GET /object/info/[authenticated/|public/]<bucket>/<path>`: an object's
//! description, as storage-js's `info()` reads it.

use http::StatusCode;
use serde_json::json;
use warp::reply::Response;

use super::download::{find, Access};
use crate::storage::body::json_reply;
use crate::storage::errors::StorageResult;
use crate::storage::{keys, Storage};

/// Describes one object.
pub async fn info(s: &Storage, access: Access, bucket: &str, raw_name: &str) -> StorageResult<Response> {
    let name = keys::object_name(raw_name)?;
    let row = find(s, &access, bucket, &name).await?;
    Ok(json_reply(
        StatusCode::OK,
        &json!({
            "id": row.id,
            "name": row.name,
            "version": row.version,
            "bucket_id": row.bucket_id,
            "size": row.size(),
            "content_type": row.meta_str("mimetype"),
            "cache_control": row.meta_str("cacheControl"),
            "etag": row.meta_str("eTag"),
            "metadata": row.user_metadata,
            "last_modified": row.meta_str("lastModified").or(row.updated_at.as_deref()),
            "created_at": row.created_at,
        }),
    ))
}
