//! Sigma documents: detection rules, filters and correlation rules, with
//! their metadata, read from the text of one file.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use riposte_event::LogSource;
use serde::Serialize;

use crate::attack::{self, Tactic, Technique};
use crate::correlation::Correlation;
use crate::detection::{self, Detection};
use crate::error::LoadError;
use crate::modifier::Placeholders;
use crate::yaml::{self, Yaml};

/// How severe a detection is, lowest first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Informational, Level::Low, Level::Medium, Level::High, Level::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("unknown level {text:?} (expected informational, low, medium, high or critical)"))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How mature a rule is, least first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Unsupported,
    Deprecated,
    Experimental,
    Test,
    Stable,
}

impl Status {
    pub const ALL: [Status; 5] =
        [Status::Unsupported, Status::Deprecated, Status::Experimental, Status::Test, Status::Stable];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unsupported => "unsupported",
            Status::Deprecated => "deprecated",
            Status::Experimental => "experimental",
            Status::Test => "test",
            Status::Stable => "stable",
        }
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL.into_iter().find(|status| status.as_str().eq_ignore_ascii_case(text.trim())).ok_or_else(|| {
            format!("unknown status {text:?} (expected stable, test, experimental, deprecated or unsupported)")
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule says about itself.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleMeta {
    pub id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub status: Option<Status>,
    pub level: Option<Level>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub date: Option<String>,
    pub modified: Option<String>,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    /// Fields an analyst should look at.
    pub fields: Vec<String>,
    pub logsource: LogSource,
    /// ATT&CK techniques named by the tags.
    pub techniques: Vec<Technique>,
    /// ATT&CK tactics named by the tags.
    pub tactics: Vec<Tactic>,
}

/// A detection rule, compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    pub meta: RuleMeta,
    /// The file it came from.
    pub file: Arc<str>,
    pub(crate) detection: Detection,
}

impl Rule {
    /// The fields the rule's detection reads, in rule order, without repeats.
    pub fn detection_fields(&self) -> Vec<&'static str> {
        let mut fields: Vec<&'static str> = Vec::new();
        for item in &self.detection.items {
            if let Some(field) = item.field {
                let name = field.as_str();
                if !fields.contains(&name) {
                    fields.push(name);
                }
            }
        }
        fields
    }
}

/// Which rules a filter applies to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FilterTargets {
    /// Every rule whose log source the filter's covers.
    Any,
    /// Rules by id or name.
    Rules(Vec<String>),
}

/// A Sigma filter: its condition is added (with `and`) to the conditions of
/// the rules it targets.
#[derive(Clone, Debug)]
pub struct Filter {
    pub title: String,
    pub id: Option<String>,
    pub logsource: LogSource,
    pub file: Arc<str>,
    pub(crate) targets: FilterTargets,
    pub(crate) detection: Detection,
}

/// Everything one rule file holds.
#[derive(Default)]
pub struct ParsedFile {
    pub rules: Vec<Rule>,
    pub filters: Vec<Filter>,
    pub correlations: Vec<Correlation>,
    pub errors: Vec<LoadError>,
}

/// Parses and compiles the text of one rule file. `file` names it in errors.
pub fn parse_file(file: &str, text: &str, placeholders: &Placeholders) -> ParsedFile {
    let mut parsed = ParsedFile::default();
    let file: Arc<str> = Arc::from(file);
    let error = |line: Option<usize>, meta: Option<&Yaml>, reason: String| LoadError {
        file: file.to_string(),
        line,
        rule_id: meta.and_then(|doc| doc.get("id")).and_then(Yaml::scalar_text),
        rule_title: meta.and_then(|doc| doc.get("title")).and_then(Yaml::scalar_text),
        reason,
    };
    let documents = match yaml::parse_documents(text) {
        Ok(documents) => documents,
        Err(reason) => {
            parsed.errors.push(error(None, None, format!("invalid YAML: {reason}")));
            return parsed;
        }
    };
    // Sigma 1 rule collections: `action: global` documents are merged into the
    // following ones, `reset` forgets them, `repeat` re-uses the last rule.
    let mut template: Option<Yaml> = None;
    let mut previous: Option<Yaml> = None;
    for document in documents {
        if !matches!(document, Yaml::Map(_)) {
            parsed.errors.push(error(None, None, format!("a rule document must be a map, found {}", document.kind())));
            continue;
        }
        let document = match document.get("action").map(|action| action.as_str()) {
            None => document,
            Some(Some("global")) => {
                template = Some(without(&document, "action"));
                continue;
            }
            Some(Some("reset")) => {
                template = None;
                continue;
            }
            Some(Some("repeat")) => match &previous {
                Some(previous) => merged(previous, &without(&document, "action")),
                None => {
                    parsed.errors.push(error(None, Some(&document), "action: repeat with no rule before it".into()));
                    continue;
                }
            },
            Some(other) => {
                parsed.errors.push(error(None, Some(&document), format!("unknown action {:?}", other.unwrap_or("?"))));
                continue;
            }
        };
        if document.get("correlation").is_some() {
            match Correlation::parse(&document, &file) {
                Ok(correlation) => parsed.correlations.push(correlation),
                Err(reason) => parsed.errors.push(error(yaml::line_of(text, "correlation:"), Some(&document), reason)),
            }
            continue;
        }
        if document.get("filter").is_some() {
            match parse_filter(&document, &file, placeholders) {
                Ok(filter) => parsed.filters.push(filter),
                Err((reason, near)) => {
                    parsed.errors.push(error(near.and_then(|near| yaml::line_of(text, &near)), Some(&document), reason))
                }
            }
            continue;
        }
        let document = match &template {
            Some(template) => merged(&document, template),
            None => document,
        };
        match parse_rule(&document, &file, placeholders) {
            Ok(rule) => parsed.rules.push(rule),
            Err((reason, near)) => {
                parsed.errors.push(error(near.and_then(|near| yaml::line_of(text, &near)), Some(&document), reason))
            }
        }
        previous = Some(document);
    }
    parsed
}

type ParseError = (String, Option<String>);

fn parse_rule(document: &Yaml, file: &Arc<str>, placeholders: &Placeholders) -> Result<Rule, ParseError> {
    let meta = parse_meta(document).map_err(|reason| (reason, None))?;
    let section = document.get("detection").ok_or_else(|| ("rule has no detection section".to_owned(), None))?;
    let detection = detection::compile(section, &[], placeholders).map_err(|error| (error.reason, error.near))?;
    Ok(Rule { meta, file: file.clone(), detection })
}

fn parse_filter(document: &Yaml, file: &Arc<str>, placeholders: &Placeholders) -> Result<Filter, ParseError> {
    let title = required_text(document, "title").map_err(|reason| (reason, None))?;
    let logsource = parse_logsource(document).map_err(|reason| (reason, None))?;
    let section = document.get("filter").unwrap_or(&Yaml::Null);
    let targets = match section.get("rules") {
        None => {
            return Err((
                "filter has no rules list (use `rules: any` to apply it to every rule of its log source)".into(),
                Some("filter:".into()),
            ));
        }
        Some(Yaml::String(word)) if word.eq_ignore_ascii_case("any") || word.eq_ignore_ascii_case("all") => {
            FilterTargets::Any
        }
        Some(Yaml::String(reference)) => FilterTargets::Rules(vec![reference.clone()]),
        Some(Yaml::Seq(references)) if references.is_empty() => FilterTargets::Any,
        Some(Yaml::Seq(references)) => FilterTargets::Rules(
            references
                .iter()
                .map(|reference| {
                    reference
                        .scalar_text()
                        .ok_or_else(|| ("filter rules must be ids or names".to_owned(), Some("rules:".to_owned())))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err((format!("filter rules must be a list, found {}", other.kind()), Some("rules:".into())));
        }
    };
    let detection =
        detection::compile(section, &["rules"], placeholders).map_err(|error| (error.reason, error.near))?;
    Ok(Filter {
        title,
        id: document.get("id").and_then(Yaml::scalar_text),
        logsource,
        file: file.clone(),
        targets,
        detection,
    })
}

fn required_text(document: &Yaml, key: &str) -> Result<String, String> {
    document
        .get(key)
        .and_then(Yaml::scalar_text)
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| format!("rule has no {key}"))
}

fn text_list(document: &Yaml, key: &str) -> Result<Vec<String>, String> {
    match document.get(key) {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::Seq(items)) => items
            .iter()
            .map(|item| item.scalar_text().ok_or_else(|| format!("{key} must be a list of strings")))
            .collect(),
        Some(scalar) => {
            scalar.scalar_text().map(|text| vec![text]).ok_or_else(|| format!("{key} must be a list of strings"))
        }
    }
}

pub(crate) fn parse_logsource(document: &Yaml) -> Result<LogSource, String> {
    let section = document.get("logsource").ok_or("rule has no logsource")?;
    if !matches!(section, Yaml::Map(_)) {
        return Err(format!("logsource must be a map, found {}", section.kind()));
    }
    let part = |key: &str| {
        section
            .get(key)
            .and_then(Yaml::scalar_text)
            .map(|text| text.trim().to_ascii_lowercase())
            .filter(|text| !text.is_empty())
    };
    let logsource = LogSource { product: part("product"), category: part("category"), service: part("service") };
    if logsource == LogSource::default() {
        return Err("logsource names no product, category or service".into());
    }
    Ok(logsource)
}

pub(crate) fn parse_meta(document: &Yaml) -> Result<RuleMeta, String> {
    let optional = |key: &str| document.get(key).and_then(Yaml::scalar_text);
    let tags = text_list(document, "tags")?;
    let (techniques, tactics) = attack::resolve(&tags);
    Ok(RuleMeta {
        id: optional("id"),
        name: optional("name"),
        title: required_text(document, "title")?,
        status: optional("status").map(|text| text.parse()).transpose()?,
        level: optional("level").map(|text| text.parse()).transpose()?,
        description: optional("description"),
        author: optional("author"),
        date: optional("date"),
        modified: optional("modified"),
        references: text_list(document, "references")?,
        falsepositives: text_list(document, "falsepositives")?,
        fields: text_list(document, "fields")?,
        logsource: parse_logsource(document)?,
        tags,
        techniques,
        tactics,
    })
}

fn without(document: &Yaml, key: &str) -> Yaml {
    match document {
        Yaml::Map(entries) => Yaml::Map(entries.iter().filter(|(name, _)| name != key).cloned().collect()),
        other => other.clone(),
    }
}

/// `base` with `overlay` merged in: maps recursively, anything else replaced.
fn merged(base: &Yaml, overlay: &Yaml) -> Yaml {
    match (base, overlay) {
        (Yaml::Map(base_entries), Yaml::Map(overlay_entries)) => {
            let mut entries = base_entries.clone();
            for (key, value) in overlay_entries {
                match entries.iter_mut().find(|(name, _)| name == key) {
                    Some((_, existing)) => *existing = merged(existing, value),
                    None => entries.push((key.clone(), value.clone())),
                }
            }
            Yaml::Map(entries)
        }
        (_, overlay) => overlay.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: Whoami
id: 3c7c0c5c-7a44-4b2d-9d1c-2c1b6c5d7e01
status: test
level: medium
author: Riposte
date: 2026-11-25
tags:
  - attack.discovery
  - attack.t1033
references:
  - https://example.org/whoami
falsepositives:
  - Admins
logsource:
  product: Windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\\whoami.exe'
  condition: selection
";

    #[test]
    fn metadata_is_read() {
        let parsed = parse_file("whoami.yml", RULE, &Placeholders::new());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let meta = &parsed.rules[0].meta;
        assert_eq!(meta.title, "Whoami");
        assert_eq!(meta.level, Some(Level::Medium));
        assert_eq!(meta.status, Some(Status::Test));
        assert_eq!(meta.logsource.product.as_deref(), Some("windows"));
        assert_eq!(meta.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(meta.tags, ["attack.discovery", "attack.t1033"]);
        assert_eq!(meta.techniques[0].id, "T1033");
        assert_eq!(meta.tactics[0].name, "Discovery");
        assert_eq!(meta.references.len(), 1);
        assert_eq!(meta.falsepositives, ["Admins"]);
        assert_eq!(meta.date.as_deref(), Some("2026-11-25"));
    }

    #[test]
    fn errors_name_file_rule_and_line() {
        let bad = RULE.replace("Image|endswith", "Image|endswyth");
        let parsed = parse_file("bad.yml", &bad, &Placeholders::new());
        assert!(parsed.rules.is_empty());
        let error = &parsed.errors[0];
        assert_eq!(error.line, Some(19));
        assert_eq!(error.rule_title.as_deref(), Some("Whoami"));
        assert!(
            error.to_string().starts_with(
                "bad.yml:19: rule \"Whoami\" (3c7c0c5c-7a44-4b2d-9d1c-2c1b6c5d7e01): unknown modifier \"endswyth\""
            ),
            "{error}"
        );
        for (broken, expected) in [
            (RULE.replace("level: medium", "level: severe"), "unknown level"),
            (RULE.replace("status: test", "status: beta"), "unknown status"),
            (RULE.replace("title: Whoami\n", ""), "no title"),
            (
                RULE.replace("  product: Windows\n  category: process_creation\n", "  definition: x\n"),
                "names no product",
            ),
            ("title: x\n  bad: [\n".to_owned(), "invalid YAML"),
            ("- a\n- b\n".to_owned(), "must be a map"),
        ] {
            let parsed = parse_file("bad.yml", &broken, &Placeholders::new());
            assert!(
                parsed.errors.iter().any(|error| error.reason.contains(expected)),
                "{expected}: {:?}",
                parsed.errors
            );
        }
    }

    #[test]
    fn filters_and_collections() {
        let filter = "title: Not the admins
logsource:
  product: windows
filter:
  rules:
    - 3c7c0c5c-7a44-4b2d-9d1c-2c1b6c5d7e01
  selection:
    User|startswith: 'adm_'
  condition: not selection
";
        let parsed = parse_file("f.yml", filter, &Placeholders::new());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(
            parsed.filters[0].targets,
            FilterTargets::Rules(vec!["3c7c0c5c-7a44-4b2d-9d1c-2c1b6c5d7e01".into()])
        );
        let missing = parse_file(
            "f.yml",
            &filter.replace("  rules:\n    - 3c7c0c5c-7a44-4b2d-9d1c-2c1b6c5d7e01\n", ""),
            &Placeholders::new(),
        );
        assert!(missing.errors[0].reason.contains("rules: any"));

        let collection = "action: global
logsource:
  product: windows
  service: security
detection:
  condition: selection
---
title: Logon
detection:
  selection:
    EventID: 4624
---
title: Failed logon
detection:
  selection:
    EventID: 4625
---
action: repeat
title: Repeated
";
        let parsed = parse_file("c.yml", collection, &Placeholders::new());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let titles: Vec<&str> = parsed.rules.iter().map(|rule| rule.meta.title.as_str()).collect();
        assert_eq!(titles, ["Logon", "Failed logon", "Repeated"]);
        assert!(parsed.rules.iter().all(|rule| rule.meta.logsource.service.as_deref() == Some("security")));
    }
}
