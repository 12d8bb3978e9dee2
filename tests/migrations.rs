//! Migrations: idempotent, Supabase-compatible, refusing a newer database.

use crate::harness::TestDatabase;

#[tokio::test]
async fn rerunning_applies_nothing() {
    let db = TestDatabase::fresh().await;
    let mut c = db.client().await;
    let report = fluxbase::migrate::run(&mut c).await.expect("re-run");
    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(report.already, fluxbase::migrate::embedded().expect("embedded").len());
    let report = fluxbase::migrate::run(&mut c).await.expect("third run");
    assert!(report.applied.is_empty());
}

#[tokio::test]
async fn concurrent_starters_apply_each_migration_once() {
    let cluster = crate::harness::cluster::cluster();
    let name = format!("m_{}", uuid::Uuid::new_v4().simple());
    let admin = fluxbase::database::connect_one(&cluster.url("postgres"), "test").await.expect("admin");
    admin.batch_execute(&format!("create database {name}")).await.expect("empty database");
    let url = cluster.url(&name);
    let run = |url: String| async move {
        let mut c = fluxbase::database::connect_one(&url, "test").await.expect("connect");
        fluxbase::migrate::run(&mut c).await.expect("migrate")
    };
    let (a, b) = tokio::join!(run(url.clone()), run(url.clone()));
    let total = fluxbase::migrate::embedded().expect("embedded").len();
    assert_eq!(a.applied.len() + b.applied.len(), total, "{a:?} {b:?}");
    let c = fluxbase::database::connect_one(&url, "test").await.expect("connect");
    let n: i64 = c.query_one("select count(*) from fluxbase.schema_migrations", &[]).await.expect("count").get(0);
    assert_eq!(n as usize, total);
    drop(c);
    admin.batch_execute(&format!("drop database {name} with (force)")).await.expect("drop");
}

#[tokio::test]
async fn newer_database_is_refused() {
    let db = TestDatabase::fresh().await;
    let mut c = db.client().await;
    c.execute("insert into fluxbase.schema_migrations (version, name, checksum) values (99999, '99999_future', 'x')", &[])
        .await
        .expect("insert");
    let e = fluxbase::migrate::run(&mut c).await.expect_err("refused");
    let m = e.to_string();
    assert!(m.contains("99999") && m.contains("upgrade"), "{m}");
}

#[tokio::test]
async fn supabase_roles_helpers_and_tables_exist() {
    let db = TestDatabase::fresh().await;
    let c = db.client().await;
    let roles: i64 = c
        .query_one("select count(*) from pg_roles where rolname in ('anon','authenticated','service_role','authenticator')", &[])
        .await
        .expect("roles")
        .get(0);
    assert_eq!(roles, 4);
    let bypass: bool = c.query_one("select rolbypassrls from pg_roles where rolname = 'service_role'", &[]).await.expect("q").get(0);
    assert!(bypass);
    c.batch_execute(
        "create table public.notes (id bigint generated always as identity primary key, user_id uuid not null, body text);
         alter table public.notes enable row level security;
         create policy own on public.notes for select using (auth.uid() = user_id);
         insert into public.notes (user_id, body) values ('6f1c1e36-8d4b-4c53-9a1a-5d2f8a0e7c11', 'mine'), (gen_random_uuid(), 'theirs');",
    )
    .await
    .expect("schema");
    let tx = c.simple_query(
        "begin;
         select set_config('request.jwt.claims', '{\"sub\":\"6f1c1e36-8d4b-4c53-9a1a-5d2f8a0e7c11\",\"role\":\"authenticated\",\"email\":\"a@b.c\"}', true);
         set local role authenticated;",
    );
    tx.await.expect("as user");
    let row = c
        .query_one("select auth.uid()::text, auth.role(), auth.email(), auth.jwt()->>'sub', (select count(*) from public.notes)", &[])
        .await
        .expect("helpers");
    assert_eq!(row.get::<_, String>(0), "6f1c1e36-8d4b-4c53-9a1a-5d2f8a0e7c11");
    assert_eq!(row.get::<_, String>(1), "authenticated");
    assert_eq!(row.get::<_, String>(2), "a@b.c");
    assert_eq!(row.get::<_, i64>(4), 1, "RLS shows the user only their row");
    c.batch_execute("rollback").await.expect("rollback");
    for table in ["auth.users", "auth.identities", "auth.sessions", "auth.refresh_tokens", "auth.mfa_factors", "storage.buckets", "storage.objects", "realtime.messages"] {
        c.query_one(&format!("select count(*) from {table}"), &[]).await.unwrap_or_else(|e| panic!("{table}: {e}"));
    }
    let folders: Vec<String> = c.query_one("select storage.foldername('a/b/c.png')", &[]).await.expect("foldername").get(0);
    assert_eq!(folders, vec!["a", "b"]);
}
