//! Per-event work: collecting candidate rules from the index, evaluating them.

use riposte_event::{Event, Symbol, Value};

use super::index::{Bucket, Index, VALUE_SEPARATOR};
use crate::detection::Expr;
use crate::matcher::Buffers;
use crate::modifier::Item;
use crate::rule::Rule;
use crate::text::{fold_append, fold_into};

/// Per-event working state, reused from event to event (no allocation once
/// warm).
#[derive(Default)]
pub(crate) struct State {
    generation: u32,
    /// The generation in which each rule was last touched.
    rule_marks: Vec<u32>,
    /// The clauses of each rule found so far in this event (valid when its
    /// mark is the current generation).
    rule_masks: Vec<u8>,
    pub candidates: Vec<u32>,
    folded: String,
    /// The values of an event the cache does not keep (empty or very long),
    /// folded and joined for the keyword scan.
    joined: Vec<u8>,
    buffers: Buffers,
    pub values: ValueCache,
}

/// The atoms found in recently scanned field values. Log values repeat
/// (the same images, command lines and hashes again and again), and a hash
/// of a value is much cheaper than scanning it for thousands of literals.
/// Direct-mapped and bounded: a value displaces whatever was in its place.
#[derive(Default)]
pub(crate) struct ValueCache {
    entries: Vec<CachedValue>,
    /// Entries of another generation are empty (their buffers kept).
    generation: u32,
}

#[derive(Default)]
struct CachedValue {
    generation: u32,
    key: CacheKey,
    hash: u64,
    value: Vec<u8>,
    atoms: Vec<u32>,
}

/// What a cached value was searched for: a field's atoms (its slot, or
/// `u32::MAX` for none) and a class's keyword atoms (its id, or 0).
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
struct CacheKey {
    slot: u32,
    keywords: u32,
}

/// Entries in each thread's cache (a power of two).
const VALUE_CACHE_ENTRIES: usize = 4096;
/// Values longer than this are scanned: it bounds the cache's memory.
const VALUE_CACHE_MAX_LEN: usize = 1024;

impl ValueCache {
    /// Forgets every value (for a new engine, or to measure a cold start).
    pub(crate) fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.entries.iter_mut().for_each(|entry| entry.generation = 0);
            self.generation = 1;
        }
    }

    /// Calls `add` with the atoms of the slot's finder in `value`, from the
    /// cache or by running `find` (which reports to its argument).
    #[inline]
    fn find(&mut self, key: CacheKey, value: &str, find: impl FnOnce(&mut dyn FnMut(u32)), add: &mut impl FnMut(u32)) {
        let value = value.as_bytes();
        if self.entries.is_empty() {
            self.entries.resize_with(VALUE_CACHE_ENTRIES, CachedValue::default);
            self.generation = 1;
        }
        let hash = {
            let mut hasher = rustc_hash::FxHasher::default();
            std::hash::Hasher::write(&mut hasher, value);
            std::hash::Hash::hash(&key, &mut hasher);
            std::hash::Hasher::finish(&hasher)
        };
        let entry = &mut self.entries[(hash as usize) & (VALUE_CACHE_ENTRIES - 1)];
        if entry.generation != self.generation || entry.hash != hash || entry.key != key || entry.value != value {
            entry.atoms.clear();
            find(&mut |atom| entry.atoms.push(atom));
            entry.generation = self.generation;
            entry.hash = hash;
            entry.key = key;
            entry.value.clear();
            entry.value.extend_from_slice(value);
        }
        entry.atoms.iter().copied().for_each(add);
    }
}

/// Whether `text` holds a character other than ASCII that lower-cases to
/// ASCII letters (`İ` to `i` and a combining dot, the Kelvin sign `K` to
/// `k`): in a text without them, an ASCII text occurs lower-cased exactly
/// where it occurs in any case.
fn folds_into_ascii(text: &str) -> bool {
    const DOTTED_CAPITAL_I: &str = "\u{130}";
    const KELVIN_SIGN: &str = "\u{212A}";
    !text.is_ascii()
        && memchr::memchr2_iter(DOTTED_CAPITAL_I.as_bytes()[0], KELVIN_SIGN.as_bytes()[0], text.as_bytes()).any(|at| {
            let rest = &text.as_bytes()[at..];
            rest.starts_with(DOTTED_CAPITAL_I.as_bytes()) || rest.starts_with(KELVIN_SIGN.as_bytes())
        })
}

impl State {
    /// Indexes where each field of a new event is (before its class is
    /// known: the class key reads it).
    pub(crate) fn index_fields(&mut self, event: &Event) {
        self.buffers.fields.index(event);
    }

    /// The first value of a field of the event being indexed or matched.
    pub(crate) fn first_value<'e>(&self, event: &'e Event, field: Symbol) -> Option<Value<'e>> {
        self.buffers.fields.first(event, field)
    }

    /// Starts matching the event indexed by [`State::index_fields`] up to
    /// position `indexed` (aliases were added after it).
    pub(crate) fn begin(&mut self, rules: usize, event: &Event, indexed: usize) {
        if self.rule_marks.len() < rules {
            self.rule_marks.resize(rules, 0);
            self.rule_masks.resize(rules, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.rule_marks.fill(0);
            self.generation = 1;
        }
        self.candidates.clear();
        self.buffers.continue_event(event, indexed);
    }

    /// Makes a rule without clauses a candidate.
    fn add_candidate(&mut self, rule: u32) {
        let mark = &mut self.rule_marks[rule as usize];
        if *mark != self.generation {
            *mark = self.generation;
            self.candidates.push(rule);
        }
    }

    /// Collects the candidate rules of `bucket` for `event`, in rule order.
    pub(crate) fn collect_candidates(&mut self, index: &Index, bucket: &Bucket, event: &Event) {
        let State { generation, rule_marks, rule_masks, candidates, folded, joined, values, .. } = self;
        let mut add = |atom: u32| {
            for posting in index.postings(atom) {
                let rule = posting.rule as usize;
                if !bucket.applies(posting.rule) {
                    continue;
                }
                if rule_marks[rule] != *generation {
                    rule_marks[rule] = *generation;
                    rule_masks[rule] = 0;
                }
                let mask = rule_masks[rule] | (1 << posting.clause);
                if mask != rule_masks[rule] {
                    rule_masks[rule] = mask;
                    if mask == index.full_mask(posting.rule) {
                        candidates.push(posting.rule);
                    }
                }
            }
        };
        // Most events hold no keyword anywhere: one scan of the text of all
        // their values says so for much less than a search of each value.
        let keywords = bucket.keywords.as_ref().filter(|_| {
            bucket.keyword_screen.as_ref().is_none_or(|screen| {
                let text = event.values_text();
                folds_into_ascii(text) || screen.find(text).is_some()
            })
        });
        joined.clear();
        for position in 0..event.raw_len() {
            let slot = index.slot(event.symbol_at(position)).filter(|&slot| bucket.reads(slot));
            // Keyword searches read the event's own values, not aliases.
            let keywords = keywords.filter(|_| !event.is_alias_at(position));
            if slot.is_none() && keywords.is_none() {
                continue;
            }
            let Some(text) = event.value_at(position).as_text() else { continue };
            let finder = slot.map(|slot| index.finder(slot));
            // Short values are kept too: even for a few bytes, a hash and a
            // comparison cost less than the finder's passes over them.
            if (1..=VALUE_CACHE_MAX_LEN).contains(&text.len()) {
                // One entry for both searches: a repeated value is neither
                // folded nor scanned again.
                let key =
                    CacheKey { slot: slot.unwrap_or(u32::MAX), keywords: keywords.map_or(0, |_| bucket.keyword_id) };
                let search = |found: &mut dyn FnMut(u32)| {
                    fold_into(text, folded);
                    if let Some(keywords) = keywords {
                        keywords.scan(folded.as_bytes(), &mut *found);
                    }
                    if let Some(finder) = finder {
                        finder.find(folded.as_bytes(), found);
                    }
                };
                values.find(key, text, search, &mut add);
            } else {
                // Scanned for keywords together, after the loop.
                let start = joined.len();
                fold_append(text, joined);
                if let Some(finder) = finder {
                    finder.find(&joined[start..], &mut add);
                }
                if keywords.is_some() {
                    joined.push(VALUE_SEPARATOR);
                } else {
                    joined.truncate(start);
                }
            }
        }
        if let Some(finder) = keywords
            && !joined.is_empty()
        {
            finder.scan(joined, &mut add);
        }
        for &rule in &bucket.always {
            self.add_candidate(rule);
        }
        self.candidates.sort_unstable();
    }

    /// Whether `rule` matches `event`.
    pub(crate) fn eval_rule(&mut self, rule: &Rule, event: &Event) -> bool {
        self.eval_expr(rule, &rule.detection.expr, event)
    }

    fn eval_expr(&mut self, rule: &Rule, expr: &Expr, event: &Event) -> bool {
        match expr {
            Expr::Item(index) => self.eval_item(&rule.detection.items[*index as usize], event),
            Expr::And(children) => children.iter().all(|child| self.eval_expr(rule, child, event)),
            Expr::Or(children) => children.iter().any(|child| self.eval_expr(rule, child, event)),
            Expr::Not(inner) => !self.eval_expr(rule, inner, event),
            Expr::Const(value) => *value,
        }
    }

    fn eval_item(&mut self, item: &Item, event: &Event) -> bool {
        let buffers = &mut self.buffers;
        let hit = if item.all {
            item.matchers.iter().all(|matcher| matcher.eval(event, item.field, buffers))
        } else {
            item.matchers.iter().any(|matcher| matcher.eval(event, item.field, buffers))
        };
        hit != item.negate
    }
}

#[cfg(test)]
mod tests {
    use riposte_event::Event;

    use super::folds_into_ascii;
    use crate::{EngineBuilder, Mapping};

    /// Whether the rule matches the event, with the index and without.
    fn matched(rule: &str, event: &Event) -> (bool, bool) {
        let mut builder = EngineBuilder::new(Mapping::builtin());
        builder.add_file("rule.yml", rule);
        let (engine, report) = builder.build(|_| Ok(()));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let mut scratch = engine.new_scratch();
        let (mut indexed, mut unindexed) = (Vec::new(), Vec::new());
        engine.matches(&mut event.clone(), &mut scratch, &mut indexed);
        engine.matches_unindexed(&mut event.clone(), &mut scratch, &mut unindexed);
        (!indexed.is_empty(), !unindexed.is_empty())
    }

    fn security(command_line: &str) -> Event {
        Event::new()
            .with("Channel", "Security")
            .with("EventID", 4688)
            .with("SubjectUserName", "alice")
            .with("CommandLine", command_line)
    }

    const MIMIKATZ: &str = r#"
title: Keywords
logsource: {product: windows}
detection:
  keywords:
    - 'kerberos::golden'
    - 'sekurlsa::'
    - '\mimilib.dll'
    - '.kirbi'
  condition: keywords
"#;

    #[test]
    fn keyword_screen_passes_every_event_that_holds_a_keyword() {
        for (text, expected) in [
            ("mimikatz.exe SEKURLSA::LogonPasswords exit", true),
            (r"C:\Temp\MimiLib.DLL", true),
            // Not ASCII, but nothing in it folds into ASCII: the screen reads it.
            ("Überprüfung: Kerberos::Golden /user:Ådmin", true),
            // The Kelvin sign lower-cases to `k`, and the screen looks for
            // `.ki` (of `.kirbi`): it cannot read this text.
            ("ticket.\u{212A}irbi", true),
            ("ticket.txt", false),
            // Past the screen (`::`), found to hold no keyword.
            ("fe80::1%11", false),
            ("\u{130}nvoke sekurlsa::pth", true),
            ("kerberos ticket for golden.example", false),
            ("Überprüfung ohne Befund", false),
            ("sekurlsa", false),
        ] {
            assert_eq!(matched(MIMIKATZ, &security(text)), (expected, expected), "{text:?}");
        }
        // Keywords are found in a value, not across two, nor in a name.
        let split = security("sekurlsa").with("Other", "::logonpasswords");
        assert_eq!(matched(MIMIKATZ, &split), (false, false));
        let named = security("nothing").with("sekurlsa::logonpasswords", "nothing");
        assert_eq!(matched(MIMIKATZ, &named), (false, false));
    }

    #[test]
    fn a_scratch_used_by_another_engine_reads_the_event_class_again() {
        let engine = |rules: &[&str]| {
            let mut builder = EngineBuilder::new(Mapping::builtin());
            for (at, rule) in rules.iter().enumerate() {
                builder.add_file(&format!("rule{at}.yml"), rule);
            }
            builder.build(|_| Ok(())).0
        };
        let logsource = "logsource: {product: windows, service: security}";
        let alice = format!("title: Alice\n{logsource}\ndetection:\n  s: {{SubjectUserName: alice}}\n  condition: s\n");
        let sysmon = "title: Sysmon\nlogsource: {product: windows, service: sysmon}\ndetection:\n  s: {Image: x}\n  condition: s\n";
        let first = engine(&[&alice]);
        // The same rule, second in a set whose first rule is of another class.
        let second = engine(&[sysmon, &alice]);
        let mut scratch = first.new_scratch();
        let mut out = Vec::new();
        for (engine, expected) in [(&first, vec![0]), (&second, vec![1]), (&second, vec![1]), (&first, vec![0])] {
            engine.matches(&mut security("x"), &mut scratch, &mut out);
            assert_eq!(out, expected);
        }
        // The same field in the same slot, another literal: what one engine
        // found in a value (nothing) is not what the other finds in it.
        let contains = |text: &str| {
            format!("title: T\n{logsource}\ndetection:\n  s: {{CommandLine|contains: {text}}}\n  condition: s\n")
        };
        let (alpha, beta) = (engine(&[&contains("alpha")]), engine(&[&contains("beta")]));
        let event = || security("run beta now");
        for (engine, expected) in [(&alpha, vec![]), (&beta, vec![0]), (&alpha, vec![]), (&beta, vec![0])] {
            engine.matches(&mut event(), &mut scratch, &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn a_keyword_in_a_boolean_is_found_without_the_screen() {
        let rule = "title: T\nlogsource: {product: windows}\ndetection:\n  keywords: ['true']\n  condition: keywords\n";
        let event = security("nothing").with("Elevated", true);
        assert_eq!(matched(rule, &event), (true, true));
        assert_eq!(matched(rule, &security("nothing")), (false, false));
    }

    #[test]
    fn only_two_characters_other_than_ascii_lower_case_into_ascii() {
        let into_ascii: Vec<char> = (0..=char::MAX as u32)
            .filter_map(char::from_u32)
            .filter(|character| !character.is_ascii() && character.to_lowercase().any(|lower| lower.is_ascii()))
            .collect();
        assert_eq!(into_ascii, ['\u{130}', '\u{212A}']);
        assert!(folds_into_ascii("x\u{212A}"));
        assert!(folds_into_ascii("\u{130}stanbul"));
        assert!(!folds_into_ascii("Ünïcödé"));
        assert!(!folds_into_ascii("ascii only"));
    }
}
