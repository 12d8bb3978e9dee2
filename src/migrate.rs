//! Schema migrations: the SQL files of `migrations/`, embedded at build time
//! and applied in file-name order at start.
//!
//! Each file runs in its own transaction and is recorded in
//! `fluxbase.schema_migrations` (version = the number before the first `_`,
//! name, SHA-256 of the SQL). Re-running applies nothing new. A database
//! that records a version this binary does not have refuses to start: it was
//! migrated by a newer Fluxbase. Concurrent starters serialise on an advisory
//! lock.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Advisory lock key held while migrating ("fluxmigr").
const LOCK_KEY: i64 = 0x666c_7578_6d69_6772;

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A migration's SQL failed; nothing of it was applied.
    #[error("migration {name} failed: {message}")]
    Failed {
        /// The file stem.
        name: String,
        /// PostgreSQL's message, with detail and hint when given.
        message: String,
    },
    /// The database was migrated by a newer Fluxbase.
    #[error("the database has migration {version} ({name}) that this Fluxbase does not know (newest here: {newest}); upgrade Fluxbase or use another database")]
    NewerThanBinary {
        /// The unknown version.
        version: i64,
        /// Its recorded name.
        name: String,
        /// The newest version embedded in this binary.
        newest: i64,
    },
    /// A migration file name does not start with a number.
    #[error("migration file {0}.sql must start with a number, like 0001_roles.sql")]
    BadName(String),
    /// A bookkeeping query failed.
    #[error("migration bookkeeping: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Versions applied now.
    pub applied: Vec<String>,
    /// Versions that were already applied.
    pub already: usize,
}

/// One embedded migration.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Leading number of the file name.
    pub version: i64,
    /// File stem, e.g. `0001_roles`.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// The embedded migrations, parsed and ordered.
pub fn embedded() -> Result<Vec<Migration>, MigrateError> {
    let mut out: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|(name, sql)| {
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            let version = digits.parse::<i64>().map_err(|_| MigrateError::BadName((*name).to_owned()))?;
            Ok(Migration { version, name, sql })
        })
        .collect::<Result<_, MigrateError>>()?;
    out.sort_by_key(|m| m.version);
    Ok(out)
}

/// Applies every migration not yet recorded in the database.
pub async fn run(client: &mut Client) -> Result<Report, MigrateError> {
    let migrations = embedded()?;
    let newest = migrations.last().map(|m| m.version).unwrap_or(0);
    client.execute("select pg_advisory_lock($1)", &[&LOCK_KEY]).await?;
    let result = apply(client, &migrations, newest).await;
    let unlock = client.execute("select pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    let report = result?;
    unlock?;
    Ok(report)
}

async fn apply(client: &mut Client, migrations: &[Migration], newest: i64) -> Result<Report, MigrateError> {
    client
        .batch_execute(
            "create schema if not exists fluxbase;
             create table if not exists fluxbase.schema_migrations (
                 version bigint primary key,
                 name text not null,
                 checksum text not null,
                 applied_at timestamptz not null default now()
             );",
        )
        .await?;
    let rows = client.query("select version, name, checksum from fluxbase.schema_migrations order by version", &[]).await?;
    let mut applied = std::collections::BTreeMap::new();
    for row in rows {
        let version: i64 = row.get(0);
        let name: String = row.get(1);
        let checksum: String = row.get(2);
        applied.insert(version, (name, checksum));
    }
    if let Some((version, (name, _))) = applied.iter().rev().find(|(v, _)| !migrations.iter().any(|m| m.version == **v)) {
        if *version > newest || !migrations.iter().any(|m| m.version == *version) {
            return Err(MigrateError::NewerThanBinary { version: *version, name: name.clone(), newest });
        }
    }
    let mut report = Report::default();
    for m in migrations {
        let checksum = hex::encode(Sha256::digest(m.sql.as_bytes()));
        if let Some((_, recorded)) = applied.get(&m.version) {
            if *recorded != checksum {
                tracing::warn!(migration = m.name, "migration file changed since it was applied; not re-applying");
            }
            report.already += 1;
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await.map_err(|e| MigrateError::Failed { name: m.name.to_owned(), message: describe(&e) })?;
        tx.execute(
            "insert into fluxbase.schema_migrations (version, name, checksum) values ($1, $2, $3)",
            &[&m.version, &m.name, &checksum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(migration = m.name, "applied migration");
        report.applied.push(m.name.to_owned());
    }
    Ok(report)
}

/// PostgreSQL's message with its detail, hint and position, for a person.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            if let Some(w) = db.where_() {
                s.push_str(&format!("; where: {w}"));
            }
            s
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_numbered_and_ordered() {
        let m = embedded().expect("valid names");
        assert!(!m.is_empty(), "migrations/ is embedded");
        for pair in m.windows(2) {
            assert!(pair[0].version < pair[1].version, "{} and {} share a number", pair[0].name, pair[1].name);
        }
    }
}
