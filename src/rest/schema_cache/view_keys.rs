//! Keys of views: primary keys and foreign keys carried over from the
//! tables a view reads, as PostgREST infers them.
//!
//! Each view column is traced to the base-table column it reads unchanged
//! (see [`super::node_tree`]), through views over views. A key whose every
//! column a view exposes becomes the view's key, under the view's column
//! names: a primary key makes the view's primary key, a foreign key gives
//! the view the same relationship (from the referencing side, to the
//! referenced side, or both when views stand on both). A table column the
//! view exposes twice, under two names, gives one relationship per name;
//! for a primary key the first name is taken.

use std::collections::HashMap;

use super::node_tree::Origin;
use super::ForeignKey;

/// A relation's OID and column number.
type ColumnId = (u32, i32);

/// A view as loaded: its name, columns and where they come from.
#[derive(Debug, Clone)]
pub struct ViewDef {
    /// OID.
    pub oid: u32,
    /// (schema, name).
    pub name: (String, String),
    /// In an exposed schema (only those get keys; the others are read only
    /// to follow views over views).
    pub exposed: bool,
    /// (attnum, name) of each column.
    pub columns: Vec<(i32, String)>,
    /// Where its columns come from.
    pub origins: Vec<Origin>,
}

/// A primary or foreign key's one side: the relation and its columns in
/// key order.
#[derive(Debug, Clone)]
pub struct KeySide {
    /// (schema, name).
    pub table: (String, String),
    /// OID.
    pub oid: u32,
    /// (attnum, name) of each key column, in key order.
    pub columns: Vec<(i32, String)>,
}

/// A foreign key as loaded, with both sides' column numbers.
#[derive(Debug, Clone)]
pub struct ForeignKeyDef {
    /// Constraint name.
    pub name: String,
    /// The referencing side.
    pub from: KeySide,
    /// The referenced side.
    pub to: KeySide,
}

/// Most relationships one key gives one view when the view exposes key
/// columns more than once (one per combination of names).
const MAX_COMBINATIONS: usize = 64;

/// For each exposed view: base-table column → the view's columns that read
/// it, in column order.
pub struct ViewColumns {
    view: (String, String),
    by_base: HashMap<ColumnId, Vec<String>>,
}

/// Traces every exposed view's columns to base-table columns.
pub fn trace(views: &[ViewDef]) -> Vec<ViewColumns> {
    let by_oid: HashMap<u32, &ViewDef> = views.iter().map(|v| (v.oid, v)).collect();
    let origin_of = |view: &ViewDef, resno: i32| view.origins.iter().find(|o| o.resno == resno).map(|o| (o.table, o.column));
    views
        .iter()
        .filter(|v| v.exposed)
        .map(|v| {
            let mut by_base: HashMap<ColumnId, Vec<String>> = HashMap::new();
            for (attnum, name) in &v.columns {
                let mut at = origin_of(v, *attnum);
                // Through views over views; a cycle (impossible in a
                // consistent catalog) ends after as many steps as views.
                for _ in 0..=views.len() {
                    match at.and_then(|(t, c)| by_oid.get(&t).map(|inner| origin_of(inner, c))) {
                        Some(next) => at = next,
                        None => break,
                    }
                }
                if let Some(base) = at.filter(|(t, _)| !by_oid.contains_key(t)) {
                    by_base.entry(base).or_default().push(name.clone());
                }
            }
            ViewColumns { view: v.name.clone(), by_base }
        })
        .collect()
}

/// The names a view gives a key's columns: one list per combination when
/// it exposes a column more than once; none when it misses one.
fn names_in(view: &ViewColumns, side: &KeySide) -> Vec<Vec<String>> {
    let mut combos: Vec<Vec<String>> = vec![Vec::new()];
    for (attnum, _) in &side.columns {
        let Some(names) = view.by_base.get(&(side.oid, *attnum)) else {
            return Vec::new();
        };
        combos = combos
            .iter()
            .flat_map(|c| names.iter().map(move |n| c.iter().cloned().chain([n.clone()]).collect()))
            .take(MAX_COMBINATIONS)
            .collect();
    }
    combos
}

/// Primary keys of views: for every primary key a view exposes whole, its
/// columns under the view's (first) names, keys in the order given.
pub fn view_primary_keys(views: &[ViewColumns], pks: &[KeySide]) -> HashMap<(String, String), Vec<String>> {
    let mut out: HashMap<(String, String), Vec<String>> = HashMap::new();
    for v in views {
        for pk in pks {
            if let Some(first) = names_in(v, pk).into_iter().next() {
                out.entry(v.view.clone()).or_default().extend(first);
            }
        }
    }
    out
}

/// Every foreign key as between its tables, and again with a view in
/// place of either table, or of both, for every view exposing that side.
pub fn with_views(fks: &[ForeignKeyDef], views: &[ViewColumns]) -> Vec<ForeignKey> {
    let side_names = |s: &KeySide| s.columns.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
    let mut out = Vec::new();
    for fk in fks {
        let mut from = vec![(fk.from.table.clone(), side_names(&fk.from))];
        let mut to = vec![(fk.to.table.clone(), side_names(&fk.to))];
        for v in views {
            from.extend(names_in(v, &fk.from).into_iter().map(|cols| (v.view.clone(), cols)));
            to.extend(names_in(v, &fk.to).into_iter().map(|cols| (v.view.clone(), cols)));
        }
        for (table, columns) in &from {
            for (ref_table, ref_columns) in &to {
                out.push(ForeignKey {
                    name: fk.name.clone(),
                    table: table.clone(),
                    columns: columns.clone(),
                    ref_table: ref_table.clone(),
                    ref_columns: ref_columns.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> (String, String) {
        ("public".into(), n.into())
    }

    fn cols(c: &[(i32, &str)]) -> Vec<(i32, String)> {
        c.iter().map(|(i, n)| (*i, (*n).to_owned())).collect()
    }

    fn origin(resno: i32, table: u32, column: i32) -> Origin {
        Origin { resno, table, column }
    }

    // posts(oid 10: id 1, author 2) → users(oid 20: id 1); users_pkey, posts_pkey.
    fn keys() -> (Vec<KeySide>, Vec<ForeignKeyDef>) {
        let users_pk = KeySide { table: name("users"), oid: 20, columns: cols(&[(1, "id")]) };
        let posts_pk = KeySide { table: name("posts"), oid: 10, columns: cols(&[(1, "id")]) };
        let fk = ForeignKeyDef {
            name: "posts_author_fkey".into(),
            from: KeySide { table: name("posts"), oid: 10, columns: cols(&[(2, "author")]) },
            to: users_pk.clone(),
        };
        (vec![users_pk, posts_pk], vec![fk])
    }

    fn view(oid: u32, n: &str, exposed: bool, columns: &[(i32, &str)], origins: Vec<Origin>) -> ViewDef {
        ViewDef { oid, name: name(n), exposed, columns: cols(columns), origins }
    }

    #[test]
    fn renamed_columns_carry_keys() {
        let (pks, fks) = keys();
        let views = [
            // people: select id as person_id, 'x' as tag from users
            view(30, "people", true, &[(1, "person_id"), (2, "tag")], vec![origin(1, 20, 1)]),
            // writings: select id as post_id, author as writer from posts
            view(31, "writings", true, &[(1, "post_id"), (2, "writer")], vec![origin(1, 10, 1), origin(2, 10, 2)]),
        ];
        let traced = trace(&views);
        let pk = view_primary_keys(&traced, &pks);
        assert_eq!(pk.get(&name("people")), Some(&vec!["person_id".to_owned()]));
        assert_eq!(pk.get(&name("writings")), Some(&vec!["post_id".to_owned()]));
        let got: Vec<(String, Vec<String>, String, Vec<String>)> =
            with_views(&fks, &traced).into_iter().map(|f| (f.table.1, f.columns, f.ref_table.1, f.ref_columns)).collect();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                ("posts".into(), s(&["author"]), "users".into(), s(&["id"])),
                ("posts".into(), s(&["author"]), "people".into(), s(&["person_id"])),
                ("writings".into(), s(&["writer"]), "users".into(), s(&["id"])),
                ("writings".into(), s(&["writer"]), "people".into(), s(&["person_id"])),
            ]
        );
    }

    #[test]
    fn views_over_views_and_partial_keys() {
        let (pks, fks) = keys();
        let views = [
            // inner (not exposed): select id as uid from users
            view(40, "inner", false, &[(1, "uid")], vec![origin(1, 20, 1)]),
            // outer: select uid as who, uid as again from inner
            view(41, "outer", true, &[(1, "who"), (2, "again")], vec![origin(1, 40, 1), origin(2, 40, 1)]),
            // titles: select 1 from posts (no key column)
            view(42, "titles", true, &[(1, "title")], vec![origin(1, 10, 3)]),
        ];
        let traced = trace(&views);
        assert_eq!(traced.len(), 2, "only exposed views get keys");
        let pk = view_primary_keys(&traced, &pks);
        assert_eq!(pk.get(&name("outer")), Some(&vec!["who".to_owned()]), "the first of two names");
        assert_eq!(pk.get(&name("titles")), None);
        let to_outer: Vec<Vec<String>> =
            with_views(&fks, &traced).into_iter().filter(|f| f.ref_table == name("outer")).map(|f| f.ref_columns).collect();
        assert_eq!(to_outer, vec![vec!["who".to_owned()], vec!["again".to_owned()]], "one relationship per name");
    }

    #[test]
    fn a_cycle_ends() {
        let views = [
            view(50, "a", true, &[(1, "x")], vec![origin(1, 51, 1)]),
            view(51, "b", true, &[(1, "y")], vec![origin(1, 50, 1)]),
        ];
        assert!(trace(&views).iter().all(|v| v.by_base.is_empty()));
    }
}
