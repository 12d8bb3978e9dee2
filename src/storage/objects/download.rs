//! Downloads: `GET|HEAD /object/[authenticated/]<bucket>/<path>` as the
//! caller, `/object/public/…` for public buckets, and signed URLs (checked in
//! [`crate::storage::signed`]). Bytes are streamed; `Range`, `ETag`,
//! `If-None-Match` (304), `Last-Modified`, `Content-Type`, `Cache-Control`
//! and `download=` (Content-Disposition) are honoured.

use http::{HeaderMap, HeaderValue, StatusCode};
use object_store::{GetOptions, GetRange};
use warp::reply::Response;

use crate::http::caller::Caller;
use crate::storage::body::pump_get;
use crate::storage::db::{self, ObjectRow};
use crate::storage::errors::{StorageError, StorageResult};
use crate::storage::{keys, Storage};

/// How the request is authorised.
#[derive(Debug, Clone)]
pub enum Access {
    /// RLS as this caller decides.
    Caller(Caller),
    /// Anyone, if the bucket is public.
    Public,
    /// A verified signed-URL token for exactly this object.
    Signed,
}

/// Reads the row the request names, as `access` allows.
pub async fn find(s: &Storage, access: &Access, bucket: &str, name: &str) -> StorageResult<ObjectRow> {
    let caller = match access {
        Access::Caller(c) => c.clone(),
        Access::Public | Access::Signed => db::service_caller(),
    };
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, &caller, "storage.object.get").await?;
    if matches!(access, Access::Public) && !db::bucket(&tx, bucket).await?.public {
        return Err(StorageError::NoSuchBucket);
    }
    let row = db::object(&tx, bucket, name).await?;
    tx.commit().await?;
    Ok(row)
}

/// Serves the object.
pub async fn download(
    s: &Storage,
    access: Access,
    bucket: &str,
    raw_name: &str,
    headers: &HeaderMap,
    download: Option<String>,
    head: bool,
) -> StorageResult<Response> {
    let name = keys::object_name(raw_name)?;
    let row = find(s, &access, bucket, &name).await?;
    let version = crate::storage::tag::checked_version(s, &row).await?;
    let size = row.size();
    let etag = row.meta_str("eTag").map(str::to_owned);

    let mut res = Response::new(Default::default());
    let h = res.headers_mut();
    put(h, "content-type", row.meta_str("mimetype").unwrap_or("application/octet-stream"));
    put(h, "cache-control", row.meta_str("cacheControl").unwrap_or("no-cache"));
    put(h, "accept-ranges", "bytes");
    if let Some(e) = &etag {
        put(h, "etag", e);
    }
    if let Some(lm) = last_modified(&row) {
        put(h, "last-modified", &lm);
    }
    if let Some(d) = download {
        let file = if d.is_empty() { name.rsplit('/').next().unwrap_or(&name).to_owned() } else { d };
        put(h, "content-disposition", &disposition(&file));
    }

    if let (Some(inm), Some(e)) = (headers.get("if-none-match").and_then(|v| v.to_str().ok()), &etag) {
        if inm.split(',').any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == e) {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return Ok(res);
        }
    }
    let range = match headers.get("range").and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, size)?,
        None => None,
    };
    let (start, end) = range.unwrap_or((0, size));
    if range.is_some() {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        put(res.headers_mut(), "content-range", &format!("bytes {start}-{}/{size}", end.saturating_sub(1)));
    }
    put(res.headers_mut(), "content-length", &(end - start).to_string());
    if head || end == start {
        return Ok(res);
    }
    let opts = GetOptions { range: range.map(|(a, b)| GetRange::Bounded(a..b)), ..GetOptions::default() };
    let got = s.store.get_opts(&keys::data_path(&version), opts).await?;
    let stream = pump_get(got);
    let (_, body) = warp::Reply::into_response(warp::reply::stream(stream)).into_parts();
    let (parts, _) = res.into_parts();
    Ok(Response::from_parts(parts, body))
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `Last-Modified` from the row's metadata (RFC 3339) as an HTTP date.
fn last_modified(row: &ObjectRow) -> Option<String> {
    let raw = row.meta_str("lastModified").or(row.updated_at.as_deref())?;
    let t = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()?;
    let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(t.unix_timestamp()).ok()?);
    Some(httpdate::fmt_http_date(st))
}

/// `attachment` with an ASCII fallback and the UTF-8 name.
fn disposition(file: &str) -> String {
    let ascii: String = file.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded = percent_encoding::utf8_percent_encode(file, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// One `bytes=` range as `[start, end)`; `None` means the whole object.
pub fn parse_range(header: &str, size: u64) -> StorageResult<Option<(u64, u64)>> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(StorageError::InvalidRange)?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| StorageError::InvalidRange)?;
        if n == 0 {
            return Err(StorageError::InvalidRange);
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().map_err(|_| StorageError::InvalidRange)?;
        let end = if b.is_empty() { size } else { b.parse::<u64>().map_err(|_| StorageError::InvalidRange)?.saturating_add(1).min(size) };
        (start, end)
    };
    if r.0 >= size || r.0 >= r.1 {
        return Err(StorageError::InvalidRange);
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).ok(), Some(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100).ok(), Some(Some((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100).ok(), Some(Some((90, 100))));
        assert_eq!(parse_range("bytes=50-500", 100).ok(), Some(Some((50, 100))));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert!(parse_range("bytes=x-1", 100).is_err());
        assert_eq!(parse_range("items=1-2", 100).ok(), Some(None));
    }

    #[test]
    fn dispositions() {
        assert_eq!(disposition("a b.txt"), "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b%2Etxt");
    }
}
