//! `POST /object/list/<bucket>`: the direct children of a prefix, through
//! `storage.search` run as the caller (so RLS filters what is listed).

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use warp::reply::Response;

use crate::http::caller::Caller;
use crate::storage::body::json_reply;
use crate::storage::db;
use crate::storage::errors::{StorageError, StorageResult};
use crate::storage::Storage;

/// The sort storage-js sends.
#[derive(Debug, Default, Deserialize)]
pub struct SortBy {
    column: Option<String>,
    order: Option<String>,
}

/// The list body.
#[derive(Debug, Default, Deserialize)]
pub struct ListBody {
    prefix: Option<String>,
    limit: Option<i32>,
    offset: Option<i32>,
    #[serde(rename = "sortBy")]
    sort_by: Option<SortBy>,
    search: Option<String>,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Lists the children of `prefix` in `bucket`.
pub async fn list(s: &Storage, caller: &Caller, bucket: &str, body: ListBody) -> StorageResult<Response> {
    let mut prefix = body.prefix.unwrap_or_default().trim_start_matches('/').to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    if prefix.chars().any(char::is_control) {
        return Err(StorageError::InvalidKey(prefix));
    }
    let limit = body.limit.unwrap_or(100).clamp(0, 1500);
    let offset = body.offset.unwrap_or(0).max(0);
    let sort = body.sort_by.unwrap_or_default();
    let column = match sort.column.as_deref() {
        None | Some("name") => "name",
        Some(c @ ("updated_at" | "created_at" | "last_accessed_at")) => c,
        Some(other) => return Err(StorageError::InvalidRequest(format!("body/sortBy/column: unknown column {other}"))),
    };
    let order = match sort.order.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => "asc",
        Some("desc") => "desc",
        Some(_) => return Err(StorageError::InvalidRequest("body/sortBy/order must be asc or desc".into())),
    };
    let mut search = body.search.unwrap_or_default();
    let levels = i32::try_from(prefix.split('/').count()).unwrap_or(1);
    if column != "name" {
        prefix = like_escape(&prefix);
        search = like_escape(&search);
    }
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.object.list").await?;
    db::bucket(&tx, bucket).await.or_else(|e| match e {
        // A bucket the caller cannot see lists as empty, as in storage-api.
        StorageError::NoSuchBucket => Ok(db::Bucket { id: bucket.into(), public: false, file_size_limit: None, allowed_mime_types: None }),
        e => Err(e),
    })?;
    let row = tx
        .query_one(
            "select coalesce(json_agg(json_build_object('name', r.name, 'id', r.id, 'updated_at', r.updated_at, \
             'created_at', r.created_at, 'last_accessed_at', r.last_accessed_at, 'metadata', r.metadata)), '[]') \
             from storage.search($1, $2, $3, $4, $5, $6, $7, $8) r",
            &[&prefix, &bucket, &limit, &levels, &offset, &search, &column, &order],
        )
        .await?;
    tx.commit().await?;
    Ok(json_reply(StatusCode::OK, &row.try_get::<_, Value>(0)?))
}
