//! Uploads: `POST|PUT /object/<bucket>/<path>` (raw body or multipart form)
//! and `PUT /object/upload/sign/<bucket>/<path>?token=`.
//!
//! Order (the consistency invariant of [`crate::storage`]):
//! 1. as the caller, try the row write and roll it back: RLS, duplicates
//!    and a missing bucket are refused before any byte is read;
//! 2. stream the body to `objects/<xx>/<new version>`, counting bytes
//!    against the limits (nothing is buffered beyond one part);
//! 3. as the caller, insert or upsert the row naming the new version and
//!    commit; on failure delete the new bytes;
//! 4. delete the bytes of the version the row named before (if any).

use std::pin::pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, StatusCode};
use object_store::{PutPayload, WriteMultipart};
use serde_json::{json, Value};
use warp::reply::Response;

use crate::http::caller::Caller;
use crate::storage::body::{json_reply, BodyStream};
use crate::storage::db::{self, Bucket};
use crate::storage::errors::{StorageError, StorageResult};
use crate::storage::file_write::FileWrite;
use crate::storage::{keys, Storage};

/// Bodies up to this size are sent with one PUT; larger ones as a multipart upload.
const SINGLE_PUT_BYTES: usize = 8 << 20;
/// Part size of multipart uploads.
const PART_BYTES: usize = 8 << 20;
/// Parts in flight per upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Who is uploading and how.
#[derive(Debug, Clone)]
pub struct UploadSpec {
    /// The identity whose RLS policies decide the row write.
    pub caller: Caller,
    /// `owner_id` of the row (the caller's `sub`, or the signer's).
    pub owner: Option<String>,
    /// Replace an existing object.
    pub upsert: bool,
    /// `storage.operation` value for policies.
    pub operation: &'static str,
}

/// What the client said about the bytes.
#[derive(Debug, Clone)]
struct Attributes {
    content_type: String,
    cache_control: String,
    user_metadata: Option<Value>,
}

/// Handles an upload request.
pub async fn upload(
    s: &Storage,
    spec: UploadSpec,
    bucket_id: &str,
    raw_name: &str,
    headers: &HeaderMap,
    body: BodyStream,
) -> StorageResult<Response> {
    let name = keys::object_name(raw_name)?;
    // Step 1 and the bucket's settings in one transaction (one pool checkout,
    // one round trip): the bucket read as the pool's superuser (what
    // storage-api reads as its superuser, whatever the caller's policies),
    // then the row write as the caller, rolled back.
    let bucket = {
        let mut client = db::connect(s).await?;
        let tx = client.transaction().await?;
        let b = precheck_in(s, &tx, &spec, bucket_id, &name, header(headers, "content-length")).await?;
        tx.rollback().await?;
        b
    };
    let limit = limit_for(s, &bucket);

    let content_type = header(headers, "content-type").unwrap_or_default();
    let id = if content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(&content_type).map_err(|e| StorageError::InvalidRequest(e.to_string()))?;
        let mut form = multer::Multipart::new(body, boundary);
        let mut attrs = Attributes { content_type: String::new(), cache_control: cache_control(None), user_metadata: None };
        loop {
            let field = form.next_field().await.map_err(|e| StorageError::Body(e.to_string()))?;
            let Some(field) = field else { return Err(StorageError::InvalidRequest("No file part in the form".into())) };
            let is_file = field.file_name().is_some() || field.name().is_none_or(str::is_empty);
            if is_file {
                if attrs.content_type.is_empty() {
                    attrs.content_type =
                        field.content_type().map(|m| m.to_string()).unwrap_or_else(|| "application/octet-stream".into());
                }
                break store(s, &spec, &bucket, &name, limit, attrs, field).await?;
            }
            let fname = field.name().unwrap_or_default().to_owned();
            let text = small_field(field).await?;
            match fname.as_str() {
                "cacheControl" => attrs.cache_control = cache_control(Some(&text)),
                "contentType" => attrs.content_type = text,
                "metadata" => {
                    attrs.user_metadata = Some(
                        serde_json::from_str(&text)
                            .map_err(|_| StorageError::InvalidRequest("metadata must be a JSON object".into()))?,
                    )
                }
                _ => {}
            }
        }
    } else {
        let user_metadata = match header(headers, "x-metadata") {
            Some(b64) => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| StorageError::InvalidRequest("x-metadata must be base64-encoded JSON".into()))?;
                Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|_| StorageError::InvalidRequest("x-metadata must be base64-encoded JSON".into()))?,
                )
            }
            None => None,
        };
        let attrs = Attributes {
            content_type: if content_type.is_empty() { "application/octet-stream".into() } else { content_type },
            cache_control: cache_control(header(headers, "cache-control").as_deref()),
            user_metadata,
        };
        store(s, &spec, &bucket, &name, limit, attrs, body).await?
    };
    Ok(json_reply(StatusCode::OK, &json!({ "Id": id, "Key": format!("{}/{}", bucket.id, name) })))
}

/// Largest non-file form field read (they are buffered).
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Reads a non-file form field of at most [`MAX_FIELD_BYTES`].
async fn small_field(mut field: multer::Field<'_>) -> StorageResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| StorageError::Body(e.to_string()))? {
        if buf.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(StorageError::InvalidRequest("form field too large".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| StorageError::InvalidRequest("form field is not UTF-8".into()))
}

/// The limit for one object in `bucket`.
pub fn limit_for(s: &Storage, bucket: &Bucket) -> u64 {
    let global = s.config().file_size_limit;
    match bucket.file_size_limit {
        Some(n) if n > 0 => global.min(u64::try_from(n).unwrap_or(global)),
        _ => global,
    }
}

/// Whether `content_type` is accepted by the bucket.
pub fn check_mime(bucket: &Bucket, content_type: &str) -> StorageResult<()> {
    let Some(allowed) = &bucket.allowed_mime_types else { return Ok(()) };
    if allowed.is_empty() {
        return Ok(());
    }
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ok = allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        a == essence || a == "*/*" || a.strip_suffix("/*").is_some_and(|t| essence.split('/').next() == Some(t))
    });
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidMimeType(essence))
    }
}

/// `3600` (storage-js's form field) becomes `max-age=3600`; a header value is kept.
fn cache_control(v: Option<&str>) -> String {
    match v.map(str::trim) {
        None | Some("") => "no-cache".into(),
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => format!("max-age={n}"),
        Some(other) => other.to_owned(),
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The row write, as SQL: `$1` bucket, `$2` name, `$3` owner uuid, `$4`
/// owner_id, `$5` version, `$6` metadata, `$7` user_metadata, `$8` id (kept
/// by an upsert that replaces an existing row).
fn write_sql(upsert: bool) -> &'static str {
    if upsert {
        "insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata, id) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (bucket_id, name) do update set \
         owner = excluded.owner, owner_id = excluded.owner_id, version = excluded.version, metadata = excluded.metadata, \
         user_metadata = excluded.user_metadata, last_accessed_at = now() returning id"
    } else {
        "insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata, id) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id"
    }
}

fn owner_uuid(owner: &Option<String>) -> Option<uuid::Uuid> {
    owner.as_deref().and_then(|o| uuid::Uuid::parse_str(o).ok())
}

/// Step 1: the row write as the caller, rolled back; the bucket's settings.
pub(crate) async fn precheck(s: &Storage, spec: &UploadSpec, bucket: &str, name: &str) -> StorageResult<Bucket> {
    let mut client = db::connect(s).await?;
    let tx = client.transaction().await?;
    let b = precheck_in(s, &tx, spec, bucket, name, None).await?;
    tx.rollback().await?;
    Ok(b)
}

/// Step 1 inside `tx` (which the caller rolls back): reads the bucket as
/// the pool's superuser, then switches `tx` to the caller and tries the
/// row write, so a missing bucket, a declared length over the limit, RLS
/// and uniqueness refuse an upload before any byte is stored. The three
/// statements go out together, in this order ([`write_as_caller`]).
async fn precheck_in(
    s: &Storage,
    tx: &deadpool_postgres::Transaction<'_>,
    spec: &UploadSpec,
    bucket: &str,
    name: &str,
    content_length: Option<String>,
) -> StorageResult<Bucket> {
    let read = db::bucket_statement(tx).await?;
    let read_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&bucket];
    let (meta, none) = (json!({}), None::<Value>);
    let trial = NewRow { bucket, name, version: "precheck", metadata: &meta, user_metadata: &none };
    let (b, wrote) = tokio::join!(tx.query_opt(&read, &read_params), write_as_caller(tx, spec, &trial, uuid::Uuid::new_v4()));
    let b = Bucket::from_row(b?)?;
    let limit = limit_for(s, &b);
    if content_length.and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > limit + 64 * 1024) {
        return Err(StorageError::EntityTooLarge);
    }
    wrote?;
    Ok(b)
}

/// Steps 2-4. Returns the row id.
async fn store<S, E>(
    s: &Storage,
    spec: &UploadSpec,
    bucket: &Bucket,
    name: &str,
    limit: u64,
    attrs: Attributes,
    source: S,
) -> StorageResult<uuid::Uuid>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    check_mime(bucket, &attrs.content_type)?;
    let version = uuid::Uuid::new_v4().to_string();
    let path = keys::data_path(&version);
    let (size, etag, written) = write_bytes_then(s, &path, limit, source).await?;
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let metadata = json!({
        "eTag": etag,
        "size": size,
        "mimetype": attrs.content_type,
        "cacheControl": attrs.cache_control,
        "lastModified": now,
        "contentLength": size,
        "httpStatusCode": 200,
    });
    // The row's statements run while the bytes are made durable; it commits after.
    let new = NewRow { bucket: &bucket.id, name, version: &version, metadata: &metadata, user_metadata: &attrs.user_metadata };
    match commit_row_after(s, spec, &new, written.durable()).await {
        Ok((id, old)) => {
            if let Some(old) = old.filter(|o| *o != version) {
                super::remove::delete_bytes(s, &[old]).await;
            }
            Ok(id)
        }
        Err(e) => {
            super::remove::delete_bytes(s, &[version]).await;
            Err(e)
        }
    }
}

/// The row an upload commits.
#[derive(Debug)]
pub(crate) struct NewRow<'a> {
    /// Bucket id.
    pub bucket: &'a str,
    /// Object name.
    pub name: &'a str,
    /// The version naming the new bytes.
    pub version: &'a str,
    /// storage-api's system metadata (the tag is added here).
    pub metadata: &'a Value,
    /// User metadata.
    pub user_metadata: &'a Option<Value>,
}

/// Step 3: lock the current row (as the superuser, to learn the version
/// being replaced), then write the row as the caller.
pub(crate) async fn commit_row(s: &Storage, spec: &UploadSpec, new: &NewRow<'_>) -> StorageResult<(uuid::Uuid, Option<String>)> {
    commit_row_after(s, spec, new, std::future::ready(Ok(()))).await
}

/// [`commit_row`], whose statements run while `durable` (the bytes being
/// made durable) completes; the row commits only once it has succeeded.
/// Once the transaction is open, `durable` runs to completion whatever the
/// statements do; if the pool or `BEGIN` fails first it is dropped unrun
/// (a dropped [`FileWrite`] removes its staging file).
pub(crate) async fn commit_row_after(
    s: &Storage,
    spec: &UploadSpec,
    new: &NewRow<'_>,
    durable: impl std::future::Future<Output = StorageResult<()>>,
) -> StorageResult<(uuid::Uuid, Option<String>)> {
    let mut client = db::connect(s).await?;
    let tx = client.transaction().await?;
    let (durable, row) = tokio::join!(durable, write_row(s, &tx, spec, new));
    durable?;
    let (id, old) = row?;
    tx.commit().await?;
    Ok((id, if spec.upsert { old } else { None }))
}

/// The statements of [`commit_row`] in `tx`, short of the commit: the row
/// id, and the version the row named before.
async fn write_row(
    s: &Storage,
    tx: &deadpool_postgres::Transaction<'_>,
    spec: &UploadSpec,
    new: &NewRow<'_>,
) -> StorageResult<(uuid::Uuid, Option<String>)> {
    let NewRow { bucket, name, version, metadata, .. } = *new;
    // Writers of one name queue here, so each learns the version the
    // previous one committed (and deletes its bytes once replaced).
    // The lock, then the current row: sent together (tokio-postgres
    // pipelines concurrent queries on one connection, in order).
    let lock = tx.prepare_cached("select pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))").await?;
    let select = tx.prepare_cached("select id, version from storage.objects where bucket_id = $1 and name = $2 for update").await?;
    let key: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&bucket, &name];
    let (locked, current) = tokio::join!(tx.execute(&lock, &key), tx.query_opt(&select, &key));
    locked?;
    let current = current?;
    let (id, old): (uuid::Uuid, Option<String>) = match current {
        Some(r) => (r.try_get(0)?, r.try_get(1)?),
        None => (uuid::Uuid::new_v4(), None),
    };
    // Seal (id, version) so the bytes are served only through this row.
    let mut metadata = metadata.clone();
    if let Some(m) = metadata.as_object_mut() {
        let tag = crate::storage::tag::compute(crate::storage::tag::key(s).await?, &id, version);
        m.insert(crate::storage::tag::FIELD.into(), Value::String(tag));
    }
    let written = write_as_caller(tx, spec, &NewRow { metadata: &metadata, ..*new }, id).await?;
    if written != id {
        // A row appeared by other means between the lock and the write; its
        // id differs, so the tag would not hold. Refuse rather than store
        // bytes nobody can read.
        return Err(StorageError::Duplicate);
    }
    Ok((id, old))
}

/// Switches `tx` to the caller and writes `new`'s row with id `id`; the
/// written row's id. Both statements are prepared first, then sent
/// together, the switch first, so they run in this order (and after any
/// statement the caller sent before polling this).
async fn write_as_caller(
    tx: &deadpool_postgres::Transaction<'_>,
    spec: &UploadSpec,
    new: &NewRow<'_>,
    id: uuid::Uuid,
) -> StorageResult<uuid::Uuid> {
    let act = db::act_as_statement(tx).await?;
    let write = tx.prepare_cached(write_sql(spec.upsert)).await?;
    let (role, claims) = spec.caller.apply_params();
    let owner = owner_uuid(&spec.owner);
    let act_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&role, &claims, &spec.operation];
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
        [&new.bucket, &new.name, &owner, &spec.owner, &new.version, new.metadata, new.user_metadata, &id];
    let (acted, row) = tokio::join!(tx.execute(&act, &act_params), tx.query_one(&write, &params));
    acted?;
    Ok(row?.try_get(0)?)
}

/// Step 2: streams `source` to `path`, refusing more than `limit` bytes.
/// Returns the size and the quoted ETag. The file backend writes through
/// [`crate::storage::file_write`]; other stores through object_store.
pub async fn write_bytes<S, E>(
    s: &Storage,
    path: &object_store::path::Path,
    limit: u64,
    source: S,
) -> StorageResult<(u64, String)>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let (size, etag, written) = write_bytes_then(s, path, limit, source).await?;
    written.durable().await?;
    Ok((size, etag))
}

/// Bytes all written; on the file backend not yet durable under their name.
#[derive(Debug)]
pub(crate) enum Written {
    /// Durable already (object_store's stores).
    Durable,
    /// Queued to the file backend's writer.
    File(FileWrite),
}

impl Written {
    /// Makes the bytes durable under their name (removes them on failure).
    pub(crate) async fn durable(self) -> StorageResult<()> {
        match self {
            Written::Durable => Ok(()),
            Written::File(w) => w.finish().await,
        }
    }
}

/// [`write_bytes`], leaving the last step (durability) to the caller, who
/// may overlap it with other work.
pub(crate) async fn write_bytes_then<S, E>(
    s: &Storage,
    path: &object_store::path::Path,
    limit: u64,
    source: S,
) -> StorageResult<(u64, String, Written)>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    if s.config().backend == "file" {
        let (size, writer) = write_file(s, path, limit, source).await?;
        // A version's bytes never change, so its name identifies them.
        let etag = path.filename().unwrap_or_default().replace('-', "");
        return Ok((size, format!("\"{etag}\""), Written::File(writer)));
    }
    let mut source = pin!(source);
    let mut size: u64 = 0;
    let mut head: Vec<Bytes> = Vec::new();
    let mut head_len = 0usize;
    let mut writer: Option<WriteMultipart> = None;
    let result: StorageResult<()> = async {
        while let Some(chunk) = next_chunk(&mut source, &mut size, limit).await? {
            match writer.as_mut() {
                Some(w) => {
                    w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    w.put(chunk);
                }
                None => {
                    head_len += chunk.len();
                    head.push(chunk);
                    if head_len > SINGLE_PUT_BYTES {
                        let upload = s.store.put_multipart(path).await?;
                        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                        for c in head.drain(..) {
                            w.put(c);
                        }
                        writer = Some(w);
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    let put = match (result, writer) {
        (Ok(()), Some(w)) => w.finish().await.map_err(StorageError::from),
        (Ok(()), None) => s.store.put(path, PutPayload::from_iter(head)).await.map_err(StorageError::from),
        (Err(e), Some(w)) => {
            if let Err(abort) = w.abort().await {
                tracing::warn!(error = %abort, "aborting a multipart upload failed; the sweep will remove its bytes");
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    }?;
    let etag = put.e_tag.unwrap_or_else(|| format!("{size:x}"));
    Ok((size, format!("\"{}\"", etag.trim_matches('"')), Written::Durable))
}

/// The next chunk of `source`, added to `size`; `EntityTooLarge` once
/// `size` passes `limit`.
async fn next_chunk<S, E>(source: &mut std::pin::Pin<&mut S>, size: &mut u64, limit: u64) -> StorageResult<Option<Bytes>>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let Some(chunk) = source.next().await else { return Ok(None) };
    let chunk = chunk.map_err(|e| StorageError::Body(e.to_string()))?;
    *size += chunk.len() as u64;
    if *size > limit {
        return Err(StorageError::EntityTooLarge);
    }
    Ok(Some(chunk))
}

/// Step 2 on the file backend: every byte queued to the writer, whose
/// `finish` makes them durable under `path`.
async fn write_file<S, E>(s: &Storage, path: &object_store::path::Path, limit: u64, source: S) -> StorageResult<(u64, FileWrite)>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let root = crate::storage::backend::file_root(&s.app.config);
    let file = crate::storage::backend::file_path(&root, path);
    let mut writer = FileWrite::start(root, file);
    let mut source = pin!(source);
    let mut size: u64 = 0;
    let result: StorageResult<()> = async {
        while let Some(chunk) = next_chunk(&mut source, &mut size, limit).await? {
            writer.put(chunk).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok((size, writer)),
        Err(e) => {
            writer.abort().await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(mimes: Option<Vec<&str>>, limit: Option<i64>) -> Bucket {
        Bucket {
            id: "b".into(),
            public: false,
            file_size_limit: limit,
            allowed_mime_types: mimes.map(|m| m.into_iter().map(str::to_owned).collect()),
        }
    }

    #[test]
    fn mime_rules() {
        let b = bucket(Some(vec!["image/*", "text/plain"]), None);
        assert!(check_mime(&b, "image/png").is_ok());
        assert!(check_mime(&b, "text/plain;charset=UTF-8").is_ok());
        assert!(matches!(check_mime(&b, "application/pdf"), Err(StorageError::InvalidMimeType(m)) if m == "application/pdf"));
        assert!(check_mime(&bucket(None, None), "anything/at-all").is_ok());
    }

    #[test]
    fn cache_control_forms() {
        assert_eq!(cache_control(Some("3600")), "max-age=3600");
        assert_eq!(cache_control(Some("no-store")), "no-store");
        assert_eq!(cache_control(None), "no-cache");
    }
}
