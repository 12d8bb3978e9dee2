//! `/storage/v1` over HTTP against real PostgreSQL, on the file backend and
//! on a real S3-compatible server (moto, see `harness::s3`).

use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::harness::s3::moto;
use crate::harness::{TestDatabase, TestServer, TEST_JWT_SECRET};

/// A user's access token, signed with the harness secret.
fn user_token(sub: &str) -> String {
    let claims = json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": 4_000_000_000u64});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

struct Api {
    base: String,
    apikey: String,
    bearer: String,
    http: reqwest::Client,
}

impl Api {
    fn service(s: &TestServer) -> Api {
        Api::with(s, s.keys.service_role.clone())
    }
    fn user(s: &TestServer, sub: &str) -> Api {
        Api::with(s, user_token(sub))
    }
    fn with(s: &TestServer, bearer: String) -> Api {
        Api {
            base: format!("{}/storage/v1", s.url),
            apikey: s.keys.anon.clone(),
            bearer,
            http: reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("client"),
        }
    }
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("apikey", &self.apikey).bearer_auth(&self.bearer)
    }
    async fn json(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self.req(method, path).json(&body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    async fn upload(&self, path: &str, body: &'static [u8], content_type: &str, upsert: bool) -> (u16, Value) {
        let r = self
            .req(reqwest::Method::POST, &format!("/object/{path}"))
            .header("content-type", content_type)
            .header("x-upsert", if upsert { "true" } else { "false" })
            .body(body)
            .send()
            .await
            .expect("upload");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        self.req(reqwest::Method::GET, &format!("/object/{path}")).send().await.expect("download")
    }
}

/// storage-api's error shape: HTTP 400 with the real status in the body.
fn assert_error(status: u16, body: &Value, real: &str, code: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["statusCode"], real, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
}

/// Every basic operation, on whatever backend `s` uses.
async fn round_trip(s: &TestServer) {
    use reqwest::Method as M;
    let api = Api::service(s);
    let (st, b) = api.json(M::POST, "/bucket", json!({"name": "docs", "public": false})).await;
    assert_eq!((st, &b), (200, &json!({"name": "docs"})));
    let (st, b) = api.json(M::POST, "/bucket", json!({"name": "docs"})).await;
    assert_error(st, &b, "409", "BucketAlreadyExists");
    let (st, b) = api.json(M::GET, "/bucket", json!(null)).await;
    assert_eq!(st, 200);
    assert!(b.as_array().expect("array").iter().any(|x| x["id"] == "docs"));
    let (st, b) = api.json(M::GET, "/bucket/docs", json!(null)).await;
    assert_eq!((st, b["public"].clone()), (200, json!(false)));
    let (st, b) = api.json(M::GET, "/bucket/nope", json!(null)).await;
    assert_error(st, &b, "404", "NoSuchBucket");

    // Upload, duplicate, upsert.
    let meta = base64::engine::general_purpose::STANDARD.encode(r#"{"k":"v"}"#);
    let r = api
        .req(M::POST, "/object/docs/a/hello.txt")
        .header("content-type", "text/plain")
        .header("x-metadata", meta)
        .header("cache-control", "max-age=60")
        .body("hello world")
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["Key"], "docs/a/hello.txt");
    assert!(b["Id"].is_string());
    let (st, b) = api.upload("docs/a/hello.txt", b"again", "text/plain", false).await;
    assert_error(st, &b, "409", "ResourceAlreadyExists");
    assert_eq!(b["error"], "Duplicate");
    let (st, _) = api.upload("docs/a/hello.txt", b"hello again", "text/plain", true).await;
    assert_eq!(st, 200);

    // Download: bytes, headers, 304, Range, HEAD.
    let r = api.get("docs/a/hello.txt").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["cache-control"], "no-cache", "upsert without cache-control resets it");
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(r.text().await.expect("body"), "hello again");
    let r = api.req(M::GET, "/object/docs/a/hello.txt").header("if-none-match", &etag).send().await.expect("304");
    assert_eq!(r.status(), 304);
    let r = api.req(M::GET, "/object/docs/a/hello.txt").header("range", "bytes=0-4").send().await.expect("range");
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 0-4/11");
    assert_eq!(r.text().await.expect("body"), "hello");
    let r = api.req(M::HEAD, "/object/docs/a/hello.txt").send().await.expect("head");
    assert_eq!((r.status().as_u16(), r.headers()["content-length"].to_str().ok()), (200, Some("11")));
    let r = api.req(M::GET, "/object/docs/a/hello.txt?download=x.txt").send().await.expect("download=");
    assert!(r.headers()["content-disposition"].to_str().expect("cd").contains("filename=\"x.txt\""));
    let r = api.get("docs/a/missing.txt").await;
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.expect("json"), "404", "NoSuchKey");

    // Info.
    let (st, b) = api.json(M::GET, "/object/info/docs/a/hello.txt", json!(null)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!((b["size"].clone(), b["content_type"].clone()), (json!(11), json!("text/plain")));

    // A body larger than one part goes through a multipart upload.
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let r = api.req(M::POST, "/object/docs/big.bin").body(big.clone()).send().await.expect("big upload");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let got = api.get("docs/big.bin").await.bytes().await.expect("big download");
    assert!(got.len() == big.len() && got == big, "big object round-trips");

    // Cut off past the single-PUT size, so a multipart upload is under way:
    // nothing becomes visible (and the final checks find no stray bytes).
    let cut: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..12).map(|_| Ok(vec![3u8; 1 << 20])).chain(std::iter::once(Err(std::io::Error::other("gone")))).collect();
    let _ = api.req(M::POST, "/object/docs/cut.bin").body(reqwest::Body::wrap_stream(futures_util::stream::iter(cut))).send().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.get("docs/cut.bin").await.status(), 400);

    // List: folders then files, prefix, search.
    let (st, b) = api.json(M::POST, "/object/list/docs", json!({"prefix": "", "limit": 100, "offset": 0, "sortBy": {"column": "name", "order": "asc"}})).await;
    assert_eq!(st, 200, "{b}");
    let names: Vec<&str> = b.as_array().expect("array").iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["a", "big.bin"]);
    assert!(b[0]["id"].is_null() && b[1]["metadata"]["size"] == json!(20u32 << 20));
    let (_, b) = api.json(M::POST, "/object/list/docs", json!({"prefix": "a", "search": "hel"})).await;
    assert_eq!(b.as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(b[0]["name"], "hello.txt");

    // Copy and move.
    let (st, b) = api.json(M::POST, "/object/copy", json!({"bucketId": "docs", "sourceKey": "a/hello.txt", "destinationKey": "b/copy.txt"})).await;
    assert_eq!((st, b["Key"].clone()), (200, json!("docs/b/copy.txt")), "{b}");
    let (st, _) = api.json(M::POST, "/object/move", json!({"bucketId": "docs", "sourceKey": "b/copy.txt", "destinationKey": "c/moved.txt"})).await;
    assert_eq!(st, 200);
    assert_eq!(api.get("docs/c/moved.txt").await.text().await.expect("moved"), "hello again");
    let r = api.get("docs/b/copy.txt").await;
    assert_eq!(r.status(), 400);
    let (st, b) = api.json(M::POST, "/object/move", json!({"bucketId": "docs", "sourceKey": "nope", "destinationKey": "x"})).await;
    assert_error(st, &b, "404", "NoSuchKey");

    // Signed URLs: no key needed, bound to one object.
    let (st, b) = api.json(M::POST, "/object/sign/docs/a/hello.txt", json!({"expiresIn": 60})).await;
    assert_eq!(st, 200, "{b}");
    let signed = b["signedURL"].as_str().expect("signedURL").to_owned();
    assert!(signed.starts_with("/object/sign/docs/a/hello.txt?token="));
    let r = reqwest::get(format!("{}{signed}", api.base)).await.expect("signed get");
    assert_eq!(r.text().await.expect("body"), "hello again");
    let other = signed.replace("a/hello.txt", "c/moved.txt");
    let r = reqwest::get(format!("{}{other}", api.base)).await.expect("signed get other");
    assert_eq!(r.status(), 400, "a token is good for its own object only");
    let (_, b) = api.json(M::POST, "/object/sign/docs", json!({"expiresIn": 60, "paths": ["a/hello.txt", "nope.txt"]})).await;
    assert!(b[0]["signedURL"].is_string() && b[1]["signedURL"].is_null() && b[1]["error"].is_string(), "{b}");

    // Public access follows the bucket's flag.
    let r = reqwest::get(format!("{}/object/public/docs/a/hello.txt", api.base)).await.expect("public get");
    assert_eq!(r.status(), 400);
    let (st, _) = api.json(M::PUT, "/bucket/docs", json!({"public": true})).await;
    assert_eq!(st, 200);
    let r = reqwest::get(format!("{}/object/public/docs/a/hello.txt", api.base)).await.expect("public get");
    assert_eq!(r.text().await.expect("body"), "hello again");

    // Remove, empty, delete.
    let (st, b) = api.json(M::DELETE, "/bucket/docs", json!({})).await;
    assert_error(st, &b, "409", "InvalidRequest");
    let (st, b) = api.json(M::DELETE, "/object/docs", json!({"prefixes": ["c/moved.txt", "nope"]})).await;
    assert_eq!((st, b.as_array().map(Vec::len)), (200, Some(1)), "{b}");
    assert_eq!(b[0]["name"], "c/moved.txt");
    let (st, _) = api.json(M::POST, "/bucket/docs/empty", json!({})).await;
    assert_eq!(st, 200);
    let (st, b) = api.json(M::DELETE, "/bucket/docs", json!({})).await;
    assert_eq!((st, b["message"].clone()), (200, json!("Successfully deleted")));
}

/// Files under `root/objects` (the bytes of every stored version).
fn stored_files(root: &std::path::Path) -> usize {
    count_files(&root.join("objects"))
}

/// Files under `dir`, recursively.
fn count_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok).map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

#[tokio::test]
async fn file_backend_round_trip() {
    let root = tempfile::tempdir().expect("root");
    let r = root.path().to_string_lossy().into_owned();
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.storage.file_root = r).await;
    round_trip(&s).await;
    assert_eq!(stored_files(root.path()), 0, "no bytes are left behind once every object is gone");
    s.shutdown().await;
}

#[tokio::test]
async fn s3_backend_round_trip() {
    let m = moto();
    let bucket = m.bucket().await;
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| m.apply(c, &bucket)).await;
    round_trip(&s).await;
    // Nothing is left in the S3 bucket.
    let listing = reqwest::get(format!("{}/{bucket}?list-type=2", m.endpoint)).await.expect("list").text().await.expect("xml");
    assert!(!listing.contains("<Key>"), "{listing}");
    s.shutdown().await;
}

#[tokio::test]
async fn rls_policies_decide_by_caller() {
    use reqwest::Method as M;
    let s = TestServer::start().await;
    let api = Api::service(&s);
    assert_eq!(api.json(M::POST, "/bucket", json!({"name": "private"})).await.0, 200);
    s.db.client()
        .await
        .batch_execute(
            "create policy own_select on storage.objects for select to authenticated
               using (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
             create policy own_insert on storage.objects for insert to authenticated
               with check (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
             create policy own_update on storage.objects for update to authenticated
               using (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
             create policy own_delete on storage.objects for delete to authenticated
               using (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);",
        )
        .await
        .expect("policies");
    let a = uuid::Uuid::new_v4().to_string();
    let b = uuid::Uuid::new_v4().to_string();
    let ua = Api::user(&s, &a);
    let ub = Api::user(&s, &b);
    let (st, body) = ua.upload(&format!("private/{a}/x.txt"), b"mine", "text/plain", false).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = ua.upload(&format!("private/{b}/x.txt"), b"theirs", "text/plain", false).await;
    assert_error(st, &body, "403", "AccessDenied");
    let (st, body) = ua.upload(&format!("private/{a}/x.txt"), b"mine 2", "text/plain", true).await;
    assert_eq!(st, 200, "upsert of one's own object: {body}");
    assert_eq!(ua.get(&format!("private/{a}/x.txt")).await.text().await.expect("own"), "mine 2");
    let r = ub.get(&format!("private/{a}/x.txt")).await;
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.expect("json"), "404", "NoSuchKey");
    let (_, list) = ub.json(M::POST, "/object/list/private", json!({"prefix": ""})).await;
    assert_eq!(list, json!([]), "B sees none of A's objects");
    let (_, list) = ua.json(M::POST, "/object/list/private", json!({"prefix": ""})).await;
    assert_eq!(list[0]["name"], a);
    let (_, gone) = ub.json(M::DELETE, "/object/private", json!({"prefixes": [format!("{a}/x.txt")]})).await;
    assert_eq!(gone, json!([]), "B cannot delete A's object");
    let (st, _) = ub.json(M::POST, "/object/sign/private/", json!({})).await;
    assert_eq!(st, 400);
    let (st, body) = ub.json(M::POST, &format!("/object/sign/private/{a}/x.txt"), json!({"expiresIn": 60})).await;
    assert_error(st, &body, "404", "NoSuchKey");
    // A row made outside the API that copies A's version (and metadata, tag
    // included) does not reach A's bytes.
    s.db.client()
        .await
        .execute(
            "insert into storage.objects (bucket_id, name, version, metadata)
             select bucket_id, $2 || '/forged.txt', version, metadata from storage.objects where name = $1",
            &[&format!("{a}/x.txt"), &b],
        )
        .await
        .expect("forged row");
    let r = ub.get(&format!("private/{b}/forged.txt")).await;
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.expect("json"), "404", "NoSuchKey");
    let anon = Api::with(&s, s.keys.anon.clone());
    let (st, body) = anon.upload(&format!("private/{a}/y.txt"), b"anon", "text/plain", false).await;
    assert_error(st, &body, "403", "AccessDenied");
    let (st, body) = anon.json(M::POST, "/bucket", json!({"name": "anon-bucket"})).await;
    assert_error(st, &body, "403", "AccessDenied");
    // Signed upload URL: A signs for their own folder; anyone holding the token uploads as A.
    let (st, body) = ua.json(M::POST, &format!("/object/upload/sign/private/{a}/signed.txt"), json!({})).await;
    assert_eq!(st, 200, "{body}");
    let url = body["url"].as_str().expect("url").to_owned();
    let r = reqwest::Client::new().put(format!("{}{url}", ua.base)).header("apikey", &s.keys.anon).body("via token").send().await.expect("put");
    assert_eq!(r.status(), 200);
    assert_eq!(ua.get(&format!("private/{a}/signed.txt")).await.text().await.expect("signed upload"), "via token");
    let token = body["token"].as_str().expect("token");
    let r = reqwest::get(format!("{}/object/sign/private/{a}/signed.txt?token={token}", ua.base)).await.expect("get");
    assert_eq!(r.status(), 400, "an upload token does not grant downloads");
    let (st, _) = ua.json(M::POST, &format!("/object/upload/sign/private/{b}/signed.txt"), json!({})).await;
    assert_eq!(st, 400, "A cannot sign uploads into B's folder");
    s.shutdown().await;
}

#[tokio::test]
async fn limits_keys_and_failed_uploads_leave_nothing() {
    use reqwest::Method as M;
    let root = tempfile::tempdir().expect("root");
    let r = root.path().to_string_lossy().into_owned();
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.storage.file_root = r;
        c.storage.file_size_limit = 1 << 20;
    })
    .await;
    let api = Api::service(&s);
    let (st, body) = api.json(M::POST, "/bucket", json!({"name": "too-big", "file_size_limit": "2MB"})).await;
    assert_error(st, &body, "400", "InvalidRequest");
    let (st, _) = api.json(M::POST, "/bucket", json!({"name": "img", "file_size_limit": "1KB", "allowed_mime_types": ["image/*"]})).await;
    assert_eq!(st, 200);
    let (st, body) = api.upload("img/big.png", &[0u8; 2048], "image/png", false).await;
    assert_error(st, &body, "413", "EntityTooLarge");
    // Chunked (no Content-Length): the limit is enforced while streaming.
    let chunks = futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![7u8; 100])));
    let r = api.req(M::POST, "/object/img/chunked.png").header("content-type", "image/png").body(reqwest::Body::wrap_stream(chunks)).send().await.expect("chunked");
    let st = r.status().as_u16();
    // The rest of the refused body may still be arriving: the connection is not reused.
    assert_eq!(r.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
    assert_error(st, &r.json().await.expect("json"), "413", "EntityTooLarge");
    let (st, body) = api.upload("img/a.txt", b"text", "text/plain", false).await;
    assert_error(st, &body, "415", "InvalidMimeType");
    let (st, _) = api.upload("img/ok.png", &[1u8; 10], "image/png", false).await;
    assert_eq!(st, 200);
    for bad in ["img/a%2F..%2Fb.png", "img/a%01b.png", "img/a%2F.%2Fb", "img/"] {
        let r = api.req(M::POST, &format!("/object/{bad}")).header("content-type", "image/png").body("x").send().await.expect("bad key");
        let st = r.status().as_u16();
        assert_error(st, &r.json().await.expect("json"), "400", "InvalidKey");
    }
    let long = "x".repeat(1100);
    let (st, body) = api.upload(&format!("img/{long}"), b"x", "image/png", false).await;
    assert_error(st, &body, "400", "InvalidKey");
    let (st, body) = api.upload("nope/x.png", b"x", "image/png", false).await;
    assert_error(st, &body, "404", "NoSuchBucket");
    // An upload cut off mid-body leaves no row and no bytes.
    let (st, _) = api.json(M::PUT, "/bucket/img", json!({"file_size_limit": null, "allowed_mime_types": null})).await;
    assert_eq!(st, 200);
    let cut: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![1u8; 100 << 10])).chain(std::iter::once(Err(std::io::Error::other("gone")))).collect();
    let _ = api.req(M::POST, "/object/img/cut.bin").body(reqwest::Body::wrap_stream(futures_util::stream::iter(cut))).send().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.get("img/cut.bin").await.status(), 400);
    // A forged token is refused before anything happens.
    let forged = Api::with(&s, "not.a.jwt".into());
    let (st, body) = forged.upload("img/forged.png", b"x", "image/png", false).await;
    assert_error(st, &body, "403", "InvalidJWT");
    // Only the one accepted object has a row and bytes.
    let rows: i64 = s.db.client().await.query_one("select count(*) from storage.objects", &[]).await.expect("count").get(0);
    assert_eq!(rows, 1);
    assert_eq!(stored_files(root.path()), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_upserts_to_one_key_keep_one_version() {
    use reqwest::Method as M;
    let root = tempfile::tempdir().expect("root");
    let r = root.path().to_string_lossy().into_owned();
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.storage.file_root = r).await;
    let api = Api::service(&s);
    assert_eq!(api.json(M::POST, "/bucket", json!({"name": "race"})).await.0, 200);
    let bodies: Vec<String> = (0..8).map(|i| format!("body number {i}")).collect();
    let results = futures_util::future::join_all(bodies.iter().map(|b| {
        api.req(M::POST, "/object/race/same.txt").header("x-upsert", "true").body(b.clone()).send()
    }))
    .await;
    for r in results {
        assert_eq!(r.expect("upload").status(), 200);
    }
    let got = api.get("race/same.txt").await.text().await.expect("body");
    assert!(bodies.contains(&got), "{got}");
    assert_eq!(stored_files(root.path()), 1, "replaced versions are deleted");
    // Without upsert, exactly one of several concurrent creates wins.
    let results = futures_util::future::join_all((0..6).map(|i| {
        api.req(M::POST, "/object/race/once.txt").body(format!("v{i}")).send()
    }))
    .await;
    let ok = results.into_iter().filter(|r| r.as_ref().is_ok_and(|r| r.status() == 200)).count();
    assert_eq!(ok, 1);
    assert_eq!(stored_files(root.path()), 2);
    s.shutdown().await;
}

/// Peak RSS (VmHWM) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM")
}

#[tokio::test]
async fn large_transfer_streams_in_constant_memory() {
    use reqwest::Method as M;
    // 1 GiB, generated and streamed both ways: neither this test nor the server holds it.
    const SIZE: u64 = 1 << 30;
    let db = TestDatabase::fresh().await;
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let mut p = crate::harness::server::TestProcess::spawn(
        &data,
        &["--database-url", &db.url],
        &[("FLUXBASE_JWT_SECRET", TEST_JWT_SECRET), ("FLUXBASE_STORAGE_FILE_SIZE_LIMIT", "2147483648")],
    );
    p.wait_healthy(Duration::from_secs(60)).await;
    let keys = fluxbase::keys::Keys::from_secret(TEST_JWT_SECRET.into()).expect("keys");
    let api = Api { base: format!("{}/storage/v1", p.url), apikey: keys.anon.clone(), bearer: keys.service_role.clone(), http: reqwest::Client::new() };
    assert_eq!(api.json(M::POST, "/bucket", json!({"name": "large"})).await.0, 200);
    let before = peak_rss(p.child.id());
    let chunk = vec![0x5au8; 1 << 20];
    let chunks = futures_util::stream::iter((0..SIZE >> 20).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let r = api.req(M::POST, "/object/large/blob.bin").body(reqwest::Body::wrap_stream(chunks)).send().await.expect("upload");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = api.get("large/blob.bin").await;
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut total = 0u64;
    while let Some(c) = stream.next().await {
        let c = c.expect("chunk");
        assert!(c.iter().all(|b| *b == 0x5a));
        total += c.len() as u64;
    }
    assert_eq!(total, SIZE);
    let after = peak_rss(p.child.id());
    eprintln!("server peak RSS: {} MB before, {} MB after a {} MB upload and download", before >> 20, after >> 20, SIZE >> 20);
    assert!(after < before + (64 << 20), "peak RSS grew from {before} to {after} bytes");
}

/// A TUS upload: created, one PATCH, one PATCH cut off mid-body, resumed
/// from the offset `HEAD` reports, completed; then the object downloads.
async fn tus_round_trip(s: &TestServer) {
    use reqwest::Method as M;
    let api = Api::service(s);
    assert_eq!(api.json(M::POST, "/bucket", json!({"name": "resumable"})).await.0, 200);
    let data: Vec<u8> = (0..12u32 << 20).map(|i| (i % 241) as u8).collect();
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let meta = format!("bucketName {},objectName {},contentType {}", b64("resumable"), b64("dir/big.bin"), b64("application/x-test"));
    let r = api
        .req(M::POST, "/upload/resumable")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", data.len().to_string())
        .header("upload-metadata", meta)
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.contains("/storage/v1/upload/resumable/"), "{location}");
    let patch = |offset: usize, body: reqwest::Body| {
        api.http
            .patch(&location)
            .header("apikey", &api.apikey)
            .bearer_auth(&api.bearer)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body)
            .send()
    };
    let offset_now = || async {
        let r = api.req(M::HEAD, location.split("/storage/v1").nth(1).expect("path")).header("tus-resumable", "1.0.0").send().await.expect("head");
        assert_eq!(r.status(), 200);
        r.headers()["upload-offset"].to_str().expect("offset").parse::<usize>().expect("number")
    };
    let first = 3 << 20;
    let r = patch(0, data[..first].to_vec().into()).await.expect("patch 1");
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], first.to_string().as_str());
    // A wrong offset is refused.
    let r = patch(1, b"x".to_vec().into()).await.expect("bad offset");
    assert_eq!(r.status(), 400);
    // Cut off: 2 MB arrive, then the client's body fails.
    let piece = data[first..first + (2 << 20)].to_vec();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(piece), Err(std::io::Error::other("client gone"))];
    let _ = patch(first, reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))).await;
    let mut offset = 0;
    for _ in 0..50 {
        offset = offset_now().await;
        if offset > first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(offset >= first && offset <= first + (2 << 20), "offset {offset}");
    let r = patch(offset, data[offset..].to_vec().into()).await.expect("resume");
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let r = api.get("resumable/dir/big.bin").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-test");
    let got = r.bytes().await.expect("body");
    assert!(got.len() == data.len() && got == data, "resumed upload round-trips");
    // Finished uploads are gone; a HEAD now is a 404.
    let r = api.req(M::HEAD, location.split("/storage/v1").nth(1).expect("path")).send().await.expect("head");
    assert_eq!(r.status(), 400);
    // Termination.
    let r = api
        .req(M::POST, "/upload/resumable")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .header("upload-metadata", format!("bucketName {},objectName {}", b64("resumable"), b64("gone.bin")))
        .send()
        .await
        .expect("create");
    let loc = r.headers()["location"].to_str().expect("location").to_owned();
    let path = loc.split("/storage/v1").nth(1).expect("path").to_owned();
    assert_eq!(api.req(M::DELETE, &path).send().await.expect("delete").status(), 204);
    // Over the limit at creation.
    let r = api
        .req(M::POST, "/upload/resumable")
        .header("upload-length", (100u64 << 30).to_string())
        .header("upload-metadata", format!("bucketName {},objectName {}", b64("resumable"), b64("huge.bin")))
        .send()
        .await
        .expect("create");
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.expect("json"), "413", "EntityTooLarge");
}

#[tokio::test]
async fn tus_resumable_upload_file_backend() {
    let root = tempfile::tempdir().expect("root");
    let r = root.path().to_string_lossy().into_owned();
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.storage.file_root = r).await;
    tus_round_trip(&s).await;
    assert_eq!(stored_files(root.path()), 1, "only the finished object's bytes remain");
    assert_eq!(count_files(&root.path().join("tus")), 0, "no parts are left behind");
    s.shutdown().await;
}

#[tokio::test]
async fn tus_resumable_upload_s3_backend() {
    let m = moto();
    let bucket = m.bucket().await;
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| m.apply(c, &bucket)).await;
    tus_round_trip(&s).await;
    let listing = reqwest::get(format!("{}/{bucket}?list-type=2", m.endpoint)).await.expect("list").text().await.expect("xml");
    assert_eq!(listing.matches("<Key>").count(), 1, "{listing}");
    s.shutdown().await;
}

#[tokio::test]
async fn sweep_removes_only_unreferenced_bytes() {
    use reqwest::Method as M;
    let root = tempfile::tempdir().expect("root");
    let r = root.path().to_string_lossy().into_owned();
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.storage.file_root = r).await;
    let api = Api::service(&s);
    assert_eq!(api.json(M::POST, "/bucket", json!({"name": "swept"})).await.0, 200);
    assert_eq!(api.upload("swept/keep.txt", b"kept", "text/plain", false).await.0, 200);
    // Bytes of an upload whose row never committed, and a part of a vanished resumable upload.
    let orphan = uuid::Uuid::new_v4().to_string();
    let dir = root.path().join("objects").join(&orphan[..2]);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join(&orphan), b"orphan").expect("orphan");
    // The staging file of an upload a crash cut short.
    std::fs::write(dir.join(format!("{}#1", uuid::Uuid::new_v4())), b"half").expect("staging");
    let part = root.path().join("tus").join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&part).expect("dir");
    std::fs::write(part.join("00000000000000000000"), b"part").expect("part");
    assert_eq!(stored_files(root.path()), 3);

    let state = std::sync::Arc::clone(s.server.as_ref().expect("server").state());
    let store = fluxbase::storage::backend::build(&state.config).expect("store");
    let storage = fluxbase::storage::Storage::new(state, store);
    // With an hour's grace nothing this fresh is touched.
    let n = fluxbase::storage::sweep::sweep_once(&storage, Duration::from_secs(3600)).await.expect("sweep");
    assert_eq!(n, 0);
    let n = fluxbase::storage::sweep::sweep_once(&storage, Duration::ZERO).await.expect("sweep");
    assert_eq!(n, 3);
    assert_eq!(stored_files(root.path()), 1);
    assert_eq!(count_files(&root.path().join("tus")), 0);
    assert_eq!(api.get("swept/keep.txt").await.text().await.expect("kept"), "kept");
    s.shutdown().await;
}

/// The supabase-js storage suites (objects, tus-js-client, image transforms) again, on a server whose bytes live in S3 (moto).
#[tokio::test]
async fn supabase_js_storage_suite_on_s3() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    crate::harness::node::npm_ci_if_missing(&dir);
    let m = moto();
    let bucket = m.bucket().await;
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| m.apply(c, &bucket)).await;
    let files: Vec<String> = ["storage.test.mjs", "storage_tus.test.mjs", "storage_render.test.mjs"].map(str::to_owned).into();
    crate::harness::node::run_suite(&dir, &files, &s, "the supabase-js storage suite on S3").await;
    s.shutdown().await;
}
