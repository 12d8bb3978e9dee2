//! Writes: insert (one, many, columns, missing=default, CSV), upsert,
//! update, delete, Prefer combinations, status codes, Location, LSN,
//! tx=rollback, single-object checks.

use serde_json::json;

use super::{get, send, send_as, server, service};

#[tokio::test]
async fn insert_one_and_many() {
    let s = server().await;
    let r = send(&s, "POST", "/tags", None, &[], Some(json!({"id": 10, "name": "x"}))).await;
    assert_eq!((r.status, r.text.as_str()), (401, r.text.as_str()), "anon may not insert into tags");
    let r = service(&s, "POST", "/tags", &[], Some(json!({"id": 10, "name": "x"}))).await;
    assert_eq!((r.status, r.text.as_str()), (201, ""));
    let lsn = r.header("x-fluxbase-lsn").expect("lsn header");
    assert!(lsn.contains('/'), "{lsn}");
    assert_eq!(r.header("location"), None, "minimal returns nothing, as PostgREST 12");
    let r = service(&s, "POST", "/tags?select=id,name", &[("prefer", "return=representation")], Some(json!([{"id": 11, "name": "y"}, {"id": 12, "name": "z"}]))).await;
    assert_eq!((r.status, r.json()), (201, json!([{"id": 11, "name": "y"}, {"id": 12, "name": "z"}])));
    // columns= restricts and orders; missing keys are NULL, or the default with missing=default
    let r = service(
        &s,
        "POST",
        "/posts?columns=%22title%22,%22published%22&select=title,published,body",
        &[("prefer", "return=representation")],
        Some(json!([{"title": "a", "body": "ignored"}, {"title": "b", "published": true}])),
    )
    .await;
    assert_eq!(r.status, 400, "published NULL violates not null: {}", r.text);
    assert_eq!(r.json()["code"], "23502");
    let r = service(
        &s,
        "POST",
        "/posts?columns=%22title%22,%22published%22&select=title,published,body",
        &[("prefer", "return=representation,missing=default")],
        Some(json!([{"title": "a", "body": "ignored"}, {"title": "b", "published": true}])),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!([{"title": "a", "published": false, "body": null}, {"title": "b", "published": true, "body": null}]));
    assert_eq!(r.header("preference-applied").as_deref(), Some("missing=default, return=representation"));
    // An empty object inserts the column defaults.
    let r = service(&s, "POST", "/inbox?select=msg", &[("prefer", "return=representation")], Some(json!({}))).await;
    assert_eq!((r.status, r.json()), (201, json!([{"msg": null}])), "{}", r.text);
    // So does each empty object of an array: one row of defaults per element.
    let r = service(&s, "POST", "/inbox?select=msg", &[("prefer", "return=representation, count=exact")], Some(json!([{}, {}]))).await;
    assert_eq!((r.status, r.json()), (201, json!([{"msg": null}, {"msg": null}])), "{}", r.text);
    assert_eq!(r.header("content-range").as_deref(), Some("*/2"));
    // headers-only and count
    let r = service(&s, "POST", "/tags", &[("prefer", "return=headers-only, count=exact")], Some(json!({"id": 13, "name": "h"}))).await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-range").as_deref()), (201, "", Some("*/1")));
    assert_eq!(r.header("location").as_deref(), Some("/tags?id=eq.13"));
    // CSV body
    let key = s.keys.service_role.clone();
    let rep = [("prefer", "return=representation")];
    let post = |path: &'static str, content_type: &'static str, body: &'static str| {
        send_as(&s, "POST", path, Some(&key), &rep, Some((content_type, body.as_bytes().to_vec())))
    };
    let r = post("/tags", "text/csv", "id,name\n20,\"c,sv\"\n21,plain").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!([{"id": 20, "name": "c,sv"}, {"id": 21, "name": "plain"}]));
    // As PostgREST reads CSV: NULL is null, an empty field is an empty string,
    // and every line has the header's number of fields.
    let r = post("/inbox?select=msg", "text/csv", "msg\nNULL\n\"\"\nplain\n").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!([{"msg": null}, {"msg": ""}, {"msg": "plain"}]));
    let r = post("/inbox?select=msg", "text/csv", "id,msg\n1\n").await;
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!((&e["code"], &e["message"]), (&json!("PGRST102"), &json!("All lines must have same number of fields")));
    // Without columns=, every object of an array must have the first one's keys.
    for body in [json!([{"id": 50, "name": "a"}, {"id": 51}]), json!([{"id": 50}, {"id": 51, "name": "b"}]), json!([{"id": 50}, 1])] {
        let r = service(&s, "POST", "/tags", &[], Some(body.clone())).await;
        assert_eq!((r.status, &r.json()["code"], &r.json()["message"]), (400, &json!("PGRST102"), &json!("All object keys must match")), "{body}");
    }
    let r = service(&s, "POST", "/tags?columns=id,name", &[], Some(json!([{"id": 52, "name": "a"}, {"id": 53, "name": "b", "x": 1}]))).await;
    assert_eq!(r.status, 201, "with columns= the keys may differ: {}", r.text);
    // A form body is one row of strings; raw media are not for tables.
    let r = post("/tags?select=id,name", "application/x-www-form-urlencoded", "id=54&name=from+a+form").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!([{"id": 54, "name": "from a form"}]));
    let r = post("/tags?select=id,name", "text/plain", "id=55").await;
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!((&e["code"], &e["message"]), (&json!("PGRST102"), &json!("Content-Type not acceptable: text/plain")));
    s.shutdown().await;
}

#[tokio::test]
async fn upsert_merge_and_ignore() {
    let s = server().await;
    let rep = [("prefer", "resolution=merge-duplicates,return=representation")];
    let r = service(&s, "POST", "/tags", &rep, Some(json!([{"id": 1, "name": "INTRO"}]))).await;
    assert_eq!((r.status, r.json()), (200, json!([{"id": 1, "name": "INTRO"}])), "only updated: 200");
    let r = service(&s, "POST", "/tags", &rep, Some(json!([{"id": 1, "name": "intro"}, {"id": 30, "name": "new"}]))).await;
    assert_eq!(r.status, 201);
    let r = service(&s, "POST", "/tags", &[("prefer", "resolution=ignore-duplicates,return=representation")], Some(json!([{"id": 1, "name": "nope"}, {"id": 31, "name": "n2"}]))).await;
    assert_eq!((r.status, r.json()), (201, json!([{"id": 31, "name": "n2"}])));
    assert_eq!(get(&s, "/tags?id=eq.1&select=name").await.json(), json!([{"name": "intro"}]));
    // on_conflict on a unique column
    let r = service(
        &s,
        "POST",
        "/users?on_conflict=email&select=name,age",
        &[("prefer", "resolution=merge-duplicates, return=representation")],
        Some(json!({"email": "bob@example.com", "name": "bobby", "age": 26})),
    )
    .await;
    assert_eq!((r.status, r.json()), (200, json!([{"name": "bobby", "age": 26}])), "{}", r.text);
    // a plain duplicate is 409
    let r = service(&s, "POST", "/tags", &[], Some(json!({"id": 1, "name": "dup"}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (409, Some("23505")));
    // unknown body column
    let r = service(&s, "POST", "/tags", &[], Some(json!({"id": 2, "nope": 1}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST204")));
    assert_eq!(r.json()["message"], "Could not find the 'nope' column of 'tags' in the schema cache");
    // FK violation is 409
    let r = service(&s, "POST", "/posts", &[], Some(json!({"title": "t", "author_id": 999}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (409, Some("23503")));
    s.shutdown().await;
}

#[tokio::test]
async fn update_and_delete() {
    let s = server().await;
    let r = service(&s, "PATCH", "/users?id=eq.2", &[], Some(json!({"age": 26}))).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert!(r.header("x-fluxbase-lsn").is_some());
    let r = service(&s, "PATCH", "/users?age=gte.26&select=id,age", &[("prefer", "return=representation"), ("prefer", "count=exact")], Some(json!({"bio": "x"}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().map(Vec::len), Some(3));
    assert_eq!(r.header("content-range").as_deref(), Some("*/3"));
    let r = service(&s, "PATCH", "/users?id=eq.999", &[("prefer", "return=representation")], Some(json!({"bio": "x"}))).await;
    assert_eq!((r.status, r.json()), (200, json!([])));
    let r = service(&s, "PATCH", "/users?id=eq.1", &[], Some(json!([1, 2]))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST102")));
    let r = service(&s, "PATCH", "/users?id=eq.1", &[], None).await;
    assert_eq!(r.json()["code"], "PGRST102");
    // single-object on a write that touches several rows rolls back
    let r = service(&s, "PATCH", "/users?age=gt.0", &[("accept", "application/vnd.pgrst.object+json")], Some(json!({"bio": "many"}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST116")), "{}", r.text);
    assert_eq!(get(&s, "/users?bio=eq.many").await.json(), json!([]), "rolled back");
    // tx=rollback
    let r = service(&s, "DELETE", "/post_tags?post_id=eq.1", &[("prefer", "tx=rollback, return=representation")], None).await;
    assert_eq!((r.status, r.json().as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(r.header("preference-applied").as_deref(), Some("return=representation, tx=rollback"));
    assert_eq!(get(&s, "/post_tags?post_id=eq.1").await.json().as_array().map(Vec::len), Some(1));
    let r = service(&s, "DELETE", "/post_tags?post_id=eq.1", &[], None).await;
    assert_eq!(r.status, 204);
    assert_eq!(get(&s, "/post_tags?post_id=eq.1").await.json(), json!([]));
    let r = service(&s, "DELETE", "/users?id=eq.1", &[], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (409, Some("23503")));
    s.shutdown().await;
}

#[tokio::test]
async fn put_max_affected_and_stripped_nulls() {
    let s = server().await;
    let rep = [("prefer", "return=representation")];
    let r = service(&s, "PUT", "/tags?id=eq.40", &rep, Some(json!({"id": 40, "name": "put"}))).await;
    assert_eq!((r.status, r.json()), (200, json!([{"id": 40, "name": "put"}])), "{}", r.text);
    let r = service(&s, "PUT", "/tags?id=eq.40", &[], Some(json!({"id": 40, "name": "again"}))).await;
    assert_eq!(r.status, 204);
    assert_eq!(get(&s, "/tags?id=eq.40&select=name").await.json(), json!([{"name": "again"}]));
    let r = service(&s, "PUT", "/tags?id=eq.41", &[], Some(json!({"id": 42, "name": "x"}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST115")));
    let r = service(&s, "PUT", "/tags?name=eq.x", &[], Some(json!({"id": 42, "name": "x"}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (405, Some("PGRST105")));
    let strict = [("prefer", "handling=strict, max-affected=1")];
    let r = service(&s, "PATCH", "/users?age=gt.0", &strict, Some(json!({"bio": "strict"}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST124")), "{}", r.text);
    assert_eq!(r.json()["details"], "The query affects 3 rows");
    assert_eq!(get(&s, "/users?bio=eq.strict").await.json(), json!([]), "rolled back");
    let r = service(&s, "DELETE", "/post_tags?post_id=eq.1", &strict, None).await;
    assert_eq!(r.status, 204);
    let r = send(&s, "GET", "/users?select=id,email&id=eq.3", None, &[("accept", "application/vnd.pgrst.array+json;nulls=stripped")], None).await;
    assert_eq!(r.json(), json!([{"id": 3}]));
    let r = send(&s, "GET", "/users?select=id,age&id=eq.3", None, &[("accept", "application/vnd.pgrst.object+json;nulls=stripped")], None).await;
    assert_eq!(r.json(), json!({"id": 3}));
    s.shutdown().await;
}

/// Ends this test database's REST sessions, what a PostgreSQL restart
/// does to all of them.
async fn end_rest_sessions(s: &crate::harness::TestServer) -> i64 {
    s.db.end_sessions("application_name = 'fluxbase rest'").await
}

#[tokio::test]
async fn sessions_the_server_ended_cost_no_request() {
    let s = server().await;
    // Several sessions in the pools: requests at once.
    let opened = futures_util::future::join_all((0..6).map(|_| get(&s, "/users?select=id"))).await;
    assert!(opened.iter().all(|r| r.status == 200));
    let ended = end_rest_sessions(&s).await;
    assert!(ended >= 1, "no REST session was open");
    // Every pooled session is dead now; each read still gets its answer.
    for _ in 0..=ended {
        let r = get(&s, "/users?select=id").await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let _ = futures_util::future::join_all((0..6).map(|_| get(&s, "/users?select=id"))).await;
    let ended = end_rest_sessions(&s).await;
    // Writes too, each exactly once: the server ran none of a pipeline it
    // answered with its farewell.
    for i in 0..=ended {
        let id = 500 + i;
        let r = service(&s, "POST", "/tags", &[], Some(json!({"id": id, "name": format!("after {i}")}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let c = s.db.client().await;
    let n: i64 = c.query_one("select count(*) from tags where id >= 500", &[]).await.expect("count").get(0);
    assert_eq!(n, ended + 1);
}

/// Columns of every kind a body value can land in: base types with and
/// without modifiers, an enum, a range, JSON, and the kinds only
/// `json_populate_record` converts (an array, a domain, a composite).
const TYPED: &str = r#"
create type public.mood as enum ('sad', 'happy');
create domain public.short_text as text check (length(value) < 5);
create type public.pair as (a int, b text);
create table public.typed (
  id int primary key, i int, n numeric(6,2), f float8, b bool, t text, vc varchar(3), c char(3),
  u uuid, ts timestamptz, d date, m public.mood, r int4range, j json, jb jsonb,
  arr int[], dom public.short_text, comp public.pair
);
grant all on public.typed to service_role;
notify pgrst, 'reload schema';
"#;

/// A one-object write binds its values as parameters where that gives the
/// row `json_populate_record` gives (`src/rest/sql/values.rs`), and reads
/// it through the JSON otherwise. Either way the row, or the error, must
/// be PostgreSQL's own `json_populate_record` reading of the same object:
/// each case is checked against that function run directly.
#[tokio::test]
async fn one_object_writes_store_what_json_populate_record_reads() {
    let s = server().await;
    let db = s.db.client().await;
    db.batch_execute(TYPED).await.expect("typed table");
    super::read::wait_for(&s, "/typed").await;
    let cases = [
        json!({"i": 5, "n": 1.234, "f": 1.5, "b": true, "t": "a'b\"c", "vc": "abc", "c": "ab", "u": "00000000-0000-0000-0000-000000000001"}),
        json!({"i": "7", "n": "12.345", "f": "NaN", "b": "yes", "t": 5, "vc": "ab    ", "c": "a"}),
        json!({"n": 1e3, "f": "-Infinity", "b": 1, "t": true, "ts": "2024-01-02T03:04:05Z", "d": "2024-02-29"}),
        json!({"ts": "2024-01-02 03:04:05+02", "m": "happy", "r": "[1,5)", "j": "x", "jb": "x"}),
        json!({"j": 5, "jb": {"a": [1, null, "b"]}, "t": 1.0, "i": null, "u": null}),
        json!({"j": [1, {"k": "v"}], "jb": [true], "arr": "{1,2}", "dom": "abc", "comp": {"a": 1, "b": "x"}}),
        json!({"arr": [3, 4], "comp": "(2,y)", "t": [1, 2], "jb": null}),
        json!({"t": {"a": 1}}),
        // errors: each must be the one json_populate_record raises
        json!({"i": 1.5}),
        json!({"i": "x"}),
        json!({"i": true}),
        json!({"n": 123456}),
        json!({"vc": "abcd"}),
        json!({"u": "bad"}),
        json!({"d": "2024-02-30"}),
        json!({"m": "angry"}),
        json!({"dom": "abcdef"}),
        json!({"t": "a\u{0}b"}),
    ];
    let oracle = "select row_to_json(_row)::text from json_populate_record(null::public.typed, $1::text::json) _row";
    let mut failures = 0;
    for (n, case) in cases.iter().enumerate() {
        let id = i32::try_from(n).expect("few cases") + 1;
        let mut body = case.clone();
        body["id"] = json!(id);
        let want = db.query_one(oracle, &[&body.to_string()]).await.map(|r| r.get::<_, String>(0));
        let r = service(&s, "POST", "/typed", &[], Some(body.clone())).await;
        match &want {
            Ok(row) => {
                assert_eq!(r.status, 201, "{body}: {}", r.text);
                assert_eq!(stored(&db, id).await, *row, "POST {body}");
                // The same object as a PATCH of that row, and again as a PUT, store it again.
                let r = service(&s, "PATCH", &format!("/typed?id=eq.{id}"), &[], Some(body.clone())).await;
                assert_eq!(r.status, 204, "PATCH {body}: {}", r.text);
                let r = service(&s, "PUT", &format!("/typed?id=eq.{id}"), &[], Some(body.clone())).await;
                assert_eq!(r.status, 204, "PUT {body}: {}", r.text);
                assert_eq!(stored(&db, id).await, *row, "PATCH and PUT {body}");
            }
            Err(e) => {
                failures += 1;
                let code = e.as_db_error().map(|d| d.code().code().to_owned()).expect("a database error");
                let fails = |method: &str, r: super::Res| {
                    assert_ne!(r.status / 100, 2, "{method} {body} must fail with {code}: {}", r.text);
                    assert_eq!(r.json()["code"], json!(code), "{method} {body}: {}", r.text);
                };
                fails("POST", r);
                // On a row that exists, PATCH and PUT fail the same way.
                db.execute("insert into public.typed (id) values ($1)", &[&id]).await.expect("row");
                fails("PATCH", service(&s, "PATCH", &format!("/typed?id=eq.{id}"), &[], Some(body.clone())).await);
                fails("PUT", service(&s, "PUT", &format!("/typed?id=eq.{id}"), &[], Some(body.clone())).await);
            }
        }
    }
    assert_eq!(failures, 10, "the cases after the errors comment fail, the others do not");
    // A key absent under columns= is NULL, or the column default with missing=default.
    db.batch_execute("alter table public.typed alter column t set default 'dflt'").await.expect("default");
    let rep = |p: &'static str| [("prefer", p)];
    let r = service(&s, "POST", "/typed?columns=id,t,i&select=id,t,i", &rep("return=representation"), Some(json!({"id": 100, "i": 1}))).await;
    assert_eq!((r.status, r.json()), (201, json!([{"id": 100, "t": null, "i": 1}])), "{}", r.text);
    let r = service(
        &s,
        "POST",
        "/typed?columns=id,t,i&select=id,t,i",
        &rep("return=representation,missing=default"),
        Some(json!({"id": 101, "i": 2, "ignored": "x"})),
    )
    .await;
    assert_eq!((r.status, r.json()), (201, json!([{"id": 101, "t": "dflt", "i": 2}])), "{}", r.text);
    s.shutdown().await;
}

/// The stored row of `public.typed` as JSON text.
async fn stored(db: &tokio_postgres::Client, id: i32) -> String {
    db.query_one("select row_to_json(_row)::text from public.typed _row where id = $1", &[&id]).await.expect("stored").get(0)
}
