//! Writes: INSERT (and upsert), UPDATE and DELETE as one statement each,
//! the modified rows in a `pgrst_source` CTE that the returned
//! representation is selected from.
//!
//! RETURNING is only added when something is returned (representation,
//! headers-only, a count or a single-object check), because RETURNING
//! subjects the new rows to SELECT policies: an insert-only RLS table must
//! accept `return=minimal` inserts, as with PostgREST.

use serde_json::{Map, Value};

use super::read::{logic_in, parts, wrap, Body, WriteExtras, RESPONSE_SETTINGS};
use super::values::{self, Cell};
use super::{ident, qualified, Sql};
use crate::rest::plan::Node;
use crate::rest::schema_cache::Table;

/// What happens on a key conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// `resolution=merge-duplicates`: update the conflicting row.
    Merge(Vec<String>),
    /// `resolution=ignore-duplicates`: keep the existing row.
    Ignore(Vec<String>),
}

/// How the statement's result is used.
#[derive(Debug, Clone, Copy)]
pub struct Returning {
    /// Whether any row data comes back (adds RETURNING).
    pub rows: bool,
    /// The body to build (JSON or GeoJSON for `return=representation`).
    pub body: Body,
    /// Abort unless exactly one row was affected (`vnd.pgrst.object+json`).
    pub single: bool,
    /// Abort when more rows than this were affected (`Prefer: handling=strict, max-affected=n`).
    pub max_affected: Option<i64>,
}

/// Marker in the error raised by the single-row guard.
pub const SINGLE_GUARD: &str = "pgrst_single_guard:";
/// Marker in the error raised by the max-affected guard.
pub const MAX_AFFECTED_GUARD: &str = "pgrst_max_affected_guard:";

/// How an upsert tells the rows it inserted from those it updated (for
/// 201 against 200). A table's row has `xmax = 0` when the statement
/// inserted it.
const INSERTED_BY_XMAX: &str = "(select count(*) from pgrst_source where pgrst_inserted)";

/// A view (or foreign table) has no `xmax`: the `DO UPDATE` counts the rows
/// it updates in a transaction-local setting ([`COUNT_UPDATED`], its
/// `WHERE`, always true), and the rest were inserted. The count is read in
/// the aggregate's result, after every row of the statement.
const INSERTED_BY_COUNT: &str =
    "(select count(*) - coalesce(nullif(current_setting('pgrst.updated', true), '')::int8, 0) from pgrst_source)";

/// See [`INSERTED_BY_COUNT`].
const COUNT_UPDATED: &str =
    "set_config('pgrst.updated', (coalesce(nullif(current_setting('pgrst.updated', true), '')::int8, 0) + 1)::text, true) is not null";

/// `inserted`: for an upsert, how to count the rows it inserted.
fn finish(b: Sql, table: &Table, node: &Node, cte: String, ret: Returning, inserted: Option<&str>) -> Sql {
    let mut b = b;
    if !ret.rows {
        // Counting the rows runs the write to completion (its triggers
        // too) before the response settings are read.
        let text = format!(
            "with pgrst_source as ({cte} returning 1) select 0::int8, null::int8, null::text, null::int8, null::text, \
             {RESPONSE_SETTINGS} from (select count(*) from pgrst_source) as _pgrst_n"
        );
        return super::read::b_finish(b, text);
    }
    let mut shown = node.clone();
    shown.filters.clear();
    shown.order.clear();
    shown.range = Default::default();
    let alias = b.alias();
    let inner = parts(&mut b, &shown, &alias, None).render("pgrst_source", &alias);
    let location = if table.pk.is_empty() {
        "null".to_owned()
    } else {
        let cols: Vec<String> = table.pk.iter().map(|c| ident(c)).collect();
        format!("(select row_to_json(_l) from (select {} from pgrst_source limit 1) as _l)::text", cols.join(", "))
    };
    // The guards raise an error (a failing cast naming the row count) inside
    // the statement, so the transaction is rolled back before COMMIT.
    let mut guards = String::new();
    if ret.single {
        guards.push_str(&format!(" when count(*) <> 1 then cast('{SINGLE_GUARD}' || count(*) as int4)::text"));
    }
    if let Some(n) = ret.max_affected {
        guards.push_str(&format!(" when count(*) > {n} then cast('{MAX_AFFECTED_GUARD}' || count(*) as int4)::text"));
    }
    let location = if guards.is_empty() { location } else { format!("case{guards} else {location} end") };
    let extras = WriteExtras {
        with: Some(format!("with pgrst_source as ({cte}) ")),
        inserted: inserted.map(str::to_owned),
        location: Some(location),
    };
    let text = wrap(&inner, None, &extras, ret.body);
    super::read::b_finish(b, text)
}

/// Where a write's values come from.
#[derive(Debug)]
pub enum Rows<'a> {
    /// JSON text read with `json_populate_record`, as PostgREST reads it:
    /// an array of objects for an insert, one object for an update.
    Json(String),
    /// One object's cells, one per column ([`values::bind_row`]).
    One(Vec<Cell<'a>>),
}

impl<'a> Rows<'a> {
    /// The rows of an insert: one bindable object as its cells, else the
    /// objects as one JSON array.
    pub fn of(table: &'a Table, columns: &[String], objects: &[&Map<String, Value>], missing_default: bool) -> Rows<'a> {
        let one = match objects {
            [object] => values::bind_row(table, columns, object, missing_default),
            _ => None,
        };
        one.map_or_else(|| Rows::Json(Value::Array(objects.iter().map(|o| Value::Object((*o).clone())).collect()).to_string()), Rows::One)
    }
}

/// `INSERT … VALUES (…)` for one bindable object, else `INSERT … SELECT …
/// FROM json_array_elements($1)`; `columns` the keys to insert. With
/// `missing_default`, a key absent from an object takes the column default
/// instead of NULL.
pub fn insert(
    table: &Table,
    node: &Node,
    rows: Rows<'_>,
    columns: &[String],
    missing_default: bool,
    conflict: Option<&Conflict>,
    ret: Returning,
) -> Sql {
    let mut b = Sql::default();
    let target = qualified(&table.schema, &table.name);
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let mut cte = match rows {
        Rows::One(_) if columns.is_empty() => format!("insert into {target} default values"),
        // No keys in any object: a row of defaults per element, as PostgREST's
        // `INSERT INTO t SELECT FROM …` (`[{}, {}]` is two rows).
        Rows::Json(body) if columns.is_empty() => {
            format!("insert into {target} select from json_array_elements({}::json)", b.param(body))
        }
        Rows::One(cells) => {
            format!("insert into {target} ({}) {}", cols.join(", "), values::values_row(&mut b, cells))
        }
        Rows::Json(body) => {
            let p = b.param(body);
            let exprs: Vec<String> = columns
                .iter()
                .map(|c| {
                    let plain = format!("_pgrst_r.{}", ident(c));
                    if missing_default {
                        let default = table.column(c).and_then(|col| col.default.clone()).unwrap_or_else(|| "null".into());
                        format!("case when _pgrst_j.v::jsonb ? {}::text then {plain} else {default} end", b.param(c.clone()))
                    } else {
                        plain
                    }
                })
                .collect();
            format!(
                "insert into {target} ({}) select {} from json_array_elements({p}::json) as _pgrst_j(v) \
                 cross join lateral json_populate_record(null::{target}, _pgrst_j.v) as _pgrst_r",
                cols.join(", "),
                exprs.join(", ")
            )
        }
    };
    // Whether the target has `xmax` (see [`INSERTED_BY_XMAX`]).
    let xmax = matches!(table.kind, 'r' | 'p');
    match conflict {
        Some(Conflict::Merge(keys)) => {
            let keys: Vec<String> = keys.iter().map(|k| ident(k)).collect();
            let sets: Vec<String> = columns.iter().map(|c| format!("{0} = excluded.{0}", ident(c))).collect();
            if sets.is_empty() {
                cte.push_str(&format!(" on conflict ({}) do nothing", keys.join(", ")));
            } else {
                cte.push_str(&format!(" on conflict ({}) do update set {}", keys.join(", "), sets.join(", ")));
                if !xmax && ret.rows {
                    cte.push_str(&format!(" where {COUNT_UPDATED}"));
                }
            }
        }
        Some(Conflict::Ignore(keys)) if keys.is_empty() => cte.push_str(" on conflict do nothing"),
        Some(Conflict::Ignore(keys)) => {
            let keys: Vec<String> = keys.iter().map(|k| ident(k)).collect();
            cte.push_str(&format!(" on conflict ({}) do nothing", keys.join(", ")));
        }
        None => {}
    }
    let upsert = conflict.is_some();
    if ret.rows {
        cte.push_str(&format!(" returning {target}.*"));
        if upsert && xmax {
            cte.push_str(&format!(", ({target}.xmax = 0) as pgrst_inserted"));
        }
    }
    let inserted = upsert.then_some(if xmax { INSERTED_BY_XMAX } else { INSERTED_BY_COUNT });
    finish(b, table, node, cte, ret, inserted)
}

/// `UPDATE … SET col = $n::type …` for a bindable object, else `SET col =
/// (json_populate_record($1)).col …`; then `WHERE filters`.
pub fn update(table: &Table, node: &Node, rows: Rows<'_>, columns: &[String], ret: Returning) -> Sql {
    let mut b = Sql::default();
    let target = qualified(&table.schema, &table.name);
    let alias = b.alias();
    let (sets, from): (Vec<String>, String) = match rows {
        Rows::One(cells) => {
            let exprs = values::exprs(&mut b, cells);
            (columns.iter().zip(exprs).map(|(c, e)| format!("{} = {e}", ident(c))).collect(), String::new())
        }
        Rows::Json(body) => {
            let p = b.param(body);
            let sets = columns.iter().map(|c| format!("{0} = _pgrst_r.{0}", ident(c))).collect();
            (sets, format!(" from json_populate_record(null::{target}, {p}::json) as _pgrst_r"))
        }
    };
    let mut conds: Vec<String> = node.filters.iter().map(|l| logic_in(&mut b, &alias, Some(table), &node.items, l)).collect();
    conds.extend(limited(&mut b, table, node, &alias));
    let mut cte = format!("update {target} as {alias} set {}{from}", sets.join(", "));
    if !conds.is_empty() {
        cte.push_str(&format!(" where {}", conds.join(" and ")));
    }
    if ret.rows {
        cte.push_str(&format!(" returning {alias}.*"));
    }
    finish(b, table, node, cte, ret, None)
}

/// For a limited PATCH/DELETE (`limit`/`offset` with an `order`, which
/// the handler requires): the rows are the first `limit` of the filtered,
/// ordered rows, picked by `ctid` (tables) or the primary key (views).
fn limited(b: &mut Sql, table: &Table, node: &Node, alias: &str) -> Option<String> {
    let r = node.range;
    if r.limit.is_none() && r.offset.is_none() {
        return None;
    }
    let target = qualified(&table.schema, &table.name);
    let ia = b.alias();
    let mut conds: Vec<String> = node.filters.iter().map(|l| logic_in(b, &ia, Some(table), &node.items, l)).collect();
    if conds.is_empty() {
        conds.push("true".to_owned());
    }
    let order: Vec<String> = node
        .order
        .iter()
        .map(|o| {
            let nulls = match o.nulls_first {
                Some(true) => " nulls first",
                Some(false) => " nulls last",
                None => "",
            };
            format!("{} {}{nulls}", super::read::field_expr(b, &ia, &o.field), if o.desc { "desc" } else { "asc" })
        })
        .collect();
    let key: Vec<String> = if matches!(table.kind, 'r' | 'p') || table.pk.is_empty() {
        vec!["ctid".to_owned()]
    } else {
        table.pk.iter().map(|c| ident(c)).collect()
    };
    let outer: Vec<String> = key.iter().map(|k| format!("{alias}.{k}")).collect();
    let inner: Vec<String> = key.iter().map(|k| format!("{ia}.{k}")).collect();
    let mut sub = format!("select {} from {target} as {ia} where {}", inner.join(", "), conds.join(" and "));
    if !order.is_empty() {
        sub.push_str(&format!(" order by {}", order.join(", ")));
    }
    if let Some(l) = r.limit {
        sub.push_str(&format!(" limit {l}"));
    }
    if let Some(o) = r.offset.filter(|o| *o > 0) {
        sub.push_str(&format!(" offset {o}"));
    }
    Some(format!("({}) in ({sub})", outer.join(", ")))
}

/// `DELETE … WHERE filters`.
pub fn delete(table: &Table, node: &Node, ret: Returning) -> Sql {
    let mut b = Sql::default();
    let target = qualified(&table.schema, &table.name);
    let alias = b.alias();
    let mut conds: Vec<String> = node.filters.iter().map(|l| logic_in(&mut b, &alias, Some(table), &node.items, l)).collect();
    conds.extend(limited(&mut b, table, node, &alias));
    let mut cte = format!("delete from {target} as {alias}");
    if !conds.is_empty() {
        cte.push_str(&format!(" where {}", conds.join(" and ")));
    }
    if ret.rows {
        cte.push_str(&format!(" returning {alias}.*"));
    }
    finish(b, table, node, cte, ret, None)
}
