//! Row-level security for change streams: may this caller see this row?
//!
//! The WAL carries rows without RLS applied, so every read path that serves
//! changes must decide visibility itself, judged on the row image from the
//! WAL (the new row for inserts and updates, the old row for deletes and
//! for updates that move a row out of view).
//!
//! - [`compile`]: policies of common shapes compiled to in-process
//!   predicates (`col = auth.uid()`, role checks, constants, IN lists,
//!   `auth.jwt() ->> 'claim'`, AND/OR/NOT): no database round trip.
//! - [`policy_eval`]: the decision for a row: compiled when every applicable
//!   policy compiled, else evaluated by PostgreSQL as the caller's role with
//!   its claims over the row image. Policies are re-read every second, so
//!   CREATE/ALTER/DROP POLICY take effect promptly.

pub mod compile;
pub mod policy_eval;

pub use policy_eval::{PolicyEvaluator, Verdict};
