//! The `fluxbase` command line: `serve`, `status`, `migrate`, `--version`.
//!
//! Exit status: 0 on success, 2 for a usage or configuration error (the
//! message names the key, the value and what is allowed), 1 when the server
//! cannot start or a command fails.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::keys::{mask, Keys};
use crate::server::RunningServer;

/// Fluxbase: a realtime-first, event-sourced Backend-as-a-Service on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "fluxbase", version = crate::VERSION, about, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (every key can also be set as FLUXBASE_SECTION_KEY).
    #[arg(long, global = true, env = "FLUXBASE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [env: FLUXBASE_DATA_DIR] [default: ./.fluxbase]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL of an external database; unset means the embedded cluster [env: FLUXBASE_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (and the embedded database unless --database-url is given).
    Serve(ServeArgs),
    /// Print the URLs and keys of the server using this data directory.
    Status(StatusArgs),
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [env: FLUXBASE_HOST] [default: 127.0.0.1]
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on [env: FLUXBASE_PORT] [default: 54321]
    #[arg(long)]
    pub port: Option<u16>,
    /// Print the service_role key and JWT secret in full.
    #[arg(long, env = "FLUXBASE_SHOW_SECRETS")]
    pub show_secrets: bool,
}

/// Options of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (host, port, show_secrets) = match &cli.command {
        Command::Serve(a) => (a.host.clone(), a.port, a.show_secrets),
        _ => (None, None, false),
    };
    let overrides = Overrides { data_dir: cli.data_dir.clone(), host, port, database_url: cli.database_url.clone() };
    let config = match Config::load(cli.config.as_deref(), std::env::vars(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fluxbase: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fluxbase: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(_) => serve(config, show_secrets).await,
            Command::Status(a) => crate::status::print(&config, a.json),
            Command::Migrate => migrate(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fluxbase: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, show_secrets: bool) -> Result<(), String> {
    crate::logging::init(&config.log);
    let data_dir = config.data_dir.clone();
    let server = tokio::select! {
        started = RunningServer::start(config) => started.map_err(|e| e.to_string())?,
        () = shutdown_signal() => {
            tracing::info!("interrupted while starting");
            return Ok(());
        }
    };
    print_banner(&server, &data_dir, show_secrets);
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

fn print_banner(server: &RunningServer, data_dir: &std::path::Path, show_secrets: bool) {
    let keys: &Keys = &server.state().keys;
    let secret = |s: &str| if show_secrets { s.to_owned() } else { mask(s) };
    println!("Fluxbase {} is ready.", crate::VERSION);
    println!("  API URL:          {}", server.api_url());
    println!("  DB URL:           {}", if show_secrets { server.db_url().to_owned() } else { crate::config::redact_url(server.db_url()) });
    println!("  anon key:         {}", keys.anon);
    println!("  service_role key: {}", secret(&keys.service_role));
    println!("  JWT secret:       {}", secret(keys.secret()));
    println!("  data dir:         {}", data_dir.display());
    println!("`fluxbase status --json` prints all of these in full.");
}

async fn migrate(config: Config) -> Result<(), String> {
    crate::logging::init(&config.log);
    let report = crate::server::migrate_only(&config).await.map_err(|e| e.to_string())?;
    if report.applied.is_empty() {
        println!("Database is up to date ({} migrations).", report.already);
    } else {
        println!("Applied {} migration(s): {}", report.applied.len(), report.applied.join(", "));
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
