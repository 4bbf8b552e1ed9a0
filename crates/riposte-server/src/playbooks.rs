//! Playbooks in `serve`: the library (ready playbooks shipped with the
//! binary and the configured directories), triggers (new alerts, schedules,
//! signed webhooks, people), and the runner that takes runs up from the
//! store: after a restart, when a wait ends, when a person decides. Policy
//! sits between a playbook and the world: a kill switch that holds every
//! automatic action for a person, protected assets that are never acted on
//! automatically, and blast-radius limits per hour that stop an action and
//! raise an alert. Inverses of actions run when their time comes or when a
//! person undoes a run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use riposte_connectors::{Act, ConnectorConfig, Connectors, Secret, SecretValue, Vault};
use riposte_playbook::{
    ActError, Admission, Call, Catalog, DryRun, Entry, Host, HostError, Interpreter, Library, LoadError, Outcome,
    Playbook, State, Trace, Trigger,
};
use riposte_store::{
    AlertFilter, AnyStore, AuditEntry, Entities, NewAudit, NewDetection, NewRun, Run, RunStatus, RunStep, RunUndo,
    Store, StoreError,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, Notify, Semaphore};

use crate::auth::AuditFiles;
use crate::pipeline::now_ms;

/// The playbooks shipped with the binary. Each acts through connectors
/// under conventional names (`firewall`, `edr`, `chat`, `tickets`), so it
/// runs once those are configured.
pub const READY: [(&str, &str); 5] = [
    ("ready/phishing-triage.yml", include_str!("../playbooks/phishing-triage.yml")),
    ("ready/brute-force-block.yml", include_str!("../playbooks/brute-force-block.yml")),
    ("ready/malware-isolate.yml", include_str!("../playbooks/malware-isolate.yml")),
    ("ready/enrich-high-alerts.yml", include_str!("../playbooks/enrich-high-alerts.yml")),
    ("ready/compromised-account.yml", include_str!("../playbooks/compromised-account.yml")),
];

/// The replay tests of the ready playbooks (`riposte playbook test --ready`).
pub const READY_TESTS: [(&str, &str); 5] = [
    ("ready/phishing-triage.test.yml", include_str!("../playbooks/phishing-triage.test.yml")),
    ("ready/brute-force-block.test.yml", include_str!("../playbooks/brute-force-block.test.yml")),
    ("ready/malware-isolate.test.yml", include_str!("../playbooks/malware-isolate.test.yml")),
    ("ready/enrich-high-alerts.test.yml", include_str!("../playbooks/enrich-high-alerts.test.yml")),
    ("ready/compromised-account.test.yml", include_str!("../playbooks/compromised-account.test.yml")),
];

/// Every action a playbook may name without a configuration: each
/// connector type under its own and its conventional name, and the
/// built-in actions (for `playbook validate` and `playbook test`).
pub fn default_catalog() -> Catalog {
    let mut catalog = riposte_connectors::default_catalog();
    for spec in builtin_specs() {
        catalog.add(spec);
    }
    catalog
}

const HOUR_MS: i64 = 3_600_000;

/// How long a process holds a run it took up (a run is waiting or done long
/// before; a process that dies leaves it to another after this).
const LEASE_MS: i64 = 10 * 60_000;

/// `playbooks:` in the configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybookConfig {
    /// Directories of playbook files (`*.yml`, `*.yaml`).
    pub dirs: Vec<PathBuf>,
    /// Load the ready playbooks (those whose connectors are configured).
    pub ready: bool,
    /// At most this many actions of a kind (`isolate`, `block_ip`, ...) an
    /// hour, all playbooks together.
    pub limits: BTreeMap<String, u64>,
    /// The same, per playbook.
    pub limits_per_playbook: BTreeMap<String, u64>,
    /// Never acted on without a person.
    pub protected: Protected,
    /// Approver groups: names of API tokens (or chat users) in each.
    pub approvers: BTreeMap<String, Vec<String>>,
    /// Secrets of incoming webhooks, by name (`POST /api/hooks/{name}`).
    pub webhooks: BTreeMap<String, Secret>,
    /// Start with automatic actions paused (the kill switch on).
    pub paused: bool,
    /// The tools actions go through, by name.
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// Approval requests posted to chat, answered with its buttons.
    pub chat_approvals: Option<ChatApprovals>,
    /// How often tickets opened for alerts are asked whether they closed
    /// (their alert closes with them).
    pub ticket_sync: String,
    /// How long ended runs and their journals are kept (runs with an undo
    /// still to come or a ticket still followed are kept until they are done).
    pub keep_runs: String,
    /// The name this process leases runs under, the same across restarts so
    /// that it takes its own runs up again at once (default: one kept in the
    /// data directory). Processes sharing a database need different names.
    pub worker: Option<String>,
}

/// Approvals in chat: each request (and each escalation) is posted to a chat
/// connector with Approve and Reject buttons; a press comes back to
/// `/api/chat/slack` (signed by Slack) or `/api/chat/mattermost` (its
/// context signed by Riposte), and the chat user's name is the approver.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatApprovals {
    /// The chat connector (slack, mattermost or teams) requests go to.
    pub connector: String,
    /// The Slack app's signing secret, to check the presses Slack posts.
    #[serde(default)]
    pub slack_signing_secret: Option<Secret>,
    /// Signs the context of Mattermost buttons (a long random string).
    #[serde(default)]
    pub callback_secret: Option<Secret>,
    /// Riposte's address as the chat server reaches it (Mattermost buttons post there).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Mattermost's API (its URL and a bot's token): the presser's name is
    /// then read from Mattermost by the user id it sends, not taken from
    /// the request.
    #[serde(default)]
    pub mattermost_api: Option<riposte_connectors::RestConfig>,
}

/// Chat approvals with their secrets read.
struct ReadyChat {
    connector: String,
    slack_secret: Option<SecretValue>,
    callback_secret: Option<SecretValue>,
    public_url: Option<String>,
    mattermost_api: Option<riposte_connectors::Rest>,
}

impl Default for PlaybookConfig {
    fn default() -> Self {
        PlaybookConfig {
            dirs: Vec::new(),
            ready: true,
            limits: [("isolate", 10), ("block_ip", 50), ("disable_account", 5)]
                .into_iter()
                .map(|(kind, limit)| (kind.to_owned(), limit))
                .collect(),
            limits_per_playbook: BTreeMap::new(),
            protected: Protected::default(),
            approvers: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            paused: false,
            connectors: BTreeMap::new(),
            chat_approvals: None,
            ticket_sync: "5m".into(),
            keep_runs: "90d".into(),
            worker: None,
        }
    }
}

/// Hosts, users and networks no automatic action touches.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protected {
    pub hosts: Vec<String>,
    pub users: Vec<String>,
    pub networks: Vec<String>,
}

impl Protected {
    /// The first protected thing an action's inputs name.
    fn named_in(&self, inputs: &Value, networks: &[(IpAddr, u8)]) -> Option<String> {
        let mut stack = vec![inputs];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text) => {
                    if let Some(found) = self.named_by(text.trim(), networks) {
                        return Some(found);
                    }
                }
                Value::Array(items) => stack.extend(items),
                Value::Object(map) => stack.extend(map.values()),
                _ => {}
            }
        }
        None
    }
}

impl Protected {
    /// The protected thing `text` names, however it is written: a host as
    /// `DC01` or `dc01.corp.local`, a user as `administrator`,
    /// `CORP\\administrator` or `administrator@corp.example`, an address
    /// alone, with a port, or as a network that overlaps a protected one.
    fn named_by(&self, text: &str, networks: &[(IpAddr, u8)]) -> Option<String> {
        let account = text.rsplit('\\').next().unwrap_or(text);
        let account = account.split('@').next().unwrap_or(account);
        let first_label = text.split('.').next().unwrap_or(text);
        let same = |name: &&String| {
            name.eq_ignore_ascii_case(text)
                || name.eq_ignore_ascii_case(account)
                || name.eq_ignore_ascii_case(first_label)
        };
        if let Some(name) = self.hosts.iter().chain(&self.users).find(same) {
            return Some(name.clone());
        }
        // An address, an address with a port, or a network.
        let address_part = match text.parse::<std::net::SocketAddr>() {
            Ok(socket) => socket.ip().to_string(),
            Err(_) => text.to_owned(),
        };
        let (address, bits) = parse_network(&address_part)?;
        let overlaps = networks.iter().any(|(network, network_bits)| {
            let shorter = bits.min(*network_bits);
            contains(*network, shorter, address) || contains(address, shorter, *network)
        });
        overlaps.then(|| format!("{text} (a protected network)"))
    }
}

fn parse_network(text: &str) -> Option<(IpAddr, u8)> {
    let (address, bits) = text.split_once('/').unwrap_or((text, ""));
    let address: IpAddr = address.trim().parse().ok()?;
    let most = if address.is_ipv4() { 32 } else { 128 };
    let bits = if bits.is_empty() { most } else { bits.trim().parse().ok().filter(|bits| *bits <= most)? };
    Some((address, bits))
}

fn contains(network: IpAddr, bits: u8, address: IpAddr) -> bool {
    // IPv4-mapped IPv6 addresses are their IPv4 address.
    let value = |address: IpAddr| match address {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)), 32),
            None => (u128::from(v6), 128),
        },
    };
    let ((network, width), (address, other)) = (value(network), value(address));
    if width != other {
        return false;
    }
    let shift = width - u32::from(bits);
    shift >= width || network >> shift == address >> shift
}

/// Why a person's request about a run was refused.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads the library: the ready playbooks (those whose actions are all
/// configured) and every file under `dirs`. Problems in the ready ones are
/// returned apart: they mean "not configured", not "broken".
pub fn load_library(config: &PlaybookConfig, catalog: &Catalog) -> (Library, Vec<LoadError>, Vec<LoadError>) {
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut errors = Vec::new();
    for dir in &config.dirs {
        match playbook_files(dir) {
            Ok(files) => {
                for file in files {
                    match std::fs::read_to_string(&file) {
                        Ok(text) => sources.push((file.display().to_string(), text)),
                        Err(error) => errors.push(LoadError {
                            file: file.display().to_string(),
                            line: None,
                            step: None,
                            reason: error.to_string(),
                        }),
                    }
                }
            }
            Err(error) => errors.push(LoadError {
                file: dir.display().to_string(),
                line: None,
                step: None,
                reason: error.to_string(),
            }),
        }
    }
    let mut unready = Vec::new();
    if config.ready {
        for (file, text) in READY {
            // A ready playbook another of the same id replaces is left out.
            match riposte_playbook::load(file, text, catalog) {
                Ok(_) => sources.push((file.to_owned(), text.to_owned())),
                Err(found) => unready.extend(found),
            }
        }
        let own: HashSet<String> = sources
            .iter()
            .filter(|(file, _)| !file.starts_with("ready/"))
            .filter_map(|(_, text)| serde_saphyr::from_str::<IdOnly>(text).ok().map(|only| only.id))
            .collect();
        sources.retain(|(file, text)| {
            !file.starts_with("ready/")
                || serde_saphyr::from_str::<IdOnly>(text).map_or(true, |only| !own.contains(&only.id))
        });
    }
    let (library, found) = Library::load(sources.iter().map(|(file, text)| (file.as_str(), text.as_str())), catalog);
    errors.extend(found);
    (library, errors, unready)
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Playbook files under `path` (a file or a directory, walked), sorted;
/// their replay tests (`NAME.test.yml`) are not playbooks.
pub fn playbook_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    yaml_files(path, false)
}

/// The replay tests (`NAME.test.yml`) under `path`, sorted.
pub fn playbook_test_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    yaml_files(path, true)
}

/// YAML files under `path` that are (`tests`) or are not replay tests.
fn yaml_files(path: &Path, tests: bool) -> std::io::Result<Vec<PathBuf>> {
    let wanted = |path: &Path| {
        let yaml = path.extension().is_some_and(|extension| extension == "yml" || extension == "yaml");
        let test = path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.contains(".test."));
        yaml && test == tests
    };
    if path.is_file() {
        return Ok(if tests && !wanted(path) { Vec::new() } else { vec![path.to_owned()] });
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if wanted(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Takes runs up and keeps them going.
pub struct Runner {
    store: AnyStore,
    library: Library,
    connectors: Connectors,
    audit: Arc<AuditFiles>,
    audit_lock: Arc<Mutex<()>>,
    limits: BTreeMap<String, u64>,
    limits_per_playbook: BTreeMap<String, u64>,
    protected: Protected,
    protected_networks: Vec<(IpAddr, u8)>,
    approvers: BTreeMap<String, Vec<String>>,
    webhooks: BTreeMap<String, SecretValue>,
    chat: Option<ReadyChat>,
    paused: AtomicBool,
    /// Runs being interpreted in this process.
    active: std::sync::Mutex<HashSet<String>>,
    /// Inverses being run, and when a failed one may be tried again.
    undoing: std::sync::Mutex<HashMap<(String, String), i64>>,
    permits: HashMap<String, Arc<Semaphore>>,
    /// One admission (count, then note) at a time.
    admission: Mutex<()>,
    wake: Notify,
    /// The newest alert looked at for triggers.
    alert_cursor: AtomicI64,
    /// When each scheduled playbook runs next.
    schedules: std::sync::Mutex<HashMap<String, i64>>,
    ticket_sync_ms: i64,
    /// When followed tickets were last asked about.
    last_ticket_sync: AtomicI64,
    /// This process's name on the runs it leases.
    owner: String,
    keep_runs_ms: i64,
    /// When old runs were last forgotten.
    last_prune: AtomicI64,
}

/// What a person sees of a waiting approval.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Approval {
    pub run_id: String,
    pub playbook: String,
    pub path: String,
    pub asked: Value,
    pub asked_ms: i64,
}

impl Runner {
    /// A runner over `store` for the playbooks `config` names, with
    /// `builtin` actions beside the configured connectors. Returns it with
    /// the problems found (user playbooks) and the ready playbooks left out.
    pub fn new(
        config: &PlaybookConfig,
        store: AnyStore,
        audit: Arc<AuditFiles>,
        audit_lock: Arc<Mutex<()>>,
        builtin: Vec<Arc<dyn Act>>,
        vault: Option<&Vault>,
    ) -> Result<(Runner, Vec<LoadError>, Vec<LoadError>), String> {
        let mut connectors = Connectors::new(&config.connectors, vault)?;
        for act in builtin {
            connectors.add_builtin(act);
        }
        let (library, errors, unready) = load_library(config, connectors.catalog());
        let mut protected_networks = Vec::new();
        for network in &config.protected.networks {
            protected_networks
                .push(parse_network(network).ok_or_else(|| format!("protected network {network:?} is not a network"))?);
        }
        let mut webhooks = BTreeMap::new();
        for (name, secret) in &config.webhooks {
            webhooks.insert(name.clone(), secret.read(vault).map_err(|reason| format!("webhook {name}: {reason}"))?);
        }
        let chat = match &config.chat_approvals {
            Some(chat) => {
                if connectors.chat(&chat.connector).is_none() {
                    return Err(format!("chat_approvals: {} is not a chat connector", chat.connector));
                }
                let read = |secret: &Option<Secret>| {
                    secret
                        .as_ref()
                        .map(|secret| secret.read(vault).map_err(|reason| format!("chat_approvals: {reason}")))
                        .transpose()
                };
                Some(ReadyChat {
                    connector: chat.connector.clone(),
                    slack_secret: read(&chat.slack_signing_secret)?,
                    callback_secret: read(&chat.callback_secret)?,
                    public_url: chat.public_url.clone(),
                    mattermost_api: chat
                        .mattermost_api
                        .as_ref()
                        .map(|api| riposte_connectors::Rest::new("mattermost-api", api, vault))
                        .transpose()?,
                })
            }
            None => None,
        };
        let ticket_sync_ms = riposte_playbook::parse_duration(&config.ticket_sync)
            .ok_or_else(|| format!("ticket_sync {:?} is not a duration", config.ticket_sync))?
            .as_millis() as i64;
        let keep_runs_ms = riposte_playbook::parse_duration(&config.keep_runs)
            .ok_or_else(|| format!("keep_runs {:?} is not a duration", config.keep_runs))?
            .as_millis() as i64;
        let permits = library
            .playbooks()
            .map(|playbook| (playbook.id.clone(), Arc::new(Semaphore::new(playbook.concurrency as usize))))
            .collect();
        let runner = Runner {
            store,
            library,
            connectors,
            audit,
            audit_lock,
            limits: config.limits.clone(),
            limits_per_playbook: config.limits_per_playbook.clone(),
            protected: config.protected.clone(),
            protected_networks,
            approvers: config.approvers.clone(),
            webhooks,
            chat,
            paused: AtomicBool::new(config.paused),
            active: Default::default(),
            undoing: Default::default(),
            permits,
            admission: Mutex::new(()),
            wake: Notify::new(),
            alert_cursor: AtomicI64::new(0),
            schedules: Default::default(),
            ticket_sync_ms,
            last_ticket_sync: AtomicI64::new(now_ms()),
            owner: config.worker.clone().unwrap_or_else(|| format!("worker-{}", new_run_id())),
            keep_runs_ms,
            last_prune: AtomicI64::new(0),
        };
        Ok((runner, errors, unready))
    }

    /// A runner for decisions, cancellations and listings only: no
    /// connectors (so no secrets are read) and no playbooks.
    pub fn offline(
        config: &PlaybookConfig,
        store: AnyStore,
        audit: Arc<AuditFiles>,
        audit_lock: Arc<Mutex<()>>,
    ) -> Result<Runner, String> {
        let offline = PlaybookConfig {
            connectors: BTreeMap::new(),
            chat_approvals: None,
            webhooks: BTreeMap::new(),
            dirs: Vec::new(),
            ready: false,
            ..config.clone()
        };
        Runner::new(&offline, store, audit, audit_lock, Vec::new(), None).map(|(runner, _, _)| runner)
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    pub fn catalog(&self) -> &Catalog {
        self.connectors.catalog()
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Turns the kill switch on (every automatic action waits for a person) or off, audited.
    pub async fn set_paused(&self, paused: bool, actor: &str) -> Result<(), StoreError> {
        self.paused.store(paused, Ordering::SeqCst);
        let action = if paused { "playbooks.pause" } else { "playbooks.resume" };
        let record = audit(actor, action, "playbooks", json!({}));
        self.audited(|| self.store.append_audit(&record, &self.audit.key)).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Appends to the audit trail through `change`, then records the new head.
    async fn audited<T, F: Future<Output = Result<T, StoreError>>>(
        &self,
        change: impl FnOnce() -> F,
    ) -> Result<T, StoreError>
    where
        T: AuditHeaded,
    {
        let _one_at_a_time = self.audit_lock.lock().await;
        let value = change().await?;
        if let Some(entry) = value.audit_entry() {
            self.audit.keep_head(entry);
        }
        Ok(value)
    }

    /// Starts a run of `playbook` (none when one with the same `dedup_key` exists).
    pub async fn start(
        &self,
        playbook: &str,
        trigger: Value,
        inputs: Map<String, Value>,
        requested_by: Option<&str>,
        dedup_key: Option<String>,
    ) -> Result<Option<Run>, RunError> {
        if self.library.get(playbook).is_none() {
            return Err(RunError::NotFound("playbook"));
        }
        let run = NewRun {
            id: new_run_id(),
            playbook: playbook.to_owned(),
            trigger,
            inputs: Value::Object(inputs),
            requested_by: requested_by.map(str::to_owned),
            dedup_key,
        };
        let created = self.store.create_run(&run).await?;
        if created.is_some() {
            self.wake.notify_one();
        }
        Ok(created)
    }

    /// What a run of `playbook` would do, acting on nothing: the steps in
    /// order, with step outputs taken from `outputs` (by step id).
    pub async fn dry_run(
        &self,
        playbook: &str,
        trigger: &Value,
        inputs: &Map<String, Value>,
        outputs: HashMap<String, Value>,
    ) -> Result<(Outcome, Vec<Trace>), RunError> {
        dry_run(&self.library, playbook, trigger, inputs, outputs).await
    }

    /// Keeps taking runs up until `stop` says so.
    pub async fn keep_running(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "playbooks: cannot read the store; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: new alerts and schedules start runs, due runs are taken
    /// up, due inverses run. Returns the runs taken up, for tests.
    pub async fn tick(self: &Arc<Self>) -> Result<Vec<tokio::task::JoinHandle<()>>, StoreError> {
        self.start_from_alerts().await?;
        self.start_from_schedules().await?;
        let now = now_ms();
        let mut taken = Vec::new();
        for run in self.store.runs_due(now).await? {
            if self.active.lock().expect("active lock").contains(&run.id) {
                continue;
            }
            // Another process on the same database may have taken it.
            if !self.store.lease_run(&run.id, &self.owner, now, now + LEASE_MS).await? {
                continue;
            }
            if !self.active.lock().expect("active lock").insert(run.id.clone()) {
                continue;
            }
            let runner = self.clone();
            taken.push(tokio::spawn(async move {
                let id = run.id.clone();
                runner.take_up(run).await;
                runner.active.lock().expect("active lock").remove(&id);
            }));
        }
        if now - self.last_prune.load(Ordering::SeqCst) >= HOUR_MS {
            self.last_prune.store(now, Ordering::SeqCst);
            match self.store.prune_runs(now - self.keep_runs_ms).await {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(forgotten, "old playbook runs forgotten"),
                Err(error) => tracing::warn!(%error, "cannot forget old playbook runs"),
            }
        }
        if now - self.last_ticket_sync.load(Ordering::SeqCst) >= self.ticket_sync_ms {
            self.last_ticket_sync.store(now, Ordering::SeqCst);
            let runner = self.clone();
            taken.push(tokio::spawn(async move {
                if let Err(error) = runner.sync_tickets().await {
                    tracing::warn!(%error, "cannot sync the status of tickets");
                }
            }));
        }
        for undo in self.store.pending_undos(None, Some(now)).await? {
            let key = (undo.run_id.clone(), undo.path.clone());
            {
                let mut undoing = self.undoing.lock().expect("undo lock");
                if undoing.get(&key).is_some_and(|retry_at| *retry_at > now) {
                    continue;
                }
                undoing.insert(key.clone(), i64::MAX);
            }
            let runner = self.clone();
            taken.push(tokio::spawn(async move {
                let retry_at = match runner.perform_undo(&undo, "riposte (undo_after)").await {
                    Ok(_) => None,
                    Err(error) if error.retryable => Some(now_ms() + 60_000),
                    Err(_) => None,
                };
                let mut undoing = runner.undoing.lock().expect("undo lock");
                match retry_at {
                    Some(at) => undoing.insert(key, at),
                    None => undoing.remove(&key),
                };
            }));
        }
        Ok(taken)
    }

    async fn start_from_alerts(&self) -> Result<(), StoreError> {
        let alerting: Vec<&Arc<Playbook>> = self
            .library
            .playbooks()
            .filter(|playbook| playbook.triggers.iter().any(|trigger| matches!(trigger, Trigger::Alert(_))))
            .collect();
        let cursor = self.alert_cursor.load(Ordering::SeqCst);
        // New alerts, newest first, back to the cursor (or a day back on the first round).
        let mut fresh = Vec::new();
        let mut before = None;
        'pages: loop {
            let filter = AlertFilter {
                since_ms: (cursor == 0).then(|| now_ms() - 24 * HOUR_MS),
                before,
                limit: 200,
                ..AlertFilter::default()
            };
            let page = self.store.alerts(&filter).await?;
            for alert in page.items {
                if alert.id <= cursor {
                    break 'pages;
                }
                fresh.push(alert);
            }
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        if let Some(newest) = fresh.first() {
            self.alert_cursor.store(newest.id, Ordering::SeqCst);
        }
        for alert in fresh.into_iter().rev() {
            let alert_json = serde_json::to_value(&alert).unwrap_or_default();
            for playbook in &alerting {
                let matched = playbook.triggers.iter().any(|trigger| match trigger {
                    Trigger::Alert(filter) => filter.matches(&alert_json, playbook.templates()),
                    _ => false,
                });
                if matched {
                    let trigger = riposte_playbook::run::alert_trigger(alert_json.clone());
                    let dedup = format!("{}/alert:{}", playbook.id, alert.id);
                    if let Err(error) = self.start(&playbook.id, trigger, Map::new(), None, Some(dedup)).await {
                        tracing::warn!(%error, playbook = %playbook.id, "cannot start a run");
                    }
                }
            }
        }
        Ok(())
    }

    async fn start_from_schedules(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let mut due = Vec::new();
        {
            let mut schedules = self.schedules.lock().expect("schedule lock");
            for playbook in self.library.playbooks() {
                for trigger in &playbook.triggers {
                    let Trigger::Schedule(cron) = trigger else { continue };
                    let key = format!("{}/{}", playbook.id, cron.text);
                    let next =
                        *schedules.entry(key.clone()).or_insert_with(|| cron.next_after(now).unwrap_or(i64::MAX));
                    if next <= now {
                        due.push((playbook.id.clone(), cron.text.clone(), next));
                        schedules.insert(key, cron.next_after(now).unwrap_or(i64::MAX));
                    }
                }
            }
        }
        for (playbook, schedule, at) in due {
            let trigger = json!({ "kind": "schedule", "schedule": schedule, "at_ms": at });
            self.start(&playbook, trigger, Map::new(), None, Some(format!("{playbook}/schedule:{at}"))).await.map_err(
                |error| match error {
                    RunError::Store(error) => error,
                    other => StoreError::Corrupt { what: "schedule", reason: other.to_string() },
                },
            )?;
        }
        Ok(())
    }

    /// Interprets a run as far as it goes and stores where it stands.
    pub async fn take_up(&self, run: Run) {
        let Some(playbook) = self.library.get(&run.playbook).cloned() else {
            let outcome = json!({"status": "failed", "error": format!("playbook {} is not loaded", run.playbook)});
            let _ = self.store.set_run_status(&run.id, RunStatus::Failed, None, Some(&outcome)).await;
            return;
        };
        let _permit = match self.permits.get(&playbook.id) {
            Some(permits) => permits.clone().acquire_owned().await.ok(),
            None => None,
        };
        // The wait for a permit may have been long: lease again, and keep
        // the lease fresh while the run is worked on.
        if !self.store.lease_run(&run.id, &self.owner, now_ms(), now_ms() + LEASE_MS).await.unwrap_or(false) {
            return;
        }
        let heartbeat = {
            let (store, id, owner) = (self.store.clone(), run.id.clone(), self.owner.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis((LEASE_MS / 3) as u64)).await;
                    let _ = store.lease_run(&id, &owner, now_ms(), now_ms() + LEASE_MS).await;
                }
            })
        };
        let _stop_heartbeat = AbortOnDrop(heartbeat);
        let journal = match self.store.run_steps(&run.id).await {
            Ok(steps) => journal_of(&steps),
            Err(error) => {
                tracing::warn!(%error, run = %run.id, "cannot read a run's journal");
                return;
            }
        };
        let alert_id = run.trigger.pointer("/alert/id").and_then(Value::as_i64);
        let host = RunHost { runner: self, run_id: &run.id, playbook: &playbook.id, alert_id };
        let interpreter = Interpreter::new(&self.library, &host, &run.id, journal);
        let inputs = run.inputs.as_object().cloned().unwrap_or_default();
        let outcome = match interpreter.run(&playbook, &run.trigger, &inputs).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // The journal could not be written: the run stays running and is taken up again.
                tracing::warn!(%error, run = %run.id, "a run stopped where it was");
                return;
            }
        };
        let outcome_json = serde_json::to_value(&outcome).unwrap_or_default();
        let (status, wake, ended) = match &outcome {
            Outcome::Completed { .. } => (RunStatus::Completed, None, true),
            Outcome::Failed { .. } => (RunStatus::Failed, None, true),
            Outcome::Waiting { wake_ms } => (RunStatus::Waiting, *wake_ms, false),
        };
        // (A cancelled run stays cancelled: the store keeps it so.)
        if let Err(error) = self.store.set_run_status(&run.id, status, wake, ended.then_some(&outcome_json)).await {
            tracing::warn!(%error, run = %run.id, "cannot store where a run stands");
            return;
        }
        if status == RunStatus::Waiting {
            // A decision that came in while the run was worked on did not wake
            // it (it was not waiting yet): look, now that it is.
            let ours = interpreter.journal();
            let decided = self.store.run_steps(&run.id).await.is_ok_and(|stored| {
                stored.iter().any(|step| {
                    step.state == "done" && ours.get(&step.path).is_some_and(|entry| entry.state == State::Waiting)
                })
            });
            if decided && let Err(error) = self.store.set_run_status(&run.id, RunStatus::Running, None, None).await {
                tracing::warn!(%error, run = %run.id, "cannot wake a run");
            }
        }
    }

    /// Asks each followed ticket's tool for its status; a closed ticket
    /// closes the alert it was opened for (audited as the ticket). Returns
    /// how many closed.
    pub async fn sync_tickets(&self) -> Result<usize, StoreError> {
        let mut closed = 0;
        for link in self.store.open_ticket_links().await? {
            let follow = self
                .catalog()
                .actions()
                .filter_map(|spec| spec.follow.as_ref())
                .find(|follow| follow.status_action == link.status_action)
                .cloned();
            let Some(follow) = follow else { continue };
            let call = Call {
                run_id: link.run_id.clone(),
                playbook: String::new(),
                path: format!("ticket:{}", link.ticket),
                action: link.status_action.clone(),
                inputs: link.inputs.clone(),
                idempotency_key: format!("ticket:{}", link.ticket),
                changes: false,
                approved_by: None,
            };
            let status = match self.connectors.act(&call).await {
                Ok(status) => status,
                Err(error) => {
                    tracing::warn!(ticket = %link.ticket, error = %error.message, "cannot read a ticket's status");
                    continue;
                }
            };
            let done = follow.closed(&status);
            if done {
                let change =
                    riposte_store::AlertChange { status: Some(riposte_store::AlertStatus::Closed), verdict: None };
                let record = audit(
                    &format!("ticket {} ({})", link.ticket, link.status_action),
                    "alert.change",
                    &format!("alert:{}", link.alert_id),
                    json!({"status": "closed", "ticket": link.ticket, "ticket_status": status}),
                );
                let changed = self
                    .audited(|| async {
                        Ok(self
                            .store
                            .change_alert(link.alert_id, &change, &record, &self.audit.key)
                            .await?
                            .map(|(_, entry)| entry))
                    })
                    .await?;
                if changed.is_some() {
                    closed += 1;
                }
            }
            self.store.update_ticket_link(&link.status_action, &link.ticket, &status, done).await?;
        }
        Ok(closed)
    }

    /// Follows the ticket an action opened for the alert that started the run.
    async fn follow_ticket(&self, alert_id: Option<i64>, call: &Call, output: &Value) {
        let Some(alert_id) = alert_id else { return };
        let Some(follow) = self.catalog().get(&call.action).and_then(|spec| spec.follow.clone()) else { return };
        let Some(ticket) = output.get(&follow.from_output).and_then(|value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }) else {
            return;
        };
        let link = riposte_store::TicketLink {
            status_action: follow.status_action.clone(),
            inputs: json!({ follow.input: ticket }),
            ticket,
            alert_id,
            run_id: call.run_id.clone(),
            state: "open".into(),
            status: Value::Null,
        };
        if let Err(error) = self.store.link_ticket(&link).await {
            tracing::warn!(%error, ticket = %link.ticket, "cannot follow a ticket");
        }
    }

    /// Policy's say on an action about to run. The kill switch and protected
    /// assets hold only automatic actions (a person's approval lets them
    /// go); every action is counted against the blast-radius limits,
    /// approved or not.
    async fn admit(&self, playbook: &str, call: &Call) -> Admission {
        // (A cancelled run needs no check here: cancelling ends its lease,
        // so the journal write before the call fails and the take-up stops.)
        if call.approved_by.is_none() {
            if self.paused() {
                return Admission::Hold("automatic actions are paused (the kill switch is on)".into());
            }
            if let Some(protected) = self.protected.named_in(&call.inputs, &self.protected_networks) {
                return Admission::Hold(format!("{protected} is protected"));
            }
        }
        let kind = call.action.rsplit('.').next().unwrap_or(&call.action).to_owned();
        let _one_at_a_time = self.admission.lock().await;
        let now = now_ms();
        let limits = [(self.limits.get(&kind), None), (self.limits_per_playbook.get(&kind), Some(playbook))];
        for (limit, scope) in limits {
            let Some(&limit) = limit else { continue };
            let counted = match self.store.actions_since(&kind, scope, now - HOUR_MS).await {
                Ok(counted) => counted,
                Err(error) => return Admission::Refuse(format!("the action counts cannot be read: {error}")),
            };
            if counted >= limit {
                let reason = match scope {
                    Some(playbook) => format!("at most {limit} {kind} an hour for playbook {playbook}"),
                    None => format!("at most {limit} {kind} an hour"),
                };
                self.raise_limit_alert(playbook, call, &reason).await;
                return Admission::Refuse(reason);
            }
        }
        if let Err(error) = self.store.note_action(&call.run_id, &call.path, playbook, &kind, now).await {
            return Admission::Refuse(format!("the action cannot be counted: {error}"));
        }
        Admission::Allow
    }

    /// The alert a blast-radius limit raises.
    async fn raise_limit_alert(&self, playbook: &str, call: &Call, reason: &str) {
        let mut entities = Entities::default();
        let mut stack = vec![&call.inputs];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text) if text.parse::<IpAddr>().is_ok() => entities.ips.push(text.clone()),
                Value::Object(map) => {
                    for (key, value) in map {
                        match (key.as_str(), value) {
                            ("host" | "hostname" | "computer", Value::String(host)) => {
                                entities.hosts.push(host.clone())
                            }
                            ("user" | "account" | "username", Value::String(user)) => entities.users.push(user.clone()),
                            _ => stack.push(value),
                        }
                    }
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        let rule_id = "riposte:playbook-limit".to_owned();
        let detection = NewDetection {
            key: format!("limit:{}/{}", call.run_id, call.path),
            fingerprint: crate::alert::fingerprint(&rule_id, &entities),
            rule_title: format!("Playbook {playbook} stopped at {}: {reason}", call.action),
            level: "high".into(),
            techniques: Vec::new(),
            entities,
            time_ms: now_ms(),
            window_ms: 0,
            event_seq: 0,
            rule_id,
            intel: Vec::new(),
        };
        if let Err(error) = self.store.record(&[detection], &[], None).await {
            tracing::error!(%error, "cannot raise the alert of a blast-radius limit");
        }
        tracing::warn!(playbook, action = %call.action, reason, "a blast-radius limit stopped an action");
    }

    /// Waiting approvals (and suggestions), oldest first.
    pub async fn approvals(&self) -> Result<Vec<Approval>, StoreError> {
        let mut approvals = Vec::new();
        for step in self.store.waiting_steps().await? {
            let asked = step.entry.get("output").cloned().unwrap_or_default();
            if asked.get("approvers").is_none() {
                continue; // a wait, not an approval
            }
            let playbook = self.store.run(&step.run_id).await?.map(|run| run.playbook).unwrap_or_default();
            approvals.push(Approval {
                run_id: step.run_id,
                playbook,
                path: step.path,
                asked,
                asked_ms: step.updated_ms,
            });
        }
        Ok(approvals)
    }

    /// A person's decision on a waiting approval. `by` is who decides
    /// (a token's name, a chat user); `admin` may decide for any group.
    pub async fn decide(
        &self,
        run_id: &str,
        path: &str,
        approve: bool,
        by: &str,
        admin: bool,
        comment: Option<&str>,
    ) -> Result<AuditEntry, RunError> {
        let run = self.store.run(run_id).await?.ok_or(RunError::NotFound("run"))?;
        let step = self
            .store
            .run_steps(run_id)
            .await?
            .into_iter()
            .find(|step| step.path == path && step.state == "waiting")
            .ok_or(RunError::NotFound("waiting approval"))?;
        let asked = step.entry.get("output").cloned().unwrap_or_default();
        if asked.get("approvers").is_none() {
            return Err(RunError::NotFound("waiting approval"));
        }
        let names = |field: &str| -> Vec<String> {
            asked
                .get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let mut groups = names("approvers");
        if asked.get("escalated").and_then(Value::as_bool) == Some(true) {
            groups.extend(names("escalate_to"));
        }
        if !admin && !groups.is_empty() {
            let member = groups.iter().any(|group| {
                self.approvers.get(group).is_some_and(|members| members.iter().any(|member| member == by))
            });
            if !member {
                return Err(RunError::Refused(format!("{by} is not in {}", groups.join(" or "))));
            }
        }
        if asked.get("four_eyes").and_then(Value::as_bool) == Some(true) && run.requested_by.as_deref() == Some(by) {
            return Err(RunError::Refused(format!("{by} started this run and cannot also approve it (four eyes)")));
        }
        let decided = Entry {
            output: json!({
                "approved": approve,
                "by": by,
                "reason": if approve { "approved" } else { "rejected" },
                "comment": comment,
                "decided_ms": now_ms(),
            }),
            ..empty_entry(State::Done)
        };
        let entry_json = serde_json::to_value(&decided).unwrap_or_default();
        let detail = json!({"path": path, "approved": approve, "comment": comment});
        let action = if approve { "run.approve" } else { "run.reject" };
        let record = audit(by, action, &format!("run:{run_id}"), detail);
        let entry = self
            .audited(|| self.store.decide_step(run_id, path, &entry_json, &record, &self.audit.key))
            .await?
            .ok_or_else(|| RunError::Refused("the approval was decided already".into()))?;
        self.wake.notify_one();
        Ok(entry)
    }

    /// Stops a run where it is, audited.
    pub async fn cancel(&self, run_id: &str, by: &str) -> Result<(), RunError> {
        let run = self.store.run(run_id).await?.ok_or(RunError::NotFound("run"))?;
        if run.status.ended() {
            return Err(RunError::Refused(format!("the run has already {}", run.status)));
        }
        let outcome = json!({"status": "cancelled", "by": by});
        self.store.set_run_status(run_id, RunStatus::Cancelled, None, Some(&outcome)).await?;
        let record = audit(by, "run.cancel", &format!("run:{run_id}"), json!({}));
        self.audited(|| self.store.append_audit(&record, &self.audit.key)).await?;
        Ok(())
    }

    /// Runs the inverses of a run's done actions (of one step when given), now.
    pub async fn undo(
        &self,
        run_id: &str,
        step: Option<&str>,
        by: &str,
    ) -> Result<Vec<(RunUndo, Result<Value, ActError>)>, RunError> {
        self.store.run(run_id).await?.ok_or(RunError::NotFound("run"))?;
        let pending: Vec<RunUndo> = self
            .store
            .pending_undos(Some(run_id), None)
            .await?
            .into_iter()
            .filter(|undo| step.is_none_or(|step| undo.path == step || undo.path.ends_with(&format!(".{step}"))))
            .collect();
        if pending.is_empty() {
            return Err(RunError::NotFound("action to undo"));
        }
        let mut results = Vec::new();
        for undo in pending {
            let result = self.perform_undo(&undo, by).await;
            results.push((undo, result));
        }
        Ok(results)
    }

    async fn perform_undo(&self, undo: &RunUndo, by: &str) -> Result<Value, ActError> {
        // The inverse takes the inputs it declares (unblock_ip takes no timeout).
        let inputs = match (self.catalog().get(&undo.action), &undo.inputs) {
            (Some(spec), Value::Object(given)) => Value::Object(
                given
                    .iter()
                    .filter(|(name, _)| spec.inputs.iter().any(|input| &input.name == *name))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
            ),
            (_, other) => other.clone(),
        };
        let playbook = self.store.run(&undo.run_id).await.ok().flatten().map(|run| run.playbook).unwrap_or_default();
        let call = Call {
            run_id: undo.run_id.clone(),
            playbook,
            path: format!("{}#undo", undo.path),
            action: undo.action.clone(),
            inputs,
            idempotency_key: format!("{}/{}#undo", undo.run_id, undo.path),
            changes: true,
            approved_by: Some(by.to_owned()),
        };
        let result = self.connectors.act(&call).await;
        let (done, detail) = match &result {
            Ok(output) => (true, output.to_string()),
            Err(error) => (false, error.message.clone()),
        };
        if result.as_ref().is_err_and(|error| error.retryable) && by.starts_with("riposte") {
            // Tried again later by the runner.
            tracing::warn!(run = %undo.run_id, path = %undo.path, error = %detail, "an undo failed; trying again later");
            return result;
        }
        let record = audit(
            by,
            if done { "run.undo" } else { "run.undo_failed" },
            &format!("run:{}", undo.run_id),
            json!({"path": undo.path, "action": undo.action, "detail": detail}),
        );
        if let Err(error) = self
            .audited(|| self.store.settle_undo(&undo.run_id, &undo.path, done, &detail, &record, &self.audit.key))
            .await
        {
            tracing::error!(%error, "cannot record an undo");
        }
        result
    }

    /// Posts a new (or escalated) approval request to chat, when configured.
    async fn announce(&self, run_id: &str, path: &str, asked: &Value) {
        let Some(chat) = &self.chat else { return };
        let Some(connector) = self.connectors.chat(&chat.connector) else { return };
        let names = |field: &str| -> String {
            let names: Vec<&str> =
                asked.get(field).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            names.join(", ")
        };
        let escalated = asked.get("escalated").and_then(Value::as_bool) == Some(true);
        let who = if escalated {
            format!("{} (escalated from {})", names("escalate_to"), names("approvers"))
        } else {
            names("approvers")
        };
        let kind = if asked.get("suggestion").and_then(Value::as_bool) == Some(true) {
            "Suggested action"
        } else {
            "Approval needed"
        };
        let text = format!(
            "*{kind}* (run {run_id}): {}\nApprovers: {who}",
            asked.get("message").and_then(Value::as_str).unwrap_or_default()
        );
        let callback = chat.public_url.as_ref().map(|url| format!("{}/api/chat/mattermost", url.trim_end_matches('/')));
        let key = chat.callback_secret.as_ref().map(|secret| secret.expose().as_bytes().to_vec()).unwrap_or_default();
        let sign = |text: &str| riposte_connectors::rest::hmac_hex(&key, &[text.as_bytes()]);
        let buttons =
            riposte_connectors::chat::ApprovalButtons { run_id, path, callback_url: callback.as_deref(), sign: &sign };
        let payload = riposte_connectors::chat::approval_message(connector.flavor(), &text, &buttons);
        if let Err(error) = connector.post(&payload).await {
            tracing::warn!(error = %error.message, run = run_id, "cannot post an approval request to chat");
        }
    }

    /// A button pressed in Slack: the request must carry Slack's signature
    /// (`v0=HMAC(signing secret, "v0:TIMESTAMP:BODY")`, five minutes at most
    /// old). Returns what to tell the person.
    pub async fn slack_action(
        &self,
        body: &[u8],
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<String, RunError> {
        let secret = self
            .chat
            .as_ref()
            .and_then(|chat| chat.slack_secret.as_ref())
            .ok_or(RunError::NotFound("Slack approvals"))?;
        let unsigned = || RunError::Refused("the Slack signature is missing, stale or wrong".into());
        let timestamp: i64 = timestamp.and_then(|text| text.trim().parse().ok()).ok_or_else(unsigned)?;
        if (now_ms() / 1000 - timestamp).abs() > 300 {
            return Err(unsigned());
        }
        let expected = format!(
            "v0={}",
            riposte_connectors::rest::hmac_hex(
                secret.expose().as_bytes(),
                &[b"v0:", timestamp.to_string().as_bytes(), b":", body]
            )
        );
        if !crate::auth::same_hash(&expected, signature.unwrap_or_default().trim()) {
            return Err(unsigned());
        }
        let form = String::from_utf8_lossy(body);
        let payload = form
            .split('&')
            .find_map(|pair| pair.strip_prefix("payload="))
            .and_then(riposte_connectors::rest::form_decode)
            .and_then(|json| serde_json::from_str::<Value>(&json).ok())
            .ok_or_else(|| RunError::Refused("no interaction payload".into()))?;
        let action = &payload["actions"][0];
        let approve = match action["action_id"].as_str() {
            Some("riposte_approve") => true,
            Some("riposte_reject") => false,
            _ => return Err(RunError::Refused("not a Riposte button".into())),
        };
        let (run_id, path) = action["value"]
            .as_str()
            .and_then(|value| value.split_once('|'))
            .ok_or_else(|| RunError::Refused("a button without its run".into()))?;
        let user = payload["user"]["username"].as_str().or(payload["user"]["name"].as_str()).unwrap_or_default();
        self.chat_decision(run_id, path, approve, user, "Slack").await
    }

    /// A button pressed in Mattermost: its context must carry Riposte's
    /// signature of run, path and decision.
    pub async fn mattermost_action(&self, body: &[u8]) -> Result<String, RunError> {
        let key = self
            .chat
            .as_ref()
            .and_then(|chat| chat.callback_secret.as_ref())
            .ok_or(RunError::NotFound("Mattermost approvals"))?;
        let unsigned = || RunError::Refused("the button's signature is missing or wrong".into());
        let request: Value = serde_json::from_slice(body).map_err(|_| unsigned())?;
        let context = &request["context"];
        let (Some(run_id), Some(path), Some(approve)) =
            (context["run_id"].as_str(), context["path"].as_str(), context["approve"].as_bool())
        else {
            return Err(unsigned());
        };
        let expected = riposte_connectors::rest::hmac_hex(
            key.expose().as_bytes(),
            &[format!("{run_id}|{path}|{approve}").as_bytes()],
        );
        if !crate::auth::same_hash(&expected, context["signature"].as_str().unwrap_or_default()) {
            return Err(unsigned());
        }
        let api = self.chat.as_ref().and_then(|chat| chat.mattermost_api.as_ref());
        let user = match (api, request["user_id"].as_str()) {
            // Who pressed, by Mattermost's own word.
            (Some(api), Some(user_id)) => {
                let path = format!("api/v4/users/{}", riposte_connectors::rest::path_segment(user_id));
                let found = api.call(reqwest::Method::GET, &path, None, None).await.map_err(|error| {
                    RunError::Refused(format!("Mattermost does not confirm who pressed: {}", error.message))
                })?;
                found["username"].as_str().unwrap_or_default().to_owned()
            }
            (Some(_), None) => return Err(RunError::Refused("the press names no user id".into())),
            (None, _) => request["user_name"].as_str().unwrap_or_default().to_owned(),
        };
        self.chat_decision(run_id, path, approve, &user, "Mattermost").await
    }

    async fn chat_decision(
        &self,
        run_id: &str,
        path: &str,
        approve: bool,
        user: &str,
        from: &str,
    ) -> Result<String, RunError> {
        if user.is_empty() {
            return Err(RunError::Refused("the chat did not say who pressed the button".into()));
        }
        let comment = format!("from {from}");
        match self.decide(run_id, path, approve, user, false, Some(&comment)).await {
            Ok(_) => Ok(format!("{} by {user}", if approve { "Approved" } else { "Rejected" })),
            // Said to the person in the chat, not an HTTP error.
            Err(RunError::Refused(reason)) => Ok(format!("Not done: {reason}")),
            Err(RunError::NotFound(what)) => Ok(format!("Not done: no such {what} (decided already?)")),
            Err(other) => Err(other),
        }
    }

    /// Starts the playbooks a signed webhook triggers. The signature is
    /// `sha256=HEX` of HMAC-SHA256 over `timestamp.body`, with the
    /// timestamp (Unix seconds) within five minutes.
    pub async fn webhook(
        &self,
        name: &str,
        body: &[u8],
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Vec<Run>, RunError> {
        let secret = self.webhooks.get(name).ok_or(RunError::NotFound("webhook"))?;
        let unsigned = || RunError::Refused("the signature is missing, stale or wrong".into());
        let timestamp: u64 = timestamp.and_then(|text| text.trim().parse().ok()).ok_or_else(unsigned)?;
        let now = (now_ms() / 1000) as u64;
        if now.abs_diff(timestamp) > 300 {
            return Err(unsigned());
        }
        let expected = format!("sha256={}", riposte_connectors::rest::sign(secret, timestamp, body));
        let given = signature.unwrap_or_default().trim();
        if !crate::auth::same_hash(&expected, given) {
            return Err(unsigned());
        }
        let payload: Value =
            serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let mut started = Vec::new();
        for playbook in self.library.playbooks() {
            let hooked = playbook
                .triggers
                .iter()
                .any(|trigger| matches!(trigger, Trigger::Webhook { name: hook } if hook == name));
            if hooked {
                let trigger = json!({"kind": "webhook", "name": name, "body": payload});
                let dedup =
                    format!("{}/webhook:{name}:{timestamp}:{}", playbook.id, &given[given.len().saturating_sub(16)..]);
                if let Some(run) = self.start(&playbook.id, trigger, Map::new(), None, Some(dedup)).await? {
                    started.push(run);
                }
            }
        }
        Ok(started)
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the audit helper needs of a change's result.
trait AuditHeaded {
    fn audit_entry(&self) -> Option<&AuditEntry>;
}

impl AuditHeaded for AuditEntry {
    fn audit_entry(&self) -> Option<&AuditEntry> {
        Some(self)
    }
}

impl AuditHeaded for Option<AuditEntry> {
    fn audit_entry(&self) -> Option<&AuditEntry> {
        self.as_ref()
    }
}

fn audit(actor: &str, action: &str, target: &str, detail: Value) -> NewAudit {
    NewAudit {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_string(),
    }
}

fn empty_entry(state: State) -> Entry {
    Entry { state, output: Value::Null, error: None, attempts: 0, wake_ms: None, undo: None }
}

/// A new run's id: its creation time and random bytes.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!("run-{}-{}", now_ms(), hex::encode(bytes))
}

/// A stored journal as the interpreter reads it (unreadable entries are left out).
fn journal_of(steps: &[RunStep]) -> HashMap<String, Entry> {
    steps
        .iter()
        .filter_map(|step| Some((step.path.clone(), serde_json::from_value(step.entry.clone()).ok()?)))
        .collect()
}

/// A dry run of a library's playbook.
pub async fn dry_run(
    library: &Library,
    playbook: &str,
    trigger: &Value,
    inputs: &Map<String, Value>,
    outputs: HashMap<String, Value>,
) -> Result<(Outcome, Vec<Trace>), RunError> {
    let found = library.get(playbook).ok_or(RunError::NotFound("playbook"))?;
    let host = DryRun { outputs, now_ms: now_ms() };
    let interpreter = Interpreter::new(library, &host, "dry-run", HashMap::new()).dry_run();
    let outcome =
        interpreter.run(found, trigger, inputs).await.map_err(|error| RunError::Refused(error.to_string()))?;
    Ok((outcome, interpreter.trace()))
}

/// The interpreter's view of the world during one run.
struct RunHost<'a> {
    runner: &'a Runner,
    run_id: &'a str,
    playbook: &'a str,
    /// The alert that started the run, if one did.
    alert_id: Option<i64>,
}

impl Host for RunHost<'_> {
    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }

    async fn act(&self, call: &Call) -> Result<Value, ActError> {
        let output = self.runner.connectors.act(call).await?;
        self.runner.follow_ticket(self.alert_id, call, &output).await;
        Ok(output)
    }

    fn admit(&self, call: &Call) -> impl Future<Output = Admission> + Send {
        self.runner.admit(self.playbook, call)
    }

    fn record(&self, path: &str, entry: &Entry) -> impl Future<Output = Result<(), HostError>> + Send {
        let state = match entry.state {
            State::Started => "started",
            State::Done => "done",
            State::Failed => "failed",
            State::Waiting => "waiting",
        };
        let undo = match (&entry.undo, entry.state) {
            (Some(undo), State::Done) => Some(RunUndo {
                run_id: self.run_id.to_owned(),
                path: path.to_owned(),
                action: undo.action.clone(),
                inputs: undo.inputs.clone(),
                due_ms: undo.due_ms,
                state: "pending".into(),
                detail: None,
            }),
            _ => None,
        };
        let entry_json = serde_json::to_value(entry).unwrap_or_default();
        let asks = entry.state == State::Waiting && entry.output.get("approvers").is_some();
        let runner = self.runner;
        let run_id = self.run_id;
        let path = path.to_owned();
        async move {
            let written = runner
                .store
                .record_step(run_id, &path, state, &entry_json, undo.as_ref(), Some(&runner.owner))
                .await
                .map_err(|error| HostError(error.to_string()))?;
            if !written {
                // A person decided meanwhile (this take-up works from an old
                // journal), or another process took the run over: this take-up
                // stops, and the next one starts from the journal as it is.
                return Err(HostError(format!("{path} changed, or the run's lease was lost, while it was worked on")));
            }
            if asks {
                runner.announce(run_id, &path, &entry_json["output"]).await;
            }
            Ok(())
        }
    }
}

/// Actions implemented inside Riposte: threat-intelligence look-ups and
/// alert changes (audited, as the playbook's run).
pub struct Builtins {
    pub store: AnyStore,
    pub intel: Arc<crate::intel::IntelState>,
    pub audit: Arc<AuditFiles>,
    pub audit_lock: Arc<Mutex<()>>,
}

/// The specs of the built-in actions (also for `playbook validate`).
pub fn builtin_specs() -> Vec<riposte_playbook::ActionSpec> {
    use riposte_playbook::{ActionSpec, InputSpec, InputType};
    vec![
        ActionSpec {
            name: "intel.lookup".into(),
            description: "What the loaded threat intelligence says of a value".into(),
            changes: false,
            inputs: vec![InputSpec::required("value", InputType::String, "an address, domain, URL, hash or e-mail")],
            inverse: None,
            secrets: Vec::new(),
            follow: None,
        },
        ActionSpec {
            name: "alerts.set_status".into(),
            description: "Set an alert's status".into(),
            changes: true,
            inputs: vec![
                InputSpec::required("alert", InputType::Any, "the alert's id"),
                InputSpec::required("status", InputType::String, "new, acknowledged, in_progress or closed"),
            ],
            inverse: None,
            secrets: Vec::new(),
            follow: None,
        },
    ]
}

impl Act for Builtins {
    fn actions(&self) -> Vec<riposte_playbook::ActionSpec> {
        builtin_specs()
    }

    fn act<'a>(&'a self, call: &'a Call) -> futures_util::future::BoxFuture<'a, Result<Value, ActError>> {
        Box::pin(async move {
            match call.action.as_str() {
                "intel.lookup" => {
                    let given = call.inputs.get("value").and_then(Value::as_str).unwrap_or_default();
                    let value = riposte_intel::refang(given);
                    if riposte_intel::recognise(&value).is_none() {
                        return Err(ActError::permanent(format!("{value:?} is not a value indicators name")));
                    }
                    let Some(set) = self.intel.current() else {
                        return Ok(json!({"value": value, "matches": []}));
                    };
                    let matches = crate::intel::lookup_json(&set, &value, now_ms());
                    Ok(json!({"value": value, "matches": matches}))
                }
                "alerts.set_status" => {
                    let id = match call.inputs.get("alert") {
                        Some(Value::Number(number)) => number.as_i64(),
                        Some(Value::String(text)) => text.trim().parse().ok(),
                        _ => None,
                    }
                    .ok_or_else(|| ActError::permanent("alert is not an alert id"))?;
                    let status = call.inputs.get("status").and_then(Value::as_str).unwrap_or_default();
                    let status = status.parse().map_err(ActError::permanent)?;
                    let change = riposte_store::AlertChange { status: Some(status), verdict: None };
                    let record = audit(
                        &format!("playbook:{} run:{}", call.playbook, call.run_id),
                        "alert.change",
                        &format!("alert:{id}"),
                        json!({"status": status}),
                    );
                    let _one_at_a_time = self.audit_lock.lock().await;
                    let changed = self
                        .store
                        .change_alert(id, &change, &record, &self.audit.key)
                        .await
                        .map_err(|error| ActError::retryable(format!("the store: {error}")))?;
                    let Some((alert, entry)) = changed else {
                        return Err(ActError::permanent(format!("there is no alert {id}")));
                    };
                    self.audit.keep_head(&entry);
                    Ok(json!({"alert": alert.id, "status": alert.status}))
                }
                other => Err(ActError::permanent(format!("{other} is not a built-in action"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let inside = |network: &str, address: &str| {
            let (network, bits) = parse_network(network).unwrap();
            contains(network, bits, address.parse().unwrap())
        };
        assert!(inside("10.0.0.0/8", "10.200.1.1"));
        assert!(!inside("10.0.0.0/8", "11.0.0.1"));
        assert!(inside("192.168.1.7", "192.168.1.7"));
        assert!(!inside("192.168.1.7", "192.168.1.8"));
        assert!(inside("2001:db8::/32", "2001:db8:1::5"));
        assert!(!inside("2001:db8::/32", "10.0.0.1"));
        assert!(inside("10.0.0.0/8", "::ffff:10.1.2.3"));
        assert!(inside("0.0.0.0/0", "8.8.8.8"));
        assert!(parse_network("10.0.0.0/33").is_none());
    }

    #[test]
    fn protected_things_are_found_anywhere_in_the_inputs() {
        let protected = Protected {
            hosts: vec!["DC01".into()],
            users: vec!["administrator".into()],
            networks: vec!["10.0.0.0/8".into()],
        };
        let networks: Vec<_> = protected.networks.iter().map(|network| parse_network(network).unwrap()).collect();
        assert_eq!(protected.named_in(&json!({"host": "dc01"}), &networks).as_deref(), Some("DC01"));
        assert_eq!(
            protected.named_in(&json!({"targets": [{"ip": "10.9.9.9"}]}), &networks).as_deref(),
            Some("10.9.9.9 (a protected network)")
        );
        for written in [
            "dc01.corp.local",
            "CORP\\Administrator",
            "administrator@corp.example",
            "10.1.2.3:445",
            "10.0.0.0/7",
            "10.1.2.3/32",
        ] {
            assert!(protected.named_in(&json!({"target": written}), &networks).is_some(), "{written}");
        }
        for other in ["dc02.corp.local", "admin@corp.example", "11.0.0.1:445", "11.0.0.0/8"] {
            assert_eq!(protected.named_in(&json!({"target": other}), &networks), None, "{other}");
        }
        assert_eq!(protected.named_in(&json!({"host": "ws7", "ip": "45.77.12.9"}), &networks), None);
    }
}
