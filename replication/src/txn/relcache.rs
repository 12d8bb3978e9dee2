//! [`RelationCache`]: what the session's Relation and Type messages said,
//! keyed by OID.
//!
//! Rules (PostgreSQL docs, logical replication message flow): a Relation
//! precedes the first change of a relation in a session and is re-sent when
//! the definition changes; an entry is **replaced**, never merged. Type
//! messages name non-built-in types used by a following Relation. Both are
//! per session: clear the cache on reconnect.

use std::collections::HashMap;
use std::sync::Arc;

use super::change::{ColumnInfo, RelationInfo};
use crate::pgoutput::{Relation, Type};

/// Relation and type metadata of the current session.
#[derive(Debug, Clone, Default)]
pub struct RelationCache {
    relations: HashMap<u32, Arc<RelationInfo>>,
    types: HashMap<u32, String>,
}

impl RelationCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a Type message: the type's qualified name, used to name
    /// columns of that type in later Relations.
    pub fn apply_type(&mut self, t: &Type) {
        let ns = if t.namespace.is_empty() { "pg_catalog" } else { &t.namespace };
        self.types.insert(t.oid, format!("{ns}.{}", t.name));
    }

    /// Resolves a Relation message into a [`RelationInfo`] (without storing it).
    pub fn resolve(&self, r: &Relation) -> Arc<RelationInfo> {
        Arc::new(RelationInfo {
            oid: r.oid,
            schema: r.schema().to_owned(),
            table: r.name.clone(),
            replica_identity: r.replica_identity,
            columns: r
                .columns
                .iter()
                .map(|c| ColumnInfo {
                    name: c.name.clone(),
                    type_oid: c.type_oid,
                    type_modifier: c.type_modifier,
                    is_key: c.is_key(),
                    type_name: self.types.get(&c.type_oid).cloned(),
                })
                .collect(),
        })
    }

    /// Records a Relation message, replacing any earlier entry for its OID,
    /// and returns the resolved entry.
    pub fn apply_relation(&mut self, r: &Relation) -> Arc<RelationInfo> {
        let info = self.resolve(r);
        self.relations.insert(r.oid, Arc::clone(&info));
        info
    }

    /// Stores an already resolved entry (used when a streamed transaction's
    /// relation overlay is merged at its commit).
    pub fn insert(&mut self, info: Arc<RelationInfo>) {
        self.relations.insert(info.oid, info);
    }

    /// The current entry for a relation OID.
    pub fn get(&self, oid: u32) -> Option<&Arc<RelationInfo>> {
        self.relations.get(&oid)
    }

    /// Number of relations known.
    pub fn len(&self) -> usize {
        self.relations.len()
    }

    /// True when no relation is known.
    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }

    /// Forgets everything (on reconnect: the server re-sends what it needs).
    pub fn clear(&mut self) {
        self.relations.clear();
        self.types.clear();
    }
}
