//! The tools playbooks act through. Each connector is configured under a
//! name and offers actions named `NAME.ACTION` (`firewall.block_ip`), each
//! declaring its inputs, whether it changes anything, its inverse, and the
//! secrets it needs. Every HTTP request goes through [`fetch`]: timeouts,
//! a size limit, TLS verified, and no internal address unless allowed.

pub mod chat;
pub mod fetch;
pub mod http;
pub mod nftables;
pub mod profiled;
pub mod rest;
pub mod secret;
pub mod smtp;
pub mod ticket;
pub mod vault;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use riposte_playbook::{ActError, ActionSpec, Call, Catalog, InputSpec};
use serde::Deserialize;
use serde_json::Value;

pub use rest::{AuthConfig, Rest, RestConfig};
pub use secret::{Secret, SecretValue};
pub use vault::{Vault, VaultError};

/// One connector's settings, by `type`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectorConfig {
    /// Any REST API.
    Http(RestConfig),
    /// JSON posted to one URL (signed when `auth.kind` is `hmac`).
    Webhook(RestConfig),
    Slack(chat::ChatConfig),
    Mattermost(chat::ChatConfig),
    Teams(chat::ChatConfig),
    /// E-mail out.
    Smtp(smtp::SmtpConfig),
    Nftables(nftables::NftConfig),
    Edr(profiled::ProfiledConfig),
    Identity(profiled::ProfiledConfig),
    /// A firewall with a REST API (the `nftables` type is the local host's).
    RestFirewall(profiled::ProfiledConfig),
    Jira(ticket::JiraConfig),
    Thehive(RestConfig),
}

impl ConnectorConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorConfig::Http(_) => "http",
            ConnectorConfig::Webhook(_) => "webhook",
            ConnectorConfig::Slack(_) => "slack",
            ConnectorConfig::Mattermost(_) => "mattermost",
            ConnectorConfig::Teams(_) => "teams",
            ConnectorConfig::Smtp(_) => "smtp",
            ConnectorConfig::Nftables(_) => "nftables",
            ConnectorConfig::Edr(_) => "edr",
            ConnectorConfig::Identity(_) => "identity",
            ConnectorConfig::RestFirewall(_) => "rest_firewall",
            ConnectorConfig::Jira(_) => "jira",
            ConnectorConfig::Thehive(_) => "thehive",
        }
    }
}

/// Every connector type under its own name, and the conventional names the
/// ready playbooks use (`firewall`, `chat`, `tickets`, `email`, `hive`): what
/// `playbook validate` checks against when no configuration is given.
pub const DEFAULT_NAMES: [(&str, &str); 17] = [
    ("http", "http"),
    ("webhook", "webhook"),
    ("slack", "slack"),
    ("mattermost", "mattermost"),
    ("teams", "teams"),
    ("smtp", "smtp"),
    ("nftables", "nftables"),
    ("rest_firewall", "rest_firewall"),
    ("edr", "edr"),
    ("identity", "identity"),
    ("jira", "jira"),
    ("thehive", "thehive"),
    ("firewall", "nftables"),
    ("chat", "slack"),
    ("tickets", "jira"),
    ("email", "smtp"),
    ("hive", "thehive"),
];

/// Actions implemented inside Riposte (intel look-ups, alert changes),
/// offered beside the configured connectors.
pub trait Act: Send + Sync {
    fn actions(&self) -> Vec<ActionSpec>;
    fn act<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Result<Value, ActError>>;
}

enum Connector {
    Http(Rest),
    Webhook(Rest),
    Chat(chat::Chat),
    Smtp(smtp::Smtp),
    Nftables(nftables::Nftables),
    Profiled(profiled::Profiled),
    Jira(ticket::Jira),
    TheHive(ticket::TheHive),
}

/// The configured connectors and built-in actions, by action name.
#[derive(Default)]
pub struct Connectors {
    connectors: BTreeMap<String, (String, Connector)>,
    builtin: BTreeMap<String, Arc<dyn Act>>,
    catalog: Catalog,
}

impl Connectors {
    /// Builds the configured connectors (reading their secrets, the stored
    /// ones from `vault`).
    pub fn new(configs: &BTreeMap<String, ConnectorConfig>, vault: Option<&Vault>) -> Result<Connectors, String> {
        let mut connectors = Connectors::default();
        for (name, config) in configs {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(format!("connector name {name:?} is letters, digits, '_' and '-'"));
            }
            let connector = match config {
                ConnectorConfig::Http(rest) => Connector::Http(Rest::new(name, rest, vault)?),
                ConnectorConfig::Webhook(rest) => Connector::Webhook(Rest::new(name, rest, vault)?),
                ConnectorConfig::Slack(chat) => {
                    Connector::Chat(chat::Chat::new(name, chat::Flavor::Slack, chat, vault)?)
                }
                ConnectorConfig::Mattermost(chat) => {
                    Connector::Chat(chat::Chat::new(name, chat::Flavor::Mattermost, chat, vault)?)
                }
                ConnectorConfig::Teams(chat) => {
                    Connector::Chat(chat::Chat::new(name, chat::Flavor::Teams, chat, vault)?)
                }
                ConnectorConfig::Smtp(smtp) => Connector::Smtp(smtp::Smtp::new(name, smtp, vault)?),
                ConnectorConfig::Nftables(nft) => Connector::Nftables(nftables::Nftables::new(name, nft)?),
                ConnectorConfig::Edr(edr) => {
                    Connector::Profiled(profiled::Profiled::new(name, &profiled::EDR, edr, vault)?)
                }
                ConnectorConfig::RestFirewall(firewall) => {
                    Connector::Profiled(profiled::Profiled::new(name, &profiled::FIREWALL, firewall, vault)?)
                }
                ConnectorConfig::Identity(identity) => {
                    Connector::Profiled(profiled::Profiled::new(name, &profiled::IDENTITY, identity, vault)?)
                }
                ConnectorConfig::Jira(jira) => Connector::Jira(ticket::Jira::new(name, jira, vault)?),
                ConnectorConfig::Thehive(rest) => Connector::TheHive(ticket::TheHive::new(name, rest, vault)?),
            };
            for spec in specs(config.kind(), name) {
                connectors.catalog.add(spec);
            }
            connectors.connectors.insert(name.clone(), (config.kind().to_owned(), connector));
        }
        Ok(connectors)
    }

    /// Adds actions implemented inside Riposte.
    pub fn add_builtin(&mut self, act: Arc<dyn Act>) {
        for spec in act.actions() {
            self.builtin.insert(spec.name.clone(), act.clone());
            self.catalog.add(spec);
        }
    }

    /// The chat connector named `name`, for approval requests.
    pub fn chat(&self, name: &str) -> Option<&chat::Chat> {
        match self.connectors.get(name) {
            Some((_, Connector::Chat(chat))) => Some(chat),
            _ => None,
        }
    }

    /// What playbooks may call.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Calls the action `call` names.
    pub async fn act(&self, call: &Call) -> Result<Value, ActError> {
        if let Some(builtin) = self.builtin.get(&call.action) {
            return builtin.act(call).await;
        }
        let Some((instance, action)) = call.action.split_once('.') else {
            return Err(ActError::permanent(format!("{} is not an action name", call.action)));
        };
        let Some((_, connector)) = self.connectors.get(instance) else {
            return Err(ActError::permanent(format!("connector {instance} is not configured")));
        };
        let key = call.idempotency_key.as_str();
        let inputs = &call.inputs;
        match connector {
            Connector::Http(rest) => http::act(rest, action, inputs, key).await,
            Connector::Webhook(rest) => http::send_webhook(rest, action, inputs, key).await,
            Connector::Chat(chat) => chat.act(action, inputs).await,
            Connector::Smtp(smtp) => smtp.act(action, inputs).await,
            Connector::Nftables(nft) => nft.act(action, inputs).await,
            Connector::Profiled(profiled) => profiled.act(action, inputs, key).await,
            Connector::Jira(jira) => jira.act(action, inputs, key).await,
            Connector::TheHive(hive) => hive.act(action, inputs, key).await,
        }
    }
}

/// The catalog every connector type gives under its own name.
pub fn default_catalog() -> Catalog {
    let mut catalog = Catalog::default();
    for (name, kind) in DEFAULT_NAMES {
        for spec in specs(kind, name) {
            catalog.add(spec);
        }
    }
    catalog
}

/// The actions a connector of `kind` named `instance` offers.
pub fn specs(kind: &str, instance: &str) -> Vec<ActionSpec> {
    let spec =
        |action: &str, description: &str, changes: bool, inputs: Vec<InputSpec>, inverse: Option<&str>| ActionSpec {
            name: format!("{instance}.{action}"),
            description: description.to_owned(),
            changes,
            inputs,
            inverse: inverse.map(|inverse| format!("{instance}.{inverse}")),
            secrets: Vec::new(),
            follow: None,
        };
    // What each kind's configuration must hold secret.
    let secrets: &[&str] = match kind {
        "slack" | "mattermost" | "teams" => &["url (the incoming webhook's address is its secret)"],
        "smtp" => &["password (when the server wants a login)"],
        "nftables" => &[],
        "webhook" => &["auth.secret (HMAC), when the receiver checks signatures"],
        _ => &["auth (token, password, API key or client secret, as the API wants)"],
    };
    let mut specs = match kind {
        "http" => http::specs(spec),
        "webhook" => http::webhook_specs(spec),
        "slack" | "mattermost" | "teams" => chat::specs(spec),
        "smtp" => smtp::specs(spec),
        "nftables" => nftables::specs(spec),
        "edr" => profiled::edr_specs(spec),
        "identity" => profiled::identity_specs(spec),
        "rest_firewall" => profiled::firewall_specs(spec),
        "jira" => ticket::jira_specs(spec),
        "thehive" => ticket::thehive_specs(spec),
        _ => Vec::new(),
    };
    for spec in &mut specs {
        spec.secrets = secrets.iter().map(|secret| (*secret).to_owned()).collect();
        spec.follow = follow(kind, instance, spec.name.rsplit('.').next().unwrap_or_default());
    }
    specs
}

/// How a ticket an action opens is followed until it closes (the alert
/// that started the run closes with it).
fn follow(kind: &str, instance: &str, action: &str) -> Option<riposte_playbook::Follow> {
    let closed = |pairs: &[(&str, &str)]| {
        pairs.iter().map(|(field, value)| ((*field).to_owned(), (*value).to_owned())).collect()
    };
    let (status_action, input, from_output, closed_when) = match (kind, action) {
        ("jira", "create_issue") => ("issue_status", "issue", "key", closed(&[("category", "done")])),
        // TheHive 5 closes a case in its stage, TheHive 4 in its status.
        ("thehive", "create_case") => {
            ("case_status", "id", "id", closed(&[("stage", "Closed"), ("status", "Resolved")]))
        }
        _ => return None,
    };
    Some(riposte_playbook::Follow {
        status_action: format!("{instance}.{status_action}"),
        input: input.to_owned(),
        from_output: from_output.to_owned(),
        closed_when,
    })
}

/// A text input, or a refusal naming it.
pub(crate) fn text<'a>(inputs: &'a Value, name: &str) -> Result<&'a str, ActError> {
    inputs
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ActError::permanent(format!("input {name} is missing or not text")))
}

pub(crate) fn optional_text<'a>(inputs: &'a Value, name: &str) -> Option<&'a str> {
    inputs.get(name).and_then(Value::as_str)
}

pub(crate) fn unknown_action(instance: &str, action: &str) -> ActError {
    ActError::permanent(format!("connector {instance} has no action {action}"))
}
