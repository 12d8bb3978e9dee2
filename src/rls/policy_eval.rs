//! Visibility decided by PostgreSQL: the table's SELECT policies evaluated
//! over the WAL's row image, as the caller's role with its claims.
//!
//! For a table `s.t` the check is one statement:
//!
//! ```sql
//! select has_table_privilege('s.t', 'SELECT') and (<policies>)
//!   from jsonb_populate_record(null::s.t, $1) as t
//! ```
//!
//! run in a transaction that first switches to the caller (the same
//! `set_config` as every request), then rolled back. `<policies>` combines
//! the policies that apply to SELECT for the role (permissive ones ORed,
//! restrictive ones ANDed) from `pg_policy`, deparsed by `pg_get_expr`; with
//! RLS off it is `true`, with RLS on and no permissive policy, `false`.
//! Policy text comes from the database's catalog, never from a client; the
//! row is bound as a parameter. Policies are re-read after
//! [`POLICY_TTL`] so CREATE/ALTER/DROP POLICY take effect quickly.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::compile::{compile, truth, Expr};
use crate::database::{DatabaseError, Pool};
use crate::eventlog::Position;
use crate::http::caller::Caller;

/// How long a table's compiled check is reused.
pub const POLICY_TTL: Duration = Duration::from_secs(1);

/// The answer for one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The caller may see the row.
    Visible,
    /// It may not.
    Hidden,
}

struct Check {
    sql: String,
    /// The same decision in process, when every applicable policy compiled.
    compiled: Option<Compiled>,
    loaded: Instant,
    /// Set by the one caller re-reading an expired check; the others keep
    /// using this one meanwhile (no stampede of catalog queries).
    refreshing: std::sync::atomic::AtomicBool,
}

/// A table's SELECT policies for one role, compiled.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Whether the role may SELECT the table at all.
    pub privilege: bool,
    /// Whether RLS is enabled.
    pub rls: bool,
    /// Permissive policies (ORed).
    pub permissive: Vec<Expr>,
    /// Restrictive policies (ANDed).
    pub restrictive: Vec<Expr>,
}

impl Compiled {
    /// The verdict for a row and claims.
    pub fn visible(&self, row: &Map<String, Value>, claims: &Value) -> bool {
        if !self.privilege {
            return false;
        }
        if !self.rls {
            return true;
        }
        self.permissive.iter().any(|e| truth(e, row, claims) == Some(true))
            && self.restrictive.iter().all(|e| truth(e, row, claims) == Some(true))
    }
}

/// A table's SELECT policies for one role, as last loaded. Two are the same
/// load when [`TablePolicy::same`]; a reload (after [`POLICY_TTL`]) is a new one.
#[derive(Clone)]
pub struct TablePolicy(std::sync::Arc<Check>);

impl std::fmt::Debug for TablePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TablePolicy").field("compiled", &self.0.compiled.is_some()).finish()
    }
}

impl TablePolicy {
    /// The audience of `caller` under these policies: its role plus the
    /// claims they read (every claim when they run in PostgreSQL). Callers
    /// of one audience get the same verdict for every row.
    pub fn audience(&self, caller: &Caller) -> String {
        audience_key(caller, self.0.compiled.as_ref())
    }

    /// Whether both are the same load of the same table's policies.
    pub fn same(&self, other: &TablePolicy) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Most cached verdicts before the cache is cleared (memory stays bounded).
pub const VERDICT_CACHE_MAX: usize = 200_000;

/// Evaluates visibility (compiled, else in PostgreSQL), caching each
/// table's check and each change's verdict per audience.
pub struct PolicyEvaluator {
    pool: Pool,
    checks: RwLock<HashMap<(String, String, String), std::sync::Arc<Check>>>,
    /// Verdicts by (change position, old image?, audience).
    verdicts: dashmap::DashMap<(Position, bool, String), Verdict>,
    /// Cache hits.
    pub hits: std::sync::atomic::AtomicU64,
    /// Cache misses.
    pub misses: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PolicyEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyEvaluator")
    }
}

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl PolicyEvaluator {
    /// An evaluator on `pool`.
    pub fn new(pool: Pool) -> PolicyEvaluator {
        PolicyEvaluator {
            pool,
            checks: RwLock::new(HashMap::new()),
            verdicts: dashmap::DashMap::new(),
            hits: std::sync::atomic::AtomicU64::new(0),
            misses: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether `caller` may SELECT `row` of `schema.table`.
    pub async fn verdict(&self, caller: &Caller, schema: &str, table: &str, row: &Map<String, Value>) -> Result<Verdict, DatabaseError> {
        if caller.is_service_role() {
            return Ok(Verdict::Visible);
        }
        let check = self.check(caller, schema, table).await?;
        if let Some(c) = &check.compiled {
            return Ok(if c.visible(row, &caller.claims) { Verdict::Visible } else { Verdict::Hidden });
        }
        self.in_postgres(&check, caller, schema, table, row).await
    }

    /// Runs a table's check statement as the caller over the row image.
    async fn in_postgres(&self, check: &Check, caller: &Caller, schema: &str, table: &str, row: &Map<String, Value>) -> Result<Verdict, DatabaseError> {
        let mut client = self.pool.get().await.map_err(|e| DatabaseError::Pool(e.to_string()))?;
        let tx = client.transaction().await?;
        let (role, claims) = caller.apply_params();
        tx.execute(Caller::apply_sql(), &[&role, &claims]).await?;
        let row = Value::Object(row.clone());
        let visible = match tx.query_opt(check.sql.as_str(), &[&row]).await {
            Ok(Some(r)) => r.get::<_, Option<bool>>(0).unwrap_or(false),
            Ok(None) => false,
            // A policy that errors for this row (a bad cast, a missing
            // privilege on a table it reads) hides the row, as a failing
            // SELECT would.
            Err(e) => {
                tracing::debug!(error = %e, schema, table, "visibility check failed; hiding the row");
                false
            }
        };
        let _ = tx.rollback().await;
        Ok(if visible { Verdict::Visible } else { Verdict::Hidden })
    }

    async fn check(&self, caller: &Caller, schema: &str, table: &str) -> Result<std::sync::Arc<Check>, DatabaseError> {
        use std::sync::atomic::Ordering::SeqCst;
        let key = (caller.role.clone(), schema.to_owned(), table.to_owned());
        let stale = self.checks.read().ok().and_then(|m| m.get(&key).cloned());
        if let Some(c) = &stale {
            if c.loaded.elapsed() < POLICY_TTL || c.refreshing.swap(true, SeqCst) {
                return Ok(std::sync::Arc::clone(c));
            }
        }
        match self.load_check(caller, schema, table, key).await {
            Ok(c) => Ok(c),
            Err(e) => match stale {
                // Keep the last good check until a re-read succeeds.
                Some(c) => {
                    c.refreshing.store(false, SeqCst);
                    tracing::warn!(error = %e, schema, table, "re-reading policies failed; keeping the previous ones");
                    Ok(c)
                }
                None => Err(e),
            },
        }
    }

    async fn load_check(&self, caller: &Caller, schema: &str, table: &str, key: (String, String, String)) -> Result<std::sync::Arc<Check>, DatabaseError> {
        let client = self.pool.get().await.map_err(|e| DatabaseError::Pool(e.to_string()))?;
        let rel = format!("{}.{}", quote_ident(schema), quote_ident(table));
        let row = client
            .query_opt(
                "select c.relrowsecurity,
                        coalesce((select string_agg('(' || pg_get_expr(p.polqual, p.polrelid) || ')', ' or ')
                                    from pg_policy p
                                   where p.polrelid = c.oid and p.polpermissive and p.polcmd in ('r', '*')
                                     and p.polqual is not null
                                     and (0 = any(p.polroles) or exists (select 1 from unnest(p.polroles) r
                                           where pg_has_role($2::text::name, r, 'member')))), 'false'),
                        coalesce((select string_agg('(' || pg_get_expr(p.polqual, p.polrelid) || ')', ' and ')
                                    from pg_policy p
                                   where p.polrelid = c.oid and not p.polpermissive and p.polcmd in ('r', '*')
                                     and p.polqual is not null
                                     and (0 = any(p.polroles) or exists (select 1 from unnest(p.polroles) r
                                           where pg_has_role($2::text::name, r, 'member')))), 'true')
                   from pg_class c where c.oid = $1::text::regclass",
                &[&rel, &caller.role],
            )
            .await?;
        let compiled = self.compile_policies(&client, &rel, &caller.role).await.ok().flatten();
        let expr = match row {
            None => "false".to_owned(),
            Some(r) => {
                let rls: bool = r.get(0);
                let permissive: String = r.get(1);
                let restrictive: String = r.get(2);
                if rls {
                    format!("({permissive}) and ({restrictive})")
                } else {
                    "true".to_owned()
                }
            }
        };
        let sql = format!(
            "select has_table_privilege({lit}, 'SELECT') and ({expr}) from jsonb_populate_record(null::{rel}, $1) as {alias}",
            lit = quote_literal(&rel),
            alias = quote_ident(table),
        );
        let check = std::sync::Arc::new(Check { sql, compiled, loaded: Instant::now(), refreshing: std::sync::atomic::AtomicBool::new(false) });
        if let Ok(mut m) = self.checks.write() {
            m.insert(key, std::sync::Arc::clone(&check));
        }
        Ok(check)
    }
}

impl PolicyEvaluator {
    /// Compiles the table's SELECT policies for `role`, if every one of them compiles.
    async fn compile_policies(&self, client: &tokio_postgres::Client, rel: &str, role: &str) -> Result<Option<Compiled>, DatabaseError> {
        let head = client
            .query_one(
                "select has_table_privilege($2::text::name, $1::text::regclass, 'SELECT'), c.relrowsecurity
                   from pg_class c where c.oid = $1::text::regclass",
                &[&rel, &role],
            )
            .await?;
        let privilege: bool = head.get(0);
        let rls: bool = head.get(1);
        let rows = client
            .query(
                "select p.polpermissive, pg_get_expr(p.polqual, p.polrelid)
                   from pg_policy p
                  where p.polrelid = $1::text::regclass and p.polcmd in ('r', '*') and p.polqual is not null
                    and (0 = any(p.polroles) or exists (select 1 from unnest(p.polroles) r where pg_has_role($2::text::name, r, 'member')))",
                &[&rel, &role],
            )
            .await?;
        let mut compiled = Compiled { privilege, rls, permissive: Vec::new(), restrictive: Vec::new() };
        for r in rows {
            let permissive: bool = r.get(0);
            let text: String = r.get(1);
            let Some(e) = compile(&text) else { return Ok(None) };
            if permissive {
                compiled.permissive.push(e);
            } else {
                compiled.restrictive.push(e);
            }
        }
        Ok(Some(compiled))
    }

    /// The verdict for the row image of the change at `pos` (`old`: the old
    /// image), shared by every caller of the same audience: the role plus
    /// the claims the table's policies read (all claims when they are
    /// evaluated by PostgreSQL).
    pub async fn verdict_at(&self, caller: &Caller, schema: &str, table: &str, pos: Position, old: bool, row: &Map<String, Value>) -> Verdict {
        use std::sync::atomic::Ordering::Relaxed;
        if caller.is_service_role() {
            return Verdict::Visible;
        }
        let audience = match self.check(caller, schema, table).await {
            Ok(c) => audience_key(caller, c.compiled.as_ref()),
            Err(_) => return Verdict::Hidden,
        };
        let key = (pos, old, format!("{schema}.{table}|{audience}"));
        if let Some(v) = self.verdicts.get(&key) {
            self.hits.fetch_add(1, Relaxed);
            return *v;
        }
        self.misses.fetch_add(1, Relaxed);
        let v = self.verdict(caller, schema, table, row).await.unwrap_or(Verdict::Hidden);
        if self.verdicts.len() >= VERDICT_CACHE_MAX {
            self.verdicts.clear();
        }
        self.verdicts.insert(key, v);
        v
    }

    /// `schema.table`'s SELECT policies for `caller`'s role.
    pub async fn table_policy(&self, caller: &Caller, schema: &str, table: &str) -> Result<TablePolicy, DatabaseError> {
        Ok(TablePolicy(self.check(caller, schema, table).await?))
    }

    /// Whether `schema.table`'s policies for `caller` are evaluated in process.
    pub async fn is_compiled(&self, caller: &Caller, schema: &str, table: &str) -> Result<bool, DatabaseError> {
        Ok(self.check(caller, schema, table).await?.compiled.is_some())
    }

    /// The verdict PostgreSQL gives, bypassing compiled predicates (for differential tests).
    pub async fn verdict_in_postgres(&self, caller: &Caller, schema: &str, table: &str, row: &Map<String, Value>) -> Result<Verdict, DatabaseError> {
        let check = self.check(caller, schema, table).await?;
        self.in_postgres(&check, caller, schema, table, row).await
    }
}

/// The audience of a caller for a table: its role plus the claims the compiled policies read.
fn audience_key(caller: &Caller, compiled: Option<&Compiled>) -> String {
    let Some(c) = compiled else { return format!("{}|{}", caller.role, caller.claims) };
    let mut read = Vec::new();
    for e in c.permissive.iter().chain(&c.restrictive) {
        super::compile::claims_read(e, &mut read);
    }
    read.sort();
    read.dedup();
    let mut key = caller.role.clone();
    for k in read {
        key.push('|');
        if k == "*" {
            key.push_str(caller.claims.json());
        } else {
            key.push_str(&caller.claims.get(&k).map(Value::to_string).unwrap_or_default());
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
