//! TUS 1.0.0 resumable uploads at `/upload/resumable`, as storage-api
//! offers them to `tus-js-client`: creation (`POST`, `Upload-Length`,
//! `Upload-Metadata` with `bucketName`, `objectName`, `contentType`,
//! `cacheControl`, `metadata`; `x-upsert`), offset (`HEAD`), append
//! (`PATCH`, `application/offset+octet-stream`) and termination (`DELETE`).
//!
//! State lives in `storage.fluxbase_resumable_uploads` (migration 0301).
//! Each PATCH streams its body into one part object `tus/<id>/<offset>`; a
//! PATCH cut off mid-body keeps what arrived, so the client resumes from the
//! offset `HEAD` reports. The PATCH that reaches `Upload-Length` streams the
//! parts, in order, into the object's version key and writes the row as the
//! caller (RLS decides, as for any upload), then deletes the parts.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode};
use object_store::path::Path;
use serde_json::{json, Value};
use warp::reply::Response;

use super::body::BodyStream;
use super::db;
use super::errors::{StorageError, StorageResult};
use super::objects::upload::{check_mime, commit_row, limit_for, precheck, write_bytes, UploadSpec};
use super::{keys, Storage};
use crate::http::caller::Caller;

const TUS_VERSION: &str = "1.0.0";

fn part_path(id: &uuid::Uuid, offset: i64) -> Path {
    Path::from_iter(["tus".to_owned(), id.to_string(), format!("{offset:020}")])
}

fn tus_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
}

fn empty(status: StatusCode) -> Response {
    let mut res = Response::new(Default::default());
    *res.status_mut() = status;
    tus_headers(&mut res);
    res
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Parses `Upload-Metadata`: `key base64value` pairs separated by commas.
pub fn parse_metadata(raw: &str) -> StorageResult<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once(' ').unwrap_or((pair, ""));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|_| StorageError::InvalidRequest(format!("Upload-Metadata: {k} is not base64")))?;
        let v = String::from_utf8(bytes).map_err(|_| StorageError::InvalidRequest(format!("Upload-Metadata: {k} is not UTF-8")))?;
        out.insert(k.to_owned(), v);
    }
    Ok(out)
}

/// `OPTIONS`-free discovery is not needed by tus-js-client; creation:
pub async fn create(s: &Storage, caller: &Caller, headers: &HeaderMap) -> StorageResult<Response> {
    let length: i64 = header(headers, "upload-length")
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &i64| *n >= 0)
        .ok_or_else(|| StorageError::InvalidRequest("Upload-Length is required (deferred length is not supported)".into()))?;
    let meta = parse_metadata(header(headers, "upload-metadata").unwrap_or(""))?;
    let bucket_id = meta.get("bucketName").cloned().unwrap_or_default();
    let name = keys::object_name(meta.get("objectName").map(String::as_str).unwrap_or(""))?;
    let content_type = meta.get("contentType").cloned().filter(|c| !c.is_empty()).unwrap_or_else(|| "application/octet-stream".into());
    let cache_control = match meta.get("cacheControl").map(String::as_str) {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => format!("max-age={n}"),
        Some(c) if !c.is_empty() => c.to_owned(),
        _ => "max-age=3600".into(),
    };
    let user_metadata: Option<Value> = match meta.get("metadata") {
        Some(m) if !m.is_empty() => {
            Some(serde_json::from_str(m).map_err(|_| StorageError::InvalidRequest("metadata must be JSON".into()))?)
        }
        _ => None,
    };
    let upsert = header(headers, "x-upsert").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let bucket = {
        let mut client = db::connect(s).await?;
        let tx = db::begin(&mut client, &db::service_caller(), "storage.object.upload").await?;
        let b = db::bucket(&tx, &bucket_id).await?;
        tx.commit().await?;
        b
    };
    if u64::try_from(length).unwrap_or(u64::MAX) > limit_for(s, &bucket) {
        return Err(StorageError::EntityTooLarge);
    }
    check_mime(&bucket, &content_type)?;
    let owner = caller.user_id().map(str::to_owned);
    let spec = UploadSpec { caller: caller.clone(), owner: owner.clone(), upsert, operation: "storage.object.upload" };
    precheck(s, &spec, &bucket.id, &name).await?;
    let id = uuid::Uuid::new_v4();
    let client = db::connect(s).await?;
    client
        .execute(
            "insert into storage.fluxbase_resumable_uploads (id, bucket_id, name, owner_id, upsert, upload_length, content_type, cache_control, user_metadata) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&id, &bucket.id, &name, &owner, &upsert, &length, &content_type, &cache_control, &user_metadata],
        )
        .await?;
    let mut res = empty(StatusCode::CREATED);
    let public = s.app.config.server.public_url.trim_end_matches('/');
    let base = if public.is_empty() { origin(headers) } else { public.to_owned() };
    let location = format!("{base}/storage/v1/upload/resumable/{id}");
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert("location", v);
    }
    res.headers_mut().insert("upload-offset", HeaderValue::from_static("0"));
    Ok(res)
}

/// `scheme://host` the client used (when `server.public_url` is not set).
fn origin(headers: &HeaderMap) -> String {
    let host = header(headers, "x-forwarded-host").or(header(headers, "host")).unwrap_or("localhost");
    let proto = header(headers, "x-forwarded-proto").unwrap_or("http");
    format!("{proto}://{host}")
}

struct Upload {
    id: uuid::Uuid,
    bucket_id: String,
    name: String,
    owner_id: Option<String>,
    upsert: bool,
    length: i64,
    offset: i64,
    content_type: String,
    cache_control: String,
    user_metadata: Option<Value>,
    parts: Vec<(i64, i64)>,
}

async fn load(s: &Storage, caller: &Caller, raw_id: &str) -> StorageResult<Upload> {
    let id = uuid::Uuid::parse_str(raw_id).map_err(|_| StorageError::NoSuchKey)?;
    let client = db::connect(s).await?;
    let row = client
        .query_opt(
            "select id, bucket_id, name, owner_id, upsert, upload_length, upload_offset, content_type, cache_control, user_metadata, parts \
             from storage.fluxbase_resumable_uploads where id = $1",
            &[&id],
        )
        .await?
        .ok_or(StorageError::NoSuchKey)?;
    let owner_id: Option<String> = row.try_get(3)?;
    // Only the creator (or the service role) may see or continue an upload.
    if !caller.is_service_role() && owner_id.as_deref() != caller.user_id() {
        return Err(StorageError::NoSuchKey);
    }
    let parts: Value = row.try_get(10)?;
    let parts = parts
        .as_array()
        .map(|a| a.iter().filter_map(|p| Some((p.get(0)?.as_i64()?, p.get(1)?.as_i64()?))).collect())
        .unwrap_or_default();
    Ok(Upload {
        id: row.try_get(0)?,
        bucket_id: row.try_get(1)?,
        name: row.try_get(2)?,
        owner_id,
        upsert: row.try_get(4)?,
        length: row.try_get(5)?,
        offset: row.try_get(6)?,
        content_type: row.try_get(7)?,
        cache_control: row.try_get(8)?,
        user_metadata: row.try_get(9)?,
        parts,
    })
}

/// `HEAD /upload/resumable/<id>`: the offset.
pub async fn head(s: &Storage, caller: &Caller, id: &str) -> StorageResult<Response> {
    let u = load(s, caller, id).await?;
    let mut res = empty(StatusCode::OK);
    let h = res.headers_mut();
    h.insert("upload-offset", HeaderValue::from(u.offset));
    h.insert("upload-length", HeaderValue::from(u.length));
    Ok(res)
}

/// A body stream that ends quietly where the client broke off, remembering that it did.
struct UntilBroken {
    inner: BodyStream,
    broken: Arc<AtomicBool>,
}

impl Stream for UntilBroken {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Err(_))) => {
                self.broken.store(true, Ordering::SeqCst);
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

/// `PATCH /upload/resumable/<id>`: appends, and completes the upload at its length.
pub async fn patch(s: &Storage, caller: &Caller, id: &str, headers: &HeaderMap, body: BodyStream) -> StorageResult<Response> {
    let u = load(s, caller, id).await?;
    if !header(headers, "content-type").is_some_and(|c| c.eq_ignore_ascii_case("application/offset+octet-stream")) {
        return Err(StorageError::InvalidMimeType(header(headers, "content-type").unwrap_or("").to_owned()));
    }
    let offset: i64 = header(headers, "upload-offset")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| StorageError::InvalidRequest("Upload-Offset is required".into()))?;
    if offset != u.offset {
        return Err(StorageError::Api(
            crate::http::error::ApiError::new(StatusCode::CONFLICT, "InvalidUploadOffset", format!("Upload-Offset must be {}", u.offset))
                .with_details("Conflict"),
        ));
    }
    let remaining = u64::try_from(u.length - u.offset).unwrap_or(0);
    let broken = Arc::new(AtomicBool::new(false));
    let stream = UntilBroken { inner: body, broken: Arc::clone(&broken) };
    let path = part_path(&u.id, offset);
    let (size, _) = write_bytes(s, &path, remaining, stream).await?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let new_offset = offset + size;
    if size > 0 {
        let client = db::connect(s).await?;
        let n = client
            .execute(
                "update storage.fluxbase_resumable_uploads set upload_offset = $3, parts = parts || jsonb_build_array(jsonb_build_array($2::bigint, $4::bigint)) \
                 where id = $1 and upload_offset = $2",
                &[&u.id, &offset, &new_offset, &size],
            )
            .await?;
        if n == 0 {
            // Another PATCH got there first.
            let _ = s.store.delete(&path).await;
            return Err(StorageError::Api(
                crate::http::error::ApiError::new(StatusCode::CONFLICT, "InvalidUploadOffset", "Upload-Offset changed during the request")
                    .with_details("Conflict"),
            ));
        }
    } else {
        let _ = s.store.delete(&path).await;
    }
    if broken.load(Ordering::SeqCst) {
        return Err(StorageError::Body("the request body broke off; resume from Upload-Offset".into()));
    }
    if new_offset == u.length {
        let mut parts = u.parts.clone();
        if size > 0 {
            parts.push((offset, size));
        }
        finish(s, caller, &u, &parts).await?;
    }
    let mut res = empty(StatusCode::NO_CONTENT);
    res.headers_mut().insert("upload-offset", HeaderValue::from(new_offset));
    Ok(res)
}

/// Concatenates the parts into a new version and writes the row as the caller.
async fn finish(s: &Storage, caller: &Caller, u: &Upload, parts: &[(i64, i64)]) -> StorageResult<()> {
    let store = Arc::clone(&s.store);
    let id = u.id;
    let paths: Vec<Path> = parts.iter().map(|(off, _)| part_path(&id, *off)).collect();
    let stream = concat(store, paths);
    let version = uuid::Uuid::new_v4().to_string();
    let vpath = keys::data_path(&version);
    let (size, etag) = write_bytes(s, &vpath, u64::try_from(u.length).unwrap_or(0), stream).await?;
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let metadata = json!({
        "eTag": etag, "size": size, "mimetype": u.content_type, "cacheControl": u.cache_control,
        "lastModified": now, "contentLength": size, "httpStatusCode": 200,
    });
    let spec = UploadSpec { caller: caller.clone(), owner: u.owner_id.clone(), upsert: u.upsert, operation: "storage.object.upload" };
    let result = commit_row(s, &spec, &u.bucket_id, &u.name, &version, &metadata, &u.user_metadata).await;
    match &result {
        Ok((_, old)) => {
            if let Some(old) = old.clone().filter(|o| *o != version) {
                super::objects::remove::delete_bytes(s, &[old]).await;
            }
        }
        Err(_) => super::objects::remove::delete_bytes(s, &[version]).await,
    }
    discard(s, u).await;
    result.map(|_| ())
}

/// The parts' bytes, one after another, fetched lazily.
fn concat(
    store: Arc<dyn object_store::ObjectStore>,
    paths: Vec<Path>,
) -> futures_util::stream::BoxStream<'static, Result<Bytes, object_store::Error>> {
    type Parts = (Arc<dyn object_store::ObjectStore>, std::vec::IntoIter<Path>, Option<futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>>);
    let state: Parts = (store, paths.into_iter(), None);
    futures_util::stream::unfold(state, |(store, mut paths, mut current)| async move {
        loop {
            if let Some(cur) = current.as_mut() {
                if let Some(item) = cur.next().await {
                    return Some((item, (store, paths, current)));
                }
            }
            let next = paths.next()?;
            match store.get(&next).await {
                Ok(g) => current = Some(g.into_stream()),
                Err(e) => return Some((Err(e), (store, Vec::new().into_iter(), None))),
            }
        }
    })
    .boxed()
}

/// Deletes an upload's row and parts.
async fn discard(s: &Storage, u: &Upload) {
    if let Ok(client) = db::connect(s).await {
        let _ = client.execute("delete from storage.fluxbase_resumable_uploads where id = $1", &[&u.id]).await;
    }
    let prefix = Path::from_iter(["tus".to_owned(), u.id.to_string()]);
    let mut listing = s.store.list(Some(&prefix));
    while let Some(Ok(meta)) = listing.next().await {
        let _ = s.store.delete(&meta.location).await;
    }
}

/// `DELETE /upload/resumable/<id>`: termination.
pub async fn terminate(s: &Storage, caller: &Caller, id: &str) -> StorageResult<Response> {
    let u = load(s, caller, id).await?;
    discard(s, &u).await;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs() {
        let m = parse_metadata("bucketName YnVja2V0,objectName YS9iLnR4dA==, empty").expect("parses");
        assert_eq!(m["bucketName"], "bucket");
        assert_eq!(m["objectName"], "a/b.txt");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("k !!!").is_err());
    }
}
