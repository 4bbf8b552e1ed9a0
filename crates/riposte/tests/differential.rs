//! Differential test against an independent Sigma engine (rsigma-eval 0.23,
//! a dev-dependency used only as an oracle): on every event of the attack
//! samples and of SigmaHQ's regression data, both engines must agree on which
//! SigmaHQ rules match, except where a difference is listed below with the
//! reason it is the oracle that is wrong, or a semantic choice we document.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use riposte::rules::LoadedRules;
use riposte_event::{Event, Value};

/// What the mapping says an event is: (product, services, categories).
type LogSources = (Option<String>, Vec<String>, Vec<String>);

/// A known difference: which side finds the rule, and why.
struct Known {
    rule_id: &'static str,
    only: Side,
    why: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Riposte,
    Oracle,
}

const KNOWN: &[Known] = &[
    Known {
        // `CommandLine|contains|windash: ' /accepteula'` on `... -accepteula -ma ...`.
        rule_id: "4a0b2c7e-7cb2-495d-8b63-5f268e7bfd67",
        only: Side::Riposte,
        why: "oracle defect: its windash replaces only '-', never a leading '/', so ' /accepteula' \
              never finds ' -accepteula' (pySigma replaces both, as the specification's examples do)",
    },
    Known {
        // `StartModule: null` on a Sysmon 8 event whose StartModule is empty.
        rule_id: "2e4e488a-6164-4811-9ea1-f960c7359c40",
        only: Side::Riposte,
        why: "semantic choice: EVTX has no null, an empty <Data> element is the only way Windows \
              says 'no value', so `null` matches an empty field; the oracle wants it absent",
    },
];

/// The event as the oracle sees it: a flat JSON object of every field the
/// rules can read (mapping aliases included).
fn oracle_event(event: &Event) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for field in event.matchable_fields() {
        let value = match field.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(value) => value.into(),
            Value::Number(text) => {
                text.parse::<serde_json::Number>().map(serde_json::Value::Number).unwrap_or_else(|_| text.into())
            }
            Value::String(text) => text.into(),
        };
        match object.get_mut(field.name) {
            Some(serde_json::Value::Array(values)) => values.push(value),
            Some(existing) => *existing = serde_json::Value::Array(vec![existing.take(), value]),
            None => {
                object.insert(field.name.to_owned(), value);
            }
        }
    }
    serde_json::Value::Object(object)
}

/// The oracle with every rule file of `dirs` it can parse, in one batch (it
/// rebuilds its index after each collection added, so one at a time is slow).
fn oracle(dirs: &[PathBuf]) -> (rsigma_eval::Engine, usize) {
    let mut rules = Vec::new();
    let mut failed = 0;
    for file in riposte::rules::rule_files(dirs).unwrap() {
        let text = std::fs::read_to_string(&file).unwrap();
        match rsigma_parser::parse_sigma_yaml(&text) {
            Ok(collection) => rules.extend(collection.rules),
            Err(_) => failed += 1,
        }
    }
    let mut engine = rsigma_eval::Engine::new();
    failed += engine.add_rules(&rules).len();
    (engine, failed)
}

/// Ids of the rules whose log source the mapping gives `event` (the oracle
/// has no Windows log-source mapping; its matches are limited to these).
fn applicable_ids(ours: &LoadedRules, event: &Event) -> BTreeSet<String> {
    let (product, services, categories) = ours.engine.log_sources(event);
    ours.engine
        .rules()
        .iter()
        .filter(|rule| {
            let source = &rule.meta.logsource;
            source.product.as_ref().is_none_or(|p| product.as_ref() == Some(p))
                && source.service.as_ref().is_none_or(|s| services.contains(s))
                && source.category.as_ref().is_none_or(|c| categories.contains(c))
        })
        .filter_map(|rule| rule.meta.id.clone())
        .collect()
}

#[test]
fn agrees_with_rsigma_on_the_corpus() {
    let (Some(evtx), Some(sigma)) =
        (common::corpus_or_skip("evtx", "agrees_with_rsigma_on_the_corpus"), common::corpus("sigma"))
    else {
        return;
    };
    let dirs = [sigma.join("rules"), sigma.join("rules-emerging-threats"), sigma.join("rules-threat-hunting")];
    let ours = common::load_rules(&dirs);
    let (oracle, oracle_failed) = oracle(&dirs);
    let mut files = common::evtx_files(&evtx);
    files.extend(common::evtx_files(&sigma.join("regression_data")));

    let mut scratch = ours.engine.new_scratch();
    let mut matched = Vec::new();
    // (rule id, side) -> the events where only that side found the rule.
    let mut differences: BTreeMap<(String, Side), Vec<String>> = BTreeMap::new();
    let (mut compared, mut agreed) = (0, 0);
    // Rule ids by log source (product, services, categories).
    let mut applicable: BTreeMap<LogSources, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        for mut event in common::evtx_events(file).events {
            ours.engine.matches(&mut event, &mut scratch, &mut matched);
            let our_ids: BTreeSet<String> =
                matched.iter().filter_map(|&rule| ours.engine.rule(rule).meta.id.clone()).collect();
            let applies =
                applicable.entry(ours.engine.log_sources(&event)).or_insert_with(|| applicable_ids(&ours, &event));
            let json = oracle_event(&event);
            let oracle_ids: BTreeSet<String> = oracle
                .evaluate(&rsigma_eval::event::JsonEvent::borrow(&json))
                .into_iter()
                .filter_map(|result| result.header.rule_id)
                .filter(|id| applies.contains(id))
                .collect();
            for id in our_ids.symmetric_difference(&oracle_ids) {
                let side = if our_ids.contains(id) { Side::Riposte } else { Side::Oracle };
                let place = format!(
                    "{} record {:?}",
                    file.strip_prefix(sigma.parent().unwrap()).unwrap().display(),
                    event.record_id
                );
                differences.entry((id.clone(), side)).or_default().push(place);
            }
            compared += 1;
            agreed += our_ids.intersection(&oracle_ids).count();
        }
    }
    eprintln!(
        "{compared} events from {} files compared; {agreed} detections agreed; oracle failed to load {oracle_failed} rule files",
        files.len()
    );
    let mut unexplained = Vec::new();
    for ((id, side), places) in &differences {
        let title = ours
            .engine
            .rules()
            .iter()
            .find(|rule| rule.meta.id.as_deref() == Some(id))
            .map(|rule| rule.meta.title.as_str())
            .unwrap_or("?");
        let line = format!("only {side:?}: {id} {title:?} on {} events, first {}", places.len(), places[0]);
        match KNOWN.iter().find(|known| known.rule_id == id && known.only == *side) {
            Some(known) => eprintln!("known: {line}\n    {}", known.why),
            None => unexplained.push(line),
        }
    }
    for known in KNOWN {
        if !differences.contains_key(&(known.rule_id.to_owned(), known.only)) {
            eprintln!("note: the known difference on {} no longer occurs", known.rule_id);
        }
    }
    assert!(compared > 8_000 && agreed > 1_000, "too little compared: {compared} events, {agreed} detections");
    assert!(unexplained.is_empty(), "the engines disagree:\n{}", unexplained.join("\n"));
}
