//! `postgres_changes` filters: `column=op.value`, several joined by `,`
//! (AND), any op negatable with `not.`, evaluated in process against the
//! row image. Supported: `eq neq lt lte gt gte in is like ilike isdistinct`;
//! `match`/`imatch` are refused with a clear error.

use serde_json::Value;

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    /// Column name.
    pub column: String,
    /// Operator.
    pub op: Op,
    /// Negated with `not.`.
    pub negate: bool,
    /// Operand(s): one value, or the list of `in`.
    pub values: Vec<String>,
}

/// Filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`.
    Eq,
    /// `<>`.
    Neq,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `= any(...)`.
    In,
    /// `is null|true|false|unknown`.
    Is,
    /// `like`.
    Like,
    /// `ilike`.
    Ilike,
    /// `is distinct from`.
    IsDistinct,
}

/// A parsed filter (empty matches everything).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter(pub Vec<Cond>);

/// Splits at top-level commas (outside quotes and parentheses).
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quoted, mut escape) = (0i32, false, false);
    for c in s.chars() {
        if escape {
            cur.push(c);
            escape = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escape = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '(' if !quoted => {
                depth += 1;
                cur.push(c);
            }
            ')' if !quoted => {
                depth -= 1;
                cur.push(c);
            }
            ',' if !quoted && depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        let mut out = String::new();
        let mut esc = false;
        for c in t[1..t.len() - 1].chars() {
            if esc {
                out.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else {
                out.push(c);
            }
        }
        out
    } else {
        t.to_owned()
    }
}

impl Filter {
    /// Parses a filter string; an empty one matches everything.
    pub fn parse(s: &str) -> Result<Filter, String> {
        if s.trim().is_empty() {
            return Ok(Filter::default());
        }
        if s.trim() == "undefined" {
            return Err("invalid filter \"undefined\"".into());
        }
        let mut conds = Vec::new();
        for part in split_top(s) {
            let (column, rest) = part.split_once('=').ok_or_else(|| format!("invalid filter {part:?}: expected column=op.value"))?;
            let column = column.trim();
            if column.is_empty() {
                return Err(format!("invalid filter {part:?}: missing column"));
            }
            let (negate, rest) = match rest.strip_prefix("not.") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let (op, value) = rest.split_once('.').ok_or_else(|| format!("invalid filter {part:?}: expected op.value"))?;
            let op = match op {
                "eq" => Op::Eq,
                "neq" => Op::Neq,
                "lt" => Op::Lt,
                "lte" => Op::Lte,
                "gt" => Op::Gt,
                "gte" => Op::Gte,
                "in" => Op::In,
                "is" => Op::Is,
                "like" => Op::Like,
                "ilike" => Op::Ilike,
                "isdistinct" => Op::IsDistinct,
                "match" | "imatch" => return Err(format!("filter operator {op} is not supported by this server")),
                other => return Err(format!("unknown filter operator {other:?}")),
            };
            let values = if op == Op::In {
                let inner = value.trim().strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(|| format!("invalid filter {part:?}: in needs (a,b,...)"))?;
                split_top(inner).iter().map(|v| unquote(v)).collect()
            } else {
                vec![unquote(value)]
            };
            if op == Op::Is && !["null", "true", "false", "unknown"].contains(&values[0].to_ascii_lowercase().as_str()) {
                return Err(format!("invalid filter {part:?}: is takes null, true, false or unknown"));
            }
            conds.push(Cond { column: column.to_owned(), op, negate, values });
        }
        Ok(Filter(conds))
    }

    /// The columns the filter reads.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|c| c.column.as_str())
    }

    /// Whether a row passes.
    pub fn matches(&self, row: &serde_json::Map<String, Value>) -> bool {
        self.0.iter().all(|c| {
            let v = row.get(&c.column).unwrap_or(&Value::Null);
            let r = eval(c, v);
            if c.negate {
                !r
            } else {
                r
            }
        })
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn cmp(v: &Value, operand: &str) -> Option<std::cmp::Ordering> {
    match v {
        Value::Null => None,
        Value::Number(n) => {
            let a = n.as_f64()?;
            let b = operand.trim().parse::<f64>().ok()?;
            a.partial_cmp(&b)
        }
        Value::Bool(b) => {
            let o = match operand.trim() {
                "true" | "t" => true,
                "false" | "f" => false,
                _ => return None,
            };
            Some(b.cmp(&o))
        }
        other => text_of(other).map(|s| s.as_str().cmp(operand)),
    }
}

fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if fold {
        (text.to_lowercase().chars().collect(), pattern.to_lowercase().chars().collect())
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Iterative wildcard match: % any run, _ one char (PostgREST also accepts *).
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] != '*' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '%' || p[pi] == '*') {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && (p[pi] == '%' || p[pi] == '*') {
        pi += 1;
    }
    pi == p.len()
}

fn eval(c: &Cond, v: &Value) -> bool {
    use std::cmp::Ordering::*;
    let operand = c.values.first().map(String::as_str).unwrap_or("");
    match c.op {
        Op::Eq => cmp(v, operand) == Some(Equal),
        Op::Neq => matches!(cmp(v, operand), Some(Less | Greater)),
        Op::Lt => cmp(v, operand) == Some(Less),
        Op::Lte => matches!(cmp(v, operand), Some(Less | Equal)),
        Op::Gt => cmp(v, operand) == Some(Greater),
        Op::Gte => matches!(cmp(v, operand), Some(Greater | Equal)),
        Op::In => c.values.iter().any(|o| cmp(v, o) == Some(Equal)),
        Op::Is => match operand.to_ascii_lowercase().as_str() {
            "null" | "unknown" => v.is_null(),
            "true" => v == &Value::Bool(true),
            "false" => v == &Value::Bool(false),
            _ => false,
        },
        Op::Like => text_of(v).is_some_and(|t| like(&t, operand, false)),
        Op::Ilike => text_of(v).is_some_and(|t| like(&t, operand, true)),
        Op::IsDistinct => match v {
            Value::Null => !operand.eq_ignore_ascii_case("null"),
            _ => cmp(v, operand) != Some(Equal),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn operators() {
        let r = row(json!({"id": 5, "name": "Alice, B", "done": true, "note": null, "tag": "x"}));
        let ok = |f: &str| Filter::parse(f).expect(f).matches(&r);
        assert!(ok("id=eq.5") && !ok("id=eq.6") && ok("id=neq.6"));
        assert!(ok("id=gt.4") && ok("id=gte.5") && ok("id=lt.6") && ok("id=lte.5") && !ok("id=lt.5"));
        assert!(ok("id=in.(1,5,9)") && !ok("id=in.(1,2)") && ok("id=not.in.(1,2)"));
        assert!(ok("name=eq.\"Alice, B\"") && ok("name=in.(\"Alice, B\",z)"));
        assert!(ok("done=is.true") && ok("note=is.null") && !ok("note=not.is.null"));
        assert!(ok("name=like.Ali%") && ok("name=ilike.ali%") && !ok("name=like.ali%") && ok("tag=like._"));
        assert!(ok("note=isdistinct.x") && !ok("tag=isdistinct.x"));
        assert!(ok("id=eq.5,done=is.true") && !ok("id=eq.5,done=is.false"));
        assert!(ok("") && ok("  "));
    }

    #[test]
    fn errors_are_clear() {
        for (f, needle) in [("undefined", "undefined"), ("id", "column=op"), ("id=zz.1", "unknown"), ("id=match.x", "not supported"), ("id=in.1", "in needs"), ("id=is.maybe", "is takes")] {
            let e = Filter::parse(f).expect_err(f);
            assert!(e.contains(needle), "{f}: {e}");
        }
    }
}
