//! The query string as a whole: which keys are select, order, ranges,
//! logic trees, `on_conflict`, `columns`, RPC arguments and filters, at the
//! root or on an embedded resource (`rel.order`, `rel.limit`, `rel.col`).

use std::collections::BTreeMap;

use super::filter::{parse_condition, parse_logic, parse_order, Logic, OrderTerm};
use super::select::{parse_select, SelectItem};
use super::{Cursor, Limits};
use crate::rest::errors::RestError;

/// `limit`/`offset` of one level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// `limit`
    pub limit: Option<i64>,
    /// `offset`
    pub offset: Option<i64>,
}

/// A path of embed names/aliases; empty for the root resource.
pub type EmbedPath = Vec<String>;

/// The parsed query string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiQuery {
    /// `select=`, if given.
    pub select: Option<Vec<SelectItem>>,
    /// Filters, each at an embed path, ANDed.
    pub filters: Vec<(EmbedPath, Logic)>,
    /// Order terms per embed path.
    pub order: BTreeMap<EmbedPath, Vec<OrderTerm>>,
    /// Ranges per embed path.
    pub ranges: BTreeMap<EmbedPath, Range>,
    /// `on_conflict=a,b`
    pub on_conflict: Option<Vec<String>>,
    /// `columns=a,b` (quoted or not)
    pub columns: Option<Vec<String>>,
    /// RPC arguments (keys `is_arg` accepted), in order.
    pub args: Vec<(String, String)>,
}

impl ApiQuery {
    /// The root's rows are whole: no `select`, or `select=*` alone.
    pub fn whole_rows(&self) -> bool {
        self.select.as_deref().is_none_or(|s| matches!(s, [SelectItem::Star]))
    }
}

/// Keys that are never filters.
const IGNORED: &[&str] = &["apikey"];

/// Parses a raw (still percent-encoded) query string.
pub fn parse_query(raw: &str, limits: &Limits, is_arg: &dyn Fn(&str) -> bool) -> Result<ApiQuery, RestError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| RestError::parse("\"failed to parse the query string\"", e.to_string()))?;
    let mut q = ApiQuery::default();
    for (key, value) in pairs {
        if IGNORED.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "select" => {
                q.select = Some(parse_select(&value, limits)?);
                continue;
            }
            "on_conflict" => {
                q.on_conflict = Some(name_list(&value, "on_conflict")?);
                continue;
            }
            "columns" => {
                q.columns = Some(name_list(&value, "columns")?);
                continue;
            }
            _ => {}
        }
        if is_arg(&key) {
            q.args.push((key, value));
            continue;
        }
        let (path, last) = split_path(&key);
        match last.as_str() {
            "order" => {
                q.order.insert(path, parse_order(&value)?);
            }
            "limit" | "offset" => {
                let n: i64 = value.trim().parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    RestError::parse(format!("\"failed to parse {last} parameter ({value})\""), "expecting a non-negative integer")
                })?;
                let r = q.ranges.entry(path).or_default();
                if last == "limit" {
                    r.limit = Some(n);
                } else {
                    r.offset = Some(n);
                }
            }
            "or" | "and" | "not.or" | "not.and" => {
                let negate = last.starts_with("not.");
                let or = last.ends_with("or");
                q.filters.push((path, parse_logic(or, negate, &value, limits)?));
            }
            _ => {
                let mut c = Cursor::new(&last, "filter");
                let field = c.field()?;
                if !c.at_end() {
                    return Err(c.error("end of the column name"));
                }
                q.filters.push((path, Logic::Cond(parse_condition(field, &value, limits)?)));
            }
        }
    }
    Ok(q)
}

/// `a.b.col` → (`[a, b]`, `col`); `a.not.or` → (`[a]`, `not.or`).
fn split_path(key: &str) -> (EmbedPath, String) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let mut last = parts.pop().unwrap_or_default().to_owned();
    if (last == "or" || last == "and") && parts.last() == Some(&"not") {
        parts.pop();
        last = format!("not.{last}");
    }
    (parts.into_iter().map(str::to_owned).collect(), last)
}

/// `a,"b c",d` → names.
fn name_list(value: &str, what: &str) -> Result<Vec<String>, RestError> {
    let mut c = Cursor::new(value, what);
    let mut out = Vec::new();
    loop {
        out.push(c.name()?);
        if !c.eat(',') {
            break;
        }
    }
    if !c.at_end() {
        return Err(c.error("\",\" or end of input"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pq(s: &str) -> ApiQuery {
        parse_query(s, &Limits::default(), &|_| false).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn splits_the_query_string() {
        let q = pq("select=id,posts(id)&id=gt.1&posts.order=id.desc&posts.limit=2&limit=10&offset=5&or=(a.eq.1,b.eq.2)&columns=%22a%22,%22b%22&apikey=x&posts.id=eq.3&not.and=(a.eq.1)");
        assert_eq!(q.select.as_ref().map(Vec::len), Some(2));
        assert_eq!(q.filters.len(), 4);
        assert_eq!(q.ranges[&vec![]], Range { limit: Some(10), offset: Some(5) });
        assert_eq!(q.ranges[&vec!["posts".to_owned()]].limit, Some(2));
        assert_eq!(q.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(q.filters[2].0, vec!["posts".to_owned()]);
    }

    #[test]
    fn rpc_args_are_taken_out() {
        let q = parse_query("a=1&b=eq.2", &Limits::default(), &|k| k == "a").expect("q");
        assert_eq!(q.args, vec![("a".into(), "1".into())]);
        assert_eq!(q.filters.len(), 1);
    }

    #[test]
    fn bad_query_strings() {
        for bad in ["limit=-1", "limit=x", "id=zz.1", "select=a(", "a->=eq.1", "or=a.eq.1"] {
            assert!(parse_query(bad, &Limits::default(), &|_| false).is_err(), "{bad}");
        }
    }
}
