//! Evaluation of rules on one event, with or without the index.

use riposte_event::{Event, Symbol};

use super::index::{ANYWHERE, AT_END, AT_START, Bucket, FieldScan, WHOLE, needed_flag};
use crate::detection::Expr;
use crate::matcher::{Buffers, Matcher, PatternId};
use crate::modifier::Item;
use crate::rule::Rule;
use crate::text::{TextKind, fold_into};

#[derive(Copy, Clone, Default)]
struct Hit {
    generation: u32,
    flags: u8,
}

/// Per-event working state, reused from event to event (no allocation once
/// warm).
#[derive(Default)]
pub(crate) struct State {
    generation: u32,
    hits: Vec<Hit>,
    rule_marks: Vec<u32>,
    pub candidates: Vec<u32>,
    folded: String,
    pub buffers: Buffers,
}

impl State {
    /// Starts a new event.
    pub(crate) fn begin(&mut self, patterns: usize, rules: usize) {
        if self.hits.len() < patterns {
            self.hits.resize(patterns, Hit::default());
        }
        if self.rule_marks.len() < rules {
            self.rule_marks.resize(rules, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.hits.fill(Hit::default());
            self.rule_marks.fill(0);
            self.generation = 1;
        }
        self.candidates.clear();
    }

    #[inline]
    fn flags(&self, id: PatternId) -> u8 {
        match self.hits.get(id as usize) {
            Some(hit) if hit.generation == self.generation => hit.flags,
            _ => 0,
        }
    }

    #[inline]
    fn add_candidate(marks: &mut [u32], candidates: &mut Vec<u32>, generation: u32, rule: u32) {
        let mark = &mut marks[rule as usize];
        if *mark != generation {
            *mark = generation;
            candidates.push(rule);
        }
    }

    /// Scans one value with a field's automaton, recording hits and candidates.
    pub(crate) fn scan(&mut self, scan: &FieldScan, text: &str, keywords_too: bool) {
        let State {
            generation,
            hits,
            rule_marks,
            candidates,
            folded,
            ..
        } = self;
        let generation = *generation;
        // Values are folded only when they are not ASCII: the automaton is
        // ASCII case-insensitive and the patterns are lower-cased.
        let haystack: &[u8] = if text.is_ascii() {
            text.as_bytes()
        } else {
            fold_into(text, folded);
            folded.as_bytes()
        };
        let len = haystack.len();
        for found in scan.automaton.find_overlapping_iter(haystack) {
            let local = found.pattern().as_usize();
            if !keywords_too && scan.keyword[local] {
                continue;
            }
            let mut flags = ANYWHERE;
            if found.start() == 0 {
                flags |= AT_START;
            }
            if found.end() == len {
                flags |= AT_END;
            }
            if found.start() == 0 && found.end() == len {
                flags |= WHOLE;
            }
            let hit = &mut hits[scan.ids[local] as usize];
            if hit.generation == generation {
                hit.flags |= flags;
            } else {
                *hit = Hit { generation, flags };
            }
            for &rule in scan.triggers[local].iter() {
                Self::add_candidate(rule_marks, candidates, generation, rule);
            }
        }
    }

    /// Scans every field of the event the bucket has patterns for, then adds
    /// the rules evaluated for every event. Candidates end sorted.
    pub(crate) fn collect_candidates(&mut self, bucket: &Bucket, event: &Event) {
        if bucket.indexed {
            for field in event.matchable_fields() {
                let Some(text) = field.value.as_text() else {
                    continue;
                };
                match bucket.scan_for(field.symbol) {
                    Some(scan) => self.scan(scan, text, !field.alias),
                    None if !field.alias => {
                        if let Some(keywords) = &bucket.keywords {
                            self.scan(keywords, text, true);
                        }
                    }
                    None => {}
                }
            }
        }
        let generation = self.generation;
        for &rule in &bucket.always {
            Self::add_candidate(&mut self.rule_marks, &mut self.candidates, generation, rule);
        }
        self.candidates.sort_unstable();
    }

    /// Evaluates a rule, using the scan's answers when `indexed`.
    pub(crate) fn eval_rule(&mut self, rule: &Rule, event: &Event, indexed: bool) -> bool {
        self.eval_expr(rule, &rule.detection.expr, event, indexed)
    }

    fn eval_expr(&mut self, rule: &Rule, expr: &Expr, event: &Event, indexed: bool) -> bool {
        match expr {
            Expr::Item(index) => {
                self.eval_item(&rule.detection.items[*index as usize], event, indexed)
            }
            Expr::And(children) => children
                .iter()
                .all(|child| self.eval_expr(rule, child, event, indexed)),
            Expr::Or(children) => children
                .iter()
                .any(|child| self.eval_expr(rule, child, event, indexed)),
            Expr::Not(inner) => !self.eval_expr(rule, inner, event, indexed),
            Expr::Const(value) => *value,
        }
    }

    fn eval_item(&mut self, item: &Item, event: &Event, indexed: bool) -> bool {
        let hit = if item.all {
            item.matchers
                .iter()
                .all(|matcher| self.eval_matcher(matcher, item.field, event, indexed))
        } else {
            item.matchers
                .iter()
                .any(|matcher| self.eval_matcher(matcher, item.field, event, indexed))
        };
        hit != item.negate
    }

    fn eval_matcher(
        &mut self,
        matcher: &Matcher,
        field: Option<Symbol>,
        event: &Event,
        indexed: bool,
    ) -> bool {
        if indexed {
            match matcher {
                Matcher::Text(text) => {
                    if let Some(id) = text.index {
                        let flags = self.flags(id);
                        if flags == 0 {
                            return false;
                        }
                        // Case-insensitive plain comparisons are answered by the scan.
                        if !text.pattern.cased && text.pattern.kind != TextKind::Glob {
                            return flags & needed_flag(text.pattern.kind) != 0;
                        }
                    }
                }
                Matcher::Regex { index, .. } if !index.is_empty() => {
                    if !index.iter().any(|&id| self.flags(id) != 0) {
                        return false;
                    }
                }
                _ => {}
            }
        }
        matcher.eval(event, field, &mut self.buffers)
    }
}
