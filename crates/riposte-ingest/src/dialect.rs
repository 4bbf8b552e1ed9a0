//! JSON records of known tools, recognised by their shape: the log source
//! they are, and the names Sigma rules use for their fields.
//!
//! The JSON decoder flattens any record; this step looks at a few fields to
//! say what wrote it (Suricata EVE, Zeek, Wazuh, Falco, Winlogbeat) and sets
//! the event's log source, so that the log-source mapping (which holds the
//! field renames per category, as data) and rules for those products apply.

use std::sync::{Arc, OnceLock};

use riposte_event::{Event, LogSource, Symbol, SymbolCache};

/// Which tool wrote a JSON record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dialect {
    Suricata,
    Zeek,
    Wazuh,
    Falco,
    Winlogbeat,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Suricata => "suricata",
            Dialect::Zeek => "zeek",
            Dialect::Wazuh => "wazuh",
            Dialect::Falco => "falco",
            Dialect::Winlogbeat => "winlogbeat",
        }
    }
}

/// Zeek logs Riposte knows by name (the `_path` of a record, or its file's name).
pub const ZEEK_LOGS: &[&str] = &[
    "conn",
    "dns",
    "http",
    "ssl",
    "files",
    "notice",
    "weird",
    "x509",
    "smtp",
    "ssh",
    "ftp",
    "dhcp",
    "rdp",
    "smb_files",
    "smb_mapping",
    "dce_rpc",
    "kerberos",
    "ntlm",
    "software",
    "known_hosts",
    "known_services",
    "pe",
    "tunnel",
];

/// The symbols this module reads, interned once.
struct Names {
    winlog_channel: Symbol,
    event_type: Symbol,
    src_ip: Symbol,
    flow_id: Symbol,
    zeek_path: Symbol,
    uid: Symbol,
    id_orig_h: Symbol,
    rule_level: Symbol,
    rule_id: Symbol,
    agent_name: Symbol,
    agent_id: Symbol,
    output: Symbol,
    priority: Symbol,
    rule: Symbol,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| Names {
        winlog_channel: Symbol::intern("winlog.channel"),
        event_type: Symbol::intern("event_type"),
        src_ip: Symbol::intern("src_ip"),
        flow_id: Symbol::intern("flow_id"),
        zeek_path: Symbol::intern("_path"),
        uid: Symbol::intern("uid"),
        id_orig_h: Symbol::intern("id.orig_h"),
        rule_level: Symbol::intern("rule.level"),
        rule_id: Symbol::intern("rule.id"),
        agent_name: Symbol::intern("agent.name"),
        agent_id: Symbol::intern("agent.id"),
        output: Symbol::intern("output"),
        priority: Symbol::intern("priority"),
        rule: Symbol::intern("rule"),
    })
}

/// What wrote a flattened JSON record, if it is a tool Riposte knows.
pub fn detect(event: &Event) -> Option<Dialect> {
    let names = names();
    let has = |symbol: Symbol| event.contains(symbol);
    if has(names.winlog_channel) {
        Some(Dialect::Winlogbeat)
    } else if has(names.event_type) && (has(names.flow_id) || has(names.src_ip)) {
        Some(Dialect::Suricata)
    } else if has(names.zeek_path) || (has(names.uid) && has(names.id_orig_h)) {
        Some(Dialect::Zeek)
    } else if has(names.rule_level) && has(names.rule_id) && (has(names.agent_name) || has(names.agent_id)) {
        Some(Dialect::Wazuh)
    } else if has(names.output) && has(names.priority) && has(names.rule) {
        Some(Dialect::Falco)
    } else {
        None
    }
}

/// Reads JSON records of known tools: sets their log source and the field
/// names their Sigma rules use.
#[derive(Default)]
pub struct Dialects {
    symbols: SymbolCache,
    name: String,
    sources: Vec<(String, Arc<LogSource>)>,
}

impl Dialects {
    pub fn new() -> Self {
        Self::default()
    }

    /// Recognises `event` (a flattened JSON record) and completes it. A Zeek
    /// record without `_path` takes `zeek_log` (its file's name) as its log.
    /// Events whose decoder already named a log source are left alone.
    pub fn complete(&mut self, event: &mut Event, zeek_log: Option<&str>) -> Option<Dialect> {
        if event.logsource.as_ref().is_some_and(|source| source.product.as_deref() != Some("windows")) {
            return None;
        }
        // A file named like a Zeek log (`x509.log`) holds Zeek records even
        // when a record has none of the fields that say so.
        let dialect = detect(event).or_else(|| zeek_log.map(|_| Dialect::Zeek))?;
        self.complete_as(event, dialect, zeek_log);
        Some(dialect)
    }

    /// Completes `event` as a record of `dialect`, whatever its shape (the
    /// user said what the source is).
    pub fn complete_as(&mut self, event: &mut Event, dialect: Dialect, zeek_log: Option<&str>) {
        let names = names();
        match dialect {
            Dialect::Winlogbeat => self.winlogbeat(event),
            Dialect::Suricata => {
                let service = event.text(names.event_type).map(str::to_ascii_lowercase);
                event.logsource = Some(self.source("suricata", service.as_deref()));
            }
            Dialect::Zeek => {
                let path = event.text(names.zeek_path).map(str::to_owned).or_else(|| zeek_log.map(str::to_owned));
                event.logsource = Some(self.source("zeek", path.as_deref()));
            }
            Dialect::Wazuh => event.logsource = Some(self.source("wazuh", None)),
            Dialect::Falco => event.logsource = Some(self.source("falco", None)),
        }
    }

    /// A shared log source per (product, service), so events do not allocate one each.
    fn source(&mut self, product: &str, service: Option<&str>) -> Arc<LogSource> {
        self.name.clear();
        self.name.push_str(product);
        self.name.push('/');
        self.name.push_str(service.unwrap_or(""));
        if let Some((_, source)) = self.sources.iter().find(|(key, _)| *key == self.name) {
            return source.clone();
        }
        let source = Arc::new(LogSource {
            product: Some(product.to_owned()),
            service: service.map(str::to_owned),
            category: None,
        });
        // Services come from data: keep the cache bounded.
        if self.sources.len() < 256 {
            self.sources.push((self.name.clone(), source.clone()));
        }
        source
    }

    /// Winlogbeat (and Elastic Agent) nest a Windows event under `winlog`:
    /// its event data under `winlog.event_data`, the System fields beside it.
    /// The Windows names become readable as Sigma's Windows rules expect.
    fn winlogbeat(&mut self, event: &mut Event) {
        const SYSTEM: &[(&str, &str)] = &[
            ("winlog.channel", "Channel"),
            ("winlog.event_id", "EventID"),
            ("winlog.provider_name", "Provider_Name"),
            ("winlog.computer_name", "Computer"),
            ("winlog.record_id", "EventRecordID"),
            ("winlog.process.pid", "ProcessID"),
            ("winlog.user_data", "UserData"),
        ];
        for (from, to) in SYSTEM {
            let (from, to) = (self.symbols.get(from), self.symbols.get(to));
            event.add_alias(from, to);
        }
        const EVENT_DATA: &str = "winlog.event_data.";
        for index in 0..event.raw_len() {
            if event.is_alias_at(index) {
                continue;
            }
            let Some(short) = event.name_at(index).strip_prefix(EVENT_DATA) else { continue };
            self.name.clear();
            self.name.push_str(short);
            let symbol = self.symbols.get(&self.name);
            if !event.contains(symbol) {
                event.alias_at(index, symbol, &self.name);
            }
        }
        if event.logsource.is_none() {
            event.logsource = Some(self.source("windows", None));
        }
    }
}

/// An alert another tool raised (Wazuh, Falco), carried by its event: it
/// becomes a Riposte alert as it is, beside what Sigma rules find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeAlert {
    /// The tool and its rule: `wazuh:5712`, `falco:Terminal shell in container`.
    pub rule_id: String,
    pub title: String,
    /// Riposte's level (`informational` ... `critical`) for the tool's own.
    pub level: &'static str,
    /// The tool's own level, as it wrote it (`10`, `Warning`).
    pub original_level: String,
    /// ATT&CK technique ids the tool named.
    pub techniques: Vec<String>,
}

/// The alert a Wazuh or Falco event carries (its log source says which).
pub fn native_alert(event: &Event) -> Option<NativeAlert> {
    let product = event.logsource.as_deref()?.product.as_deref()?;
    let text = |name: &str| Symbol::lookup(name).and_then(|symbol| event.text(symbol)).map(str::to_owned);
    let all = |name: &str| -> Vec<String> {
        Symbol::lookup(name)
            .map(|symbol| event.values(symbol).filter_map(|value| value.as_text().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    match product {
        "wazuh" => {
            let original_level = text("rule.level")?;
            Some(NativeAlert {
                rule_id: format!("wazuh:{}", text("rule.id")?),
                title: text("rule.description").unwrap_or_else(|| "Wazuh alert".to_owned()),
                level: wazuh_level(original_level.parse().unwrap_or(0)),
                original_level,
                techniques: all("rule.mitre.id"),
            })
        }
        "falco" => {
            let rule = text("rule")?;
            let original_level = text("priority")?;
            Some(NativeAlert {
                rule_id: format!("falco:{rule}"),
                title: rule,
                level: falco_level(&original_level),
                original_level,
                // Falco tags techniques as `T1059` or `mitre_execution`; ids are kept.
                techniques: all("tags")
                    .into_iter()
                    .filter(|tag| {
                        tag.len() > 1
                            && tag.starts_with('T')
                            && tag[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    })
                    .collect(),
            })
        }
        _ => None,
    }
}

/// Wazuh's 0–15 rule levels, in the bands its dashboard uses.
fn wazuh_level(level: u32) -> &'static str {
    match level {
        0..=3 => "informational",
        4..=6 => "low",
        7..=11 => "medium",
        12..=14 => "high",
        _ => "critical",
    }
}

/// Falco's syslog-style priorities.
fn falco_level(priority: &str) -> &'static str {
    match priority.to_ascii_lowercase().as_str() {
        "emergency" | "alert" | "critical" => "critical",
        "error" => "high",
        "warning" => "medium",
        "notice" => "low",
        _ => "informational",
    }
}
