//! The edge: API-key gate, request ids in error bodies, CORS, health, metrics, limits.

use serde_json::Value;

use crate::harness::TestServer;

const API_ROUTES: &[&str] = &["/rest/v1/todos", "/auth/v1/settings", "/storage/v1/bucket", "/realtime/v1/api/broadcast", "/changes/v1/status"];

#[tokio::test]
async fn api_routes_need_a_key() {
    let s = TestServer::start().await;
    let http = s.http();
    for route in API_ROUTES {
        let r = http.get(format!("{}{route}", s.url)).send().await.expect("request");
        assert_eq!(r.status(), 401, "{route} without a key");
        let rid = r.headers()["x-request-id"].to_str().expect("ascii").to_owned();
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["message"], "No API key found in request", "{route}: {body}");
        assert!(body.to_string().contains(&rid), "request id {rid} in the error body of {route}: {body}");

        let r = http.get(format!("{}{route}", s.url)).header("apikey", "wrong").send().await.expect("request");
        assert_eq!(r.status(), 401, "{route} with a wrong key");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["message"], "Invalid API key", "{route}: {body}");

        for key in [&s.keys.anon, &s.keys.service_role] {
            let r = http.get(format!("{}{route}", s.url)).header("apikey", key).send().await.expect("request");
            assert_ne!(r.status(), 401, "{route} with a valid key passes the gate");
            let r = http.get(format!("{}{route}?apikey={key}", s.url)).send().await.expect("request");
            assert_ne!(r.status(), 401, "{route} with the key as a query parameter");
            let r = http.get(format!("{}{route}", s.url)).bearer_auth(key).send().await.expect("request");
            assert_ne!(r.status(), 401, "{route} with the key as a bearer token");
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn client_request_ids_are_echoed_in_headers_and_error_bodies() {
    let s = TestServer::start().await;
    let r = s.http().get(format!("{}/rest/v1/x", s.url)).header("x-request-id", "trace-42").send().await.expect("request");
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["request_id"], "trace-42");
    // Auth errors carry it as GoTrue's error_id (legacy shape) too.
    let r = s
        .http()
        .get(format!("{}/auth/v1/x", s.url))
        .header("apikey", &s.keys.anon)
        .header("x-request-id", "trace-43")
        .send()
        .await
        .expect("request");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error_id"], "trace-43", "{body}");
    s.shutdown().await;
}

#[tokio::test]
async fn health_metrics_and_cors() {
    let s = TestServer::start().await;
    let http = s.http();
    let r = http.get(format!("{}/health", s.url)).send().await.expect("health");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["database"]["state"], "up", "{body}");
    assert!(body.get("replication").is_some() && body.get("event_log").is_some(), "{body}");

    let r = http
        .request(reqwest::Method::OPTIONS, format!("{}/rest/v1/todos", s.url))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "apikey, authorization, prefer, content-type")
        .send()
        .await
        .expect("preflight");
    assert!(r.status().is_success(), "preflight status {}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "http://app.example");
    let allow = r.headers()["access-control-allow-headers"].to_str().expect("ascii").to_owned();
    assert!(allow.contains("apikey") && allow.contains("prefer"), "{allow}");

    let r = http.get(format!("{}/rest/v1/todos", s.url)).header("origin", "http://app.example").send().await.expect("get");
    let expose = r.headers()["access-control-expose-headers"].to_str().expect("ascii").to_owned();
    assert!(expose.contains("content-range"), "{expose}");

    let text = http.get(format!("{}/metrics", s.url)).send().await.expect("metrics").text().await.expect("text");
    assert!(text.contains("fluxbase_http_requests_total{service=\"rest\""), "{text}");
    assert!(text.contains("fluxbase_db_pool_connections"), "{text}");
    assert!(text.contains("fluxbase_replication_lag_bytes"), "{text}");
    assert!(text.contains("fluxbase_replication_streaming"), "{text}");
    s.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_reading() {
    let s = TestServer::start_with(crate::harness::TestDatabase::fresh().await, |c| c.server.max_body_bytes = 4096).await;
    let r = s
        .http()
        .post(format!("{}/rest/v1/todos", s.url))
        .header("apikey", &s.keys.anon)
        .body(vec![b'x'; 10_000])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 413);
    // The unread body may still be arriving: the connection is not reused.
    assert_eq!(r.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
    // A body the gate refuses is unread too; one the routes read and refuse is not.
    let r = s.http().post(format!("{}/rest/v1/todos", s.url)).header("apikey", "wrong").body("{}").send().await.expect("request");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
    let r = s.http().post(format!("{}/rest/v1/todos", s.url)).header("apikey", &s.keys.anon).body("{}").send().await.expect("request");
    assert_eq!(r.status(), 404, "no such table");
    assert_eq!(r.headers().get("connection"), None);
    s.shutdown().await;
}
