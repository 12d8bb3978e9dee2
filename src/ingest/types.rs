//! The type catalog: how each column type's text form becomes JSON.
//!
//! Built-in types are known without asking; any other OID (enums, domains,
//! arrays of them, composites) is looked up in `pg_type` once and cached.
//! OIDs are stable for a type's life; a dropped and re-created type gets a
//! new OID, so the cache never serves a stale answer.

use std::collections::HashMap;
use std::sync::RwLock;

use super::values::Kind;
use crate::database::{DatabaseError, Pool};

/// Resolved type kinds by OID.
#[derive(Debug, Default)]
pub struct TypeCache {
    kinds: RwLock<HashMap<u32, Kind>>,
}

impl TypeCache {
    /// The kind of `oid` (text when unknown).
    pub fn kind(&self, oid: u32) -> Kind {
        if let Some(k) = Kind::builtin(oid) {
            return k;
        }
        self.kinds.read().ok().and_then(|m| m.get(&oid).cloned()).unwrap_or(Kind::Text)
    }

    /// Whether `oid` needs a catalog lookup.
    pub fn is_known(&self, oid: u32) -> bool {
        Kind::builtin(oid).is_some() || self.kinds.read().map(|m| m.contains_key(&oid)).unwrap_or(false)
    }

    /// Looks up every OID in `oids` that is not known yet.
    pub async fn load(&self, pool: &Pool, oids: impl IntoIterator<Item = u32>) -> Result<(), DatabaseError> {
        let missing: Vec<u32> = oids.into_iter().filter(|o| !self.is_known(*o)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let client = pool.get().await.map_err(|e| DatabaseError::Pool(e.to_string()))?;
        for oid in missing {
            let kind = resolve(&client, oid, 0).await?;
            if let Ok(mut m) = self.kinds.write() {
                m.insert(oid, kind);
            }
        }
        Ok(())
    }
}

fn resolve<'a>(
    client: &'a tokio_postgres::Client,
    oid: u32,
    depth: usize,
) -> futures_util::future::BoxFuture<'a, Result<Kind, DatabaseError>> {
    Box::pin(async move {
        if let Some(k) = Kind::builtin(oid) {
            return Ok(k);
        }
        if depth > 8 {
            return Ok(Kind::Text);
        }
        let row = client
            .query_opt(
                "select typtype::text, typcategory::text, typelem, typbasetype, typrelid, typdelim::text
                   from pg_catalog.pg_type where oid = $1",
                &[&oid],
            )
            .await?;
        let Some(row) = row else { return Ok(Kind::Text) };
        let typtype: String = row.get(0);
        let category: String = row.get(1);
        let elem: u32 = row.get(2);
        let base: u32 = row.get(3);
        let relid: u32 = row.get(4);
        let delim: String = row.get(5);
        Ok(match (typtype.as_str(), category.as_str()) {
            ("d", _) => resolve(client, base, depth + 1).await?,
            (_, "A") if elem != 0 => {
                let d = delim.as_bytes().first().copied().unwrap_or(b',');
                Kind::Array(Box::new(resolve(client, elem, depth + 1).await?), d)
            }
            ("c", _) => {
                let attrs = client
                    .query(
                        "select attname::text, atttypid from pg_catalog.pg_attribute
                          where attrelid = $1 and attnum > 0 and not attisdropped order by attnum",
                        &[&relid],
                    )
                    .await?;
                let mut out = Vec::with_capacity(attrs.len());
                for a in attrs {
                    out.push((a.get::<_, String>(0), resolve(client, a.get(1), depth + 1).await?));
                }
                Kind::Composite(out)
            }
            _ => Kind::Text,
        })
    })
}
