//! The orphan sweep: deletes object bytes that no `storage.objects` row
//! names, once they are older than `[storage] orphan_grace_secs`, and
//! resumable uploads left unfinished for [`RESUMABLE_TTL`] (their rows and
//! parts, and parts whose upload row is gone), and, on the file backend,
//! staging files of uploads that never finished.
//!
//! Orphans arise when an upload's bytes were written but its row never
//! committed (crash, lost connection), or when deleting replaced bytes
//! failed. The grace period keeps the sweep away from uploads in flight:
//! their bytes are written moments before their row commits.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use super::errors::StorageResult;
use super::{keys, Storage};
use crate::app::AppState;

/// Candidates checked against the database per query.
const BATCH: usize = 500;
/// How long an unfinished resumable upload is kept.
pub const RESUMABLE_TTL: Duration = Duration::from_secs(24 * 3600);

/// One pass; returns how many orphans were deleted.
pub async fn sweep_once(s: &Storage, grace: Duration) -> StorageResult<usize> {
    let cutoff = chrono_cutoff(grace);
    let mut listing = s.store.list(Some(&keys::data_root()));
    let mut batch: Vec<String> = Vec::new();
    let mut deleted = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        if meta.last_modified.timestamp() > cutoff {
            continue;
        }
        if let Some(v) = meta.location.filename() {
            batch.push(v.to_owned());
        }
        if batch.len() >= BATCH {
            deleted += delete_unreferenced(s, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        deleted += delete_unreferenced(s, batch).await?;
    }
    deleted += sweep_resumable(s, grace).await?;
    if s.config().backend == "file" {
        // Staging files are hidden from object_store's listing: walk the directory.
        let dir = super::backend::file_root(&s.app.config).join("objects");
        let cutoff = std::time::SystemTime::now().checked_sub(grace).unwrap_or(std::time::UNIX_EPOCH);
        deleted += tokio::task::spawn_blocking(move || super::file_write::remove_stale_staging(&dir, cutoff)).await.unwrap_or(0);
    }
    Ok(deleted)
}

/// Expires old resumable uploads, then deletes parts (older than `grace`)
/// whose upload row no longer exists.
async fn sweep_resumable(s: &Storage, grace: Duration) -> StorageResult<usize> {
    let client = super::db::connect(s).await?;
    let ttl = i64::try_from(RESUMABLE_TTL.as_secs()).unwrap_or(86_400) as f64;
    client
        .execute("delete from storage.fluxbase_resumable_uploads where created_at < now() - make_interval(secs => $1)", &[&ttl])
        .await?;
    let live: std::collections::HashSet<String> = client
        .query("select id::text from storage.fluxbase_resumable_uploads", &[])
        .await?
        .iter()
        .filter_map(|r| r.try_get::<_, String>(0).ok())
        .collect();
    drop(client);
    let cutoff = chrono_cutoff(grace);
    let mut listing = s.store.list(Some(&object_store::path::Path::from("tus")));
    let mut stale = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let upload = meta.location.parts().nth(1).map(|p| p.as_ref().to_owned()).unwrap_or_default();
        if meta.last_modified.timestamp() <= cutoff && !live.contains(&upload) {
            stale.push(meta.location);
        }
    }
    drop(listing);
    for p in &stale {
        if let Err(e) = s.store.delete(p).await {
            tracing::warn!(path = %p, error = %e, "deleting a stale upload part failed");
        }
    }
    Ok(stale.len())
}

fn chrono_cutoff(grace: Duration) -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() - i64::try_from(grace.as_secs()).unwrap_or(i64::MAX / 2)
}

async fn delete_unreferenced(s: &Storage, versions: Vec<String>) -> StorageResult<usize> {
    let client = super::db::connect(s).await?;
    let rows = client
        .query(
            "select v from unnest($1::text[]) as v where not exists (select 1 from storage.objects o where o.version = v)",
            &[&versions],
        )
        .await?;
    let orphans: Vec<String> = rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect();
    drop(client);
    super::objects::remove::delete_bytes(s, &orphans).await;
    if !orphans.is_empty() {
        tracing::info!(count = orphans.len(), "storage sweep removed orphaned bytes");
    }
    Ok(orphans.len())
}

/// Runs the sweep every `every` while the server lives (it holds only a
/// weak reference, so it ends with the server).
pub fn spawn(app: Weak<AppState>, store: Arc<dyn object_store::ObjectStore>, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(app) = app.upgrade() else { return };
            if app.ready().is_none() {
                continue;
            }
            let grace = Duration::from_secs(app.config.storage.orphan_grace_secs);
            let s = Storage::new(app, Arc::clone(&store));
            if let Err(e) = sweep_once(&s, grace).await {
                tracing::warn!(error = %e, "storage sweep failed");
            }
        }
    });
}
