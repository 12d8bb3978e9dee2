//! Integration tests: one binary, one harness, real PostgreSQL.
//!
//! Every test gets its own database (cloned from a migrated template) and,
//! where it needs one, its own server; tests run in parallel.

mod harness;

mod auth;
mod changes;
mod cli;
mod crash;
mod embedded;
mod gate;
mod js;
mod migrations;
mod oauth;
mod pool;
mod realtime;
mod rest;
mod rls_diff;
mod sdk;
mod session;
mod storage;
