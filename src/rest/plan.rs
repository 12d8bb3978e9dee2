//! Planning: the parsed query checked against the schema cache. Tables,
//! columns and relationships are resolved here, so SQL generation only
//! ever sees names that exist (and quotes them anyway).
//!
//! Errors as PostgREST: unknown table PGRST205 (with a "perhaps you meant"
//! hint), unknown column 42703, no relationship PGRST200, ambiguous
//! relationship PGRST201, filters on resources that are not embedded
//! PGRST108.

use std::collections::BTreeSet;
use std::sync::Arc;

use http::StatusCode;

use crate::rest::errors::RestError;
use crate::rest::query::filter::{Logic, OrderTerm};
use crate::rest::query::select::{Aggregate, Embed, SelectItem};
use crate::rest::query::{ApiQuery, Field, Range};
use crate::rest::schema_cache::{SchemaCache, Table};

/// One resource level of a read: the root, or an embed.
#[derive(Debug, Clone)]
pub struct Node {
    /// Schema.
    pub schema: String,
    /// Table or view (or function) name.
    pub name: String,
    /// The table, when the resource is one (not for RPC results).
    pub table: Option<Arc<Table>>,
    /// What to select.
    pub items: Vec<Item>,
    /// Filters, ANDed.
    pub filters: Vec<Logic>,
    /// Order.
    pub order: Vec<OrderTerm>,
    /// Range.
    pub range: Range,
}

impl Node {
    /// Whether any item aggregates (then the others are grouped by).
    pub fn has_aggregates(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Count { .. } | Item::Column { aggregate: Some(_), .. }))
    }
}

/// The embed whose output key is `key` among `items`.
pub fn find_embed<'a>(items: &'a [Item], key: &str) -> Option<&'a EmbedNode> {
    items.iter().find_map(|i| match i {
        Item::Embed(e) if e.key == key => Some(&**e),
        _ => None,
    })
}

/// A resolved select item.
#[derive(Debug, Clone)]
pub enum Item {
    /// Every column.
    Star,
    /// A column or JSON path.
    Column {
        /// The field.
        field: Field,
        /// Output name.
        alias: Option<String>,
        /// Cast.
        cast: Option<String>,
        /// Aggregate.
        aggregate: Option<Aggregate>,
        /// Cast of the aggregate.
        aggregate_cast: Option<String>,
    },
    /// `count()`
    Count {
        /// Output name.
        alias: Option<String>,
        /// Cast.
        cast: Option<String>,
    },
    /// An embedded resource.
    Embed(Box<EmbedNode>),
}

/// An embed with its relationship.
#[derive(Debug, Clone)]
pub struct EmbedNode {
    /// Output key.
    pub key: String,
    /// `...`
    pub spread: bool,
    /// `!inner`
    pub inner: bool,
    /// How it joins to its parent.
    pub rel: Rel,
    /// The embedded level.
    pub node: Node,
}

/// How an embedded table joins to its parent.
#[derive(Debug, Clone)]
pub enum Rel {
    /// Direct foreign key: `(parent column, target column)` pairs.
    Direct {
        /// Column pairs.
        pairs: Vec<(String, String)>,
        /// Yields at most one row (many-to-one, or one-to-one).
        to_one: bool,
    },
    /// A computed relationship: a function taking the parent's row.
    Computed {
        /// The function (schema, name).
        function: (String, String),
        /// It returns one row rather than a set.
        to_one: bool,
    },
    /// Through a junction table.
    Junction {
        /// The junction table (schema, name).
        junction: (String, String),
        /// `(junction column, parent column)` pairs.
        to_parent: Vec<(String, String)>,
        /// `(junction column, target column)` pairs.
        to_target: Vec<(String, String)>,
    },
}

impl Rel {
    /// Whether the embed is an object rather than an array.
    pub fn to_one(&self) -> bool {
        matches!(self, Rel::Direct { to_one: true, .. } | Rel::Computed { to_one: true, .. })
    }
}

/// Looks up a table, or the PGRST205 error for it.
pub fn table<'a>(cache: &'a SchemaCache, schema: &str, name: &str) -> Result<&'a Arc<Table>, RestError> {
    cache.table(schema, name).ok_or_else(|| {
        RestError::NoTable(
            format!("{schema}.{name}"),
            cache.similar_table(schema, name).map(|t| format!("Perhaps you meant the table '{t}'")),
        )
    })
}

/// Checks that `field` is a column or computed field of `table` (42703
/// otherwise).
pub fn check_column(table: Option<&Table>, field: &Field) -> Result<(), RestError> {
    if let Some(t) = table {
        if !t.has_field(&field.name) {
            return Err(RestError::NoColumn { column: field.name.clone(), table: t.name.clone() });
        }
    }
    Ok(())
}

/// Whether a filter tree names an embedded resource.
fn names_relation(l: &Logic) -> bool {
    match l {
        Logic::Cond(c) => c.relation.is_some(),
        Logic::Group { items, .. } => items.iter().any(names_relation),
    }
}

/// Checks a filter tree of one level whose embeds are `items`: a column of
/// the table; `rel.col` (in a logic tree) a column of the embed `rel`; or
/// `rel=is.null` / `rel=not.is.null` on an embed itself (null filtering on
/// embedded resources), which is marked here as a relation condition.
fn resolve_logic(table: &Table, items: &[Item], l: &mut Logic) -> Result<(), RestError> {
    use crate::rest::query::filter::{Op, Operand};
    let embed = |key: &str| find_embed(items, key);
    match l {
        Logic::Group { items: members, .. } => members.iter_mut().try_for_each(|m| resolve_logic(table, items, m)),
        Logic::Cond(c) => match &c.relation {
            Some(rel) => match embed(rel) {
                Some(e) => check_column(e.node.table.as_deref(), &c.field),
                None => Err(RestError::Refused {
                    code: "PGRST108",
                    status: StatusCode::BAD_REQUEST,
                    message: format!("'{rel}' is not an embedded resource in this request"),
                    details: None,
                }),
            },
            None if table.has_field(&c.field.name) => Ok(()),
            None => {
                let null_check = c.field.json.is_empty() && c.op == Op::Is && matches!(c.operand, Operand::Is(_));
                if null_check && embed(&c.field.name).is_some() {
                    c.relation = Some(std::mem::take(&mut c.field.name));
                    return Ok(());
                }
                check_column(Some(table), &c.field)
            }
        },
    }
}

/// Plans the read part of a request on `table` (for writes: what is returned).
pub fn plan(cache: &SchemaCache, table: &Arc<Table>, q: &ApiQuery) -> Result<Node, RestError> {
    let default = [SelectItem::Star];
    let items = q.select.as_deref().unwrap_or(&default);
    let mut seen = BTreeSet::new();
    let node = build(cache, table, items, &[], q, &mut seen)?;
    // Filters, order and ranges must name embedded resources.
    let used = q.filters.iter().map(|(p, _)| p).chain(q.order.keys()).chain(q.ranges.keys());
    for p in used {
        if !p.is_empty() && !seen.contains(p) {
            return Err(RestError::Refused {
                code: "PGRST108",
                status: StatusCode::BAD_REQUEST,
                message: format!("'{}' is not an embedded resource in this request", p.join(".")),
                details: None,
            });
        }
    }
    Ok(node)
}

/// A node for a resource without a table in the cache (an RPC result):
/// columns are not checked, embeds are not possible.
pub fn plan_untyped(schema: &str, name: &str, q: &ApiQuery) -> Result<Node, RestError> {
    let mut items = Vec::new();
    for i in q.select.clone().unwrap_or_else(|| vec![SelectItem::Star]) {
        items.push(match i {
            SelectItem::Star => Item::Star,
            SelectItem::Column { field, alias, cast, aggregate, aggregate_cast } => {
                Item::Column { field, alias, cast, aggregate, aggregate_cast }
            }
            SelectItem::Count { alias, cast } => Item::Count { alias, cast },
            SelectItem::Embed(e) => return Err(RestError::NoRelationship(name.to_owned(), e.name, None)),
        });
    }
    if q.filters.iter().any(|(p, l)| !p.is_empty() || names_relation(l)) {
        return Err(RestError::parse("\"failed to parse filter\"", "RPC results cannot be filtered on embedded resources"));
    }
    Ok(Node {
        schema: schema.to_owned(),
        name: name.to_owned(),
        table: None,
        items,
        filters: q.filters.iter().map(|(_, l)| l.clone()).collect(),
        order: q.order.get(&Vec::new()).cloned().unwrap_or_default(),
        range: q.ranges.get(&Vec::new()).copied().unwrap_or_default(),
    })
}

fn build(
    cache: &SchemaCache,
    table: &Arc<Table>,
    items: &[SelectItem],
    path: &[String],
    q: &ApiQuery,
    seen: &mut BTreeSet<Vec<String>>,
) -> Result<Node, RestError> {
    let mut out = Vec::new();
    for item in items {
        out.push(match item {
            SelectItem::Star => Item::Star,
            SelectItem::Column { field, alias, cast, aggregate, aggregate_cast } => {
                check_column(Some(table), field)?;
                Item::Column {
                    field: field.clone(),
                    alias: alias.clone(),
                    cast: cast.clone(),
                    aggregate: *aggregate,
                    aggregate_cast: aggregate_cast.clone(),
                }
            }
            SelectItem::Count { alias, cast } => Item::Count { alias: alias.clone(), cast: cast.clone() },
            SelectItem::Embed(e) => {
                let (target, rel) = relationship(cache, table, e)?;
                // A to-many spread (PostgREST 13) turns each of its columns into an array.
                let mut sub = path.to_vec();
                sub.push(e.key().to_owned());
                seen.insert(sub.clone());
                let items = if e.items.is_empty() { vec![] } else { e.items.clone() };
                let node = build(cache, &target, &items, &sub, q, seen)?;
                Item::Embed(Box::new(EmbedNode { key: e.key().to_owned(), spread: e.spread, inner: e.inner, rel, node }))
            }
        });
    }
    let mut filters: Vec<Logic> = q.filters.iter().filter(|(p, _)| p == path).map(|(_, l)| l.clone()).collect();
    for l in &mut filters {
        resolve_logic(table, &out, l)?;
    }
    let order = q.order.get(path).cloned().unwrap_or_default();
    for o in &order {
        match &o.relation {
            None => check_column(Some(table), &o.field)?,
            Some(rel) => check_related_order(table, &out, rel, &o.field)?,
        }
    }
    Ok(Node {
        schema: table.schema.clone(),
        name: table.name.clone(),
        table: Some(Arc::clone(table)),
        items: out,
        filters,
        order,
        range: q.ranges.get(path).copied().unwrap_or_default(),
    })
}

/// A related order `rel(col)` needs `rel` embedded at this level as a
/// to-one resource (PGRST108 / PGRST118 otherwise) and `col` to exist on it.
fn check_related_order(table: &Table, items: &[Item], rel: &str, field: &Field) -> Result<(), RestError> {
    let Some(e) = find_embed(items, rel) else {
        return Err(RestError::Refused {
            code: "PGRST108",
            status: StatusCode::BAD_REQUEST,
            message: format!("'{rel}' is not an embedded resource in this request"),
            details: None,
        });
    };
    if !e.rel.to_one() {
        return Err(RestError::Refused {
            code: "PGRST118",
            status: StatusCode::BAD_REQUEST,
            message: format!("A related order on '{rel}' is not possible"),
            details: Some(format!("'{}' and '{rel}' do not form a many-to-one or one-to-one relationship", table.name)),
        });
    }
    check_column(e.node.table.as_deref(), field)
}

/// Finds the one relationship `embed` names from `parent`.
fn relationship(cache: &SchemaCache, parent: &Table, embed: &Embed) -> Result<(Arc<Table>, Rel), RestError> {
    let pkey = (parent.schema.clone(), parent.name.clone());
    let mut candidates: Vec<(Arc<Table>, Rel, String)> = Vec::new();
    let target = cache.table(&parent.schema, &embed.name);
    let hint_ok = |names: &[&str]| embed.hint.as_deref().is_none_or(|h| names.contains(&h));
    match target {
        Some(target) => {
            let tkey = (target.schema.clone(), target.name.clone());
            for fk in &cache.foreign_keys {
                let cols: Vec<&str> = fk.columns.iter().map(String::as_str).collect();
                let mut names = vec![fk.name.as_str()];
                names.extend(cols.iter().copied());
                if fk.table == pkey && fk.ref_table == tkey && hint_ok(&names) {
                    let pairs = fk.columns.iter().cloned().zip(fk.ref_columns.iter().cloned()).collect();
                    candidates.push((Arc::clone(target), Rel::Direct { pairs, to_one: true }, format!("many-to-one using {}", fk.name)));
                }
                if fk.table == tkey && fk.ref_table == pkey && hint_ok(&names) {
                    let mut fcols = fk.columns.clone();
                    fcols.sort();
                    let mut pk = target.pk.clone();
                    pk.sort();
                    let to_one = !pk.is_empty() && fcols == pk;
                    let pairs = fk.ref_columns.iter().cloned().zip(fk.columns.iter().cloned()).collect();
                    let kind = if to_one { "one-to-one" } else { "one-to-many" };
                    candidates.push((Arc::clone(target), Rel::Direct { pairs, to_one }, format!("{kind} using {}", fk.name)));
                }
            }
            // Many-to-many through junction tables.
            for f1 in cache.foreign_keys.iter().filter(|f| f.ref_table == pkey && f.table != pkey && f.table != tkey) {
                for f2 in cache.foreign_keys.iter().filter(|f| f.table == f1.table && f.ref_table == tkey && f.name != f1.name) {
                    let names = [f1.table.1.as_str(), f1.name.as_str(), f2.name.as_str()];
                    if !hint_ok(&names) {
                        continue;
                    }
                    candidates.push((
                        Arc::clone(target),
                        Rel::Junction {
                            junction: f1.table.clone(),
                            to_parent: f1.columns.iter().cloned().zip(f1.ref_columns.iter().cloned()).collect(),
                            to_target: f2.columns.iter().cloned().zip(f2.ref_columns.iter().cloned()).collect(),
                        },
                        format!("many-to-many using {}.{}", f1.table.0, f1.table.1),
                    ));
                }
            }
        }
        None => {
            // `fk_column(…)` or `fk_name(…)`: many-to-one by the key's name.
            for fk in cache.foreign_keys.iter().filter(|f| f.table == pkey) {
                let by_col = fk.columns.len() == 1 && fk.columns[0] == embed.name;
                if by_col || fk.name == embed.name {
                    if let Some(t) = cache.table(&fk.ref_table.0, &fk.ref_table.1) {
                        let pairs = fk.columns.iter().cloned().zip(fk.ref_columns.iter().cloned()).collect();
                        candidates.push((Arc::clone(t), Rel::Direct { pairs, to_one: true }, format!("many-to-one using {}", fk.name)));
                    }
                }
            }
        }
    }
    // Computed relationships: `fn(parent_row) returns [setof] table`, named by the function.
    if let Some(overloads) = cache.functions.get(&(parent.schema.clone(), embed.name.clone())) {
        for f in overloads.iter().filter(|f| f.args.len() == 1 && f.first_arg_table.as_ref() == Some(&pkey)) {
            if let Some(t) = f.returns_table.as_ref().and_then(|(s, n)| cache.table(s, n)) {
                let rel = Rel::Computed { function: (f.schema.clone(), f.name.clone()), to_one: !f.returns_set };
                candidates.push((Arc::clone(t), rel, format!("computed relationship {}.{}", f.schema, f.name)));
            }
        }
    }
    // Direct relationships win over junctions when both match (PostgREST does the same).
    if candidates.len() > 1 && candidates.iter().any(|c| matches!(c.1, Rel::Direct { .. })) {
        candidates.retain(|c| matches!(c.1, Rel::Direct { .. }));
    }
    match candidates.len() {
        0 => Err(RestError::NoRelationship(
            parent.name.clone(),
            embed.name.clone(),
            embed.hint.as_ref().map(|h| format!("Perhaps you meant a different hint than '{h}'")),
        )),
        1 => {
            let (t, r, _) = candidates.remove(0);
            Ok((t, r))
        }
        _ => Err(RestError::AmbiguousRelationship(
            parent.name.clone(),
            embed.name.clone(),
            candidates.into_iter().map(|c| c.2).collect(),
        )),
    }
}
