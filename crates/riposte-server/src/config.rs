//! The configuration of `riposte serve`: one YAML file, every part optional.
//!
//! ```yaml
//! data_dir: riposte-data             # spool, SQLite file, audit key, tailed positions
//! store: sqlite:riposte-data/riposte.db   # or postgres://user@host/db
//! http:
//!   listen: 127.0.0.1:8080
//!   max_body: 16MiB
//! sources:
//!   - {type: syslog_udp, name: syslog-udp, listen: 127.0.0.1:5514}
//!   - {type: syslog_tcp, name: syslog-tcp, listen: 127.0.0.1:5514}
//!   - {type: syslog_tcp, name: syslog-tls, listen: 0.0.0.0:6514, tls: {cert: server.crt, key: server.key}}
//!   - {type: file, name: app, path: /var/log/app.jsonl, format: json}
//!   # file formats: json (Suricata, Zeek, Wazuh, Falco, Winlogbeat records
//!   # recognised), lines, syslog, cef, zeek (TSV), auditd, and suricata,
//!   # wazuh, falco, winlogbeat to read every record as that tool's
//!   - {type: file, name: zeek-dns, path: /opt/zeek/logs/current/dns.log, format: zeek}
//! rules:
//!   paths: []                        # empty: the built-in starter pack
//! intel:
//!   files: [feeds/c2.txt, feeds/apt.json]   # STIX, MISP events, CSV, blocklists
//! alerts:
//!   suppression: 5m                  # identical detections within it: one alert
//!   suppression_per_rule: {<rule id>: 1h}
//! correlation:
//!   allowed_lateness: 5s             # how out of order events may arrive
//!   max_groups: 1000000              # open windows per correlation rule
//! retention:
//!   raw_events: 1000                 # unmatched events kept (matched ones are all kept)
//! spool:
//!   max_size: 1GiB                   # past it, sources are told to slow down
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("configuration {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the spool, the SQLite file, the audit key and tail positions live.
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://...`; default: SQLite in the data directory.
    pub store: Option<String>,
    pub http: HttpConfig,
    pub sources: Vec<SourceConfig>,
    pub rules: RulesConfig,
    pub intel: IntelConfig,
    pub alerts: AlertsConfig,
    pub correlation: CorrelationConfig,
    pub retention: RetentionConfig,
    pub spool: SpoolConfig,
    pub pipeline: PipelineConfig,
    pub email: EmailConfig,
    /// Response playbooks, their connectors, and the limits on what they may do.
    pub playbooks: crate::playbooks::PlaybookConfig,
}

/// How `POST /api/email/analyze` checks SPF, DKIM and DMARC: by default it
/// reads what the receiving host recorded in the message's headers.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Verify with the system's DNS.
    pub dns: bool,
    /// Verify against these recorded TXT records only (zone-file or tinydns
    /// lines): nothing is asked of DNS.
    pub dns_records: Vec<PathBuf>,
    /// Forwarders and mailing lists (domains) whose ARC seal, when it
    /// verifies, vouches for how a message authenticated before they
    /// changed it: the SPF, DKIM and DMARC failures they caused are set aside.
    pub trusted_arc_sealers: Vec<String>,
    /// A mailbox whose new messages are judged as they arrive; phishing is
    /// moved to its quarantine folder and held in the store, and releasing
    /// it moves it back.
    pub imap: Option<crate::imap::ImapConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("riposte-data"),
            store: None,
            http: HttpConfig::default(),
            sources: vec![
                SourceConfig::SyslogUdp { name: "syslog-udp".into(), listen: default_syslog(), logsource: None },
                SourceConfig::SyslogTcp {
                    name: "syslog-tcp".into(),
                    listen: default_syslog(),
                    logsource: None,
                    tls: None,
                },
            ],
            rules: RulesConfig::default(),
            intel: IntelConfig::default(),
            alerts: AlertsConfig::default(),
            correlation: CorrelationConfig::default(),
            retention: RetentionConfig::default(),
            spool: SpoolConfig::default(),
            pipeline: PipelineConfig::default(),
            email: EmailConfig::default(),
            playbooks: crate::playbooks::PlaybookConfig::default(),
        }
    }
}

fn default_syslog() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5514))
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted (413 above).
    #[serde(deserialize_with = "size")]
    pub max_body: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), max_body: 16 << 20 }
    }
}

/// A source of events. Each has a unique name (kept with its events).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    SyslogUdp {
        name: String,
        listen: SocketAddr,
        /// The log source of its events (e.g. `product=linux,service=syslog`).
        #[serde(default)]
        logsource: Option<String>,
    },
    SyslogTcp {
        name: String,
        listen: SocketAddr,
        #[serde(default)]
        logsource: Option<String>,
        /// Syslog over TLS (RFC 5425) with this certificate and key.
        #[serde(default)]
        tls: Option<TlsFiles>,
    },
    /// A file followed as it grows (and across rotation), its read position
    /// kept in the data directory.
    File {
        name: String,
        path: PathBuf,
        #[serde(default)]
        format: FileFormat,
        #[serde(default)]
        logsource: Option<String>,
    },
}

impl SourceConfig {
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::SyslogUdp { name, .. }
            | SourceConfig::SyslogTcp { name, .. }
            | SourceConfig::File { name, .. } => name,
        }
    }

    pub fn logsource(&self) -> Option<&str> {
        match self {
            SourceConfig::SyslogUdp { logsource, .. }
            | SourceConfig::SyslogTcp { logsource, .. }
            | SourceConfig::File { logsource, .. } => logsource.as_deref(),
        }
    }
}

/// A server certificate chain and its private key, PEM files.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How a tailed file's lines are read.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Plain text lines, each an event with a `message` field.
    Lines,
    /// Syslog messages, one per line (CEF messages are read too).
    Syslog,
    /// ArcSight CEF records, one per line.
    Cef,
    /// Zeek's tab-separated logs (`#fields` header); Zeek's JSON logs are `json`.
    Zeek,
    /// Linux audit logs: the records of one audit event are joined.
    Auditd,
    /// JSON records of these tools. (`json` recognises them by their shape;
    /// naming the tool reads every record as its, whatever its shape.)
    Suricata,
    Wazuh,
    Falco,
    Winlogbeat,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// Indicator files (STIX bundles, MISP events, CSV, blocklists) every
    /// event's observables are matched against.
    pub files: Vec<PathBuf>,
    /// Feeds fetched by `riposte intel pull`; their last good copy is kept
    /// in the data directory (`intel/<name>.<ext>`) and loaded like a file.
    pub feeds: Vec<FeedConfig>,
    /// How many days of stored events a new indicator is looked for in
    /// (0: no retro-hunt, and stored events keep no observables).
    pub retro_hunt_days: u32,
    /// How indicators' scores fall with age, by kind and by source: models
    /// given here replace the built-in ones (see `riposte_intel::decay`).
    pub decay: riposte_intel::DecayOverrides,
}

impl IntelConfig {
    /// Whether any indicator source is configured.
    pub fn is_configured(&self) -> bool {
        !self.files.is_empty() || !self.feeds.is_empty()
    }
}

impl Default for IntelConfig {
    fn default() -> Self {
        IntelConfig {
            files: Vec::new(),
            feeds: Vec::new(),
            retro_hunt_days: 30,
            decay: riposte_intel::DecayOverrides::default(),
        }
    }
}

/// A feed at a URL: a STIX bundle, a MISP event, CSV or a blocklist
/// (recognised by content).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub name: String,
    pub url: String,
    /// Sent as a bearer token (never logged).
    #[serde(default)]
    pub token: Option<String>,
    /// Basic authentication (never logged).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A TAXII 2.1 collection id: `url` is then the API root, and objects
    /// added since the last pull are read page by page.
    #[serde(default)]
    pub taxii_collection: Option<String>,
    /// A MISP feed directory: `url` is its base (`manifest.json` and an
    /// event file per uuid); events changed since the last pull are read.
    #[serde(default)]
    pub misp_feed: bool,
    /// A MISP instance: `url` is its base, `token` its API key; events
    /// changed since the last pull are searched through its REST API.
    #[serde(default)]
    pub misp_api: bool,
    /// How often `riposte serve` pulls it (default: hourly).
    #[serde(default = "hourly", deserialize_with = "duration")]
    pub every: Duration,
    /// Allow a feed on a loopback or private address.
    #[serde(default)]
    pub allow_private: bool,
}

fn hourly() -> Duration {
    Duration::from_secs(3_600)
}

impl std::fmt::Debug for FeedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("taxii_collection", &self.taxii_collection)
            .field("misp_feed", &self.misp_feed)
            .field("misp_api", &self.misp_api)
            .field("every", &self.every)
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule files and directories; empty: the built-in starter pack.
    pub paths: Vec<PathBuf>,
    /// A log-source mapping replacing the built-in one.
    pub mapping: Option<PathBuf>,
    /// Values for `%placeholder%`s.
    pub placeholders: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Identical detections (same rule and entities) within this time of an
    /// alert's first one are counted into it.
    #[serde(deserialize_with = "duration")]
    pub suppression: Duration,
    /// The same, per rule id.
    #[serde(deserialize_with = "durations")]
    pub suppression_per_rule: BTreeMap<String, Duration>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { suppression: Duration::from_secs(300), suppression_per_rule: BTreeMap::new() }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// How far behind the newest event time an event may arrive and still
    /// count in correlation windows; correlations wait this long.
    #[serde(deserialize_with = "duration")]
    pub allowed_lateness: Duration,
    /// Most open windows (groups) per correlation rule; past it the least
    /// recently seen is dropped and counted.
    pub max_groups: usize,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig { allowed_lateness: Duration::from_secs(5), max_groups: 1_000_000 }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Unmatched events kept, newest first (0: none).
    pub raw_events: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { raw_events: 1_000 }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Spooled bytes not yet processed past which sources are refused or
    /// slowed down.
    #[serde(deserialize_with = "size")]
    pub max_size: u64,
    #[serde(deserialize_with = "size")]
    pub segment_size: u64,
    /// Events accepted but not yet processed past which sources are refused
    /// or slowed down: it bounds how late an alert can be.
    pub max_pending: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig { max_size: 1 << 30, segment_size: 64 << 20, max_pending: 200_000 }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Most events matched and stored together.
    pub batch: usize,
    /// Detection threads (default: one per core).
    pub threads: Option<usize>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { batch: 4096, threads: None }
    }
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        Config::from_yaml(&text).map_err(|reason| ConfigError::Invalid { path: path.to_path_buf(), reason })
    }

    pub fn from_yaml(text: &str) -> Result<Config, String> {
        let config: Config = serde_saphyr::from_str(text).map_err(|error| error.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for source in &self.sources {
            if source.name().is_empty() || source.name().len() > 64 {
                return Err(format!("source name {:?} must have 1 to 64 characters", source.name()));
            }
            if !names.insert(source.name()) {
                return Err(format!("two sources are named {:?}", source.name()));
            }
            if let Some(logsource) = source.logsource() {
                riposte_event::LogSource::parse(logsource)
                    .map_err(|reason| format!("source {:?}: logsource: {reason}", source.name()))?;
            }
        }
        if self.pipeline.batch == 0 {
            return Err("pipeline.batch must be at least 1".into());
        }
        Ok(())
    }

    /// The store's URL.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", self.data_dir.join("riposte.db").display()),
        }
    }
}

/// `300`, `"30s"`, `"5m"`, `"1h"`, `"1d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration (like 30s, 5m, 1h)"))?;
    let seconds = match unit.trim() {
        "" | "s" => 1,
        "ms" => return Ok(Duration::from_millis(number)),
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} is not a duration (like 30s, 5m, 1h)")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// `1048576`, `"64KiB"`, `"16MiB"`, `"1GiB"` (also `KB`, `MB`, `GB` as powers of 1,000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a size (like 16MiB)"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("{text:?} is not a size (like 16MiB)")),
    };
    Ok(number.saturating_mul(factor))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    match NumberOrText::deserialize(deserializer)? {
        NumberOrText::Number(seconds) => Ok(Duration::from_secs(seconds)),
        NumberOrText::Text(text) => parse_duration(&text).map_err(serde::de::Error::custom),
    }
}

fn durations<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, Duration>, D::Error> {
    let raw: BTreeMap<String, NumberOrText> = BTreeMap::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(rule, value)| {
            let duration = match value {
                NumberOrText::Number(seconds) => Ok(Duration::from_secs(seconds)),
                NumberOrText::Text(text) => parse_duration(&text),
            };
            duration.map(|duration| (rule, duration)).map_err(serde::de::Error::custom)
        })
        .collect()
}

fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    match NumberOrText::deserialize(deserializer)? {
        NumberOrText::Number(bytes) => Ok(bytes),
        NumberOrText::Text(text) => parse_size(&text).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_full_file() {
        let empty = Config::from_yaml("{}").unwrap();
        assert_eq!(empty, Config::default());
        assert_eq!(empty.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(empty.store_url(), "sqlite:riposte-data/riposte.db");
        let config = Config::from_yaml(
            "data_dir: /tmp/r\nstore: postgres://u@h/db\nhttp: {listen: '0.0.0.0:9000', max_body: 1MiB}\n\
             sources:\n  - {type: file, name: app, path: /var/log/app.log, format: lines, logsource: 'product=linux'}\n\
             alerts: {suppression: 10m, suppression_per_rule: {r1: 1h, r2: 30}}\nretention: {raw_events: 0}\n\
             spool: {max_size: 2GiB}\npipeline: {batch: 100, threads: 1}\n",
        )
        .unwrap();
        assert_eq!(config.http.max_body, 1 << 20);
        assert_eq!(config.alerts.suppression, Duration::from_secs(600));
        assert_eq!(config.alerts.suppression_per_rule["r1"], Duration::from_secs(3600));
        assert_eq!(config.alerts.suppression_per_rule["r2"], Duration::from_secs(30));
        assert_eq!(config.spool.max_size, 2 << 30);
        assert!(matches!(&config.sources[0], SourceConfig::File { format: FileFormat::Lines, .. }));
        assert_eq!(config.store_url(), "postgres://u@h/db");
    }

    #[test]
    fn mistakes_are_named() {
        assert!(Config::from_yaml("htp: {}").unwrap_err().contains("htp"));
        assert!(Config::from_yaml("http: {lisen: x}").unwrap_err().contains("lisen"));
        assert!(
            Config::from_yaml("sources: [{type: carrier_pigeon, name: x}]").unwrap_err().contains("carrier_pigeon")
        );
        assert!(Config::from_yaml("alerts: {suppression: soon}").unwrap_err().contains("soon"));
        let twice = "sources:\n  - {type: syslog_udp, name: a, listen: '127.0.0.1:1'}\n  - {type: syslog_tcp, name: a, listen: '127.0.0.1:2'}";
        assert!(Config::from_yaml(twice).unwrap_err().contains("two sources are named"));
        assert!(
            Config::from_yaml("sources: [{type: syslog_udp, name: a, listen: '127.0.0.1:1', logsource: 'vendor=x'}]")
                .is_err()
        );
    }
}
