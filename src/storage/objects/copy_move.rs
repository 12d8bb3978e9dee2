//! `POST /object/move` (the row is renamed as the caller; bytes stay, since
//! they are keyed by version) and `POST /object/copy` (bytes copied to a new
//! version, then the row written as the caller).

use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use warp::reply::Response;

use super::upload::{commit_row, precheck, NewRow, UploadSpec};
use crate::http::caller::Caller;
use crate::storage::body::{json_reply, message};
use crate::storage::db;
use crate::storage::errors::{StorageError, StorageResult};
use crate::storage::{keys, Storage};

/// Body of move and copy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveBody {
    bucket_id: String,
    source_key: String,
    destination_key: String,
    destination_bucket: Option<String>,
    copy_metadata: Option<bool>,
    metadata: Option<Value>,
}

/// Moves an object.
pub async fn move_object(s: &Storage, caller: &Caller, body: MoveBody) -> StorageResult<Response> {
    let from = keys::object_name(&body.source_key)?;
    let to = keys::object_name(&body.destination_key)?;
    let dest_bucket = body.destination_bucket.clone().unwrap_or_else(|| body.bucket_id.clone());
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.object.move").await?;
    db::object(&tx, &body.bucket_id, &from).await?;
    let n = tx
        .execute(
            "update storage.objects set bucket_id = $3, name = $4, last_accessed_at = now() where bucket_id = $1 and name = $2",
            &[&body.bucket_id, &from, &dest_bucket, &to],
        )
        .await?;
    if n == 0 {
        return Err(StorageError::NoSuchKey);
    }
    tx.commit().await?;
    Ok(message("Successfully moved"))
}

/// Copies an object.
pub async fn copy_object(s: &Storage, caller: &Caller, headers: &HeaderMap, body: MoveBody) -> StorageResult<Response> {
    let from = keys::object_name(&body.source_key)?;
    let to = keys::object_name(&body.destination_key)?;
    let dest_bucket = body.destination_bucket.clone().unwrap_or_else(|| body.bucket_id.clone());
    let upsert = headers.get("x-upsert").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let source = {
        let mut client = db::connect(s).await?;
        let tx = db::begin(&mut client, caller, "storage.object.copy").await?;
        let row = db::object(&tx, &body.bucket_id, &from).await?;
        tx.commit().await?;
        row
    };
    let src_version = crate::storage::tag::checked_version(s, &source).await?;
    let owner = caller.user_id().map(str::to_owned);
    let spec = UploadSpec { caller: caller.clone(), owner, upsert, operation: "storage.object.copy" };
    // Also refuses a missing destination bucket (NoSuchBucket) first.
    precheck(s, &spec, &dest_bucket, &to).await?;
    let version = uuid::Uuid::new_v4().to_string();
    s.store.copy(&keys::data_path(&src_version), &keys::data_path(&version)).await?;
    crate::storage::durable::flush(s, &keys::data_path(&version)).await?;
    let mut metadata = source.metadata.clone();
    if let Some(m) = metadata.as_object_mut() {
        m.remove(crate::storage::tag::FIELD);
        let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        m.insert("lastModified".into(), Value::String(now));
    }
    let user_metadata = if body.copy_metadata.unwrap_or(true) { source.user_metadata.clone() } else { body.metadata.clone() };
    let new = NewRow { bucket: &dest_bucket, name: &to, version: &version, metadata: &metadata, user_metadata: &user_metadata };
    match commit_row(s, &spec, &new).await {
        Ok((id, old)) => {
            if let Some(old) = old.filter(|o| *o != version) {
                super::remove::delete_bytes(s, &[old]).await;
            }
            Ok(json_reply(
                StatusCode::OK,
                &json!({"Id": id, "Key": format!("{dest_bucket}/{to}"), "name": to, "bucket_id": dest_bucket, "metadata": metadata}),
            ))
        }
        Err(e) => {
            super::remove::delete_bytes(s, &[version]).await;
            Err(e)
        }
    }
}
