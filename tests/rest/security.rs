//! RLS and SQL injection: anon, two users and the service key each see
//! exactly their rows; hostile input in every position is inert.

use serde_json::json;

use super::{get, send, server, service, user_token};

const U1: &str = "11111111-1111-1111-1111-111111111111";
const U2: &str = "22222222-2222-2222-2222-222222222222";

#[tokio::test]
async fn rls_each_caller_sees_their_rows() {
    let s = server().await;
    let (t1, t2) = (user_token(U1), user_token(U2));
    let rep = [("prefer", "return=representation")];
    let r = send(&s, "POST", "/notes?select=owner,body", Some(&t1), &rep, Some(json!({"body": "one"}))).await;
    assert_eq!((r.status, r.json()), (201, json!([{"owner": U1, "body": "one"}])), "{}", r.text);
    send(&s, "POST", "/notes", Some(&t2), &[], Some(json!([{"body": "two"}, {"body": "three"}]))).await;
    let r = send(&s, "POST", "/notes", Some(&t1), &[], Some(json!({"body": "spoof", "owner": U2}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (403, Some("42501")), "with check");
    assert_eq!(send(&s, "GET", "/notes?select=body", Some(&t1), &[], None).await.json(), json!([{"body": "one"}]));
    assert_eq!(send(&s, "GET", "/notes", Some(&t2), &[], None).await.json().as_array().map(Vec::len), Some(2));
    assert_eq!(get(&s, "/notes").await.json(), json!([]), "anon has no policy: no rows");
    assert_eq!(service(&s, "GET", "/notes", &[], None).await.json().as_array().map(Vec::len), Some(3));
    // user 1 cannot touch user 2's rows
    let r = send(&s, "PATCH", "/notes?body=eq.two", Some(&t1), &rep, Some(json!({"body": "hacked"}))).await;
    assert_eq!(r.json(), json!([]));
    let r = send(&s, "DELETE", "/notes", Some(&t1), &rep, None).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
    assert_eq!(send(&s, "GET", "/notes", Some(&t2), &[], None).await.json().as_array().map(Vec::len), Some(2));
    // insert-only table: minimal insert works, representation is refused by the select policy
    let r = send(&s, "POST", "/inbox", None, &[], Some(json!({"msg": "hi"}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(&s, "POST", "/inbox", None, &rep, Some(json!({"msg": "hi"}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (401, Some("42501")), "anon gets 401");
    // request.* settings are visible to SQL
    s.db.client()
        .await
        .batch_execute(
            "create function public.whoami() returns json language sql stable as $$ select json_build_object(
               'role', current_user, 'sub', auth.uid(), 'method', current_setting('request.method', true),
               'path', current_setting('request.path', true),
               'ua', current_setting('request.headers', true)::json->>'x-test',
               'cookie', current_setting('request.cookies', true)::json->>'c') $$;
             notify pgrst, 'reload schema';",
        )
        .await
        .expect("whoami");
    let mut r = get(&s, "/rpc/whoami").await;
    for _ in 0..50 {
        if r.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        r = get(&s, "/rpc/whoami").await;
    }
    let r = send(&s, "GET", "/rpc/whoami", Some(&t1), &[("x-test", "yes"), ("cookie", "c=1; d=2")], None).await;
    assert_eq!(r.json(), json!({"role": "authenticated", "sub": U1, "method": "GET", "path": "/rpc/whoami", "ua": "yes", "cookie": "1"}), "{}", r.text);
    // A read is an implicit transaction ended by the pipeline's Sync: the
    // next request on the (last-in, first-out) same session sees none of it.
    let r = get(&s, "/rpc/whoami").await;
    assert_eq!(r.json(), json!({"role": "anon", "sub": null, "method": "GET", "path": "/rpc/whoami", "ua": null, "cookie": null}), "{}", r.text);
    s.shutdown().await;
}

#[tokio::test]
async fn sql_injection_is_inert_in_every_position() {
    let s = server().await;
    let evil = "x\"; drop table public.users; --";
    let enc = |v: &str| serde_urlencoded::to_string([("", v)]).unwrap_or_default().trim_start_matches('=').to_owned();
    let e = enc(evil);
    let quote = enc("1'; drop table public.users; --");
    let paths = [
        format!("/users?select={e}"),
        format!("/users?select=id,{e}:name"),
        format!("/users?select=id::{e}"),
        format!("/users?{e}=eq.1"),
        format!("/users?name=eq.{quote}"),
        format!("/users?name=in.({quote},{e})"),
        format!("/users?order={e}"),
        format!("/users?select=data->{e}"),
        format!("/users?data->>{e}=eq.1"),
        format!("/users?or=(name.eq.{quote},id.eq.{quote})"),
        format!("/users?select=*,{e}(*)"),
        format!("/users?bio=fts({e}).x"),
        format!("/{e}"),
        format!("/rpc/{e}"),
        format!("/rpc/add?a={quote}&b=1"),
        format!("/users?limit={quote}"),
    ];
    for p in &paths {
        let r = get(&s, p).await;
        assert!(r.status >= 400 && r.status < 500 || r.status == 200, "{p}: {} {}", r.status, r.text);
    }
    // The value is data: a row named like an attack comes back verbatim.
    service(&s, "POST", "/tags", &[], Some(json!({"id": 66, "name": evil}))).await;
    let r = get(&s, &format!("/tags?name=eq.{e}&select=name")).await;
    assert_eq!(r.json(), json!([{"name": evil}]));
    let r = service(&s, "POST", "/rpc/echo", &[], Some(json!({"k": "'); drop table public.users; --"}))).await;
    assert_eq!(r.status, 200);
    let r = service(&s, "PATCH", "/tags?id=eq.66", &[], Some(json!({"name": "'); drop table public.users; --"}))).await;
    assert_eq!(r.status, 204);
    let r = service(&s, "POST", &format!("/tags?columns={e}"), &[], Some(json!({"id": 1}))).await;
    assert_eq!(r.status, 400);
    let r = service(&s, "POST", &format!("/tags?columns={}", enc("id,x;drop--")), &[], Some(json!({"id": 1}))).await;
    assert_eq!(r.json()["code"], "PGRST204");
    let r = service(&s, "POST", &format!("/tags?on_conflict={e}"), &[("prefer", "resolution=merge-duplicates")], Some(json!({"id": 1}))).await;
    assert_eq!(r.status, 400);
    assert_eq!(get(&s, "/users?select=id").await.json().as_array().map(Vec::len), Some(4), "users intact");
    s.shutdown().await;
}
