//! SQL generation: one statement per request, identifiers always through
//! [`ident`], values always bound parameters through [`Sql::param`].
//!
//! - [`read`]: select lists, embeds, filters, order, ranges, and the
//!   wrapper every statement shares (page count, total, JSON body).
//! - [`mod@write`]: INSERT / upsert, UPDATE, DELETE.
//! - [`rpc`]: function calls.
//! - [`values`]: one JSON object bound as a `VALUES` row.
//!
//! Invariant: nothing from the request reaches the SQL text except through
//! [`ident`] (double-quoted, quotes doubled) or as a `$n` placeholder. The
//! only other text is fixed SQL, numbers parsed as integers, and catalog
//! text from the schema cache (`format_type()` names, default expressions),
//! which requests cannot choose. A property test checks this.

pub mod read;
pub mod rpc;
pub mod values;
pub mod write;

/// Quotes an identifier: `a"b` → `"a""b"`. NUL, which PostgreSQL cannot
/// store in a name, is dropped.
pub fn ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A cast target from `::type` in a request: keyword aliases mapped to
/// their catalog names, then quoted like any identifier (`[]` kept outside).
pub fn cast_type(t: &str) -> String {
    let t = t.trim().to_ascii_lowercase();
    let (base, array) = match t.strip_suffix("[]") {
        Some(b) => (b.trim().to_owned(), "[]"),
        None => (t.clone(), ""),
    };
    let canonical = match base.as_str() {
        "int" | "integer" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "real" => "float4",
        "float" | "double precision" | "double" => "float8",
        "boolean" => "bool",
        "decimal" | "dec" => "numeric",
        "char" | "character" => "bpchar",
        "character varying" => "varchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "time with time zone" => "timetz",
        "time without time zone" => "time",
        other => other,
    };
    format!("{}{array}", ident(canonical))
}

/// SQL text being built, with its parameters.
#[derive(Debug, Default)]
pub struct Sql {
    /// The statement text, once finished.
    pub text: String,
    /// Bound values, `$1` first; `None` is NULL. All are sent in text
    /// format with type `unknown`, so PostgreSQL infers each one's type
    /// from where it is used, exactly as for a quoted literal.
    pub params: Vec<Option<String>>,
    aliases: usize,
}

impl Sql {
    /// Binds `v`, returning its placeholder.
    pub fn param(&mut self, v: impl Into<String>) -> String {
        self.push(Some(v.into()))
    }

    /// Binds `v`, `None` as NULL, returning its placeholder.
    pub fn push(&mut self, v: Option<String>) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }

    /// A fresh table alias (`pgrst_1`, …), already quoted.
    pub fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("\"pgrst_{}\"", self.aliases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("a"), "\"a\"");
        assert_eq!(ident("a\"; drop table x; --"), "\"a\"\"; drop table x; --\"");
        assert_eq!(ident("a\0b"), "\"ab\"");
        assert_eq!(qualified("public", "t"), "\"public\".\"t\"");
    }

    #[test]
    fn casts_are_quoted_after_alias_mapping() {
        assert_eq!(cast_type("int"), "\"int4\"");
        assert_eq!(cast_type("text[]"), "\"text\"[]");
        assert_eq!(cast_type("x\"y"), "\"x\"\"y\"");
    }
}
