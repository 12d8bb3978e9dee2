//! Filters: `[not.]op[(modifier)].value` values, `or=(…)`/`and=(…)` trees
//! (nested, `not.` negated, values double-quoted with `\` escapes), and
//! `order=` terms.

use super::{Cursor, Field, Limits};
use crate::rest::errors::RestError;

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `like` (`*` means `%`)
    Like,
    /// `ilike`
    Ilike,
    /// `~`
    Match,
    /// `~*`
    Imatch,
    /// `is null|not_null|true|false|unknown`
    Is,
    /// `is distinct from`
    IsDistinct,
    /// `in (…)`
    In,
    /// `@>`
    Cs,
    /// `<@`
    Cd,
    /// `&&`
    Ov,
    /// `<<`
    Sl,
    /// `>>`
    Sr,
    /// `&<`
    Nxl,
    /// `&>`
    Nxr,
    /// `-|-`
    Adj,
    /// Full-text search with `to_tsquery`.
    Fts,
    /// `plainto_tsquery`
    Plfts,
    /// `phraseto_tsquery`
    Phfts,
    /// `websearch_to_tsquery`
    Wfts,
}

impl Op {
    fn from_name(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "match" => Op::Match,
            "imatch" => Op::Imatch,
            "is" => Op::Is,
            "isdistinct" => Op::IsDistinct,
            "in" => Op::In,
            "cs" => Op::Cs,
            "cd" => Op::Cd,
            "ov" => Op::Ov,
            "sl" => Op::Sl,
            "sr" => Op::Sr,
            "nxl" => Op::Nxl,
            "nxr" => Op::Nxr,
            "adj" => Op::Adj,
            "fts" => Op::Fts,
            "plfts" => Op::Plfts,
            "phfts" => Op::Phfts,
            "wfts" => Op::Wfts,
            _ => return None,
        })
    }

    /// The SQL operator for binary operators (fixed text, never input).
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Neq => "<>",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Like => "like",
            Op::Ilike => "ilike",
            Op::Match => "~",
            Op::Imatch => "~*",
            Op::IsDistinct => "is distinct from",
            Op::Cs => "@>",
            Op::Cd => "<@",
            Op::Ov => "&&",
            Op::Sl => "<<",
            Op::Sr => ">>",
            Op::Nxl => "&<",
            Op::Nxr => "&>",
            Op::Adj => "-|-",
            Op::Is | Op::In => "",
            Op::Fts => "to_tsquery",
            Op::Plfts => "plainto_tsquery",
            Op::Phfts => "phraseto_tsquery",
            Op::Wfts => "websearch_to_tsquery",
        }
    }

    fn quantifiable(self) -> bool {
        matches!(self, Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte | Op::Like | Op::Ilike | Op::Match | Op::Imatch)
    }

    /// Full-text operators.
    pub fn is_fts(self) -> bool {
        matches!(self, Op::Fts | Op::Plfts | Op::Phfts | Op::Wfts)
    }
}

/// `(any)` / `(all)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// `op any (array)`
    Any,
    /// `op all (array)`
    All,
}

/// `is.` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    /// `null`
    Null,
    /// `not_null`
    NotNull,
    /// `true`
    True,
    /// `false`
    False,
    /// `unknown`
    Unknown,
}

/// The right-hand side of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// One value, passed as a bound parameter.
    Value(String),
    /// `in.(a,b)` items.
    List(Vec<String>),
    /// `is.` keyword.
    Is(IsValue),
    /// `op(any).{a,b}`: an array literal.
    Quantified(Quantifier, String),
    /// Full-text: optional config and the query.
    Fts(Option<String>, String),
}

/// One condition `field [not] op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The column (or JSON path).
    pub field: Field,
    /// `not.`
    pub negate: bool,
    /// The operator.
    pub op: Op,
    /// The operand.
    pub operand: Operand,
    /// `rel.col.op.value` in a logic tree: a column of the embedded
    /// resource `rel`. With an empty `field.name`, the embedded row itself
    /// (`rel.is.null` / `rel.not.is.null`), which the planner sets when
    /// `rel` is an embed rather than a column.
    pub relation: Option<String>,
}

/// A filter tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logic {
    /// A leaf.
    Cond(Condition),
    /// `and(…)` / `or(…)`, maybe negated.
    Group {
        /// `not.`
        negate: bool,
        /// `or` rather than `and`.
        or: bool,
        /// Members.
        items: Vec<Logic>,
    },
}

/// One `order` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    /// What to order by.
    pub field: Field,
    /// `.desc`
    pub desc: bool,
    /// `Some(true)` nullsfirst, `Some(false)` nullslast.
    pub nulls_first: Option<bool>,
    /// `rel(col)`: a column of a to-one embedded resource (a related order).
    pub relation: Option<String>,
}

fn filter_error(value: &str, details: impl Into<String>) -> RestError {
    RestError::parse(format!("\"failed to parse filter ({value})\" (line 1, column 1)"), details)
}

/// Parses a top-level filter value `[not.]op[(mod)].value` for `field`.
pub fn parse_condition(field: Field, value: &str, limits: &Limits) -> Result<Condition, RestError> {
    let (negate, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let Some((op_part, val)) = rest.split_once('.') else {
        return Err(filter_error(value, "expecting an operator and a value, e.g. eq.1"));
    };
    let (op_name, modifier) = match op_part.split_once('(') {
        Some((name, m)) => match m.strip_suffix(')') {
            Some(m) => (name, Some(m)),
            None => return Err(filter_error(value, "unclosed \"(\" in the operator")),
        },
        None => (op_part, None),
    };
    let Some(op) = Op::from_name(op_name) else {
        return Err(filter_error(value, format!("unknown operator \"{op_name}\"")));
    };
    let operand = match (op, modifier) {
        (Op::In, None) => Operand::List(parse_list(val, value, limits)?),
        (Op::Is, None) => Operand::Is(match val.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => return Err(filter_error(value, "is accepts null, not_null, true, false or unknown")),
        }),
        (o, m) if o.is_fts() => {
            if m.is_some_and(|m| m.is_empty() || !m.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')) {
                return Err(filter_error(value, "invalid text search configuration"));
            }
            Operand::Fts(m.map(str::to_owned), val.to_owned())
        }
        (o, Some(q)) if o.quantifiable() => {
            let quant = match q {
                "any" => Quantifier::Any,
                "all" => Quantifier::All,
                _ => return Err(filter_error(value, "the modifier must be any or all")),
            };
            if !(val.starts_with('{') && val.ends_with('}')) {
                return Err(filter_error(value, "a quantified operator takes a list {a,b}"));
            }
            if val.matches(',').count() + 1 > limits.max_in_list {
                return Err(filter_error(value, format!("more than {} list items", limits.max_in_list)));
            }
            Operand::Quantified(quant, val.to_owned())
        }
        (_, Some(_)) => return Err(filter_error(value, format!("the operator \"{op_name}\" takes no modifier"))),
        (_, None) => Operand::Value(val.to_owned()),
    };
    Ok(Condition { field, negate, op, operand, relation: None })
}

/// Parses `(a,b,"c,d")` into items; quotes are removed, `\` escapes the next character.
fn parse_list(val: &str, whole: &str, limits: &Limits) -> Result<Vec<String>, RestError> {
    let Some(inner) = val.strip_prefix('(').and_then(|v| v.strip_suffix(')')) else {
        return Err(filter_error(whole, "in takes a parenthesized list, e.g. in.(1,2)"));
    };
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    let items = split_top(inner, whole)?;
    if items.len() > limits.max_in_list {
        return Err(filter_error(whole, format!("more than {} list items", limits.max_in_list)));
    }
    Ok(items.into_iter().map(|s| unquote(&s)).collect())
}

/// Splits on commas that are outside double quotes and parentheses.
fn split_top(s: &str, whole: &str) -> Result<Vec<String>, RestError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
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
                depth = depth.checked_sub(1).ok_or_else(|| filter_error(whole, "unbalanced \")\""))?;
                cur.push(c);
            }
            ',' if !quoted && depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if quoted || depth != 0 {
        return Err(filter_error(whole, "unbalanced quotes or parentheses"));
    }
    out.push(cur);
    Ok(out)
}

/// Removes surrounding double quotes and `\` escapes inside them.
fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => s.to_owned(),
    }
}

/// Parses the value of `or=`/`and=` (`(a.eq.1,b.gt.2,and(c.is.null,…))`).
pub fn parse_logic(or: bool, negate: bool, value: &str, limits: &Limits) -> Result<Logic, RestError> {
    logic_group(or, negate, value, 1, limits)
}

fn logic_group(or: bool, negate: bool, value: &str, depth: usize, limits: &Limits) -> Result<Logic, RestError> {
    let err = |d: &str| RestError::parse(format!("\"failed to parse logic tree ({value})\" (line 1, column 1)"), d.to_owned());
    if depth > limits.max_logic_depth {
        return Err(err(&format!("logic trees are nested deeper than {} levels", limits.max_logic_depth)));
    }
    let Some(inner) = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) else {
        return Err(err("expecting \"(\" ... \")\""));
    };
    if inner.is_empty() {
        return Err(err("an empty logic tree"));
    }
    let mut items = Vec::new();
    for part in split_top(inner, value)? {
        let (neg, p) = match part.strip_prefix("not.") {
            Some(r) => (true, r),
            None => (false, part.as_str()),
        };
        if let Some(rest) = p.strip_prefix("and(") {
            items.push(logic_group(false, neg, &format!("({rest}"), depth + 1, limits)?);
            continue;
        }
        if let Some(rest) = p.strip_prefix("or(") {
            items.push(logic_group(true, neg, &format!("({rest}"), depth + 1, limits)?);
            continue;
        }
        let mut c = Cursor::new(p, "logic tree");
        let mut field = c.field().map_err(|_| err(&format!("expecting a column name in \"{part}\"")))?;
        if !c.eat('.') {
            return Err(err(&format!("expecting \".\" after the column in \"{part}\"")));
        }
        let mut rest = c.rest();
        // `rel.col.op.value`: the word after the first dot is a column, not an operator.
        let mut relation = None;
        let word = rest.split(['.', '(']).next().unwrap_or("");
        if field.json.is_empty() && word != "not" && Op::from_name(word).is_none() {
            let col = c.field().map_err(|_| err(&format!("expecting a column name in \"{part}\"")))?;
            if !c.eat('.') {
                return Err(err(&format!("expecting \".\" after the column in \"{part}\"")));
            }
            relation = Some(std::mem::replace(&mut field, col).name);
            rest = c.rest();
        }
        let mut cond = parse_condition(field, &rest, limits)?;
        cond.relation = relation;
        cond.negate ^= neg;
        if let Operand::Value(v) = &cond.operand {
            cond.operand = Operand::Value(unquote(v));
        }
        if let Operand::Fts(cfg, v) = &cond.operand {
            cond.operand = Operand::Fts(cfg.clone(), unquote(v));
        }
        items.push(Logic::Cond(cond));
    }
    Ok(Logic::Group { negate, or, items })
}

/// Parses `order=a.desc.nullslast,b`.
pub fn parse_order(value: &str) -> Result<Vec<OrderTerm>, RestError> {
    let mut out = Vec::new();
    if value.is_empty() {
        return Ok(out);
    }
    for part in value.split(',') {
        let mut c = Cursor::new(part, "order");
        let mut field = c.field()?;
        let mut relation = None;
        if field.json.is_empty() && c.eat('(') {
            relation = Some(std::mem::replace(&mut field, c.field()?).name);
            if !c.eat(')') {
                return Err(c.error("\")\""));
            }
        }
        let mut desc = false;
        let mut nulls_first = None;
        while c.eat('.') {
            match c.name()?.as_str() {
                "asc" => desc = false,
                "desc" => desc = true,
                "nullsfirst" => nulls_first = Some(true),
                "nullslast" => nulls_first = Some(false),
                _ => return Err(c.error("asc, desc, nullsfirst or nullslast")),
            }
        }
        if !c.at_end() {
            return Err(c.error("\".\" or \",\""));
        }
        out.push(OrderTerm { field, desc, nulls_first, relation });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(v: &str) -> Condition {
        parse_condition(Field::col("c"), v, &Limits::default()).unwrap_or_else(|e| panic!("{v}: {e:?}"))
    }

    #[test]
    fn every_operator_postgrest_js_emits() {
        for op in ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "isdistinct", "cs", "cd", "ov", "sl", "sr", "nxl", "nxr", "adj"] {
            assert_eq!(cond(&format!("{op}.x")).operand, Operand::Value("x".into()), "{op}");
        }
        assert_eq!(cond("is.null").operand, Operand::Is(IsValue::Null));
        assert_eq!(cond("in.(1,2,\"a,b\")").operand, Operand::List(vec!["1".into(), "2".into(), "a,b".into()]));
        assert_eq!(cond("in.()").operand, Operand::List(vec![]));
        assert!(cond("not.in.(1)").negate);
        assert_eq!(cond("fts(english).cat & dog").operand, Operand::Fts(Some("english".into()), "cat & dog".into()));
        assert_eq!(cond("wfts.a b").op, Op::Wfts);
        assert_eq!(cond("like(any).{a*,b*}").operand, Operand::Quantified(Quantifier::Any, "{a*,b*}".into()));
        assert_eq!(cond("eq.a.b.c").operand, Operand::Value("a.b.c".into()));
        assert_eq!(cond("eq.").operand, Operand::Value(String::new()));
    }

    #[test]
    fn bad_filters() {
        for bad in ["foo.1", "eq", "in.1,2", "in.(1", "is.maybe", "eq(any).x", "gt(foo).{1}", "fts(a;b).x", "in.(\"a)"] {
            assert!(parse_condition(Field::col("c"), bad, &Limits::default()).is_err(), "{bad}");
        }
        let huge = format!("in.({})", vec!["1"; 6000].join(","));
        assert!(parse_condition(Field::col("c"), &huge, &Limits::default()).is_err());
    }

    #[test]
    fn logic_trees() {
        let l = parse_logic(true, false, "(a.eq.1,and(b.gt.2,not.c.is.null),not.or(d.eq.\"x,y\",e.in.(1,2)))", &Limits::default())
            .expect("tree");
        let Logic::Group { or, items, .. } = l else { panic!() };
        assert!(or);
        assert_eq!(items.len(), 3);
        let Logic::Group { negate, items: inner, .. } = &items[2] else { panic!() };
        assert!(*negate);
        let Logic::Cond(c) = &inner[0] else { panic!() };
        assert_eq!(c.operand, Operand::Value("x,y".into()));
        for bad in ["a.eq.1", "(a.eq.1", "()", "(a)", "(a.zz.1)", "(and(a.eq.1)"] {
            assert!(parse_logic(true, false, bad, &Limits::default()).is_err(), "{bad}");
        }
        let deep = format!("({}a.eq.1{})", "or(".repeat(30), ")".repeat(30));
        assert!(parse_logic(true, false, &deep, &Limits::default()).is_err());
    }

    #[test]
    fn order_terms() {
        let o = parse_order("a.desc.nullslast,b,data->>x.asc").expect("order");
        assert_eq!(o.len(), 3);
        assert!(o[0].desc && o[0].nulls_first == Some(false));
        assert_eq!(o[2].field.json.len(), 1);
        assert!(parse_order("a.sideways").is_err());
        let o = parse_order("author(name).desc,id").expect("related order");
        assert_eq!((o[0].relation.as_deref(), o[0].field.name.as_str(), o[0].desc), (Some("author"), "name", true));
        assert_eq!(o[1].relation, None);
        for bad in ["author(name", "author()", "author(name).x", "a->b(c)"] {
            assert!(parse_order(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn embedded_columns_in_logic_trees() {
        let Ok(Logic::Group { items, .. }) =
            parse_logic(true, false, "(author.name.eq.bob,not.posts.title.like.*x*,posts.not.is.null,age.gt.1)", &Limits::default())
        else {
            panic!("parses")
        };
        let conds: Vec<&Condition> = items
            .iter()
            .map(|i| match i {
                Logic::Cond(c) => c,
                Logic::Group { .. } => panic!("no groups"),
            })
            .collect();
        assert_eq!((conds[0].relation.as_deref(), conds[0].field.name.as_str()), (Some("author"), "name"));
        assert!(conds[1].negate && conds[1].relation.as_deref() == Some("posts"));
        assert_eq!((conds[2].relation.as_deref(), conds[2].field.name.as_str(), conds[2].negate), (None, "posts", true));
        assert_eq!(conds[3].relation, None);
        assert!(parse_logic(true, false, "(a.b)", &Limits::default()).is_err());
        assert!(parse_logic(true, false, "(a.b.zz.1)", &Limits::default()).is_err());
    }
}
