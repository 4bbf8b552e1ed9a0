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
//! The same scan also answers every case-insensitive equals / startswith /
//! endswith / contains matcher of the candidates: a hit records whether the
//! pattern was found at the start, at the end, or as the whole value.

use aho_corasick::{AhoCorasick, MatchKind};
use riposte_event::Symbol;
use rustc_hash::FxHashMap;

use crate::detection::Expr;
use crate::matcher::{Matcher, PatternId};
use crate::modifier::fold_bytes;
use crate::rule::Rule;
use crate::text::TextKind;

/// A text pattern of the index.
pub(crate) struct Pattern {
    /// `None` for keyword patterns (searched in every value).
    pub field: Option<Symbol>,
    /// Lower-cased.
    pub bytes: Box<[u8]>,
}

/// Patterns of all rules, and each rule's patterns and trigger set.
pub(crate) struct Index {
    pub patterns: Vec<Pattern>,
    /// Every pattern a rule's matchers read, by rule.
    pub rule_patterns: Vec<Vec<PatternId>>,
    /// The trigger set of each rule; `None` when it has none.
    pub triggers: Vec<Option<Vec<PatternId>>>,
}

impl Index {
    /// Gives every indexable matcher of `rules` its pattern id.
    pub(crate) fn build(rules: &mut [Rule]) -> Index {
        let mut ids: FxHashMap<(Option<Symbol>, Box<[u8]>), PatternId> = FxHashMap::default();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut intern = |field: Option<Symbol>, bytes: Vec<u8>| -> Option<PatternId> {
            if bytes.is_empty() {
                return None;
            }
            let key = (field, bytes.into_boxed_slice());
            if let Some(id) = ids.get(&key) {
                return Some(*id);
            }
            let id = PatternId::try_from(patterns.len()).ok()?;
            patterns.push(Pattern {
                field,
                bytes: key.1.clone(),
            });
            ids.insert(key, id);
            Some(id)
        };
        let mut rule_patterns = Vec::with_capacity(rules.len());
        for rule in rules.iter_mut() {
            let mut used = Vec::new();
            for item in &mut rule.detection.items {
                let field = item.field;
                for matcher in &mut item.matchers {
                    match matcher {
                        Matcher::Text(text) => {
                            text.index = intern(field, fold_bytes(&text.pattern.text));
                            used.extend(text.index);
                        }
                        Matcher::Regex {
                            required, index, ..
                        } => {
                            *index = required
                                .iter()
                                .filter_map(|literal| intern(field, literal.clone()))
                                .collect();
                            if index.len() != required.len() {
                                index.clear();
                            }
                            used.extend(index.iter().copied());
                        }
                        _ => {}
                    }
                }
            }
            used.sort_unstable();
            used.dedup();
            rule_patterns.push(used);
        }
        let triggers = rules
            .iter()
            .map(|rule| trigger_set(rule, &rule.detection.expr, &patterns))
            .collect();
        Index {
            patterns,
            rule_patterns,
            triggers,
        }
    }
}

/// Patterns of which one is found in every event the expression matches.
fn trigger_set(rule: &Rule, expr: &Expr, patterns: &[Pattern]) -> Option<Vec<PatternId>> {
    match expr {
        Expr::Item(index) => {
            let item = &rule.detection.items[*index as usize];
            if item.negate {
                return None;
            }
            let sets = item.matchers.iter().map(matcher_triggers);
            if item.all {
                best(sets.collect(), patterns)
            } else {
                union(sets)
            }
        }
        Expr::And(children) => best(
            children
                .iter()
                .map(|child| trigger_set(rule, child, patterns))
                .collect(),
            patterns,
        ),
        Expr::Or(children) => union(
            children
                .iter()
                .map(|child| trigger_set(rule, child, patterns)),
        ),
        Expr::Not(_) | Expr::Const(true) => None,
        // Never matches: no event needs to trigger it.
        Expr::Const(false) => Some(Vec::new()),
    }
}

fn matcher_triggers(matcher: &Matcher) -> Option<Vec<PatternId>> {
    match matcher {
        Matcher::Text(text) => text.index.map(|id| vec![id]),
        Matcher::Regex { index, .. } if !index.is_empty() => Some(index.clone()),
        _ => None,
    }
}

fn union(sets: impl Iterator<Item = Option<Vec<PatternId>>>) -> Option<Vec<PatternId>> {
    let mut all = Vec::new();
    for set in sets {
        all.extend(set?);
    }
    all.sort_unstable();
    all.dedup();
    Some(all)
}

/// The most selective of several sets that must all hold: the one whose
/// weakest pattern is strongest.
fn best(sets: Vec<Option<Vec<PatternId>>>, patterns: &[Pattern]) -> Option<Vec<PatternId>> {
    let strength = |set: &Vec<PatternId>| {
        let weakest = set
            .iter()
            .map(|&id| selectivity(&patterns[id as usize].bytes))
            .min()
            .unwrap_or(usize::MAX);
        (weakest, std::cmp::Reverse(set.len()))
    };
    sets.into_iter().flatten().max_by_key(strength)
}

/// How rare a pattern is likely to be: its length, except that short numbers
/// (event ids, logon types) are common in the events of one log source.
fn selectivity(bytes: &[u8]) -> usize {
    if bytes.len() <= 5 && bytes.iter().all(u8::is_ascii_digit) {
        1
    } else {
        bytes.len().min(16)
    }
}

/// The compiled index for the rules of one log-source class.
pub(crate) struct Bucket {
    /// Rules that apply, by index in the engine.
    pub rules: Vec<u32>,
    /// Rules evaluated for every event (no trigger set).
    pub always: Vec<u32>,
    pub scans: Vec<FieldScan>,
    /// Scan of each field symbol (by `Symbol::index`), `NO_SCAN` when none.
    slot_of: Vec<u16>,
    /// The keyword scan for fields with no scan of their own.
    pub keywords: Option<FieldScan>,
    /// False when an automaton could not be built: every rule is then
    /// evaluated directly, without the scan's answers.
    pub indexed: bool,
}

const NO_SCAN: u16 = u16::MAX;

/// One automaton over the patterns of one field (and the keyword patterns).
pub(crate) struct FieldScan {
    pub automaton: AhoCorasick,
    /// Pattern id of each automaton pattern.
    pub ids: Vec<PatternId>,
    /// Whether each automaton pattern is a keyword pattern.
    pub keyword: Vec<bool>,
    /// Rules each automaton pattern triggers.
    pub triggers: Vec<Box<[u32]>>,
}

impl Bucket {
    pub(crate) fn build(index: &Index, rules: Vec<u32>) -> Bucket {
        let mut by_field: FxHashMap<Symbol, Vec<PatternId>> = FxHashMap::default();
        let mut keywords: Vec<PatternId> = Vec::new();
        for &rule in &rules {
            for &id in &index.rule_patterns[rule as usize] {
                match index.patterns[id as usize].field {
                    Some(field) => by_field.entry(field).or_default().push(id),
                    None => keywords.push(id),
                }
            }
        }
        keywords.sort_unstable();
        keywords.dedup();
        let mut fields: Vec<(Symbol, Vec<PatternId>)> = by_field.into_iter().collect();
        fields.sort_by_key(|(field, _)| *field);
        let mut always = Vec::new();
        let mut triggered: FxHashMap<PatternId, Vec<u32>> = FxHashMap::default();
        for &rule in &rules {
            match &index.triggers[rule as usize] {
                None => always.push(rule),
                Some(set) => {
                    for &id in set {
                        triggered.entry(id).or_default().push(rule);
                    }
                }
            }
        }
        let scan = |ids: Vec<PatternId>| FieldScan::build(index, ids, &keywords, &triggered);
        let slots = fields
            .iter()
            .map(|(field, _)| field.index())
            .max()
            .map_or(0, |max| max + 1);
        let mut slot_of = vec![NO_SCAN; slots];
        let mut scans = Vec::with_capacity(fields.len());
        let mut built = fields.len() < usize::from(NO_SCAN);
        for (field, mut ids) in fields {
            ids.sort_unstable();
            ids.dedup();
            slot_of[field.index()] = u16::try_from(scans.len()).unwrap_or(NO_SCAN);
            match scan(ids) {
                Some(field_scan) => scans.push(field_scan),
                None => built = false,
            }
        }
        let keyword_scan = if keywords.is_empty() {
            None
        } else {
            scan(Vec::new())
        };
        if !built || (!keywords.is_empty() && keyword_scan.is_none()) {
            return Bucket::unindexed(rules);
        }
        Bucket {
            rules,
            always,
            scans,
            slot_of,
            keywords: keyword_scan,
            indexed: true,
        }
    }

    /// A bucket that evaluates every rule directly.
    fn unindexed(rules: Vec<u32>) -> Bucket {
        Bucket {
            always: rules.clone(),
            rules,
            scans: Vec::new(),
            slot_of: Vec::new(),
            keywords: None,
            indexed: false,
        }
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
        self.scans
            .iter()
            .chain(&self.keywords)
            .map(|scan| scan.ids.len())
            .sum()
    }
}

impl FieldScan {
    fn build(
        index: &Index,
        mut ids: Vec<PatternId>,
        keywords: &[PatternId],
        triggered: &FxHashMap<PatternId, Vec<u32>>,
    ) -> Option<FieldScan> {
        ids.extend_from_slice(keywords);
        let keyword: Vec<bool> = ids
            .iter()
            .map(|&id| index.patterns[id as usize].field.is_none())
            .collect();
        let triggers = ids
            .iter()
            .map(|id| {
                triggered
                    .get(id)
                    .map(|rules| rules.clone().into_boxed_slice())
                    .unwrap_or_default()
            })
            .collect();
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(ids.iter().map(|&id| &*index.patterns[id as usize].bytes))
            .ok()?;
        Some(FieldScan {
            automaton,
            ids,
            keyword,
            triggers,
        })
    }
}

/// What a pattern hit says about its position, as bit flags.
pub(crate) const ANYWHERE: u8 = 1;
pub(crate) const AT_START: u8 = 2;
pub(crate) const AT_END: u8 = 4;
pub(crate) const WHOLE: u8 = 8;

/// The flag a text matcher of this kind needs.
pub(crate) fn needed_flag(kind: TextKind) -> u8 {
    match kind {
        TextKind::Equals => WHOLE,
        TextKind::StartsWith => AT_START,
        TextKind::EndsWith => AT_END,
        TextKind::Contains | TextKind::Glob => ANYWHERE,
    }
}
