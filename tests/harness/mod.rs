//! The one test harness every integration test uses.
//!
//! - [`cluster`]: one private PostgreSQL cluster for the whole test run
//!   (temp dir, free port, `wal_level=logical`, `fsync=off`), run as the
//!   `postgres` user when the tests run as root, removed when the test
//!   process ends however it ends.
//! - [`database`]: a fresh database per test, cloned from a migrated template.
//! - [`sse`]: a small Server-Sent Events client.
//! - [`ws`]: a raw realtime (Phoenix vsn 2) WebSocket client.
//! - [`server`]: a Fluxbase server per test on port 0, in-process, or the
//!   real binary as a child process for tests that kill it.
//! - [`smtp`]: a minimal SMTP receiver, for mail sent over SMTP.
//! - [`oidc`]: an OpenID Connect (and GitHub-shaped) provider on loopback.

#![allow(dead_code)]

pub mod cluster;
pub mod database;
pub mod node;
pub mod oidc;
pub mod reaper;
pub mod s3;
pub mod server;
pub mod smtp;
pub mod sse;
pub mod ws;

pub use database::TestDatabase;
pub use server::TestServer;

/// The JWT secret every test server signs with.
pub const TEST_JWT_SECRET: &str = "fluxbase-test-secret-with-at-least-32-characters";
