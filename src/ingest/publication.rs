//! The managed publication: settings written at start, then
//! `fluxbase.sync_publication()` (see `migrations/0010_replication.sql`),
//! which the DDL event trigger also calls as tables come and go.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::database::DatabaseError;

/// `[replication]` settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Stream changes into the event log (off: no slot, no change streams).
    pub enabled: bool,
    /// Slot name; empty means `fluxbase_<database>`.
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// `all`: every table with a primary key in `schemas`; `listed`: only
    /// tables added with `select fluxbase.publish('schema.table')`.
    pub mode: String,
    /// Schemas whose tables are published.
    pub schemas: Vec<String>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            enabled: true,
            slot: String::new(),
            publication: "fluxbase".into(),
            mode: "all".into(),
            schemas: vec!["public".into(), "storage".into()],
        }
    }
}

/// A table the publication refused, with the fix.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Refusal {
    /// `schema.table`.
    pub table: String,
    /// Why, and what to change.
    pub reason: String,
}

/// Writes the settings and brings the publication up to date.
pub async fn configure(client: &Client, cfg: &ReplicationConfig) -> Result<(), DatabaseError> {
    client
        .execute(
            "update fluxbase.replication_settings set publication = $1, mode = $2, schemas = $3",
            &[&cfg.publication, &cfg.mode, &cfg.schemas],
        )
        .await?;
    client.batch_execute("select fluxbase.sync_publication()").await?;
    Ok(())
}

/// Tables refused by the publication.
pub async fn refusals(client: &Client) -> Result<Vec<Refusal>, DatabaseError> {
    let rows = client
        .query("select schema_name || '.' || table_name, reason from fluxbase.publication_refusals order by 1", &[])
        .await?;
    Ok(rows.into_iter().map(|r| Refusal { table: r.get(0), reason: r.get(1) }).collect())
}
