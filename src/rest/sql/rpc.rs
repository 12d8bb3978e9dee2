//! RPC: `select … from "schema"."fn"("arg" := …)`. Named arguments come
//! from one JSON parameter through `json_to_record` with the argument
//! types from the catalog, so arrays and composites convert as PostgREST
//! converts them.

use super::read::{b_finish, handled_value, parts, wrap, wrap_handled, Body, WriteExtras, RESPONSE_SETTINGS};
use super::{ident, qualified, Sql};
use crate::rest::plan::Node;
use crate::rest::schema_cache::{Arg, Function, MediaAggregate, Returns};

/// How arguments are passed.
#[derive(Debug, Clone)]
pub enum Args<'a> {
    /// Named arguments from a JSON object (text), for these arguments.
    Named(String, Vec<&'a Arg>),
    /// The whole body as the one argument (`json`/`jsonb`, or a raw
    /// `text`, `xml` or `bytea` body), in its text form.
    Single(String),
}

fn call(b: &mut Sql, f: &Function, args: &Args<'_>) -> (String, String) {
    let target = qualified(&f.schema, &f.name);
    match args {
        Args::Named(_, list) if list.is_empty() => (String::new(), format!("{target}()")),
        Args::Named(json, list) => {
            let p = b.param(json.clone());
            let defs: Vec<String> = list.iter().map(|a| format!("{} {}", ident(&a.name), a.data_type)).collect();
            let with = format!("with pgrst_args as (select * from json_to_record({p}::json) as _a({})) ", defs.join(", "));
            // A variadic parameter takes its array by name only after VARIADIC.
            let named: Vec<String> = list
                .iter()
                .map(|a| format!("{1}{0} := (select {0} from pgrst_args)", ident(&a.name), if a.variadic { "variadic " } else { "" }))
                .collect();
            (with, format!("{target}({})", named.join(", ")))
        }
        Args::Single(value) => {
            // Cast to the parameter's type, so an overload of another type
            // for the same name is never taken instead.
            let p = b.param(value.clone());
            match f.args.as_slice() {
                [a] => (String::new(), format!("{target}({p}::{})", a.data_type)),
                _ => (String::new(), format!("{target}({p})")),
            }
        }
    }
}

/// The statement for a media type handler function: its one value as
/// the body, as text (`bytes`: a `bytea` domain, hex-encoded).
pub fn handled_statement(f: &Function, args: &Args<'_>, bytes: bool) -> Sql {
    let mut b = Sql::default();
    let (with, call) = call(&mut b, f, args);
    let value = handled_value(&call, bytes);
    let text = format!("{with}select 1::int8, null::int8, {value}, null::int8, null::text, {RESPONSE_SETTINGS}");
    b_finish(b, text)
}

/// The statement for a function returning rows, its rows (shaped by
/// `node`) handed to a media type handler aggregate as the body (see
/// [`super::read::handled_read_statement`]).
pub fn handled_rows_statement(f: &Function, args: &Args<'_>, node: &Node, exact_count: bool, agg: &MediaAggregate) -> Sql {
    let mut b = Sql::default();
    let (with, call) = call(&mut b, f, args);
    let (inner, total, extras) = rows(&mut b, node, &call, with, exact_count);
    let text = wrap_handled(&inner, total.as_deref(), &extras, agg);
    b_finish(b, text)
}

/// The query of the rows `call` returns, shaped by `node`; the exact
/// count expression if asked; the arguments' `with` as the wrapper's.
fn rows(b: &mut Sql, node: &Node, call: &str, with: String, exact_count: bool) -> (String, Option<String>, WriteExtras) {
    let alias = b.alias();
    let p = parts(b, node, &alias, None);
    let inner = p.render(call, &alias);
    let total = exact_count.then(|| format!("(select count(*) from {call} as {alias}{})", p.where_clause()));
    (inner, total, WriteExtras { with: (!with.is_empty()).then_some(with), ..Default::default() })
}

/// The statement for calling `f`; `node` shapes set/composite results.
pub fn statement(f: &Function, args: &Args<'_>, node: &Node, exact_count: bool, body: Body) -> Sql {
    let mut b = Sql::default();
    let (with, call) = call(&mut b, f, args);
    match (&f.returns, f.returns_set) {
        (Returns::Void, _) => {
            let text = format!("{with}select 1::int8, null::int8, cast({call} as text), null::int8, null::text, {RESPONSE_SETTINGS}");
            b_finish(b, text)
        }
        (Returns::Scalar, false) => {
            let text = format!("{with}select 1::int8, null::int8, coalesce(to_json({call})::text, 'null'), null::int8, null::text, {RESPONSE_SETTINGS}");
            b_finish(b, text)
        }
        (Returns::Scalar, true) => {
            let alias = b.alias();
            let mut p = parts(&mut b, node, &alias, None);
            p.cols = vec![format!("{alias} as pgrst_scalar")];
            p.group.clear();
            let inner = p.render(&call, &alias);
            let total = exact_count.then(|| format!("(select count(*) from {call} as {alias}{})", p.where_clause()));
            let body = match body {
                Body::None => "null::text".to_owned(),
                // Scalars have no geometry to make Features of: plain JSON.
                Body::Json | Body::GeoJson => Body::Json.aggregate("_pgrst_t.pgrst_scalar"),
            };
            let text = format!(
                "{with}select count(*)::int8, {}::int8, {body}, null::int8, null::text, {RESPONSE_SETTINGS} from ({inner}) as _pgrst_t",
                total.as_deref().unwrap_or("null")
            );
            b_finish(b, text)
        }
        (Returns::Composite, _) => {
            let (inner, total, extras) = rows(&mut b, node, &call, with, exact_count);
            let text = wrap(&inner, total.as_deref(), &extras, body);
            b_finish(b, text)
        }
    }
}
