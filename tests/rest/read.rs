//! Reads: select, filters, order, ranges, counts, single, CSV, embedding.

use serde_json::json;

use super::{get, send, server};

#[tokio::test]
async fn smoke_select_and_filters() {
    let s = server().await;
    let r = get(&s, "/users?select=id,name&order=id").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()[0], json!({"id": 1, "name": "alice"}));
    assert_eq!(r.header("content-range").as_deref(), Some("0-3/*"));
    s.shutdown().await;
}
