//! Column values: pgoutput's text form turned into JSON by column type, the
//! way PostgREST and Supabase Realtime present rows.
//!
//! Integers and floats become numbers (NaN and infinities stay strings, as
//! JSON has no such numbers); `numeric` becomes a number when it fits a
//! double exactly enough for a JavaScript client, else a string; booleans;
//! `json`/`jsonb` are embedded; timestamps become ISO 8601 with `T` and a
//! `+HH:MM` offset; arrays become JSON arrays (element by element);
//! composites become objects; everything else (text, uuid, bytea as
//! `\x…`, enums, dates, intervals …) stays a string. The walsender session
//! pins `DateStyle=ISO`, `extra_float_digits=3`, `bytea_output=hex`, so the
//! input forms are stable.

use serde_json::{Map, Number, Value};

/// How a type's text form is turned into JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `bool`.
    Bool,
    /// `int2`, `int4`, `int8`, `oid`.
    Integer,
    /// `float4`, `float8`.
    Float,
    /// `numeric`.
    Numeric,
    /// `json`, `jsonb`.
    Json,
    /// `timestamptz`.
    TimestampTz,
    /// `timestamp`.
    Timestamp,
    /// An array of elements of the inner kind, with the element delimiter.
    Array(Box<Kind>, u8),
    /// A composite: attribute names and kinds.
    Composite(Vec<(String, Kind)>),
    /// Anything else: the text as is.
    Text,
}

impl Kind {
    /// The kind of a built-in type OID, if it is one we know.
    pub fn builtin(oid: u32) -> Option<Kind> {
        Some(match oid {
            16 => Kind::Bool,
            20 | 21 | 23 | 26 | 28 => Kind::Integer,
            700 | 701 => Kind::Float,
            1700 => Kind::Numeric,
            114 | 3802 => Kind::Json,
            1184 => Kind::TimestampTz,
            1114 => Kind::Timestamp,
            25 | 1043 | 1042 | 19 | 2950 | 17 | 1082 | 1083 | 1266 | 1186 | 18 | 869 | 650 | 829 | 3614 | 3615 | 2249 => Kind::Text,
            1000 => Kind::Array(Box::new(Kind::Bool), b','),
            1005 | 1007 | 1016 | 1028 => Kind::Array(Box::new(Kind::Integer), b','),
            1021 | 1022 => Kind::Array(Box::new(Kind::Float), b','),
            1231 => Kind::Array(Box::new(Kind::Numeric), b','),
            199 | 3807 => Kind::Array(Box::new(Kind::Json), b','),
            1185 => Kind::Array(Box::new(Kind::TimestampTz), b','),
            1115 => Kind::Array(Box::new(Kind::Timestamp), b','),
            1009 | 1015 | 1014 | 1003 | 2951 | 1001 | 1182 | 1183 | 1187 => Kind::Array(Box::new(Kind::Text), b','),
            _ => return None,
        })
    }
}

/// Converts one text value.
pub fn to_json(kind: &Kind, text: &str) -> Value {
    match kind {
        Kind::Bool => match text {
            "t" | "true" => Value::Bool(true),
            "f" | "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        },
        Kind::Integer => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(text.to_owned())),
        Kind::Float => float(text),
        Kind::Numeric => numeric(text),
        Kind::Json => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        Kind::TimestampTz => Value::String(timestamptz(text)),
        Kind::Timestamp => Value::String(timestamp(text)),
        Kind::Array(elem, delim) => parse_array(text, *delim)
            .map(|a| array_to_json(&a, elem))
            .unwrap_or_else(|| Value::String(text.to_owned())),
        Kind::Composite(attrs) => parse_record(text)
            .filter(|fields| fields.len() == attrs.len())
            .map(|fields| {
                let mut m = Map::new();
                for ((name, k), f) in attrs.iter().zip(fields) {
                    m.insert(name.clone(), f.map(|s| to_json(k, &s)).unwrap_or(Value::Null));
                }
                Value::Object(m)
            })
            .unwrap_or_else(|| Value::String(text.to_owned())),
        Kind::Text => Value::String(text.to_owned()),
    }
}

fn float(text: &str) -> Value {
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(text.to_owned())),
        _ => Value::String(text.to_owned()),
    }
}

fn numeric(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(text.to_owned())),
        _ => Value::String(text.to_owned()),
    }
}

/// `2024-01-02 03:04:05.123+00` → `2024-01-02T03:04:05.123+00:00`.
pub fn timestamptz(text: &str) -> String {
    let t = timestamp(text);
    // The offset is the last `+` or `-` after the time part.
    let Some(tpos) = t.find('T') else { return t };
    let Some(rel) = t[tpos..].rfind(['+', '-']) else { return t };
    let (head, off) = t.split_at(tpos + rel);
    let sign = &off[..1];
    let digits = &off[1..];
    let norm = match digits.len() {
        2 => format!("{digits}:00"),
        4 if !digits.contains(':') => format!("{}:{}", &digits[..2], &digits[2..]),
        _ => digits.to_owned(),
    };
    format!("{head}{sign}{norm}")
}

/// `2024-01-02 03:04:05` → `2024-01-02T03:04:05` (infinity and BC forms kept).
pub fn timestamp(text: &str) -> String {
    if text.len() > 10 && text.as_bytes()[10] == b' ' && !text.ends_with(" BC") {
        let mut s = text.to_owned();
        s.replace_range(10..11, "T");
        s
    } else {
        text.to_owned()
    }
}

/// A parsed array literal: nested lists of optional element texts.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayNode {
    /// A (sub)array.
    List(Vec<ArrayNode>),
    /// An element; `None` is NULL.
    Item(Option<String>),
}

fn array_to_json(node: &ArrayNode, elem: &Kind) -> Value {
    match node {
        ArrayNode::List(items) => Value::Array(items.iter().map(|n| array_to_json(n, elem)).collect()),
        ArrayNode::Item(None) => Value::Null,
        ArrayNode::Item(Some(s)) => to_json(elem, s),
    }
}

/// Parses PostgreSQL's array text form (`{1,2,NULL}`, `{{a,b},{"c d",e}}`,
/// with an optional `[1:2]=` dimension prefix). `None` if malformed.
pub fn parse_array(text: &str, delim: u8) -> Option<ArrayNode> {
    let bytes = text.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'[') {
        i = text.find('=')? + 1;
    }
    let (node, end) = parse_list(bytes, i, delim, 0)?;
    (end == bytes.len()).then_some(node)
}

fn parse_list(b: &[u8], mut i: usize, delim: u8, depth: usize) -> Option<(ArrayNode, usize)> {
    if depth > 32 || b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut items = Vec::new();
    if b.get(i) == Some(&b'}') {
        return Some((ArrayNode::List(items), i + 1));
    }
    loop {
        match b.get(i)? {
            b'{' => {
                let (n, e) = parse_list(b, i, delim, depth + 1)?;
                items.push(n);
                i = e;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\' => {
                            s.push(*b.get(i + 1)?);
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        c => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                items.push(ArrayNode::Item(Some(String::from_utf8(s).ok()?)));
            }
            _ => {
                let start = i;
                while let Some(&c) = b.get(i) {
                    if c == delim || c == b'}' {
                        break;
                    }
                    i += 1;
                }
                let raw = std::str::from_utf8(&b[start..i]).ok()?.trim();
                items.push(ArrayNode::Item(if raw.eq_ignore_ascii_case("NULL") { None } else { Some(raw.to_owned()) }));
            }
        }
        match *b.get(i)? {
            c if c == delim => i += 1,
            b'}' => return Some((ArrayNode::List(items), i + 1)),
            _ => return None,
        }
    }
}

/// Parses a composite's text form `(1,"a b",)` into fields (`None` = NULL).
pub fn parse_record(text: &str) -> Option<Vec<Option<String>>> {
    let b = text.as_bytes();
    if b.first() != Some(&b'(') || b.last() != Some(&b')') {
        return None;
    }
    let inner = &b[1..b.len() - 1];
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        // One field: empty (NULL), quoted, or bare.
        if i >= inner.len() || inner[i] == b',' {
            fields.push(None);
        } else {
            let mut s = Vec::new();
            while i < inner.len() && inner[i] != b',' {
                if inner[i] == b'"' {
                    i += 1;
                    while i < inner.len() {
                        match inner[i] {
                            b'"' if inner.get(i + 1) == Some(&b'"') => {
                                s.push(b'"');
                                i += 2;
                            }
                            b'"' => {
                                i += 1;
                                break;
                            }
                            b'\\' => {
                                s.push(*inner.get(i + 1)?);
                                i += 2;
                            }
                            c => {
                                s.push(c);
                                i += 1;
                            }
                        }
                    }
                } else {
                    s.push(inner[i]);
                    i += 1;
                }
            }
            fields.push(Some(String::from_utf8(s).ok()?));
        }
        if i >= inner.len() {
            return Some(fields);
        }
        i += 1; // the comma
        if i == inner.len() {
            fields.push(None);
            return Some(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars() {
        assert_eq!(to_json(&Kind::Bool, "t"), json!(true));
        assert_eq!(to_json(&Kind::Integer, "-9223372036854775808"), json!(i64::MIN));
        assert_eq!(to_json(&Kind::Float, "1.5"), json!(1.5));
        assert_eq!(to_json(&Kind::Float, "NaN"), json!("NaN"));
        assert_eq!(to_json(&Kind::Float, "-Infinity"), json!("-Infinity"));
        assert_eq!(to_json(&Kind::Numeric, "12.50"), json!(12.5));
        assert_eq!(to_json(&Kind::Numeric, "NaN"), json!("NaN"));
        assert_eq!(to_json(&Kind::Json, "{\"a\": [1, 2]}"), json!({"a": [1, 2]}));
        assert_eq!(to_json(&Kind::Text, "\\x0102"), json!("\\x0102"));
    }

    #[test]
    fn timestamps_become_iso_8601() {
        assert_eq!(timestamptz("2024-01-02 03:04:05.123+00"), "2024-01-02T03:04:05.123+00:00");
        assert_eq!(timestamptz("2024-01-02 03:04:05-0530"), "2024-01-02T03:04:05-05:30");
        assert_eq!(timestamptz("2024-01-02 03:04:05+05:30"), "2024-01-02T03:04:05+05:30");
        assert_eq!(timestamptz("infinity"), "infinity");
        assert_eq!(timestamp("2024-01-02 03:04:05"), "2024-01-02T03:04:05");
    }

    #[test]
    fn arrays() {
        let ints = Kind::Array(Box::new(Kind::Integer), b',');
        assert_eq!(to_json(&ints, "{1,2,NULL}"), json!([1, 2, null]));
        assert_eq!(to_json(&ints, "{{1,2},{3,4}}"), json!([[1, 2], [3, 4]]));
        assert_eq!(to_json(&ints, "[0:1]={5,6}"), json!([5, 6]));
        assert_eq!(to_json(&ints, "{}"), json!([]));
        let texts = Kind::Array(Box::new(Kind::Text), b',');
        assert_eq!(to_json(&texts, r#"{a,"b c","d\"e","NULL",NULL}"#), json!(["a", "b c", "d\"e", "NULL", null]));
        assert_eq!(to_json(&texts, "{unterminated"), json!("{unterminated"));
        let boxes = Kind::Array(Box::new(Kind::Text), b';');
        assert_eq!(to_json(&boxes, "{(1,1),(0,0);(2,2),(1,1)}"), json!(["(1,1),(0,0)", "(2,2),(1,1)"]));
    }

    #[test]
    fn composites() {
        let k = Kind::Composite(vec![("n".into(), Kind::Integer), ("s".into(), Kind::Text), ("z".into(), Kind::Text)]);
        assert_eq!(to_json(&k, r#"(1,"a ""b"" c",)"#), json!({"n": 1, "s": "a \"b\" c", "z": null}));
        assert_eq!(to_json(&k, "(1,2)"), json!("(1,2)"), "wrong arity stays text");
    }

    #[test]
    fn never_panics_on_garbage() {
        let kinds = [
            Kind::Array(Box::new(Kind::Integer), b','),
            Kind::Composite(vec![("a".into(), Kind::Text)]),
            Kind::TimestampTz,
        ];
        let inputs = ["", "{", "}", "{\"", "{\\", "(", ")", "(\"", "(\\", "[1:2]", "[", "{{{{", "{a,{b}}", "2024-01-02 x+"];
        for k in &kinds {
            for i in inputs {
                let _ = to_json(k, i);
            }
        }
    }
}
