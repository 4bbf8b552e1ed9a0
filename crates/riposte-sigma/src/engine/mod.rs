//! The compiled rule set and its matcher.
//!
//! Rules are grouped by the log-source *class* of an event (what the mapping
//! says it is: product, services, categories). A class's rules are indexed
//! once (see `index`); then, per event: classify (a cached lookup), scan the
//! fields the class's rules read, evaluate the candidates.

mod eval;
mod grams;
mod index;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use riposte_event::{Event, LogSource};
use rustc_hash::FxHashMap;
use serde::Serialize;

use self::eval::State;
use self::index::{Bucket, Index, Trigger};
use crate::correlation::{Correlation, names_rule};
use crate::detection::{Expr, shift};
use crate::error::LoadError;
use crate::mapping::{Alias, Classification, Mapping, apply_aliases};
use crate::modifier::Placeholders;
use crate::rule::{Filter, FilterTargets, ParsedFile, Rule, RuleMeta, parse_file};

/// A rule left out on purpose (by level, status or tag selection).
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub title: String,
    pub reason: String,
}

/// What loading a rule set did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    /// Rules loaded and ready.
    pub loaded: usize,
    /// Rules (or files) that could not be loaded, and why.
    pub errors: Vec<LoadError>,
    /// Loaded, but something is worth knowing (a filter that targets nothing).
    pub warnings: Vec<LoadError>,
    /// Rules left out by the selection.
    pub skipped: Vec<Skipped>,
    /// Loaded rules whose log source the mapping cannot recognise in events:
    /// they run only on events whose decoder names that source.
    pub unmapped: usize,
}

/// Collects rule files, then builds an [`Engine`].
pub struct EngineBuilder {
    mapping: Arc<Mapping>,
    placeholders: Placeholders,
    files: Vec<ParsedFile>,
}

impl EngineBuilder {
    pub fn new(mapping: Mapping) -> Self {
        EngineBuilder { mapping: Arc::new(mapping), placeholders: Placeholders::new(), files: Vec::new() }
    }

    /// Values for `%name%` placeholders (the `expand` modifier).
    pub fn with_placeholders(mut self, placeholders: Placeholders) -> Self {
        self.placeholders = placeholders;
        self
    }

    pub fn placeholders(&self) -> &Placeholders {
        &self.placeholders
    }

    /// Parses and adds one file (`file` names it in errors).
    pub fn add_file(&mut self, file: &str, text: &str) {
        let parsed = parse_file(file, text, &self.placeholders);
        self.add(parsed);
    }

    /// Adds a file parsed with [`parse_file`] (which may run on any thread).
    pub fn add(&mut self, parsed: ParsedFile) {
        self.files.push(parsed);
    }

    /// Builds the engine. `select` keeps a rule (`Ok`) or says why not.
    pub fn build(self, select: impl Fn(&RuleMeta) -> Result<(), String>) -> (Engine, LoadReport) {
        let mut report = LoadReport::default();
        let mut rules = Vec::new();
        let mut filters = Vec::new();
        let mut correlations = Vec::new();
        let mut disabled: Vec<RuleMeta> = Vec::new();
        for file in self.files {
            report.errors.extend(file.errors);
            filters.extend(file.filters);
            correlations.extend(file.correlations);
            for rule in file.rules {
                match select(&rule.meta) {
                    Ok(()) => rules.push(rule),
                    Err(reason) => {
                        report.skipped.push(Skipped {
                            file: rule.file.to_string(),
                            title: rule.meta.title.clone(),
                            reason,
                        });
                        disabled.push(rule.meta);
                    }
                }
            }
        }
        for filter in &filters {
            apply_filter(filter, &mut rules, &mut report);
        }
        warn_duplicate_ids(&rules, &mut report);
        let correlations = check_correlations(correlations, &rules, &disabled, &mut report);
        report.unmapped = rules.iter().filter(|rule| !self.mapping.knows(&rule.meta.logsource)).count();
        report.loaded = rules.len();
        let index = Index::build(&rules);
        let engine = Engine {
            id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed),
            rules,
            correlations,
            mapping: self.mapping,
            index,
            classes: Mutex::new(FxHashMap::default()),
            buckets: Mutex::new(FxHashMap::default()),
        };
        (engine, report)
    }
}

/// Whether a filter's log source covers a rule's (each part the filter names
/// is the rule's).
fn filter_covers(filter: &LogSource, rule: &LogSource) -> bool {
    let part = |filter: &Option<String>, rule: &Option<String>| filter.is_none() || filter == rule;
    part(&filter.product, &rule.product)
        && part(&filter.category, &rule.category)
        && part(&filter.service, &rule.service)
}

fn apply_filter(filter: &Filter, rules: &mut [Rule], report: &mut LoadReport) {
    let mut applied = 0;
    for rule in rules.iter_mut() {
        let targeted = match &filter.targets {
            FilterTargets::Any => true,
            FilterTargets::Rules(references) => references.iter().any(|reference| names_rule(&rule.meta, reference)),
        };
        if !targeted || !filter_covers(&filter.logsource, &rule.meta.logsource) {
            continue;
        }
        let offset = u32::try_from(rule.detection.items.len()).unwrap_or(u32::MAX);
        rule.detection.items.extend(filter.detection.items.iter().cloned());
        let original = std::mem::replace(&mut rule.detection.expr, Expr::Const(false));
        rule.detection.expr = Expr::And(vec![original, shift(&filter.detection.expr, offset)]);
        applied += 1;
    }
    if applied == 0 {
        report.warnings.push(LoadError {
            file: filter.file.to_string(),
            line: None,
            rule_id: filter.id.clone(),
            rule_title: Some(filter.title.clone()),
            reason: "filter applies to no loaded rule".into(),
        });
    }
}

fn warn_duplicate_ids(rules: &[Rule], report: &mut LoadReport) {
    let mut seen: FxHashMap<&str, &Rule> = FxHashMap::default();
    for rule in rules {
        let Some(id) = rule.meta.id.as_deref() else {
            continue;
        };
        if let Some(first) = seen.insert(id, rule) {
            report.warnings.push(LoadError {
                file: rule.file.to_string(),
                line: None,
                rule_id: Some(id.to_owned()),
                rule_title: Some(rule.meta.title.clone()),
                reason: format!("id is also used by {:?} in {}", first.meta.title, first.file),
            });
        }
    }
}

fn check_correlations(
    correlations: Vec<Correlation>,
    rules: &[Rule],
    disabled: &[RuleMeta],
    report: &mut LoadReport,
) -> Vec<Correlation> {
    let refuse = |report: &mut LoadReport, correlation: &Correlation, reason: String| {
        report.errors.push(LoadError {
            file: correlation.file.to_string(),
            line: None,
            rule_id: correlation.meta.id.clone(),
            rule_title: Some(correlation.meta.title.clone()),
            reason,
        });
    };
    // Dropping one correlation can orphan another that references it: repeat
    // until every reference resolves and nothing is cyclic.
    let mut kept = correlations;
    loop {
        kept = drop_unresolved(kept, rules, disabled, report, &refuse);
        // A correlation that reaches itself through others would never settle.
        let in_cycle: Vec<bool> = (0..kept.len()).map(|start| reaches(&kept, start, start)).collect();
        if !in_cycle.contains(&true) {
            return kept;
        }
        let mut acyclic = Vec::with_capacity(kept.len());
        for (correlation, cyclic) in kept.into_iter().zip(in_cycle) {
            if cyclic {
                refuse(
                    report,
                    &correlation,
                    "correlation references itself (directly or through other correlations)".into(),
                );
            } else {
                acyclic.push(correlation);
            }
        }
        kept = acyclic;
    }
}

fn drop_unresolved(
    mut kept: Vec<Correlation>,
    rules: &[Rule],
    disabled: &[RuleMeta],
    report: &mut LoadReport,
    refuse: &impl Fn(&mut LoadReport, &Correlation, String),
) -> Vec<Correlation> {
    loop {
        let before = kept.len();
        let mut next = Vec::with_capacity(kept.len());
        for correlation in &kept {
            let missing = correlation.rules.iter().find(|reference| {
                !rules.iter().any(|rule| names_rule(&rule.meta, reference))
                    && !kept.iter().any(|other| other.is_named(reference))
            });
            match missing {
                Some(reference) => {
                    let why = if disabled.iter().any(|meta| names_rule(meta, reference)) {
                        "which is disabled"
                    } else {
                        "which does not exist or was not loaded"
                    };
                    refuse(report, correlation, format!("correlation references rule {reference:?}, {why}"));
                }
                None => match ungrouped(correlation, &kept) {
                    Some(reason) => refuse(report, correlation, reason),
                    None => next.push(correlation.clone()),
                },
            }
        }
        kept = next;
        if kept.len() == before {
            return kept;
        }
    }
}

/// Why a correlation of correlations cannot group its input, if it cannot:
/// each of its group-by fields must be one the referenced correlation groups by.
fn ungrouped(correlation: &Correlation, correlations: &[Correlation]) -> Option<String> {
    for reference in &correlation.rules {
        let Some(upstream) = correlations.iter().find(|other| other.is_named(reference)) else { continue };
        for name in &correlation.group_by {
            let field = correlation.field_for(reference, name);
            if !upstream.group_by.iter().any(|given| given == field) {
                return Some(format!(
                    "correlation groups by {field:?}, which the correlation {reference:?} it references does not group by"
                ));
            }
        }
    }
    None
}

/// Whether correlation `from` references `target`, directly or through others.
fn reaches(correlations: &[Correlation], from: usize, target: usize) -> bool {
    let mut seen = vec![false; correlations.len()];
    let mut stack = vec![from];
    while let Some(current) = stack.pop() {
        for reference in &correlations[current].rules {
            for (next, other) in correlations.iter().enumerate() {
                if other.is_named(reference) {
                    if next == target {
                        return true;
                    }
                    if !seen[next] {
                        seen[next] = true;
                        stack.push(next);
                    }
                }
            }
        }
    }
    false
}

static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(1);

/// A class of events: its log sources, field aliases and compiled index.
pub(crate) struct Class {
    classification: Classification,
    aliases: Vec<Alias>,
    bucket: Arc<Bucket>,
}

/// The compiled rule set. Share it between threads; give each thread its own
/// [`Scratch`].
pub struct Engine {
    id: u64,
    rules: Vec<Rule>,
    correlations: Vec<Correlation>,
    mapping: Arc<Mapping>,
    index: Index,
    /// Classes by signature, shared by every thread.
    classes: Mutex<FxHashMap<String, Arc<Class>>>,
    /// Buckets by their list of rules (classes with the same rules share one).
    buckets: Mutex<FxHashMap<Vec<u32>, Arc<Bucket>>>,
}

/// Per-thread state for [`Engine::matches`].
pub struct Scratch {
    engine: u64,
    /// Class by class key (see `Mapping::class_key`).
    classes: FxHashMap<String, Arc<Class>>,
    key: String,
    state: State,
}

impl Scratch {
    /// Forgets the field values it remembers scanning, so that the next
    /// events are matched as if seen for the first time (for benchmarks
    /// that replay the same events).
    pub fn forget_values(&mut self) {
        self.state.values.clear();
    }
}

/// Most class keys one thread remembers before it starts over.
const CLASS_CACHE_LIMIT: usize = 65_536;

/// How the index is doing, for `--verbose` and benchmarks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EngineStats {
    pub rules: usize,
    pub patterns: usize,
    pub rules_without_trigger: usize,
    pub classes: usize,
}

impl Engine {
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    pub fn new_scratch(&self) -> Scratch {
        Scratch { engine: self.id, classes: FxHashMap::default(), key: String::new(), state: State::default() }
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            rules: self.rules.len(),
            patterns: self.index.pattern_count(),
            rules_without_trigger: self.index.triggers.iter().filter(|trigger| **trigger == Trigger::Always).count(),
            classes: self.classes.lock().map(|classes| classes.len()).unwrap_or_default(),
        }
    }

    /// Builds now the index's finder for each field, which matching would
    /// otherwise build when first needed, so that the first events of a
    /// stream are not held up by it (a log-source class is still set up on
    /// its first event: which classes come is not known before). A hunt
    /// leaves it to first use: most read few of the fields.
    pub fn prepare(&self) {
        self.index.build_finders();
    }

    /// The log sources the mapping assigns to `event`: (product, services, categories).
    pub fn log_sources(&self, event: &Event) -> (Option<String>, Vec<String>, Vec<String>) {
        let classification = self.mapping.classify(event);
        (classification.product, classification.services, classification.categories)
    }

    /// The class of `event`, whose fields `scratch` has indexed.
    fn class_of(&self, scratch: &mut Scratch, event: &Event) -> Arc<Class> {
        let state = &scratch.state;
        self.mapping.class_key(event, |field| state.first_value(event, field), &mut scratch.key);
        if let Some(class) = scratch.classes.get(&scratch.key) {
            return class.clone();
        }
        let classification = self.mapping.classify(event);
        let signature = classification.signature();
        let class = {
            let mut classes = self.classes.lock().unwrap_or_else(|poison| poison.into_inner());
            match classes.get(&signature) {
                Some(class) => class.clone(),
                None => {
                    let class = Arc::new(self.build_class(classification));
                    classes.insert(signature, class.clone());
                    class
                }
            }
        };
        if scratch.classes.len() >= CLASS_CACHE_LIMIT {
            scratch.classes.clear();
        }
        scratch.classes.insert(scratch.key.clone(), class.clone());
        class
    }

    fn build_class(&self, classification: Classification) -> Class {
        let rules: Vec<u32> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| classification.covers(&rule.meta.logsource))
            .map(|(index, _)| u32::try_from(index).unwrap_or(u32::MAX))
            .collect();
        let bucket = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|poison| poison.into_inner());
            match buckets.get(&rules) {
                Some(bucket) => bucket.clone(),
                None => {
                    let bucket = Arc::new(Bucket::build(&self.index, rules.clone()));
                    buckets.insert(rules, bucket.clone());
                    bucket
                }
            }
        };
        Class { aliases: self.mapping.aliases(&classification), classification, bucket }
    }

    /// Finds the rules `event` matches, in rule order, into `out` (cleared
    /// first). Adds the field aliases of its log source to the event.
    pub fn matches(&self, event: &mut Event, scratch: &mut Scratch, out: &mut Vec<usize>) {
        self.run(event, scratch, out, true);
    }

    /// The same as [`Engine::matches`] without the index: every rule of the
    /// event's log source evaluated directly. For tests and comparisons.
    pub fn matches_unindexed(&self, event: &mut Event, scratch: &mut Scratch, out: &mut Vec<usize>) {
        self.run(event, scratch, out, false);
    }

    fn run(&self, event: &mut Event, scratch: &mut Scratch, out: &mut Vec<usize>, indexed: bool) {
        out.clear();
        if scratch.engine != self.id {
            scratch.classes.clear();
            scratch.state = State::default();
            scratch.engine = self.id;
        }
        // One walk over the fields serves the class key and the matchers.
        scratch.state.index_fields(event);
        let class = self.class_of(scratch, event);
        let own_fields = event.raw_len();
        apply_aliases(&class.aliases, event);
        let bucket = &class.bucket;
        let state = &mut scratch.state;
        state.begin(self.rules.len(), event, own_fields);
        if indexed {
            state.collect_candidates(&self.index, bucket, event);
        } else {
            state.candidates.extend_from_slice(&bucket.rules);
        }
        let candidates = std::mem::take(&mut state.candidates);
        for &rule in &candidates {
            if state.eval_rule(&self.rules[rule as usize], event) {
                out.push(rule as usize);
            }
        }
        state.candidates = candidates;
    }

    /// Trigger atoms by field: (field, equals, basenames, contains), for tuning.
    pub fn index_report(&self) -> Vec<(String, usize, usize, usize)> {
        self.index.field_report()
    }

    /// Each class seen so far: its rules, those without a trigger set, and
    /// the fields it scans, for tuning.
    pub fn class_report(&self) -> Vec<(String, usize, usize, usize)> {
        let classes = self.classes.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut report: Vec<(String, usize, usize, usize)> = classes
            .values()
            .map(|class| {
                let name = format!(
                    "{} / {} / {}",
                    class.classification.product.as_deref().unwrap_or("-"),
                    class.classification.services.join(","),
                    class.classification.categories.join(",")
                );
                (name, class.bucket.rules.len(), class.bucket.always.len(), class.bucket.slot_count())
            })
            .collect();
        report.sort();
        report
    }
}
