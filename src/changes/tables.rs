//! The `tables=` parameter: `schema.table` names (schema defaults to
//! `public`), validated as plain identifiers.

use http::StatusCode;

use crate::http::error::ApiError;

/// Most tables one stream may name.
pub const MAX_TABLES: usize = 100;

/// A table filter: empty means every table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableFilter(pub Vec<(String, String)>);

impl TableFilter {
    /// Parses `public.todos,items`.
    pub fn parse(raw: Option<&str>) -> Result<TableFilter, ApiError> {
        let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else { return Ok(TableFilter::default()) };
        let bad = |msg: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_tables", msg)
            .with_hint("Use tables=schema.table,schema.table (schema defaults to public)");
        let mut out = Vec::new();
        for item in raw.split(',') {
            let item = item.trim();
            let (schema, table) = match item.split_once('.') {
                Some((s, t)) => (s, t),
                None => ("public", item),
            };
            for part in [schema, table] {
                if !valid_ident(part) {
                    return Err(bad(format!("invalid table name {item:?}")));
                }
            }
            out.push((schema.to_owned(), table.to_owned()));
        }
        if out.len() > MAX_TABLES {
            return Err(bad(format!("at most {MAX_TABLES} tables per stream")));
        }
        Ok(TableFilter(out))
    }

    /// Whether a change of `schema.table` passes.
    pub fn matches(&self, schema: &str, table: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|(s, t)| s == schema && t == table)
    }
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let f = TableFilter::parse(Some("public.todos, items")).expect("valid");
        assert_eq!(f.0, vec![("public".into(), "todos".into()), ("public".into(), "items".into())]);
        assert!(f.matches("public", "items") && !f.matches("public", "other"));
        assert!(TableFilter::parse(None).expect("empty").matches("x", "y"));
        for bad in ["a.b.c", "public.", ".x", "x;drop", "\"x\"", "a b"] {
            assert!(TableFilter::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
