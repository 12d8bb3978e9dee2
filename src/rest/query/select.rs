//! The `select=` grammar: `*`, `col`, `alias:col`, `col::type`,
//! `data->a->>b`, `col.sum()`, `count()`, embeds `rel(…)`,
//! `alias:rel!hint!inner(…)`, spreads `...rel(…)`, nested to any depth
//! (bounded by [`Limits`]).

use super::{Cursor, Field, Limits};
use crate::rest::errors::RestError;

/// An aggregate function PostgREST 12 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `count()`
    Count,
    /// `sum()`
    Sum,
    /// `avg()`
    Avg,
    /// `min()`
    Min,
    /// `max()`
    Max,
}

impl Aggregate {
    fn from_name(s: &str) -> Option<Aggregate> {
        Some(match s {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            _ => return None,
        })
    }

    /// The SQL function name (a fixed keyword, never input).
    pub fn sql(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
        }
    }
}

/// One item of a `select`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`
    Star,
    /// A column or JSON path, maybe renamed, cast or aggregated.
    Column {
        /// The field.
        field: Field,
        /// `alias:`
        alias: Option<String>,
        /// `::type` on the value.
        cast: Option<String>,
        /// `.sum()` etc.
        aggregate: Option<Aggregate>,
        /// `::type` after the aggregate.
        aggregate_cast: Option<String>,
    },
    /// Top-level `count()`.
    Count {
        /// `alias:`
        alias: Option<String>,
        /// `::type`
        cast: Option<String>,
    },
    /// An embedded resource.
    Embed(Embed),
}

/// An embedded resource `alias:name!hint!inner(items)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    /// Table, view (or relationship) name.
    pub name: String,
    /// Output key.
    pub alias: Option<String>,
    /// `!fkey`, `!column` or `!junction_table`.
    pub hint: Option<String>,
    /// `!inner`
    pub inner: bool,
    /// `...name(…)`
    pub spread: bool,
    /// Its own select items.
    pub items: Vec<SelectItem>,
}

impl Embed {
    /// The key this embed appears under (alias, else name).
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// Parses a `select` value.
pub fn parse_select(s: &str, limits: &Limits) -> Result<Vec<SelectItem>, RestError> {
    let mut c = Cursor::new(s, "select");
    let mut count = 0usize;
    if s.is_empty() {
        return Ok(vec![SelectItem::Star]);
    }
    let items = items(&mut c, 0, limits, &mut count)?;
    if !c.at_end() {
        return Err(c.error("\",\" or end of input"));
    }
    Ok(items)
}

fn items(c: &mut Cursor<'_>, depth: usize, limits: &Limits, count: &mut usize) -> Result<Vec<SelectItem>, RestError> {
    let mut out = Vec::new();
    loop {
        *count += 1;
        if *count > limits.max_select_items {
            return Err(RestError::parse(
                "\"failed to parse select parameter\"",
                format!("more than {} select items", limits.max_select_items),
            ));
        }
        out.push(item(c, depth, limits, count)?);
        if !c.eat(',') {
            break;
        }
    }
    Ok(out)
}

fn cast(c: &mut Cursor<'_>) -> Result<Option<String>, RestError> {
    if c.eat_str("::") {
        let mut s = String::new();
        while let Some(ch) = c.peek() {
            if ch.is_alphanumeric() || ch == '_' || ch == ' ' || ch == '[' || ch == ']' {
                s.push(ch);
                c.bump();
            } else {
                break;
            }
        }
        if s.trim().is_empty() {
            return Err(c.error("a type name"));
        }
        return Ok(Some(s.trim().to_owned()));
    }
    Ok(None)
}

fn item(c: &mut Cursor<'_>, depth: usize, limits: &Limits, count: &mut usize) -> Result<SelectItem, RestError> {
    if c.eat('*') {
        return Ok(SelectItem::Star);
    }
    if c.eat_str("...") {
        let name = c.name()?;
        let mut e = embed_tail(c, name, None, depth, limits, count)?;
        e.spread = true;
        return Ok(SelectItem::Embed(e));
    }
    let first = c.field()?;
    let (alias, field) = if first.json.is_empty() && c.peek() == Some(':') && c.peek_at(1) != Some(':') {
        c.bump();
        if c.eat_str("...") {
            return Err(c.error("a name (a spread cannot have an alias)"));
        }
        (Some(first.name), c.field()?)
    } else {
        (None, first)
    };
    if field.json.is_empty() && matches!(c.peek(), Some('(') | Some('!')) {
        if field.name == "count" && c.peek() == Some('(') && c.peek_at(1) == Some(')') {
            c.bump();
            c.bump();
            let cast = cast(c)?;
            return Ok(SelectItem::Count { alias, cast });
        }
        return Ok(SelectItem::Embed(embed_tail(c, field.name, alias, depth, limits, count)?));
    }
    let cast1 = cast(c)?;
    let mut aggregate = None;
    let mut aggregate_cast = None;
    if c.peek() == Some('.') {
        c.bump();
        let name = c.name()?;
        let Some(agg) = Aggregate::from_name(&name) else {
            return Err(c.error("an aggregate (count, sum, avg, min, max)"));
        };
        if !(c.eat('(') && c.eat(')')) {
            return Err(c.error("\"()\""));
        }
        aggregate = Some(agg);
        aggregate_cast = cast(c)?;
    }
    Ok(SelectItem::Column { field, alias, cast: cast1, aggregate, aggregate_cast })
}

fn embed_tail(
    c: &mut Cursor<'_>,
    name: String,
    alias: Option<String>,
    depth: usize,
    limits: &Limits,
    count: &mut usize,
) -> Result<Embed, RestError> {
    if depth + 1 > limits.max_embed_depth {
        return Err(RestError::parse(
            "\"failed to parse select parameter\"",
            format!("embedding is nested deeper than {} levels", limits.max_embed_depth),
        ));
    }
    let mut hint = None;
    let mut inner = false;
    while c.eat('!') {
        let h = c.name()?;
        match h.as_str() {
            "inner" => inner = true,
            "left" => inner = false,
            _ if hint.is_none() => hint = Some(h),
            _ => return Err(c.error("\"inner\" or \"left\"")),
        }
    }
    if !c.eat('(') {
        return Err(c.error("\"(\""));
    }
    let items = if c.peek() == Some(')') { Vec::new() } else { items(c, depth + 1, limits, count)? };
    if !c.eat(')') {
        return Err(c.error("\")\""));
    }
    Ok(Embed { name, alias, hint, inner, spread: false, items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::query::JsonStep;

    fn p(s: &str) -> Vec<SelectItem> {
        parse_select(s, &Limits::default()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn columns_aliases_casts_paths() {
        assert_eq!(p("*"), vec![SelectItem::Star]);
        let items = p("id,n:name,age::text,data->a->>b,total.sum()::int");
        assert_eq!(items.len(), 5);
        match &items[1] {
            SelectItem::Column { alias, field, .. } => {
                assert_eq!(alias.as_deref(), Some("n"));
                assert_eq!(field.name, "name");
            }
            other => panic!("{other:?}"),
        }
        match &items[3] {
            SelectItem::Column { field, .. } => assert_eq!(
                field.json,
                vec![JsonStep { as_text: false, key: "a".into() }, JsonStep { as_text: true, key: "b".into() }]
            ),
            other => panic!("{other:?}"),
        }
        match &items[4] {
            SelectItem::Column { aggregate, aggregate_cast, .. } => {
                assert_eq!(*aggregate, Some(Aggregate::Sum));
                assert_eq!(aggregate_cast.as_deref(), Some("int"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(p("count()")[0], SelectItem::Count { .. }));
    }

    #[test]
    fn embeds() {
        let items = p("id,author:users!posts_author_fkey!inner(id,name),...owner(name),tags(*,x:y(z))");
        let SelectItem::Embed(e) = &items[1] else { panic!() };
        assert_eq!((e.name.as_str(), e.alias.as_deref(), e.hint.as_deref(), e.inner), ("users", Some("author"), Some("posts_author_fkey"), true));
        let SelectItem::Embed(e) = &items[2] else { panic!() };
        assert!(e.spread);
        let SelectItem::Embed(e) = &items[3] else { panic!() };
        assert_eq!(e.items.len(), 2);
    }

    #[test]
    fn errors_and_limits() {
        for bad in ["id,", "a(", "a(b", "x:", "a.foo()", "a::", "\"abc", "a!b!c!d()", ",", "a)"] {
            assert!(parse_select(bad, &Limits::default()).is_err(), "{bad}");
        }
        let deep = format!("{}x{}", "a(".repeat(20), ")".repeat(20));
        assert!(parse_select(&deep, &Limits::default()).is_err());
        let many = vec!["a"; 600].join(",");
        assert!(parse_select(&many, &Limits::default()).is_err());
    }
}
