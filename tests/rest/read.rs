//! Reads: select, filters, order, ranges, counts, single, CSV, embedding,
//! and the errors for unknown names.

use serde_json::json;

use super::{get, send, server, server_with, service};

fn ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array().expect("array").iter().map(|r| r["id"].as_i64().expect("id")).collect()
}

#[tokio::test]
async fn select_columns_aliases_casts_json_paths() {
    let s = server().await;
    let r = get(&s, "/users?select=id,name&order=id").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()[0], json!({"id": 1, "name": "alice"}));
    assert_eq!(r.header("content-range").as_deref(), Some("0-3/*"));
    let r = get(&s, "/users?select=who:name,age_text:age::text,city:data->>city,nested:data->nested->>k,data->n&id=eq.1").await;
    assert_eq!(r.json(), json!([{"who": "alice", "age_text": "30", "city": "Paris", "nested": "v", "n": 1}]), "{}", r.text);
    let r = get(&s, "/users?id=eq.1").await;
    assert_eq!(r.json()[0]["tags"], json!(["a", "b"]));
    assert_eq!(r.json()[0].as_object().map(|o| o.len()), Some(7));
    s.shutdown().await;
}

#[tokio::test]
async fn every_filter_operator() {
    let s = server().await;
    let cases: &[(&str, &[i64])] = &[
        ("age=eq.30", &[1]),
        ("age=neq.30", &[2, 4]),
        ("age=gt.30", &[4]),
        ("age=gte.30", &[1, 4]),
        ("age=lt.30", &[2]),
        ("age=lte.30", &[1, 2]),
        ("name=like.*a*", &[1, 3, 4]),
        ("name=ilike.A*", &[1]),
        ("name=match.^b", &[2]),
        ("name=imatch.^B", &[2]),
        ("age=is.null", &[3]),
        ("age=not.is.null", &[1, 2, 4]),
        ("email=isdistinct.bob@example.com", &[1, 3, 4]),
        ("id=in.(1,3)", &[1, 3]),
        ("name=in.(\"dave, jr.\",bob)", &[2, 4]),
        ("id=not.in.(1,3)", &[2, 4]),
        ("id=in.()", &[]),
        ("tags=cs.{a}", &[1, 4]),
        ("tags=cd.{a,b}", &[1, 3, 4]),
        ("tags=ov.{c,z}", &[2]),
        ("data=cs.{\"city\":\"Paris\"}", &[1, 4]),
        ("data->>city=eq.Berlin", &[2]),
        ("data->n=gt.1", &[2, 4]),
        ("bio=fts.cats", &[1, 3]),
        ("bio=plfts(english).cats dogs", &[1]),
        ("bio=phfts.cats are great", &[3]),
        ("bio=wfts.cats -dogs", &[3]),
        ("name=like(any).{a*,b*}", &[1, 2]),
        ("name=like(all).{*a*,*i*}", &[1]),
        ("age=eq(any).{25,41}", &[2, 4]),
        ("or=(age.lt.26,name.eq.carol)", &[2, 3]),
        ("or=(age.gt.40,and(name.like.a*,age.eq.30))", &[1, 4]),
        ("not.or=(age.lt.26,age.is.null)", &[1, 4]),
        ("and=(age.gte.25,or(name.eq.bob,name.eq.\"dave, jr.\"))", &[2, 4]),
        ("or=(name.in.(alice,bob),id.eq.4)", &[1, 2, 4]),
        ("age=gt.20&age=lt.35", &[1, 2]),
        ("email=eq.null", &[]),
    ];
    for (q, want) in cases {
        let r = get(&s, &format!("/users?select=id&order=id&{q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        assert_eq!(ids(&r.json()), *want, "{q}");
    }
    // Ranges (sl, sr, nxl, nxr, adj) on a range column.
    s.db.client()
        .await
        .batch_execute("create table public.slots (id int primary key, r int4range); grant select on public.slots to anon; insert into public.slots values (1, '[1,5)'), (2, '[5,10)'), (3, '[20,30)'); notify pgrst, 'reload schema';")
        .await
        .expect("slots");
    wait_for(&s, "/slots").await;
    for (q, want) in [("r=sl.[10,20)", vec![1, 2]), ("r=sr.[10,20)", vec![3]), ("r=nxl.[5,6)", vec![1]), ("r=nxr.[5,6)", vec![2, 3]), ("r=adj.[10,20)", vec![2, 3])] {
        let r = get(&s, &format!("/slots?select=id&order=id&{q}")).await;
        assert_eq!(ids(&r.json()), want, "{q}: {}", r.text);
    }
    s.shutdown().await;
}

/// Polls until `path` stops answering 404 (the schema cache reloaded).
pub async fn wait_for(s: &crate::harness::TestServer, path: &str) {
    for _ in 0..100 {
        if get(s, path).await.status != 404 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never appeared in the schema cache");
}

#[tokio::test]
async fn order_limit_offset_range_and_counts() {
    let s = server().await;
    let r = get(&s, "/users?select=id&order=age.desc.nullslast,id").await;
    assert_eq!(ids(&r.json()), vec![4, 1, 2, 3]);
    let r = get(&s, "/users?select=id&order=age.asc.nullsfirst").await;
    assert_eq!(ids(&r.json()), vec![3, 2, 1, 4]);
    let r = get(&s, "/users?select=id&order=data->>city.desc,id").await;
    assert_eq!(ids(&r.json())[0], 3, "nulls first on desc");
    let r = get(&s, "/users?select=id&order=id&limit=2&offset=1").await;
    assert_eq!(ids(&r.json()), vec![2, 3]);
    assert_eq!(r.header("content-range").as_deref(), Some("1-2/*"));
    let r = send(&s, "GET", "/users?select=id&order=id&limit=2", None, &[("prefer", "count=exact")], None).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").as_deref(), Some("0-1/4"));
    let r = send(&s, "GET", "/users?select=id", None, &[("prefer", "count=exact")], None).await;
    assert_eq!((r.status, r.header("content-range").as_deref()), (200, Some("0-3/4")));
    let r = send(&s, "GET", "/users?select=id&id=gt.100", None, &[("prefer", "count=exact")], None).await;
    assert_eq!((r.status, r.header("content-range").as_deref(), r.text.as_str()), (200, Some("*/0"), "[]"));
    let r = send(&s, "GET", "/users?select=id&order=id", None, &[("range", "1-2"), ("range-unit", "items")], None).await;
    assert_eq!(ids(&r.json()), vec![2, 3]);
    for c in ["planned", "estimated"] {
        let r = send(&s, "GET", "/users?select=id", None, &[("prefer", &format!("count={c}"))], None).await;
        let total: i64 = r.header("content-range").and_then(|h| h.split('/').nth(1).and_then(|t| t.parse().ok())).expect("numeric total");
        assert!(total >= 1, "{c}: {total}");
    }
    let r = send(&s, "GET", "/users?select=id&order=id", None, &[("range", "0-9223372036854775807")], None).await;
    assert_eq!(ids(&r.json()), vec![1, 2, 3, 4], "huge ranges do not overflow");
    let r = get(&s, "/users?select=id&offset=9223372036854775807&limit=9223372036854775807").await;
    assert_eq!((r.status, r.text.as_str()), (200, "[]"));
    let r = send(&s, "GET", "/users?offset=10", None, &[("prefer", "count=exact")], None).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.json()["code"], "PGRST103");
    let r = send(&s, "HEAD", "/users", None, &[("prefer", "count=exact")], None).await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-range").as_deref()), (200, "", Some("0-3/4")));
    s.shutdown().await;
}

#[tokio::test]
async fn single_object_csv_and_media_types() {
    let s = server().await;
    let obj = [("accept", "application/vnd.pgrst.object+json")];
    let r = send(&s, "GET", "/users?select=id,name&id=eq.2", None, &obj, None).await;
    assert_eq!((r.status, r.json()), (200, json!({"id": 2, "name": "bob"})));
    let r = send(&s, "GET", "/users?select=id", None, &obj, None).await;
    assert_eq!(r.status, 406);
    assert_eq!(r.json()["code"], "PGRST116");
    assert_eq!(r.json()["details"], "The result contains 4 rows");
    let r = send(&s, "GET", "/users?id=eq.99", None, &obj, None).await;
    assert_eq!((r.status, r.json()["details"].as_str()), (406, Some("The result contains 0 rows")));
    let r = send(&s, "GET", "/users?select=id,name&id=lte.2&order=id", None, &[("accept", "text/csv")], None).await;
    assert_eq!(r.text, "id,name\n1,alice\n2,bob");
    assert!(r.header("content-type").unwrap_or_default().starts_with("text/csv"));
    let r = send(&s, "GET", "/users", None, &[("accept", "image/png")], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")));
    s.shutdown().await;
}

#[tokio::test]
async fn embedding_every_direction() {
    let s = server().await;
    // many-to-one
    let r = get(&s, "/posts?select=id,title,author:users(name)&order=id").await;
    assert_eq!(r.json()[0], json!({"id": 1, "title": "Hello", "author": {"name": "alice"}}), "{}", r.text);
    // one-to-many with order and limit on the embed
    let r = get(&s, "/users?select=name,posts(title)&posts.order=id.desc&posts.limit=1&id=eq.1").await;
    assert_eq!(r.json(), json!([{"name": "alice", "posts": [{"title": "Again"}]}]), "{}", r.text);
    // filter on the embed without !inner keeps the parent
    let r = get(&s, "/users?select=id,posts(id)&posts.published=eq.true&order=id").await;
    assert_eq!(r.json()[0]["posts"], json!([{"id": 1}]));
    assert_eq!(r.json().as_array().map(Vec::len), Some(4));
    // !inner drops parents without a match
    let r = get(&s, "/users?select=id,posts!inner(id)&posts.published=eq.true&order=id").await;
    assert_eq!(ids(&r.json()), vec![1, 2], "{}", r.text);
    // many-to-many through post_tags
    let r = get(&s, "/posts?select=id,tags(name)&id=eq.3").await;
    let mut names: Vec<String> = r.json()[0]["tags"].as_array().expect("tags").iter().map(|t| t["name"].as_str().unwrap_or("").to_owned()).collect();
    names.sort();
    assert_eq!(names, vec!["games", "intro"], "{}", r.text);
    // hint by fk name and by column, spread, nested
    let r = get(&s, "/posts?select=id,users!posts_author_id_fkey(name)&id=eq.1").await;
    assert_eq!(r.json()[0]["users"], json!({"name": "alice"}), "{}", r.text);
    let r = get(&s, "/posts?select=id,author_id(name)&id=eq.1").await;
    assert_eq!(r.json()[0]["author_id"], json!({"name": "alice"}), "{}", r.text);
    let r = get(&s, "/posts?select=title,...users(author:name,age)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"title": "Chess", "author": "bob", "age": 25}]), "{}", r.text);
    let r = get(&s, "/users?select=name,posts(title,post_tags(tags(name)))&id=eq.2").await;
    assert_eq!(r.json()[0]["posts"][0]["post_tags"].as_array().map(Vec::len), Some(2), "{}", r.text);
    // errors
    let r = get(&s, "/users?select=*,nothing(*)").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST200")));
    let r = get(&s, "/users?select=*,posts!nofk(*)").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST200")));
    // A to-many spread is an array per column (PostgREST 13; 12 refused it with PGRST119).
    let r = get(&s, "/users?select=...posts(title)&id=eq.2").await;
    assert_eq!(r.json(), json!([{"title": ["Chess"]}]), "{}", r.text);
    let r = get(&s, "/users?posts.id=eq.1").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST108")));
    s.shutdown().await;
}

#[tokio::test]
async fn embedding_through_views() {
    let s = server().await;
    s.db.client()
        .await
        .batch_execute(
            "create view public.published_posts as select id, author_id, title from public.posts where published;
             create view public.people as select id, name from public.users;
             grant select on public.published_posts, public.people to anon;",
        )
        .await
        .expect("views");
    wait_for(&s, "/people").await;
    let r = get(&s, "/published_posts?select=title,users(name)&order=id").await;
    assert_eq!(r.json(), json!([{"title": "Hello", "users": {"name": "alice"}}, {"title": "Chess", "users": {"name": "bob"}}]), "{}", r.text);
    let r = get(&s, "/users?select=name,published_posts(title)&id=eq.1").await;
    assert_eq!(r.json(), json!([{"name": "alice", "published_posts": [{"title": "Hello"}]}]), "{}", r.text);
    s.db.client()
        .await
        .batch_execute(
            "create function public.recent_posts(public.users) returns setof public.posts language sql stable
               as $$ select * from public.posts where author_id = $1.id order by id desc $$;
             create function public.first_post(public.users) returns public.posts language sql stable
               as $$ select * from public.posts where author_id = $1.id order by id limit 1 $$;",
        )
        .await
        .expect("computed");
    let mut r = get(&s, "/users?select=name,recent_posts(title),first_post(id)&id=eq.1").await;
    for _ in 0..100 {
        if r.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        r = get(&s, "/users?select=name,recent_posts(title),first_post(id)&id=eq.1").await;
    }
    assert_eq!(
        r.json(),
        json!([{"name": "alice", "recent_posts": [{"title": "Again"}, {"title": "Hello"}], "first_post": {"id": 1}}]),
        "computed relationships: {}",
        r.text
    );
    let r = get(&s, "/published_posts?select=title,people(name)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"title": "Chess", "people": {"name": "bob"}}]), "view to view: {}", r.text);
    s.shutdown().await;
}

/// Keys reach views through renamed columns, views over views and joins,
/// traced by the view's stored query as PostgREST traces them; a view
/// whose base table's primary key it exposes has that key.
#[tokio::test]
async fn view_keys_follow_renamed_columns() {
    let s = server_with(
        "create schema private;
         create table private.authors (id int primary key, name text not null);
         create table private.books (id int primary key, author int references private.authors(id), title text);
         insert into private.authors values (1, 'Austen'), (2, 'Borges');
         insert into private.books values (10, 1, 'Emma'), (11, 2, 'Ficciones'), (12, 1, 'Persuasion');
         create view public.writers as select id as writer_id, name from private.authors;
         create view public.works as select id as work_id, author as by_writer, title from private.books;
         create view public.top_writers as select writer_id as wid, name from public.writers where writer_id < 10;
         create view public.post_rows as
           select p.id, p.title, u.id as user_id, u.name from public.posts p join public.users u on u.id = p.author_id;
         create view public.people2 as select id as person, name from public.users;
         grant select on public.writers, public.works, public.top_writers, public.post_rows to anon;
         grant all on public.people2 to anon, authenticated, service_role;",
    )
    .await;
    let r = get(&s, "/works?select=title,writers(name)&order=work_id").await;
    assert_eq!(
        r.json(),
        json!([{"title": "Emma", "writers": {"name": "Austen"}}, {"title": "Ficciones", "writers": {"name": "Borges"}},
               {"title": "Persuasion", "writers": {"name": "Austen"}}]),
        "view to view through renamed key columns, tables in an unexposed schema: {}",
        r.text
    );
    let r = get(&s, "/top_writers?select=wid,works(title)&wid=eq.1&works.order=title").await;
    assert_eq!(r.json(), json!([{"wid": 1, "works": [{"title": "Emma"}, {"title": "Persuasion"}]}]), "view over a view: {}", r.text);
    // post_rows exposes posts.id as id and users.id as user_id: post_tags
    // references it through id only; the name `id` is not users.id.
    let r = get(&s, "/post_rows?select=title,post_tags(tag_id)&id=eq.3&post_tags.order=tag_id").await;
    assert_eq!(r.json(), json!([{"title": "Chess", "post_tags": [{"tag_id": 1}, {"tag_id": 2}]}]), "join view: {}", r.text);
    // posts.author_id references users.id, which the view calls user_id.
    let r = get(&s, "/posts?select=title,post_rows(name)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"title": "Chess", "post_rows": {"name": "bob"}}]), "posts to the join view by user_id: {}", r.text);
    let r = get(&s, "/users?select=name,post_rows(title)&id=eq.2").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST200")), "the view does not expose posts.author_id: {}", r.text);
    // The view's primary key is users.id under its name: Location names it.
    let r = service(&s, "POST", "/people2", &[("prefer", "return=headers-only")], Some(json!({"name": "eve"}))).await;
    assert_eq!((r.status, r.header("location").as_deref()), (201, Some("/people2?person=eq.5")), "{}", r.text);
    // PUT names the whole key; a limited PATCH picks its rows by it.
    let r = service(&s, "PUT", "/people2?person=eq.5", &[("prefer", "return=representation")], Some(json!({"person": 5, "name": "eve2"}))).await;
    assert_eq!((r.status, r.json()), (200, json!([{"person": 5, "name": "eve2"}])), "PUT on the view: {}", r.text);
    let r = service(&s, "PATCH", "/people2?order=person.desc&limit=1", &[("prefer", "return=representation")], Some(json!({"name": "eve3"}))).await;
    assert_eq!((r.status, r.json()), (200, json!([{"person": 5, "name": "eve3"}])), "limited PATCH on the view: {}", r.text);
    // An upsert on a view (no xmax) still tells inserts (201) from updates (200).
    let merge = [("prefer", "resolution=merge-duplicates,return=representation")];
    let r = service(&s, "POST", "/people2?columns=person,name", &merge, Some(json!([{"person": 5, "name": "e"}, {"person": 6, "name": "f"}]))).await;
    assert_eq!((r.status, r.json().as_array().map(Vec::len)), (201, Some(2)), "{}", r.text);
    let r = service(&s, "POST", "/people2?columns=person,name", &merge, Some(json!([{"person": 5, "name": "e"}, {"person": 6, "name": "g"}]))).await;
    assert_eq!((r.status, r.json().as_array().map(Vec::len)), (200, Some(2)), "{}", r.text);
    s.shutdown().await;
}

/// Computed fields: a function of the row, named as a column, in select
/// (also renamed and embedded), filters and order; never part of `*`.
#[tokio::test]
async fn computed_fields() {
    let s = server_with(
        "create function public.full_label(public.users) returns text language sql stable
           as $$ select $1.name || ' <' || coalesce($1.email, '-') || '>' $$;
         create function public.name_length(u public.users) returns int language sql immutable
           as $$ select length(u.name) $$;",
    )
    .await;
    let r = get(&s, "/users?select=id,label:full_label&id=eq.1").await;
    assert_eq!(r.json(), json!([{"id": 1, "label": "alice <alice@example.com>"}]), "{}", r.text);
    let r = get(&s, "/users?select=id&name_length=eq.3").await;
    assert_eq!(r.json(), json!([{"id": 2}]), "filter: {}", r.text);
    let r = get(&s, "/users?select=id&order=name_length.desc,id").await;
    assert_eq!(ids(&r.json()), vec![4, 1, 3, 2], "order: {}", r.text);
    let r = get(&s, "/users?id=eq.1").await;
    assert!(r.json()[0].get("full_label").is_none(), "not part of *: {}", r.text);
    let r = get(&s, "/posts?select=title,users(full_label)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"title": "Chess", "users": {"full_label": "bob <bob@example.com>"}}]), "embedded: {}", r.text);
    let r = get(&s, "/users?select=nope").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("42703")), "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn aggregates() {
    let s = server().await;
    let r = get(&s, "/users?select=count()").await;
    assert_eq!(r.json(), json!([{"count": 4}]), "{}", r.text);
    let r = get(&s, "/users?select=age.sum(),age.max(),age.min(),avg_age:age.avg()::int").await;
    assert_eq!(r.json(), json!([{"sum": 96, "max": 41, "min": 25, "avg_age": 32}]), "{}", r.text);
    let r = get(&s, "/posts?select=published,count()&order=published").await;
    assert_eq!(r.json(), json!([{"published": false, "count": 1}, {"published": true, "count": 2}]), "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_names_and_bad_input_get_postgrest_errors() {
    let s = server().await;
    let r = get(&s, "/user").await;
    assert_eq!(r.status, 404);
    let b = r.json();
    assert_eq!(b["code"], "PGRST205");
    assert_eq!(b["message"], "Could not find the table 'public.user' in the schema cache");
    assert_eq!(b["hint"], "Perhaps you meant the table 'public.users'");
    let r = get(&s, "/users?select=nope").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("42703")));
    let r = get(&s, "/users?nope=eq.1").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("42703")));
    let r = get(&s, "/users?order=nope").await;
    assert_eq!(r.json()["code"], "42703");
    for bad in [
        "/users?id=zz.1",
        "/users?id=eq",
        "/users?or=(id.eq.1",
        "/users?or=id.eq.1",
        "/users?select=id,",
        "/users?select=a(",
        "/users?limit=-1",
        "/users?order=id.sideways",
        "/users?id=is.maybe",
    ] {
        let r = get(&s, bad).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("PGRST100")), "{bad}: {}", r.text);
    }
    let huge = format!("/users?id=in.({})", vec!["1"; 6000].join(","));
    let r = get(&s, &huge).await;
    assert_eq!(r.json()["code"], "PGRST100");
    let deep = format!("/users?or=({}id.eq.1{})", "or(".repeat(30), ")".repeat(30));
    assert_eq!(get(&s, &deep).await.json()["code"], "PGRST100");
    // a value of the wrong type is PostgreSQL's error, passed through
    let r = get(&s, "/users?id=eq.abc").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("22P02")));
    let r = get(&s, "/users?select=id::nosuchtype").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("42704")));
    let r = send(&s, "GET", "/users", None, &[("accept-profile", "secret")], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST106")));
    s.shutdown().await;
}

#[tokio::test]
async fn schema_cache_reloads_on_ddl_and_notify() {
    let s = server().await;
    assert_eq!(get(&s, "/later").await.status, 404);
    let db = s.db.client().await;
    db.batch_execute("create table public.later (id int primary key); grant select on public.later to anon; insert into public.later values (7)")
        .await
        .expect("ddl");
    wait_for(&s, "/later").await;
    assert_eq!(get(&s, "/later").await.json(), json!([{"id": 7}]));
    db.batch_execute("alter table public.later add column extra text").await.expect("alter");
    for _ in 0..100 {
        if get(&s, "/later?select=extra").await.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(get(&s, "/later?select=extra").await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn openapi_describes_tables_and_functions() {
    let s = server().await;
    let r = send(&s, "GET", "/", None, &[("accept", "application/openapi+json")], None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["swagger"], "2.0");
    assert!(doc["paths"]["/users"]["get"].is_object());
    assert!(doc["paths"]["/rpc/add"]["post"].is_object());
    assert_eq!(doc["definitions"]["users"]["properties"]["age"]["format"], "integer");
    s.shutdown().await;
}

#[tokio::test]
async fn config_schemas_max_rows_and_statement_timeout() {
    let db = crate::harness::TestDatabase::fresh().await;
    db.client()
        .await
        .batch_execute(
            "create schema api; create table api.things (id int primary key);
             insert into api.things select generate_series(1, 10);
             create function api.slow() returns int language sql as $$ select pg_sleep(2); select 1 $$;
             grant usage on schema api to anon; grant select on api.things to anon; grant execute on function api.slow() to anon;",
        )
        .await
        .expect("fixture");
    let s = crate::harness::TestServer::start_with(db, |c| {
        c.rest.schemas = vec!["public".into(), "api".into()];
        c.rest.max_rows = 3;
        c.rest.statement_timeout_ms = 300;
    })
    .await;
    let api = [("accept-profile", "api"), ("prefer", "count=exact")];
    let r = send(&s, "GET", "/things?select=id&order=id", None, &api, None).await;
    assert_eq!((r.status, r.json()), (206, json!([{"id": 1}, {"id": 2}, {"id": 3}])), "{}", r.text);
    assert_eq!(r.header("content-range").as_deref(), Some("0-2/10"));
    assert_eq!(get(&s, "/things").await.json()["code"], "PGRST205", "public is the default schema");
    let r = send(&s, "POST", "/rpc/slow", None, &[("content-profile", "api")], None).await;
    assert_eq!(r.json()["code"], "57014", "statement timeout: {}", r.text);
    s.shutdown().await;
}
