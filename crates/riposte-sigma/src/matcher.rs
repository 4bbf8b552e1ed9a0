//! What one detection item checks, and its direct evaluation on an event.
//!
//! The engine's index only decides which rules to evaluate; every matcher is
//! evaluated here.

use std::net::IpAddr;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use ipnet::IpNet;
use regex::Regex;
use riposte_event::{Event, Symbol, Value, timestamp};
use rustc_hash::FxHashSet;

use crate::text::{TextKind, TextPattern, fold_into};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
}

impl CompareOp {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CompareOp::Lt => left < right,
            CompareOp::Lte => left <= right,
            CompareOp::Gt => left > right,
            CompareOp::Gte => left >= right,
            CompareOp::Eq => left == right,
        }
    }
}

/// A part of a timestamp (the time modifiers).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimePart {
    Minute,
    Hour,
    Day,
    /// ISO 8601 week number, 1 to 53.
    Week,
    Month,
    Year,
}

impl TimePart {
    fn of(self, text: &str) -> Option<f64> {
        let time = timestamp::parse(text)?;
        Some(f64::from(match self {
            TimePart::Minute => i32::from(time.minute()),
            TimePart::Hour => i32::from(time.hour()),
            TimePart::Day => i32::from(time.day()),
            TimePart::Week => i32::from(time.iso_week()),
            TimePart::Month => i32::from(u8::from(time.month())),
            TimePart::Year => time.year(),
        }))
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    Text(TextPattern),
    /// Several case-insensitive `contains` values of one item (any of them),
    /// found with one automaton scan instead of one search each.
    ContainsAny(ContainsAny),
    /// Several case-insensitive `equals`, `startswith` and `endswith` values
    /// of one item (any of them), found with a few hash lookups.
    AnchoredAny(AnchoredAny),
    Regex {
        regex: Regex,
        /// Literals one of which every match contains (lower-cased), for the
        /// index; empty when there is no such set.
        required: Vec<Vec<u8>>,
    },
    /// `null`: the field is absent, null or empty.
    Null,
    /// `''`: the field is present and empty (or null).
    Empty,
    /// `exists: true|false`.
    Exists(bool),
    Compare {
        op: CompareOp,
        value: f64,
        part: Option<TimePart>,
    },
    Cidr(IpNet),
    /// `fieldref`: compares with the value of another field of the same event.
    FieldRef {
        other: Symbol,
        kind: TextKind,
        cased: bool,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct ContainsAny {
    /// The values, folded.
    pub texts: Vec<Box<[u8]>>,
    /// A searcher for each, until the automaton is built (prepared when
    /// first needed, like the automaton).
    finders: OnceLock<Vec<memchr::memmem::Finder<'static>>>,
    searcher: Arc<Searcher>,
}

/// The automaton of a [`ContainsAny`], built once it has been used enough to
/// pay for itself: most items are evaluated a few times or never in a run,
/// and building hundreds of automata up front would double the time to load
/// a rule set.
#[derive(Debug, Default)]
struct Searcher {
    uses: AtomicU32,
    automaton: OnceLock<Option<AhoCorasick>>,
}

/// Fewest `contains` values merged into one [`Matcher::ContainsAny`].
const MERGE_MIN: usize = 3;
/// Fewest values searched with an automaton rather than one by one.
const AUTOMATON_MIN: usize = 8;
/// Searches one by one before the automaton is built.
const AUTOMATON_AFTER_USES: u32 = 32;

impl ContainsAny {
    /// Merges the case-insensitive, non-empty `contains` matchers of an item
    /// whose matchers are alternatives (not `all`), when there are enough.
    fn merge(matchers: &mut Vec<Matcher>) {
        let mergeable = |matcher: &Matcher| {
            matches!(matcher, Matcher::Text(pattern)
                if pattern.kind == TextKind::Contains && !pattern.cased && !pattern.text.is_empty())
        };
        if matchers.iter().filter(|matcher| mergeable(matcher)).count() < MERGE_MIN {
            return;
        }
        let (merged, kept): (Vec<Matcher>, Vec<Matcher>) = std::mem::take(matchers).into_iter().partition(mergeable);
        let texts: Vec<Box<[u8]>> = merged
            .into_iter()
            .filter_map(|matcher| if let Matcher::Text(pattern) = matcher { Some(pattern.text) } else { None })
            .collect();
        *matchers = kept;
        matchers
            .insert(0, Matcher::ContainsAny(ContainsAny { texts, finders: OnceLock::new(), searcher: Arc::default() }));
    }

    /// Whether a folded value contains any of the texts.
    fn is_match(&self, folded: &[u8]) -> bool {
        let one_by_one = || {
            let finders = self
                .finders
                .get_or_init(|| self.texts.iter().map(|text| memchr::memmem::Finder::new(text).into_owned()).collect());
            finders.iter().any(|finder| finder.find(folded).is_some())
        };
        if self.texts.len() < AUTOMATON_MIN {
            return one_by_one();
        }
        let searcher = &*self.searcher;
        let automaton = match searcher.automaton.get() {
            Some(automaton) => automaton,
            None if searcher.uses.fetch_add(1, Ordering::Relaxed) < AUTOMATON_AFTER_USES => return one_by_one(),
            // Leftmost semantics let the automaton use its SIMD prefilter;
            // any match answers the question.
            None => searcher.automaton.get_or_init(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(&self.texts)
                    .ok()
            }),
        };
        match automaton {
            Some(automaton) => automaton.is_match(folded),
            // Too large for an automaton.
            None => one_by_one(),
        }
    }
}

/// Merges what can be merged among the matchers of an item whose matchers
/// are alternatives (not `all`).
pub(crate) fn merge_alternatives(matchers: &mut Vec<Matcher>) {
    AnchoredAny::merge(matchers);
    ContainsAny::merge(matchers);
}

/// Case-insensitive `equals`, `startswith` and `endswith` values of one item
/// (SigmaHQ rules list dozens of image names in one): a value is looked up
/// whole, and by its prefixes and suffixes of the lengths the patterns have,
/// instead of being compared with each pattern.
#[derive(Clone, Debug)]
pub(crate) struct AnchoredAny {
    equals: FxHashSet<Box<[u8]>>,
    prefixes: Affixes,
    suffixes: Affixes,
}

/// Texts a value may start (or end) with, and their distinct lengths.
#[derive(Clone, Debug, Default)]
struct Affixes {
    texts: FxHashSet<Box<[u8]>>,
    lengths: Vec<usize>,
}

impl Affixes {
    fn add(&mut self, text: Box<[u8]>) {
        if let Err(at) = self.lengths.binary_search(&text.len()) {
            self.lengths.insert(at, text.len());
        }
        self.texts.insert(text);
    }

    /// Whether `value` has one of the texts at the place `part` cuts.
    #[inline]
    fn holds(&self, value: &[u8], part: impl Fn(usize) -> std::ops::Range<usize>) -> bool {
        self.lengths
            .iter()
            .take_while(|&&length| length <= value.len())
            .any(|&length| self.texts.contains(&value[part(length)]))
    }
}

impl AnchoredAny {
    /// Merges the case-insensitive, non-empty `equals`, `startswith` and
    /// `endswith` matchers of an item whose matchers are alternatives, when
    /// there are enough.
    fn merge(matchers: &mut Vec<Matcher>) {
        let mergeable = |matcher: &Matcher| {
            matches!(matcher, Matcher::Text(pattern)
                if matches!(pattern.kind, TextKind::Equals | TextKind::StartsWith | TextKind::EndsWith)
                    && !pattern.cased && !pattern.text.is_empty())
        };
        if matchers.iter().filter(|matcher| mergeable(matcher)).count() < MERGE_MIN {
            return;
        }
        let (merged, kept): (Vec<Matcher>, Vec<Matcher>) = std::mem::take(matchers).into_iter().partition(mergeable);
        let mut any =
            AnchoredAny { equals: FxHashSet::default(), prefixes: Affixes::default(), suffixes: Affixes::default() };
        for matcher in merged {
            let Matcher::Text(pattern) = matcher else { continue };
            match pattern.kind {
                TextKind::Equals => {
                    any.equals.insert(pattern.text);
                }
                TextKind::StartsWith => any.prefixes.add(pattern.text),
                _ => any.suffixes.add(pattern.text),
            }
        }
        *matchers = kept;
        matchers.insert(0, Matcher::AnchoredAny(any));
    }

    /// The merged values (kind and folded text), for the index.
    pub(crate) fn patterns(&self) -> impl Iterator<Item = (TextKind, &[u8])> {
        fn placed(kind: TextKind, texts: &FxHashSet<Box<[u8]>>) -> impl Iterator<Item = (TextKind, &[u8])> {
            texts.iter().map(move |text| (kind, &**text))
        }
        placed(TextKind::Equals, &self.equals)
            .chain(placed(TextKind::StartsWith, &self.prefixes.texts))
            .chain(placed(TextKind::EndsWith, &self.suffixes.texts))
    }

    /// Whether a folded value equals, starts with or ends with one of the texts.
    fn is_match(&self, folded: &[u8]) -> bool {
        self.equals.contains(folded)
            || self.suffixes.holds(folded, |length| folded.len() - length..folded.len())
            || self.prefixes.holds(folded, |length| 0..length)
    }
}

/// Scratch space for evaluation, reused from event to event.
#[derive(Default)]
pub(crate) struct Buffers {
    pub folded: String,
    pub other: String,
    /// Lower-cased values of the fields read so far in this event, so that a
    /// field is folded once however many matchers read it.
    folded_fields: Vec<FoldedField>,
    used: usize,
    pub fields: FieldTable,
}

/// Where each field of the current event is, by name: built once per event,
/// so that reading a field is a lookup rather than a scan of the event.
#[derive(Default)]
pub(crate) struct FieldTable {
    generation: u32,
    /// By `Symbol::index`: the event the entry is for, and the first and last
    /// position of the field.
    stamps: Vec<u32>,
    spans: Vec<(u32, u32)>,
}

impl FieldTable {
    /// Indexes `event` (a new one each time).
    pub(crate) fn index(&mut self, event: &Event) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
        self.extend(event, 0);
    }

    /// Indexes the fields of the indexed event from position `from` on
    /// (those added to it since).
    pub(crate) fn extend(&mut self, event: &Event, from: usize) {
        // Room for every symbol first: the loop then writes through two
        // slices held in registers rather than reloading the tables.
        if let Some(highest) = event.symbols_from(from).map(Symbol::index).max()
            && highest >= self.stamps.len()
        {
            self.stamps.resize(highest + 64, 0);
            self.spans.resize(highest + 64, (0, 0));
        }
        let generation = self.generation;
        let (stamps, spans) = (&mut self.stamps[..], &mut self.spans[..]);
        for (position, symbol) in (from..).zip(event.symbols_from(from)) {
            let slot = symbol.index();
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            if stamps[slot] == generation {
                spans[slot].1 = position;
            } else {
                stamps[slot] = generation;
                spans[slot] = (position, position);
            }
        }
    }

    #[inline]
    fn span(&self, field: Symbol) -> Option<(usize, usize)> {
        let slot = field.index();
        (self.stamps.get(slot) == Some(&self.generation)).then(|| {
            let (first, last) = self.spans[slot];
            (first as usize, last as usize)
        })
    }

    /// The first value of `field` in the indexed event.
    #[inline]
    pub(crate) fn first<'e>(&self, event: &'e Event, field: Symbol) -> Option<Value<'e>> {
        self.span(field).map(|(first, _)| event.value_at(first))
    }

    /// Every value of `field` in the indexed event.
    #[inline]
    pub(crate) fn values<'e>(&self, event: &'e Event, field: Symbol) -> impl Iterator<Item = Value<'e>> + 'e {
        let (first, last) = self.span(field).unwrap_or((1, 0));
        event.values_between(first, last, field)
    }

    pub(crate) fn contains(&self, field: Symbol) -> bool {
        self.span(field).is_some()
    }
}

#[derive(Default)]
struct FoldedField {
    /// The field, or `None` for every value of the event (keywords).
    field: Option<Symbol>,
    values: Vec<String>,
    count: usize,
}

impl Buffers {
    /// Buffers ready for `event` (for tests and one-off evaluations).
    #[cfg(test)]
    pub(crate) fn for_event(event: &Event) -> Buffers {
        let mut buffers = Buffers::default();
        buffers.begin_event(event);
        buffers
    }

    /// Forgets the previous event's folded values and indexes `event` (for
    /// tests; the engine indexes an event before reading its class).
    #[cfg(test)]
    pub(crate) fn begin_event(&mut self, event: &Event) {
        self.used = 0;
        self.fields.index(event);
    }

    /// Forgets the previous event's folded values; `event` was indexed up to
    /// position `indexed` (fields were added since).
    pub(crate) fn continue_event(&mut self, event: &Event, indexed: usize) {
        self.used = 0;
        self.fields.extend(event, indexed);
    }

    /// The lower-cased text values of `field` (of every field for keywords).
    fn folded_values(&mut self, event: &Event, field: Option<Symbol>) -> &[String] {
        let found = self.folded_fields[..self.used].iter().position(|folded| folded.field == field);
        let index = match found {
            Some(index) => index,
            None => {
                if self.used == self.folded_fields.len() {
                    self.folded_fields.push(FoldedField::default());
                }
                let entry = &mut self.folded_fields[self.used];
                entry.field = field;
                entry.count = 0;
                let mut add = |value: Value<'_>| {
                    let Some(text) = value.as_text() else { return };
                    if entry.count < entry.values.len() {
                        fold_into(text, &mut entry.values[entry.count]);
                    } else {
                        entry.values.push(crate::text::fold(text));
                    }
                    entry.count += 1;
                };
                match field {
                    Some(field) => self.fields.values(event, field).for_each(&mut add),
                    None => event.fields().for_each(|field| add(field.value)),
                }
                self.used += 1;
                self.used - 1
            }
        };
        let entry = &self.folded_fields[index];
        &entry.values[..entry.count]
    }
}

impl Matcher {
    /// Evaluates on the values of `field` (all fields' values for keywords).
    pub(crate) fn eval(&self, event: &Event, field: Option<Symbol>, buffers: &mut Buffers) -> bool {
        match self {
            Matcher::Null => match field {
                Some(field) => {
                    buffers.fields.values(event, field).all(|value| value.as_text().is_none_or(str::is_empty))
                }
                None => false,
            },
            Matcher::Empty => match field {
                Some(field) => {
                    buffers.fields.values(event, field).any(|value| value.as_text().is_none_or(str::is_empty))
                }
                None => false,
            },
            Matcher::Exists(expected) => match field {
                Some(field) => buffers.fields.contains(field) == *expected,
                None => false,
            },
            Matcher::FieldRef { other, kind, cased } => {
                let Some(field) = field else { return false };
                fieldref(event, field, *other, *kind, *cased, buffers)
            }
            Matcher::Text(pattern) if !pattern.cased => {
                buffers.folded_values(event, field).iter().any(|value| pattern.matches_prepared(value))
            }
            Matcher::ContainsAny(_) | Matcher::AnchoredAny(_) => {
                buffers.folded_values(event, field).iter().any(|value| self.merged_match(value.as_bytes()))
            }
            _ => match field {
                Some(field) => {
                    // The table is read-only while values are tested.
                    let table = std::mem::take(&mut buffers.fields);
                    let hit = table
                        .values(event, field)
                        .filter_map(|value| value.as_text())
                        .any(|text| self.eval_text(text, buffers));
                    buffers.fields = table;
                    hit
                }
                None => {
                    event.fields().filter_map(|field| field.value.as_text()).any(|text| self.eval_text(text, buffers))
                }
            },
        }
    }

    /// Evaluates a value-level matcher on one value's text.
    fn eval_text(&self, text: &str, buffers: &mut Buffers) -> bool {
        match self {
            Matcher::Text(pattern) => pattern.matches(text, &mut buffers.folded),
            Matcher::Regex { regex, .. } => regex.is_match(text),
            Matcher::Compare { op, value, part } => {
                let actual = match part {
                    Some(part) => part.of(text),
                    None => parse_number(text),
                };
                actual.is_some_and(|actual| op.holds(actual, *value))
            }
            Matcher::Cidr(network) => parse_ip(text).is_some_and(|ip| network.contains(&ip)),
            Matcher::ContainsAny(_) | Matcher::AnchoredAny(_) => {
                fold_into(text, &mut buffers.folded);
                self.merged_match(buffers.folded.as_bytes())
            }
            Matcher::Null | Matcher::Empty | Matcher::Exists(_) | Matcher::FieldRef { .. } => false,
        }
    }

    /// Whether a lower-cased value matches one of a merged matcher's values
    /// (false for the other matchers, which are not merged).
    fn merged_match(&self, folded: &[u8]) -> bool {
        match self {
            Matcher::ContainsAny(any) => any.is_match(folded),
            Matcher::AnchoredAny(any) => any.is_match(folded),
            _ => false,
        }
    }
}

fn fieldref(event: &Event, field: Symbol, other: Symbol, kind: TextKind, cased: bool, buffers: &mut Buffers) -> bool {
    let Buffers { folded, other: other_folded, fields, .. } = buffers;
    fields.values(event, field).filter_map(|value| value.as_text()).any(|text| {
        fields.values(event, other).filter_map(|value: Value<'_>| value.as_text()).any(|reference| {
            let (text, reference) = if cased {
                (text, reference)
            } else {
                fold_into(text, folded);
                fold_into(reference, other_folded);
                (folded.as_str(), other_folded.as_str())
            };
            match kind {
                TextKind::Equals | TextKind::Glob => text == reference,
                TextKind::StartsWith => text.starts_with(reference),
                TextKind::EndsWith => text.ends_with(reference),
                TextKind::Contains => text.contains(reference),
            }
        })
    })
}

/// Numbers as logs write them: decimal, with a fraction, or `0x` hexadecimal.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|value| value as f64);
    }
    text.parse::<f64>().ok().filter(|value| value.is_finite())
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    // IPv6 literals may come bracketed or with a zone (`fe80::1%eth0`).
    let text = text.trim_start_matches('[').trim_end_matches(']');
    let text = text.split('%').next().unwrap_or(text);
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::SigmaString;

    proptest::proptest! {
        /// Merging `contains` values into one automaton changes nothing but speed.
        #[test]
        fn merged_contains_agree_with_separate_searches(
            needles in proptest::collection::vec("[aAbB\\\\ é]{1,4}", 1..12),
            others in proptest::collection::vec("[ab]{0,3}\\*?", 0..3),
            value in "[aAbBÉé\\\\ ]{0,12}",
        ) {
            let mut matchers: Vec<Matcher> =
                needles.iter().map(|needle| text(&format!("*{}*", needle.replace('*', "")))).collect();
            matchers.extend(others.iter().map(|other| text(other)));
            let event = Event::new().with("f", value.as_str());
            let field = Some(Symbol::intern("f"));
            let separate = matchers.iter().any(|matcher| matcher.eval(&event, field, &mut Buffers::for_event(&event)));
            ContainsAny::merge(&mut matchers);
            // Searched one by one at first, then with the automaton.
            for _ in 0..=AUTOMATON_AFTER_USES + 1 {
                let merged = matchers.iter().any(|matcher| matcher.eval(&event, field, &mut Buffers::for_event(&event)));
                proptest::prop_assert_eq!(separate, merged);
            }
        }
    }

    proptest::proptest! {
        /// Merging `equals`, `startswith` and `endswith` values into hash
        /// lookups changes nothing but speed, whatever the mix of kinds,
        /// lengths and letter case (and with other matchers beside them).
        #[test]
        fn merged_anchored_values_agree_with_separate_comparisons(
            patterns in proptest::collection::vec(("[aAbB\\\\é]{1,4}", 0..3usize), 1..12),
            others in proptest::collection::vec("\\*?[ab]{0,3}\\*?", 0..3),
            values in proptest::collection::vec("[aAbBÉé\\\\]{0,8}", 0..3),
        ) {
            let mut matchers: Vec<Matcher> = patterns
                .iter()
                .map(|(text, place)| {
                    let escaped = text.replace('\\', "\\\\");
                    let pattern = match place {
                        0 => escaped,
                        1 => format!("{escaped}*"),
                        _ => format!("*{escaped}"),
                    };
                    self::text(&pattern)
                })
                .collect();
            matchers.extend(others.iter().map(|other| self::text(other)));
            let mut event = Event::new();
            for value in &values {
                event = event.with("f", value.as_str());
            }
            let field = Some(Symbol::intern("f"));
            let separate = matchers.iter().any(|matcher| matcher.eval(&event, field, &mut Buffers::for_event(&event)));
            merge_alternatives(&mut matchers);
            proptest::prop_assert!(patterns.len() < MERGE_MIN || matches!(matchers[0], Matcher::AnchoredAny(_)));
            let merged = matchers.iter().any(|matcher| matcher.eval(&event, field, &mut Buffers::for_event(&event)));
            proptest::prop_assert_eq!(separate, merged);
        }
    }

    fn text(pattern: &str) -> Matcher {
        Matcher::Text(SigmaString::parse(pattern).compile(false))
    }

    fn eval(matcher: &Matcher, event: &Event, field: &str) -> bool {
        matcher.eval(event, Some(Symbol::intern(field)), &mut Buffers::for_event(event))
    }

    #[test]
    fn null_empty_and_exists() {
        let event = Event::new().with("a", "").with("b", None::<&str>).with("c", "x");
        assert!(eval(&Matcher::Null, &event, "a"));
        assert!(eval(&Matcher::Null, &event, "b"));
        assert!(eval(&Matcher::Null, &event, "missing"));
        assert!(!eval(&Matcher::Null, &event, "c"));
        assert!(eval(&Matcher::Empty, &event, "a"));
        assert!(eval(&Matcher::Empty, &event, "b"));
        assert!(!eval(&Matcher::Empty, &event, "missing"));
        assert!(eval(&Matcher::Exists(true), &event, "b"));
        assert!(eval(&Matcher::Exists(false), &event, "missing"));
        assert!(!eval(&Matcher::Exists(true), &event, "missing"));
    }

    #[test]
    fn numbers_times_and_networks() {
        let event = Event::new()
            .with("port", 445)
            .with("hex", "0x1F")
            .with("when", "2024-03-05T22:15:00Z")
            .with("ip", "10.1.2.3")
            .with("ip6", "2001:db8::42");
        let compare = |op, value, part| Matcher::Compare { op, value, part };
        assert!(eval(&compare(CompareOp::Gt, 100.0, None), &event, "port"));
        assert!(!eval(&compare(CompareOp::Lt, 100.0, None), &event, "port"));
        assert!(eval(&compare(CompareOp::Eq, 31.0, None), &event, "hex"));
        assert!(eval(&compare(CompareOp::Gte, 22.0, Some(TimePart::Hour)), &event, "when"));
        assert!(eval(&compare(CompareOp::Eq, 10.0, Some(TimePart::Week)), &event, "when"));
        assert!(eval(&compare(CompareOp::Eq, 3.0, Some(TimePart::Month)), &event, "when"));
        assert!(!eval(&compare(CompareOp::Eq, 1.0, Some(TimePart::Hour)), &event, "port"), "not a time");
        assert!(eval(&Matcher::Cidr("10.0.0.0/8".parse().unwrap()), &event, "ip"));
        assert!(!eval(&Matcher::Cidr("192.168.0.0/16".parse().unwrap()), &event, "ip"));
        assert!(eval(&Matcher::Cidr("2001:db8::/32".parse().unwrap()), &event, "ip6"));
        assert!(!eval(&Matcher::Cidr("2001:db8::/32".parse().unwrap()), &event, "ip"));
    }

    #[test]
    fn fieldref_compares_two_fields() {
        let event =
            Event::new().with("User", "CORP\\Bob").with("ParentUser", "corp\\bob").with("Image", "C:\\a\\b.exe");
        let reference = |other: &str, kind, cased| Matcher::FieldRef { other: Symbol::intern(other), kind, cased };
        assert!(eval(&reference("ParentUser", TextKind::Equals, false), &event, "User"));
        assert!(!eval(&reference("ParentUser", TextKind::Equals, true), &event, "User"));
        assert!(!eval(&reference("Missing", TextKind::Equals, false), &event, "User"));
        assert!(!eval(&reference("User", TextKind::Equals, false), &event, "Missing"));
        assert!(eval(&reference("User", TextKind::StartsWith, false), &event, "ParentUser"));
    }

    #[test]
    fn keywords_search_every_value() {
        let event = Event::new().with("a", "nothing here").with("b", "Invoke-Mimikatz -DumpCreds");
        assert!(text("*mimikatz*").eval(&event, None, &mut Buffers::for_event(&event)));
        assert!(!text("*lsadump*").eval(&event, None, &mut Buffers::for_event(&event)));
    }

    #[test]
    fn folded_values_are_cached_per_event_only() {
        let image = Symbol::intern("Image");
        let first = Event::new().with("Image", "C:\\A.EXE");
        let mut buffers = Buffers::for_event(&first);
        assert!(text("*a.exe").eval(&first, Some(image), &mut buffers));
        assert!(text("c:*").eval(&first, Some(image), &mut buffers));
        let second = Event::new().with("Image", "D:\\B.EXE");
        buffers.begin_event(&second);
        assert!(!text("*a.exe").eval(&second, Some(image), &mut buffers), "a new event folds again");
        assert!(text("*b.exe").eval(&second, Some(image), &mut buffers));
    }
}
