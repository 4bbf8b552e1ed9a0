//! Every live indicator in structures that answer an observable in a few
//! hash lookups, whatever the number of indicators: exact values by (kind,
//! value); networks by prefix length (one table per length present, longest
//! first); domains by the name and each of its parents, so that an
//! indicator for `evil.example` matches `a.b.evil.example`.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::decay::DecayPolicy;
use crate::indicator::{Indicator, IndicatorKind};
use crate::normalize::address_number;

/// An indicator's position in its set.
pub type IndicatorId = u32;

/// Networks of one address family: per prefix length, the network's
/// address (masked) to the indicators naming it.
#[derive(Default)]
struct Prefixes<A> {
    /// Longest first.
    by_length: Vec<(u8, FxHashMap<A, Vec<IndicatorId>>)>,
}

impl<A: Copy + Eq + std::hash::Hash> Prefixes<A> {
    fn insert(&mut self, length: u8, network: A, id: IndicatorId) {
        let position = match self.by_length.iter().position(|(known, _)| *known == length) {
            Some(position) => position,
            None => {
                self.by_length.push((length, FxHashMap::default()));
                self.by_length.sort_by_key(|(length, _)| std::cmp::Reverse(*length));
                self.by_length.iter().position(|(known, _)| *known == length).expect("just added")
            }
        };
        let ids = self.by_length[position].1.entry(network).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
}

fn mask_v4(address: u32, length: u8) -> u32 {
    if length == 0 { 0 } else { address & (u32::MAX << (32 - u32::from(length))) }
}

fn mask_v6(address: u128, length: u8) -> u128 {
    if length == 0 { 0 } else { address & (u128::MAX << (128 - u32::from(length))) }
}

/// A set of indicators and the indexes that match observables against it.
pub struct IndicatorSet {
    indicators: Vec<Indicator>,
    /// Per kind (see [`IndicatorKind::index`]), normalised value → indicator.
    exact: Vec<FxHashMap<Box<str>, IndicatorId>>,
    /// Address indicators by number (IPv4 as IPv4-mapped IPv6): an event's
    /// address is looked up without being written out as text.
    addresses: FxHashMap<u128, IndicatorId>,
    v4: Prefixes<u32>,
    v6: Prefixes<u128>,
    /// Whether any domain indicator is loaded (skips the parent walk when not).
    has_domains: bool,
    /// How the indicators' scores fall with age: what is live at match time.
    policy: DecayPolicy,
}

impl std::fmt::Debug for IndicatorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndicatorSet({} indicators)", self.indicators.len())
    }
}

impl Default for IndicatorSet {
    fn default() -> Self {
        IndicatorSet {
            indicators: Vec::new(),
            exact: IndicatorKind::ALL.iter().map(|_| FxHashMap::default()).collect(),
            addresses: FxHashMap::default(),
            v4: Prefixes::default(),
            v6: Prefixes::default(),
            has_domains: false,
            policy: DecayPolicy::default(),
        }
    }
}

impl IndicatorSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    pub fn get(&self, id: IndicatorId) -> &Indicator {
        &self.indicators[id as usize]
    }

    pub fn policy(&self) -> &DecayPolicy {
        &self.policy
    }

    pub fn set_policy(&mut self, policy: DecayPolicy) {
        self.policy = policy;
    }

    /// The indicator's decayed score at `now_ms` (0 when revoked or expired).
    pub fn score(&self, id: IndicatorId, now_ms: i64) -> f64 {
        self.policy.score(self.get(id), now_ms)
    }

    /// Whether the indicator still names anything at `now_ms`: not revoked,
    /// not past `valid_until`, its score not decayed below its threshold.
    pub fn is_live(&self, id: IndicatorId, now_ms: i64) -> bool {
        self.policy.is_live(self.get(id), now_ms)
    }

    pub fn iter(&self) -> impl Iterator<Item = (IndicatorId, &Indicator)> {
        self.indicators.iter().enumerate().map(|(id, indicator)| (id as IndicatorId, indicator))
    }

    /// Adds an indicator (its value normalised): a new one, or merged into
    /// the one already known by kind and value. Returns its id.
    pub fn insert(&mut self, indicator: Indicator) -> IndicatorId {
        if indicator.kind == IndicatorKind::Cidr
            && let Ok(network) = indicator.value.parse::<IpNet>()
        {
            return self.insert_network(network, indicator);
        }
        if let Some(id) = self.exact_id(indicator.kind, &indicator.value) {
            self.indicators[id as usize].merge(indicator);
            return id;
        }
        if indicator.kind == IndicatorKind::Domain {
            self.has_domains = true;
        }
        let address = (indicator.kind == IndicatorKind::Ip).then(|| indicator.value.parse::<IpAddr>().ok()).flatten();
        let (kind, key) = (indicator.kind, Box::<str>::from(indicator.value.as_str()));
        let id = self.push(indicator);
        if let Some(address) = address {
            self.addresses.insert(address_number(address), id);
        }
        self.exact[kind.index()].insert(key, id);
        id
    }

    fn insert_network(&mut self, network: IpNet, indicator: Indicator) -> IndicatorId {
        // A network is known by its text among the exact values too, so that
        // duplicates merge.
        if let Some(id) = self.exact_id(IndicatorKind::Cidr, &indicator.value) {
            self.indicators[id as usize].merge(indicator);
            return id;
        }
        let key = Box::<str>::from(indicator.value.as_str());
        let id = self.push(indicator);
        self.exact[IndicatorKind::Cidr.index()].insert(key, id);
        match network {
            IpNet::V4(net) => self.v4.insert(net.prefix_len(), mask_v4(u32::from(net.addr()), net.prefix_len()), id),
            IpNet::V6(net) => self.v6.insert(net.prefix_len(), mask_v6(u128::from(net.addr()), net.prefix_len()), id),
        }
        id
    }

    fn push(&mut self, indicator: Indicator) -> IndicatorId {
        let id = IndicatorId::try_from(self.indicators.len()).expect("fewer than 4 billion indicators");
        self.indicators.push(indicator);
        id
    }

    /// The indicators an address matches: the address itself and every
    /// network holding it.
    pub fn match_ip(&self, address: IpAddr, out: &mut Vec<IndicatorId>) {
        let address = address.to_canonical();
        if let Some(&id) = self.addresses.get(&address_number(address)) {
            out.push(id);
        }
        match address {
            IpAddr::V4(address) => {
                let address = u32::from(address);
                for (length, table) in &self.v4.by_length {
                    if let Some(ids) = table.get(&mask_v4(address, *length)) {
                        out.extend_from_slice(ids);
                    }
                }
            }
            IpAddr::V6(address) => {
                let address = u128::from(address);
                for (length, table) in &self.v6.by_length {
                    if let Some(ids) = table.get(&mask_v6(address, *length)) {
                        out.extend_from_slice(ids);
                    }
                }
            }
        }
    }

    /// The indicators a domain name matches: its own and its parents' (an
    /// indicator for `evil.example` covers `cdn.evil.example`). `name` must
    /// be lower-case without a trailing dot (see [`crate::normalize::domain`]).
    pub fn match_domain(&self, name: &str, out: &mut Vec<IndicatorId>) {
        if !self.has_domains {
            return;
        }
        let mut rest = name;
        loop {
            if let Some(id) = self.exact_id(IndicatorKind::Domain, rest) {
                out.push(id);
            }
            match rest.split_once('.') {
                // A bare top-level label is not an indicator of anything.
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return,
            }
        }
    }

    /// The indicators a normalised URL matches: the URL itself, and its host
    /// as an address or a domain.
    pub fn match_url(&self, url: &str, out: &mut Vec<IndicatorId>) {
        out.extend(self.exact_id(IndicatorKind::Url, url));
        let host = crate::normalize::url_host(url);
        match host.parse::<IpAddr>() {
            Ok(address) => self.match_ip(address, out),
            Err(_) => self.match_domain(host, out),
        }
    }

    /// The indicators a normalised e-mail address matches: the address, and
    /// its domain (with parents).
    pub fn match_email(&self, email: &str, out: &mut Vec<IndicatorId>) {
        out.extend(self.exact_id(IndicatorKind::Email, email));
        if let Some(host) = email.rsplit('@').next() {
            self.match_domain(host, out);
        }
    }

    /// The indicators a bare value (defanged or not) matches, whatever its
    /// kind, each once.
    pub fn lookup(&self, value: &str) -> Vec<IndicatorId> {
        let mut found = Vec::new();
        let Some((kind, normalised)) = crate::normalize::recognise(&crate::defang::refang(value)) else {
            return found;
        };
        match kind {
            IndicatorKind::Ip => {
                if let Ok(address) = normalised.parse() {
                    self.match_ip(address, &mut found);
                }
            }
            IndicatorKind::Domain => self.match_domain(&normalised, &mut found),
            IndicatorKind::Url => self.match_url(&normalised, &mut found),
            IndicatorKind::Email => self.match_email(&normalised, &mut found),
            other => found.extend(self.exact_id(other, &normalised)),
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The indicator of `kind` with exactly this normalised value.
    pub fn exact_id(&self, kind: IndicatorKind, value: &str) -> Option<IndicatorId> {
        self.exact[kind.index()].get(value).copied()
    }
}
