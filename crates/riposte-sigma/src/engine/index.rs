//! The rule index: which rules an event can possibly match, found with one
//! Aho-Corasick scan per field.
//!
//! Guarantee (an over-approximation): for every event, every rule that
//! matches it is a candidate. Each rule gets a *trigger set*: text patterns of
//! which at least one occurs (case-insensitively) in the event whenever the
//! rule matches. Rules with no such set (conditions that are only negations,
//! numeric comparisons, CIDR ranges...) are evaluated for every event of their
//! log source. `tests/index.rs` checks the guarantee against brute-force
//! evaluation on the whole corpus.
//!
//! Only trigger patterns go into the automata: candidates are then evaluated
//! directly, so the automata stay small (fast to build, few hits to report).

use aho_corasick::{AhoCorasick, MatchKind};
use riposte_event::Symbol;
use rustc_hash::FxHashMap;

use crate::detection::Expr;
use crate::matcher::Matcher;
use crate::modifier::fold_bytes;
use crate::rule::Rule;

/// A text an event must contain (case-insensitively) in a field, or in any
/// value for keyword searches (`field: None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Atom {
    field: Option<Symbol>,
    /// Lower-cased.
    bytes: Box<[u8]>,
}

/// Trigger patterns of all rules, and each rule's trigger set.
pub(crate) struct Index {
    /// Patterns by id.
    patterns: Vec<Atom>,
    /// The trigger set of each rule (pattern ids); `None` when it has none.
    pub triggers: Vec<Option<Vec<u32>>>,
}

impl Index {
    pub(crate) fn build(rules: &[Rule]) -> Index {
        let mut ids: FxHashMap<Atom, u32> = FxHashMap::default();
        let mut patterns: Vec<Atom> = Vec::new();
        let triggers = rules
            .iter()
            .map(|rule| {
                let atoms = trigger_set(rule, &rule.detection.expr)?;
                let mut set: Vec<u32> = atoms
                    .into_iter()
                    .map(|atom| {
                        *ids.entry(atom.clone()).or_insert_with(|| {
                            patterns.push(atom);
                            u32::try_from(patterns.len() - 1).unwrap_or(u32::MAX)
                        })
                    })
                    .collect();
                set.sort_unstable();
                set.dedup();
                Some(set)
            })
            .collect();
        Index { patterns, triggers }
    }

    pub(crate) fn pattern_count(&self) -> usize {
        self.patterns.len()
    }
}

/// Atoms of which one is found in every event the expression matches.
fn trigger_set(rule: &Rule, expr: &Expr) -> Option<Vec<Atom>> {
    match expr {
        Expr::Item(index) => {
            let item = &rule.detection.items[*index as usize];
            if item.negate {
                return None;
            }
            let sets = item.matchers.iter().map(|matcher| matcher_atoms(item.field, matcher));
            if item.all { best(sets.collect()) } else { union(sets) }
        }
        Expr::And(children) => best(children.iter().map(|child| trigger_set(rule, child)).collect()),
        Expr::Or(children) => union(children.iter().map(|child| trigger_set(rule, child))),
        Expr::Not(_) | Expr::Const(true) => None,
        // Never matches: no event needs to trigger it.
        Expr::Const(false) => Some(Vec::new()),
    }
}

fn matcher_atoms(field: Option<Symbol>, matcher: &Matcher) -> Option<Vec<Atom>> {
    let atom = |bytes: &[u8]| Atom { field, bytes: fold_bytes(bytes).into_boxed_slice() };
    match matcher {
        // For a glob, `text` is its longest literal run.
        Matcher::Text(pattern) if !pattern.text.is_empty() => Some(vec![atom(&pattern.text)]),
        Matcher::Regex { required, .. } if !required.is_empty() => {
            Some(required.iter().map(|literal| atom(literal)).collect())
        }
        _ => None,
    }
}

fn union(sets: impl Iterator<Item = Option<Vec<Atom>>>) -> Option<Vec<Atom>> {
    let mut all = Vec::new();
    for set in sets {
        for atom in set? {
            if !all.contains(&atom) {
                all.push(atom);
            }
        }
    }
    Some(all)
}

/// The most selective of several sets that must all hold: the one whose
/// weakest pattern is strongest, then the smallest.
fn best(sets: Vec<Option<Vec<Atom>>>) -> Option<Vec<Atom>> {
    let strength = |set: &Vec<Atom>| {
        let weakest = set.iter().map(|atom| selectivity(&atom.bytes)).min().unwrap_or(usize::MAX);
        (weakest, std::cmp::Reverse(set.len()))
    };
    sets.into_iter().flatten().max_by_key(strength)
}

/// How rare a pattern is likely to be: its length, except that short numbers
/// (event ids, logon types) are common in the events of one log source.
fn selectivity(bytes: &[u8]) -> usize {
    if bytes.len() <= 5 && bytes.iter().all(u8::is_ascii_digit) { 1 } else { bytes.len().min(16) }
}

/// The compiled index for the rules of one log-source class.
pub(crate) struct Bucket {
    /// Rules that apply, by index in the engine.
    pub rules: Vec<u32>,
    /// Rules evaluated for every event (no trigger set).
    pub always: Vec<u32>,
    scans: Vec<FieldScan>,
    /// Scan of each field symbol (by `Symbol::index`), `NO_SCAN` when none.
    slot_of: Vec<u16>,
    /// The scan of keyword triggers, over every value of an event.
    pub keywords: Option<FieldScan>,
    /// False when an automaton could not be built: every rule is then
    /// evaluated for every event.
    pub indexed: bool,
}

const NO_SCAN: u16 = u16::MAX;

/// One automaton over the trigger patterns of one field.
pub(crate) struct FieldScan {
    pub automaton: AhoCorasick,
    /// Rules each automaton pattern triggers.
    pub triggers: Vec<Box<[u32]>>,
}

impl Bucket {
    pub(crate) fn build(index: &Index, rules: Vec<u32>) -> Bucket {
        let mut always = Vec::new();
        let mut by_pattern: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for &rule in &rules {
            match &index.triggers[rule as usize] {
                None => always.push(rule),
                Some(set) => {
                    for &pattern in set {
                        by_pattern.entry(pattern).or_default().push(rule);
                    }
                }
            }
        }
        let mut by_field: FxHashMap<Option<Symbol>, Vec<(u32, Vec<u32>)>> = FxHashMap::default();
        for (pattern, rules) in by_pattern {
            by_field.entry(index.patterns[pattern as usize].field).or_default().push((pattern, rules));
        }
        let keyword_patterns = by_field.remove(&None);
        let mut fields: Vec<(Symbol, Vec<(u32, Vec<u32>)>)> =
            by_field.into_iter().filter_map(|(field, patterns)| field.map(|field| (field, patterns))).collect();
        fields.sort_by_key(|(field, _)| *field);
        let slots = fields.iter().map(|(field, _)| field.index()).max().map_or(0, |max| max + 1);
        let mut slot_of = vec![NO_SCAN; slots];
        let mut scans = Vec::with_capacity(fields.len());
        if fields.len() >= usize::from(NO_SCAN) {
            return Bucket::unindexed(rules);
        }
        for (field, patterns) in fields {
            let Some(scan) = FieldScan::build(index, patterns) else {
                return Bucket::unindexed(rules);
            };
            slot_of[field.index()] = u16::try_from(scans.len()).unwrap_or(NO_SCAN);
            scans.push(scan);
        }
        let keywords = match keyword_patterns {
            None => None,
            Some(patterns) => match FieldScan::build(index, patterns) {
                Some(scan) => Some(scan),
                None => return Bucket::unindexed(rules),
            },
        };
        Bucket { rules, always, scans, slot_of, keywords, indexed: true }
    }

    /// A bucket that evaluates every rule for every event.
    fn unindexed(rules: Vec<u32>) -> Bucket {
        Bucket { always: rules.clone(), rules, scans: Vec::new(), slot_of: Vec::new(), keywords: None, indexed: false }
    }

    /// The scan for a field's values.
    #[inline]
    pub(crate) fn scan_for(&self, field: Symbol) -> Option<&FieldScan> {
        match self.slot_of.get(field.index()) {
            Some(&slot) if slot != NO_SCAN => self.scans.get(slot as usize),
            _ => None,
        }
    }

    /// How many patterns the bucket's automata hold, for statistics.
    pub(crate) fn pattern_count(&self) -> usize {
        self.scans.iter().chain(&self.keywords).map(|scan| scan.triggers.len()).sum()
    }
}

impl FieldScan {
    fn build(index: &Index, mut patterns: Vec<(u32, Vec<u32>)>) -> Option<FieldScan> {
        patterns.sort_unstable_by_key(|(pattern, _)| *pattern);
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(patterns.iter().map(|(pattern, _)| &*index.patterns[*pattern as usize].bytes))
            .ok()?;
        let triggers = patterns.into_iter().map(|(_, rules)| rules.into_boxed_slice()).collect();
        Some(FieldScan { automaton, triggers })
    }
}
