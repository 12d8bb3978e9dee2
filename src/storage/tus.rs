//! TUS 1.0.0 resumable uploads at `/upload/resumable`, as storage-api
//! offers them to `tus-js-client`: creation (`POST`, `Upload-Length`,
//! `Upload-Metadata` with `bucketName`, `objectName`, `contentType`,
//! `cacheControl`, `metadata`; `x-upsert`), offset (`HEAD`), append
//! (`PATCH`, `application/offset+octet-stream`), creation-with-upload (a
//! `POST` carrying the first bytes, as Supabase's docs set
//! `uploadDataDuringCreation`) and termination (`DELETE`).
//!
//! Two ways in, as in storage-api: `/upload/resumable[/<id>]` as the caller
//! (`Authorization: Bearer`, RLS decides), and `/upload/resumable/sign[/<id>]`
//! authorised by a signed upload token (`createSignedUploadUrl`) in the
//! `x-signature` header, written as the token's owner with its `upsert`.
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
use super::objects::upload::{check_mime, commit_row, limit_for, precheck, write_bytes, NewRow, UploadSpec};
use super::{keys, Storage};
use crate::http::caller::Caller;

const TUS_VERSION: &str = "1.0.0";

/// A part's key: `tus/<id>/<offset>-<nonce>`. The nonce keeps a PATCH that
/// lost a race (its client gave up and resumed while the server was still
/// storing the cut-off body) from overwriting or deleting the part that won.
/// Parts recorded before nonces existed have the bare offset as their name.
fn part_path(id: &uuid::Uuid, name: &str) -> Path {
    Path::from_iter(["tus".to_owned(), id.to_string(), name.to_owned()])
}

fn new_part_name(offset: i64) -> String {
    format!("{offset:020}-{}", uuid::Uuid::new_v4().simple())
}

/// One stored PATCH body: `[offset, size, name]` in the `parts` column.
#[derive(Clone, Debug, PartialEq)]
struct Part {
    size: i64,
    name: String,
}

fn parse_parts(v: &Value) -> Vec<Part> {
    let Some(a) = v.as_array() else { return Vec::new() };
    a.iter()
        .filter_map(|p| {
            let offset = p.get(0)?.as_i64()?;
            let name = p.get(2).and_then(Value::as_str).map_or_else(|| format!("{offset:020}"), str::to_owned);
            Some(Part { size: p.get(1)?.as_i64()?, name })
        })
        .collect()
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

/// Who a TUS request acts for: the caller, or the holder of a signed upload token.
pub enum TusAuth {
    /// `/upload/resumable`: the caller's role and claims.
    Caller(Caller),
    /// `/upload/resumable/sign`: the `x-signature` token (verified per request).
    Signed(Option<String>),
}

impl TusAuth {
    fn signed(&self) -> bool {
        matches!(self, TusAuth::Signed(_))
    }

    /// The caller the database work runs as: the service role for a signed
    /// upload (the token is the permission, as storage-api's `dbSuperUser`).
    fn caller(&self) -> Caller {
        match self {
            TusAuth::Caller(c) => c.clone(),
            TusAuth::Signed(_) => db::service_caller(),
        }
    }

    /// For a signed request, checks the token against `<bucket>/<name>` and
    /// returns its `(owner, upsert)`.
    fn verify(&self, s: &Storage, bucket: &str, name: &str) -> StorageResult<Option<(Option<String>, bool)>> {
        match self {
            TusAuth::Caller(_) => Ok(None),
            TusAuth::Signed(token) => {
                let token = token.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| StorageError::InvalidSignature("Missing x-signature header".into()))?;
                let claims = super::signed::verify(s, Some(token), bucket, name, true)?;
                Ok(Some((claims.owner, claims.upsert.unwrap_or(false))))
            }
        }
    }
}

/// `POST /upload/resumable[/sign]`: creation, with the first bytes when the
/// body is `application/offset+octet-stream`.
pub async fn create(s: &Storage, auth: &TusAuth, headers: &HeaderMap, body: &mut BodyStream) -> StorageResult<Response> {
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
    let caller = auth.caller();
    let (owner, upsert) = match auth.verify(s, &bucket_id, &name)? {
        Some(signed) => signed,
        None => (caller.user_id().map(str::to_owned), header(headers, "x-upsert").is_some_and(|v| v.eq_ignore_ascii_case("true"))),
    };
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
    let spec = UploadSpec { caller: caller.clone(), owner: owner.clone(), upsert, operation: operation(auth) };
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
    let mut offset = 0;
    if is_upload_body(headers) {
        let u = Upload {
            id,
            bucket_id: bucket.id.clone(),
            name,
            owner_id: owner,
            upsert,
            length,
            offset: 0,
            content_type,
            cache_control,
            user_metadata,
            parts: Vec::new(),
        };
        offset = append(s, auth, &u, body).await?;
    }
    let mut res = empty(StatusCode::CREATED);
    let public = s.app.config.server.public_url.trim_end_matches('/');
    let base = if public.is_empty() { origin(headers) } else { public.to_owned() };
    let sign = if auth.signed() { "/sign" } else { "" };
    let location = format!("{base}/storage/v1/upload/resumable{sign}/{id}");
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert("location", v);
    }
    res.headers_mut().insert("upload-offset", HeaderValue::from(offset));
    Ok(res)
}

fn operation(auth: &TusAuth) -> &'static str {
    if auth.signed() {
        "storage.object.upload_signed"
    } else {
        "storage.object.upload"
    }
}

fn is_upload_body(headers: &HeaderMap) -> bool {
    header(headers, "content-type").is_some_and(|c| c.eq_ignore_ascii_case("application/offset+octet-stream"))
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
    parts: Vec<Part>,
}

/// The upload `raw_id`, if `auth` may continue it: its creator (or the
/// service role), or a token signed for its object.
async fn load(s: &Storage, auth: &TusAuth, raw_id: &str) -> StorageResult<Upload> {
    let u = load_row(s, raw_id).await?;
    match auth {
        TusAuth::Caller(c) if !c.is_service_role() && u.owner_id.as_deref() != c.user_id() => Err(StorageError::NoSuchKey),
        TusAuth::Caller(_) => Ok(u),
        TusAuth::Signed(_) => {
            auth.verify(s, &u.bucket_id, &u.name)?;
            Ok(u)
        }
    }
}

async fn load_row(s: &Storage, raw_id: &str) -> StorageResult<Upload> {
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
    let parts = parse_parts(&row.try_get::<_, Value>(10)?);
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
pub async fn head(s: &Storage, auth: &TusAuth, id: &str) -> StorageResult<Response> {
    let u = load(s, auth, id).await?;
    let mut res = empty(StatusCode::OK);
    let h = res.headers_mut();
    h.insert("upload-offset", HeaderValue::from(u.offset));
    h.insert("upload-length", HeaderValue::from(u.length));
    Ok(res)
}

/// A body stream that ends quietly where the client broke off, remembering that it did.
struct UntilBroken<'a> {
    inner: &'a mut BodyStream,
    broken: Arc<AtomicBool>,
}

impl Stream for UntilBroken<'_> {
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
pub async fn patch(s: &Storage, auth: &TusAuth, id: &str, headers: &HeaderMap, body: &mut BodyStream) -> StorageResult<Response> {
    let u = load(s, auth, id).await?;
    if !is_upload_body(headers) {
        return Err(StorageError::InvalidMimeType(header(headers, "content-type").unwrap_or("").to_owned()));
    }
    let offset: i64 = header(headers, "upload-offset")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| StorageError::InvalidRequest("Upload-Offset is required".into()))?;
    if offset != u.offset {
        return Err(offset_conflict(format!("Upload-Offset must be {}", u.offset)));
    }
    let new_offset = append(s, auth, &u, body).await?;
    let mut res = empty(StatusCode::NO_CONTENT);
    res.headers_mut().insert("upload-offset", HeaderValue::from(new_offset));
    Ok(res)
}

fn offset_conflict(message: String) -> StorageError {
    StorageError::Api(crate::http::error::ApiError::new(StatusCode::CONFLICT, "InvalidUploadOffset", message).with_details("Conflict"))
}

/// Streams `body` into the part at `u.offset`, records it, and completes
/// the upload when it reaches its length. Returns the new offset.
async fn append(s: &Storage, auth: &TusAuth, u: &Upload, body: &mut BodyStream) -> StorageResult<i64> {
    let offset = u.offset;
    let remaining = u64::try_from(u.length - u.offset).unwrap_or(0);
    let broken = Arc::new(AtomicBool::new(false));
    let stream = UntilBroken { inner: body, broken: Arc::clone(&broken) };
    let part = new_part_name(offset);
    let path = part_path(&u.id, &part);
    let (size, _) = write_bytes(s, &path, remaining, stream).await?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let new_offset = offset + size;
    if size > 0 {
        let client = db::connect(s).await?;
        let n = client
            .execute(
                "update storage.fluxbase_resumable_uploads set upload_offset = $3, parts = parts || jsonb_build_array(jsonb_build_array($2::bigint, $4::bigint, $5::text)) \
                 where id = $1 and upload_offset = $2",
                &[&u.id, &offset, &new_offset, &size, &part],
            )
            .await?;
        if n == 0 {
            // Another PATCH got there first.
            let _ = s.store.delete(&path).await;
            return Err(offset_conflict("Upload-Offset changed during the request".into()));
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
            parts.push(Part { size, name: part });
        }
        finish(s, auth, u, &parts).await?;
    }
    Ok(new_offset)
}

/// Concatenates the parts into a new version and writes the row as the caller.
async fn finish(s: &Storage, auth: &TusAuth, u: &Upload, parts: &[Part]) -> StorageResult<()> {
    let store = Arc::clone(&s.store);
    let id = u.id;
    let paths: Vec<Path> = parts.iter().map(|p| part_path(&id, &p.name)).collect();
    let stream = concat(store, paths);
    let version = uuid::Uuid::new_v4().to_string();
    let vpath = keys::data_path(&version);
    let (size, etag) = write_bytes(s, &vpath, u64::try_from(u.length).unwrap_or(0), stream).await?;
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let metadata = json!({
        "eTag": etag, "size": size, "mimetype": u.content_type, "cacheControl": u.cache_control,
        "lastModified": now, "contentLength": size, "httpStatusCode": 200,
    });
    let spec = UploadSpec { caller: auth.caller(), owner: u.owner_id.clone(), upsert: u.upsert, operation: operation(auth) };
    let new = NewRow { bucket: &u.bucket_id, name: &u.name, version: &version, metadata: &metadata, user_metadata: &u.user_metadata };
    let result = commit_row(s, &spec, &new).await;
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
pub async fn terminate(s: &Storage, auth: &TusAuth, id: &str) -> StorageResult<Response> {
    let u = load(s, auth, id).await?;
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

    #[test]
    fn parts_with_and_without_names() {
        let parts = parse_parts(&json!([[0, 6, "00000000000000000000-ab"], [6, 3], "junk"]));
        assert_eq!(
            parts,
            vec![Part { size: 6, name: "00000000000000000000-ab".into() }, Part { size: 3, name: "00000000000000000006".into() }]
        );
        assert!(new_part_name(6).starts_with("00000000000000000006-"));
    }
}
