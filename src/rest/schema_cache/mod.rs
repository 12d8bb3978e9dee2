//! The schema cache: tables, views, columns (types, defaults), primary and
//! foreign keys, and functions with their arguments, for the exposed
//! schemas.
//!
//! Loaded in six catalog queries, pipelined in one round trip, whatever
//! the number of tables. Reloaded when PostgreSQL says the schema changed:
//! the event triggers of `migrations/0100_rest_schema_reload.sql` send
//! `NOTIFY pgrst, 'reload schema'` after every DDL command, as PostgREST's
//! recommended setup does, and users can send the same by hand. A dedicated
//! connection LISTENs (see [`listen`]); after (re)connecting it reloads,
//! so no change made while it was away is missed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_postgres::Client;

mod node_tree;
mod view_keys;

/// A table, view, materialized view or foreign table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// `r`, `p`, `v`, `m` or `f`.
    pub kind: char,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Primary-key columns: a table's own; a view's are those of the
    /// tables it reads whose keys it exposes whole (see [`view_keys`]).
    /// Empty for keyless tables and for views that expose no whole key.
    pub pk: Vec<String>,
    /// Computed fields: functions of an exposed schema taking this
    /// relation's row as their one argument and returning one value. A
    /// request names them as columns (`select=full_name`), and PostgreSQL
    /// reads `alias.full_name` as `full_name(alias)`, as under PostgREST.
    /// Never part of `*`.
    pub computed: Vec<String>,
}

impl Table {
    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether a request may read `name` on this relation: a column or a
    /// computed field.
    pub fn has_field(&self, name: &str) -> bool {
        self.column(name).is_some() || self.computed.iter().any(|c| c == name)
    }

    /// `schema.name`, for messages.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A column.
#[derive(Debug, Clone, Deserialize)]
pub struct Column {
    /// Name.
    pub name: String,
    /// `format_type()` of its type (catalog text, e.g. `integer`, `text[]`).
    #[serde(rename = "type")]
    pub data_type: String,
    /// `pg_type.typname`.
    pub typname: String,
    /// Nullable.
    pub nullable: bool,
    /// Default expression, if any.
    pub default: Option<String>,
    /// How a JSON value becomes this column's value (see [`Input`]).
    #[serde(default)]
    pub input: Input,
}

/// How `json_populate_record` turns a JSON value into a column of this
/// type, as far as binding the value as a parameter can do the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Input {
    /// A built-in (`pg_catalog`) base or range type that is not an array:
    /// a JSON string's contents, or a number's or boolean's text, go
    /// through the type's input function. Built-in types only, because a
    /// prepared statement keeps its parameters' type OIDs, and only these
    /// can never be dropped and created again under the same name.
    Scalar,
    /// `json` or `jsonb`: the JSON value is kept as it is.
    Json,
    /// Anything else (arrays, composites, domains, enums, types of
    /// extensions or users): read only through `json_populate_record`.
    #[default]
    Other,
}

/// A foreign key.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    /// Constraint name.
    pub name: String,
    /// Referencing table (schema, name).
    pub table: (String, String),
    /// Referencing columns.
    pub columns: Vec<String>,
    /// Referenced table.
    pub ref_table: (String, String),
    /// Referenced columns.
    pub ref_columns: Vec<String>,
}

/// What a function returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returns {
    /// `void`
    Void,
    /// A scalar (or array, domain…).
    Scalar,
    /// A row type (table, composite, record, `TABLE(…)`).
    Composite,
}

/// A function argument.
#[derive(Debug, Clone)]
pub struct Arg {
    /// Name (empty for unnamed arguments).
    pub name: String,
    /// `format_type()` of its type.
    pub data_type: String,
    /// Whether it has a default.
    pub has_default: bool,
    /// Whether it is the `VARIADIC` parameter (an array; repeated query or
    /// form fields of its name are its elements).
    pub variadic: bool,
}

/// A function callable through `/rpc`.
#[derive(Debug, Clone)]
pub struct Function {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Input arguments.
    pub args: Vec<Arg>,
    /// `setof` / `TABLE`.
    pub returns_set: bool,
    /// Return shape.
    pub returns: Returns,
    /// `i`, `s` or `v`.
    pub volatility: char,
    /// The table whose row type the first argument is, if it is one.
    pub first_arg_table: Option<(String, String)>,
    /// The table whose row type is returned, if it is one.
    pub returns_table: Option<(String, String)>,
    /// The media type it returns, when it returns one value of a domain
    /// named as a media type (`create domain "text/html" as text`):
    /// PostgREST's media type handler functions.
    pub media: Option<MediaDomain>,
}

/// A domain named as a media type, returned by a handler function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDomain {
    /// The domain's name, lowercase (`text/html`, `image/png`, `*/*`).
    pub media_type: String,
    /// Its base type is `bytea`: the value is the body's bytes, not text.
    pub bytes: bool,
}

/// The cache as of one load.
#[derive(Debug, Default)]
pub struct SchemaCache {
    /// Tables by (schema, name).
    /// Shared, so a plan holds its tables without copying them.
    pub tables: HashMap<(String, String), Arc<Table>>,
    /// Foreign keys touching exposed schemas.
    pub foreign_keys: Vec<ForeignKey>,
    /// Functions by (schema, name), overloads together.
    pub functions: HashMap<(String, String), Vec<Function>>,
    /// PostGIS is installed (`application/geo+json` is available).
    pub postgis: bool,
    /// Aggregates that are media type handlers of rows.
    pub media_aggregates: Vec<MediaAggregate>,
}

/// An aggregate of one argument returning a domain named as a media type:
/// PostgREST's handler of a relation's rows (its argument is the
/// relation's row type) or of any rows (`anyelement`).
#[derive(Debug, Clone)]
pub struct MediaAggregate {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// What it returns.
    pub media: MediaDomain,
    /// The relation whose rows it takes; `None` for any rows.
    pub relation: Option<(String, String)>,
}

impl SchemaCache {
    /// A table by schema and name.
    pub fn table(&self, schema: &str, name: &str) -> Option<&Arc<Table>> {
        self.tables.get(&(schema.to_owned(), name.to_owned()))
    }

    /// The handlers of rows of `relation` (`(schema, name)`; `None` for
    /// rows of no relation), in the order a media type is looked up: the
    /// relation's own (its `*/*` one first), only when the rows are
    /// `whole` (they are passed as its row type), then those of any rows
    /// (an any-rows `*/*` handler would take every request of every
    /// relation: it is left out).
    pub fn row_handlers(&self, relation: Option<(&str, &str)>, whole: bool) -> Vec<&MediaAggregate> {
        let own = |a: &&MediaAggregate| {
            whole && relation.is_some_and(|(s, n)| a.relation.as_ref().is_some_and(|(rs, rn)| rs == s && rn == n))
        };
        let own_any = self.media_aggregates.iter().filter(|a| own(a) && a.media.media_type == "*/*");
        let own_typed = self.media_aggregates.iter().filter(|a| own(a) && a.media.media_type != "*/*");
        let any = self.media_aggregates.iter().filter(|a| a.relation.is_none() && a.media.media_type != "*/*");
        own_any.chain(own_typed).chain(any).collect()
    }

    /// The most similar table name in `schema`, for hints.
    pub fn similar_table(&self, schema: &str, name: &str) -> Option<String> {
        self.tables
            .keys()
            .filter(|(s, _)| s == schema)
            .map(|(_, n)| (distance(n, name), n))
            .filter(|(d, n)| *d <= (n.len().max(name.len()) / 2).max(2))
            .min()
            .map(|(_, n)| format!("{schema}.{n}"))
    }
}

/// Levenshtein distance, bounded work (names are short; long inputs are cut).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

const TABLES: &str = "
select n.nspname::text, c.relname::text, c.relkind::text,
  coalesce(json_agg(json_build_object(
      'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'typname', t.typname,
      'nullable', not a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid),
      'input', case when t.oid in ('pg_catalog.json'::regtype, 'pg_catalog.jsonb'::regtype) then 'json'
                    when t.typnamespace = 'pg_catalog'::regnamespace and t.typtype in ('b', 'r', 'm')
                      and t.typcategory <> 'A' then 'scalar'
                    else 'other' end)
    order by a.attnum) filter (where a.attname is not null), '[]')::text
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_type t on t.oid = a.atttypid
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm', 'f')
group by n.nspname, c.relname, c.relkind";

/// The relations that views in the exposed and extra schemas read
/// directly: their keys are loaded too, to carry them over to the views.
macro_rules! view_bases {
    () => {
        "select d.refobjid from pg_depend d
         join pg_rewrite r on r.oid = d.objid
         join pg_class v on v.oid = r.ev_class
         join pg_namespace vn on vn.oid = v.relnamespace
         where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
           and (vn.nspname = any($1) or vn.nspname = any($2))"
    };
}

/// Key columns of a constraint side, in key order: `$conkey` is `conkey`
/// or `confkey`, `$rel` `conrelid` or `confrelid`. Names, then numbers.
macro_rules! key_columns {
    ($conkey:literal, $rel:literal) => {
        concat!(
            "array(select a.attname::text from unnest(con.", $conkey, ") with ordinality k(num, ord)
               join pg_attribute a on a.attrelid = con.", $rel, " and a.attnum = k.num order by k.ord),
             array(select k.num::int4 from unnest(con.", $conkey, ") with ordinality k(num, ord) order by k.ord)"
        )
    };
}

/// Primary keys of the exposed tables, and of the tables views read.
const PKS: &str = concat!(
    "select n.nspname::text, c.relname::text, c.oid::int8, ",
    key_columns!("conkey", "conrelid"),
    " from pg_constraint con
     join pg_class c on c.oid = con.conrelid
     join pg_namespace n on n.oid = c.relnamespace
     where con.contype = 'p' and (n.nspname = any($1) or c.oid in (",
    view_bases!(),
    "))"
);

/// Foreign keys touching the exposed schemas, or the tables views read.
const FKS: &str = concat!(
    "select con.conname::text, ns.nspname::text, cs.relname::text, cs.oid::int8, ",
    key_columns!("conkey", "conrelid"),
    ", nt.nspname::text, ct.relname::text, ct.oid::int8, ",
    key_columns!("confkey", "confrelid"),
    " from pg_constraint con
     join pg_class cs on cs.oid = con.conrelid
     join pg_namespace ns on ns.oid = cs.relnamespace
     join pg_class ct on ct.oid = con.confrelid
     join pg_namespace nt on nt.oid = ct.relnamespace
     where con.contype = 'f' and (ns.nspname = any($1) or nt.nspname = any($1)
       or cs.oid in (",
    view_bases!(),
    ") or ct.oid in (",
    view_bases!(),
    "))"
);

/// Views and materialized views of the exposed and extra schemas: their
/// columns and stored query (see [`view_keys`]).
const VIEWS: &str = "
select v.oid::int8, vn.nspname::text, v.relname::text, vn.nspname = any($1), r.ev_action::text,
  array(select a.attnum::int4 from pg_attribute a
        where a.attrelid = v.oid and a.attnum > 0 and not a.attisdropped order by a.attnum),
  array(select a.attname::text from pg_attribute a
        where a.attrelid = v.oid and a.attnum > 0 and not a.attisdropped order by a.attnum)
from pg_rewrite r
join pg_class v on v.oid = r.ev_class and v.relkind in ('v', 'm') and r.rulename = '_RETURN'
join pg_namespace vn on vn.oid = v.relnamespace
where vn.nspname = any($1) or vn.nspname = any($2)";

const FUNCTIONS: &str = "
select n.nspname::text, p.proname::text, p.provolatile::text, p.proretset,
  coalesce(p.proargnames, '{}')::text[], coalesce(p.proargmodes::text[], '{}'),
  array(select format_type(t, null) from unnest(p.proargtypes) with ordinality u(t, o) order by o),
  p.pronargdefaults::int4,
  case when p.prorettype = 'void'::regtype then 'v'
       when p.prorettype = 'record'::regtype or rt.typtype = 'c' then 'c'
       else 's' end,
  an.nspname::text, ac.relname::text, rn.nspname::text, rc.relname::text,
  case when rt.typtype = 'd' and strpos(rt.typname, '/') > 0 then lower(rt.typname::text) end,
  rt.typbasetype = 'bytea'::regtype, p.prokind = 'a', coalesce(p.proargtypes[0] = 'anyelement'::regtype, false)
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
left join pg_class rc on rc.oid = rt.typrelid and rc.relkind in ('r', 'p', 'v', 'm', 'f')
left join pg_namespace rn on rn.oid = rc.relnamespace
left join pg_type at on at.oid = p.proargtypes[0]
left join pg_class ac on ac.oid = at.typrelid and ac.relkind in ('r', 'p', 'v', 'm', 'f')
left join pg_namespace an on an.oid = ac.relnamespace
where n.nspname = any($1) and (p.prokind = 'f' or p.prokind = 'a' and p.pronargs = 1)";

/// Loads the cache for `schemas` (six queries, one round trip). Views in
/// `extra` schemas are read too, for views over them.
pub async fn load(client: &Client, schemas: &[String], extra: &[String]) -> Result<SchemaCache, tokio_postgres::Error> {
    let ((tables, pks, fks, funcs, views), postgis) = futures_util::future::try_join(
        futures_util::future::try_join5(
            client.query(TABLES, &[&schemas]),
            client.query(PKS, &[&schemas, &extra]),
            client.query(FKS, &[&schemas, &extra]),
            client.query(FUNCTIONS, &[&schemas]),
            client.query(VIEWS, &[&schemas, &extra]),
        ),
        client.query_one("select exists (select 1 from pg_extension where extname = 'postgis')", &[]),
    )
    .await?;
    let mut cache = SchemaCache { postgis: postgis.try_get(0)?, ..SchemaCache::default() };
    let mut loaded = HashMap::new();
    for r in tables {
        let (schema, name, kind, cols): (String, String, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let columns: Vec<Column> = serde_json::from_str(&cols).unwrap_or_default();
        let kind = kind.chars().next().unwrap_or('r');
        loaded.insert((schema.clone(), name.clone()), Table { schema, name, kind, columns, pk: Vec::new(), computed: Vec::new() });
    }
    let oid = |v: i64| u32::try_from(v).unwrap_or_default();
    let side = |r: &tokio_postgres::Row, at: usize| -> Result<view_keys::KeySide, tokio_postgres::Error> {
        let names: Vec<String> = r.try_get(at + 3)?;
        let nums: Vec<i32> = r.try_get(at + 4)?;
        Ok(view_keys::KeySide {
            table: (r.try_get(at)?, r.try_get(at + 1)?),
            oid: oid(r.try_get(at + 2)?),
            columns: nums.into_iter().zip(names).collect(),
        })
    };
    let pks = pks.iter().map(|r| side(r, 0)).collect::<Result<Vec<_>, _>>()?;
    let fks = fks
        .iter()
        .map(|r| Ok(view_keys::ForeignKeyDef { name: r.try_get(0)?, from: side(r, 1)?, to: side(r, 6)? }))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    let views = views
        .iter()
        .map(|r| {
            let nums: Vec<i32> = r.try_get(5)?;
            let names: Vec<String> = r.try_get(6)?;
            let text: String = r.try_get(4)?;
            Ok(view_keys::ViewDef {
                oid: oid(r.try_get(0)?),
                name: (r.try_get(1)?, r.try_get(2)?),
                exposed: r.try_get(3)?,
                columns: nums.into_iter().zip(names).collect(),
                origins: node_tree::select_list_origins(&text),
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    let traced = view_keys::trace(&views);
    for pk in &pks {
        if let Some(t) = loaded.get_mut(&pk.table) {
            t.pk = pk.columns.iter().map(|(_, n)| n.clone()).collect();
        }
    }
    for (view, pk) in view_keys::view_primary_keys(&traced, &pks) {
        if let Some(t) = loaded.get_mut(&view) {
            t.pk = pk;
        }
    }
    let exposed = |t: &(String, String)| schemas.contains(&t.0);
    cache.foreign_keys =
        view_keys::with_views(&fks, &traced).into_iter().filter(|f| exposed(&f.table) || exposed(&f.ref_table)).collect();
    for r in funcs {
        let schema: String = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let volatility: String = r.try_get(2)?;
        let returns_set: bool = r.try_get(3)?;
        let names: Vec<String> = r.try_get(4)?;
        let modes: Vec<String> = r.try_get(5)?;
        let types: Vec<String> = r.try_get(6)?;
        let ndefaults: i32 = r.try_get(7)?;
        let ret: String = r.try_get(8)?;
        let pair = |a: Option<String>, b: Option<String>| a.zip(b);
        let first_arg_table = pair(r.try_get(9)?, r.try_get(10)?);
        let returns_table = pair(r.try_get(11)?, r.try_get(12)?);
        let media_type: Option<String> = r.try_get(13)?;
        let bytes: bool = r.try_get(14)?;
        let (aggregate, any_row): (bool, bool) = (r.try_get(15)?, r.try_get(16)?);
        if aggregate {
            // An aggregate is only ever a handler: of one relation's rows, or of any rows.
            let of = if any_row { Some(None) } else { first_arg_table.map(Some) };
            if let (Some(media_type), Some(relation)) = (media_type, of) {
                let media = MediaDomain { media_type, bytes };
                cache.media_aggregates.push(MediaAggregate { schema, name, media, relation });
            }
            continue;
        }
        // (name, variadic) of each input argument, in order.
        let inputs: Vec<(String, bool)> = if modes.is_empty() {
            (0..types.len()).map(|i| (names.get(i).cloned().unwrap_or_default(), false)).collect()
        } else {
            modes
                .iter()
                .enumerate()
                .filter(|(_, m)| matches!(m.as_str(), "i" | "b" | "v"))
                .map(|(i, m)| (names.get(i).cloned().unwrap_or_default(), m == "v"))
                .collect()
        };
        let first_default = types.len().saturating_sub(usize::try_from(ndefaults).unwrap_or(0));
        let args = types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (name, variadic) = inputs.get(i).cloned().unwrap_or_default();
                Arg { name, data_type: t.clone(), has_default: i >= first_default, variadic }
            })
            .collect();
        let returns = match ret.as_str() {
            "v" => Returns::Void,
            "c" => Returns::Composite,
            _ => Returns::Scalar,
        };
        let f = Function {
            schema: schema.clone(),
            name: name.clone(),
            args,
            returns_set,
            returns,
            volatility: volatility.chars().next().unwrap_or('v'),
            first_arg_table,
            returns_table,
            // One value only: a set of them has no one body to be.
            media: media_type.filter(|_| !returns_set).map(|media_type| MediaDomain { media_type, bytes }),
        };
        cache.functions.entry((schema, name)).or_default().push(f);
    }
    for f in cache.functions.values().flatten() {
        let field = f.args.len() == 1 && !f.returns_set && f.returns != Returns::Void;
        if let Some(t) = f.first_arg_table.as_ref().filter(|_| field).and_then(|k| loaded.get_mut(k)) {
            if !t.computed.contains(&f.name) {
                t.computed.push(f.name.clone());
            }
        }
    }
    cache.tables = loaded.into_iter().map(|(k, t)| (k, Arc::new(t))).collect();
    Ok(cache)
}

/// Listens on channel `pgrst` on its own connection and calls `reload`
/// after connecting and on every `reload schema` (or empty) payload.
/// Reconnects with backoff; returns once `alive()` is false.
pub async fn listen<F, Fut>(url: String, reload: F, alive: impl Fn() -> bool)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_util::StreamExt;
    let mut backoff = Duration::from_millis(100);
    while alive() {
        let connected = async {
            let (client, mut conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
            let driver = tokio::spawn(async move {
                let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                while let Some(msg) = stream.next().await {
                    match msg {
                        Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                            // A full queue already holds a pending reload.
                            let _ = tx.try_send(n.payload().to_owned());
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "schema-cache listener connection lost");
                            break;
                        }
                    }
                }
            });
            client.batch_execute("listen pgrst").await?;
            Ok::<_, tokio_postgres::Error>((client, rx, driver))
        }
        .await;
        match connected {
            Ok((_client, mut rx, driver)) => {
                backoff = Duration::from_millis(100);
                reload().await;
                while let Some(payload) = rx.recv().await {
                    if !alive() {
                        break;
                    }
                    // Coalesce a burst of DDL into one reload.
                    while rx.try_recv().is_ok() {}
                    if payload.is_empty() || payload == "reload schema" {
                        reload().await;
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "schema-cache listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Shared, swappable cache.
pub type Shared = Arc<arc_swap_lite::Slot>;

/// A minimal "current value" slot: readers clone an `Arc`, the reloader swaps it.
pub mod arc_swap_lite {
    use std::sync::{Arc, RwLock};

    use super::SchemaCache;

    /// Holds the current cache, if loaded.
    #[derive(Debug, Default)]
    pub struct Slot(RwLock<Option<Arc<SchemaCache>>>);

    impl Slot {
        /// The current cache.
        pub fn get(&self) -> Option<Arc<SchemaCache>> {
            self.0.read().ok().and_then(|g| g.clone())
        }

        /// Replaces the cache.
        pub fn set(&self, cache: SchemaCache) {
            if let Ok(mut g) = self.0.write() {
                *g = Some(Arc::new(cache));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_names() {
        let mut c = SchemaCache::default();
        for n in ["todos", "users"] {
            c.tables.insert(("public".into(), n.into()), Arc::new(Table { schema: "public".into(), name: n.into(), kind: 'r', columns: vec![], pk: vec![], computed: vec![] }));
        }
        assert_eq!(c.similar_table("public", "todo").as_deref(), Some("public.todos"));
        assert_eq!(c.similar_table("public", "zzzzzzzzzz"), None);
    }
}
