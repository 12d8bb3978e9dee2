//! The life of one Fluxbase server: start in order, serve, stop in order.
//!
//! Start: open and lock the data directory, load the keys, bind the HTTP
//! listener (so `/health` answers 503 at once), bring up the database (the
//! embedded cluster, or preflight checks of an external one), migrate, build
//! the pool, then mark the server ready and publish `state.json`.
//!
//! Stop: stop accepting, drain in-flight requests within the grace period,
//! then stop the embedded cluster and wait for it to exit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{AppState, Ready};
use crate::changes::ChangesCore;
use crate::eventlog::{EventLog, FileLog, LogError, LogOptions};
use crate::ingest::{Ingest, IngestOptions};
use crate::rls::PolicyEvaluator;
use crate::config::{redact_url, Config};
use crate::database::{self, preflight, DatabaseError};
use crate::datadir::{DataDir, DataDirError, DataDirLock, RuntimeState};
use crate::embedded::{EmbeddedCluster, EmbeddedError};
use crate::http;
use crate::keys::{KeyError, Keys};
use crate::migrate::{self, MigrateError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is unusable or locked.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The listener could not be bound.
    #[error(transparent)]
    Bind(#[from] http::server::BindError),
    /// The embedded cluster could not be started.
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// The database is unreachable or unsuitable.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The event log could not be opened.
    #[error(transparent)]
    EventLog(#[from] LogError),
    /// A background task failed.
    #[error("internal: {0}")]
    Internal(String),
}

/// Where the database is and how it is run.
struct DatabaseHandle {
    url: String,
    cluster: Option<EmbeddedCluster>,
    report: migrate::Report,
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    api_url: String,
    db_url: String,
    state: Arc<AppState>,
    data_dir: DataDir,
    shutdown_tx: Option<oneshot::Sender<()>>,
    http: Option<JoinHandle<()>>,
    cluster: Option<EmbeddedCluster>,
    ingest: Option<Ingest>,
    /// Dropped after everything above: tasks on them may hold pooled connections.
    _threads: Arc<http::threads::ConnectionThreads>,
    _lock: DataDirLock,
}

impl RunningServer {
    /// Starts everything and returns once the server is ready.
    pub async fn start(config: Config) -> Result<RunningServer, StartError> {
        let config = Arc::new(config);
        let data_dir = DataDir::open(&config.data_dir)?;
        let lock = data_dir.lock()?;
        let keys = Keys::load_config(&config.jwt, &data_dir)?;
        let listener = http::server::bind(&config.host, config.port).await?;
        let addr = listener.local_addr().map_err(|e| StartError::Internal(e.to_string()))?;
        let api_url = config.api_url(addr.port());
        let state = Arc::new(AppState::new(Arc::clone(&config), keys));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let routes = http::routes(Arc::clone(&state));
        let grace = config.shutdown_grace();
        let threads = Arc::new(
            http::threads::ConnectionThreads::start(config.http_threads())
                .map_err(|e| StartError::Internal(format!("cannot start the HTTP threads: {e}")))?,
        );
        let http_task = tokio::spawn(http::server::serve(
            listener,
            Arc::clone(&state),
            routes,
            Arc::clone(&threads),
            async move {
                let _ = shutdown_rx.await;
            },
            grace,
        ));
        tracing::info!(%addr, "HTTP listening; bringing up the database");

        let db = match bring_up_database(&config, &data_dir).await {
            Ok(db) => db,
            Err(e) => {
                let _ = shutdown_tx.send(());
                let _ = http_task.await;
                return Err(e);
            }
        };
        let wait = Duration::from_secs(config.database.pool_timeout_secs);
        // The pools and the replication stream reach an embedded cluster over
        // its Unix socket: cheaper than loopback TCP for both ends.
        let local = db.cluster.as_ref().and_then(EmbeddedCluster::socket_url).unwrap_or_else(|| db.url.clone());
        let pools = database::pool::build(&local, config.database.pool_size, wait, "fluxbase").and_then(|pool| {
            let opts = database::SessionOptions {
                size: config.database.pool_size,
                wait,
                app: "fluxbase rest",
                batch_backends: db.cluster.is_some() && config.embedded.batch_scheduling,
            };
            let sessions = database::SessionPools::build(&local, &opts, threads.len())?;
            Ok((pool, sessions))
        });
        let (pool, sessions) = match pools {
            Ok(p) => p,
            Err(e) => {
                let _ = shutdown_tx.send(());
                let _ = http_task.await;
                stop_cluster(db.cluster).await;
                return Err(e.into());
            }
        };
        let (changes, ingest) = match start_changes(&config, &data_dir, &local, &pool).await {
            Ok(pair) => pair,
            Err(e) => {
                let _ = shutdown_tx.send(());
                let _ = http_task.await;
                stop_cluster(db.cluster).await;
                return Err(e);
            }
        };
        let realtime = Some(Arc::new(crate::realtime::Realtime::new(state.keys.clone(), changes.clone(), pool.clone(), config.realtime.clone())));
        state.set_ready(Ready { pool, sessions, cluster: db.cluster.as_ref().map(EmbeddedCluster::state), changes, realtime });
        let runtime = RuntimeState {
            pid: std::process::id(),
            api_url: api_url.clone(),
            db_url: db.url.clone(),
            version: crate::VERSION.into(),
            started_at: now_rfc3339(),
            embedded: db.cluster.is_some(),
        };
        data_dir.write_state(&runtime)?;
        Ok(RunningServer {
            addr,
            api_url,
            db_url: db.url,
            state,
            data_dir,
            shutdown_tx: Some(shutdown_tx),
            http: Some(http_task),
            cluster: db.cluster,
            ingest,
            _threads: threads,
            _lock: lock,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the API.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// A superuser database URL.
    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The data directory.
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    /// Stops in order: HTTP drain, then the embedded cluster.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.http.take() {
            let _ = task.await;
        }
        if let Some(ingest) = self.ingest.take() {
            ingest.stop().await;
        }
        if let Some(ready) = self.state.ready() {
            ready.pool.close();
            ready.sessions.close();
        }
        stop_cluster(self.cluster.take()).await;
        tracing::info!("Fluxbase stopped");
    }
}

/// Opens the event log, configures the publication and starts the ingest loop.
async fn start_changes(
    config: &Config,
    data_dir: &DataDir,
    db_url: &str,
    pool: &database::Pool,
) -> Result<(Option<Arc<ChangesCore>>, Option<Ingest>), StartError> {
    let r = &config.replication;
    if !r.enabled {
        return Ok((None, None));
    }
    let client = database::connect_one(db_url, "fluxbase-setup").await?;
    crate::ingest::publication::configure(&client, r).await?;
    drop(client);
    let e = &config.eventlog;
    let dir = if e.dir.is_empty() { data_dir.join("eventlog") } else { std::path::PathBuf::from(&e.dir) };
    let opts = LogOptions {
        dir,
        segment_bytes: e.segment_bytes,
        max_bytes: e.max_bytes,
        max_age: Duration::from_secs(e.max_age_hours * 3600),
        tail_bytes: usize::try_from(e.tail_bytes).unwrap_or(usize::MAX),
        fsync: e.fsync,
    };
    let log: Arc<dyn EventLog> = Arc::new(
        tokio::task::spawn_blocking(move || FileLog::open(opts))
            .await
            .map_err(|e| StartError::Internal(e.to_string()))??,
    );
    let slot = if r.slot.is_empty() {
        let dbname = db_url.parse::<tokio_postgres::Config>().ok().and_then(|c| c.get_dbname().map(str::to_owned)).unwrap_or_default();
        crate::ingest::default_slot_name(&dbname)
    } else {
        r.slot.clone()
    };
    let ingest = Ingest::spawn(
        IngestOptions { url: db_url.to_owned(), slot: slot.clone(), publication: r.publication.clone() },
        pool.clone(),
        Arc::clone(&log),
    );
    let hub = crate::fanout::Hub::start(Arc::clone(&log), 2, 4096);
    let core = Arc::new(ChangesCore {
        hub,
        log,
        evaluator: PolicyEvaluator::new(pool.clone()),
        ingest: ingest.state(),
        slot,
        publication: r.publication.clone(),
    });
    Ok((Some(core), Some(ingest)))
}

async fn stop_cluster(cluster: Option<EmbeddedCluster>) {
    if let Some(c) = cluster {
        let _ = tokio::task::spawn_blocking(move || c.stop()).await;
    }
}

async fn bring_up_database(config: &Config, data_dir: &DataDir) -> Result<DatabaseHandle, StartError> {
    let (url, cluster) = if config.database.url.is_empty() {
        let embedded = config.embedded.clone();
        let dd = data_dir.clone();
        let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&embedded, &dd))
            .await
            .map_err(|e| StartError::Internal(e.to_string()))??;
        tracing::info!(port = cluster.port(), pgdata = %cluster.layout().pgdata.display(), "embedded PostgreSQL is running");
        (cluster.superuser_url(), Some(cluster))
    } else {
        (config.database.url.clone(), None)
    };
    let result = async {
        let mut client = database::connect_one(&url, "fluxbase-migrate").await?;
        if cluster.is_none() {
            let facts = preflight::facts(&client).await?;
            let problems = preflight::problems(&facts);
            if !problems.is_empty() {
                return Err(StartError::Database(DatabaseError::Unsuitable {
                    url: redact_url(&url),
                    problems: problems.join("\n"),
                }));
            }
        }
        let report = migrate::run(&mut client).await?;
        tracing::info!(applied = report.applied.len(), already = report.already, "migrations up to date");
        Ok(report)
    }
    .await;
    match result {
        Ok(report) => Ok(DatabaseHandle { url, cluster, report }),
        Err(e) => {
            stop_cluster(cluster).await;
            Err(e)
        }
    }
}

/// Runs the migrations once against the configured database, then stops
/// whatever was started for it. If a server is running on this data
/// directory, its database is used.
pub async fn migrate_only(config: &Config) -> Result<migrate::Report, StartError> {
    let data_dir = DataDir::open(&config.data_dir)?;
    if config.database.url.is_empty() && data_dir.is_locked() {
        if let Some(state) = data_dir.read_state()? {
            let mut client = database::connect_one(&state.db_url, "fluxbase-migrate").await?;
            return Ok(migrate::run(&mut client).await?);
        }
    }
    let _lock = data_dir.lock()?;
    let db = bring_up_database(config, &data_dir).await?;
    stop_cluster(db.cluster).await;
    Ok(db.report)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
