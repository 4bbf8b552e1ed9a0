//! The rule index: which rules an event can possibly match, found with one
//! hash lookup or one scan for literals (`grams`) per field value.
//!
//! Guarantee (an over-approximation): for every event, every rule that
//! matches it is a candidate. Each rule gets *clauses*: sets of atoms such
//! that, whenever the rule matches an event, every clause has an atom found
//! in it (`Image|endswith: \x.exe` and `CommandLine|contains: [-a, -b]` in
//! one selection are two clauses; a rule is a candidate only when both are
//! found). An atom is a lower-cased text that a field's value must
//! - equal (`Image: C:\x.exe`): found with a hash lookup of the value;
//! - end with after its last path separator (`Image|endswith: \x.exe`, whose
//!   basename is `x.exe`): a hash lookup of the value's basename;
//! - contain (everything else with a literal): a scan for literals.
//!
//! Rules with no such set (conditions that are only negations, numeric
//! comparisons, CIDR ranges...) are evaluated for every event of their log
//! source. `tests/attack_samples.rs` checks the guarantee against brute-force
//! evaluation on the whole corpus.
//!
//! The structures are per field and shared by every log-source class (built
//! once: on first use, or all at once by `Engine::prepare`); a class only
//! filters the rules a hit names.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use riposte_event::Symbol;
use rustc_hash::FxHashMap;

use super::grams::Grams;
use crate::detection::Expr;
use crate::matcher::Matcher;
use crate::modifier::fold_bytes;
use crate::rule::Rule;
use crate::text::TextKind;

/// Separates values in the joined text of a keyword scan; no atom holds it.
pub(crate) const VALUE_SEPARATOR: u8 = 0;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
enum AtomKind {
    Equals,
    Basename,
    Contains,
}

/// A text an event must hold (lower-cased) in a field, or in any value for
/// keyword searches (`field: None`, always `Contains`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Atom {
    field: Option<Symbol>,
    kind: AtomKind,
    bytes: Box<[u8]>,
}

/// Trigger atoms of all rules, and the structures that find them.
pub(crate) struct Index {
    atoms: Vec<Atom>,
    /// The rule clauses each atom satisfies.
    postings: Vec<Box<[Posting]>>,
    /// What each rule needs to be a candidate.
    pub triggers: Vec<Trigger>,
    /// Per field with atoms: its atoms, and their finders once built.
    slots: Vec<Slot>,
    /// Slot of each field symbol (by `Symbol::index`), `NO_SLOT` when none.
    slot_of: Vec<u32>,
}

const NO_SLOT: u32 = u32::MAX;

/// Longest contains atom, in bytes (longer texts are cut to their end); the
/// length `grams` reads with a stride from. Atoms of 28 bytes (with a stride
/// of 21 for them) took 2% fewer instructions, but a hunt's peak memory grew
/// by a tenth.
const MAX_CONTAINS_ATOM: usize = 20;

/// Most clauses kept for one rule (the strongest; the rest is checked by
/// evaluation).
const MAX_CLAUSES: usize = 4;

/// A clause of a rule that an atom satisfies.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Posting {
    pub rule: u32,
    pub clause: u8,
}

/// What an event must hold for a rule to be a candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The rule matches no event.
    Never,
    /// No atoms: evaluated for every event of its log source.
    Always,
    /// Every clause (a set of atom ids) must have an atom found; the mask has
    /// a bit per clause.
    Clauses { clauses: Vec<Vec<u32>>, full: u8 },
}

/// Most contains atoms for which a presence check runs first (the SIMD
/// prefilter handles up to 64 patterns).
const PRESENCE_CHECK_MAX_ATOMS: usize = 64;

struct Slot {
    atoms: Vec<u32>,
    finder: OnceLock<Finder>,
}

/// Finds the atoms of one field in its values (or keyword atoms in all).
pub(crate) struct Finder {
    equals: FxHashMap<Box<[u8]>, Box<[u32]>>,
    basenames: FxHashMap<Box<[u8]>, Box<[u32]>>,
    /// Contains atoms, and the atom id of each of their literals.
    literals: Option<(Grams, Box<[u32]>)>,
    /// For few atoms, a leftmost automaton that only says whether any occurs:
    /// most text holds no atom at all, and its SIMD prefilter (Teddy) says so
    /// faster than the literals' scan.
    presence: Option<AhoCorasick>,
}

impl Index {
    pub(crate) fn build(rules: &[Rule]) -> Index {
        let mut ids: FxHashMap<Atom, u32> = FxHashMap::default();
        let mut atoms: Vec<Atom> = Vec::new();
        let mut postings: Vec<Vec<Posting>> = Vec::new();
        let triggers = rules
            .iter()
            .enumerate()
            .map(|(rule_index, rule)| {
                let clauses = match need(rule, &rule.detection.expr) {
                    Need::Never => return Trigger::Never,
                    Need::Clauses(clauses) => strongest(clauses),
                };
                let separator = |clause: &Vec<Atom>| {
                    clause.iter().any(|atom| atom.field.is_none() && atom.bytes.contains(&VALUE_SEPARATOR))
                };
                if clauses.is_empty() || clauses.iter().any(separator) {
                    return Trigger::Always;
                }
                let clauses: Vec<Vec<u32>> = clauses
                    .into_iter()
                    .enumerate()
                    .map(|(clause_index, clause)| {
                        let mut ids: Vec<u32> = clause
                            .into_iter()
                            .map(|atom| {
                                *ids.entry(atom.clone()).or_insert_with(|| {
                                    atoms.push(atom);
                                    postings.push(Vec::new());
                                    to_u32(atoms.len() - 1)
                                })
                            })
                            .collect();
                        ids.sort_unstable();
                        ids.dedup();
                        for &atom in &ids {
                            let clause = u8::try_from(clause_index).unwrap_or(u8::MAX);
                            postings[atom as usize].push(Posting { rule: to_u32(rule_index), clause });
                        }
                        ids
                    })
                    .collect();
                let full = u8::try_from((1u32 << clauses.len()) - 1).unwrap_or(u8::MAX);
                Trigger::Clauses { clauses, full }
            })
            .collect();
        // Keyword atoms are found per class (see `Bucket`), field atoms here.
        let mut slots: Vec<Slot> = Vec::new();
        let mut slot_of: Vec<u32> = Vec::new();
        for (id, atom) in atoms.iter().enumerate() {
            let Some(field) = atom.field else { continue };
            if slot_of.len() <= field.index() {
                slot_of.resize(field.index() + 1, NO_SLOT);
            }
            if slot_of[field.index()] == NO_SLOT {
                slot_of[field.index()] = to_u32(slots.len());
                slots.push(Slot { atoms: Vec::new(), finder: OnceLock::new() });
            }
            slots[slot_of[field.index()] as usize].atoms.push(to_u32(id));
        }
        Index { atoms, postings: postings.into_iter().map(Vec::into_boxed_slice).collect(), triggers, slots, slot_of }
    }

    pub(crate) fn pattern_count(&self) -> usize {
        self.atoms.len()
    }

    /// Atoms by field (`*` for keywords): (field, equals, basenames, contains),
    /// most first, for tuning.
    pub(crate) fn field_report(&self) -> Vec<(String, usize, usize, usize)> {
        let mut rows: FxHashMap<String, (usize, usize, usize)> = FxHashMap::default();
        for atom in &self.atoms {
            let row = rows.entry(atom.field.map_or("*", |field| field.as_str()).to_owned()).or_default();
            match atom.kind {
                AtomKind::Equals => row.0 += 1,
                AtomKind::Basename => row.1 += 1,
                AtomKind::Contains => row.2 += 1,
            }
        }
        let mut report: Vec<_> = rows.into_iter().map(|(field, (e, b, c))| (field, e, b, c)).collect();
        report.sort_by(|a, b| (b.1 + b.2 + b.3).cmp(&(a.1 + a.2 + a.3)).then_with(|| a.0.cmp(&b.0)));
        report
    }

    pub(crate) fn postings(&self, atom: u32) -> &[Posting] {
        &self.postings[atom as usize]
    }

    /// The mask of a rule whose clauses are all satisfied.
    #[inline]
    pub(crate) fn full_mask(&self, rule: u32) -> u8 {
        match &self.triggers[rule as usize] {
            Trigger::Clauses { full, .. } => *full,
            Trigger::Never | Trigger::Always => 0,
        }
    }

    /// The slot of a field's atoms, if any rule has one there.
    #[inline]
    pub(crate) fn slot(&self, field: Symbol) -> Option<u32> {
        match self.slot_of.get(field.index()) {
            Some(&slot) if slot != NO_SLOT => Some(slot),
            _ => None,
        }
    }

    /// The finder of a slot, built on first use (or by [`Index::build_finders`]).
    #[inline]
    pub(crate) fn finder(&self, slot: u32) -> &Finder {
        let slot = &self.slots[slot as usize];
        slot.finder.get_or_init(|| Finder::build(&self.atoms, &slot.atoms))
    }

    /// Builds every finder that is not built yet.
    pub(crate) fn build_finders(&self) {
        for slot in 0..self.slots.len() {
            self.finder(to_u32(slot));
        }
    }

    /// Adds the slots in which `rule` has trigger atoms to `slots`, and its
    /// keyword atoms to `keywords`.
    fn trigger_places(&self, rule: u32, slots: &mut Vec<u32>, keywords: &mut Vec<u32>) {
        let Trigger::Clauses { clauses, .. } = &self.triggers[rule as usize] else { return };
        for &atom in clauses.iter().flatten() {
            match self.atoms[atom as usize].field {
                Some(field) => slots.extend(self.slot(field)),
                None => keywords.push(atom),
            }
        }
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl Finder {
    fn build(atoms: &[Atom], ids: &[u32]) -> Finder {
        let mut equals: FxHashMap<Box<[u8]>, Vec<u32>> = FxHashMap::default();
        let mut basenames: FxHashMap<Box<[u8]>, Vec<u32>> = FxHashMap::default();
        let mut contains: Vec<u32> = Vec::new();
        for &id in ids {
            let atom = &atoms[id as usize];
            match atom.kind {
                AtomKind::Equals => equals.entry(atom.bytes.clone()).or_default().push(id),
                AtomKind::Basename => basenames.entry(atom.bytes.clone()).or_default().push(id),
                AtomKind::Contains => contains.push(id),
            }
        }
        let boxed = |map: FxHashMap<Box<[u8]>, Vec<u32>>| {
            map.into_iter().map(|(key, ids)| (key, ids.into_boxed_slice())).collect::<FxHashMap<_, _>>()
        };
        let mut finder = Finder { equals: boxed(equals), basenames: boxed(basenames), literals: None, presence: None };
        if contains.is_empty() {
            return finder;
        }
        let patterns = || contains.iter().map(|&id| &*atoms[id as usize].bytes);
        if contains.len() <= PRESENCE_CHECK_MAX_ATOMS {
            // A contiguous NFA is quick to build (finders are built while
            // hunting); its search is all the presence check needs.
            finder.presence = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(patterns())
                .ok();
        }
        finder.literals = Some((Grams::new(patterns()), contains.into_boxed_slice()));
        finder
    }

    /// Calls `found` with every atom of this field that a value holds, given
    /// lower-cased.
    #[inline]
    pub(crate) fn find(&self, folded: &[u8], mut found: impl FnMut(u32)) {
        if let Some(ids) = self.equals.get(folded) {
            ids.iter().copied().for_each(&mut found);
        }
        if !self.basenames.is_empty() {
            let start = memchr::memrchr2(b'\\', b'/', folded).map_or(0, |at| at + 1);
            if let Some(ids) = self.basenames.get(&folded[start..]) {
                ids.iter().copied().for_each(&mut found);
            }
        }
        self.scan(folded, found);
    }

    /// Scans lower-cased text for contains atoms. (Folding the text and
    /// matching bytes exactly is much faster than matching without case:
    /// Teddy's SIMD and the literals' windows only work on exact bytes.)
    pub(crate) fn scan(&self, haystack: &[u8], mut found: impl FnMut(u32)) {
        if let Some((literals, ids)) = &self.literals
            && self.presence.as_ref().is_none_or(|presence| presence.is_match(haystack))
        {
            literals.find(haystack, &mut |literal| found(ids[literal as usize]));
        }
    }
}

/// What every event matching an expression holds.
enum Need {
    /// No event matches it.
    Never,
    /// Clauses: sets of atoms, each with an atom found in the event; none
    /// when nothing is known.
    Clauses(Vec<Vec<Atom>>),
}

fn need(rule: &Rule, expr: &Expr) -> Need {
    match expr {
        Expr::Item(index) => {
            let item = &rule.detection.items[*index as usize];
            if item.negate {
                return Need::Clauses(Vec::new());
            }
            let mut sets = item.matchers.iter().map(|matcher| matcher_atoms(item.field, matcher));
            if item.all {
                // Every value holds: each one that has atoms is a clause.
                return Need::Clauses(sets.flatten().collect());
            }
            if item.matchers.is_empty() {
                return Need::Never;
            }
            match sets.try_fold(Vec::new(), |mut union, set| {
                merge_into(&mut union, set?);
                Some(union)
            }) {
                Some(union) => Need::Clauses(vec![union]),
                None => Need::Clauses(Vec::new()),
            }
        }
        Expr::And(children) => {
            let mut clauses = Vec::new();
            for child in children {
                match need(rule, child) {
                    Need::Never => return Need::Never,
                    Need::Clauses(more) => clauses.extend(more),
                }
            }
            Need::Clauses(clauses)
        }
        Expr::Or(children) => {
            // One clause: the union of every child's strongest clause.
            let mut union = Vec::new();
            let mut possible = false;
            for child in children {
                match need(rule, child) {
                    Need::Never => {}
                    Need::Clauses(clauses) => {
                        possible = true;
                        match strongest(clauses).into_iter().next() {
                            Some(best) => merge_into(&mut union, best),
                            None => return Need::Clauses(Vec::new()),
                        }
                    }
                }
            }
            if possible { Need::Clauses(vec![union]) } else { Need::Never }
        }
        Expr::Not(_) | Expr::Const(true) => Need::Clauses(Vec::new()),
        Expr::Const(false) => Need::Never,
    }
}

/// Adds the atoms of `set` that `union` does not hold yet, each once (a
/// merged matcher's own atoms can repeat: `endswith` `\a.exe` and `/a.exe`
/// have one basename).
fn merge_into(union: &mut Vec<Atom>, set: Vec<Atom>) {
    let mut seen: rustc_hash::FxHashSet<Atom> = union.iter().cloned().collect();
    union.extend(set.into_iter().filter(|atom| seen.insert(atom.clone())));
}

/// The strongest clauses first, at most [`MAX_CLAUSES`]; weak ones (that
/// would be found in most events) only when there is nothing better.
fn strongest(clauses: Vec<Vec<Atom>>) -> Vec<Vec<Atom>> {
    // Each clause's weakest atom once (rating atoms is the costly part of
    // indexing); the strongest first, then the fewer atoms the better.
    let mut rated: Vec<(usize, Vec<Atom>)> = clauses
        .into_iter()
        .map(|clause| (clause.iter().map(selectivity).min().unwrap_or(usize::MAX), clause))
        .collect();
    rated.sort_by_key(|(weakest, clause)| (std::cmp::Reverse(*weakest), clause.len()));
    rated.dedup_by(|later, earlier| later.1 == earlier.1);
    rated.truncate(MAX_CLAUSES);
    if let Some((first, _)) = rated.first() {
        let floor = WEAK.min(*first);
        let keep = rated.iter().take_while(|(weakest, clause)| clause == &rated[0].1 || *weakest >= floor).count();
        rated.truncate(keep.max(1));
    }
    rated.into_iter().map(|(_, clause)| clause).collect()
}

/// Clauses whose weakest atom is below this selectivity are not worth the
/// hits they cause, unless they are a rule's best.
const WEAK: usize = 4;

fn matcher_atoms(field: Option<Symbol>, matcher: &Matcher) -> Option<Vec<Atom>> {
    let contains = |bytes: &[u8]| {
        // Any part of a text is found wherever the text is: long texts are
        // cut, which keeps finders small and quick to build. Their end is
        // kept: paths and command lines share their beginnings
        // (`c:\windows\system32\`) and differ at the end.
        let mut folded = fold_bytes(bytes);
        folded.drain(..folded.len().saturating_sub(MAX_CONTAINS_ATOM));
        Atom { field, kind: AtomKind::Contains, bytes: folded.into_boxed_slice() }
    };
    let placed = |kind: TextKind, text: &[u8]| {
        let folded = fold_bytes(text);
        match (kind, field) {
            (TextKind::Equals, Some(_)) => Atom { field, kind: AtomKind::Equals, bytes: folded.into_boxed_slice() },
            (TextKind::EndsWith, Some(_)) => match memchr::memrchr2(b'\\', b'/', &folded) {
                Some(at) if at + 1 < folded.len() => {
                    Atom { field, kind: AtomKind::Basename, bytes: folded[at + 1..].into() }
                }
                _ => contains(text),
            },
            // For a glob, `text` is its longest literal run.
            _ => contains(text),
        }
    };
    match matcher {
        Matcher::Text(pattern) if !pattern.text.is_empty() => Some(vec![placed(pattern.kind, &pattern.text)]),
        Matcher::AnchoredAny(any) => Some(any.patterns().map(|(kind, text)| placed(kind, text)).collect()),
        Matcher::ContainsAny(any) => Some(any.texts.iter().map(|text| contains(text)).collect()),
        Matcher::Regex { required, .. } if !required.is_empty() => {
            Some(required.iter().map(|literal| contains(literal)).collect())
        }
        _ => None,
    }
}

/// Texts that most Windows events hold somewhere (system folders, common
/// programs and extensions): an atom inside one of them is weak, whatever
/// its length (`\windows\` is nine bytes and in nearly every path).
const COMMON_TEXTS: &[&str] = &[
    r"c:\windows\system32\",
    r"c:\windows\syswow64\",
    r"c:\windows\winsxs\",
    r"c:\program files (x86)\",
    r"c:\program files\",
    r"c:\programdata\",
    r"c:\users\public\",
    r"\appdata\local\temp\",
    r"\appdata\roaming\",
    r"\microsoft\windows\",
    r"\windows\temp\",
    r"\device\harddiskvolume",
    r"nt authority\system",
    r"hklm\software\microsoft\windows\currentversion\",
    r"hklm\system\currentcontrolset\services\",
    r"\registry\machine\",
    r"svchost.exe -k ",
    r"\windows\explorer.exe",
    r"\windowspowershell\v1.0\powershell.exe",
    r"\cmd.exe",
    r"\conhost.exe",
    r"\rundll32.exe",
    ".dll",
];

/// How rare an atom is likely to be: its length, except that short numbers
/// (event ids, logon types) are common in the events of one log source; a
/// whole value or basename is rarer than the same text anywhere in a value.
fn selectivity(atom: &Atom) -> usize {
    let bytes = &atom.bytes;
    if bytes.len() <= 5 && bytes.iter().all(u8::is_ascii_digit) {
        return 1;
    }
    if in_common_text(bytes) {
        return 2;
    }
    let length = bytes.len().min(16);
    match atom.kind {
        AtomKind::Equals | AtomKind::Basename => length + 4,
        AtomKind::Contains => length,
    }
}

/// Whether `bytes` is part of one of [`COMMON_TEXTS`]: a lookup among all
/// their parts (a few thousand), since every atom of every rule asks.
fn in_common_text(bytes: &[u8]) -> bool {
    static PARTS: OnceLock<rustc_hash::FxHashSet<&'static [u8]>> = OnceLock::new();
    let parts = PARTS.get_or_init(|| {
        let mut parts = rustc_hash::FxHashSet::default();
        for text in COMMON_TEXTS.iter().map(|text| text.as_bytes()) {
            for start in 0..text.len() {
                for end in start + 1..=text.len() {
                    parts.insert(&text[start..end]);
                }
            }
        }
        parts
    });
    parts.contains(bytes)
}

/// Whether `text` holds `part`: compared in place, since both are short
/// (a searcher prepared for `part` would cost more than the search).
fn holds(text: &[u8], part: &[u8]) -> bool {
    part.is_empty() || text.windows(part.len()).any(|window| window == part)
}

/// The rules of one log-source class, and where their triggers are.
pub(crate) struct Bucket {
    /// Rules that apply, by index in the engine.
    pub rules: Vec<u32>,
    /// Whether each engine rule applies (a bit per rule).
    applies: Box<[u64]>,
    /// Rules evaluated for every event (no trigger set).
    pub always: Vec<u32>,
    /// Whether the class's rules have atoms in each slot.
    slots: Box<[bool]>,
    /// The keyword atoms of the class's rules: few, unlike field atoms, so
    /// each class has its own finder.
    pub keywords: Option<Finder>,
    /// Finds a part of every keyword atom (three of its bytes in any case,
    /// or two that are neither letters nor digits) in the text of an
    /// event's values as it is (see `Event::values_text`): where none is,
    /// the event holds no keyword and the search of each value is skipped.
    /// `None` when that cannot be told so (too many atoms, one that is not
    /// ASCII, or one a boolean's `true` / `false` could hold: they are not
    /// in that text).
    pub keyword_screen: Option<aho_corasick::packed::Searcher>,
    /// Names the keyword finder in the value cache (never 0).
    pub keyword_id: u32,
}

static NEXT_KEYWORD_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Bytes of each keyword atom the keyword screen looks for.
const SCREEN_WINDOW: usize = 3;

/// More texts common in events, for choosing the keyword screen's windows.
const SCREEN_COMMON_TEXTS: &[&str] = &[".com", ".exe", ".sys", ".dll", ".log", ".txt", " program", " process", " pro"];

/// The keyword screen of a class (see `Bucket::keyword_screen`). Each atom is
/// looked for by its window with the fewest letters, written in every case
/// (the screen reads the values as they are, not lower-cased): three bytes,
/// or two with neither letters nor digits, so that the `::` many keywords
/// share is one pattern where `s::`, `c::`... would be two each. Values are
/// mostly words, numbers and paths, so a window of punctuation is rarely
/// there when its atom is not.
fn keyword_screen<'a>(atoms: impl Iterator<Item = &'a [u8]>) -> Option<aho_corasick::packed::Searcher> {
    let mut windows: Vec<Vec<u8>> = Vec::new();
    for atom in atoms {
        if atom.is_empty() || !atom.is_ascii() || ["true", "false"].iter().any(|text| holds(text.as_bytes(), atom)) {
            return None;
        }
        let letter_free_pairs = atom.windows(2).filter(|pair| !pair.iter().any(u8::is_ascii_alphanumeric));
        let window = atom
            .windows(SCREEN_WINDOW.min(atom.len()))
            .chain(letter_free_pairs)
            .enumerate()
            .min_by_key(|(offset, window)| {
                let common =
                    in_common_text(window) || SCREEN_COMMON_TEXTS.iter().any(|common| holds(common.as_bytes(), window));
                let letters = window.iter().filter(|byte| byte.is_ascii_alphabetic()).count();
                (letters, common, std::cmp::Reverse(window.len()), std::cmp::Reverse(*offset))
            })
            .map(|(_, window)| window)?;
        // Every way of writing its letters, upper or lower (the text is
        // read as it is: lower-casing all of it would cost more than the
        // search it saves).
        let letters: Vec<usize> = (0..window.len()).filter(|&at| window[at].is_ascii_alphabetic()).collect();
        for cases in 0u32..(1 << letters.len()) {
            let mut variant = window.to_vec();
            for (bit, &at) in letters.iter().enumerate() {
                if cases & (1 << bit) != 0 {
                    variant[at] = variant[at].to_ascii_uppercase();
                }
            }
            windows.push(variant);
        }
    }
    windows.sort_unstable();
    windows.dedup();
    aho_corasick::packed::Config::new().builder().extend(windows).build()
}

impl Bucket {
    pub(crate) fn build(index: &Index, rules: Vec<u32>) -> Bucket {
        let mut applies = vec![0u64; index.triggers.len().div_ceil(64)].into_boxed_slice();
        let mut slots = vec![false; index.slots.len()].into_boxed_slice();
        let mut always = Vec::new();
        let (mut fields, mut keywords) = (Vec::new(), Vec::new());
        for &rule in &rules {
            applies[rule as usize / 64] |= 1 << (rule % 64);
            if index.triggers[rule as usize] == Trigger::Always {
                always.push(rule);
            }
            index.trigger_places(rule, &mut fields, &mut keywords);
        }
        for slot in fields {
            slots[slot as usize] = true;
        }
        keywords.sort_unstable();
        keywords.dedup();
        let keyword_screen = keyword_screen(keywords.iter().map(|&atom| &*index.atoms[atom as usize].bytes));
        let keywords = (!keywords.is_empty()).then(|| Finder::build(&index.atoms, &keywords));
        let keyword_id = NEXT_KEYWORD_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Bucket { rules, applies, always, slots, keywords, keyword_screen, keyword_id }
    }

    #[inline]
    pub(crate) fn applies(&self, rule: u32) -> bool {
        self.applies.get(rule as usize / 64).is_some_and(|word| word & (1 << (rule % 64)) != 0)
    }

    /// Whether values of the slot's field can trigger a rule of this class.
    #[inline]
    pub(crate) fn reads(&self, slot: u32) -> bool {
        self.slots.get(slot as usize).copied().unwrap_or(false)
    }

    /// How many slots the class reads, for statistics.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.iter().filter(|read| **read).count()
    }
}
