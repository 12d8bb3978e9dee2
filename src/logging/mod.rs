//! Logging with `tracing`: human-readable on a terminal, one JSON object per
//! line otherwise (or as `[log] format` says). Every line written while a
//! request is handled carries its `request_id` (the edge's span). The
//! access log, a line per request, has a writer of its own ([`access`]).

pub mod access;

use std::io::IsTerminal;

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber. `RUST_LOG` (or `FLUXBASE_LOG`), when set, overrides `[log] level`.
pub fn init(cfg: &LogConfig) {
    let directive = std::env::var("FLUXBASE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| cfg.level.clone());
    // tokio-postgres logs every server NOTICE at info; those are not ours to report.
    let filter = EnvFilter::try_new(format!("tokio_postgres=warn,{directive}")).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match cfg.format.as_str() {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_span_events(FmtSpan::NONE);
    let result = if json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second init (tests) keeps the first subscriber, and its format.
    if result.is_ok() {
        access::set_json(json);
    }
}
