//! Image transformation at `/render/image/{authenticated,public,sign}/<bucket>/<path>`,
//! as supabase-js's `transform` option uses it (storage-api hands these to
//! imgproxy; Fluxbase does them in-process with the `image` crate).
//!
//! The object is found exactly as a download finds it (RLS as the caller,
//! a public bucket, or a signed token whose `transformations` fix the
//! options), its bytes are read whole (refused above
//! `storage.image_max_source_bytes`), and [`transform::transform`] runs on a
//! blocking thread, at most `storage.image_concurrency` at a time.

pub mod options;
pub mod transform;

use http::{HeaderMap, HeaderValue};
use warp::reply::Response;

use self::options::TransformOptions;
use self::transform::TransformError;
use crate::storage::errors::{StorageError, StorageResult};
use crate::storage::objects::download::{find, Access};
use crate::storage::{keys, Storage};

impl From<TransformError> for StorageError {
    fn from(e: TransformError) -> Self {
        match e {
            TransformError::TooManyPixels { .. } => StorageError::ImageTooLarge(e.to_string()),
            _ => StorageError::InvalidImage(e.to_string()),
        }
    }
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// Serves `<bucket>/<raw_name>` transformed by `opts`.
pub async fn render(
    s: &Storage,
    access: Access,
    bucket: &str,
    raw_name: &str,
    opts: TransformOptions,
    headers: &HeaderMap,
    download: Option<String>,
) -> StorageResult<Response> {
    let name = keys::object_name(raw_name)?;
    let row = find(s, &access, bucket, &name).await?;
    let version = crate::storage::tag::checked_version(s, &row).await?;
    let limit = s.config().image_max_source_bytes;
    if row.size() > limit {
        return Err(StorageError::ImageTooLarge(format!("Source image is too large to transform: {} bytes exceeds {limit}", row.size())));
    }
    let accept_webp = headers.get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("image/webp"));
    let permit = std::sync::Arc::clone(&s.image_permits)
        .acquire_owned()
        .await
        .map_err(|_| StorageError::InvalidImage("image transformation is shutting down".into()))?;
    let src = s.store.get(&keys::data_path(&version)).await?.bytes().await?;
    let max_pixels = s.config().image_max_pixels;
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        transform::transform(&src, &opts, accept_webp, max_pixels)
    })
    .await
    .map_err(|e| StorageError::InvalidImage(format!("image transformation failed: {e}")))??;

    let mut res = Response::new(rendered.bytes.into());
    let h = res.headers_mut();
    put(h, "content-type", rendered.content_type);
    put(h, "cache-control", row.meta_str("cacheControl").unwrap_or("no-cache"));
    put(h, "vary", "Accept");
    if let Some(d) = download {
        let stem = name.rsplit('/').next().unwrap_or(&name);
        let file = if d.is_empty() { stem.to_owned() } else { d };
        let ascii: String = file.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_ ".contains(c) { c } else { '_' }).collect();
        put(h, "content-disposition", &format!("attachment; filename=\"{ascii}\""));
    }
    Ok(res)
}
