//! Reading a view's stored query (`pg_rewrite.ev_action`, PostgreSQL's
//! `pg_node_tree` text) for where each of its columns comes from.
//!
//! The parser records, on every entry of a query's select list, the table
//! and column the value is read from unchanged (`resorigtbl`,
//! `resorigcol`; zero for anything computed), following subqueries, CTEs
//! and joins. That is what PostgREST reads to carry keys over to views; it
//! sees through renamed columns, where a name match does not.
//!
//! Only the outermost query's select list is read. The text is tokenized as
//! PostgreSQL's own reader (`pg_strtok`) does: `(`, `)`, `{` and `}` stand
//! alone, other tokens end at whitespace or one of those, and a backslash
//! takes the next character literally. No recursion, so no input is too
//! deep; text that does not have the expected shape yields fewer origins,
//! never an error.

/// A view column read unchanged from a relation's column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The view column's number (`attnum`).
    pub resno: i32,
    /// OID of the relation read (a table, or another view).
    pub table: u32,
    /// That relation's column number.
    pub column: i32,
}

/// The origins of the select list of the first query in `ev_action`.
pub fn select_list_origins(ev_action: &str) -> Vec<Origin> {
    let mut out = Vec::new();
    let mut tokens = Tokens { rest: ev_action };
    let mut depth = 0usize;
    // Depth inside the first query node, once entered.
    let mut query: Option<usize> = None;
    // Depth inside the select list, once entered.
    let mut list: Option<usize> = None;
    let mut entry = Entry::default();
    while let Some(tok) = tokens.next() {
        match tok {
            "(" | "{" => {
                depth += 1;
                if query.is_none() && tok == "{" {
                    query = Some(depth);
                }
                if list.is_some_and(|l| depth == l + 1) {
                    entry = Entry::default();
                }
            }
            ")" | "}" => {
                if list.is_some_and(|l| depth == l + 1) {
                    out.extend(entry.origin());
                }
                if list == Some(depth) || query == Some(depth) {
                    break;
                }
                depth = depth.saturating_sub(1);
            }
            ":targetList" if query == Some(depth) && list.is_none() => match tokens.next() {
                Some("(") => {
                    depth += 1;
                    list = Some(depth);
                }
                _ => break,
            },
            ":resno" | ":resorigtbl" | ":resorigcol" | ":resjunk" if list.is_some_and(|l| depth == l + 1) => {
                let value = tokens.next().unwrap_or_default();
                match tok {
                    ":resno" => entry.resno = value.parse().ok(),
                    ":resorigtbl" => entry.table = value.parse().ok(),
                    ":resorigcol" => entry.column = value.parse().ok(),
                    _ => entry.junk = value == "true",
                }
            }
            _ => {}
        }
    }
    out
}

/// The fields of one select-list entry read so far.
#[derive(Default)]
struct Entry {
    resno: Option<i32>,
    table: Option<u32>,
    column: Option<i32>,
    junk: bool,
}

impl Entry {
    fn origin(&self) -> Option<Origin> {
        match (self.resno, self.table, self.column) {
            (Some(resno), Some(table), Some(column)) if !self.junk && table != 0 && column > 0 => {
                Some(Origin { resno, table, column })
            }
            _ => None,
        }
    }
}

/// `pg_strtok`'s tokens.
struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start_matches([' ', '\n', '\t', '\r']);
        let mut chars = s.char_indices();
        let (_, first) = chars.next()?;
        let end = if matches!(first, '(' | ')' | '{' | '}') {
            first.len_utf8()
        } else {
            let mut end = s.len();
            let mut escaped = first == '\\';
            for (i, c) in chars {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if matches!(c, ' ' | '\n' | '\t' | '\r' | '(' | ')' | '{' | '}') {
                    end = i;
                    break;
                }
            }
            end
        };
        let (tok, rest) = s.split_at(end);
        self.rest = rest;
        Some(tok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `create view vt_v as select id as "my id", "we ird(", 'x{}'::text as lit, 5 as n
    /// from vt_a order by id desc` on PostgreSQL 15 (the range table cut short).
    const VIEW: &str = r#"({QUERY :commandType 1 :querySource 0 :canSetTag true :utilityStmt <> :resultRelation 0 :hasAggs false :cteList <> :rtable ({RANGETBLENTRY :alias <> :eref {ALIAS :aliasname vt_a :colnames ("id" "we\ ird\(")} :rtekind 0 :relid 17203 :relkind r :selectedCols (b 8 9) :securityQuals <>}) :jointree {FROMEXPR :fromlist ({RANGETBLREF :rtindex 3}) :quals <>} :targetList ({TARGETENTRY :expr {VAR :varno 3 :varattno 1 :vartype 23 :vartypmod -1 :varcollid 0 :varlevelsup 0 :varnosyn 3 :varattnosyn 1 :location 107} :resno 1 :resname my\ id :ressortgroupref 1 :resorigtbl 17203 :resorigcol 1 :resjunk false} {TARGETENTRY :expr {VAR :varno 3 :varattno 2 :vartype 25 :vartypmod -1 :varcollid 100 :varlevelsup 0 :varnosyn 3 :varattnosyn 2 :location 122} :resno 2 :resname we\ ird\( :ressortgroupref 0 :resorigtbl 17203 :resorigcol 2 :resjunk false} {TARGETENTRY :expr {CONST :consttype 25 :consttypmod -1 :constcollid 100 :constlen -1 :constbyval false :constisnull false :location 133 :constvalue 7 [ 28 0 0 0 120 123 125 ]} :resno 3 :resname lit :ressortgroupref 0 :resorigtbl 0 :resorigcol 0 :resjunk false} {TARGETENTRY :expr {CONST :consttype 23 :consttypmod -1 :constcollid 0 :constlen 4 :constbyval true :constisnull false :location 153 :constvalue 4 [ 5 0 0 0 0 0 0 0 ]} :resno 4 :resname n :ressortgroupref 0 :resorigtbl 0 :resorigcol 0 :resjunk false}) :override 0 :onConflict <> :returningList <> :sortClause ({SORTGROUPCLAUSE :tleSortGroupRef 1 :eqop 96 :sortop 521 :nulls_first true :hashable true}) :stmt_location 68 :stmt_len 118})"#;

    #[test]
    fn reads_the_outer_select_list() {
        assert_eq!(
            select_list_origins(VIEW),
            vec![Origin { resno: 1, table: 17203, column: 1 }, Origin { resno: 2, table: 17203, column: 2 }]
        );
    }

    #[test]
    fn skips_nested_queries_and_junk_entries() {
        // A subquery in the range table has its own select list; only the outer one counts.
        let text = "({QUERY :rtable ({RANGETBLENTRY :subquery {QUERY :targetList ({TARGETENTRY :resno 1 \
                    :resorigtbl 9 :resorigcol 9 :resjunk false})}}) :targetList ({TARGETENTRY :expr {VAR :resno 7} \
                    :resno 1 :resorigtbl 5 :resorigcol 2 :resjunk false} {TARGETENTRY :resno 2 :resorigtbl 5 \
                    :resorigcol 3 :resjunk true}) :sortClause <>})";
        assert_eq!(select_list_origins(text), vec![Origin { resno: 1, table: 5, column: 2 }]);
    }

    #[test]
    fn odd_text_yields_what_it_can_and_never_panics() {
        for text in [
            "",
            "(",
            "<>",
            "({QUERY :targetList <>})",
            "({QUERY :targetList",
            "({QUERY :targetList ({TARGETENTRY :resno",
            "({QUERY :targetList ({TARGETENTRY :resno x :resorigtbl -1 :resorigcol 1})})",
            "\\",
            "}}}))){{{((",
            "({QUERY :targetList ({TARGETENTRY :resno 1 :resorigtbl 5 :resorigcol 2 :resjunk false} é\\",
        ] {
            let _ = select_list_origins(text);
        }
        let deep = "(".repeat(100_000) + &")".repeat(100_000);
        assert!(select_list_origins(&deep).is_empty());
        assert_eq!(
            select_list_origins("({QUERY :targetList ({TARGETENTRY :resno 1 :resorigtbl 5 :resorigcol 2 :resjunk false}"),
            vec![Origin { resno: 1, table: 5, column: 2 }],
            "an unterminated entry still counts once closed"
        );
    }
}
