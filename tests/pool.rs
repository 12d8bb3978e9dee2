//! The shared connection pool (`fluxbase::database::pool`): a connection
//! is driven by the runtime that built the pool, so it outlives the thread
//! (and runtime) of the handler that happened to open it.

use std::time::Duration;

use fluxbase::database::pool;

use crate::harness::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_outlives_the_runtime_that_opened_it() {
    let db = TestDatabase::fresh().await;
    let pool = pool::build(&db.url, 1, Duration::from_secs(10), "pool-test").expect("pool");
    // Open the only connection from a single-threaded runtime on its own
    // thread, as a connection thread's handler would, then drop that runtime.
    let borrower = pool.clone();
    let first: i32 = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let c = borrower.get().await.expect("get");
            c.query_one("select pg_backend_pid()", &[]).await.expect("query").get(0)
        })
    })
    .join()
    .expect("borrowing thread");
    // The same connection still answers.
    let c = pool.get().await.expect("get again");
    let again: i32 = c.query_one("select pg_backend_pid()", &[]).await.expect("query").get(0);
    assert_eq!(first, again, "the connection was reopened: it died with the runtime that opened it");
}
