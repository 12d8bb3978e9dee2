//! Differential test: compiled RLS predicates against PostgreSQL's own
//! verdicts, on thousands of random rows and claims, for every supported
//! policy shape.

use std::time::Duration;

use serde_json::{json, Map, Value};

use fluxbase::http::caller::Caller;
use fluxbase::rls::{PolicyEvaluator, Verdict};

use crate::harness::TestDatabase;

const SHAPES: &[(&str, &str)] = &[
    ("uid_eq", "for select using (user_id = auth.uid())"),
    ("select_uid", "for select to authenticated using ((select auth.uid()) = user_id)"),
    ("role", "for select using (auth.role() = 'authenticated')"),
    ("always", "for select using (true)"),
    ("const_eq", "for select using (status = 'published')"),
    ("gt", "for select using (priority > 5)"),
    ("in_list", "for select using (status in ('a', 'b'))"),
    ("jwt_claim", "for select using ((auth.jwt() ->> 'tenant') = tenant_id)"),
    ("jwt_nested", "for select using ((auth.jwt() -> 'app_metadata' ->> 'role') = 'admin')"),
    ("or", "for select using (user_id = auth.uid() or status = 'published')"),
    ("and_not", "for select using (not archived and priority >= 3)"),
    ("is_null", "for select using (note is null)"),
    ("anon_only", "for select to anon using (true)"),
    ("all_cmd", "for all using (user_id = auth.uid())"),
];

/// A small deterministic generator (no external RNG needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() as usize) % xs.len()]
    }
}

const USERS: &[&str] = &["6f1c1e36-8d4b-4c53-9a1a-5d2f8a0e7c11", "0b9a7c2e-1111-4222-8333-944455556666", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"];

fn random_row(r: &mut Lcg, id: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("user_id".into(), if r.next() % 5 == 0 { Value::Null } else { json!(r.pick(USERS)) });
    m.insert("status".into(), r.pick(&[json!("a"), json!("b"), json!("published"), json!("draft"), Value::Null]).clone());
    m.insert("priority".into(), if r.next() % 6 == 0 { Value::Null } else { json!((r.next() % 13) as i64 - 2) });
    m.insert("tenant_id".into(), r.pick(&[json!("t1"), json!("t2"), Value::Null]).clone());
    m.insert("archived".into(), r.pick(&[json!(true), json!(false), Value::Null]).clone());
    m.insert("note".into(), r.pick(&[json!("x"), Value::Null]).clone());
    m
}

fn random_caller(r: &mut Lcg) -> Caller {
    let role = *r.pick(&["authenticated", "authenticated", "anon"]);
    let mut claims = json!({"role": role});
    if role == "authenticated" {
        if r.next() % 4 != 0 {
            claims["sub"] = json!(r.pick(USERS));
        }
        if r.next() % 3 != 0 {
            claims["tenant"] = json!(r.pick(&["t1", "t2"]));
        }
        if r.next() % 2 == 0 {
            claims["app_metadata"] = json!({"role": r.pick(&["admin", "user"])});
        }
    }
    Caller { role: role.to_owned(), claims: claims.into(), token: None }
}

#[tokio::test]
async fn compiled_verdicts_match_postgres() {
    let db = TestDatabase::fresh().await;
    let c = db.client().await;
    for (name, policy) in SHAPES {
        c.batch_execute(&format!(
            "create table public.rd_{name} (id bigint primary key, user_id uuid, status text, priority int, tenant_id text, archived boolean, note text);
             alter table public.rd_{name} enable row level security;
             create policy p on public.rd_{name} {policy};"
        ))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // A restrictive policy on top of a permissive one.
    c.batch_execute(
        "create policy r on public.rd_uid_eq as restrictive for select using (priority is not null);",
    )
    .await
    .expect("restrictive");
    let pool = fluxbase::database::pool::build(&db.url, 8, Duration::from_secs(10), "rls-diff").expect("pool");
    let eval = PolicyEvaluator::new(pool);
    let mut r = Lcg(0x5eed);
    let mut compared = 0;
    for (name, _) in SHAPES {
        for i in 0..300 {
            let caller = random_caller(&mut r);
            let row = random_row(&mut r, i);
            let table = format!("rd_{name}");
            assert!(eval.is_compiled(&caller, "public", &table).await.expect("check"), "{name} compiles for {}", caller.role);
            let fast = eval.verdict(&caller, "public", &table, &row).await.expect("compiled verdict");
            let slow = eval.verdict_in_postgres(&caller, "public", &table, &row).await.expect("postgres verdict");
            assert_eq!(fast, slow, "shape {name}, caller {:?}, row {}", caller.claims, Value::Object(row.clone()));
            compared += 1;
        }
    }
    assert_eq!(compared, SHAPES.len() * 300);
    // A shape that does not compile falls back to PostgreSQL and still decides correctly.
    c.batch_execute(
        "create table public.rd_exists (id bigint primary key, user_id uuid);
         alter table public.rd_exists enable row level security;
         create policy p on public.rd_exists for select using (exists (select 1 from public.rd_always a where a.user_id = rd_exists.user_id));",
    )
    .await
    .expect("exists");
    let caller = Caller { role: "authenticated".into(), claims: json!({"role": "authenticated", "sub": USERS[0]}).into(), token: None };
    assert!(!eval.is_compiled(&caller, "public", "rd_exists").await.expect("check"));
    let row = json!({"id": 1, "user_id": USERS[0]}).as_object().cloned().unwrap_or_default();
    assert_eq!(eval.verdict(&caller, "public", "rd_exists", &row).await.expect("verdict"), Verdict::Hidden, "no matching row in rd_always");
    c.batch_execute(&format!("insert into public.rd_always (id, user_id) values (1, '{}')", USERS[0])).await.expect("insert");
    assert_eq!(eval.verdict(&caller, "public", "rd_exists", &row).await.expect("verdict"), Verdict::Visible);
}
