//! Sigma correlation rules, parsed and checked. They are kept with the rule
//! set so that references can be verified at load time; evaluating them over
//! time windows is the job of the correlation engine.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::attack::{self, Tactic, Technique};
use crate::rule::{Level, RuleMeta, Status};
use crate::yaml::Yaml;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
    ValuePercentile,
    ValueMedian,
}

impl CorrelationType {
    /// The name rules use (`event_count`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
            CorrelationType::ValueSum => "value_sum",
            CorrelationType::ValueAvg => "value_avg",
            CorrelationType::ValuePercentile => "value_percentile",
            CorrelationType::ValueMedian => "value_median",
        }
    }

    /// Whether the condition compares a field's values (and so needs `field`).
    pub fn needs_field(self) -> bool {
        matches!(
            self,
            CorrelationType::ValueCount
                | CorrelationType::ValueSum
                | CorrelationType::ValueAvg
                | CorrelationType::ValuePercentile
                | CorrelationType::ValueMedian
        )
    }
}

impl FromStr for CorrelationType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "event_count" => CorrelationType::EventCount,
            "value_count" => CorrelationType::ValueCount,
            "temporal" => CorrelationType::Temporal,
            "temporal_ordered" => CorrelationType::TemporalOrdered,
            "value_sum" => CorrelationType::ValueSum,
            "value_avg" => CorrelationType::ValueAvg,
            "value_percentile" => CorrelationType::ValuePercentile,
            "value_median" => CorrelationType::ValueMedian,
            other => return Err(format!("unknown correlation type {other:?}")),
        })
    }
}

/// A comparison in a correlation condition.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Gte => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Lte => value <= threshold,
            Comparison::Eq => value == threshold,
            Comparison::Neq => value != threshold,
        }
    }
}

/// A correlation rule.
#[derive(Clone, Debug, Serialize)]
pub struct Correlation {
    pub meta: CorrelationMeta,
    pub kind: CorrelationType,
    /// Referenced rules or correlations, by id or name.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    #[serde(serialize_with = "seconds")]
    pub timespan: Duration,
    /// All of these must hold (several make a range).
    pub condition: Vec<(Comparison, f64)>,
    /// The field of `value_*` types.
    pub field: Option<String>,
    /// For `value_percentile` (default 95).
    pub percentile: Option<f64>,
    /// Alias name to (rule reference, field) pairs.
    pub aliases: Vec<(String, Vec<(String, String)>)>,
    /// Whether the referenced rules also report on their own.
    pub generate: bool,
    #[serde(skip)]
    pub file: Arc<str>,
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_secs())
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CorrelationMeta {
    pub id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub status: Option<Status>,
    pub level: Option<Level>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// ATT&CK techniques named by the tags.
    pub techniques: Vec<Technique>,
    /// ATT&CK tactics named by the tags.
    pub tactics: Vec<Tactic>,
}

/// Most rules one correlation may reference.
pub const MAX_REFERENCED_RULES: usize = 64;

impl fmt::Display for Correlation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?} over {:?})", self.meta.title, self.kind, self.timespan)
    }
}

/// Parses `90m`, `1h`, `2d` (also `s`, `w`, `M` months and `y` years).
pub fn parse_timespan(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|ch: char| !ch.is_ascii_digit()).ok_or_else(|| format!("timespan {text:?} has no unit"))?;
    let (count, unit) = text.split_at(split);
    let count: u64 = count.parse().map_err(|_| format!("timespan {text:?} does not start with a number"))?;
    if count == 0 {
        return Err(format!("timespan {text:?} is zero"));
    }
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        "M" => 2_629_746,
        "y" => 31_556_952,
        other => {
            return Err(format!("timespan unit {other:?} is not one of s, m, h, d, w, M, y"));
        }
    };
    count.checked_mul(unit_seconds).map(Duration::from_secs).ok_or_else(|| format!("timespan {text:?} is too long"))
}

fn text_or_list(value: Option<&Yaml>, what: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::Seq(items)) => {
            items.iter().map(|item| item.scalar_text().ok_or_else(|| format!("{what} must hold strings"))).collect()
        }
        Some(scalar) => {
            scalar.scalar_text().map(|text| vec![text]).ok_or_else(|| format!("{what} must be a string or a list"))
        }
    }
}

impl Correlation {
    pub(crate) fn parse(document: &Yaml, file: &Arc<str>) -> Result<Correlation, String> {
        // Correlations have no log source; read the rest of the metadata.
        let optional = |key: &str| document.get(key).and_then(Yaml::scalar_text);
        let tags = text_or_list(document.get("tags"), "tags")?;
        let (techniques, tactics) = attack::resolve(&tags);
        let meta = CorrelationMeta {
            id: optional("id"),
            name: optional("name"),
            title: optional("title").ok_or("correlation has no title")?,
            status: optional("status").map(|text| text.parse()).transpose()?,
            level: optional("level").map(|text| text.parse()).transpose()?,
            description: optional("description"),
            tags,
            techniques,
            tactics,
        };
        let section = document.get("correlation").ok_or("no correlation section")?;
        if !matches!(section, Yaml::Map(_)) {
            return Err(format!("correlation must be a map, found {}", section.kind()));
        }
        let kind: CorrelationType =
            section.get("type").and_then(Yaml::as_str).ok_or("correlation has no type")?.parse()?;
        let rules = text_or_list(section.get("rules"), "rules")?;
        if rules.is_empty() {
            return Err("correlation references no rules".into());
        }
        if rules.len() > MAX_REFERENCED_RULES {
            return Err(format!("correlation references {} rules, more than {MAX_REFERENCED_RULES}", rules.len()));
        }
        let group_by = text_or_list(section.get("group-by"), "group-by")?;
        let timespan =
            parse_timespan(&section.get("timespan").and_then(Yaml::scalar_text).ok_or("correlation has no timespan")?)?;
        let mut condition = Vec::new();
        let mut field = None;
        let mut percentile = None;
        match section.get("condition") {
            None => {}
            Some(Yaml::Map(entries)) => {
                for (key, value) in entries {
                    let number = || -> Result<f64, String> {
                        value
                            .scalar_text()
                            .and_then(|text| text.parse::<f64>().ok())
                            .filter(|number| number.is_finite())
                            .ok_or_else(|| format!("condition {key} needs a number"))
                    };
                    match key.as_str() {
                        "gt" => condition.push((Comparison::Gt, number()?)),
                        "gte" => condition.push((Comparison::Gte, number()?)),
                        "lt" => condition.push((Comparison::Lt, number()?)),
                        "lte" => condition.push((Comparison::Lte, number()?)),
                        "eq" => condition.push((Comparison::Eq, number()?)),
                        "neq" => condition.push((Comparison::Neq, number()?)),
                        "field" => field = Some(value.scalar_text().ok_or("condition field must be a field name")?),
                        "percentile" => percentile = Some(number()?),
                        other => {
                            return Err(format!("unknown correlation condition key {other:?}"));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(format!("correlation condition must be a map, found {}", other.kind()));
            }
        }
        if condition.is_empty() {
            match kind {
                // All referenced rules, by default.
                CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
                    condition.push((Comparison::Gte, rules.len() as f64))
                }
                _ => {
                    return Err("correlation condition needs one of gt, gte, lt, lte, eq, neq".into());
                }
            }
        }
        if kind.needs_field() && field.is_none() {
            return Err(format!("a {} correlation needs condition.field", kind.name()));
        }
        if let Some(percentile) = percentile
            && !(0.0..=100.0).contains(&percentile)
        {
            return Err(format!("percentile {percentile} is not between 0 and 100"));
        }
        let mut aliases = Vec::new();
        if let Some(Yaml::Map(entries)) = section.get("aliases") {
            for (alias, mapping) in entries {
                let Yaml::Map(pairs) = mapping else {
                    return Err(format!("alias {alias:?} must map rule names to fields"));
                };
                let pairs = pairs
                    .iter()
                    .map(|(rule, field)| {
                        field
                            .scalar_text()
                            .map(|field| (rule.clone(), field))
                            .ok_or_else(|| format!("alias {alias:?}: field for {rule:?} must be a name"))
                    })
                    .collect::<Result<_, _>>()?;
                aliases.push((alias.clone(), pairs));
            }
        }
        let generate = match section.get("generate").or_else(|| document.get("generate")) {
            None => false,
            Some(Yaml::Bool(value)) => *value,
            Some(other) => {
                return Err(format!("generate must be true or false, found {}", other.kind()));
            }
        };
        Ok(Correlation {
            meta,
            kind,
            rules,
            group_by,
            timespan,
            condition,
            field,
            percentile,
            aliases,
            generate,
            file: file.clone(),
        })
    }

    /// The field this correlation reads for `name` on the rule `reference`,
    /// through its `aliases`.
    pub fn field_for<'a>(&'a self, reference: &str, name: &'a str) -> &'a str {
        self.aliases
            .iter()
            .find(|(alias, _)| alias == name)
            .and_then(|(_, pairs)| pairs.iter().find(|(rule, _)| rule == reference))
            .map_or(name, |(_, field)| field.as_str())
    }

    /// Whether this correlation is the one `reference` (an id or name) names.
    pub fn is_named(&self, reference: &str) -> bool {
        self.meta.id.as_deref() == Some(reference) || self.meta.name.as_deref() == Some(reference)
    }
}

/// Whether `meta` is the rule `reference` (an id or name) names.
pub(crate) fn names_rule(meta: &RuleMeta, reference: &str) -> bool {
    meta.id.as_deref() == Some(reference) || meta.name.as_deref() == Some(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Correlation, String> {
        let document = crate::yaml::parse_documents(yaml).unwrap().remove(0);
        Correlation::parse(&document, &Arc::from("c.yml"))
    }

    #[test]
    fn specification_examples_parse() {
        let count = parse(
            "title: Many failed logins\nid: 0e95725d-7320-415d-80f7-004da920fc11\ncorrelation:\n  type: event_count\n  rules:\n    - 5638f7c0-ac70-491d-8465-2a65075e0d86\n  group-by:\n    - ComputerName\n  timespan: 1h\n  condition:\n    gte: 100\n",
        )
        .unwrap();
        assert_eq!(count.kind, CorrelationType::EventCount);
        assert_eq!(count.timespan, Duration::from_secs(3600));
        assert_eq!(count.condition, vec![(Comparison::Gte, 100.0)]);
        let values = parse(
            "title: Failed login\ncorrelation:\n  type: value_count\n  rules: 5638f7c0-ac70-491d-8465-2a65075e0d86\n  group-by: [ComputerName, WorkstationName]\n  timespan: 1d\n  condition:\n    field: User\n    gte: 100\n",
        )
        .unwrap();
        assert_eq!(values.field.as_deref(), Some("User"));
        assert_eq!(values.group_by.len(), 2);
        let temporal = parse("title: Recon\ncorrelation:\n  type: temporal\n  rules: [recon_cmd_a, recon_cmd_b, recon_cmd_c]\n  group-by: [ComputerName, User]\n  timespan: 5m\n").unwrap();
        assert_eq!(temporal.condition, vec![(Comparison::Gte, 3.0)], "temporal defaults to all rules");
        let aliased = parse(
            "title: x\ncorrelation:\n  type: temporal\n  rules: [internal_error, new_network_connection]\n  group-by: [internal_ip, remote_ip]\n  timespan: 10s\n  aliases:\n    internal_ip:\n      internal_error: destination.ip\n      new_network_connection: source.ip\n    remote_ip:\n      internal_error: source.ip\n      new_network_connection: destination.ip\n",
        )
        .unwrap();
        assert_eq!(aliased.aliases[0].1[1], ("new_network_connection".into(), "source.ip".into()));
        let range = parse("title: r\ncorrelation:\n  type: event_count\n  rules: a\n  timespan: 1m\n  condition:\n    gt: 100\n    lte: 200\n  generate: true\n").unwrap();
        assert_eq!(range.condition.len(), 2);
        assert!(range.generate);
        let percentile = parse("title: p\ncorrelation:\n  type: value_percentile\n  rules: a\n  timespan: 24h\n  condition:\n    field: image\n    lte: 1\n    percentile: 99\n").unwrap();
        assert_eq!(percentile.percentile, Some(99.0));
    }

    #[test]
    fn invalid_correlations_are_explained() {
        for (yaml, expected) in [
            ("title: x\ncorrelation:\n  type: sometimes\n  rules: a\n  timespan: 1m\n", "unknown correlation type"),
            ("title: x\ncorrelation:\n  type: event_count\n  timespan: 1m\n  condition: {gte: 1}\n", "no rules"),
            (
                "title: x\ncorrelation:\n  type: event_count\n  rules: a\n  timespan: 0m\n  condition: {gte: 1}\n",
                "zero",
            ),
            (
                "title: x\ncorrelation:\n  type: event_count\n  rules: a\n  timespan: 5q\n  condition: {gte: 1}\n",
                "unit",
            ),
            ("title: x\ncorrelation:\n  type: event_count\n  rules: a\n  timespan: 5m\n", "condition needs"),
            (
                "title: x\ncorrelation:\n  type: value_count\n  rules: a\n  timespan: 5m\n  condition: {gte: 1}\n",
                "needs condition.field",
            ),
            (
                "title: x\ncorrelation:\n  type: event_count\n  rules: a\n  timespan: 5m\n  condition: {between: 1}\n",
                "unknown correlation condition",
            ),
        ] {
            let error = parse(yaml).unwrap_err();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
