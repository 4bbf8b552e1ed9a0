//! Correlation rules evaluated over a stream of detections.
//!
//! The matcher says which rules an event matched; a [`Correlator`] takes those
//! detections in event time and keeps, for every correlation rule, one window
//! per group (the values of its `group-by` fields). Pure: the caller supplies
//! the events, their times and the matched rules, and keeps the snapshots.
//!
//! Semantics, where the specification leaves room:
//! - Event time, not arrival time. Detections may arrive out of order by up to
//!   the allowed lateness; they are held back and replayed in time order.
//!   Anything later than that is counted in [`CorrelatorStats::late`].
//! - A condition made only of lower bounds (`gt`, `gte`) is checked on every
//!   detection over a sliding window (the last `timespan`), so an alert comes
//!   as soon as it holds; the group then starts afresh. A condition with an
//!   upper bound or an equality (`lt`, `lte`, `eq`, `neq`) can only be judged
//!   once the window is over: the window opens with the group's first
//!   detection and is judged when event time passes its end.
//! - An event missing a `group-by` field is not counted for that correlation
//!   (as a SIEM's `by` clause drops it); it is counted in
//!   [`CorrelatorStats::missing_group`].
//! - One event matching several rules of one correlation counts once for
//!   `event_count` and the `value_*` types, and once per rule for `temporal`.

use std::collections::VecDeque;
use std::time::Duration;

use riposte_event::{Event, Symbol, Value};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::correlation::{Comparison, Correlation, CorrelationType, MAX_REFERENCED_RULES, names_rule};
use crate::engine::Engine;

#[derive(Clone, Debug)]
pub struct CorrelatorConfig {
    /// How far behind the newest event time a detection may arrive and still
    /// count. Detections are held back this long before they are evaluated.
    pub allowed_lateness: Duration,
    /// Most groups one correlation keeps; beyond it, the least recently seen
    /// group is evicted (and counted).
    pub max_groups: usize,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig { allowed_lateness: Duration::ZERO, max_groups: 1_000_000 }
    }
}

/// A correlation rule whose condition held.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorrelationMatch {
    /// Index into [`Engine::correlations`].
    pub correlation: usize,
    /// Event time (ms since the epoch) at which the condition held: the
    /// detection that made it hold, or the end of a window judged at its end.
    pub time_ms: i64,
    /// Event time of the first detection in the window.
    pub first_ms: i64,
    /// The `group-by` fields and their values.
    pub group: Vec<(String, String)>,
    /// The figure the condition compared: a count, a number of distinct
    /// values or rules, a sum, an average or a percentile.
    pub value: f64,
    /// Detections in the window (for `temporal` and `temporal_ordered`,
    /// since the group began).
    pub events: u64,
}

/// Counters of what a correlator did, for metrics and reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CorrelatorStats {
    /// Detections of referenced rules taken in.
    pub detections: u64,
    /// Detections older than the allowed lateness: not counted.
    pub late: u64,
    /// Events that lacked a `group-by` field.
    pub missing_group: u64,
    /// Events whose `value_sum`/`avg`/`percentile`/`median` field was absent or not a number.
    pub not_numeric: u64,
    /// Groups dropped because a correlation reached its group limit.
    pub evicted: u64,
    /// Correlation matches produced.
    pub matches: u64,
}

/// Where a correlation reads a group-by or value field for one referenced rule.
#[derive(Clone, Debug)]
enum Source {
    /// A field of the event.
    Field(Symbol),
    /// A group-by value of the referenced correlation's match.
    Upstream(Option<usize>),
}

/// A correlation compiled against an engine's rules.
struct Compiled {
    kind: CorrelationType,
    span_ms: i64,
    condition: Vec<(Comparison, f64)>,
    sliding: bool,
    percentile: f64,
    slots: usize,
    group_names: Vec<String>,
    /// `[slot][group field]`.
    group_sources: Vec<Vec<Source>>,
    /// `[slot]`, for the `value_*` types.
    value_sources: Vec<Option<Source>>,
    groups: Groups,
    /// Tumbling windows in order of their end: (end, group, window start).
    closing: VecDeque<(i64, u32, i64)>,
}

/// A referenced rule feeds slot `slot` of correlation `correlation`.
#[derive(Copy, Clone, Debug)]
struct Target {
    correlation: u32,
    slot: u8,
}

/// What one detection brings to one correlation.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Contribution {
    Plain,
    Distinct(u64),
    Number(f64),
}

/// A detection held back until the watermark passes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    time: i64,
    sequence: u64,
    correlation: u32,
    slots: u64,
    /// The group key (see [`push_key_part`]).
    key: String,
    contribution: Contribution,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Window {
    /// `event_count`: times of the detections in the window.
    Times(VecDeque<i64>),
    /// `value_count`: (time, hash of the value) and how often each hash is in the window.
    Distinct { entries: VecDeque<(i64, u64)>, counts: FxHashMap<u64, u32> },
    /// `value_sum`, `value_avg`, `value_percentile`, `value_median`.
    Numbers { entries: VecDeque<(i64, f64)>, sum: f64 },
    /// `temporal`: the last time each referenced rule fired (`i64::MIN`: never).
    Seen(Vec<i64>),
    /// `temporal_ordered`: for each position, the latest start of an in-order
    /// run of the referenced rules up to it (`i64::MIN`: none).
    Ordered(Vec<i64>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Group {
    /// The group-by values, each as `length:value` (see [`push_key_part`]).
    key: Box<str>,
    /// Start of the window (tumbling) or time of its oldest detection (sliding).
    first: i64,
    last: i64,
    events: u64,
    window: Window,
}

/// The groups of one correlation: a map from key to slot, and an approximate
/// least-recently-seen order for expiry and eviction.
#[derive(Default)]
struct Groups {
    by_key: FxHashMap<Box<str>, u32>,
    slots: Vec<Option<Group>>,
    free: Vec<u32>,
    /// (time last seen when queued, group); stale entries are skipped.
    recency: VecDeque<(i64, u32)>,
}

impl Groups {
    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn get(&self, id: u32) -> Option<&Group> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn insert(&mut self, group: Group) -> u32 {
        let key = group.key.clone();
        let last = group.last;
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(group);
                id
            }
            None => {
                self.slots.push(Some(group));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_key.insert(key, id);
        self.recency.push_back((last, id));
        id
    }

    fn remove(&mut self, id: u32) -> Option<Group> {
        let group = self.slots.get_mut(id as usize)?.take()?;
        self.by_key.remove(&group.key);
        self.free.push(id);
        // Removed groups leave their queue entries behind: rebuild the queue
        // when most of it is stale, so it stays in proportion to the groups.
        if self.recency.len() > 2 * self.by_key.len() + 1_024 {
            let mut live: Vec<(i64, u32)> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(id, group)| group.as_ref().map(|group| (group.last, id as u32)))
                .collect();
            live.sort_unstable();
            self.recency = live.into();
        }
        Some(group)
    }

    /// The group least recently seen (approximately: the queue is in the
    /// order groups were last queued).
    fn pop_oldest(&mut self) -> Option<(u32, i64)> {
        while let Some((queued, id)) = self.recency.pop_front() {
            let Some(group) = self.get(id) else { continue };
            if group.last > queued {
                self.recency.push_back((group.last, id));
                continue;
            }
            return Some((id, group.last));
        }
        None
    }

    /// Removes sliding groups whose every detection is older than `horizon`.
    fn expire(&mut self, horizon: i64) {
        while let Some(&(queued, id)) = self.recency.front() {
            if queued >= horizon {
                break;
            }
            self.recency.pop_front();
            let Some(group) = self.get(id) else { continue };
            if group.last > queued {
                self.recency.push_back((group.last, id));
            } else {
                self.remove(id);
            }
        }
    }
}

/// Evaluates an engine's correlation rules. One per stream; not shared
/// between threads (feed it in order from one place).
pub struct Correlator {
    correlations: Vec<Compiled>,
    /// Engine rule index to the correlations it feeds.
    by_rule: Vec<Vec<Target>>,
    /// Correlation index to the correlations it feeds.
    by_correlation: Vec<Vec<Target>>,
    /// Rules and correlations that report on their own (see `generate`).
    rule_reports: Vec<bool>,
    correlation_reports: Vec<bool>,
    identities: Vec<String>,
    lateness_ms: i64,
    max_groups: usize,
    /// Newest event time seen.
    newest: i64,
    /// Everything up to here has been evaluated.
    watermark: i64,
    sequence: u64,
    pending: std::collections::BinaryHeap<std::cmp::Reverse<Ordered<Pending>>>,
    stats: CorrelatorStats,
    /// The key being read, reused from event to event.
    key: String,
    targets: Vec<(Target, u64)>,
}

/// Orders pending detections by time, then arrival.
#[derive(Clone, Debug)]
struct Ordered<T>(T);

impl PartialEq for Ordered<Pending> {
    fn eq(&self, other: &Self) -> bool {
        (self.0.time, self.0.sequence) == (other.0.time, other.0.sequence)
    }
}
impl Eq for Ordered<Pending> {}
impl PartialOrd for Ordered<Pending> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered<Pending> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.time, self.0.sequence).cmp(&(other.0.time, other.0.sequence))
    }
}

impl Correlator {
    /// Compiles the engine's correlations (checked when the engine was
    /// built: every reference resolves, there is no cycle and no more than
    /// [`MAX_REFERENCED_RULES`] references).
    pub fn new(engine: &Engine, config: &CorrelatorConfig) -> Correlator {
        let rules = engine.rules();
        let sources = engine.correlations();
        let mut by_rule = vec![Vec::new(); rules.len()];
        let mut by_correlation = vec![Vec::new(); sources.len()];
        let mut rule_reports = vec![true; rules.len()];
        let mut referenced_rules = vec![false; rules.len()];
        let mut correlation_reports = vec![true; sources.len()];
        let mut referenced_correlations = vec![false; sources.len()];
        let mut generating_rules = vec![false; rules.len()];
        let mut generating_correlations = vec![false; sources.len()];
        let mut correlations = Vec::with_capacity(sources.len());
        for (index, correlation) in sources.iter().enumerate() {
            debug_assert!(correlation.rules.len() <= MAX_REFERENCED_RULES);
            let mut group_sources = Vec::new();
            let mut value_sources = Vec::new();
            for (slot, reference) in correlation.rules.iter().enumerate().take(MAX_REFERENCED_RULES) {
                let target = Target { correlation: index as u32, slot: slot as u8 };
                let upstream = sources.iter().position(|other| other.is_named(reference));
                let matching: Vec<usize> =
                    (0..rules.len()).filter(|&rule| names_rule(&rules[rule].meta, reference)).collect();
                let field_of = |name: &str| -> Source {
                    let name = correlation.field_for(reference, name);
                    match upstream {
                        Some(upstream) => {
                            Source::Upstream(sources[upstream].group_by.iter().position(|field| field == name))
                        }
                        None => Source::Field(Symbol::intern(name)),
                    }
                };
                group_sources.push(correlation.group_by.iter().map(|name| field_of(name)).collect::<Vec<_>>());
                value_sources.push(correlation.field.as_deref().map(field_of));
                match upstream {
                    Some(upstream) => {
                        by_correlation[upstream].push(target);
                        referenced_correlations[upstream] = true;
                        generating_correlations[upstream] |= correlation.generate;
                    }
                    None => {
                        for rule in matching {
                            by_rule[rule].push(target);
                            referenced_rules[rule] = true;
                            generating_rules[rule] |= correlation.generate;
                        }
                    }
                }
            }
            let sliding = correlation
                .condition
                .iter()
                .all(|(comparison, _)| matches!(comparison, Comparison::Gt | Comparison::Gte));
            correlations.push(Compiled {
                kind: correlation.kind,
                span_ms: i64::try_from(correlation.timespan.as_millis()).unwrap_or(i64::MAX / 4),
                condition: correlation.condition.clone(),
                sliding,
                percentile: match correlation.kind {
                    CorrelationType::ValueMedian => 50.0,
                    _ => correlation.percentile.unwrap_or(95.0),
                },
                slots: correlation.rules.len(),
                group_names: correlation.group_by.clone(),
                group_sources,
                value_sources,
                groups: Groups::default(),
                closing: VecDeque::new(),
            });
        }
        for rule in 0..rules.len() {
            rule_reports[rule] = !referenced_rules[rule] || generating_rules[rule];
        }
        for correlation in 0..sources.len() {
            correlation_reports[correlation] =
                !referenced_correlations[correlation] || generating_correlations[correlation];
        }
        Correlator {
            correlations,
            by_rule,
            by_correlation,
            rule_reports,
            correlation_reports,
            identities: unique_identities(sources),
            lateness_ms: i64::try_from(config.allowed_lateness.as_millis()).unwrap_or(i64::MAX / 4),
            max_groups: config.max_groups.max(1),
            newest: i64::MIN,
            watermark: i64::MIN,
            sequence: 0,
            pending: Default::default(),
            stats: CorrelatorStats::default(),
            key: String::new(),
            targets: Vec::new(),
        }
    }

    /// Whether there is anything to correlate.
    pub fn is_empty(&self) -> bool {
        self.correlations.is_empty()
    }

    /// Whether the rule's own detections are reported: not when it is
    /// referenced only by correlations that do not `generate`.
    pub fn reports_rule(&self, rule: usize) -> bool {
        self.rule_reports.get(rule).copied().unwrap_or(true)
    }

    /// Whether the correlation's matches are reported (a correlation used only
    /// by other correlations without `generate` is not).
    pub fn reports_correlation(&self, correlation: usize) -> bool {
        self.correlation_reports.get(correlation).copied().unwrap_or(true)
    }

    /// Whether any correlation reads this rule's detections.
    pub fn uses_rule(&self, rule: usize) -> bool {
        self.by_rule.get(rule).is_some_and(|targets| !targets.is_empty())
    }

    pub fn stats(&self) -> CorrelatorStats {
        self.stats.clone()
    }

    /// Groups held across all correlations.
    pub fn groups(&self) -> usize {
        self.correlations.iter().map(|correlation| correlation.groups.len()).sum()
    }

    /// Takes one event and the rules it matched (as [`Engine::matches`] left
    /// it: the event's field aliases applied). `time_ms` is its event time.
    /// Matches whose time has come are appended to `out`.
    pub fn observe(&mut self, event: &Event, matched: &[usize], time_ms: i64, out: &mut Vec<CorrelationMatch>) {
        self.targets.clear();
        for &rule in matched {
            let Some(targets) = self.by_rule.get(rule) else { continue };
            for target in targets {
                match self.targets.iter_mut().find(|(seen, _)| seen.correlation == target.correlation) {
                    Some((_, slots)) => *slots |= 1 << target.slot,
                    None => self.targets.push((*target, 1 << target.slot)),
                }
            }
        }
        if !self.targets.is_empty() {
            let targets = std::mem::take(&mut self.targets);
            for &(target, slots) in &targets {
                self.stats.detections += 1;
                if time_ms < self.watermark {
                    self.stats.late += 1;
                    continue;
                }
                let correlation = &self.correlations[target.correlation as usize];
                let slot = target.slot as usize;
                if !read_key(&correlation.group_sources[slot], EventOrGroup::Event(event), &mut self.key) {
                    self.stats.missing_group += 1;
                    continue;
                }
                let Some(contribution) = contribution(correlation, slot, EventOrGroup::Event(event)) else {
                    self.stats.not_numeric += 1;
                    continue;
                };
                if self.lateness_ms == 0 && self.pending.is_empty() {
                    // In order and nothing held back: evaluate at once.
                    self.advance_to(time_ms, out);
                    let key = std::mem::take(&mut self.key);
                    self.apply(target.correlation, slots, time_ms, &key, &contribution, out);
                    self.key = key;
                } else {
                    let held = Pending {
                        time: time_ms,
                        sequence: self.sequence,
                        correlation: target.correlation,
                        slots,
                        key: self.key.clone(),
                        contribution,
                    };
                    self.sequence += 1;
                    self.pending.push(std::cmp::Reverse(Ordered(held)));
                }
            }
            self.targets = targets;
        }
        self.advance(time_ms, out);
    }

    /// Tells the correlator that event time has reached `time_ms` (call it
    /// for events that matched nothing too, so that windows can close).
    pub fn advance(&mut self, time_ms: i64, out: &mut Vec<CorrelationMatch>) {
        if time_ms > self.newest {
            self.newest = time_ms;
        }
        let watermark = self.newest.saturating_sub(self.lateness_ms);
        self.release(watermark, out);
    }

    /// End of input: evaluates everything held back and judges every open
    /// window (for `riposte hunt`, when the files are read).
    pub fn finish(&mut self, out: &mut Vec<CorrelationMatch>) {
        self.release(i64::MAX, out);
    }

    fn release(&mut self, watermark: i64, out: &mut Vec<CorrelationMatch>) {
        while let Some(std::cmp::Reverse(Ordered(next))) = self.pending.peek() {
            if next.time > watermark {
                break;
            }
            let std::cmp::Reverse(Ordered(next)) = self.pending.pop().expect("peeked");
            self.advance_to(next.time, out);
            self.apply(next.correlation, next.slots, next.time, &next.key, &next.contribution, out);
        }
        self.advance_to(watermark, out);
    }

    /// Moves the evaluated frontier to `time`: closes tumbling windows that
    /// ended before it and forgets sliding groups that fell out of it.
    fn advance_to(&mut self, time: i64, out: &mut Vec<CorrelationMatch>) {
        if time <= self.watermark {
            return;
        }
        self.watermark = time;
        for correlation in self.correlations.iter_mut().filter(|correlation| correlation.sliding) {
            correlation.groups.expire(time.saturating_sub(correlation.span_ms));
        }
        // Windows that ended, earliest end first across every correlation, so
        // that a match fed to a correlation of correlations arrives in order.
        loop {
            let next = self
                .correlations
                .iter()
                .enumerate()
                .filter_map(|(index, correlation)| correlation.closing.front().map(|&(end, ..)| (end, index)))
                .filter(|&(end, _)| end < time || time == i64::MAX)
                .min();
            let Some((end, index)) = next else { break };
            let correlation = &mut self.correlations[index];
            let (_, id, start) = correlation.closing.pop_front().expect("a front");
            // A window that already fired or was evicted is gone.
            if correlation.groups.get(id).is_none_or(|group| group.first != start) {
                continue;
            }
            let group = correlation.groups.remove(id).expect("present");
            if let Some(value) = holds(correlation, &group.window, i64::MIN) {
                let events = group.events;
                self.emit(index, group, end, value, events, out);
            }
        }
    }

    /// Adds a detection to its group and checks a sliding condition.
    fn apply(
        &mut self,
        correlation: u32,
        slots: u64,
        time: i64,
        key: &str,
        contribution: &Contribution,
        out: &mut Vec<CorrelationMatch>,
    ) {
        let index = correlation as usize;
        let max_groups = self.max_groups;
        let correlation = &mut self.correlations[index];
        let id = match correlation.groups.by_key.get(key) {
            Some(&id) => id,
            None => {
                if correlation.groups.len() >= max_groups
                    && let Some((oldest, _)) = correlation.groups.pop_oldest()
                {
                    correlation.groups.remove(oldest);
                    self.stats.evicted += 1;
                }
                let window = new_window(correlation.kind, correlation.slots);
                let id =
                    correlation.groups.insert(Group { key: key.into(), first: time, last: time, events: 0, window });
                if !correlation.sliding {
                    correlation.closing.push_back((time.saturating_add(correlation.span_ms), id, time));
                }
                id
            }
        };
        let span = correlation.span_ms;
        let sliding = correlation.sliding;
        let group = correlation.groups.slots[id as usize].as_mut().expect("live group");
        if group.last < time {
            group.last = time;
        }
        group.events += 1;
        if !sliding {
            add(&mut group.window, slots, time, span, contribution, i64::MIN);
            return;
        }
        let horizon = time.saturating_sub(span);
        add(&mut group.window, slots, time, span, contribution, horizon);
        group.first = oldest(&group.window, horizon).unwrap_or(time);
        let correlation = &self.correlations[index];
        let group = correlation.groups.get(id).expect("live group");
        if let Some(value) = holds(correlation, &group.window, horizon) {
            let group = self.correlations[index].groups.remove(id).expect("live group");
            let events = in_window(&group.window).unwrap_or(group.events);
            self.emit(index, group, time, value, events, out);
        }
    }

    /// Reports a match and feeds it to the correlations that reference this one.
    fn emit(
        &mut self,
        index: usize,
        group: Group,
        time: i64,
        value: f64,
        events: u64,
        out: &mut Vec<CorrelationMatch>,
    ) {
        self.stats.matches += 1;
        let correlation = &self.correlations[index];
        let found = CorrelationMatch {
            correlation: index,
            time_ms: time,
            first_ms: group.first,
            group: correlation.group_names.iter().cloned().zip(key_parts(&group.key)).collect(),
            value,
            events,
        };
        out.push(found);
        let group: Vec<String> = key_parts(&group.key).collect();
        for target in self.by_correlation[index].clone() {
            let downstream = &self.correlations[target.correlation as usize];
            let slot = target.slot as usize;
            let mut key = String::new();
            if !read_key(&downstream.group_sources[slot], EventOrGroup::Group(&group), &mut key) {
                self.stats.missing_group += 1;
                continue;
            }
            let Some(contribution) = contribution(downstream, slot, EventOrGroup::Group(&group)) else {
                self.stats.not_numeric += 1;
                continue;
            };
            self.stats.detections += 1;
            self.apply(target.correlation, 1 << target.slot, time, &key, &contribution, out);
        }
    }

    /// The state to keep across a restart: open windows, held-back
    /// detections and counters.
    pub fn snapshot(&self) -> Snapshot {
        let correlations = self
            .correlations
            .iter()
            .zip(&self.identities)
            .map(|(correlation, identity)| CorrelationState {
                identity: identity.clone(),
                groups: correlation.groups.slots.iter().flatten().cloned().collect(),
            })
            .collect();
        let mut pending: Vec<Pending> = self.pending.iter().map(|held| held.0.0.clone()).collect();
        pending.sort_by_key(|held| (held.time, held.sequence));
        let pending = pending
            .into_iter()
            .map(|held| {
                let identity = self.identities[held.correlation as usize].clone();
                (identity, held)
            })
            .collect();
        Snapshot {
            version: SNAPSHOT_VERSION,
            newest: self.newest,
            watermark: self.watermark,
            pending,
            correlations,
            stats: self.stats.clone(),
        }
    }

    /// Takes up the state of a snapshot. Correlations are matched by id (or
    /// name, or title); the state of correlations no longer loaded, or whose
    /// type changed, is dropped. Returns how many groups were restored.
    pub fn restore(&mut self, snapshot: Snapshot) -> usize {
        if snapshot.version != SNAPSHOT_VERSION {
            return 0;
        }
        self.newest = snapshot.newest;
        self.watermark = snapshot.watermark;
        self.stats = snapshot.stats;
        let position = |identity: &str| self.identities.iter().position(|known| known == identity);
        let mut restored = 0;
        for state in snapshot.correlations {
            let Some(index) = position(&state.identity) else { continue };
            let correlation = &mut self.correlations[index];
            let mut groups = state.groups;
            groups.retain(|group| fits(&group.window, correlation.kind, correlation.slots));
            groups.sort_by_key(|group| (group.last, group.first));
            for group in groups {
                let start = group.first;
                let id = correlation.groups.insert(group);
                if !correlation.sliding {
                    correlation.closing.push_back((start.saturating_add(correlation.span_ms), id, start));
                }
                restored += 1;
            }
            correlation.closing.make_contiguous().sort_by_key(|&(end, ..)| end);
        }
        for (identity, mut held) in snapshot.pending {
            let Some(index) = position(&identity) else { continue };
            held.correlation = index as u32;
            held.sequence = self.sequence;
            self.sequence += 1;
            self.pending.push(std::cmp::Reverse(Ordered(held)));
        }
        restored
    }
}

const SNAPSHOT_VERSION: u32 = 1;

/// A correlator's state, as [`Correlator::snapshot`] gives it (serialise it
/// with serde).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    version: u32,
    newest: i64,
    watermark: i64,
    pending: Vec<(String, Pending)>,
    correlations: Vec<CorrelationState>,
    stats: CorrelatorStats,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CorrelationState {
    identity: String,
    groups: Vec<Group>,
}

/// Identities for every correlation; a repeated one (two correlations with
/// the same id, or the same title and no id) is told apart by position.
fn unique_identities(correlations: &[Correlation]) -> Vec<String> {
    let mut identities: Vec<String> = Vec::with_capacity(correlations.len());
    for (index, correlation) in correlations.iter().enumerate() {
        let identity = identity(correlation);
        if identities.contains(&identity) {
            identities.push(format!("{identity}#{index}"));
        } else {
            identities.push(identity);
        }
    }
    identities
}

fn identity(correlation: &Correlation) -> String {
    match (&correlation.meta.id, &correlation.meta.name) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(name)) => format!("name:{name}"),
        (None, None) => format!("title:{}", correlation.meta.title),
    }
}

#[derive(Copy, Clone)]
enum EventOrGroup<'a> {
    Event(&'a Event),
    Group(&'a [String]),
}

impl<'a> EventOrGroup<'a> {
    fn text(self, source: &Source) -> Option<&'a str> {
        match (self, source) {
            (EventOrGroup::Event(event), Source::Field(symbol)) => event.get(*symbol).and_then(|value| value.as_text()),
            (EventOrGroup::Group(values), Source::Upstream(Some(index))) => values.get(*index).map(String::as_str),
            _ => None,
        }
    }

    fn number(self, source: &Source) -> Option<f64> {
        match (self, source) {
            (EventOrGroup::Event(event), Source::Field(symbol)) => match event.get(*symbol)? {
                Value::Number(text) | Value::String(text) => text.trim().parse::<f64>().ok(),
                Value::Bool(_) | Value::Null => None,
            },
            _ => self.text(source).and_then(|text| text.trim().parse::<f64>().ok()),
        }
        .filter(|number| number.is_finite())
    }
}

/// FNV-1a, 64 bits: a value's identity in `value_count` windows. Its own
/// code, so that saved windows mean the same after any upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Reads the group key into `key`; false when a field is missing.
fn read_key(sources: &[Source], from: EventOrGroup<'_>, key: &mut String) -> bool {
    key.clear();
    for source in sources {
        match from.text(source) {
            Some(text) => push_key_part(key, text),
            None => return false,
        }
    }
    true
}

/// Appends one group-by value to a key as `length:value`, so that values
/// holding any character still make distinct, splittable keys.
fn push_key_part(key: &mut String, value: &str) {
    use std::fmt::Write;
    let _ = write!(key, "{}:", value.len());
    key.push_str(value);
}

/// The group-by values of a key made by [`push_key_part`].
fn key_parts(mut key: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::from_fn(move || {
        let (length, rest) = key.split_once(':')?;
        let length: usize = length.parse().ok()?;
        let value = rest.get(..length)?;
        key = &rest[length..];
        Some(value.to_owned())
    })
}

fn contribution(correlation: &Compiled, slot: usize, from: EventOrGroup<'_>) -> Option<Contribution> {
    let source = correlation.value_sources[slot].as_ref();
    match correlation.kind {
        CorrelationType::EventCount | CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
            Some(Contribution::Plain)
        }
        CorrelationType::ValueCount => {
            let text = from.text(source?)?;
            Some(Contribution::Distinct(fnv1a(text.as_bytes())))
        }
        CorrelationType::ValueSum
        | CorrelationType::ValueAvg
        | CorrelationType::ValuePercentile
        | CorrelationType::ValueMedian => from.number(source?).map(Contribution::Number),
    }
}

fn new_window(kind: CorrelationType, slots: usize) -> Window {
    match kind {
        CorrelationType::EventCount => Window::Times(VecDeque::new()),
        CorrelationType::ValueCount => Window::Distinct { entries: VecDeque::new(), counts: FxHashMap::default() },
        CorrelationType::ValueSum
        | CorrelationType::ValueAvg
        | CorrelationType::ValuePercentile
        | CorrelationType::ValueMedian => Window::Numbers { entries: VecDeque::new(), sum: 0.0 },
        CorrelationType::Temporal => Window::Seen(vec![i64::MIN; slots]),
        CorrelationType::TemporalOrdered => Window::Ordered(vec![i64::MIN; slots]),
    }
}

/// Whether a restored window has the shape this correlation needs.
fn fits(window: &Window, kind: CorrelationType, slots: usize) -> bool {
    match (window, kind) {
        (Window::Times(_), CorrelationType::EventCount) => true,
        (Window::Distinct { .. }, CorrelationType::ValueCount) => true,
        (
            Window::Numbers { .. },
            CorrelationType::ValueSum
            | CorrelationType::ValueAvg
            | CorrelationType::ValuePercentile
            | CorrelationType::ValueMedian,
        ) => true,
        (Window::Seen(seen), CorrelationType::Temporal) => seen.len() == slots,
        (Window::Ordered(runs), CorrelationType::TemporalOrdered) => runs.len() == slots,
        _ => false,
    }
}

/// Adds a detection at `time` to a window, first dropping what is older
/// than `horizon` (sliding windows).
fn add(window: &mut Window, slots: u64, time: i64, span: i64, contribution: &Contribution, horizon: i64) {
    match window {
        Window::Times(times) => {
            while times.front().is_some_and(|&oldest| oldest < horizon) {
                times.pop_front();
            }
            times.push_back(time);
        }
        Window::Distinct { entries, counts } => {
            while let Some(&(oldest, hash)) = entries.front() {
                if oldest >= horizon {
                    break;
                }
                entries.pop_front();
                if let Some(count) = counts.get_mut(&hash) {
                    *count -= 1;
                    if *count == 0 {
                        counts.remove(&hash);
                    }
                }
            }
            if let Contribution::Distinct(hash) = *contribution {
                entries.push_back((time, hash));
                *counts.entry(hash).or_default() += 1;
            }
        }
        Window::Numbers { entries, sum } => {
            while let Some(&(oldest, number)) = entries.front() {
                if oldest >= horizon {
                    break;
                }
                entries.pop_front();
                *sum = (*sum - number).clamp(f64::MIN, f64::MAX);
            }
            if entries.is_empty() {
                *sum = 0.0; // no drift carried over from values long gone
            }
            if let Contribution::Number(number) = *contribution {
                entries.push_back((time, number));
                // Kept finite: an infinite sum could not be saved (JSON has no infinity).
                *sum = (*sum + number).clamp(f64::MIN, f64::MAX);
            }
        }
        Window::Seen(last) => {
            for (slot, seen) in last.iter_mut().enumerate() {
                if slots & (1 << slot) != 0 {
                    *seen = time;
                }
            }
        }
        Window::Ordered(starts) => {
            // Highest position first, so one event advances a run by one step.
            for slot in (0..starts.len()).rev() {
                if slots & (1 << slot) == 0 {
                    continue;
                }
                let start = if slot == 0 {
                    time
                } else {
                    let previous = starts[slot - 1];
                    if previous == i64::MIN || time.saturating_sub(previous) > span {
                        continue;
                    }
                    previous
                };
                starts[slot] = starts[slot].max(start);
            }
        }
    }
}

/// Time of the oldest detection that counts in a sliding window (`horizon`:
/// the oldest time that still counts).
fn oldest(window: &Window, horizon: i64) -> Option<i64> {
    match window {
        Window::Times(times) => times.front().copied(),
        Window::Distinct { entries, .. } => entries.front().map(|&(time, _)| time),
        Window::Numbers { entries, .. } => entries.front().map(|&(time, _)| time),
        Window::Seen(last) => last.iter().copied().filter(|&time| time != i64::MIN && time >= horizon).min(),
        // The start of the longest run still in the window.
        Window::Ordered(starts) => starts.iter().rev().copied().find(|&start| start != i64::MIN && start >= horizon),
    }
}

/// Detections in a window that keeps them (`None` for the temporal types,
/// which keep one time per rule: there, detections since the group began).
fn in_window(window: &Window) -> Option<u64> {
    match window {
        Window::Times(times) => Some(times.len() as u64),
        Window::Distinct { entries, .. } => Some(entries.len() as u64),
        Window::Numbers { entries, .. } => Some(entries.len() as u64),
        Window::Seen(_) | Window::Ordered(_) => None,
    }
}

/// The figure the condition compared, when the condition holds.
fn holds(correlation: &Compiled, window: &Window, horizon: i64) -> Option<f64> {
    let value = measure(window, correlation.kind, correlation.percentile, horizon)?;
    correlation.condition.iter().all(|&(comparison, threshold)| comparison.holds(value, threshold)).then_some(value)
}

/// The figure a window's condition compares. `horizon` is the oldest time
/// that still counts (sliding windows).
fn measure(window: &Window, kind: CorrelationType, percentile: f64, horizon: i64) -> Option<f64> {
    Some(match window {
        Window::Times(times) => times.len() as f64,
        Window::Distinct { counts, .. } => counts.len() as f64,
        Window::Numbers { entries, sum } => {
            if entries.is_empty() {
                return None;
            }
            match kind {
                CorrelationType::ValueSum => *sum,
                CorrelationType::ValueAvg => *sum / entries.len() as f64,
                _ => percentile_of(entries.iter().map(|&(_, number)| number).collect(), percentile),
            }
        }
        Window::Seen(last) => last.iter().filter(|&&time| time != i64::MIN && time >= horizon).count() as f64,
        Window::Ordered(starts) => {
            starts.iter().rposition(|&start| start != i64::MIN && start >= horizon).map_or(0, |position| position + 1)
                as f64
        }
    })
}

/// The `percentile`th percentile, linearly interpolated between the closest
/// ranks (so the median of an even count is the mean of the middle two).
fn percentile_of(mut numbers: Vec<f64>, percentile: f64) -> f64 {
    numbers.sort_by(f64::total_cmp);
    let rank = (percentile / 100.0) * (numbers.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    let fraction = rank - below as f64;
    numbers[below] + (numbers[above] - numbers[below]) * fraction
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn group_keys_split_back_into_their_values(values in proptest::collection::vec(".*", 0..5)) {
            let mut key = String::new();
            for value in &values {
                push_key_part(&mut key, value);
            }
            prop_assert_eq!(key_parts(&key).collect::<Vec<_>>(), values);
        }
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        assert_eq!(percentile_of(vec![1.0], 95.0), 1.0);
        assert_eq!(percentile_of(vec![4.0, 1.0, 3.0, 2.0], 50.0), 2.5);
        assert_eq!(percentile_of(vec![10.0, 20.0, 30.0], 100.0), 30.0);
        assert_eq!(percentile_of(vec![10.0, 20.0, 30.0], 0.0), 10.0);
    }
}
