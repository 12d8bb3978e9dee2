//! Row-level security for change streams: may this caller see this row?
//!
//! The WAL carries rows without RLS applied, so every read path that serves
//! changes must decide visibility itself, judged on the row image from the
//! WAL (the new row for inserts and updates, the old row for deletes and
//! for updates that move a row out of view).
//!
//! - [`policy_eval`]: evaluates the table's own policies in PostgreSQL, as
//!   the caller's role with its claims, over the row image. Exact, one
//!   round trip per change and caller. (The realtime issue adds compiled
//!   in-process predicates and a verdict cache in front of it.)

pub mod policy_eval;

pub use policy_eval::{PolicyEvaluator, Verdict};
