//! The embedded cluster through the real binary: first start, `status`,
//! `kill -9` and restart with data and keys kept, stale pid recovery,
//! SIGTERM leaving no `postgres` behind (and no access line unwritten),
//! and external-database checks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::harness::server::{postgres_processes_under, run_binary, TestProcess};

fn status(data: &Path) -> Value {
    let out = run_binary(&["status", "--json", "--data-dir", data.to_str().expect("utf-8")], &[]);
    assert!(out.status.success(), "status failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status prints JSON")
}

fn cluster_base(data: &Path) -> PathBuf {
    let record: Value = serde_json::from_slice(&std::fs::read(data.join("cluster.json")).expect("cluster.json")).expect("json");
    PathBuf::from(record["base"].as_str().expect("base"))
}

/// A process's scheduling policy (3 is `SCHED_BATCH`).
fn scheduling_policy(pid: i32) -> i32 {
    fluxbase::database::backend_policy::policy(pid).expect("scheduling policy")
}

async fn wait_no_postgres(base: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !postgres_processes_under(base).is_empty() {
        assert!(Instant::now() < deadline, "postgres still running under {}: {:?}", base.display(), postgres_processes_under(base));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn embedded_cluster_lifecycle() {
    // A parent only root can enter, like root's home directory: the cluster
    // must be placed where the postgres user can reach it.
    let parent = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let data = parent.path().join("fb");

    let mut p = TestProcess::spawn(&data, &[], &[]);
    p.wait_healthy(Duration::from_secs(90)).await;
    let s1 = status(&data);
    for key in ["api_url", "db_url", "anon_key", "service_role_key", "jwt_secret", "version"] {
        assert!(s1[key].is_string(), "status lacks {key}: {s1}");
    }
    assert_eq!(s1["running"], true);
    let base = cluster_base(&data);
    if nix::unistd::geteuid().is_root() {
        assert!(base.starts_with("/var/lib/fluxbase"), "relocated for the postgres user: {}", base.display());
    }
    let db_url = s1["db_url"].as_str().expect("db_url").to_owned();
    let c = fluxbase::database::connect_one(&db_url, "test").await.expect("db_url works");
    c.batch_execute("create table kept (x int); insert into kept values (42)").await.expect("write");
    drop(c);

    // kill -9: the cluster goes down with it (parent-death signal).
    p.signal(Signal::SIGKILL);
    p.wait_exit(Duration::from_secs(10)).await;
    wait_no_postgres(&base).await;
    // A stale pid file naming a live process that is not PostgreSQL.
    let pgdata = base.join("pg");
    std::fs::write(pgdata.join("postmaster.pid"), format!("{}\n{}\n", std::process::id(), pgdata.display())).expect("stale pid");

    let mut p2 = TestProcess::spawn(&data, &[], &[]);
    p2.wait_healthy(Duration::from_secs(90)).await;
    let s2 = status(&data);
    for key in ["anon_key", "service_role_key", "jwt_secret"] {
        assert_eq!(s1[key], s2[key], "{key} kept across restarts");
    }
    let c = fluxbase::database::connect_one(s2["db_url"].as_str().expect("db_url"), "test").await.expect("connect");
    let x: i32 = c.query_one("select x from kept", &[]).await.expect("data kept").get(0);
    assert_eq!(x, 42);
    // A REST session's backend runs under SCHED_BATCH (database::backend_policy);
    // the WAL sender and other sessions keep the default policy.
    let key = s2["service_role_key"].as_str().expect("service key");
    let rest = reqwest::Client::new()
        .get(format!("{}/rest/v1/kept?select=x", p2.url))
        .header("apikey", key)
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .expect("REST request");
    assert_eq!(rest.status(), 200);
    let policies = |app: &'static str| {
        let c = &c;
        async move {
            let rows = c
                .query("select pid from pg_stat_activity where application_name = $1", &[&app])
                .await
                .expect("pg_stat_activity");
            rows.iter().map(|r| scheduling_policy(r.get(0))).collect::<Vec<_>>()
        }
    };
    let rest_backends = policies("fluxbase rest").await;
    assert!(!rest_backends.is_empty() && rest_backends.iter().all(|&p| p == 3), "REST backends under SCHED_BATCH: {rest_backends:?}");
    let own: i32 = c.query_one("select pg_backend_pid()", &[]).await.expect("backend pid").get(0);
    assert_eq!(scheduling_policy(own), 0, "other sessions keep the default policy");
    // The replication stream reaches the embedded cluster over its Unix
    // socket (no client address), as the pools do.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (local, tcp): (i64, i64) = c
            .query_one("select count(*) filter (where client_addr is null), count(*) filter (where client_addr is not null) from pg_stat_replication", &[])
            .await
            .map(|r| (r.get(0), r.get(1)))
            .expect("pg_stat_replication");
        assert_eq!(tcp, 0, "no walsender over TCP");
        if local == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the replication stream never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(c);

    // A second server on the same data directory is refused.
    let out = run_binary(&["serve", "--data-dir", data.to_str().expect("utf-8"), "--port", "0"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another Fluxbase"), "{out:?}");

    // Access lines are held briefly and written together: one appears on
    // its own within a few seconds, and those held at exit are written then.
    let http = reqwest::Client::new();
    let get = |id: &'static str| http.get(format!("{}/health", p2.url)).header("x-request-id", id).send();
    get("access-line-alone").await.expect("request");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p2.log_text().contains("\"access-line-alone\"") {
        assert!(Instant::now() < deadline, "the access line was never written:\n{}", p2.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in ["access-line-at-exit-1", "access-line-at-exit-2"] {
        get(id).await.expect("request");
    }

    // SIGTERM: clean exit, no postgres left.
    p2.signal(Signal::SIGTERM);
    let st = p2.wait_exit(Duration::from_secs(60)).await;
    assert!(st.success(), "clean exit: {st}\n{}", p2.log_text());
    let log = p2.log_text();
    for id in ["access-line-alone", "access-line-at-exit-1", "access-line-at-exit-2"] {
        assert_eq!(log.matches(&format!("\"request_id\":\"{id}\"")).count(), 1, "one access line for {id}:\n{log}");
    }
    assert!(postgres_processes_under(&base).is_empty(), "no postgres after SIGTERM");
    assert!(!pgdata.join("postmaster.pid").exists());
    assert_eq!(status(&data)["running"], false);
    if base.starts_with("/var/lib/fluxbase") {
        let _ = std::fs::remove_dir_all(&base);
    }
}

#[tokio::test]
async fn external_database_without_replication_is_refused_with_the_fix() {
    let cluster = crate::harness::cluster::cluster();
    let db = crate::harness::TestDatabase::fresh().await;
    let role = format!("norepl_{}", uuid::Uuid::new_v4().simple());
    let c = db.client().await;
    c.batch_execute(&format!("create role {role} login password 'pw' nosuperuser noreplication; grant all on database {} to {role}", db.name))
        .await
        .expect("role");
    let url = format!("postgres://{role}:pw@127.0.0.1:{}/{}", cluster.port, db.name);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_binary(
        &["serve", "--data-dir", dir.path().to_str().expect("utf-8"), "--port", "0", "--database-url", &url],
        &[("FLUXBASE_LOG_FORMAT", "json")],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("ALTER ROLE \"{role}\" WITH REPLICATION")), "{err}");
    assert!(!err.contains(":pw@"), "password hidden: {err}");
    c.batch_execute(&format!("drop owned by {role}; drop role {role}")).await.expect("cleanup");
}
