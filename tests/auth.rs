//! The auth server under non-default configurations (the supabase-js suite
//! in `tests/js/auth.test.mjs` covers the defaults): confirmation mails,
//! refresh-token reuse detection, rate limits, the password pool under a
//! burst, imported bcrypt users, reauthentication, secure e-mail change.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{TestDatabase, TestServer};

struct Api<'a> {
    s: &'a TestServer,
    http: reqwest::Client,
}

impl<'a> Api<'a> {
    fn new(s: &'a TestServer) -> Api<'a> {
        Api { s, http: s.http() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/auth/v1{path}", self.s.url))
            .header("apikey", &self.s.keys.anon)
            .header("x-supabase-api-version", "2024-01-01");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, None, Some(body)).await
    }

    async fn mail(&self, to: &str) -> Value {
        let res = self
            .http
            .get(format!("{}/auth/v1/admin/mail?email={to}", self.s.url))
            .header("apikey", &self.s.keys.service_role)
            .bearer_auth(&self.s.keys.service_role)
            .send()
            .await
            .expect("mail");
        let mails: Value = res.json().await.expect("json");
        mails[0].clone()
    }
}

fn addr(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn confirmation_required_signup_and_no_enumeration() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.auth.mailer_autoconfirm = false).await;
    let api = Api::new(&s);
    let email = addr("conf");
    let (st, user) = api.post("/signup", json!({"email": email, "password": "secret-pass-1"})).await;
    assert_eq!(st, 200, "{user}");
    assert!(user.get("access_token").is_none(), "no session before confirmation: {user}");
    assert_eq!(user["email"], email.as_str());
    assert!(user.get("email_confirmed_at").is_none());
    assert!(user.get("confirmation_sent_at").is_some());

    let (st, e) = api.post("/token?grant_type=password", json!({"email": email, "password": "secret-pass-1"})).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("email_not_confirmed")), "{e}");

    let mail = api.mail(&email).await;
    assert_eq!(mail["kind"], "signup");
    let link = mail["data"]["action_link"].as_str().expect("link").to_owned();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let res = no_redirect.get(&link).send().await.expect("follow link");
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(location.starts_with("http://localhost:3000#access_token="), "{location}");
    // The link works once.
    let res = no_redirect.get(&link).send().await.expect("follow link");
    let location = res.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(location.contains("error_code=otp_expired"), "{location}");

    let (st, session) = api.post("/token?grant_type=password", json!({"email": email, "password": "secret-pass-1"})).await;
    assert_eq!(st, 200, "{session}");
    assert!(session["user"]["email_confirmed_at"].is_string());

    // Signing up again with a confirmed address looks like a new sign-up.
    let (st, fake) = api.post("/signup", json!({"email": email, "password": "other-pass-2"})).await;
    assert_eq!(st, 200, "{fake}");
    assert_ne!(fake["id"], session["user"]["id"]);
    assert_eq!(fake["identities"], json!([]));
    s.shutdown().await;
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_session() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.auth.refresh_token_reuse_interval = 0).await;
    let api = Api::new(&s);
    let email = addr("reuse");
    let (_, first) = api.post("/signup", json!({"email": email, "password": "secret-pass-1"})).await;
    let a = first["refresh_token"].as_str().expect("rt").to_owned();
    let (st, second) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": a})).await;
    assert_eq!(st, 200, "{second}");
    let b = second["refresh_token"].as_str().expect("rt").to_owned();
    assert_ne!(a, b);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The thief replays the rotated token: the whole session goes.
    let (st, e) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": a})).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("refresh_token_already_used")), "{e}");
    let (st, e) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": b})).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("refresh_token_not_found")), "{e}");
    let token = second["access_token"].as_str().expect("at");
    let (st, e) = api.call(reqwest::Method::GET, "/user", Some(token), None).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("session_not_found")), "{e}");
    s.shutdown().await;
}

/// Grants arriving together are run in batches (src/auth/refresh_batch.rs):
/// each must still get exactly its own outcome.
/// A server that lets anonymous users sign up, many from one address.
async fn anonymous_server() -> TestServer {
    TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.enable_anonymous_sign_ins = true;
        c.auth.rate_limit_anonymous_users = 1000;
    })
    .await
}

/// The refresh tokens of `n` new anonymous sessions.
async fn anonymous_sessions(api: &Api<'_>, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for _ in 0..n {
        let (st, v) = api.post("/signup", json!({})).await;
        assert_eq!(st, 200, "{v}");
        tokens.push(v["refresh_token"].as_str().expect("rt").to_owned());
    }
    tokens
}

#[tokio::test]
async fn concurrent_refreshes_each_get_their_own_outcome() {
    let s = anonymous_server().await;
    let api = Api::new(&s);
    let tokens = anonymous_sessions(&api, 16).await;
    // Every token once, the first one a second time (two tabs racing), and
    // four unknown tokens: all at once.
    let mut presented = tokens.clone();
    presented.push(tokens[0].clone());
    presented.extend((0..4).map(|i| format!("no-such-token-{i}")));
    let grants = presented.iter().map(|t| api.post("/token?grant_type=refresh_token", json!({"refresh_token": t})));
    let answers = futures_util::future::join_all(grants).await;
    let mut issued = std::collections::HashSet::new();
    for (st, v) in &answers[..16] {
        assert_eq!(*st, 200, "{v}");
        issued.insert(v["refresh_token"].as_str().expect("rt").to_owned());
        assert!(v["access_token"].is_string() && v["user"]["is_anonymous"] == json!(true), "{v}");
    }
    assert_eq!(issued.len(), 16, "every session got its own new token");
    assert!(tokens.iter().all(|t| !issued.contains(t)), "every token was rotated");
    // The twin lands within the reuse interval: it gets the session's current token.
    let (st, twin) = &answers[16];
    assert_eq!(*st, 200, "{twin}");
    assert_eq!(twin["refresh_token"], answers[0].1["refresh_token"]);
    for (st, e) in &answers[17..] {
        assert_eq!((*st, e["code"].as_str()), (400, Some("refresh_token_not_found")), "{e}");
    }
    // A batch that fails as a whole (here: its function is gone) commits
    // nothing, and its grants are run again one by one.
    let pg = s.db.client().await;
    pg.batch_execute("drop function fluxbase.auth_refresh_many(text[], text[], boolean, float8, float8, float8)").await.expect("drop");
    let grants = issued.iter().map(|t| api.post("/token?grant_type=refresh_token", json!({"refresh_token": t})));
    for (st, v) in futures_util::future::join_all(grants).await {
        assert_eq!(st, 200, "{v}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_batch_of_mixed_grants_answers_as_if_run_in_order() {
    let s = anonymous_server().await;
    let api = Api::new(&s);
    let fresh = anonymous_sessions(&api, 4).await;
    let (a, b, c0, d) = (fresh[0].clone(), fresh[1].clone(), fresh[2].clone(), fresh[3].clone());
    let (st, v) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": c0})).await;
    assert_eq!(st, 200, "{v}");
    let c1 = v["refresh_token"].as_str().expect("rt").to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // b and d go through the set-based path; a twice, and c0 then c1 (one
    // session), are run one by one, in order.
    let tokens = vec![a.clone(), a, b.clone(), "no-such-token".to_owned(), c0, c1, d.clone()];
    let nexts: Vec<String> = (1..=tokens.len()).map(|i| format!("next-token-{i}")).collect();
    let pg = s.db.client().await;
    let rows = pg
        .query(
            "select ord, outcome, refresh_token, user_json->>'id', jsonb_typeof(amr), aal, user_id::text \
               from fluxbase.auth_refresh_many($1, $2, true, 0, 0, 0) order by ord",
            &[&tokens, &nexts],
        )
        .await
        .expect("batch");
    let got: Vec<(i32, String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let ok = |i: i32, t: &str| (i, "ok".to_owned(), Some(t.to_owned()));
    let none = |i: i32, o: &str| (i, o.to_owned(), None);
    assert_eq!(
        got,
        vec![
            ok(1, "next-token-1"),
            ok(2, "next-token-1"),
            ok(3, "next-token-3"),
            none(4, "not_found"),
            none(5, "reused"),
            none(6, "not_found"),
            ok(7, "next-token-7"),
        ]
    );
    for r in rows.iter().filter(|r| r.get::<_, String>(1) == "ok") {
        assert_eq!(r.get::<_, Option<String>>(3), r.get::<_, Option<String>>(6), "the user's own JSON");
        assert_eq!((r.get::<_, Option<String>>(4).as_deref(), r.get::<_, Option<String>>(5).as_deref()), (Some("array"), Some("aal1")));
    }
    // The set-based grants left what a lone grant leaves: the old token
    // revoked, the new one its child in the same session.
    for (old, new) in [(&b, "next-token-3"), (&d, "next-token-7")] {
        let row = pg
            .query_one(
                "select o.revoked, n.parent = o.token and n.session_id = o.session_id and not n.revoked \
                   from auth.refresh_tokens o, auth.refresh_tokens n where o.token = $1 and n.token = $2",
                &[old, &new],
            )
            .await
            .expect("tokens");
        assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true));
    }
    s.shutdown().await;
}

#[tokio::test]
async fn refresh_ends_sessions_past_their_lifetime_and_can_keep_the_token() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.sessions_timebox = 1;
        c.auth.refresh_token_rotation = false;
    })
    .await;
    let api = Api::new(&s);
    let (_, first) = api.post("/signup", json!({"email": addr("timebox"), "password": "secret-pass-1"})).await;
    let rt = first["refresh_token"].as_str().expect("rt").to_owned();
    // Without rotation the same token comes back, and the session lives on.
    let (st, again) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": rt})).await;
    assert_eq!((st, again["refresh_token"].as_str()), (200, Some(rt.as_str())), "{again}");
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (st, e) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": rt})).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("session_expired")), "{e}");
    // The session is gone: the token is now unknown.
    let (st, e) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": rt})).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("refresh_token_not_found")), "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn access_tokens_verify_for_the_other_services() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (_, session) = api.post("/signup", json!({"email": addr("svc"), "password": "secret-pass-1"})).await;
    let token = session["access_token"].as_str().expect("at");
    let caller = fluxbase::http::caller::Caller::resolve(Some(token), fluxbase::http::apikey::ApiKey::Anon, &s.keys).expect("verifies");
    assert_eq!(caller.role, "authenticated");
    assert_eq!(caller.user_id(), session["user"]["id"].as_str());
    s.shutdown().await;
}

#[tokio::test]
async fn sign_in_rate_limit_gives_429() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.auth.rate_limit_sign_in_sign_ups = 3).await;
    let api = Api::new(&s);
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (st, e) = api.post("/token?grant_type=password", json!({"email": addr("rl"), "password": "guess-123"})).await;
        codes.push((st, e["code"].as_str().unwrap_or("").to_owned()));
    }
    assert_eq!(codes[..3].iter().filter(|(st, _)| *st == 400).count(), 3, "{codes:?}");
    assert_eq!(codes[3], (429, "over_request_rate_limit".to_owned()), "{codes:?}");
    s.shutdown().await;
}

/// Concurrent calls from one address are counted together in one statement
/// per round (src/auth/shared_limits.rs): exactly the limit gets through.
#[tokio::test]
async fn concurrent_calls_from_one_address_are_counted_exactly() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.auth.rate_limit_token_refresh = 5).await;
    let api = Api::new(&s);
    let grants = (0..24).map(|i| api.post("/token?grant_type=refresh_token", json!({"refresh_token": format!("no-such-{i}")})));
    let answers = futures_util::future::join_all(grants).await;
    let counted = |code: &str| answers.iter().filter(|(_, e)| e["code"] == json!(code)).count();
    assert_eq!(counted("refresh_token_not_found"), 5, "{answers:?}");
    assert_eq!(counted("over_request_rate_limit"), 19, "{answers:?}");
    let pg = s.db.client().await;
    let n: i32 = pg
        .query_one("select count from fluxbase.auth_rate_limits where action = 'refresh'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 5);
    s.shutdown().await;
}

/// GoTrue's cleanup: rotated tokens older than 24 hours and sessions ended
/// 72 hours ago are swept after a refresh (src/auth/cleanup.rs); live ones stay.
#[tokio::test]
async fn old_rotated_tokens_and_ended_sessions_are_swept() {
    let s = TestServer::start().await;
    let pg = s.db.client().await;
    pg.batch_execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, created_at, updated_at,
                                 raw_app_meta_data, raw_user_meta_data)
         values ('00000000-0000-0000-0000-000000000000', '11111111-1111-1111-1111-111111111111', 'authenticated', 'authenticated',
                 'sweep@example.com', '', now(), now(), now(), '{\"provider\":\"email\"}', '{}');
         insert into auth.sessions (id, user_id, created_at, updated_at, aal, not_after) values
           ('22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111', now(), now(), 'aal1', null),
           ('33333333-3333-3333-3333-333333333333', '11111111-1111-1111-1111-111111111111', now() - interval '9 days', now(), 'aal1',
            now() - interval '4 days');
         insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id) values
           ('00000000-0000-0000-0000-000000000000', 'old-rotated', '11111111-1111-1111-1111-111111111111', true,
            now() - interval '2 days', now() - interval '25 hours', '22222222-2222-2222-2222-222222222222'),
           ('00000000-0000-0000-0000-000000000000', 'recently-rotated', '11111111-1111-1111-1111-111111111111', true,
            now() - interval '2 hours', now() - interval '1 hour', '22222222-2222-2222-2222-222222222222'),
           ('00000000-0000-0000-0000-000000000000', 'live', '11111111-1111-1111-1111-111111111111', false,
            now(), now(), '22222222-2222-2222-2222-222222222222'),
           ('00000000-0000-0000-0000-000000000000', 'of-ended-session', '11111111-1111-1111-1111-111111111111', false,
            now() - interval '9 days', now() - interval '9 days', '33333333-3333-3333-3333-333333333333');",
    )
    .await
    .expect("fixture");
    let api = Api::new(&s);
    let (st, v) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": "live"})).await;
    assert_eq!(st, 200, "{v}");
    let mut left = Vec::new();
    for _ in 0..50 {
        let rows = pg.query("select token from auth.refresh_tokens order by token", &[]).await.expect("tokens");
        left = rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>();
        if !left.iter().any(|t| t == "old-rotated" || t == "of-ended-session") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!left.contains(&"old-rotated".to_owned()) && !left.contains(&"of-ended-session".to_owned()), "{left:?}");
    assert!(left.contains(&"recently-rotated".to_owned()) && left.contains(&"live".to_owned()), "{left:?}");
    assert_eq!(left.len(), 3, "the new token too: {left:?}");
    let sessions: i64 = pg.query_one("select count(*) from auth.sessions", &[]).await.expect("sessions").get(0);
    assert_eq!(sessions, 1, "the ended session is gone, the live one stays");
    s.shutdown().await;
}

#[tokio::test]
async fn failures_are_limited_per_address_whatever_the_ip_limit() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.rate_limit_sign_in_sign_ups = 10_000;
        c.auth.rate_limit_token_verifications = 10_000;
        c.auth.rate_limit_email_sent = 10_000;
        c.auth.rate_limit_sign_in_failures_per_address = 3;
        c.auth.rate_limit_verify_failures_per_address = 3;
    })
    .await;
    let api = Api::new(&s);
    let (victim, other) = (addr("victim"), addr("other"));
    for e in [&victim, &other] {
        let (st, body) = api.post("/signup", json!({"email": e, "password": "right-pass-1"})).await;
        assert_eq!(st, 200, "{body}");
    }
    // Successes do not count; three failures close the address, even for the right password.
    let (st, _) = api.post("/token?grant_type=password", json!({"email": victim, "password": "right-pass-1"})).await;
    assert_eq!(st, 200);
    for _ in 0..3 {
        let (st, e) = api.post("/token?grant_type=password", json!({"email": victim, "password": "guess-123"})).await;
        assert_eq!((st, e["code"].as_str()), (400, Some("invalid_credentials")));
    }
    let (st, e) = api.post("/token?grant_type=password", json!({"email": victim.to_uppercase(), "password": "right-pass-1"})).await;
    assert_eq!((st, e["code"].as_str()), (429, Some("over_request_rate_limit")), "{e}");
    let (st, _) = api.post("/token?grant_type=password", json!({"email": other, "password": "right-pass-1"})).await;
    assert_eq!(st, 200, "other addresses are not affected");

    // OTP guesses: three wrong codes close the address for verification.
    let (st, _) = api.post("/otp", json!({"email": other})).await;
    assert_eq!(st, 200);
    for guess in ["000000", "000001", "000002"] {
        let (st, e) = api.post("/verify", json!({"email": other, "token": guess, "type": "email"})).await;
        assert_eq!((st, e["code"].as_str()), (403, Some("otp_expired")), "{e}");
    }
    let (st, e) = api.post("/verify", json!({"email": other, "token": "123456", "type": "email"})).await;
    assert_eq!((st, e["code"].as_str()), (429, Some("over_request_rate_limit")), "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn mail_subjects_and_templates_come_from_the_configuration() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("magic_link.html");
    std::fs::write(&path, "<p>Hello {{ .Email }}, sign in at <a href=\"{{ .ConfirmationURL }}\">here</a> or type {{ .Token }}.</p>").expect("write");
    let path = path.to_string_lossy().into_owned();
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.mailer_subjects_magic_link = "Sign in to {{ .SiteURL }}".into();
        c.auth.mailer_templates_magic_link = path.clone();
    })
    .await;
    let api = Api::new(&s);
    let email = addr("tpl");
    let (st, body) = api.post("/signup", json!({"email": email, "password": "right-pass-1"})).await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = api.post("/otp", json!({"email": email})).await;
    assert_eq!(st, 200);
    let mail = api.mail(&email).await;
    assert_eq!(mail["subject"], "Sign in to http://localhost:3000", "{mail}");
    let html = mail["body"].as_str().unwrap_or("");
    assert!(html.starts_with(&format!("<p>Hello {email}, sign in at <a href=\"")), "{html}");
    assert!(html.contains("/auth/v1/verify?token="), "{html}");
    // Other kinds keep GoTrue's defaults, and a missing file is a configuration error.
    let bad = fluxbase::auth::AuthConfig {
        mailer_templates_recovery: dir.path().join("missing.html").to_string_lossy().into_owned(),
        ..fluxbase::auth::AuthConfig::default()
    };
    assert!(bad.validate().is_err());
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limits_are_shared_by_instances_on_one_database() {
    let db = TestDatabase::fresh().await;
    let same = TestDatabase { name: db.name.clone(), url: db.url.clone() };
    let a = TestServer::start_with(db, |c| c.auth.rate_limit_sign_in_sign_ups = 4).await;
    let mut b = TestServer::start_with(same, |c| {
        c.auth.rate_limit_sign_in_sign_ups = 4;
        c.replication.slot = "fluxbase_second_instance".into();
    })
    .await;
    let mut codes = Vec::new();
    for i in 0..6 {
        // Alternate between the two instances.
        let api = Api::new(if i % 2 == 0 { &a } else { &b });
        let (st, e) = api.post("/token?grant_type=password", json!({"email": addr("shared"), "password": "guess-123"})).await;
        codes.push((st, e["code"].as_str().unwrap_or("").to_owned()));
    }
    assert!(codes[..4].iter().all(|(st, _)| *st == 400), "{codes:?}");
    assert!(codes[4..].iter().all(|c| *c == (429, "over_request_rate_limit".to_owned())), "4 calls in all, not 4 per instance: {codes:?}");
    // The counter is in the database.
    let pg = a.db.client().await;
    let n: i32 = pg
        .query_one("select count from fluxbase.auth_rate_limits where action = 'sign_in' and key = '127.0.0.1'", &[])
        .await
        .expect("counter")
        .get(0);
    assert_eq!(n, 4);
    if let Some(srv) = b.server.take() {
        srv.shutdown().await;
    }
    a.shutdown().await;
    drop(b);
}

#[tokio::test]
async fn memory_rate_limits_are_per_process() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.rate_limit_sign_in_sign_ups = 2;
        c.auth.rate_limit_store = "memory".into();
    })
    .await;
    let api = Api::new(&s);
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (st, _) = api.post("/token?grant_type=password", json!({"email": addr("mem"), "password": "guess-123"})).await;
        codes.push(st);
    }
    assert_eq!(codes, [400, 400, 429]);
    let pg = s.db.client().await;
    let n: i64 = pg.query_one("select count(*) from fluxbase.auth_rate_limits", &[]).await.expect("count").get(0);
    assert_eq!(n, 0, "nothing counted in the database");
    s.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_sign_ins_queues_then_gets_429_and_other_requests_stay_fast() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.password_workers = 1;
        c.auth.password_queue = 2;
        c.auth.rate_limit_sign_in_sign_ups = 0;
    })
    .await;
    let t0 = std::time::Instant::now();
    let r = s.http().get(format!("{}/auth/v1/settings", s.url)).header("apikey", &s.keys.anon).send().await.expect("settings");
    assert_eq!(r.status(), 200);
    eprintln!("settings before burst: {:?}", t0.elapsed());
    let mut burst = Vec::new();
    for i in 0..12 {
        let http = s.http();
        let url = format!("{}/auth/v1/token?grant_type=password", s.url);
        let key = s.keys.anon.clone();
        burst.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("apikey", key)
                .json(&json!({"email": format!("burst{i}@example.com"), "password": "guess-123"}))
                .send()
                .await
                .expect("request");
            r.status().as_u16()
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = std::time::Instant::now();
    let r = s.http().get(format!("{}/auth/v1/settings", s.url)).header("apikey", &s.keys.anon).send().await.expect("settings");
    assert_eq!(r.status(), 200);
    let settings_ms = started.elapsed().as_millis();
    eprintln!("settings during burst: {settings_ms} ms");
    let mut statuses = Vec::new();
    for h in burst {
        statuses.push(h.await.expect("task"));
    }
    assert!(statuses.iter().all(|s| *s == 400 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&429), "the queue overflowed: {statuses:?}");
    assert!(statuses.contains(&400), "some were served: {statuses:?}");
    assert!(settings_ms < 1000, "other requests are not starved ({settings_ms} ms)");
    s.shutdown().await;
}

#[tokio::test]
async fn imported_bcrypt_users_sign_in_and_are_upgraded() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let email = addr("bcrypt");
    let hash = bcrypt::hash("imported-pass", 6).expect("bcrypt");
    let db = s.db.client().await;
    // As a Supabase pg_dump would bring it in.
    db.execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
             raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
         values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', $1, $2, now(),
             '{\"provider\":\"email\",\"providers\":[\"email\"]}', '{}', now(), now())",
        &[&email, &hash],
    )
    .await
    .expect("import");
    let (st, e) = api.post("/token?grant_type=password", json!({"email": email, "password": "wrong"})).await;
    assert_eq!(st, 400, "{e}");
    let (st, session) = api.post("/token?grant_type=password", json!({"email": email, "password": "imported-pass"})).await;
    assert_eq!(st, 200, "{session}");
    let row = db.query_one("select encrypted_password from auth.users where email = $1", &[&email]).await.expect("row");
    let stored: String = row.get(0);
    assert!(stored.starts_with("$argon2id$"), "upgraded: {stored}");
    let (st, _) = api.post("/token?grant_type=password", json!({"email": email, "password": "imported-pass"})).await;
    assert_eq!(st, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn password_change_needs_a_nonce_when_configured() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.auth.secure_password_change = true).await;
    let api = Api::new(&s);
    let email = addr("nonce");
    let (_, session) = api.post("/signup", json!({"email": email, "password": "secret-pass-1"})).await;
    let token = session["access_token"].as_str().expect("at");
    let (st, e) = api.call(reqwest::Method::PUT, "/user", Some(token), Some(json!({"password": "new-pass-22"}))).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("reauthentication_needed")), "{e}");
    let (st, _) = api.call(reqwest::Method::GET, "/reauthenticate", Some(token), None).await;
    assert_eq!(st, 200);
    let nonce = api.mail(&email).await["data"]["otp"].as_str().expect("otp").to_owned();
    let (st, e) = api.call(reqwest::Method::PUT, "/user", Some(token), Some(json!({"password": "new-pass-22", "nonce": "000000"}))).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("reauthentication_not_valid")), "{e}");
    let (st, u) = api.call(reqwest::Method::PUT, "/user", Some(token), Some(json!({"password": "new-pass-22", "nonce": nonce}))).await;
    assert_eq!(st, 200, "{u}");
    let (st, _) = api.post("/token?grant_type=password", json!({"email": email, "password": "new-pass-22"})).await;
    assert_eq!(st, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn secure_email_change_needs_both_addresses() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.auth.mailer_autoconfirm = false).await;
    let api = Api::new(&s);
    // An admin-confirmed user, so no sign-up mail is in the way.
    let old = addr("old");
    let new = addr("new");
    let res = api
        .http
        .post(format!("{}/auth/v1/admin/users", s.url))
        .header("apikey", &s.keys.service_role)
        .bearer_auth(&s.keys.service_role)
        .json(&json!({"email": old, "password": "secret-pass-1", "email_confirm": true}))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 200);
    let (_, session) = api.post("/token?grant_type=password", json!({"email": old, "password": "secret-pass-1"})).await;
    let token = session["access_token"].as_str().expect("at");
    let (st, u) = api.call(reqwest::Method::PUT, "/user", Some(token), Some(json!({"email": new}))).await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["new_email"], new.as_str());
    assert_eq!(u["email"], old.as_str());
    let to_new = api.mail(&new).await;
    let to_old = api.mail(&old).await;
    let (st, m) = api.post("/verify", json!({"type": "email_change", "token_hash": to_new["data"]["token_hash"]})).await;
    assert_eq!(st, 200, "{m}");
    assert!(m["msg"].as_str().unwrap_or("").starts_with("Confirmation link accepted"), "{m}");
    let (st, done) = api.post("/verify", json!({"type": "email_change", "token_hash": to_old["data"]["token_hash"]})).await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["user"]["email"], new.as_str());
    let (st, _) = api.post("/token?grant_type=password", json!({"email": new, "password": "secret-pass-1"})).await;
    assert_eq!(st, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn signup_can_be_disabled_and_anonymous_is_off_by_default() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.auth.enable_signup = false).await;
    let api = Api::new(&s);
    let (st, e) = api.post("/signup", json!({"email": addr("off"), "password": "secret-pass-1"})).await;
    assert_eq!((st, e["code"].as_str()), (422, Some("signup_disabled")), "{e}");
    let (st, e) = api.post("/signup", json!({"data": {}})).await;
    assert_eq!((st, e["code"].as_str()), (422, Some("anonymous_provider_disabled")), "{e}");
    s.shutdown().await;
}

async fn asymmetric_round_trip(s: &TestServer, alg: &str) {
    let api = Api::new(s);
    let (st, session) = api.post("/signup", json!({"email": addr(alg), "password": "secret-pass-1"})).await;
    assert_eq!(st, 200, "{session}");
    let token = session["access_token"].as_str().expect("at").to_owned();
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(format!("{:?}", header.alg), alg);
    let (st, jwks) = api.call(reqwest::Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(jwks["keys"][0]["kid"].as_str(), header.kid.as_deref(), "{jwks}");
    // Every service verifies it.
    let caller = fluxbase::http::caller::Caller::resolve(Some(&token), fluxbase::http::apikey::ApiKey::Anon, &s.keys).expect("verifies");
    assert_eq!(caller.role, "authenticated");
    let (st, user) = api.call(reqwest::Method::GET, "/user", Some(&token), None).await;
    assert_eq!(st, 200, "{user}");
    // An HS256 token with the same claims but forged from the public key material fails.
    let claims = s.keys.verify(&token).expect("claims");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &*claims,
        &jsonwebtoken::EncodingKey::from_secret(jwks.to_string().as_bytes()),
    )
    .expect("sign");
    let (st, _) = api.call(reqwest::Method::GET, "/user", Some(&forged), None).await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn es256_access_tokens_and_jwks() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.jwt.algorithm = "ES256".into()).await;
    asymmetric_round_trip(&s, "ES256").await;
    s.shutdown().await;
}

#[tokio::test]
async fn rs256_access_tokens_from_a_pem_file() {
    let dir = tempfile::tempdir().expect("dir");
    let pem = dir.path().join("rsa.pem");
    let st = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&pem)
        .status()
        .expect("openssl");
    assert!(st.success());
    let path = pem.to_string_lossy().into_owned();
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.jwt.algorithm = "RS256".into();
        c.jwt.signing_keys = path;
    })
    .await;
    asymmetric_round_trip(&s, "RS256").await;
    s.shutdown().await;
}

#[tokio::test]
async fn custom_access_token_hook_adds_claims_or_refuses() {
    let db = TestDatabase::fresh().await;
    db.client()
        .await
        .batch_execute(
            "create table public.hook_flags (refuse_refresh boolean not null);
             insert into public.hook_flags values (false);
             create function public.custom_access_token_hook(event jsonb) returns jsonb language plpgsql as $$
             begin
               if event->'claims'->>'email' like 'blocked-%' then
                 return jsonb_build_object('error', jsonb_build_object('http_code', 403, 'message', 'Blocked by hook'));
               end if;
               if event->'claims'->>'email' like 'broken-%' then
                 raise exception 'hook bug';
               end if;
               -- The hook runs in the sign-up's transaction: it sees the new user.
               if not exists (select 1 from auth.users where id = (event->>'user_id')::uuid) then
                 return jsonb_build_object('error', jsonb_build_object('http_code', 400, 'message', 'user not visible'));
               end if;
               if event->>'authentication_method' = 'token_refresh' and (select refuse_refresh from public.hook_flags) then
                 return jsonb_build_object('error', jsonb_build_object('message', 'No refresh today'));
               end if;
               return jsonb_build_object('claims',
                 jsonb_set(event->'claims', '{app_metadata,plan}', '\"pro\"') || jsonb_build_object('via', event->>'authentication_method'));
             end $$;",
        )
        .await
        .expect("hook");
    let s = TestServer::start_with(db, |c| {
        c.auth.hook_custom_access_token = "pg-functions://postgres/public/custom_access_token_hook".into();
        c.auth.enable_anonymous_sign_ins = true;
        // A rotated token presented again is then refused at once.
        c.auth.refresh_token_reuse_interval = 0;
    })
    .await;
    let api = Api::new(&s);
    let (st, session) = api.post("/signup", json!({"email": addr("hook"), "password": "secret-pass-1"})).await;
    assert_eq!(st, 200, "{session}");
    let claims = s.keys.verify(session["access_token"].as_str().expect("at")).expect("claims");
    assert_eq!(claims["app_metadata"]["plan"], "pro");
    assert_eq!(claims["via"], "password");
    let rt = session["refresh_token"].as_str().expect("rt").to_owned();
    let (_, refreshed) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": rt})).await;
    let claims = s.keys.verify(refreshed["access_token"].as_str().expect("at")).expect("claims");
    assert_eq!(claims["via"], "token_refresh");
    let (st, anon) = api.post("/signup", json!({})).await;
    assert_eq!(st, 200, "{anon}");

    let pg = s.db.client().await;
    let users = |email: String| {
        let pg = &pg;
        async move {
            let n: i64 = pg.query_one("select count(*) from auth.users where email = $1", &[&email]).await.expect("count").get(0);
            n
        }
    };
    let sessions = || async {
        let n: i64 = pg.query_one("select count(*) from auth.sessions", &[]).await.expect("count").get(0);
        n
    };
    let before = sessions().await;

    // A refusal: GoTrue's shape (the hook's status and message, code
    // `unknown`, no x-sb-error-code), and nothing of the sign-up is left.
    let blocked = addr("blocked");
    let res = s
        .http()
        .post(format!("{}/auth/v1/signup", s.url))
        .header("apikey", &s.keys.anon)
        .header("x-supabase-api-version", "2024-01-01")
        .json(&json!({"email": blocked, "password": "secret-pass-1"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("x-sb-error-code").is_none());
    let e: Value = res.json().await.expect("json");
    assert_eq!((e["code"].as_str(), e["message"].as_str()), (Some("unknown"), Some("Blocked by hook")), "{e}");
    assert_eq!(users(blocked.clone()).await, 0, "no half-made user");
    // The address is still free: the same sign-up without the block works later.
    let (st, e) = api.post("/signup", json!({"email": blocked, "password": "secret-pass-1"})).await;
    assert_eq!(st, 403, "{e}");

    // A hook that fails to run: 500 `Error running hook URI`, nothing left.
    let broken = addr("broken");
    let (st, e) = api.post("/signup", json!({"email": broken, "password": "secret-pass-1"})).await;
    assert_eq!((st, e["code"].as_str()), (500, Some("unexpected_failure")), "{e}");
    assert_eq!(e["message"].as_str(), Some("Error running hook URI: pg-functions://postgres/public/custom_access_token_hook"));
    assert_eq!(users(broken).await, 0);
    assert_eq!(sessions().await, before, "no half-made session");

    // A refused refresh leaves the token unrotated: it still works afterwards.
    pg.execute("update public.hook_flags set refuse_refresh = true", &[]).await.expect("flag");
    let rt = refreshed["refresh_token"].as_str().expect("rt").to_owned();
    let (st, e) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": rt})).await;
    assert_eq!((st, e["code"].as_str(), e["message"].as_str()), (500, Some("unexpected_failure"), Some("No refresh today")), "{e}");
    pg.execute("update public.hook_flags set refuse_refresh = false", &[]).await.expect("flag");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, again) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": rt})).await;
    assert_eq!(st, 200, "the refused refresh did not rotate the token: {again}");
    assert_ne!(again["refresh_token"].as_str(), Some(rt.as_str()));
    s.shutdown().await;
}

/// The HTML part of a received mail, transfer-decoded.
fn mail_body(data: &str) -> String {
    let (headers, body) = data.split_once("\r\n\r\n").unwrap_or(("", data));
    let lower = headers.to_ascii_lowercase();
    if lower.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    } else if lower.contains("content-transfer-encoding: base64") {
        use base64::Engine;
        let compact: String = body.split_whitespace().collect();
        let raw = base64::engine::general_purpose::STANDARD.decode(compact).expect("base64 body");
        String::from_utf8_lossy(&raw).into_owned()
    } else {
        body.to_owned()
    }
}

#[tokio::test]
async fn confirmation_mail_goes_out_over_smtp_with_a_working_link() {
    let sink = crate::harness::smtp::SmtpSink::start().await;
    let port = sink.port;
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.mailer_autoconfirm = false;
        c.auth.smtp_host = "127.0.0.1".into();
        c.auth.smtp_port = port;
        c.auth.smtp_tls = "none".into();
        c.auth.smtp_sender = "Fluxbase Test <noreply@example.com>".into();
    })
    .await;
    let api = Api::new(&s);
    let email = addr("smtp");
    let (st, user) = api.post("/signup", json!({"email": email, "password": "secret-pass-1"})).await;
    assert_eq!(st, 200, "{user}");
    assert!(user.get("access_token").is_none(), "{user}");

    let mail = sink.wait_for(&email, Duration::from_secs(30)).await;
    assert_eq!(mail.from, "noreply@example.com");
    assert!(mail.data.contains("Subject: Confirm your email address"), "{}", mail.data);
    let body = mail_body(&mail.data);
    assert!(body.contains("<h2>Confirm your email address</h2>"), "{body}");
    let start = body.find("href=\"").expect("a link") + "href=\"".len();
    let end = start + body[start..].find('"').expect("end of the link");
    let link = body[start..end].replace("&amp;", "&");
    assert!(link.starts_with(&format!("{}/auth/v1/verify?token=", s.url)), "{link}");

    // Sent, not captured.
    let pg = s.db.client().await;
    let captured: i64 =
        pg.query_one("select count(*) from fluxbase.auth_mail where recipient = $1", &[&email]).await.expect("count").get(0);
    assert_eq!(captured, 0);

    // The link confirms the address and signs in.
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let res = no_redirect.get(&link).send().await.expect("follow link");
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(location.starts_with("http://localhost:3000#access_token="), "{location}");
    let (st, session) = api.post("/token?grant_type=password", json!({"email": email, "password": "secret-pass-1"})).await;
    assert_eq!(st, 200, "{session}");
    s.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_relay_fails_the_request_and_sends_nothing() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.auth.mailer_autoconfirm = false;
        c.auth.smtp_host = "127.0.0.1".into();
        c.auth.smtp_port = port;
        c.auth.smtp_tls = "none".into();
    })
    .await;
    let api = Api::new(&s);
    let (st, e) = api.post("/recover", json!({"email": addr("nobody")})).await;
    // Unknown address: nothing to send, GoTrue answers {} either way.
    assert_eq!(st, 200, "{e}");
    let email = addr("relay-down");
    let (st, e) = api.post("/signup", json!({"email": email, "password": "secret-pass-1"})).await;
    assert_eq!((st, e["message"].as_str()), (500, Some("Error sending confirmation email")), "{e}");
    let pg = s.db.client().await;
    let users: i64 = pg.query_one("select count(*) from auth.users where email = $1", &[&email]).await.expect("count").get(0);
    assert_eq!(users, 0, "no user is left without its confirmation mail");
    s.shutdown().await;
}

#[tokio::test]
async fn finding_a_user_by_address_reads_a_few_pages_whatever_the_number_of_users() {
    let s = TestServer::start().await;
    let db = s.db.client().await;
    db.batch_execute(
        "insert into auth.users (instance_id, id, aud, role, email, created_at, updated_at)
         select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
                'many-' || n || '@example.com', now(), now()
           from generate_series(1, 20000) n;
         analyze auth.users;",
    )
    .await
    .expect("users");
    // The predicate of `find_by_email` (src/auth/users.rs).
    let plan = db
        .query(
            "explain (analyze, buffers, costs off, format json)
             select id from auth.users where lower(email) = lower('Many-777@example.com') and not is_sso_user and deleted_at is null limit 1",
            &[],
        )
        .await
        .expect("explain");
    let plan: Value = plan[0].get(0);
    let text = plan.to_string();
    assert!(text.contains("users_lower_email_idx"), "{text}");
    let top = &plan[0]["Plan"];
    let pages = top["Shared Hit Blocks"].as_i64().unwrap_or(0) + top["Shared Read Blocks"].as_i64().unwrap_or(0);
    assert!(pages <= 8, "{pages} pages read: {text}");
    assert_eq!(top["Actual Rows"], 1, "{text}");
    // The code check's predicate (src/auth/verify.rs): by email or email_change.
    let plan = db
        .query(
            "explain (costs off, format json)
             select id from auth.users where (lower(email) = 'many-9@example.com' or lower(email_change) = 'many-9@example.com')
                and deleted_at is null and not is_sso_user for update",
            &[],
        )
        .await
        .expect("explain");
    let plan: Value = plan[0].get(0);
    let text = plan.to_string();
    assert!(text.contains("users_lower_email_idx") && text.contains("users_lower_email_change_idx"), "{text}");
    s.shutdown().await;
}

/// Migration 0210: no index of `auth.refresh_tokens` covers what a rotation
/// changes (`revoked`, `updated_at`), pages keep room, so revoking the
/// parent token is a HOT update; the cleanup and the reuse window still
/// find their rows through an index (0211: the grant's own queries always do).
#[tokio::test]
async fn rotating_a_refresh_token_writes_no_index_entry_for_the_revoked_one() {
    let s = TestServer::start().await;
    let db = s.db.client().await;
    let covering: Vec<String> = db
        .query(
            "select i.indexrelid::regclass::text
               from pg_index i
              where i.indrelid = 'auth.refresh_tokens'::regclass
                and (exists (select 1 from pg_attribute a
                              where a.attrelid = i.indrelid and a.attname in ('revoked', 'updated_at')
                                and a.attnum = any (i.indkey::int2[]))
                     or coalesce(pg_get_expr(i.indexprs, i.indrelid), '') ~ '(revoked|updated_at)'
                     or coalesce(pg_get_expr(i.indpred, i.indrelid), '') ~ '(revoked|updated_at)')",
            &[],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(covering.is_empty(), "indexes covering what a rotation changes: {covering:?}");
    let options: Option<Vec<String>> =
        db.query_one("select reloptions from pg_class where oid = 'auth.refresh_tokens'::regclass", &[]).await.expect("options").get(0);
    assert!(options.unwrap_or_default().iter().any(|o| o.starts_with("fillfactor=")), "pages keep room for the revoked version");
    // Migration 0211: the grant's functions plan index scans whatever the statistics say.
    let settings: Vec<Option<Vec<String>>> = db
        .query("select proconfig from pg_proc where proname in ('auth_refresh', 'auth_refresh_many') and pronamespace = 'fluxbase'::regnamespace", &[])
        .await
        .expect("functions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(settings.len(), 2);
    for s in &settings {
        assert!(s.as_deref().unwrap_or_default().iter().any(|o| o == "enable_seqscan=off"), "{settings:?}");
    }

    let api = Api::new(&s);
    let (st, v) = api.post("/signup", json!({"email": addr("hot"), "password": "hot-pass-123"})).await;
    assert_eq!(st, 200, "{v}");
    let mut token = v["refresh_token"].as_str().expect("token").to_owned();
    // A backend reports its statistics at the end of a transaction at most
    // once a second (or after 10 s idle): keep rotating until they show.
    let mut hot: i64 = 0;
    for _ in 0..120 {
        let (st, v) = api.post("/token?grant_type=refresh_token", json!({"refresh_token": token})).await;
        assert_eq!(st, 200, "{v}");
        token = v["refresh_token"].as_str().expect("token").to_owned();
        hot = db
            .query_one("select n_tup_hot_upd from pg_stat_user_tables where relid = 'auth.refresh_tokens'::regclass", &[])
            .await
            .expect("stats")
            .get(0);
        if hot > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(hot > 0, "no revocation was a HOT update");
    // Plans on a table of some size: a day of rotations of one session.
    db.batch_execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
         select t.instance_id, 'many-' || n, t.user_id, true, now() - n * interval '4 seconds', now() - n * interval '4 seconds', t.session_id
           from (select * from auth.refresh_tokens limit 1) t, generate_series(1, 20000) n;
         analyze auth.refresh_tokens;",
    )
    .await
    .expect("tokens");
    for (sql, index) in [
        (
            "explain (costs off) select c.token from auth.refresh_tokens c
              where c.session_id = '22222222-2222-2222-2222-222222222222' and not c.revoked order by c.id desc limit 1",
            "refresh_tokens_session_id_id_idx",
        ),
        (
            "explain (costs off) select id from auth.refresh_tokens
              where created_at < now() - interval '24 hours' and revoked and updated_at < now() - interval '24 hours'
              order by created_at limit 1000",
            "refresh_tokens_created_at_idx",
        ),
    ] {
        let plan: Vec<String> = db.query(sql, &[]).await.expect("explain").iter().map(|r| r.get(0)).collect();
        assert!(plan.join("\n").contains(index), "{sql}: {plan:?}");
    }
    s.shutdown().await;
}
