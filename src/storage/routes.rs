//! The URL table of `/storage/v1`, as storage-js calls it (see
//! `shared/design/supabase-compat.md` §5). One filter captures the request;
//! `dispatch` matches method and path and calls the handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use super::body::{self, BodyStream};
use super::errors::{StorageError, StorageResult};
use super::objects::download::{self, Access};
use super::objects::upload::{self, UploadSpec};
use super::objects::{copy_move, info, list, remove};
use super::render::{self, options::TransformOptions};
use super::{backend, buckets, keys, signed, sweep, tus, Storage};
use crate::app::AppState;
use crate::http::apikey::ApiKey;
use crate::http::caller::Caller;
use crate::http::error::ApiError;

/// How often the orphan sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// How much of a refused TUS request's body is read (and dropped) so the
/// client gets the error: one 6 MB chunk with room to spare, for a while.
const TUS_DRAIN_BYTES: u64 = 16 << 20;
const TUS_DRAIN_TIME: Duration = Duration::from_secs(30);

/// One request, as the handlers see it.
struct Req {
    method: Method,
    tail: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    key: Option<ApiKey>,
    body: BodyStream,
}

/// The `/storage/v1` routes. Builds the object store from `[storage]`; if
/// that fails every storage request answers 500 with the reason logged.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let storage: Option<Arc<Storage>> = match backend::build(&state.config) {
        Ok(store) => {
            if tokio::runtime::Handle::try_current().is_ok() {
                sweep::spawn(Arc::downgrade(&state), Arc::clone(&store), SWEEP_EVERY);
            }
            Some(Arc::new(Storage::new(Arc::clone(&state), store)))
        }
        Err(e) => {
            tracing::error!(error = %e, "storage backend unavailable; /storage/v1 will answer 500");
            None
        }
    };
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("storage")
        .and(warp::path("v1"))
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(query)
        .and(warp::ext::optional::<ApiKey>())
        .and(warp::body::stream())
        .then(move |tail: warp::path::Tail, method, headers, query: String, key, stream| {
            let storage = storage.clone();
            let body = body_stream(stream);
            let req = Req {
                method,
                tail: tail.as_str().to_owned(),
                query: serde_urlencoded::from_str(&query).unwrap_or_default(),
                headers,
                key,
                body,
            };
            async move {
                let Some(s) = storage else {
                    return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "Storage backend unavailable")
                        .with_details("internal")
                        .into_response();
                };
                match dispatch(&s, req).await {
                    Ok(r) => r,
                    Err(e) => e.api().into_response(),
                }
            }
        })
        .boxed()
}

/// The warp body as a boxed stream of `Bytes`.
fn body_stream<S, B>(stream: S) -> BodyStream
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(stream.map(|r| r.map(|mut b| b.copy_to_bytes(b.remaining())).map_err(std::io::Error::other)))
}

/// The caller from `Authorization: Bearer` or the API key.
fn caller(s: &Storage, req: &Req) -> StorageResult<Caller> {
    let bearer = req.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    });
    // Opaque `sb_…` keys sent as bearer (supabase-js without a session) are API keys, not JWTs.
    let bearer = bearer.filter(|b| !b.starts_with("sb_"));
    Caller::resolve(bearer, req.key.unwrap_or(ApiKey::Anon), &s.app.keys).map_err(|e| {
        let mut e = e.with_details("Unauthorized");
        e.status = StatusCode::FORBIDDEN;
        e.code = "InvalidJWT".into();
        StorageError::Api(e)
    })
}

fn decode(seg: &str) -> StorageResult<String> {
    Ok(percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .map_err(|_| StorageError::InvalidKey(seg.to_owned()))?
        .into_owned())
}

fn flag(h: &HeaderMap, name: &str) -> bool {
    h.get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn not_found() -> StorageError {
    StorageError::Api(ApiError::new(StatusCode::NOT_FOUND, "NotFound", "Route not found").with_details("Not Found"))
}

async fn dispatch(s: &Storage, req: Req) -> StorageResult<Response> {
    let tail = req.tail.clone();
    let (first, rest) = tail.split_once('/').unwrap_or((tail.as_str(), ""));
    match first {
        "bucket" => bucket_routes(s, req, rest).await,
        "object" => object_routes(s, req, rest).await,
        "upload" => upload_routes(s, req, rest).await,
        "render" => render_routes(s, req, rest).await,
        // Supabase's CDN cache purge: there is no CDN in front of Fluxbase.
        "cdn" if req.method == Method::DELETE => Ok(body::message("success")),
        _ => Err(not_found()),
    }
}

async fn bucket_routes(s: &Storage, req: Req, rest: &str) -> StorageResult<Response> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let c = caller(s, &req)?;
    match (&req.method, parts.as_slice()) {
        (&Method::GET, []) => {
            let q = serde_urlencoded::to_string(&req.query).unwrap_or_default();
            buckets::list(s, &c, &q).await
        }
        (&Method::POST, []) => buckets::create(s, &c, body::json(req.body).await?).await,
        (&Method::GET, [id]) => buckets::get(s, &c, &decode(id)?).await,
        (&Method::PUT, [id]) => buckets::update(s, &c, &decode(id)?, body::json(req.body).await?).await,
        (&Method::DELETE, [id]) => buckets::delete(s, &c, &decode(id)?).await,
        (&Method::POST, [id, "empty"]) => buckets::empty(s, &c, &decode(id)?).await,
        _ => Err(not_found()),
    }
}

/// TUS: `/upload/resumable[/<id>]` as the caller, `/upload/resumable/sign[/<id>]`
/// with a signed upload token in `x-signature`. The gate leaves these routes
/// open (Supabase documents them with only `Authorization`), so the
/// unsigned ones demand an API key or a JWT here.
async fn upload_routes(s: &Storage, req: Req, rest: &str) -> StorageResult<Response> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let (auth, parts) = match parts.as_slice() {
        ["resumable", "sign", tail @ ..] => {
            let token = req.headers.get("x-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (tus::TusAuth::Signed(token), tail.to_vec())
        }
        ["resumable", tail @ ..] => {
            let presented = req.key.is_some_and(|k| k != ApiKey::Open) || req.headers.contains_key("authorization");
            if !presented {
                return Err(StorageError::Api(
                    ApiError::new(StatusCode::BAD_REQUEST, "InvalidJWT", "headers must have required property 'authorization'")
                        .with_details("Bad Request"),
                ));
            }
            (tus::TusAuth::Caller(caller(s, &req)?), tail.to_vec())
        }
        _ => return Err(not_found()),
    };
    let mut body = req.body;
    let result = match (&req.method, parts.as_slice()) {
        (&Method::POST, []) => tus::create(s, &auth, &req.headers, &mut body).await,
        (&Method::HEAD, [id]) => tus::head(s, &auth, id).await,
        (&Method::PATCH, [id]) => tus::patch(s, &auth, id, &req.headers, &mut body).await,
        (&Method::DELETE, [id]) => tus::terminate(s, &auth, id).await,
        _ => Err(not_found()),
    };
    if result.is_err() {
        // A client that sends the body before reading the answer (tus-js-client's
        // creation-with-upload) sees a broken pipe, not the error, if we close early.
        body::drain(&mut body, TUS_DRAIN_BYTES, TUS_DRAIN_TIME).await;
    }
    result
}

/// `GET /render/image/{authenticated,public,sign}/<bucket>/<path>`: a transformed image.
async fn render_routes(s: &Storage, req: Req, rest: &str) -> StorageResult<Response> {
    let Some(rest) = rest.strip_prefix("image/") else { return Err(not_found()) };
    if req.method != Method::GET {
        return Err(not_found());
    }
    let download_param = req.query.get("download").cloned();
    let (access, tail, opts) = if let Some(t) = rest.strip_prefix("sign/") {
        let (bucket, name) = keys::split_tail(t)?;
        let name = keys::object_name(&name)?;
        let claims = signed::verify(s, req.query.get("token").map(String::as_str), &bucket, &name, false)?;
        // The token fixes the transformation; the query cannot change it.
        let opts = TransformOptions::from_token(claims.transformations.as_deref().unwrap_or(""))?;
        (Access::Signed, t, opts)
    } else if let Some(t) = rest.strip_prefix("public/") {
        (Access::Public, t, TransformOptions::from_query(&req.query)?)
    } else if let Some(t) = rest.strip_prefix("authenticated/") {
        (Access::Caller(caller(s, &req)?), t, TransformOptions::from_query(&req.query)?)
    } else {
        return Err(not_found());
    };
    let (bucket, name) = keys::split_tail(tail)?;
    render::render(s, access, &bucket, &name, opts, &req.headers, download_param).await
}

async fn object_routes(s: &Storage, req: Req, rest: &str) -> StorageResult<Response> {
    let head = req.method == Method::HEAD;
    let is_get = req.method == Method::GET || head;
    let download_param = req.query.get("download").cloned();
    if rest == "move" && req.method == Method::POST {
        let c = caller(s, &req)?;
        return copy_move::move_object(s, &c, body::json(req.body).await?).await;
    }
    if rest == "copy" && req.method == Method::POST {
        let c = caller(s, &req)?;
        return copy_move::copy_object(s, &c, &req.headers, body::json(req.body).await?).await;
    }
    if let Some(b) = rest.strip_prefix("list-v2/") {
        if req.method != Method::POST {
            return Err(not_found());
        }
        let c = caller(s, &req)?;
        return list::list_v2(s, &c, &decode(b.trim_end_matches('/'))?, body::json(req.body).await?).await;
    }
    if let Some(b) = rest.strip_prefix("list/") {
        if req.method != Method::POST {
            return Err(not_found());
        }
        let c = caller(s, &req)?;
        return list::list(s, &c, &decode(b.trim_end_matches('/'))?, body::json(req.body).await?).await;
    }
    if let Some(t) = rest.strip_prefix("upload/sign/") {
        let (bucket, name) = keys::split_tail(t)?;
        return match req.method {
            Method::POST => {
                let c = caller(s, &req)?;
                signed::sign_upload(s, &c, &bucket, &name, flag(&req.headers, "x-upsert")).await
            }
            Method::PUT => {
                let name = keys::object_name(&name)?;
                let claims = signed::verify(s, req.query.get("token").map(String::as_str), &bucket, &name, true)?;
                let spec = UploadSpec {
                    caller: super::db::service_caller(),
                    owner: claims.owner,
                    upsert: claims.upsert.unwrap_or(false),
                    operation: "storage.object.upload_signed",
                };
                let res = upload::upload(s, spec, &bucket, &name, &req.headers, req.body).await?;
                Ok(res)
            }
            _ => Err(not_found()),
        };
    }
    if let Some(t) = rest.strip_prefix("sign/") {
        let (bucket, name) = keys::split_tail(t)?;
        return match req.method {
            Method::POST if name.is_empty() => {
                let c = caller(s, &req)?;
                signed::sign_many(s, &c, &bucket, body::json(req.body).await?).await
            }
            Method::POST => {
                let c = caller(s, &req)?;
                signed::sign_one(s, &c, &bucket, &name, body::json(req.body).await?).await
            }
            Method::GET | Method::HEAD => {
                let name = keys::object_name(&name)?;
                signed::verify(s, req.query.get("token").map(String::as_str), &bucket, &name, false)?;
                download::download(s, Access::Signed, &bucket, &name, &req.headers, download_param, head).await
            }
            _ => Err(not_found()),
        };
    }
    if let Some(t) = rest.strip_prefix("public/") {
        if !is_get {
            return Err(not_found());
        }
        let (bucket, name) = keys::split_tail(t)?;
        return download::download(s, Access::Public, &bucket, &name, &req.headers, download_param, head).await;
    }
    if let Some(t) = rest.strip_prefix("authenticated/") {
        if !is_get {
            return Err(not_found());
        }
        let (bucket, name) = keys::split_tail(t)?;
        let c = caller(s, &req)?;
        return download::download(s, Access::Caller(c), &bucket, &name, &req.headers, download_param, head).await;
    }
    if let Some(t) = rest.strip_prefix("info/") {
        if !is_get {
            return Err(not_found());
        }
        if let Some(p) = t.strip_prefix("public/") {
            let (bucket, name) = keys::split_tail(p)?;
            return info::info(s, Access::Public, &bucket, &name).await;
        }
        let t = t.strip_prefix("authenticated/").unwrap_or(t);
        let (bucket, name) = keys::split_tail(t)?;
        let c = caller(s, &req)?;
        return info::info(s, Access::Caller(c), &bucket, &name).await;
    }
    let (bucket, name) = keys::split_tail(rest)?;
    if bucket.is_empty() {
        return Err(not_found());
    }
    let c = caller(s, &req)?;
    match req.method {
        Method::POST | Method::PUT => {
            let upsert = req.method == Method::PUT || flag(&req.headers, "x-upsert");
            let owner = c.user_id().map(str::to_owned);
            let operation = if req.method == Method::PUT { "storage.object.update" } else { "storage.object.upload" };
            let spec = UploadSpec { caller: c, owner, upsert, operation };
            upload::upload(s, spec, &bucket, &name, &req.headers, req.body).await
        }
        Method::GET | Method::HEAD => {
            download::download(s, Access::Caller(c), &bucket, &name, &req.headers, download_param, head).await
        }
        Method::DELETE if name.is_empty() => remove::remove_many(s, &c, &bucket, body::json(req.body).await?).await,
        Method::DELETE => remove::remove_one(s, &c, &bucket, &name).await,
        _ => Err(not_found()),
    }
}
