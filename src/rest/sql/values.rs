//! One JSON object as bound values: the row `json_populate_record` would
//! read from it, bound one parameter per column, where that is provably
//! the same row.
//!
//! PostgREST reads every write body with `json_populate_record`. For one
//! object, `VALUES ($1::type, …)` gives PostgreSQL less to do (no JSON
//! parse, no set-returning functions) and gives the same row, because the
//! cells follow that function's documented conversion:
//! - a JSON `null` is NULL, whatever the type;
//! - a `json` or `jsonb` column gets the value's JSON text;
//! - a column of another built-in base or range type gets a string's
//!   contents, or a number's or boolean's text, through the type's input
//!   function.
//!
//! The cast names the type without its modifier; storing into the column
//! then applies the modifier as an assignment (`varchar(n)` too long is an
//! error, `numeric(p,s)` rounds), as the input function with the column's
//! modifier does in `json_populate_record`.
//!
//! Anything else keeps the JSON path ([`bind_row`] says `None`): an array
//! or object for a non-JSON column (converted to an array or a composite
//! there), a column of an array, composite, domain or enum type or of a
//! type from outside `pg_catalog` ([`Input`] says why), and a string
//! holding NUL (an error there, 22P05).
//!
//! One difference remains, by design: a PATCH whose value does not fit
//! its column fails even when no row matches, because the value is read
//! when it is bound, before any row is looked at.

use serde_json::{Map, Value};

use super::{ident, Sql};
use crate::rest::schema_cache::{Input, Table};

/// One column's value in a `VALUES` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell<'a> {
    /// A bound parameter, cast to the column's built-in type.
    Value {
        /// The value in text form; `None` is NULL.
        text: Option<String>,
        /// The column's type, `pg_catalog.<typname>`.
        typname: &'a str,
    },
    /// `DEFAULT`: the key was absent and `Prefer: missing=default` asked
    /// for the column default.
    Default,
}

/// The cells of `row` for `columns`, in order, or `None` when binding
/// could differ from `json_populate_record` (see the module docs) or a
/// column is not in `table`.
pub fn bind_row<'a>(
    table: &'a Table,
    columns: &[String],
    row: &Map<String, Value>,
    missing_default: bool,
) -> Option<Vec<Cell<'a>>> {
    columns
        .iter()
        .map(|name| {
            let col = table.column(name)?;
            let text = match (row.get(name), col.input) {
                (_, Input::Other) => return None,
                (None, _) if missing_default => return Some(Cell::Default),
                (None | Some(Value::Null), _) => None,
                (Some(v), Input::Json) => Some(v.to_string()),
                (Some(Value::String(s)), Input::Scalar) if !s.contains('\0') => Some(s.clone()),
                (Some(Value::Number(n)), Input::Scalar) => Some(n.to_string()),
                (Some(Value::Bool(b)), Input::Scalar) => Some(b.to_string()),
                (Some(_), Input::Scalar) => return None,
            };
            Some(Cell::Value { text, typname: &col.typname })
        })
        .collect()
}

/// `values ($1::"pg_catalog"."type", default, …)` for [`bind_row`]'s cells.
pub fn values_row(b: &mut Sql, cells: Vec<Cell<'_>>) -> String {
    format!("values ({})", exprs(b, cells).join(", "))
}

/// One expression per cell: `$n::"pg_catalog"."type"` or `default`.
pub fn exprs(b: &mut Sql, cells: Vec<Cell<'_>>) -> Vec<String> {
    cells
        .into_iter()
        .map(|cell| match cell {
            Cell::Default => "default".to_owned(),
            Cell::Value { text, typname } => format!("{}::\"pg_catalog\".{}", b.push(text), ident(typname)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::schema_cache::Column;
    use serde_json::json;

    fn col(name: &str, typname: &str, input: Input) -> Column {
        Column {
            name: name.into(),
            data_type: typname.into(),
            typname: typname.into(),
            nullable: true,
            default: None,
            input,
        }
    }

    fn table() -> Table {
        Table {
            schema: "public".into(),
            name: "t".into(),
            kind: 'r',
            columns: vec![
                col("n", "int8", Input::Scalar),
                col("s", "text", Input::Scalar),
                col("j", "jsonb", Input::Json),
                col("a", "_int4", Input::Other),
            ],
            pk: vec![],
            computed: vec![],
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => Map::new(),
        }
    }

    fn val<'a>(text: &str, typname: &'a str) -> Cell<'a> {
        Cell::Value { text: Some(text.to_owned()), typname }
    }

    fn names(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scalars_bind_as_json_populate_record_reads_them() {
        let t = table();
        let row = obj(json!({"n": 5, "s": "a'b\"c", "j": "x"}));
        let cells = bind_row(&t, &names(&["n", "s", "j"]), &row, false).expect("bindable");
        assert_eq!(cells, vec![val("5", "int8"), val("a'b\"c", "text"), val("\"x\"", "jsonb")]);
        let row = obj(json!({"n": true, "s": 1.5, "j": {"k": [1, null]}}));
        let cells = bind_row(&t, &names(&["n", "s", "j"]), &row, false).expect("bindable");
        assert_eq!(cells, vec![val("true", "int8"), val("1.5", "text"), val("{\"k\":[1,null]}", "jsonb")]);
    }

    #[test]
    fn nulls_and_absent_keys() {
        let t = table();
        let row = obj(json!({"n": null}));
        let null = |typname| Cell::Value { text: None, typname };
        assert_eq!(bind_row(&t, &names(&["n", "s"]), &row, false), Some(vec![null("int8"), null("text")]));
        assert_eq!(bind_row(&t, &names(&["n", "s"]), &row, true), Some(vec![null("int8"), Cell::Default]));
    }

    #[test]
    fn what_json_populate_record_converts_keeps_the_json_path() {
        let t = table();
        assert_eq!(bind_row(&t, &names(&["s"]), &obj(json!({"s": [1]})), false), None, "array into text");
        assert_eq!(bind_row(&t, &names(&["s"]), &obj(json!({"s": {"a": 1}})), false), None, "object into text");
        assert_eq!(bind_row(&t, &names(&["a"]), &obj(json!({"a": "{1}"})), false), None, "array column");
        assert_eq!(bind_row(&t, &names(&["s"]), &obj(json!({"s": "a\u{0}b"})), false), None, "NUL");
        assert_eq!(bind_row(&t, &names(&["zz"]), &obj(json!({"zz": 1})), false), None, "unknown column");
    }

    #[test]
    fn the_row_names_each_type_and_binds_each_value() {
        let mut b = Sql::default();
        let cells = vec![val("5", "int8"), Cell::Default, Cell::Value { text: None, typname: "jsonb" }];
        let text = values_row(&mut b, cells);
        assert_eq!(text, "values ($1::\"pg_catalog\".\"int8\", default, $2::\"pg_catalog\".\"jsonb\")");
        assert_eq!(b.params, vec![Some("5".to_owned()), None]);
    }
}
