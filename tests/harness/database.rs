//! A fresh database per test, cloned from the migrated template.

use super::cluster::{cluster, TEMPLATE};

/// A database of its own for one test; dropped (best effort) afterwards.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A superuser URL for it.
    pub url: String,
}

impl TestDatabase {
    /// Clones the template into a new uniquely named database.
    pub async fn fresh() -> TestDatabase {
        let cluster = cluster();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = fluxbase::database::connect_one(&cluster.url("postgres"), "harness").await.expect("admin connection");
        admin
            .batch_execute(&format!("create database {name} template {TEMPLATE}"))
            .await
            .expect("create test database");
        TestDatabase { url: cluster.url(&name), name }
    }

    /// A superuser connection to it.
    pub async fn client(&self) -> tokio_postgres::Client {
        fluxbase::database::connect_one(&self.url, "test").await.expect("test connection")
    }

    /// Ends (`pg_terminate_backend`) its sessions that match `filter`, a
    /// condition on `pg_stat_activity`, as a PostgreSQL restart would, and
    /// waits until they are gone. Returns how many it ended.
    pub async fn end_sessions(&self, filter: &str) -> i64 {
        let c = self.client().await;
        let which = format!("datname = current_database() and pid <> pg_backend_pid() and ({filter})");
        let n: i64 = c
            .query_one(&format!("select count(pg_terminate_backend(pid)) from pg_stat_activity where {which}"), &[])
            .await
            .expect("terminate")
            .get(0);
        for _ in 0..100 {
            let left: i64 = c.query_one(&format!("select count(*) from pg_stat_activity where {which}"), &[]).await.expect("count").get(0);
            if left == 0 {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("sessions where {filter} did not end");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = cluster().url("postgres");
        let name = self.name.clone();
        // Drop runs inside a test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(c) = fluxbase::database::connect_one(&admin, "harness").await {
                    let _ = c
                        .batch_execute(&format!(
                            "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = '{name}' and not active;
                             drop database if exists {name} with (force)"
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}
