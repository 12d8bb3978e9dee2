//! Property tests over arbitrary query strings: the parser never panics,
//! and the SQL generated from whatever parses never contains an unquoted
//! identifier taken from the input (every word outside `"…"` quotes and
//! `$n` placeholders is one of the fixed words the generator emits).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::plan;
use super::query::{parse_query, Limits};
use super::schema_cache::{Arg, Function, Returns};
use super::sql::{read, rpc};

const PIECES: &[&str] = &[
    "a", "b", "x", "id", "select", "order", "limit", "offset", "or", "and", "not", "eq", "neq", "in", "is", "null", "like",
    "ilike", "fts", "cs", "any", "all", "count", "sum", "asc", "desc", "nullsfirst", ".", ",", ":", "::", "(", ")", "!",
    "\"", "*", "->", "->>", "{", "}", "\\", "'", ";", "--", " ", "-", "=", "&", "%", "%22", "%00", "1", "-1", "drop table x",
    "...", "inner", "int", "text[]", "\u{e9}", "\0",
];

fn piece_string(rng: &mut StdRng, max: usize) -> String {
    let n = rng.random_range(0..max);
    (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect()
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|x| x.trim_start_matches('=').to_owned()).unwrap_or_default()
}

/// Words the SQL generator itself writes.
const FIXED_WORDS: &[&str] = &[
    "select", "from", "as", "where", "and", "or", "not", "is", "null", "true", "false", "unknown", "in", "like", "ilike",
    "any", "all", "distinct", "order", "by", "asc", "desc", "nulls", "first", "last", "limit", "offset", "group", "count",
    "sum", "avg", "min", "max", "cast", "coalesce", "json_agg", "row_to_json", "exists", "to_tsvector", "to_tsquery",
    "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery", "regconfig", "text", "int4", "int8", "json", "jsonb",
    "with", "pgrst_source", "pgrst_args", "_pgrst_t", "pgrst_scalar", "lateral", "left", "join", "on", "to_json",
    "json_to_record", "_a", "_l", "integer", "explain", "format", "case", "when", "then", "else", "end", "nullif",
    "current_setting",
];

/// Every word outside quoted identifiers and placeholders.
fn bare_words(sql: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = sql.chars().peekable();
    let mut cur = String::new();
    while let Some(c) = chars.next() {
        if c == '"' {
            // a quoted identifier: skip to the closing quote (doubled quotes stay inside)
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                    }
                    Some('"') | None => break,
                    Some(_) => {}
                }
            }
            continue;
        }
        if c == '\'' {
            // only fixed literals ('[]', 'null', '' and the response settings' names) are ever written
            let mut lit = String::new();
            for n in chars.by_ref() {
                if n == '\'' {
                    break;
                }
                lit.push(n);
            }
            assert!(
                matches!(lit.as_str(), "[]" | "null" | "" | "response.headers" | "response.status"),
                "unexpected literal '{lit}' in {sql}"
            );
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '$' {
            cur.push(c);
        } else if !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn check_sql(sql: &str) {
    for w in bare_words(sql) {
        let placeholder = w.strip_prefix('$').is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        let number = w.chars().all(|c| c.is_ascii_digit());
        assert!(
            placeholder || number || FIXED_WORDS.contains(&w.as_str()),
            "word {w:?} is not quoted in generated SQL:\n{sql}"
        );
    }
}

fn function(returns: Returns, set: bool) -> Function {
    Function {
        schema: "public".into(),
        name: "f\"; drop".into(),
        args: vec![Arg { name: "a\" or 1=1".into(), data_type: "integer".into(), has_default: false, variadic: false }],
        returns_set: set,
        returns,
        volatility: 's',
        first_arg_table: None,
        returns_table: None,
        media: None,
    }
}

#[test]
fn arbitrary_query_strings_never_panic_and_never_leak_identifiers() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let limits = Limits::default();
    let fns = [function(Returns::Composite, true), function(Returns::Scalar, true), function(Returns::Scalar, false)];
    let mut parsed = 0;
    for i in 0..20_000 {
        let raw = if i % 4 == 0 {
            // entirely arbitrary text
            piece_string(&mut rng, 30)
        } else {
            let mut parts = vec![format!("select={}", enc(&piece_string(&mut rng, 12)))];
            for _ in 0..rng.random_range(0..4) {
                let key = ["or", "and", "not.or", "order", "limit", "x.order"][rng.random_range(0..6)].to_owned();
                let key = if rng.random_bool(0.5) { key } else { piece_string(&mut rng, 4) };
                let op = ["eq.", "in.(", "not.like.", "fts(", "is.", "cs.{", "or(", ""][rng.random_range(0..8)];
                parts.push(format!("{}={}", enc(&key), enc(&format!("{op}{}", piece_string(&mut rng, 10)))));
            }
            parts.join("&")
        };
        let Ok(q) = parse_query(&raw, &limits, &|_| false) else { continue };
        let Ok(node) = plan::plan_untyped("public", "t\"x", &q) else { continue };
        parsed += 1;
        check_sql(&read::read_statement(&node, true, read::Body::Json).text);
        check_sql(&read::planned_count_statement(&node).text);
        for f in &fns {
            let args = rpc::Args::Named("{}".into(), f.args.iter().collect());
            check_sql(&rpc::statement(f, &args, &node, true, read::Body::Json).text);
        }
    }
    assert!(parsed > 1000, "only {parsed} inputs parsed: the generator needs more valid shapes");
}

#[test]
fn bare_words_sees_through_quotes() {
    assert_eq!(bare_words("select \"a\"\" b\" from $1 as \"x\""), vec!["select", "from", "$1", "as"]);
}
