//! Fluxbase: a self-hosted, realtime-first Backend-as-a-Service on plain
//! PostgreSQL, compatible with `@supabase/supabase-js`.
//!
//! # Layout
//! - [`cli`]: the `fluxbase` command line.
//! - [`config`]: configuration from TOML, `FLUXBASE_*` variables and flags.
//! - [`server`]: start-up and shutdown order of one server.
//! - [`app`]: the state handlers share.
//! - [`auth`]: the GoTrue-compatible auth server (`/auth/v1`).
//! - [`http`]: routes, the edge (request ids, CORS, API-key gate, errors), health, metrics.
//! - [`database`]: the connection pool and checks of an external database.
//! - [`embedded`]: the private PostgreSQL cluster Fluxbase runs itself.
//! - [`eventlog`]: the durable, LSN-ordered log of committed changes.
//! - [`fanout`]: sharded live delivery of log changes to subscribers.
//! - [`ingest`]: the logical replication consumer feeding the event log.
//! - [`changes`]: `/changes/v1`, SSE change streams resumable by position.
//! - [`realtime`]: `/realtime/v1`, Supabase Realtime's WebSocket protocol.
//! - [`rls`]: row visibility for change streams.
//! - [`migrate`]: the SQL migrations in `migrations/`.
//! - [`rest`]: the PostgREST-compatible API at `/rest/v1`.
//! - [`keys`]: the JWT secret and the anon/service_role keys.
//! - [`datadir`]: files in the data directory.
//! - [`status`]: `fluxbase status`.
//! - [`storage`]: the Supabase-compatible storage API at `/storage/v1`.
//! - [`logging`]: tracing setup.
//!
//! `docs/architecture.md` is the map for newcomers.

pub mod app;
pub mod auth;
pub mod changes;
pub mod cli;
pub mod config;
pub mod database;
pub mod datadir;
pub mod embedded;
pub mod eventlog;
pub mod fanout;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod logging;
pub mod migrate;
pub mod realtime;
pub mod rest;
pub mod rls;
pub mod server;
pub mod status;
pub mod storage;

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
