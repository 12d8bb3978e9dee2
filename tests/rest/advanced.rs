//! PostgREST 12/13 query features beyond the basics: related orders
//! (`order=rel(col)`), to-many spreads, limited PATCH/DELETE, `columns=`
//! on RPC, `Prefer: timezone`, execution plans, and each one's error
//! for misuse.

use serde_json::json;

use super::{get, send, server, server_configured, server_with, service};

#[tokio::test]
async fn related_order_on_to_one_embeds() {
    let s = server().await;
    let r = get(&s, "/posts?select=id,author:users(name)&order=author(name).desc,id").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<i64> = r.json().as_array().expect("array").iter().map(|p| p["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, vec![3, 1, 2], "bob's post first, then alice's by id");
    let r = get(&s, "/posts?select=id,author:users(name)&order=author(name).asc.nullsfirst,id.desc").await;
    assert_eq!(r.json()[0]["id"], 2, "{}", r.text);
    // Not embedded, to-many, unknown column: PostgREST's errors.
    let r = get(&s, "/posts?select=id&order=users(name)").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST108")), "{}", r.text);
    let r = get(&s, "/users?select=id,posts(title)&order=posts(title)").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST118")), "{}", r.text);
    let r = get(&s, "/posts?select=id,users(name)&order=users(nope)").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("42703")), "{}", r.text);
    let r = get(&s, "/posts?select=id,users(name)&order=users(name").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST100")), "{}", r.text);
    // Injection through the relation or the column stays a name.
    let r = get(&s, "/posts?select=id,users(name)&order=users(name%22;drop%20table%20posts;--)").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(get(&s, "/posts?select=id").await.json().as_array().map(Vec::len), Some(3));
    s.shutdown().await;
}

#[tokio::test]
async fn to_many_spreads_become_arrays() {
    let s = server().await;
    let r = get(&s, "/users?select=name,...posts(titles:title)&id=lt.4&order=id&posts.order=id").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!([
            {"name": "alice", "titles": ["Hello", "Again"]},
            {"name": "bob", "titles": ["Chess"]},
            {"name": "carol", "titles": []}
        ])
    );
    // Many-to-many, two columns, ordered inside the spread.
    let r = get(&s, "/posts?select=title,...tags(tag_ids:id,tag_names:name)&id=eq.3&tags.order=name").await;
    assert_eq!(r.json(), json!([{"title": "Chess", "tag_ids": [2, 1], "tag_names": ["games", "intro"]}]), "{}", r.text);
    // To-one spreads keep their flat shape.
    let r = get(&s, "/posts?select=id,...users(name)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"id": 3, "name": "bob"}]), "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn limited_patch_and_delete() {
    let s = server().await;
    let rep = [("prefer", "return=representation")];
    let r = service(&s, "PATCH", "/users?age=not.is.null&order=age.desc&limit=1&select=name", &rep, Some(json!({"bio": "oldest"}))).await;
    assert_eq!((r.status, r.json()), (200, json!([{"name": "dave, jr."}])), "{}", r.text);
    let r = service(&s, "GET", "/users?bio=eq.oldest&select=id", &[], None).await;
    assert_eq!(r.json(), json!([{"id": 4}]), "only one row changed");
    let r = service(&s, "PATCH", "/users?order=id&limit=1&offset=1&select=id", &rep, Some(json!({"bio": "second"}))).await;
    assert_eq!(r.json(), json!([{"id": 2}]), "{}", r.text);
    let r = service(&s, "DELETE", "/post_tags?order=post_id,tag_id&limit=2", &[("prefer", "count=exact")], None).await;
    assert_eq!((r.status, r.header("content-range").as_deref()), (204, Some("*/2")), "{}", r.text);
    let r = service(&s, "GET", "/post_tags", &[], None).await;
    assert_eq!(r.json(), json!([{"post_id": 3, "tag_id": 2}]));
    // A limit without an order is refused, and nothing changes.
    let r = service(&s, "DELETE", "/users?limit=1", &[], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST109")), "{}", r.text);
    // PostgREST 12's text (the code is unused from 13 on, which orders by the key).
    assert_eq!(r.json()["message"], "A 'limit' was applied without an explicit 'order'");
    assert_eq!(r.json()["hint"], "Apply an 'order' using unique column(s)");
    assert_eq!(r.json()["details"], serde_json::Value::Null);
    let r = service(&s, "PATCH", "/users?limit=1", &[], Some(json!({"bio": "x"}))).await;
    assert_eq!(r.json()["code"], "PGRST109");
    assert_eq!(service(&s, "GET", "/users?select=id", &[], None).await.json().as_array().map(Vec::len), Some(4));
    s.shutdown().await;
}

#[tokio::test]
async fn rpc_columns_pick_the_arguments() {
    let s = server().await;
    let r = send(&s, "POST", "/rpc/add?columns=a,b", None, &[], Some(json!({"a": 1, "b": 2, "c": 3}))).await;
    assert_eq!((r.status, r.json()), (200, json!(3)), "{}", r.text);
    let r = send(&s, "POST", "/rpc/add", None, &[], Some(json!({"a": 1, "b": 2, "c": 3}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (404, Some("PGRST202")), "without columns, c is an argument");
    let r = send(&s, "POST", "/rpc/add?columns=a,b", None, &[], Some(json!({"a": 1}))).await;
    assert_eq!((r.status, r.json()), (200, json!(null)), "a listed key the body lacks is NULL: {}", r.text);
    let r = send(&s, "POST", "/rpc/add?columns=a,zz", None, &[], Some(json!({"a": 1, "zz": 2}))).await;
    assert_eq!(r.json()["code"], "PGRST202", "{}", r.text);
    let r = send(&s, "POST", "/rpc/add?columns=a,", None, &[], Some(json!({"a": 1}))).await;
    assert_eq!(r.json()["code"], "PGRST100", "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn prefer_timezone() {
    let s = server().await;
    let path = "/posts?select=ts:created_at::text&id=eq.1";
    let r = send(&s, "GET", path, None, &[("prefer", "timezone=Asia/Tokyo")], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()[0]["ts"].as_str().is_some_and(|t| t.ends_with("+09")), "{}", r.text);
    assert_eq!(r.header("preference-applied").as_deref(), Some("timezone=Asia/Tokyo"));
    let r = send(&s, "GET", path, None, &[("prefer", "timezone=America/Los_Angeles")], None).await;
    assert!(r.json()[0]["ts"].as_str().is_some_and(|t| t.ends_with("-08") || t.ends_with("-07")), "{}", r.text);
    // Unknown zones: ignored (lenient), refused (strict).
    let r = send(&s, "GET", path, None, &[("prefer", "timezone=Mars/Olympus")], None).await;
    assert_eq!((r.status, r.header("preference-applied")), (200, None), "{}", r.text);
    assert!(r.json()[0]["ts"].as_str().is_some_and(|t| t.ends_with("+00")), "{}", r.text);
    let r = send(&s, "GET", path, None, &[("prefer", "handling=strict, timezone=Mars/Olympus")], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST122")), "{}", r.text);
    assert_eq!(r.json()["details"], "Invalid preferences: timezone=Mars/Olympus");
    let r = send(&s, "GET", path, None, &[("prefer", "timezone='; set role postgres; --")], None).await;
    assert_eq!(r.status, 200, "a hostile zone is just an unknown one: {}", r.text);
    // Writes too: the returned timestamptz is in the zone.
    let r = send(
        &s,
        "POST",
        "/posts?select=ts:created_at::text",
        None,
        &[("prefer", "return=representation, timezone=Asia/Kolkata")],
        Some(json!({"title": "tz"})),
    )
    .await;
    assert!(r.json()[0]["ts"].as_str().is_some_and(|t| t.ends_with("+05:30")), "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn explain_is_off_by_default() {
    let s = server().await;
    let r = send(&s, "GET", "/users", None, &[("accept", "application/vnd.pgrst.plan+json; for=\"application/json\"")], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")), "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn explain_when_enabled() {
    let s = server_configured("", |c| c.rest.plan_enabled = true).await;
    let json_plan = [("accept", "application/vnd.pgrst.plan+json; for=\"application/json\"; options=verbose")];
    let r = send(&s, "GET", "/users?select=id,posts(title)&id=eq.1", None, &json_plan, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/vnd.pgrst.plan+json")), "{:?}", r.headers);
    let plan = r.json();
    assert!(plan[0]["Plan"]["Node Type"].is_string(), "{plan}");
    assert!(r.text.contains("\"Output\""), "verbose adds output columns");
    let text_plan = [("accept", "application/vnd.pgrst.plan+text; for=\"application/json\"")];
    let r = send(&s, "GET", "/users?id=eq.1", None, &text_plan, None).await;
    assert!(r.text.contains("Index Scan") || r.text.contains("Seq Scan"), "{}", r.text);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/vnd.pgrst.plan+text")));
    // A write is explained, not run, unless analyze.
    let r = send(&s, "DELETE", "/posts?id=eq.1", None, &text_plan, None).await;
    assert!(r.text.contains("Delete on"), "{}", r.text);
    assert_eq!(get(&s, "/posts?id=eq.1&select=id").await.json(), json!([{"id": 1}]));
    let analyze = [("accept", "application/vnd.pgrst.plan+json; options=analyze"), ("prefer", "tx=rollback")];
    let r = send(&s, "DELETE", "/posts?id=eq.2", None, &analyze, None).await;
    assert!(r.json()[0]["Execution Time"].is_number(), "{}", r.text);
    assert_eq!(get(&s, "/posts?id=eq.2&select=id").await.json(), json!([{"id": 2}]), "rolled back");
    let r = send(&s, "POST", "/rpc/add", None, &json_plan, Some(json!({"a": 1, "b": 2}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()[0]["Plan"].is_object(), "{}", r.text);
    // Errors are still PostgREST's.
    let r = send(&s, "GET", "/nope", None, &json_plan, None).await;
    assert_eq!(r.json()["code"], "PGRST205");
    s.shutdown().await;
}

#[tokio::test]
async fn filters_on_embedded_resources_in_logic_trees() {
    let s = server().await;
    let ids = |r: &super::Res| -> Vec<i64> {
        r.json().as_array().unwrap_or_else(|| panic!("{}", r.text)).iter().map(|p| p["id"].as_i64().expect("id")).collect()
    };
    // A to-one embed's column beside the root's, in one `or`.
    let r = get(&s, "/posts?select=id,author:users(name)&or=(title.eq.Again,author.name.eq.bob)&order=id").await;
    assert_eq!(ids(&r), vec![2, 3]);
    // A to-many embed: some row matches; the embed itself is not filtered.
    let r = get(&s, "/users?select=id,posts(title)&or=(posts.title.eq.Hello,age.gt.40)&order=id").await;
    assert_eq!(ids(&r), vec![1, 4]);
    assert_eq!(r.json()[0]["posts"].as_array().map(Vec::len), Some(2), "{}", r.text);
    let r = get(&s, "/users?select=id,posts(title)&or=(posts.title.not.eq.Hello)&order=id").await;
    assert_eq!(ids(&r), vec![1, 2]);
    let r = get(&s, "/users?select=id,posts(title)&not.or=(posts.title.eq.Hello,id.eq.4)&order=id").await;
    assert_eq!(ids(&r), vec![2, 3]);
    // Null filtering on embedded resources, alone and in `or`, with the embed's own filters.
    let r = get(&s, "/users?select=id,posts(id)&posts=not.is.null&order=id").await;
    assert_eq!(ids(&r), vec![1, 2]);
    let r = get(&s, "/users?select=id,posts(id)&posts=is.null&order=id").await;
    assert_eq!(ids(&r), vec![3, 4]);
    let r = get(&s, "/users?select=id,posts(id)&posts.published=eq.false&posts=not.is.null").await;
    assert_eq!(ids(&r), vec![1]);
    let r = get(&s, "/posts?select=id,post_tags(tag_id)&or=(post_tags.is.null,id.eq.1)&order=id").await;
    assert_eq!(ids(&r), vec![1, 2]);
    let r = send(&s, "GET", "/users?select=id,posts(id)&posts=not.is.null", None, &[("prefer", "count=planned")], None).await;
    assert!(matches!(r.status, 200 | 206), "a planned count over an embed filter: {}", r.text);
    assert_eq!(ids(&r), vec![1, 2]);
    // Errors: not embedded, unknown column, an RPC result.
    let r = get(&s, "/users?select=id&or=(posts.title.eq.Hello)").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST108")), "{}", r.text);
    let r = get(&s, "/users?select=id,posts(id)&or=(posts.nope.eq.1)").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("42703")), "{}", r.text);
    let r = get(&s, "/users?select=id&posts=not.is.null").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("42703")), "{}", r.text);
    let r = get(&s, "/rpc/older_than?min_age=1&or=(posts.title.eq.x)").await;
    assert_eq!(r.status, 400, "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn geojson_with_postgis_and_406_without() {
    let s = server().await;
    let geo = [("accept", "application/geo+json")];
    let r = send(&s, "GET", "/posts?select=id", None, &geo, None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")), "no PostGIS yet: {}", r.text);
    let c = s.db.client().await;
    c.batch_execute(
        "create extension postgis;
         create table places (id int primary key, name text, geom geometry(Point, 4326));
         insert into places values (1, 'a', 'SRID=4326;POINT(1 2)'), (2, 'b', null);
         grant select on places to anon;",
    )
    .await
    .expect("PostGIS (tests/run installs postgresql-<version>-postgis-3)");
    // The schema cache reloads after the DDL.
    let mut r = send(&s, "GET", "/places?select=id,name,geom&order=id", None, &geo, None).await;
    for _ in 0..100 {
        if r.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        r = send(&s, "GET", "/places?select=id,name,geom&order=id", None, &geo, None).await;
    }
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type").as_deref(), Some("application/geo+json; charset=utf-8"));
    assert_eq!(
        r.json(),
        json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"id": 1, "name": "a"}},
            // A NULL geometry as PostGIS 3.3's ST_AsGeoJSON writes it (PostgREST passes it on).
            {"type": "Feature", "geometry": {"type": null}, "properties": {"id": 2, "name": "b"}},
        ]})
    );
    // Filters apply; an empty result is an empty collection.
    let r = send(&s, "GET", "/places?id=eq.42", None, &geo, None).await;
    assert_eq!(r.json(), json!({"type": "FeatureCollection", "features": []}), "{}", r.text);
    // Writes return GeoJSON with return=representation.
    let r = service(
        &s,
        "POST",
        "/places",
        &[("accept", "application/geo+json"), ("prefer", "return=representation")],
        Some(json!({"id": 3, "name": "c", "geom": "SRID=4326;POINT(5 6)"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["features"][0]["geometry"]["coordinates"], json!([5, 6]), "{}", r.text);
    s.shutdown().await;
}

/// `rest.pre_request` (PostgREST's `db-pre-request`) runs in every request's
/// transaction, as the caller, before the statement: it can refuse reads,
/// writes and calls (nothing is written then), and set response headers.
#[tokio::test]
async fn pre_request_function() {
    let s = server_configured(
        r#"create function public.check_request() returns void language plpgsql as $$ begin
             if current_setting('request.headers', true)::json->>'x-blocked' = 'yes' then
               raise sqlstate 'PGRST' using message = '{"code": "blocked", "message": "Blocked"}',
                 detail = '{"status": 403, "headers": {}}';
             end if;
             perform set_config('response.headers', json_build_array(json_build_object('X-Role', current_user))::text, true);
           end $$;"#,
        |c| c.rest.pre_request = "public.check_request".into(),
    )
    .await;
    let r = get(&s, "/users?select=id&id=eq.1").await;
    assert_eq!((r.status, r.header("x-role").as_deref()), (200, Some("anon")), "{}", r.text);
    let blocked = [("x-blocked", "yes")];
    let r = send(&s, "GET", "/users?select=id", None, &blocked, None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (403, Some("blocked")), "{}", r.text);
    let r = send(&s, "POST", "/users", None, &blocked, Some(json!({"name": "mallory"}))).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(get(&s, "/users?select=id&name=eq.mallory").await.json(), json!([]), "nothing written");
    let r = send(&s, "POST", "/rpc/add", None, &blocked, Some(json!({"a": 1, "b": 2}))).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = service(&s, "GET", "/users?select=id&id=eq.1", &[], None).await;
    assert_eq!(r.header("x-role").as_deref(), Some("service_role"), "the caller's role runs it");
    s.shutdown().await;
}

/// Media type handler aggregates (PostgREST 12): an aggregate returning a
/// domain named as a media type answers a read of the relation whose rows
/// it takes (whole rows only), or of any relation when it takes
/// `anyelement`; the rows a function returns count as its relation's.
#[tokio::test]
async fn media_type_handler_aggregates() {
    let s = server_with(
        r#"create domain "text/tab-separated-values" as text;
           create domain "application/vnd.count" as text;
           create domain "image/x-names" as bytea;
           create table public.lines (id int primary key, name text not null);
           create table public.others (id int primary key);
           insert into public.lines values (1, 'one'), (2, 'two');
           insert into public.others values (1);
           grant select on public.lines, public.others to anon;
           create function public.tsv_add(state "text/tab-separated-values", next public.lines) returns "text/tab-separated-values"
             language sql as $$ select (coalesce(state, E'id\tname\n') || next.id || E'\t' || next.name || E'\n')::"text/tab-separated-values" $$;
           create aggregate public.tsv_agg(public.lines) (sfunc = public.tsv_add, stype = "text/tab-separated-values");
           create function public.names_add(state "image/x-names", next public.lines) returns "image/x-names"
             language sql as $$ select (coalesce(state, ''::bytea) || convert_to(next.name, 'UTF8'))::"image/x-names" $$;
           create aggregate public.names_agg(public.lines) (sfunc = public.names_add, stype = "image/x-names");
           create function public.count_add(state "application/vnd.count", next anyelement) returns "application/vnd.count"
             language sql as $$ select (coalesce(state::int, 0) + 1)::text::"application/vnd.count" $$;
           create aggregate public.count_agg(anyelement) (sfunc = public.count_add, stype = "application/vnd.count");
           create function public.all_lines() returns setof public.lines language sql stable as $$ select * from public.lines $$;
           create function public.line_ids() returns table (id int, tag text) language sql stable as $$ select id, name from public.lines $$;"#,
    )
    .await;
    let get = |path: &'static str, accept: &'static str| {
        let s = &s;
        async move { send(s, "GET", path, None, &[("accept", accept)], None).await }
    };
    let tsv = "text/tab-separated-values";
    let r = get("/lines?order=id", tsv).await;
    assert_eq!((r.status, r.text.as_str()), (200, "id\tname\n1\tone\n2\ttwo\n"), "{}", r.text);
    assert_eq!(r.header("content-type").as_deref(), Some(tsv));
    let r = get("/lines?id=eq.2&select=*", tsv).await;
    assert_eq!((r.status, r.text.as_str()), (200, "id\tname\n2\ttwo\n"), "{}", r.text);
    // A bytea domain's value is the body's bytes.
    let r = get("/lines?order=id", "image/x-names").await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-type").as_deref()), (200, "onetwo", Some("image/x-names")));
    // The relation's own handler needs its whole rows; one of any rows does not.
    let r = get("/lines?select=id", tsv).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")), "{}", r.text);
    let r = get("/lines?select=id", "application/vnd.count").await;
    assert_eq!((r.status, r.text.as_str()), (200, "2"), "{}", r.text);
    let r = get("/others", "application/vnd.count").await;
    assert_eq!((r.status, r.text.as_str()), (200, "1"), "{}", r.text);
    // Another relation's handler is not this one's; JSON stays the default.
    let r = get("/others", tsv).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")), "{}", r.text);
    let r = send(&s, "GET", "/lines?order=id", None, &[], None).await;
    assert_eq!((r.status, r.json()), (200, json!([{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])));
    // A function's rows, as a table's: its relation's handlers, or those of any rows.
    let r = get("/rpc/all_lines?order=id", tsv).await;
    assert_eq!((r.status, r.text.as_str()), (200, "id\tname\n1\tone\n2\ttwo\n"), "{}", r.text);
    let r = get("/rpc/all_lines?select=id", tsv).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")), "{}", r.text);
    let r = get("/rpc/line_ids", "application/vnd.count").await;
    assert_eq!((r.status, r.text.as_str()), (200, "2"), "{}", r.text);
    let r = get("/rpc/line_ids", tsv).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")), "{}", r.text);
    let r = send(&s, "HEAD", "/lines", None, &[("accept", tsv)], None).await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-type").as_deref()), (200, "", Some(tsv)));
    s.shutdown().await;
}
