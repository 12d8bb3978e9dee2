//! The heart: WAL → event log → `/changes/v1` streams, on a real PostgreSQL.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::sse::{SseClient, SseEvent};
use crate::harness::{TestServer, TEST_JWT_SECRET};

const T: Duration = Duration::from_secs(30);

fn stream_url(s: &TestServer, query: &str) -> String {
    format!("{}/changes/v1/stream?{query}", s.url)
}

async fn service_stream(s: &TestServer, query: &str, last: Option<&str>) -> SseClient {
    let c = SseClient::open(&stream_url(s, query), &s.keys.service_role, None, last).await;
    assert_eq!(c.status, 200, "stream {query}");
    c
}

fn user_token(sub: &str) -> String {
    let claims = json!({"sub": sub, "role": "authenticated", "exp": 4_000_000_000u64, "aud": "authenticated"});
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()))
        .expect("sign")
}

/// Waits until the log has passed the server's current WAL position, so a
/// stream opened with `from=now` starts after everything done so far.
async fn settle(s: &TestServer) {
    let c = s.db.client().await;
    // A committed change on a published table moves the log; wait for it.
    c.batch_execute("create table if not exists public._settle (id int primary key); insert into public._settle values (1) on conflict (id) do update set id = 1")
        .await
        .expect("settle write");
    let lsn: String = c.query_one("select pg_current_wal_insert_lsn()::text", &[]).await.expect("lsn").get(0);
    let r = s
        .http()
        .get(format!("{}/changes/v1/wait?lsn={lsn}&timeout_ms=30000", s.url))
        .header("apikey", &s.keys.service_role)
        .send()
        .await
        .expect("wait");
    assert_eq!(r.status(), 200, "log reached {lsn}");
}

#[tokio::test]
async fn changes_arrive_in_order_with_positions_and_resume_exactly() {
    let s = TestServer::start().await;
    let c = s.db.client().await;
    c.batch_execute("create table public.todos (id bigint primary key, title text, done boolean default false)").await.expect("ddl");
    settle(&s).await;
    let mut sse = service_stream(&s, "tables=public.todos", None).await;
    c.batch_execute(
        "insert into public.todos (id, title) values (1, 'a'), (2, 'b');
         update public.todos set done = true where id = 1;
         delete from public.todos where id = 2;",
    )
    .await
    .expect("writes");
    let ev = sse.collect(4, T).await;
    assert_eq!(ev.len(), 4, "{ev:?}");
    let kinds: Vec<String> = ev.iter().map(|e| e.json()["type"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(kinds, ["INSERT", "INSERT", "UPDATE", "DELETE"]);
    let ins = ev[0].json();
    assert_eq!(ins["schema"], "public");
    assert_eq!(ins["table"], "todos");
    assert_eq!(ins["record"], json!({"id": 1, "title": "a", "done": false}));
    assert_eq!(ins["position"], ev[0].id);
    assert!(ins["commit_timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{ins}");
    let upd = ev[2].json();
    assert_eq!(upd["old_record"], json!({"id": 1, "title": "a", "done": false}), "REPLICA IDENTITY FULL gives the old row");
    assert_eq!(upd["record"]["done"], true);
    assert_eq!(ev[3].json()["old_record"]["id"], 2);
    // Positions strictly increase; two changes of one transaction share its LSN.
    let pos: Vec<fluxbase::eventlog::Position> = ev.iter().map(|e| e.id.parse().expect("position id")).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
    assert_eq!(pos[0].lsn, pos[1].lsn);

    // Resume after the second event: exactly the last two, in order.
    drop(sse);
    let mut again = service_stream(&s, "tables=public.todos", Some(&ev[1].id)).await;
    let rest = again.collect(2, T).await;
    assert_eq!(rest.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![ev[2].id.clone(), ev[3].id.clone()]);
    assert!(again.next(Duration::from_millis(500)).await.map(|e| e.event != "change").unwrap_or(true), "nothing twice");
    // `from=` works like Last-Event-ID.
    let mut from = service_stream(&s, &format!("tables=public.todos&from={}", ev[2].id), None).await;
    assert_eq!(from.collect(1, T).await[0].id, ev[3].id);
    s.shutdown().await;
}

#[tokio::test]
async fn rls_decides_what_each_user_sees() {
    let s = TestServer::start().await;
    let c = s.db.client().await;
    let (alice, bob) = ("6f1c1e36-8d4b-4c53-9a1a-5d2f8a0e7c11", "0b9a7c2e-1111-4222-8333-944455556666");
    c.batch_execute(
        "create table public.notes (id bigint primary key, owner uuid not null, body text);
         alter table public.notes enable row level security;
         create policy own on public.notes for select using (auth.uid() = owner);
         grant select on public.notes to authenticated;",
    )
    .await
    .expect("ddl");
    settle(&s).await;
    let (ta, tb) = (user_token(alice), user_token(bob));
    let url = stream_url(&s, "tables=public.notes");
    let mut sa = SseClient::open(&url, &s.keys.anon, Some(&ta), None).await;
    let mut sb = SseClient::open(&url, &s.keys.anon, Some(&tb), None).await;
    let mut anon = SseClient::open(&url, &s.keys.anon, None, None).await;
    c.batch_execute(&format!(
        "insert into public.notes values (1, '{alice}', 'a1'), (2, '{bob}', 'b1');
         update public.notes set owner = '{bob}' where id = 1;
         delete from public.notes where id = 2;"
    ))
    .await
    .expect("writes");
    let a = sa.collect(2, T).await;
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].json()["record"]["id"], 1);
    // The update moved row 1 out of Alice's view: she learns that, without the new row.
    assert_eq!(a[1].json()["type"], "UPDATE");
    assert_eq!(a[1].json()["left_view"], true);
    assert!(a[1].json().get("record").is_none());
    let b = sb.collect(3, T).await;
    let b_kinds: Vec<(String, Value)> = b.iter().map(|e| (e.json()["type"].as_str().unwrap_or("").to_owned(), e.json()["record"]["id"].clone())).collect();
    assert_eq!(b_kinds[0], ("INSERT".to_owned(), json!(2)));
    assert_eq!(b_kinds[1], ("UPDATE".to_owned(), json!(1)), "the row moved into Bob's view");
    assert_eq!(b[2].json()["type"], "DELETE");
    assert_eq!(b[2].json()["old_record"]["id"], 2, "Bob sees the delete of his row");
    assert!(anon.next(Duration::from_secs(2)).await.map(|e| e.event != "change").unwrap_or(true), "anon sees nothing");
    s.shutdown().await;
}

#[tokio::test]
async fn values_types_toast_truncate_ddl_and_messages() {
    let s = TestServer::start().await;
    let c = s.db.client().await;
    c.batch_execute(
        "create type public.mood as enum ('happy', 'sad');
         create domain public.posint as int check (value > 0);
         create table public.typed (
            id int primary key, b bool, i2 int2, i8 int8, f4 float4, f8 float8, n numeric, t text,
            j json, jb jsonb, ts timestamp, tz timestamptz, d date, u uuid, by bytea,
            ai int[], at text[], m public.mood, p public.posint, big text
         );",
    )
    .await
    .expect("ddl");
    settle(&s).await;
    let mut sse = service_stream(&s, "", None).await;
    c.batch_execute(
        "insert into public.typed values (1, true, 2, 9007199254740993, 1.5, 2.25, 12.50, 'x',
            '{\"a\":1}', '{\"b\":[1,2]}', '2024-01-02 03:04:05.5', '2024-01-02 03:04:05+00', '2024-01-02',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x0102', '{1,NULL,3}', '{\"a b\",c}', 'sad', 7,
            (select string_agg(md5(g::text), '') from generate_series(1, 40000) g));
         update public.typed set t = 'y' where id = 1;
         select pg_logical_emit_message(true, 'audit', 'hello');
         alter table public.typed add column extra int default 5;
         update public.typed set extra = 6 where id = 1;
         alter table public.typed drop column extra;
         update public.typed set t = 'z' where id = 1;
         truncate public.typed;",
    )
    .await
    .expect("writes");
    let mut ev: Vec<SseEvent> = Vec::new();
    while ev.len() < 6 {
        match sse.next(T).await {
            Some(e) if e.event == "change" => ev.push(e),
            Some(_) => {}
            None => break,
        }
    }
    let ev: Vec<Value> = ev.iter().map(SseEvent::json).collect();
    let typed: Vec<&Value> = ev.iter().filter(|e| e["table"] == "typed" || e["type"] == "MESSAGE").collect();
    let r = &typed[0]["record"];
    assert_eq!(r["b"], true);
    assert_eq!(r["i8"], json!(9007199254740993i64));
    assert_eq!(r["f4"], 1.5);
    assert_eq!(r["n"], 12.5);
    assert_eq!(r["j"], json!({"a": 1}));
    assert_eq!(r["jb"], json!({"b": [1, 2]}));
    assert_eq!(r["ts"], "2024-01-02T03:04:05.5");
    assert_eq!(r["tz"], "2024-01-02T03:04:05+00:00");
    assert_eq!(r["d"], "2024-01-02");
    assert_eq!(r["u"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(r["by"], "\\x0102");
    assert_eq!(r["ai"], json!([1, null, 3]));
    assert_eq!(r["at"], json!(["a b", "c"]));
    assert_eq!(r["m"], "sad");
    assert_eq!(r["p"], 7);
    let big_len = r["big"].as_str().map(str::len).unwrap_or(0);
    assert_eq!(big_len, 40000 * 32, "a TOASTed value over 1 MB arrives whole");
    // Updating another column: the unchanged TOAST value is filled from the old image.
    assert_eq!(typed[1]["type"], "UPDATE");
    assert_eq!(typed[1]["record"]["big"].as_str().map(str::len), Some(big_len));
    assert!(typed[1].get("unchanged_toast").is_none());
    assert_eq!(typed[2]["type"], "MESSAGE");
    assert_eq!(typed[2]["message"], json!({"prefix": "audit", "content": "hello"}));
    // ALTER TABLE mid-stream: the new column appears, then disappears.
    assert_eq!(typed[3]["record"]["extra"], 6);
    assert!(typed[4]["record"].get("extra").is_none(), "{}", typed[4]);
    assert_eq!(typed[5]["type"], "TRUNCATE");
    s.shutdown().await;
}

#[tokio::test]
async fn a_large_update_delivers_every_row() {
    let s = TestServer::start().await;
    let c = s.db.client().await;
    c.batch_execute("create table public.big (id int primary key, v int); insert into public.big select g, 0 from generate_series(1, 10000) g;")
        .await
        .expect("setup");
    settle(&s).await;
    let mut sse = service_stream(&s, "tables=public.big", None).await;
    c.batch_execute("update public.big set v = v + 1").await.expect("update");
    let ev = sse.collect(10_000, Duration::from_secs(120)).await;
    assert_eq!(ev.len(), 10_000);
    let ids: std::collections::BTreeSet<i64> = ev.iter().filter_map(|e| e.json()["record"]["id"].as_i64()).collect();
    assert_eq!(ids.len(), 10_000, "each row once");
    s.shutdown().await;
}

#[tokio::test]
async fn bad_parameters_status_and_read_your_writes() {
    let s = TestServer::start().await;
    let http = s.http();
    for q in ["from=yesterday", "tables=a;drop", "until=nope"] {
        let r = http.get(stream_url(&s, q)).header("apikey", &s.keys.service_role).send().await.expect("request");
        assert_eq!(r.status(), 400, "{q}");
        let body: Value = r.json().await.expect("json");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let r = http
        .get(format!("{}/changes/v1/status", s.url))
        .header("apikey", &s.keys.service_role)
        .send()
        .await
        .expect("status");
    assert_eq!(r.status(), 200);
    let st: Value = r.json().await.expect("json");
    assert!(st["slot"]["name"].as_str().is_some_and(|n| n.starts_with("fluxbase_")), "{st}");
    let r = http.get(format!("{}/changes/v1/status", s.url)).header("apikey", &s.keys.anon).send().await.expect("status");
    assert_eq!(r.status(), 403);

    // A table without a primary key is refused with the fix, and writes to it still work.
    let c = s.db.client().await;
    c.batch_execute("create table public.nopk (v int); insert into public.nopk values (1); update public.nopk set v = 2; delete from public.nopk;")
        .await
        .expect("writes to an unpublishable table still work");
    let st: Value = http
        .get(format!("{}/changes/v1/status", s.url))
        .header("apikey", &s.keys.service_role)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    let refused = st["refused_tables"].to_string();
    assert!(refused.contains("public.nopk") && refused.contains("ADD PRIMARY KEY"), "{st}");

    // until=<lsn>: the stream ends once the log passed the write.
    c.batch_execute("create table public.ryw (id int primary key)").await.expect("ddl");
    settle(&s).await;
    c.batch_execute("insert into public.ryw values (1)").await.expect("write");
    let lsn: String = c.query_one("select pg_current_wal_insert_lsn()::text", &[]).await.expect("lsn").get(0);
    let mut sse = service_stream(&s, &format!("tables=public.ryw&from=start&until={lsn}"), None).await;
    let mut saw_insert = false;
    let mut ended = false;
    while let Some(e) = sse.next(T).await {
        if e.event == "change" {
            saw_insert |= e.json()["record"]["id"] == 1;
        }
        if e.event == "end" {
            ended = true;
            break;
        }
    }
    assert!(saw_insert && ended, "insert {saw_insert}, end {ended}");
    s.shutdown().await;
}

#[tokio::test]
async fn a_100k_row_transaction_arrives_whole() {
    let s = TestServer::start().await;
    let c = s.db.client().await;
    c.batch_execute("create table public.huge (id int primary key, v text)").await.expect("ddl");
    settle(&s).await;
    let before: String = c.query_one("select pg_current_wal_insert_lsn()::text", &[]).await.expect("lsn").get(0);
    c.batch_execute("insert into public.huge select g, md5(g::text) from generate_series(1, 100000) g").await.expect("insert");
    let lsn: String = c.query_one("select pg_current_wal_insert_lsn()::text", &[]).await.expect("lsn").get(0);
    let mut sse = service_stream(&s, &format!("tables=public.huge&from={before}&until={lsn}"), None).await;
    let mut n = 0usize;
    let mut last = fluxbase::eventlog::Position::START;
    while let Some(e) = sse.next(Duration::from_secs(120)).await {
        match e.event.as_str() {
            "change" => {
                n += 1;
                let p: fluxbase::eventlog::Position = e.id.parse().expect("position");
                assert!(p > last, "positions increase");
                last = p;
            }
            "end" => break,
            _ => {}
        }
    }
    assert_eq!(n, 100_000, "one event per row of the transaction");
    s.shutdown().await;
}

#[tokio::test]
async fn a_lost_slot_becomes_a_gap_clients_see() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path().to_owned();
    let db = crate::harness::TestDatabase::fresh().await;
    let url = db.url.clone();
    let s = TestServer::start_with(db, |c| c.data_dir = dir.clone()).await;
    let c = s.db.client().await;
    c.batch_execute("create table public.g (id int primary key)").await.expect("ddl");
    settle(&s).await;
    c.batch_execute("insert into public.g values (1)").await.expect("write");
    let mut sse = service_stream(&s, "tables=public.g&from=start", None).await;
    let first = sse.collect(1, T).await;
    assert_eq!(first.len(), 1);
    let slot: String = s.http().get(format!("{}/changes/v1/status", s.url)).header("apikey", &s.keys.service_role).send().await.expect("status").json::<Value>().await.expect("json")["slot"]["name"]
        .as_str()
        .expect("slot")
        .to_owned();
    drop(sse);
    let TestServer { server, db, .. } = s;
    if let Some(srv) = server {
        srv.shutdown().await;
    }
    // The slot disappears while Fluxbase is down (as if invalidated): changes made meanwhile are lost.
    let admin = fluxbase::database::connect_one(&url, "test").await.expect("connect");
    admin.execute("select pg_drop_replication_slot($1)", &[&slot]).await.expect("drop slot");
    admin.batch_execute("insert into public.g values (2)").await.expect("lost write");
    let s2 = TestServer::start_with(db, |c| c.data_dir = dir.clone()).await;
    let mut sse = SseClient::open(&stream_url(&s2, "tables=public.g"), &s2.keys.service_role, None, Some(&first[0].id)).await;
    let mut saw_gap = false;
    while let Some(e) = sse.next(Duration::from_secs(10)).await {
        if e.event == "gap" {
            saw_gap = true;
            assert_eq!(e.json()["type"], "GAP");
            break;
        }
    }
    assert!(saw_gap, "clients are told to resnapshot");
    s2.shutdown().await;
}
