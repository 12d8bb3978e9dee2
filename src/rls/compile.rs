//! Policies of common shapes compiled to in-process predicates.
//!
//! Input is a policy's `USING` expression as PostgreSQL deparses it
//! (`pg_get_expr`), e.g. `(auth.uid() = user_id)`,
//! `((auth.jwt() ->> 'tenant'::text) = (tenant_id)::text)`,
//! `(status = ANY (ARRAY['a'::text, 'b'::text]))`. Supported: `true`/`false`,
//! columns, string/number/boolean constants with casts, `auth.uid()`,
//! `auth.role()`, `auth.email()`, `auth.jwt() -> / ->> 'key'` chains,
//! `( SELECT auth.uid() AS uid)`, `= <> < <= > >=`, `IS [NOT] NULL`,
//! `= ANY (ARRAY[...])`, `IN (...)`, `AND`, `OR`, `NOT`. Anything else is
//! not compiled, and the policy is evaluated by PostgreSQL instead.
//!
//! Evaluation follows SQL's three-valued logic (`None` is NULL); a row is
//! visible only when the combined expression is `Some(true)`.

use serde_json::{Map, Value};

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Const(Value),
    /// A column of the row.
    Column(String),
    /// `auth.uid()`: the `sub` claim.
    Uid,
    /// `auth.role()`: the `role` claim.
    Role,
    /// `auth.email()`: the `email` claim.
    Email,
    /// `auth.jwt()` followed by `->`/`->>` steps (`true` for `->>`, text).
    Jwt(Vec<(String, bool)>),
    /// A cast to a type (`text`, `uuid`, numeric types, `boolean`).
    Cast(Box<Expr>, String),
    /// A comparison.
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
    /// `IS NULL` (`false`) / `IS NOT NULL` (`true`).
    IsNull(Box<Expr>, bool),
    /// `x = ANY (list)`.
    In(Box<Expr>, Vec<Expr>),
    /// `AND`.
    And(Vec<Expr>),
    /// `OR`.
    Or(Vec<Expr>),
    /// `NOT`.
    Not(Box<Expr>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    const SYMS: [&str; 14] = ["->>", "->", "::", "<>", "<=", ">=", "!=", "(", ")", ",", "=", "<", ">", "."];
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' {
            let mut v = String::new();
            i += 1;
            loop {
                match b.get(i)? {
                    b'\'' if b.get(i + 1) == Some(&b'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    _ => {
                        let ch = s[i..].chars().next()?;
                        v.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push(Tok::Str(v));
        } else if c == b'"' {
            let end = s[i + 1..].find('"')? + i + 1;
            out.push(Tok::Ident(s[i + 1..end].to_owned()));
            i = end + 1;
        } else if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit) && !matches!(out.last(), Some(Tok::Ident(_) | Tok::Num(_) | Tok::Str(_)) | Some(Tok::Sym(")")))) {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Num(s[start..i].to_owned()));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_owned()));
        } else if c == b'[' || c == b']' {
            out.push(Tok::Sym(if c == b'[' { "[" } else { "]" }));
            i += 1;
        } else {
            let sym = SYMS.iter().find(|sym| s[i..].starts_with(**sym))?;
            out.push(Tok::Sym(sym));
            i += sym.len();
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(i)) if i.eq_ignore_ascii_case(k))
    }
    fn sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }
    fn eat_sym(&mut self, s: &str) -> Option<()> {
        self.sym(s).then(|| self.at += 1)
    }
    fn eat_kw(&mut self, k: &str) -> Option<()> {
        self.kw(k).then(|| self.at += 1)
    }

    fn or(&mut self) -> Option<Expr> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let mut parts = vec![self.and()?];
        while self.eat_kw("OR").is_some() {
            parts.push(self.and()?);
        }
        self.depth -= 1;
        Some(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self) -> Option<Expr> {
        let mut parts = vec![self.not()?];
        while self.eat_kw("AND").is_some() {
            parts.push(self.not()?);
        }
        Some(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn not(&mut self) -> Option<Expr> {
        if self.eat_kw("NOT").is_some() {
            return Some(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Option<Expr> {
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Some(CmpOp::Eq),
            Some(Tok::Sym("<>")) | Some(Tok::Sym("!=")) => Some(CmpOp::Ne),
            Some(Tok::Sym("<")) => Some(CmpOp::Lt),
            Some(Tok::Sym("<=")) => Some(CmpOp::Le),
            Some(Tok::Sym(">")) => Some(CmpOp::Gt),
            Some(Tok::Sym(">=")) => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.at += 1;
            if op == CmpOp::Eq && self.kw("ANY") {
                self.at += 1;
                self.eat_sym("(")?;
                self.eat_kw("ARRAY")?;
                self.eat_sym("[")?;
                let mut items = vec![self.operand()?];
                while self.eat_sym(",").is_some() {
                    items.push(self.operand()?);
                }
                self.eat_sym("]")?;
                if self.eat_sym("::").is_some() {
                    self.type_name()?;
                }
                self.eat_sym(")")?;
                return Some(Expr::In(Box::new(left), items));
            }
            let right = self.operand()?;
            return Some(Expr::Cmp(Box::new(left), op, Box::new(right)));
        }
        if self.eat_kw("IS").is_some() {
            let negated = self.eat_kw("NOT").is_some();
            self.eat_kw("NULL")?;
            return Some(Expr::IsNull(Box::new(left), negated));
        }
        if self.eat_kw("IN").is_some() {
            self.eat_sym("(")?;
            let mut items = vec![self.operand()?];
            while self.eat_sym(",").is_some() {
                items.push(self.operand()?);
            }
            self.eat_sym(")")?;
            return Some(Expr::In(Box::new(left), items));
        }
        Some(left)
    }

    fn type_name(&mut self) -> Option<String> {
        let Some(Tok::Ident(t)) = self.peek().cloned() else { return None };
        self.at += 1;
        let mut name = t.to_ascii_lowercase();
        // `character varying`, `double precision`, `timestamp with time zone`: keep the first word.
        while let Some(Tok::Ident(w)) = self.peek() {
            if ["varying", "precision", "with", "without", "time", "zone"].contains(&w.to_ascii_lowercase().as_str()) {
                self.at += 1;
            } else {
                break;
            }
        }
        if self.eat_sym("[").is_some() {
            self.eat_sym("]")?;
            name.push_str("[]");
        }
        Some(name)
    }

    fn operand(&mut self) -> Option<Expr> {
        let mut e = self.primary()?;
        loop {
            if self.eat_sym("::").is_some() {
                let t = self.type_name()?;
                e = Expr::Cast(Box::new(e), t);
            } else if self.sym("->") || self.sym("->>") {
                let text = self.sym("->>");
                self.at += 1;
                let key = match self.primary()? {
                    Expr::Const(Value::String(k)) => k,
                    Expr::Cast(inner, _) => match *inner {
                        Expr::Const(Value::String(k)) => k,
                        _ => return None,
                    },
                    _ => return None,
                };
                let mut key = key;
                // `'key'::text` arrives as a cast already consumed by primary's loop? handle both.
                if self.eat_sym("::").is_some() {
                    self.type_name()?;
                    key = key.clone();
                }
                match e {
                    Expr::Jwt(mut steps) => {
                        steps.push((key, text));
                        e = Expr::Jwt(steps);
                    }
                    _ => return None,
                }
            } else {
                return Some(e);
            }
        }
    }

    fn primary(&mut self) -> Option<Expr> {
        match self.peek()?.clone() {
            Tok::Sym("(") => {
                self.at += 1;
                if self.kw("SELECT") {
                    self.at += 1;
                    let inner = self.operand()?;
                    if self.eat_kw("AS").is_some() {
                        let Some(Tok::Ident(_)) = self.peek() else { return None };
                        self.at += 1;
                    }
                    self.eat_sym(")")?;
                    return Some(inner);
                }
                let e = self.or()?;
                self.eat_sym(")")?;
                Some(e)
            }
            Tok::Str(s) => {
                self.at += 1;
                Some(Expr::Const(Value::String(s)))
            }
            Tok::Num(n) => {
                self.at += 1;
                let v: f64 = n.parse().ok()?;
                Some(Expr::Const(serde_json::Number::from_f64(v).map(Value::Number)?))
            }
            Tok::Ident(id) => {
                self.at += 1;
                let lower = id.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => return Some(Expr::Const(Value::Bool(true))),
                    "false" => return Some(Expr::Const(Value::Bool(false))),
                    "null" => return Some(Expr::Const(Value::Null)),
                    _ => {}
                }
                if lower == "auth" && self.eat_sym(".").is_some() {
                    let Some(Tok::Ident(f)) = self.peek().cloned() else { return None };
                    self.at += 1;
                    self.eat_sym("(")?;
                    self.eat_sym(")")?;
                    return match f.as_str() {
                        "uid" => Some(Expr::Uid),
                        "role" => Some(Expr::Role),
                        "email" => Some(Expr::Email),
                        "jwt" => Some(Expr::Jwt(Vec::new())),
                        _ => None,
                    };
                }
                if self.sym("(") || self.sym(".") {
                    // Any other function call or qualified name: not compiled.
                    return None;
                }
                Some(Expr::Column(id))
            }
            _ => None,
        }
    }
}

/// Compiles a deparsed policy expression; `None` when its shape is not supported.
pub fn compile(text: &str) -> Option<Expr> {
    let toks = tokenize(text)?;
    let mut p = Parser { toks, at: 0, depth: 0 };
    let e = p.or()?;
    (p.at == p.toks.len()).then_some(e)
}

/// A scalar during evaluation (`None` is NULL).
type Scalar = Option<Value>;

fn value(e: &Expr, row: &Map<String, Value>, claims: &Value) -> Scalar {
    let claim = |k: &str| claims.get(k).filter(|v| !v.is_null()).cloned();
    match e {
        Expr::Const(v) => Some(v.clone()).filter(|v| !v.is_null()),
        Expr::Column(c) => row.get(c).cloned().filter(|v| !v.is_null()),
        Expr::Uid => claim("sub"),
        Expr::Role => claim("role"),
        Expr::Email => claim("email"),
        Expr::Jwt(steps) => {
            let mut cur = claims.clone();
            for (k, text) in steps {
                cur = cur.get(k)?.clone();
                if *text {
                    return match cur {
                        Value::Null => None,
                        Value::String(s) => Some(Value::String(s)),
                        other => Some(Value::String(other.to_string())),
                    };
                }
            }
            Some(cur).filter(|v| !v.is_null())
        }
        Expr::Cast(inner, ty) => {
            let v = value(inner, row, claims)?;
            Some(match ty.as_str() {
                "text" | "character" | "varchar" | "uuid" | "name" | "citext" => match v {
                    Value::String(s) => Value::String(if ty == "uuid" { s.to_ascii_lowercase() } else { s }),
                    other => Value::String(other.to_string()),
                },
                "integer" | "bigint" | "smallint" | "int4" | "int8" | "int2" | "numeric" | "real" | "double" | "float8" | "float4" => match v {
                    Value::String(s) => serde_json::Number::from_f64(s.trim().parse().ok()?).map(Value::Number)?,
                    n @ Value::Number(_) => n,
                    _ => return None,
                },
                "boolean" | "bool" => match v {
                    Value::String(s) => Value::Bool(matches!(s.as_str(), "t" | "true")),
                    b @ Value::Bool(_) => b,
                    _ => return None,
                },
                "jsonb" | "json" => v,
                _ => return None,
            })
        }
        other => truth(other, row, claims).map(Value::Bool),
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Number(x), Value::String(y)) | (Value::String(y), Value::Number(x)) => {
            let o = x.as_f64()?.partial_cmp(&y.trim().parse::<f64>().ok()?)?;
            Some(if matches!(a, Value::Number(_)) { o } else { o.reverse() })
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (x, y) => (x == y).then_some(std::cmp::Ordering::Equal),
    }
}

/// Three-valued truth of a boolean expression.
pub fn truth(e: &Expr, row: &Map<String, Value>, claims: &Value) -> Option<bool> {
    use std::cmp::Ordering::*;
    match e {
        Expr::And(parts) => {
            let mut unknown = false;
            for p in parts {
                match truth(p, row, claims) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(true)
            }
        }
        Expr::Or(parts) => {
            let mut unknown = false;
            for p in parts {
                match truth(p, row, claims) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        Expr::Not(inner) => truth(inner, row, claims).map(|b| !b),
        Expr::IsNull(inner, negated) => Some(value(inner, row, claims).is_none() != *negated),
        Expr::Cmp(l, op, r) => {
            let (a, b) = (value(l, row, claims)?, value(r, row, claims)?);
            let o = compare(&a, &b);
            Some(match op {
                CmpOp::Eq => o == Some(Equal),
                CmpOp::Ne => matches!(o, Some(Less | Greater)) || (o.is_none() && a != b),
                CmpOp::Lt => o == Some(Less),
                CmpOp::Le => matches!(o, Some(Less | Equal)),
                CmpOp::Gt => o == Some(Greater),
                CmpOp::Ge => matches!(o, Some(Greater | Equal)),
            })
        }
        Expr::In(l, items) => {
            let a = value(l, row, claims)?;
            let mut unknown = false;
            for i in items {
                match value(i, row, claims) {
                    Some(b) if compare(&a, &b) == Some(Equal) => return Some(true),
                    None => unknown = true,
                    _ => {}
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        other => match value(other, row, claims)? {
            Value::Bool(b) => Some(b),
            _ => None,
        },
    }
}

/// The claims an expression reads (for grouping subscribers into audiences).
pub fn claims_read(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Uid => out.push("sub".into()),
        Expr::Role => out.push("role".into()),
        Expr::Email => out.push("email".into()),
        Expr::Jwt(steps) => out.push(steps.first().map(|(k, _)| k.clone()).unwrap_or_else(|| "*".into())),
        Expr::Cast(i, _) | Expr::Not(i) | Expr::IsNull(i, _) => claims_read(i, out),
        Expr::Cmp(a, _, b) => {
            claims_read(a, out);
            claims_read(b, out);
        }
        Expr::In(a, items) => {
            claims_read(a, out);
            items.iter().for_each(|i| claims_read(i, out));
        }
        Expr::And(p) | Expr::Or(p) => p.iter().for_each(|i| claims_read(i, out)),
        Expr::Const(_) | Expr::Column(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(policy: &str, row: Value, claims: Value) -> Option<bool> {
        let e = compile(policy).unwrap_or_else(|| panic!("{policy} should compile"));
        truth(&e, row.as_object().expect("row"), &claims)
    }

    #[test]
    fn common_shapes() {
        let u = "6f1c1e36-8d4b-4c53-9a1a-5d2f8a0e7c11";
        let claims = json!({"sub": u, "role": "authenticated", "email": "a@b.c", "app_metadata": {"tenant": "t1", "role": "admin"}});
        let row = json!({"user_id": u, "status": "published", "priority": 7, "tenant_id": "t1", "archived": false, "note": null});
        for (p, want) in [
            ("(auth.uid() = user_id)", Some(true)),
            ("(user_id = auth.uid())", Some(true)),
            ("(( SELECT auth.uid() AS uid) = user_id)", Some(true)),
            ("(auth.role() = 'authenticated'::text)", Some(true)),
            ("true", Some(true)),
            ("(status = 'published'::text)", Some(true)),
            ("(priority > 5)", Some(true)),
            ("(priority <= 5)", Some(false)),
            ("(status = ANY (ARRAY['draft'::text, 'published'::text]))", Some(true)),
            ("((auth.jwt() -> 'app_metadata'::text) ->> 'tenant'::text) = tenant_id", Some(true)),
            ("(((auth.jwt() -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text)", Some(true)),
            ("((auth.uid() = user_id) OR (status = 'x'::text))", Some(true)),
            ("((auth.uid() = user_id) AND (NOT archived))", Some(true)),
            ("(note IS NULL)", Some(true)),
            ("(note = 'x'::text)", None),
            ("((user_id)::text = (auth.uid())::text)", Some(true)),
            ("(auth.email() = 'a@b.c'::text)", Some(true)),
        ] {
            assert_eq!(eval(p, row.clone(), claims.clone()), want, "{p}");
        }
        assert_eq!(eval("(auth.uid() = user_id)", row, json!({"role": "anon"})), None, "no sub: NULL, not visible");
    }

    #[test]
    fn unsupported_shapes_are_not_compiled() {
        for p in [
            "(EXISTS ( SELECT 1 FROM teams t WHERE (t.id = team_id)))",
            "(public.is_member(team_id))",
            "(created_at > (now() - '1 day'::interval))",
            "(title ~~ 'a%'::text)",
        ] {
            assert!(compile(p).is_none(), "{p} must fall back to PostgreSQL");
        }
    }

    #[test]
    fn claims_read_for_audiences() {
        let e = compile("((auth.uid() = user_id) OR ((auth.jwt() ->> 'tenant'::text) = tenant_id))").expect("compiles");
        let mut c = Vec::new();
        claims_read(&e, &mut c);
        assert_eq!(c, vec!["sub", "tenant"]);
    }

    #[test]
    fn garbage_never_panics() {
        for s in ["", "(", ")", "((((", "'", "\"x", "auth.", "auth.uid(", "a = ANY (", "a ->> 'b'", "NOT", "x::", "1 = -", "[", "a = ANY (ARRAY[1,"] {
            let _ = compile(s);
        }
    }
}
