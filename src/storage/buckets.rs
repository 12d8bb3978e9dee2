//! Buckets: list, get, create, update, delete, empty (`/bucket…`).

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use warp::reply::Response;

use super::body::{json_reply, message};
use super::config::parse_size;
use super::db::{self, BUCKET_JSON};
use super::errors::{StorageError, StorageResult};
use super::{keys, Storage};
use crate::http::caller::Caller;

/// `GET /bucket` query.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    search: Option<String>,
    #[serde(rename = "sortColumn")]
    sort_column: Option<String>,
    #[serde(rename = "sortOrder")]
    sort_order: Option<String>,
}

/// `GET /bucket`.
pub async fn list(s: &Storage, caller: &Caller, query: &str) -> StorageResult<Response> {
    let q: ListQuery = serde_urlencoded::from_str(query).map_err(|e| StorageError::InvalidRequest(e.to_string()))?;
    let column = match q.sort_column.as_deref() {
        None | Some("name") => "name",
        Some("id") => "id",
        Some("created_at") => "created_at",
        Some("updated_at") => "updated_at",
        Some(other) => return Err(StorageError::InvalidRequest(format!("querystring/sortColumn must be one of id, name, created_at, updated_at, got {other}"))),
    };
    let order = match q.sort_order.as_deref() {
        None | Some("asc") => "asc",
        Some("desc") => "desc",
        Some(_) => return Err(StorageError::InvalidRequest("querystring/sortOrder must be asc or desc".into())),
    };
    let limit = q.limit.unwrap_or(i64::MAX).max(0);
    let offset = q.offset.unwrap_or(0).max(0);
    let search = q.search.unwrap_or_default();
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.bucket.list").await?;
    let sql = format!(
        "select coalesce(json_agg(j order by k), '[]') from (select {BUCKET_JSON} as j, row_number() over (order by b.{column} {order}, b.id) as k \
         from storage.buckets b where ($3 = '' or b.name ilike '%' || $3 || '%') order by b.{column} {order}, b.id limit $1 offset $2) t"
    );
    let row = tx.query_one(&sql, &[&limit, &offset, &search]).await?;
    tx.commit().await?;
    Ok(json_reply(StatusCode::OK, &row.try_get::<_, Value>(0)?))
}

/// `GET /bucket/:id`.
pub async fn get(s: &Storage, caller: &Caller, id: &str) -> StorageResult<Response> {
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.bucket.get").await?;
    let sql = format!("select {BUCKET_JSON} from storage.buckets b where b.id = $1");
    let row = tx.query_opt(&sql, &[&id]).await?.ok_or(StorageError::NoSuchBucket)?;
    tx.commit().await?;
    Ok(json_reply(StatusCode::OK, &row.try_get::<_, Value>(0)?))
}

/// Body of create and update.
#[derive(Debug, Default, Deserialize)]
pub struct BucketBody {
    id: Option<String>,
    name: Option<String>,
    public: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    file_size_limit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    allowed_mime_types: Option<Option<Vec<String>>>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A field that is present (even as `null`) deserializes to `Some`; an absent one stays `None`.
fn present<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

/// `Some(None)` clears the limit; `None` leaves it.
fn size_limit(s: &Storage, v: &Option<Value>) -> StorageResult<Option<Option<i64>>> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => {
            let n = parse_size(v).ok_or_else(|| StorageError::InvalidRequest("body/file_size_limit must be a size".into()))?;
            if n > s.config().file_size_limit {
                return Err(StorageError::InvalidRequest(format!(
                    "file_size_limit {n} exceeds the server's limit of {} bytes",
                    s.config().file_size_limit
                )));
            }
            Ok(Some(if n == 0 { None } else { Some(i64::try_from(n).unwrap_or(i64::MAX)) }))
        }
    }
}

fn mime_types(v: &Option<Option<Vec<String>>>) -> StorageResult<Option<Option<Vec<String>>>> {
    if let Some(Some(list)) = v {
        for m in list {
            let ok = m.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()) && !m.chars().any(char::is_control);
            if !ok {
                return Err(StorageError::InvalidRequest(format!("body/allowed_mime_types: invalid mime type {m}")));
            }
        }
    }
    Ok(v.clone())
}

/// `POST /bucket`.
pub async fn create(s: &Storage, caller: &Caller, body: BucketBody) -> StorageResult<Response> {
    let id = body.id.clone().or(body.name.clone()).unwrap_or_default();
    keys::bucket_name(&id)?;
    if body.kind.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("standard")) {
        return Err(StorageError::InvalidRequest("only STANDARD buckets are supported".into()));
    }
    let limit = size_limit(s, &body.file_size_limit)?.flatten();
    let mimes = mime_types(&body.allowed_mime_types)?.flatten();
    let owner_id = caller.user_id().map(str::to_owned);
    let owner = owner_id.as_deref().and_then(|o| uuid::Uuid::parse_str(o).ok());
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.bucket.create").await?;
    let res = tx
        .execute(
            "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types, owner, owner_id) values ($1, $1, $2, $3, $4, $5, $6)",
            &[&id, &body.public.unwrap_or(false), &limit, &mimes, &owner, &owner_id],
        )
        .await;
    match res {
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            return Err(StorageError::BucketAlreadyExists)
        }
        r => r?,
    };
    tx.commit().await?;
    Ok(json_reply(StatusCode::OK, &json!({ "name": id })))
}

/// `PUT /bucket/:id`.
pub async fn update(s: &Storage, caller: &Caller, id: &str, body: BucketBody) -> StorageResult<Response> {
    let limit = size_limit(s, &body.file_size_limit)?;
    let mimes = mime_types(&body.allowed_mime_types)?;
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.bucket.update").await?;
    let n = tx
        .execute(
            "update storage.buckets set public = coalesce($2, public), \
             file_size_limit = case when $3 then $4 else file_size_limit end, \
             allowed_mime_types = case when $5 then $6 else allowed_mime_types end, updated_at = now() where id = $1",
            &[&id, &body.public, &limit.is_some(), &limit.flatten(), &mimes.is_some(), &mimes.flatten()],
        )
        .await?;
    if n == 0 {
        return Err(StorageError::NoSuchBucket);
    }
    tx.commit().await?;
    Ok(message("Successfully updated"))
}

/// `DELETE /bucket/:id`: only an empty bucket.
pub async fn delete(s: &Storage, caller: &Caller, id: &str) -> StorageResult<Response> {
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.bucket.delete").await?;
    db::bucket(&tx, id).await?;
    // Objects (visible to the caller or not) block the delete through the
    // objects -> buckets foreign key.
    let n = match tx.execute("delete from storage.buckets where id = $1", &[&id]).await {
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
            return Err(StorageError::BucketNotEmpty)
        }
        r => r?,
    };
    if n == 0 {
        return Err(StorageError::NoSuchBucket);
    }
    tx.commit().await?;
    Ok(message("Successfully deleted"))
}

/// `POST /bucket/:id/empty`: deletes every object the caller may delete, in batches.
pub async fn empty(s: &Storage, caller: &Caller, id: &str) -> StorageResult<Response> {
    loop {
        let mut client = db::connect(s).await?;
        let tx = db::begin(&mut client, caller, "storage.bucket.empty").await?;
        db::bucket(&tx, id).await?;
        let rows = tx
            .query(
                "delete from storage.objects where id in (select id from storage.objects where bucket_id = $1 limit 1000) returning version",
                &[&id],
            )
            .await?;
        tx.commit().await?;
        let versions: Vec<String> = rows.iter().filter_map(|r| r.try_get::<_, Option<String>>(0).ok().flatten()).collect();
        super::objects::remove::delete_bytes(s, &versions).await;
        if rows.len() < 1000 {
            break;
        }
    }
    Ok(message("Successfully emptied"))
}
