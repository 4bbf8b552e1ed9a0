//! What an indicator is: its kind, its normalised value, who reported it,
//! how sure they are, how long it holds and what it is linked to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of observable an indicator names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndicatorKind {
    /// An IPv4 or IPv6 address.
    Ip,
    /// An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`).
    Cidr,
    /// A domain: the domain and every subdomain of it.
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Ja3,
    Ja4,
    UserAgent,
    RegistryKey,
    FileName,
}

impl IndicatorKind {
    pub const ALL: [IndicatorKind; 13] = [
        IndicatorKind::Ip,
        IndicatorKind::Cidr,
        IndicatorKind::Domain,
        IndicatorKind::Url,
        IndicatorKind::Email,
        IndicatorKind::Md5,
        IndicatorKind::Sha1,
        IndicatorKind::Sha256,
        IndicatorKind::Ja3,
        IndicatorKind::Ja4,
        IndicatorKind::UserAgent,
        IndicatorKind::RegistryKey,
        IndicatorKind::FileName,
    ];

    /// Its position in [`IndicatorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            IndicatorKind::Ip => "ip",
            IndicatorKind::Cidr => "cidr",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::Email => "email",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Sha1 => "sha1",
            IndicatorKind::Sha256 => "sha256",
            IndicatorKind::Ja3 => "ja3",
            IndicatorKind::Ja4 => "ja4",
            IndicatorKind::UserAgent => "user-agent",
            IndicatorKind::RegistryKey => "registry-key",
            IndicatorKind::FileName => "file-name",
        }
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IndicatorKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match wanted.as_str() {
            "ipv4" | "ipv6" | "ip-addr" | "ip-dst" | "ip-src" | "ipv4-addr" | "ipv6-addr" => "ip",
            "hostname" | "domain-name" | "fqdn" => "domain",
            "email-addr" | "email-src" | "email-dst" => "email",
            "sha-1" => "sha1",
            "sha-256" => "sha256",
            "filename" | "file" => "file-name",
            "useragent" => "user-agent",
            "regkey" | "windows-registry-key" => "registry-key",
            other => other,
        };
        IndicatorKind::ALL
            .into_iter()
            .find(|kind| kind.name() == alias)
            .ok_or_else(|| format!("unknown indicator type {text:?}"))
    }
}

/// Traffic Light Protocol marking: who may see the indicator.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tlp {
    #[default]
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl FromStr for Tlp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        let text = text.strip_prefix("tlp:").unwrap_or(&text);
        Ok(match text {
            "clear" | "white" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "amber+strict" => Tlp::AmberStrict,
            "red" => Tlp::Red,
            other => return Err(format!("unknown TLP {other:?}")),
        })
    }
}

/// What an indicator is linked to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContextKind {
    Campaign,
    ThreatActor,
    Malware,
    Technique,
    Report,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Context {
    pub kind: ContextKind,
    pub name: String,
    /// The id in its source (a STIX id, an ATT&CK technique id).
    pub id: Option<String>,
}

/// An indicator, its value normalised (see [`crate::normalize`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    pub kind: IndicatorKind,
    pub value: String,
    /// The feeds that reported it (duplicates across feeds are merged).
    pub sources: Vec<String>,
    /// 0 to 100.
    pub confidence: u8,
    pub tlp: Tlp,
    /// Milliseconds since the epoch.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub valid_until: Option<i64>,
    pub tags: Vec<String>,
    pub context: Vec<Context>,
    pub revoked: bool,
}

impl Indicator {
    /// An indicator from one source, with nothing else known.
    pub fn new(kind: IndicatorKind, value: impl Into<String>, source: &str) -> Indicator {
        Indicator {
            kind,
            value: value.into(),
            sources: vec![source.to_owned()],
            confidence: 50,
            tlp: Tlp::default(),
            first_seen: None,
            last_seen: None,
            valid_until: None,
            tags: Vec::new(),
            context: Vec::new(),
            revoked: false,
        }
    }

    /// Takes in what another report of the same indicator says: every
    /// source, tag and link kept, the widest time span, the highest
    /// confidence, the strictest TLP; a revocation by any source holds.
    pub fn merge(&mut self, other: Indicator) {
        for source in other.sources {
            if !self.sources.contains(&source) {
                self.sources.push(source);
            }
        }
        for tag in other.tags {
            if !self.tags.contains(&tag) {
                self.tags.push(tag);
            }
        }
        for link in other.context {
            if !self.context.contains(&link) {
                self.context.push(link);
            }
        }
        self.confidence = self.confidence.max(other.confidence);
        self.tlp = self.tlp.max(other.tlp);
        self.first_seen = earliest(self.first_seen, other.first_seen);
        self.last_seen = latest(self.last_seen, other.last_seen);
        self.valid_until = latest(self.valid_until, other.valid_until);
        self.revoked |= other.revoked;
    }
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
