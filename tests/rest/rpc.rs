//! RPC: scalar, void, composite, SETOF, TABLE returns; GET and POST;
//! filters on set results; read-only GET; errors; raw and form bodies.

use serde_json::json;

use super::{get, send, send_as, server, server_with, service, Res};
use crate::harness::TestServer;

#[tokio::test]
async fn rpc_shapes() {
    let s = server().await;
    let r = send(&s, "POST", "/rpc/add", None, &[], Some(json!({"a": 2, "b": 3}))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "5"), "{}", r.text);
    let r = get(&s, "/rpc/add?a=1&b=2").await;
    assert_eq!(r.text, "3");
    let r = send(&s, "POST", "/rpc/hello", None, &[], None).await;
    assert_eq!(r.json(), json!("hi"));
    let r = get(&s, "/rpc/older_than?min_age=26&select=name").await;
    assert_eq!(r.json(), json!([{"name": "alice"}, {"name": "dave, jr."}]), "{}", r.text);
    let r = get(&s, "/rpc/older_than?min_age=0&select=id&name=like.*a*&order=id.desc&limit=1").await;
    assert_eq!(r.json(), json!([{"id": 4}]), "{}", r.text);
    let r = get(&s, "/rpc/nums?n=3").await;
    assert_eq!(r.json(), json!([1, 2, 3]), "{}", r.text);
    let r = send(&s, "POST", "/rpc/get_user", None, &[], Some(json!({"uid": 2}))).await;
    assert_eq!(r.json()["name"], "bob", "{}", r.text);
    let r = send(&s, "POST", "/rpc/pairs", None, &[("prefer", "count=exact")], Some(json!({"n": 2}))).await;
    assert_eq!(r.json(), json!([{"x": 1, "y": "v1"}, {"x": 2, "y": "v2"}]), "{}", r.text);
    assert_eq!(r.header("content-range").as_deref(), Some("0-1/2"));
    let r = send(&s, "POST", "/rpc/echo", None, &[], Some(json!({"any": [1, {"x": 2}]}))).await;
    assert_eq!(r.json(), json!({"any": [1, {"x": 2}]}), "{}", r.text);
    let r = send(&s, "POST", "/rpc/tag_list", None, &[], Some(json!({"ids": [2, 1]}))).await;
    assert_eq!(r.json(), json!([{"id": 1, "name": "intro"}, {"id": 2, "name": "games"}]), "{}", r.text);
    let r = get(&s, "/rpc/tag_list?ids={1}").await;
    assert_eq!(r.json(), json!([{"id": 1, "name": "intro"}]), "{}", r.text);
    let r = send(&s, "HEAD", "/rpc/nums?n=3", None, &[], None).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    s.shutdown().await;
}

#[tokio::test]
async fn rpc_void_volatility_and_errors() {
    let s = server().await;
    let r = service(&s, "POST", "/rpc/touch", &[], None).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""), "{}", r.text);
    assert!(r.header("x-fluxbase-lsn").is_some());
    let r = service(&s, "GET", "/rpc/touch", &[], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (405, Some("25006")), "{}", r.text);
    let r = send(&s, "POST", "/rpc/fail", None, &[], None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"code": "P0001", "message": "boom", "details": null, "hint": "try less", "request_id": r.json()["request_id"]}));
    let r = send(&s, "POST", "/rpc/nope", None, &[], Some(json!({}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (404, Some("PGRST202")));
    let r = send(&s, "POST", "/rpc/add", None, &[], Some(json!({"a": 1}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (404, Some("PGRST202")), "missing argument");
    let r = send(&s, "POST", "/rpc/add", None, &[], Some(json!({"a": "x", "b": 1}))).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("22P02")));
    let r = send(&s, "POST", "/rpc/add", None, &[], None).await;
    assert_eq!(r.json()["code"], "PGRST202");
    s.shutdown().await;
}

/// POSTs `body` with `content_type` as anon.
async fn post_raw(s: &crate::harness::TestServer, path: &str, content_type: &str, body: Vec<u8>) -> Res {
    send_as(s, "POST", path, None, &[], Some((content_type, body))).await
}

#[tokio::test]
async fn rpc_raw_and_form_bodies() {
    let s = server().await;
    // A raw body goes whole to the one unnamed parameter of its type; the
    // JSON body still goes to the json overload of the same name.
    let r = post_raw(&s, "/rpc/echo", "text/plain", b"{\"not\": json".to_vec()).await;
    assert_eq!((r.status, r.json()), (200, json!({"text": "{\"not\": json"})), "{}", r.text);
    let r = post_raw(&s, "/rpc/echo", "application/json", b"{\"a\": 1}".to_vec()).await;
    assert_eq!((r.status, r.json()), (200, json!({"a": 1})), "{}", r.text);
    let r = post_raw(&s, "/rpc/byte_len", "application/octet-stream", vec![0, 1, 2, 0xff]).await;
    assert_eq!((r.status, r.text.as_str()), (200, "4"), "{}", r.text);
    let r = post_raw(&s, "/rpc/xml_root", "text/xml", b"<order><id>1</id></order>".to_vec()).await;
    assert_eq!((r.status, r.json()), (200, json!("order")), "{}", r.text);
    let r = post_raw(&s, "/rpc/xml_root", "text/xml", b"<unclosed>".to_vec()).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("2200N")), "{}", r.text);
    // No function of one unnamed parameter of that type: PostgREST's PGRST202.
    let r = post_raw(&s, "/rpc/add", "text/plain", b"1".to_vec()).await;
    assert_eq!(r.status, 404);
    let e = r.json();
    assert_eq!((&e["code"], &e["message"], &e["hint"]), (&json!("PGRST202"), &json!("Could not find the function public.add in the schema cache"), &json!(null)));
    assert_eq!(e["details"], "Searched for the function public.add with a single unnamed text parameter, but no matches were found in the schema cache.");
    // A form's fields are named arguments, as a GET's query.
    let r = post_raw(&s, "/rpc/add", "application/x-www-form-urlencoded", b"a=2&b=40".to_vec()).await;
    assert_eq!((r.status, r.text.as_str()), (200, "42"), "{}", r.text);
    // A variadic parameter: a JSON array, or its name repeated in a query or form;
    // any other repeated name keeps its first value, as PostgREST.
    let r = send(&s, "POST", "/rpc/plus_one", None, &[], Some(json!({"v": [1, 2, 3]}))).await;
    assert_eq!((r.status, r.json()), (200, json!([2, 3, 4])), "{}", r.text);
    let r = get(&s, "/rpc/plus_one?v=1&v=2&v=3&v=4").await;
    assert_eq!((r.status, r.json()), (200, json!([2, 3, 4, 5])), "{}", r.text);
    let r = post_raw(&s, "/rpc/plus_one", "application/x-www-form-urlencoded", b"v=7&v=8".to_vec()).await;
    assert_eq!((r.status, r.json()), (200, json!([8, 9])), "{}", r.text);
    let r = get(&s, "/rpc/add?a=1&b=2&a=100").await;
    assert_eq!((r.status, r.text.as_str()), (200, "3"), "{}", r.text);
    // Other media are refused before anything runs.
    let r = post_raw(&s, "/rpc/add", "image/png", vec![1]).await;
    assert_eq!((r.status, &r.json()["code"], &r.json()["message"]), (400, &json!("PGRST102"), &json!("Content-Type not acceptable: image/png")));
    s.shutdown().await;
}

/// The status line of a bodiless POST to `path` as anon, over a plain socket.
async fn status_line(s: &TestServer, path: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let host = s.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\napikey: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        s.keys.anon
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).await.expect("status line");
    line.trim_end().to_owned()
}

/// `response.status` and `response.headers` set by a function or a BEFORE
/// trigger shape the response; `RAISE SQLSTATE 'PGRST'` is the whole error
/// response; what does not parse is PGRST111 / PGRST112 / PGRST121.
#[tokio::test]
async fn response_settings_and_raised_responses() {
    let s = server_with(
        r#"create function public.teapot() returns text language plpgsql as $$ begin
             perform set_config('response.status', '418', true);
             perform set_config('response.headers', '[{"Cache-Control": "no-store"}, {"Set-Cookie": "a=1"}, {"Set-Cookie": "b=2"}]', true);
             return 'short and stout'; end $$;
           create function public.bad_headers() returns int language plpgsql as $$ begin
             perform set_config('response.headers', '{"a": "b"}', true); return 1; end $$;
           create function public.bad_status() returns int language plpgsql as $$ begin
             perform set_config('response.status', 'teapot', true); return 1; end $$;
           create function public.pay() returns void language plpgsql as $$ begin
             raise sqlstate 'PGRST' using
               message = '{"code": "123", "message": "Payment Required", "details": "Quota exceeded", "hint": "Upgrade"}',
               detail = '{"status": 402, "headers": {"X-Powered-By": "Nerd Rage"}}'; end $$;
           create function public.pay_up() returns void language plpgsql as $$ begin
             raise sqlstate 'PGRST' using message = '{"code": "123", "message": "m"}',
               detail = '{"status": 402, "status_text": "Pay Up", "headers": {}}'; end $$;
           create function public.pay_badly() returns void language plpgsql as $$ begin
             raise sqlstate 'PGRST' using message = 'oops'; end $$;
           create table public.audited (id int primary key);
           create function public.audited_header() returns trigger language plpgsql as $$ begin
             perform set_config('response.headers', json_build_array(json_build_object('X-Audited', new.id::text))::text, true);
             return new; end $$;
           create trigger audited_header before insert on public.audited for each row execute function public.audited_header();
           grant all on public.audited to anon;"#,
    )
    .await;
    let r = send(&s, "POST", "/rpc/teapot", None, &[], None).await;
    assert_eq!((r.status, r.json()), (418, json!("short and stout")), "{}", r.text);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let cookies: Vec<&str> = r.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(cookies, vec!["a=1", "b=2"]);
    for (f, code) in [("bad_headers", "PGRST111"), ("bad_status", "PGRST112")] {
        let r = send(&s, "POST", &format!("/rpc/{f}"), None, &[], None).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (500, Some(code)), "{}", r.text);
    }
    let r = send(&s, "POST", "/rpc/pay", None, &[], None).await;
    assert_eq!(r.status, 402, "{}", r.text);
    let body = r.json();
    assert_eq!(
        (&body["code"], &body["message"], &body["details"], &body["hint"]),
        (&json!("123"), &json!("Payment Required"), &json!("Quota exceeded"), &json!("Upgrade"))
    );
    assert_eq!(r.header("x-powered-by").as_deref(), Some("Nerd Rage"));
    // `status_text` is the status line's reason phrase, which HTTP clients
    // rarely show: read the line itself.
    assert_eq!(status_line(&s, "/rest/v1/rpc/pay_up").await, "HTTP/1.1 402 Pay Up");
    assert_eq!(status_line(&s, "/rest/v1/rpc/pay").await, "HTTP/1.1 402 Payment Required");
    let r = send(&s, "POST", "/rpc/pay_badly", None, &[], None).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (500, Some("PGRST121")), "{}", r.text);
    assert_eq!(r.json()["details"], "Invalid JSON value for MESSAGE: 'oops'");
    // A write's trigger: read after the whole write, even with return=minimal.
    let r = send(&s, "POST", "/audited", None, &[("prefer", "return=minimal")], Some(json!([{"id": 7}, {"id": 8}]))).await;
    assert_eq!((r.status, r.header("x-audited").as_deref()), (201, Some("8")), "{}", r.text);
    let r = send(&s, "POST", "/audited", None, &[("prefer", "return=representation")], Some(json!({"id": 9}))).await;
    assert_eq!((r.status, r.header("x-audited").as_deref()), (201, Some("9")), "{}", r.text);
    s.shutdown().await;
}

/// Media type handlers (PostgREST 12): a function returning one value of a
/// domain named as a media type answers with that value as the body, in
/// that type, when `Accept` prefers it; `*/*` as a domain answers any type.
#[tokio::test]
async fn media_type_handler_functions() {
    let s = server_with(
        r#"create domain "text/plain" as text;
           create domain "text/html" as text;
           create domain "image/png" as bytea;
           create domain "*/*" as bytea;
           create function public.welcome() returns "text/plain" language sql as $$ select 'Welcome to Fluxbase' $$;
           create function public.welcome_twice() returns setof "text/plain" language sql as $$ select 'Welcome' union all select 'again' $$;
           create function public.page(title text) returns "text/html" language sql as $$ select '<h1>' || title || '</h1>' $$;
           create function public.pixel() returns "image/png" language sql as $$ select '\x504e470d0a'::bytea $$;
           create function public.nothing() returns "text/plain" language sql as $$ select null::text $$;
           create function public.anything() returns "*/*" language plpgsql as $$ begin
             if current_setting('request.headers', true)::json->>'accept' = 'app/chico' then
               perform set_config('response.headers', '[{"Content-Type": "app/chico"}]', true);
               return 'chico'::bytea;
             end if;
             return 'any'::bytea; end $$;"#,
    )
    .await;
    let get = |path: &'static str, accept: Option<&'static str>| {
        let s = &s;
        async move {
            let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
            send(s, "GET", path, None, &headers, None).await
        }
    };
    let r = get("/rpc/welcome", Some("text/plain")).await;
    assert_eq!((r.status, r.text.as_str()), (200, "Welcome to Fluxbase"));
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain; charset=utf-8"));
    // JSON stays the default, and a type neither the function nor Fluxbase makes is 406.
    let r = get("/rpc/welcome", None).await;
    assert_eq!((r.status, r.json()), (200, json!("Welcome to Fluxbase")), "{}", r.text);
    for (path, accept) in [("/rpc/welcome", "text/xml"), ("/rpc/welcome_twice", "text/plain")] {
        let r = get(path, Some(accept)).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (406, Some("PGRST107")), "{path}: {}", r.text);
        assert_eq!(r.json()["message"], format!("None of these media types are available: {accept}"));
    }
    // A browser's Accept, by preference: text/html before */* at q=0.8.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/png,*/*;q=0.8";
    let r = get("/rpc/page?title=Hi", Some(browser)).await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-type").as_deref()), (200, "<h1>Hi</h1>", Some("text/html")));
    let r = send(&s, "POST", "/rpc/page", None, &[("accept", "text/html")], Some(json!({"title": "Posted"}))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "<h1>Posted</h1>"), "{}", r.text);
    // A bytea domain's value is the body's bytes.
    let r = get("/rpc/pixel", Some("image/png, */*")).await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-type").as_deref()), (200, "PNG\r\n", Some("image/png")));
    let r = get("/rpc/nothing", Some("text/plain")).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = send(&s, "HEAD", "/rpc/welcome", None, &[("accept", "text/plain")], None).await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-type").as_deref()), (200, "", Some("text/plain; charset=utf-8")));
    // `*/*`: any type, sent as octet-stream unless the function names one.
    for accept in [None, Some("app/bingo"), Some("application/json")] {
        let r = get("/rpc/anything", accept).await;
        assert_eq!((r.status, r.text.as_str()), (200, "any"), "{accept:?}");
        assert_eq!(r.header("content-type").as_deref(), Some("application/octet-stream"));
    }
    let r = get("/rpc/anything", Some("app/chico")).await;
    assert_eq!((r.status, r.text.as_str(), r.header("content-type").as_deref()), (200, "chico", Some("app/chico")));
    s.shutdown().await;
}
