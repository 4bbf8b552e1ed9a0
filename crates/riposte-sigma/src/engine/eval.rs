//! Per-event work: collecting candidate rules from the index, evaluating them.

use riposte_event::Event;

use super::index::{Bucket, Index, VALUE_SEPARATOR};
use crate::detection::Expr;
use crate::matcher::Buffers;
use crate::modifier::Item;
use crate::rule::Rule;
use crate::text::fold_into;

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
    /// The values of an event joined for the keyword scan.
    joined: Vec<u8>,
    buffers: Buffers,
}

impl State {
    /// Starts a new event.
    pub(crate) fn begin(&mut self, rules: usize, event: &Event) {
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
        self.buffers.begin_event(event);
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
        let State { generation, rule_marks, rule_masks, candidates, folded, joined, .. } = self;
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
        joined.clear();
        let keywords = bucket.keywords.is_some();
        for position in 0..event.raw_len() {
            let slot = index.slot(event.symbol_at(position)).filter(|&slot| bucket.reads(slot));
            // Keyword searches read the event's own values, not aliases.
            let keyword = keywords && !event.is_alias_at(position);
            if slot.is_none() && !keyword {
                continue;
            }
            let Some(text) = event.value_at(position).as_text() else { continue };
            if keyword {
                fold_into(text, folded);
                joined.extend_from_slice(folded.as_bytes());
                joined.push(VALUE_SEPARATOR);
            }
            if let Some(slot) = slot {
                index.finder(slot).find(text, folded, &mut add);
            }
        }
        if let Some(finder) = &bucket.keywords {
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
