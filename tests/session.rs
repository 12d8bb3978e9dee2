//! The pipelined session REST runs on (`fluxbase::database::session`), on a
//! real server: results in order, errors stopping the rest, transactions
//! never left open, the statement cache surviving failures and eviction.

use std::time::Duration;

use fluxbase::database::session::{PgSession, Step};
use fluxbase_replication::client::ConnectParams;

use crate::harness::TestDatabase;

async fn session(db: &TestDatabase) -> PgSession {
    let params = ConnectParams::from_url(&db.url).expect("url");
    PgSession::connect(&params, Duration::from_secs(10)).await.expect("connect")
}

fn text(rows: &[fluxbase::database::session::TextRow], col: usize) -> Option<String> {
    rows.first().and_then(|r| r.text(col).expect("text").map(str::to_owned))
}

#[tokio::test]
async fn runs_a_transaction_in_one_pipeline() {
    let db = TestDatabase::fresh().await;
    let mut s = session(&db).await;
    let steps = [
        Step::cached("begin", &[]),
        Step::cached("select set_config('app.x', $1, true)", &[Some("42")]),
        Step::cached("select current_setting('app.x') || $1, $2::int is null", &[Some("!"), None]),
        Step::cached("commit", &[]),
        Step::once("select current_setting('app.x', true)", &[]),
    ];
    let r = s.pipeline(&steps).await.expect("pipeline");
    assert!(r.failed.is_none(), "{:?}", r.failed);
    assert_eq!(r.rows.len(), 5);
    assert_eq!(text(&r.rows[2], 0).as_deref(), Some("42!"));
    assert_eq!(text(&r.rows[2], 1).as_deref(), Some("t"));
    // Transaction-local: gone after COMMIT.
    assert_eq!(text(&r.rows[4], 0).as_deref(), Some(""));
    // Cached statements are reused on the next pipeline.
    let r = s.pipeline(&steps).await.expect("again");
    assert!(r.failed.is_none());
}

#[tokio::test]
async fn an_error_stops_the_rest_and_rolls_back() {
    let db = TestDatabase::fresh().await;
    let c = db.client().await;
    c.batch_execute("create table t (id int primary key)").await.expect("table");
    let mut s = session(&db).await;
    let steps = [
        Step::cached("begin", &[]),
        Step::cached("insert into t values ($1)", &[Some("1")]),
        Step::cached("insert into t values ($1)", &[Some("1")]),
        Step::cached("commit", &[]),
    ];
    let r = s.pipeline(&steps).await.expect("pipeline");
    let (step, e) = r.failed.expect("duplicate key");
    assert_eq!((step, e.code.as_str()), (2, "23505"));
    assert_eq!(r.rows.len(), 2);
    assert!(!s.is_broken());
    // Nothing committed, and the session is usable (not left in a transaction).
    let n: i64 = c.query_one("select count(*) from t", &[]).await.expect("count").get(0);
    assert_eq!(n, 0);
    let r = s.pipeline(&[Step::cached("insert into t values ($1)", &[Some("7")])]).await.expect("after");
    assert!(r.failed.is_none(), "{:?}", r.failed);
    let n: i64 = c.query_one("select count(*) from t", &[]).await.expect("count").get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_statement_that_failed_to_parse_is_not_cached() {
    let db = TestDatabase::fresh().await;
    let c = db.client().await;
    let mut s = session(&db).await;
    let q = [Step::cached("select count(*) from later", &[])];
    let (_, e) = s.pipeline(&q).await.expect("pipeline").failed.expect("no table yet");
    assert_eq!(e.code, "42P01");
    c.batch_execute("create table later (id int)").await.expect("table");
    let r = s.pipeline(&q).await.expect("pipeline");
    assert!(r.failed.is_none(), "{:?}", r.failed);
    assert_eq!(text(&r.rows[0], 0).as_deref(), Some("0"));
}

#[tokio::test]
async fn the_statement_cache_is_bounded_and_survives_eviction() {
    let db = TestDatabase::fresh().await;
    let mut s = session(&db).await;
    let max = fluxbase::database::session::STATEMENT_CACHE_MAX;
    for i in 0..(3 * max) {
        let sql = format!("select {i} + $1::int");
        let r = s.pipeline(&[Step::cached(&sql, &[Some("1")]), Step::cached("select 1", &[])]).await.expect("pipeline");
        assert!(r.failed.is_none(), "{i}: {:?}", r.failed);
        assert_eq!(text(&r.rows[0], 0), Some((i + 1).to_string()));
    }
    let r = s.pipeline(&[Step::once("select count(*) from pg_prepared_statements", &[])]).await.expect("count");
    let n: usize = text(&r.rows[0], 0).and_then(|t| t.parse().ok()).expect("a count");
    assert!(n <= max, "{n} prepared statements kept, at most {max} allowed");
}

#[tokio::test]
async fn a_pipeline_cut_short_leaves_the_session_broken() {
    let db = TestDatabase::fresh().await;
    let mut s = session(&db).await;
    let steps = [Step::cached("begin", &[]), Step::once("select pg_sleep(2)", &[]), Step::cached("commit", &[])];
    // The caller goes away mid-transaction (a client hanging up).
    let cut = tokio::time::timeout(Duration::from_millis(200), s.pipeline(&steps)).await;
    assert!(cut.is_err(), "the pipeline should still be running");
    assert!(s.is_broken(), "a session cut short must never be reused");
    assert!(s.pipeline(&[Step::cached("select 1", &[])]).await.is_err());
}

#[tokio::test]
async fn a_session_the_server_ended_says_it_ran_nothing() {
    let db = TestDatabase::fresh().await;
    let c = db.client().await;
    c.batch_execute("create table t (id int primary key)").await.expect("table");
    let mut s = session(&db).await;
    let r = s.pipeline(&[Step::cached("select pg_backend_pid()::text", &[])]).await.expect("pid");
    let pid: i32 = text(&r.rows[0], 0).expect("pid").parse().expect("int");
    assert_eq!(db.end_sessions(&format!("pid = {pid}")).await, 1);
    let steps = [Step::cached("begin", &[]), Step::cached("insert into t values ($1)", &[Some("1")]), Step::cached("commit", &[])];
    let e = s.pipeline(&steps).await.expect_err("the session is gone");
    assert!(e.not_run, "{e}");
    assert!(s.is_broken());
    let n: i64 = c.query_one("select count(*) from t", &[]).await.expect("count").get(0);
    assert_eq!(n, 0);
}
