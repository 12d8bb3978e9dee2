//! Signed URLs: HS256 JWTs signed with the project secret, as storage-api
//! issues them. A download token carries `url = "<bucket>/<name>"`; an
//! upload token also carries the signer's `owner` and `upsert`. A token is
//! good for exactly the object it names, until `exp` (no leeway).

use http::StatusCode;
use jsonwebtoken::{Algorithm, Header, Validation};
use percent_encoding::{AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use warp::reply::Response;

use super::body::json_reply;
use super::db;
use super::errors::{StorageError, StorageResult};
use super::objects::download::{find, Access};
use super::objects::upload::{precheck, UploadSpec};
use super::{keys, Storage};
use crate::http::caller::Caller;

/// Characters `encodeURI` escapes, plus `?` and `#` so a name cannot break the URL.
const URI: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'%').add(b'<').add(b'>').add(b'[').add(b'\\').add(b']').add(b'^').add(b'`').add(b'{').add(b'|').add(b'}').add(b'?').add(b'#');

/// Claims of a signed URL token.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignedClaims {
    /// `<bucket>/<name>`.
    pub url: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// Upload tokens: who the object will belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Upload tokens: whether an existing object may be replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upsert: Option<bool>,
    /// Download tokens for `/render/image/sign`: the transformation, as
    /// storage-api writes it (`height:300,width:200,resize:cover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformations: Option<String>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn encode(s: &Storage, claims: &SignedClaims) -> StorageResult<String> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &s.app.keys.encoding_key())
        .map_err(|e| StorageError::InvalidRequest(format!("cannot sign: {e}")))
}

/// Verifies `token` for `<bucket>/<name>`: a download token when `upload`
/// is false, an upload token (one carrying `upsert`) when it is true.
pub fn verify(s: &Storage, token: Option<&str>, bucket: &str, name: &str, upload: bool) -> StorageResult<SignedClaims> {
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| StorageError::InvalidSignature("querystring must have required property 'token'".into()))?;
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<SignedClaims>(token, s.app.keys.decoding_key(), &v).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => StorageError::InvalidSignature("jwt expired".into()),
        _ => StorageError::InvalidSignature("Invalid signature".into()),
    })?;
    if data.claims.url != format!("{bucket}/{name}") || data.claims.upsert.is_some() != upload {
        return Err(StorageError::InvalidSignature("Invalid signature".into()));
    }
    Ok(data.claims)
}

fn encoded(bucket: &str, name: &str) -> String {
    percent_encoding::utf8_percent_encode(&format!("{bucket}/{name}"), URI).to_string()
}

fn expires_in(body: &Value) -> StorageResult<i64> {
    let n = body.get("expiresIn").and_then(Value::as_f64).ok_or_else(|| StorageError::InvalidRequest("body must have required property 'expiresIn'".into()))?;
    if !(1.0..=1e10).contains(&n) {
        return Err(StorageError::InvalidRequest("body/expiresIn must be >= 1".into()));
    }
    Ok(n as i64)
}

/// `POST /object/sign/<bucket>/<path>`: one signed download URL, for an object the caller can read.
pub async fn sign_one(s: &Storage, caller: &Caller, bucket: &str, raw_name: &str, body: Value) -> StorageResult<Response> {
    let name = keys::object_name(raw_name)?;
    let exp = expires_in(&body)?;
    let transformations = match body.get("transform") {
        Some(t) if t.as_object().is_some_and(|o| !o.is_empty()) => {
            Some(crate::storage::render::options::TransformOptions::from_json(t)?.to_token()).filter(|t| !t.is_empty())
        }
        _ => None,
    };
    find(s, &Access::Caller(caller.clone()), bucket, &name).await?;
    let iat = now();
    let route = if transformations.is_some() { "render/image" } else { "object" };
    let claims = SignedClaims { url: format!("{bucket}/{name}"), iat, exp: iat + exp, owner: None, upsert: None, transformations };
    let token = encode(s, &claims)?;
    Ok(json_reply(StatusCode::OK, &json!({ "signedURL": format!("/{route}/sign/{}?token={token}", encoded(bucket, &name)) })))
}

/// `POST /object/sign/<bucket>` `{expiresIn, paths}`: many; unreadable ones get an error entry.
pub async fn sign_many(s: &Storage, caller: &Caller, bucket: &str, body: Value) -> StorageResult<Response> {
    let exp = expires_in(&body)?;
    let paths: Vec<String> = body
        .get("paths")
        .and_then(Value::as_array)
        .ok_or_else(|| StorageError::InvalidRequest("body must have required property 'paths'".into()))?
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_owned())
        .collect();
    let names: Vec<String> = paths.iter().map(|p| keys::object_name(p).unwrap_or_default()).collect();
    let mut client = db::connect(s).await?;
    let tx = db::begin(&mut client, caller, "storage.object.sign").await?;
    let rows = tx.query("select name from storage.objects where bucket_id = $1 and name = any($2)", &[&bucket, &names]).await?;
    tx.commit().await?;
    let found: std::collections::HashSet<String> = rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect();
    let iat = now();
    let mut out = Vec::with_capacity(paths.len());
    for (path, name) in paths.iter().zip(&names) {
        if found.contains(name) {
            let token = encode(s, &SignedClaims { url: format!("{bucket}/{name}"), iat, exp: iat + exp, owner: None, upsert: None, transformations: None })?;
            out.push(json!({"error": null, "path": path, "signedURL": format!("/object/sign/{}?token={token}", encoded(bucket, name))}));
        } else {
            out.push(json!({"error": "Either the object does not exist or you do not have access to it", "path": path, "signedURL": null}));
        }
    }
    Ok(json_reply(StatusCode::OK, &Value::Array(out)))
}

/// `POST /object/upload/sign/<bucket>/<path>`: a signed upload URL, if the caller may write there.
pub async fn sign_upload(s: &Storage, caller: &Caller, bucket: &str, raw_name: &str, upsert: bool) -> StorageResult<Response> {
    let name = keys::object_name(raw_name)?;
    {
        let mut client = db::connect(s).await?;
        let tx = db::begin(&mut client, &db::service_caller(), "storage.object.upload_sign").await?;
        db::bucket(&tx, bucket).await?;
        tx.commit().await?;
    }
    let owner = caller.user_id().map(str::to_owned);
    let spec = UploadSpec { caller: caller.clone(), owner: owner.clone(), upsert, operation: "storage.object.upload_sign" };
    precheck(s, &spec, bucket, &name).await?;
    let iat = now();
    let exp = iat + i64::try_from(s.config().upload_url_expiry_secs).unwrap_or(7200);
    let token = encode(s, &SignedClaims { url: format!("{bucket}/{name}"), iat, exp, owner, upsert: Some(upsert), transformations: None })?;
    Ok(json_reply(
        StatusCode::OK,
        &json!({"url": format!("/object/upload/sign/{}?token={token}", encoded(bucket, &name)), "token": token}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded_like_encode_uri() {
        assert_eq!(encoded("b", "a b/ü?.png"), "b/a%20b/%C3%BC%3F.png");
    }
}
