//! Starting and stopping `riposte serve`: the spool, the store, the rules,
//! the pipeline thread, the sources and the HTTP API.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use riposte_store::{AnyStore, Scope, Store};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::auth::{AuditFiles, write_private};
use crate::config::{Config, SourceConfig};
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, Sources};
use crate::rules::{RuleOptions, Selection};
use crate::ruleset::RuleSet;
use crate::sources;
use crate::spool::Spool;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {error}")]
    DataDir { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    #[error(transparent)]
    Store(#[from] riposte_store::StoreError),
    #[error(transparent)]
    Rules(#[from] crate::rules::RulesError),
    #[error("cannot listen on {address} ({what}): {error}")]
    Listen { address: SocketAddr, what: String, error: std::io::Error },
    #[error("no rule could be loaded")]
    NoRules,
    #[error(transparent)]
    Intel(#[from] crate::intel::IntelFileError),
    #[error("source {source_name}: TLS: {reason}")]
    Tls { source_name: String, reason: String },
    #[error("email: {0}")]
    MailAuth(#[from] crate::mail_auth::MailAuthError),
    #[error("playbooks: {0}")]
    Playbooks(String),
}

/// The file holding the token made for the local administrator the first
/// time the server starts (readable by its owner only).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// This data directory's worker name (made the first time), under which
/// the playbook runner leases runs.
fn worker_name(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("worker.id");
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
        _ => {
            let name = format!("worker-{}", crate::auth::random_hex(8)?);
            write_private(&path, format!("{name}\n").as_bytes())?;
            Ok(name)
        }
    }
}

fn listen_error(address: SocketAddr, what: &str) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |error| ServeError::Listen { address, what: what.to_owned(), error }
}

/// A running server.
pub struct Server {
    /// Where the HTTP API listens (the real port when the configuration said 0).
    pub http: SocketAddr,
    /// Where each syslog source listens, by name.
    pub listening: Vec<(String, SocketAddr)>,
    pub state: AppState,
    stop: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    pipeline: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts everything `config` describes.
    pub async fn start(config: Config) -> Result<Server, ServeError> {
        let data_dir = config.data_dir.clone();
        let data_error = |error| ServeError::DataDir { path: data_dir.clone(), error };
        std::fs::create_dir_all(&data_dir).map_err(data_error)?;
        let spool = Spool::open(
            &data_dir.join("spool"),
            config.spool.segment_size,
            config.spool.max_size,
            config.spool.max_pending,
        )?;
        let store = AnyStore::open(&config.store_url()).await?;
        let audit = Arc::new(AuditFiles::open(&data_dir).map_err(data_error)?);
        let audit_lock = Arc::new(Mutex::new(()));
        let metrics = Arc::new(Metrics::default());

        let disabled: BTreeSet<String> =
            store.rule_states().await?.into_iter().filter(|rule| !rule.enabled).map(|rule| rule.rule_id).collect();
        let options = RuleOptions {
            paths: config.rules.paths.clone(),
            mapping: config.rules.mapping.clone(),
            placeholders: config.rules.placeholders.clone(),
            selection: Selection { disabled, ..Selection::default() },
        };
        let rules = Arc::new(
            tokio::task::spawn_blocking(move || RuleSet::load(options)).await.map_err(|_| ServeError::NoRules)??,
        );
        let loaded = rules.current().engine.rules().len();
        if loaded == 0 {
            return Err(ServeError::NoRules);
        }
        metrics.rules_loaded.store(loaded as u64, Ordering::Relaxed);
        metrics.rule_reloads.fetch_add(1, Ordering::Relaxed);
        tracing::info!(rules = loaded, store = %riposte_store::redact(&config.store_url()), "rules loaded");

        // The first time, a token for the local administrator.
        let admin_token = data_dir.join(ADMIN_TOKEN_FILE);
        if !admin_token.exists() {
            let issued =
                api::create(&store, &audit, &audit_lock, "local administrator", Scope::Admin, "riposte serve").await?;
            write_private(&admin_token, format!("{}\n", issued.text).as_bytes()).map_err(data_error)?;
            tracing::info!(file = %admin_token.display(), "an admin token was created for you");
        }

        let intel = Arc::new(crate::intel::IntelState::load(&config.intel, data_dir.clone())?);
        metrics.intel_indicators.store(intel.current().map_or(0, |set| set.len() as u64), Ordering::Relaxed);
        // Secrets kept encrypted in the data directory (`riposte secret set`).
        let vault =
            riposte_connectors::Vault::open(&data_dir).map_err(|error| ServeError::Playbooks(error.to_string()))?;
        let builtins = crate::playbooks::Builtins {
            store: store.clone(),
            intel: intel.clone(),
            audit: audit.clone(),
            audit_lock: audit_lock.clone(),
        };
        let mut playbook_config = config.playbooks.clone();
        if playbook_config.worker.is_none() {
            playbook_config.worker = Some(worker_name(&data_dir).map_err(data_error)?);
        }
        let (runner, problems, unready) = crate::playbooks::Runner::new(
            &playbook_config,
            store.clone(),
            audit.clone(),
            audit_lock.clone(),
            vec![Arc::new(builtins)],
            Some(&vault),
        )
        .map_err(ServeError::Playbooks)?;
        for problem in &problems {
            tracing::warn!(%problem, "a playbook was not loaded");
        }
        for problem in &unready {
            tracing::debug!(%problem, "a ready playbook is not configured");
        }
        tracing::info!(playbooks = runner.library().len(), "playbooks loaded");
        let runner = Arc::new(runner);
        let state = AppState {
            store: store.clone(),
            rules: rules.clone(),
            spool: spool.clone(),
            metrics: metrics.clone(),
            audit,
            audit_lock,
            max_body: usize::try_from(config.http.max_body).unwrap_or(usize::MAX),
            intel: intel.clone(),
            quarantine_dir: data_dir.join("quarantine"),
            mail_auth: crate::mail_auth::MailAuth::from_config(&config.email)?.map(Arc::new),
            imap: config.email.imap.clone(),
            playbooks: runner.clone(),
            learned: Arc::default(),
        };
        let mail_desk = state.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (shutdown, stopped) = watch::channel(false);
        let store_for_intel = store.clone();

        let pipeline = Pipeline {
            intel: intel.clone(),
            spool: spool.clone(),
            store,
            rules,
            metrics: metrics.clone(),
            sources: Sources::from_config(&config),
            alerts: config.alerts.clone(),
            batch: config.pipeline.batch,
            raw_events: config.retention.raw_events,
            threads: config.pipeline.threads,
            correlation: riposte_sigma::CorrelatorConfig {
                allowed_lateness: config.correlation.allowed_lateness,
                max_groups: config.correlation.max_groups,
            },
        };
        let runtime = tokio::runtime::Handle::current();
        let pipeline_stop = stop.clone();
        let pipeline = std::thread::Builder::new()
            .name("riposte-pipeline".into())
            .spawn(move || pipeline.run(runtime, pipeline_stop))
            .map_err(data_error)?;

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(runner.keep_running(stopped.clone())));
        if !config.intel.feeds.is_empty() {
            tasks.push(tokio::spawn(crate::intel::keep_pulling(
                intel,
                config.intel.feeds.clone(),
                data_dir.clone(),
                store_for_intel,
                metrics.clone(),
                stopped.clone(),
            )));
        }
        if let Some(imap) = &config.email.imap {
            tasks.push(tokio::spawn(crate::imap::keep_watching(imap.clone(), mail_desk, stopped.clone())));
        }
        let mut listening = Vec::new();
        let positions = data_dir.join("positions");
        for source in &config.sources {
            match source {
                SourceConfig::SyslogUdp { name, listen, .. } => {
                    let socket = UdpSocket::bind(listen).await.map_err(listen_error(*listen, name))?;
                    listening.push((name.clone(), socket.local_addr().map_err(listen_error(*listen, name))?));
                    tasks.push(tokio::spawn(sources::syslog_udp(
                        name.clone(),
                        socket,
                        spool.clone(),
                        metrics.clone(),
                        stopped.clone(),
                    )));
                }
                SourceConfig::SyslogTcp { name, listen, tls, .. } => {
                    let tls = match tls {
                        None => None,
                        Some(files) => Some(
                            sources::tls_acceptor(&files.cert, &files.key)
                                .map_err(|reason| ServeError::Tls { source_name: name.clone(), reason })?,
                        ),
                    };
                    let listener = TcpListener::bind(listen).await.map_err(listen_error(*listen, name))?;
                    listening.push((name.clone(), listener.local_addr().map_err(listen_error(*listen, name))?));
                    tasks.push(tokio::spawn(sources::syslog_tcp(
                        name.clone(),
                        listener,
                        tls,
                        spool.clone(),
                        metrics.clone(),
                        stopped.clone(),
                    )));
                }
                SourceConfig::File { name, path, format, .. } => {
                    std::fs::create_dir_all(&positions).map_err(data_error)?;
                    tasks.push(tokio::spawn(sources::file(
                        name.clone(),
                        path.clone(),
                        *format,
                        positions.clone(),
                        spool.clone(),
                        metrics.clone(),
                        stopped.clone(),
                    )));
                }
            }
        }

        let listener = TcpListener::bind(config.http.listen).await.map_err(listen_error(config.http.listen, "http"))?;
        let http = listener.local_addr().map_err(listen_error(config.http.listen, "http"))?;
        let app = api::app(state.clone());
        let mut http_stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = http_stop.changed().await;
            });
            if let Err(error) = serving.await {
                tracing::error!(%error, "the HTTP server stopped");
            }
        }));
        tracing::info!(%http, "listening");
        Ok(Server { http, listening, state, stop, shutdown, pipeline: Some(pipeline), tasks })
    }

    /// The address a source listens on.
    pub fn address_of(&self, source: &str) -> Option<SocketAddr> {
        self.listening.iter().find(|(name, _)| name == source).map(|(_, address)| *address)
    }

    /// Stops taking events, lets the pipeline finish its batch, and returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(pipeline) = self.pipeline.take() {
            let _ = tokio::task::spawn_blocking(move || pipeline.join()).await;
        }
    }
}
