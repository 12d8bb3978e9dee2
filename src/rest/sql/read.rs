//! Reads: the select list (columns, casts, JSON paths, aggregates, embeds
//! as correlated subqueries or lateral joins for spreads), filters, order,
//! ranges, and the wrapper that turns rows into one JSON body plus counts.

use super::{cast_type, ident, qualified, Sql};
use crate::rest::plan::{find_embed, EmbedNode, Item, Node, Rel};
use crate::rest::query::filter::{Condition, IsValue, Logic, Op, Operand, Quantifier};
use crate::rest::query::Field;
use crate::rest::schema_cache::{MediaAggregate, Table};

/// The parts of one level's SELECT.
#[derive(Debug, Default)]
pub struct Parts {
    /// Select list.
    pub cols: Vec<String>,
    /// Lateral joins (spreads).
    pub joins: Vec<String>,
    /// WHERE conditions (ANDed).
    pub conds: Vec<String>,
    /// GROUP BY positions.
    pub group: Vec<usize>,
    /// ORDER BY terms.
    pub order: Vec<String>,
    /// LIMIT / OFFSET (already validated integers).
    pub limit: Option<i64>,
    /// OFFSET.
    pub offset: Option<i64>,
}

impl Parts {
    /// `select … from <from> as <alias> … where … group by … order by … limit … offset …`.
    pub fn render(&self, from: &str, alias: &str) -> String {
        let mut s = format!("select {} from {from} as {alias}", if self.cols.is_empty() { "null".into() } else { self.cols.join(", ") });
        for j in &self.joins {
            s.push(' ');
            s.push_str(j);
        }
        s.push_str(&self.where_clause());
        if !self.group.is_empty() {
            s.push_str(" group by ");
            s.push_str(&self.group.iter().map(usize::to_string).collect::<Vec<_>>().join(", "));
        }
        if !self.order.is_empty() {
            s.push_str(" order by ");
            s.push_str(&self.order.join(", "));
        }
        if let Some(l) = self.limit {
            s.push_str(&format!(" limit {l}"));
        }
        if let Some(o) = self.offset {
            s.push_str(&format!(" offset {o}"));
        }
        s
    }

    /// ` where a and b`, or nothing.
    pub fn where_clause(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!(" where {}", self.conds.join(" and "))
        }
    }
}

/// `alias."col"->$n::text->>$m::text`.
pub fn field_expr(b: &mut Sql, alias: &str, f: &Field) -> String {
    let mut e = format!("{alias}.{}", ident(&f.name));
    for step in &f.json {
        let op = if step.as_text { "->>" } else { "->" };
        let key = match step.index() {
            Some(i) => format!("{}::int4", b.param(i.to_string())),
            None => format!("{}::text", b.param(step.key.clone())),
        };
        e = format!("{e}{op}{key}");
    }
    e
}

/// Everything of one level except FROM: `join` is the condition tying it
/// to its parent, if it has one.
pub fn parts(b: &mut Sql, node: &Node, alias: &str, join: Option<String>) -> Parts {
    let mut p = Parts::default();
    let mut groupable = Vec::new();
    for item in &node.items {
        let before = p.cols.len();
        let is_aggregate = matches!(item, Item::Count { .. } | Item::Column { aggregate: Some(_), .. });
        match item {
            Item::Star => match &node.table {
                Some(t) => p.cols.extend(t.columns.iter().map(|c| format!("{alias}.{}", ident(&c.name)))),
                None => p.cols.push(format!("{alias}.*")),
            },
            Item::Column { field, alias: out, cast, aggregate, aggregate_cast } => {
                let mut e = field_expr(b, alias, field);
                if let Some(c) = cast {
                    e = format!("cast({e} as {})", cast_type(c));
                }
                let mut name = out.clone().unwrap_or_else(|| field.output_name());
                if let Some(a) = aggregate {
                    e = format!("{}({e})", a.sql());
                    if let Some(c) = aggregate_cast {
                        e = format!("cast({e} as {})", cast_type(c));
                    }
                    if out.is_none() {
                        name = a.sql().to_owned();
                    }
                }
                p.cols.push(format!("{e} as {}", ident(&name)));
            }
            Item::Count { alias: out, cast } => {
                let mut e = "count(*)".to_owned();
                if let Some(c) = cast {
                    e = format!("cast({e} as {})", cast_type(c));
                }
                p.cols.push(format!("{e} as {}", ident(out.as_deref().unwrap_or("count"))));
            }
            Item::Embed(e) => embed(b, e, alias, &mut p),
        }
        if !is_aggregate {
            groupable.extend(before + 1..=p.cols.len());
        }
    }
    if node.has_aggregates() {
        p.group = groupable;
    }
    if let Some(j) = join {
        p.conds.push(j);
    }
    for l in &node.filters {
        let c = logic_in(b, alias, node.table.as_deref(), &node.items, l);
        p.conds.push(c);
    }
    for o in &node.order {
        let expr = match &o.relation {
            None => field_expr(b, alias, &o.field),
            Some(rel) => related_expr(b, node, alias, rel, &o.field),
        };
        let mut e = format!("{expr} {}", if o.desc { "desc" } else { "asc" });
        match o.nulls_first {
            Some(true) => e.push_str(" nulls first"),
            Some(false) => e.push_str(" nulls last"),
            None => {}
        }
        p.order.push(e);
    }
    p.limit = node.range.limit;
    p.offset = node.range.offset.filter(|o| *o > 0);
    p
}

/// A related order's value: the to-one embed's column for this row (with
/// the embed's own filters), as a scalar subquery. The plan checked that
/// `rel` is a to-one embed of `node`; if it somehow is not, NULL.
fn related_expr(b: &mut Sql, node: &Node, parent: &str, rel: &str, field: &Field) -> String {
    let Some(e) = find_embed(&node.items, rel) else { return "null".to_owned() };
    let from = embed_from(e, parent);
    let ra = b.alias();
    let mut conds = vec![join_condition(b, &e.rel, parent, &ra)];
    for l in &e.node.filters {
        conds.push(logic(b, &ra, e.node.table.as_deref(), l));
    }
    let col = field_expr(b, &ra, field);
    format!("(select {col} from {from} as {ra} where {} limit 1)", conds.join(" and "))
}

/// Where an embed's rows come from, correlated with the row `parent`: its
/// table, or for a computed relationship its function of the parent's whole
/// row.
fn embed_from(e: &EmbedNode, parent: &str) -> String {
    match &e.rel {
        Rel::Computed { function, .. } => format!("{}({parent})", qualified(&function.0, &function.1)),
        _ => qualified(&e.node.schema, &e.node.name),
    }
}

fn join_condition(b: &mut Sql, rel: &Rel, parent: &str, child: &str) -> String {
    match rel {
        Rel::Computed { .. } => "true".to_owned(),
        Rel::Direct { pairs, .. } => pairs
            .iter()
            .map(|(pc, tc)| format!("{child}.{} = {parent}.{}", ident(tc), ident(pc)))
            .collect::<Vec<_>>()
            .join(" and "),
        Rel::Junction { junction, to_parent, to_target } => {
            let ja = b.alias();
            let mut conds: Vec<String> =
                to_parent.iter().map(|(jc, pc)| format!("{ja}.{} = {parent}.{}", ident(jc), ident(pc))).collect();
            conds.extend(to_target.iter().map(|(jc, tc)| format!("{ja}.{} = {child}.{}", ident(jc), ident(tc))));
            format!("exists (select 1 from {} as {ja} where {})", qualified(&junction.0, &junction.1), conds.join(" and "))
        }
    }
}

fn embed(b: &mut Sql, e: &EmbedNode, parent: &str, p: &mut Parts) {
    let from = embed_from(e, parent);
    if e.inner {
        let ia = b.alias();
        let jc = join_condition(b, &e.rel, parent, &ia);
        let mut conds = vec![jc];
        for l in &e.node.filters {
            conds.push(logic(b, &ia, e.node.table.as_deref(), l));
        }
        p.conds.push(format!("exists (select 1 from {from} as {ia} where {})", conds.join(" and ")));
    }
    let ea = b.alias();
    let jc = join_condition(b, &e.rel, parent, &ea);
    let sub = parts(b, &e.node, &ea, Some(jc)).render(&from, &ea);
    let wrap = b.alias();
    if e.spread && e.rel.to_one() {
        p.joins.push(format!("left join lateral ({sub}) as {wrap} on true"));
        for name in output_names(&e.node) {
            p.cols.push(format!("{wrap}.{}", ident(&name)));
        }
    } else if e.spread {
        // To-many spread: one array per column, in the embed's order.
        let rows = b.alias();
        let names = output_names(&e.node);
        let aggs: Vec<String> =
            names.iter().map(|n| format!("coalesce(json_agg({rows}.{0}), '[]') as {0}", ident(n))).collect();
        let aggs = if aggs.is_empty() { "null".to_owned() } else { aggs.join(", ") };
        p.joins.push(format!("left join lateral (select {aggs} from ({sub}) as {rows}) as {wrap} on true"));
        for name in names {
            p.cols.push(format!("{wrap}.{}", ident(&name)));
        }
    } else if e.rel.to_one() {
        p.cols.push(format!("(select row_to_json({wrap}) from ({sub}) as {wrap}) as {}", ident(&e.key)));
    } else {
        p.cols.push(format!("(select coalesce(json_agg({wrap}), '[]') from ({sub}) as {wrap}) as {}", ident(&e.key)));
    }
}

/// The output column names of a level (for spreads).
fn output_names(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for item in &node.items {
        match item {
            Item::Star => {
                if let Some(t) = &node.table {
                    out.extend(t.columns.iter().map(|c| c.name.clone()));
                }
            }
            Item::Column { field, alias, aggregate, .. } => out.push(alias.clone().unwrap_or_else(|| match aggregate {
                Some(a) => a.sql().to_owned(),
                None => field.output_name(),
            })),
            Item::Count { alias, .. } => out.push(alias.clone().unwrap_or_else(|| "count".into())),
            Item::Embed(e) if e.spread => out.extend(output_names(&e.node)),
            Item::Embed(e) => out.push(e.key.clone()),
        }
    }
    out
}

/// A filter tree as SQL (on a level without embeds).
pub fn logic(b: &mut Sql, alias: &str, table: Option<&Table>, l: &Logic) -> String {
    logic_in(b, alias, table, &[], l)
}

/// A filter tree as SQL on a level whose embeds are `items`: conditions on
/// an embed (`rel.col…`, `rel.is.null`) become `exists` over it, with its
/// join and its own filters (an embed the plan did not find: `false`).
pub fn logic_in(b: &mut Sql, alias: &str, table: Option<&Table>, items: &[Item], l: &Logic) -> String {
    match l {
        Logic::Cond(c) if c.relation.is_some() => related_condition(b, alias, items, c),
        Logic::Cond(c) => condition(b, alias, table, c),
        Logic::Group { negate, or, items: members } => {
            let parts: Vec<String> = members.iter().map(|i| logic_in(b, alias, table, items, i)).collect();
            let joined = if parts.is_empty() {
                "true".to_owned()
            } else {
                format!("({})", parts.join(if *or { " or " } else { " and " }))
            };
            if *negate {
                format!("not {joined}")
            } else {
                joined
            }
        }
    }
}

fn related_condition(b: &mut Sql, parent: &str, items: &[Item], c: &Condition) -> String {
    let rel = c.relation.as_deref().unwrap_or_default();
    let Some(e) = find_embed(items, rel) else { return "false".to_owned() };
    let from = embed_from(e, parent);
    let ra = b.alias();
    let mut conds = vec![join_condition(b, &e.rel, parent, &ra)];
    for l in &e.node.filters {
        conds.push(logic_in(b, &ra, e.node.table.as_deref(), &e.node.items, l));
    }
    if c.field.name.is_empty() {
        // The embedded row itself: `is.null` = none, `not_null` = some.
        let exists = format!("exists (select 1 from {from} as {ra} where {})", conds.join(" and "));
        let base = match c.operand {
            Operand::Is(IsValue::Null) => format!("not {exists}"),
            _ => exists,
        };
        return if c.negate { format!("not ({base})") } else { base };
    }
    let mut inner = c.clone();
    inner.relation = None;
    conds.push(condition(b, &ra, e.node.table.as_deref(), &inner));
    format!("exists (select 1 from {from} as {ra} where {})", conds.join(" and "))
}

fn condition(b: &mut Sql, alias: &str, table: Option<&Table>, c: &Condition) -> String {
    let lhs = field_expr(b, alias, &c.field);
    let like = |v: &str| if matches!(c.op, Op::Like | Op::Ilike) { v.replace('*', "%") } else { v.to_owned() };
    let sql = match &c.operand {
        Operand::Value(v) => format!("{lhs} {} {}", c.op.sql(), b.param(like(v))),
        Operand::List(items) if items.is_empty() => "false".to_owned(),
        Operand::List(items) => {
            let ps: Vec<String> = items.iter().map(|i| b.param(i.clone())).collect();
            format!("{lhs} in ({})", ps.join(", "))
        }
        Operand::Is(v) => format!(
            "{lhs} is {}",
            match v {
                IsValue::Null => "null",
                IsValue::NotNull => "not null",
                IsValue::True => "true",
                IsValue::False => "false",
                IsValue::Unknown => "unknown",
            }
        ),
        Operand::Quantified(q, list) => format!(
            "{lhs} {} {}({})",
            c.op.sql(),
            match q {
                Quantifier::Any => "any",
                Quantifier::All => "all",
            },
            b.param(like(list))
        ),
        Operand::Fts(cfg, query) => {
            let is_tsvector = c.field.json.is_empty()
                && table.and_then(|t| t.column(&c.field.name)).is_some_and(|col| col.typname == "tsvector");
            let cfg = cfg.as_ref().map(|cfg| format!("{}::regconfig, ", b.param(cfg.clone())));
            let cfg = cfg.unwrap_or_default();
            let vector = if is_tsvector { lhs } else { format!("to_tsvector({cfg}{lhs})") };
            format!("{vector} @@ {}({cfg}{}::text)", c.op.sql(), b.param(query.clone()))
        }
    };
    if c.negate {
        format!("not ({sql})")
    } else {
        sql
    }
}

/// The body a statement builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// None (HEAD, `return=minimal`).
    None,
    /// A JSON array of the rows.
    Json,
    /// A GeoJSON `FeatureCollection` of the rows (`application/geo+json`;
    /// needs PostGIS, whose `ST_AsGeoJSON(record)` makes each Feature, its
    /// first geometry column the geometry and the others its properties).
    GeoJson,
}

impl Body {
    /// The body expression over the rows of `rows` (a `from` alias).
    pub fn aggregate(self, rows: &str) -> String {
        match self {
            Body::None => "null::text".into(),
            Body::Json => format!("coalesce(json_agg({rows}), '[]')::text"),
            Body::GeoJson => format!(
                "json_build_object('type', 'FeatureCollection', 'features', \
                 coalesce(json_agg(st_asgeojson({rows})::json), '[]'))::text"
            ),
        }
    }
}

/// The final statement around a level's query: one row of
/// `(page_total int8, total int8, body text, inserted int8, location text)`.
/// `total_sql` is the exact count expression, if one is wanted;
/// `inserted` and `location` are extra expressions for writes.
pub fn wrap(inner: &str, total_sql: Option<&str>, extra: &WriteExtras, body: Body) -> String {
    wrap_body(inner, total_sql, extra, &body.aggregate("_pgrst_t"))
}

/// [`wrap`] with the body's expression over the rows `_pgrst_t` given.
fn wrap_body(inner: &str, total_sql: Option<&str>, extra: &WriteExtras, body: &str) -> String {
    format!(
        "{}select count(*)::int8, {}::int8, {body}, {}::int8, {}::text, {RESPONSE_SETTINGS} from ({inner}) as _pgrst_t",
        extra.with.as_deref().unwrap_or(""),
        total_sql.unwrap_or("null"),
        extra.inserted.as_deref().unwrap_or("null"),
        extra.location.as_deref().unwrap_or("null"),
    )
}

/// The last two columns of every statement: `response.headers` and
/// `response.status` as the request's functions and triggers left them
/// (see [`crate::rest::overrides`]). Evaluated in the outermost select
/// list, so after everything the statement runs.
pub const RESPONSE_SETTINGS: &str =
    "nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '')";

/// The write-specific parts of [`wrap`].
#[derive(Debug, Default)]
pub struct WriteExtras {
    /// `with pgrst_source as (…) ` prefix.
    pub with: Option<String>,
    /// Expression counting inserted (not updated) rows.
    pub inserted: Option<String>,
    /// Expression giving the first row's primary key as JSON.
    pub location: Option<String>,
}

/// The whole read statement for the root `node`, with an exact count if asked.
pub fn read_statement(node: &Node, exact_count: bool, body: Body) -> Sql {
    let (b, inner, total) = read_rows(node, exact_count);
    b_finish(b, wrap(&inner, total.as_deref(), &WriteExtras::default(), body))
}

/// The parts of a read: its builder, the query of its rows, and the
/// exact count expression if asked.
fn read_rows(node: &Node, exact_count: bool) -> (Sql, String, Option<String>) {
    let mut b = Sql::default();
    let alias = b.alias();
    let from = qualified(&node.schema, &node.name);
    let p = parts(&mut b, node, &alias, None);
    let inner = p.render(&from, &alias);
    let total = exact_count.then(|| format!("(select count(*) from {from} as {alias}{})", p.where_clause()));
    (b, inner, total)
}

/// [`read_statement`] with the rows handed to a media type handler
/// aggregate as the body: `agg(_pgrst_t::relation)` for a handler of the
/// relation's rows (the rows are the relation's whole rows: its default
/// select), `agg(_pgrst_t)` for one of any rows; as text, or hex for a
/// `bytea` domain.
pub fn handled_read_statement(node: &Node, exact_count: bool, agg: &MediaAggregate) -> Sql {
    let (b, inner, total) = read_rows(node, exact_count);
    b_finish(b, wrap_handled(&inner, total.as_deref(), &WriteExtras::default(), agg))
}

/// [`wrap`] with the rows handed to the handler aggregate `agg` as the
/// body: as the row type of its relation, or as they are for one of any
/// rows; as text, or hex for a `bytea` domain.
pub fn wrap_handled(inner: &str, total_sql: Option<&str>, extra: &WriteExtras, agg: &MediaAggregate) -> String {
    let rows = match &agg.relation {
        Some((schema, name)) => format!("_pgrst_t::{}", qualified(schema, name)),
        None => "_pgrst_t".to_owned(),
    };
    let value = format!("{}({rows})", qualified(&agg.schema, &agg.name));
    wrap_body(inner, total_sql, extra, &handled_value(&value, agg.media.bytes))
}

/// A handler's value `expr` as the statement returns a body: as text, or
/// as hex for a `bytea` domain (`bytes`).
pub fn handled_value(expr: &str, bytes: bool) -> String {
    if bytes {
        format!("encode(({expr})::bytea, 'hex')")
    } else {
        format!("({expr})::text")
    }
}

/// `explain` of the root count, for `count=planned|estimated` (own parameters).
pub fn planned_count_statement(node: &Node) -> Sql {
    let mut b = Sql::default();
    let alias = b.alias();
    let from = qualified(&node.schema, &node.name);
    let mut bare = node.clone();
    bare.items.retain(|i| matches!(i, Item::Embed(e) if e.inner));
    bare.filters.clear();
    bare.order.clear();
    bare.range = Default::default();
    let mut p = parts(&mut b, &bare, &alias, None);
    // Filters on embeds need the embeds, not their select lists.
    for l in &node.filters {
        p.conds.push(logic_in(&mut b, &alias, node.table.as_deref(), &node.items, l));
    }
    b_finish(b, format!("explain (format json) select 1 from {from} as {alias}{}", p.where_clause()))
}

/// Pairs the builder's parameters with the finished text.
pub fn b_finish(b: Sql, text: String) -> Sql {
    let mut out = b;
    out.text = text;
    out
}
