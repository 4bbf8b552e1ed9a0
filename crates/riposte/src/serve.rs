//! `riposte serve` and the commands around it: `token create`, `audit
//! verify`, `alerts list`, `send`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use riposte_server::auth::AuditFiles;
use riposte_server::config::Config;
use riposte_server::{ADMIN_TOKEN_FILE, Server};
use riposte_store::{AlertFilter, AlertStatus, AnyStore, Scope, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::exit;
use crate::terminal::shown;

#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// The configuration file (default: built-in defaults, data in ./riposte-data).
    #[arg(long, short = 'c', value_name = "FILE", env = "RIPOSTE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config> {
        match &self.config {
            Some(path) => Ok(Config::load(path)?),
            None => Ok(Config::default()),
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token; it is printed once and never stored in clear.
    Create(TokenCreateArgs),
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    /// What the token is for (shown in the audit trail).
    #[arg(long)]
    pub name: String,
    /// read, write or admin.
    #[arg(long, value_parser = parse_scope, default_value = "read")]
    pub scope: Scope,
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    text.parse()
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check that no audit entry was changed or removed.
    Verify(ConfigArgs),
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// The newest alerts.
    List(AlertsListArgs),
}

#[derive(Args, Debug)]
pub struct AlertsListArgs {
    /// Only alerts with this status (new, acknowledged, in_progress, closed).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<AlertStatus>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn parse_status(text: &str) -> Result<AlertStatus, String> {
    text.parse()
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// JSON lines files of events.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The server's URL (default: the configuration's HTTP address).
    #[arg(long)]
    pub url: Option<String>,
    /// An API token with the write scope (default: the local admin token).
    #[arg(long, env = "RIPOSTE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // async-imap traces every command it sends, LOGIN and its password
    // included: never below info, whatever RUST_LOG says.
    let filter = filter.add_directive("async_imap=info".parse().expect("a valid directive"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run_serve(args: ServeArgs) -> Result<u8> {
    init_logging();
    let config = args.config.load()?;
    let data_dir = config.data_dir.clone();
    runtime()?.block_on(async move {
        let server = Server::start(config).await.context("cannot start the server")?;
        eprintln!("riposte is serving:");
        eprintln!("  API      http://{}/api  (OpenAPI at /api/openapi.json, metrics at /metrics)", server.http);
        for (name, address) in &server.listening {
            eprintln!("  source   {name} on {address}");
        }
        eprintln!(
            "  token    {} (admin; `riposte send` and `riposte alerts list` use it)",
            data_dir.join(ADMIN_TOKEN_FILE).display()
        );
        eprintln!("stop with Ctrl-C");
        wait_for_signal().await;
        eprintln!("stopping: finishing the batch in hand");
        server.shutdown().await;
        Ok(exit::OK)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) async fn open_store(config: &Config) -> Result<AnyStore> {
    AnyStore::open(&config.store_url()).await.context("cannot open the store")
}

pub fn run_token(command: TokenCommand) -> Result<u8> {
    let TokenCommand::Create(args) = command;
    let config = args.config.load()?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let audit = AuditFiles::open(&config.data_dir).context("cannot open the audit key")?;
        let lock = tokio::sync::Mutex::new(());
        let issued = riposte_server::api::create(&store, &audit, &lock, &args.name, args.scope, "cli").await?;
        eprintln!("token {:?} ({} scope) created; it is shown once:", args.name, args.scope);
        println!("{}", issued.text);
        Ok(exit::OK)
    })
}

pub fn run_audit(command: AuditCommand) -> Result<u8> {
    let AuditCommand::Verify(args) = command;
    let config = args.load()?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let audit = AuditFiles::open(&config.data_dir).context("cannot open the audit key")?;
        let entries = store.audit_log().await?;
        let head = audit.head().context("cannot read the audit head")?;
        match riposte_store::verify(&entries, &audit.key, head.as_ref()) {
            Ok(count) => {
                println!("audit trail intact: {count} entries verified");
                Ok(exit::OK)
            }
            Err(broken) => {
                println!("audit trail BROKEN: {broken}");
                Ok(exit::FINDINGS)
            }
        }
    })
}

fn time_text(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn run_alerts(command: AlertsCommand) -> Result<u8> {
    let AlertsCommand::List(args) = command;
    let config = args.config.load()?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let page =
            store.alerts(&AlertFilter { status: args.status, limit: args.limit, ..AlertFilter::default() }).await?;
        let mut out = std::io::stdout().lock();
        if args.json {
            for alert in &page.items {
                writeln!(out, "{}", serde_json::to_string(alert)?)?;
            }
        } else if page.items.is_empty() {
            writeln!(out, "no alerts yet")?;
        } else {
            writeln!(
                out,
                "{:>6}  {:<13} {:>5}  {:<12} {:<20}  RULE [ENTITIES]",
                "ID", "LEVEL", "COUNT", "STATUS", "LAST SEEN"
            )?;
            for alert in &page.items {
                // Host and user names come from the events: escaped, as the
                // sender of an event writes them.
                let entities: Vec<String> =
                    alert.entities.hosts.iter().chain(&alert.entities.users).take(3).map(|name| shown(name)).collect();
                writeln!(
                    out,
                    "{:>6}  {:<13} {:>5}  {:<12} {:<20}  {} [{}]",
                    alert.id,
                    alert.level,
                    alert.count,
                    alert.status.as_str(),
                    time_text(alert.last_seen_ms).get(..19).unwrap_or_default(),
                    shown(&alert.rule_title),
                    entities.join(", ")
                )?;
            }
        }
        Ok(exit::OK)
    })
}

/// The local admin token, written by the server when it first started.
fn local_token(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("no --token given and cannot read {} (has `riposte serve` run here?)", path.display())
    })?;
    Ok(text.trim().to_owned())
}

pub fn run_send(args: SendArgs) -> Result<u8> {
    let config = args.config.load()?;
    let url = args.url.clone().unwrap_or_else(|| format!("http://{}", config.http.listen));
    let token = match &args.token {
        Some(token) => token.clone(),
        None => local_token(&config.data_dir)?,
    };
    runtime()?.block_on(async move {
        let client = reqwest::Client::new();
        let mut total = 0;
        for file in &args.files {
            let body = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let response = client
                .post(format!("{}/api/ingest", url.trim_end_matches('/')))
                .bearer_auth(&token)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .with_context(|| format!("cannot reach {url} (is `riposte serve` running?)"))?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            if !status.is_success() {
                bail!(
                    "{}: the server said {status}: {}",
                    file.display(),
                    answer["error"]["message"].as_str().unwrap_or("")
                );
            }
            let accepted = answer["accepted"].as_u64().unwrap_or(0);
            let rejected = answer["rejected"].as_array().map_or(0, Vec::len);
            eprintln!("{}: {accepted} events accepted, {rejected} rejected", file.display());
            total += accepted;
        }
        eprintln!("{total} events sent; see them with `riposte alerts list` in a moment");
        Ok(exit::OK)
    })
}
