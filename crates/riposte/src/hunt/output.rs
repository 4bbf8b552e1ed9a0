//! Detections for people (grouped by rule) and for machines (JSON, JSON
//! lines, CSV).
//!
//! The JSON field names `rule_id`, `rule_title`, `level`, `status`,
//! `techniques`, `file`, `record_id`, `timestamp`, `computer` and `event` are
//! a public interface; so are those of a correlation match (the same rule
//! fields and `correlation`).

use std::collections::BTreeMap;
use std::io::{self, Write};

use riposte_event::{Event, Symbol};
use riposte_sigma::{CorrelationMatch, CorrelationType, Engine, Level, Rule};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Detection, HuntResult, IntelDetection, NativeDetection};
use crate::terminal::shown_within;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Grouped by rule, for a person.
    #[default]
    Text,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// How the text report looks.
#[derive(Copy, Clone, Debug)]
pub struct TextStyle {
    pub color: bool,
    /// Detections shown per rule; 0 shows all.
    pub limit: usize,
}

/// Fields that name the host an event came from, in order of preference.
const COMPUTER_FIELDS: &[&str] =
    &["System_Computer", "Computer", "host.name", "hostname", "host", "ComputerName", "agent.name", "node"];

/// Fields worth showing when a rule names few of its own.
const KEY_FIELDS: &[&str] = &[
    "Image",
    "CommandLine",
    "ParentImage",
    "User",
    "TargetUserName",
    "SubjectUserName",
    "TargetFilename",
    "TargetObject",
    "ServiceName",
    "ImagePath",
    "ScriptBlockText",
    "IpAddress",
    "DestinationIp",
    "QueryName",
];

/// Fields that say where an event came from rather than what happened.
const SOURCE_FIELDS: &[&str] =
    &["EventID", "Channel", "Provider_Name", "System_Channel", "System_EventID", "System_Provider_Name"];

const MAX_KEY_FIELDS: usize = 6;
const MAX_VALUE_CHARS: usize = 160;

pub fn computer(event: &Event) -> Option<&str> {
    COMPUTER_FIELDS.iter().filter_map(|name| Symbol::lookup(name)).find_map(|symbol| event.text(symbol))
}

fn timestamp_text(timestamp: Option<OffsetDateTime>) -> Option<String> {
    timestamp.and_then(|time| time.format(&Rfc3339).ok())
}

/// The fields to show for a detection of `rule`: the rule's own `fields`,
/// then those its detection reads, then common ones.
pub fn key_fields<'e>(rule: &Rule, event: &'e Event) -> Vec<(&'static str, &'e str)> {
    let mut shown: Vec<(&'static str, &'e str)> = Vec::new();
    let rule_fields: Vec<&'static str> = rule.meta.fields.iter().map(|name| Symbol::intern(name).as_str()).collect();
    let candidates = rule_fields.into_iter().chain(rule.detection_fields()).chain(KEY_FIELDS.iter().copied());
    for name in candidates {
        if shown.len() >= MAX_KEY_FIELDS {
            break;
        }
        if SOURCE_FIELDS.contains(&name) || shown.iter().any(|(shown_name, _)| *shown_name == name) {
            continue;
        }
        if let Some(value) =
            Symbol::lookup(name).and_then(|symbol| event.text(symbol)).filter(|value| !value.is_empty())
        {
            shown.push((name, value));
        }
    }
    shown
}

/// The machine form of one detection.
#[derive(Serialize)]
pub struct DetectionRecord<'a> {
    pub rule_id: Option<&'a str>,
    pub rule_title: &'a str,
    pub level: Option<Level>,
    pub status: Option<riposte_sigma::Status>,
    pub techniques: Vec<&'a str>,
    pub tactics: Vec<&'a str>,
    pub tags: &'a [String],
    pub file: String,
    pub record_id: Option<u64>,
    pub timestamp: Option<String>,
    pub computer: Option<&'a str>,
    pub event: &'a Event,
}

pub fn record<'a>(engine: &'a Engine, result: &'a HuntResult, detection: &'a Detection) -> DetectionRecord<'a> {
    let meta = &engine.rule(detection.rule).meta;
    DetectionRecord {
        rule_id: meta.id.as_deref(),
        rule_title: &meta.title,
        level: meta.level,
        status: meta.status,
        techniques: meta.techniques.iter().map(|technique| technique.id.as_str()).collect(),
        tactics: meta.tactics.iter().map(|tactic| tactic.short_name.as_str()).collect(),
        tags: &meta.tags,
        file: result.inputs[detection.input].path.display().to_string(),
        record_id: detection.record_id,
        timestamp: timestamp_text(detection.timestamp),
        computer: computer(&detection.event),
        event: &detection.event,
    }
}

/// The machine form of another tool's alert: a detection record whose rule
/// is the tool's (`wazuh:5712`).
pub fn native_record<'a>(result: &'a HuntResult, found: &'a NativeDetection) -> DetectionRecord<'a> {
    DetectionRecord {
        rule_id: Some(&found.alert.rule_id),
        rule_title: &found.alert.title,
        level: found.alert.level.parse().ok(),
        status: None,
        techniques: found.alert.techniques.iter().map(String::as_str).collect(),
        tactics: Vec::new(),
        tags: &[],
        file: result.inputs[found.input].path.display().to_string(),
        record_id: found.record_id,
        timestamp: timestamp_text(found.timestamp),
        computer: computer(&found.event),
        event: &found.event,
    }
}

/// The machine form of a threat-intelligence match: a detection record
/// whose rule is the indicator (`intel:ip:45.77.12.9`), with `intel` saying
/// which field held it.
pub fn intel_record<'a>(result: &'a HuntResult, found: &'a IntelDetection) -> serde_json::Value {
    let mut json = serde_json::to_value(intel_detection_record(result, found)).unwrap_or_default();
    json["intel"] = serde_json::to_value(&found.intel).unwrap_or_default();
    json
}

fn intel_detection_record<'a>(result: &'a HuntResult, found: &'a IntelDetection) -> DetectionRecord<'a> {
    DetectionRecord {
        rule_id: Some(&found.rule_id),
        rule_title: &found.title,
        level: Some(found.level),
        status: None,
        techniques: found.techniques.iter().map(String::as_str).collect(),
        tactics: Vec::new(),
        tags: &[],
        file: result.inputs[found.input].path.display().to_string(),
        record_id: found.record_id,
        timestamp: timestamp_text(found.timestamp),
        computer: computer(&found.event),
        event: &found.event,
    }
}

/// The machine form of one correlation match.
#[derive(Serialize)]
pub struct CorrelationRecord<'a> {
    pub rule_id: Option<&'a str>,
    pub rule_title: &'a str,
    pub level: Option<Level>,
    pub status: Option<riposte_sigma::Status>,
    pub techniques: Vec<&'a str>,
    pub tactics: Vec<&'a str>,
    pub tags: &'a [String],
    pub timestamp: Option<String>,
    pub correlation: CorrelationDetails<'a>,
}

#[derive(Serialize)]
pub struct CorrelationDetails<'a> {
    #[serde(rename = "type")]
    pub kind: CorrelationType,
    /// Time of the first detection in the window.
    pub first: Option<String>,
    pub group: BTreeMap<&'a str, &'a str>,
    /// The figure the condition compared.
    pub value: f64,
    pub events: u64,
}

fn time_of_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

pub fn correlation_record<'a>(engine: &'a Engine, found: &'a CorrelationMatch) -> CorrelationRecord<'a> {
    let correlation = &engine.correlations()[found.correlation];
    let meta = &correlation.meta;
    CorrelationRecord {
        rule_id: meta.id.as_deref().or(meta.name.as_deref()),
        rule_title: &meta.title,
        level: meta.level,
        status: meta.status,
        techniques: meta.techniques.iter().map(|technique| technique.id.as_str()).collect(),
        tactics: meta.tactics.iter().map(|tactic| tactic.short_name.as_str()).collect(),
        tags: &meta.tags,
        timestamp: timestamp_text(time_of_ms(found.time_ms)),
        correlation: CorrelationDetails {
            kind: correlation.kind,
            first: timestamp_text(time_of_ms(found.first_ms)),
            group: found.group.iter().map(|(field, value)| (field.as_str(), value.as_str())).collect(),
            value: found.value,
            events: found.events,
        },
    }
}

/// One line saying what a correlation match counted, for people.
fn correlation_summary(engine: &Engine, found: &CorrelationMatch) -> String {
    let correlation = &engine.correlations()[found.correlation];
    let value = if found.value.fract() == 0.0 { format!("{}", found.value) } else { format!("{:.2}", found.value) };
    let field = correlation.field.as_deref().unwrap_or("value");
    let figure = match correlation.kind {
        CorrelationType::EventCount => format!("{value} events"),
        CorrelationType::ValueCount => format!("{value} distinct {field}"),
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
            format!("{value} of {} rules", correlation.rules.len())
        }
        CorrelationType::ValueSum => format!("sum of {field} {value}"),
        CorrelationType::ValueAvg => format!("average {field} {value}"),
        CorrelationType::ValuePercentile | CorrelationType::ValueMedian => format!("percentile of {field} {value}"),
    };
    let group: Vec<String> = found.group.iter().map(|(field, value)| format!("{field}={value}")).collect();
    if group.is_empty() { figure } else { format!("{figure}  {}", group.join("  ")) }
}

pub fn write(
    out: &mut dyn Write,
    format: OutputFormat,
    engine: &Engine,
    result: &HuntResult,
    style: TextStyle,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => write_text(out, engine, result, style),
        OutputFormat::Json => {
            let mut records: Vec<serde_json::Value> = Vec::new();
            for detection in &result.detections {
                records.push(serde_json::to_value(record(engine, result, detection))?);
            }
            for found in &result.native {
                records.push(serde_json::to_value(native_record(result, found))?);
            }
            for found in &result.intel {
                records.push(intel_record(result, found));
            }
            for found in &result.correlations {
                records.push(serde_json::to_value(correlation_record(engine, found))?);
            }
            serde_json::to_writer_pretty(&mut *out, &records)?;
            writeln!(out)
        }
        OutputFormat::Jsonl => {
            for detection in &result.detections {
                serde_json::to_writer(&mut *out, &record(engine, result, detection))?;
                writeln!(out)?;
            }
            for found in &result.native {
                serde_json::to_writer(&mut *out, &native_record(result, found))?;
                writeln!(out)?;
            }
            for found in &result.intel {
                serde_json::to_writer(&mut *out, &intel_record(result, found))?;
                writeln!(out)?;
            }
            for found in &result.correlations {
                serde_json::to_writer(&mut *out, &correlation_record(engine, found))?;
                writeln!(out)?;
            }
            Ok(())
        }
        OutputFormat::Csv => write_csv(out, engine, result),
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// One CSV row, fields quoted as needed.
fn write_csv_row(out: &mut dyn Write, fields: &[String]) -> io::Result<()> {
    let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
    writeln!(out, "{}", row.join(","))
}

/// The CSV row of a detection record, with its details.
fn write_detection_row(out: &mut dyn Write, record: DetectionRecord<'_>, details: String) -> io::Result<()> {
    write_csv_row(
        out,
        &[
            record.timestamp.unwrap_or_default(),
            record.level.map(|level| level.to_string()).unwrap_or_default(),
            record.rule_title.to_owned(),
            record.rule_id.unwrap_or_default().to_owned(),
            record.status.map(|status| status.to_string()).unwrap_or_default(),
            record.techniques.join(" "),
            record.computer.unwrap_or_default().to_owned(),
            record.file,
            record.record_id.map(|id| id.to_string()).unwrap_or_default(),
            details,
        ],
    )
}

fn write_csv(out: &mut dyn Write, engine: &Engine, result: &HuntResult) -> io::Result<()> {
    writeln!(out, "timestamp,level,rule_title,rule_id,status,techniques,computer,file,record_id,details")?;
    for detection in &result.detections {
        let rule = engine.rule(detection.rule);
        let details: Vec<String> =
            key_fields(rule, &detection.event).iter().map(|(name, value)| format!("{name}={value}")).collect();
        write_detection_row(out, record(engine, result, detection), details.join("; "))?;
    }
    for found in &result.native {
        let tool = found.alert.rule_id.split(':').next().unwrap_or("");
        let details = format!("level {} in {tool}", found.alert.original_level);
        write_detection_row(out, native_record(result, found), details)?;
    }
    for found in &result.intel {
        let details = format!("{}={}", found.intel.field, found.intel.value);
        write_detection_row(out, intel_detection_record(result, found), details)?;
    }
    for found in &result.correlations {
        let record = correlation_record(engine, found);
        write_csv_row(
            out,
            &[
                record.timestamp.unwrap_or_default(),
                record.level.map(|level| level.to_string()).unwrap_or_default(),
                record.rule_title.to_owned(),
                record.rule_id.unwrap_or_default().to_owned(),
                record.status.map(|status| status.to_string()).unwrap_or_default(),
                record.techniques.join(" "),
                String::new(),
                String::new(),
                String::new(),
                correlation_summary(engine, found),
            ],
        )?;
    }
    Ok(())
}

fn level_style(level: Option<Level>, color: bool) -> (&'static str, &'static str) {
    if !color {
        return ("", "");
    }
    let start = match level {
        Some(Level::Critical) => "\x1b[1;97;41m",
        Some(Level::High) => "\x1b[1;31m",
        Some(Level::Medium) => "\x1b[1;33m",
        Some(Level::Low) => "\x1b[36m",
        Some(Level::Informational) | None => "\x1b[2m",
    };
    (start, "\x1b[0m")
}

/// Correlation matches come first: each stands for many detections.
fn write_correlations_text(
    out: &mut dyn Write,
    engine: &Engine,
    result: &HuntResult,
    style: TextStyle,
) -> io::Result<()> {
    let mut by_correlation: BTreeMap<usize, Vec<&CorrelationMatch>> = BTreeMap::new();
    for found in &result.correlations {
        by_correlation.entry(found.correlation).or_default().push(found);
    }
    let mut groups: Vec<(usize, Vec<&CorrelationMatch>)> = by_correlation.into_iter().collect();
    groups.sort_by_key(|(index, found)| {
        (std::cmp::Reverse(engine.correlations()[*index].meta.level), std::cmp::Reverse(found.len()))
    });
    let (dim, reset) = if style.color { ("\x1b[2m", "\x1b[0m") } else { ("", "") };
    for (index, found) in groups {
        let correlation = &engine.correlations()[index];
        let meta = &correlation.meta;
        let (start, end) = level_style(meta.level, style.color);
        let level = meta.level.map_or("none".to_owned(), |level| level.to_string().to_uppercase());
        let count = found.len();
        let noun = if count == 1 { "match" } else { "matches" };
        writeln!(out, "{start}{level:<8}{end} {}  {dim}(correlation, {count} {noun}){reset}", meta.title)?;
        let id = meta.id.as_deref().or(meta.name.as_deref()).unwrap_or("(no id)");
        writeln!(
            out,
            "  {dim}rule{reset}    {id} · {} over {} · {}",
            correlation.kind.name(),
            timespan_text(correlation.timespan),
            correlation.file
        )?;
        let shown = if style.limit == 0 { count } else { style.limit.min(count) };
        for found in &found[..shown] {
            let when = |ms| time_of_ms(ms).map_or_else(|| "(no time)".to_owned(), text_time);
            writeln!(
                out,
                "  {} → {}  {}",
                when(found.first_ms),
                when(found.time_ms),
                correlation_summary(engine, found)
            )?;
        }
        if shown < count {
            writeln!(out, "  {dim}… {} more (--limit 0 shows all){reset}", count - shown)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn timespan_text(span: std::time::Duration) -> String {
    let seconds = span.as_secs();
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn text_time(time: OffsetDateTime) -> String {
    time.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"))
        .unwrap_or_else(|_| "(no time)".to_owned())
}

/// Other tools' alerts, grouped by their rule.
fn write_native_text(out: &mut dyn Write, result: &HuntResult, style: TextStyle) -> io::Result<()> {
    let mut by_rule: BTreeMap<&str, Vec<&NativeDetection>> = BTreeMap::new();
    for found in &result.native {
        by_rule.entry(found.alert.rule_id.as_str()).or_default().push(found);
    }
    let mut groups: Vec<(&str, Vec<&NativeDetection>)> = by_rule.into_iter().collect();
    let level = |found: &[&NativeDetection]| found[0].alert.level.parse::<Level>().ok();
    groups.sort_by_key(|(_, found)| (std::cmp::Reverse(level(found)), std::cmp::Reverse(found.len())));
    let (dim, reset) = if style.color { ("\x1b[2m", "\x1b[0m") } else { ("", "") };
    for (rule_id, found) in groups {
        let first = &found[0].alert;
        let (start, end) = level_style(level(&found), style.color);
        let count = found.len();
        let noun = if count == 1 { "alert" } else { "alerts" };
        let name = first.level.to_uppercase();
        writeln!(out, "{start}{name:<8}{end} {}  {dim}({count} {noun} raised by {rule_id}){reset}", first.title)?;
        if !first.techniques.is_empty() {
            writeln!(out, "  {dim}ATT&CK{reset}  {}", first.techniques.join(" · "))?;
        }
        let shown = if style.limit == 0 { count } else { style.limit.min(count) };
        for found in &found[..shown] {
            let time = found.timestamp.map_or_else(|| "(no time)".to_owned(), text_time);
            let computer = computer(&found.event).unwrap_or("-");
            writeln!(
                out,
                "  {time}  {computer}  {dim}{} · level {}{reset}",
                result.inputs[found.input].path.display(),
                found.alert.original_level
            )?;
        }
        if shown < count {
            writeln!(out, "  {dim}… {} more (--limit 0 shows all){reset}", count - shown)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Threat-intelligence matches, grouped by indicator value.
fn write_intel_text(out: &mut dyn Write, result: &HuntResult, style: TextStyle) -> io::Result<()> {
    let mut by_value: BTreeMap<&str, Vec<&IntelDetection>> = BTreeMap::new();
    for found in &result.intel {
        by_value.entry(found.rule_id.as_str()).or_default().push(found);
    }
    let mut groups: Vec<Vec<&IntelDetection>> = by_value.into_values().collect();
    groups.sort_by_key(|found| (std::cmp::Reverse(found[0].level), std::cmp::Reverse(found.len())));
    let (dim, reset) = if style.color { ("\x1b[2m", "\x1b[0m") } else { ("", "") };
    for found in groups {
        let first = found[0];
        let (start, end) = level_style(Some(first.level), style.color);
        let name = first.level.to_string().to_uppercase();
        let count = found.len();
        let noun = if count == 1 { "event" } else { "events" };
        writeln!(out, "{start}{name:<8}{end} {}  {dim}({count} {noun}){reset}", first.title)?;
        for matched in &first.intel.indicators {
            let indicator = &matched.indicator;
            let seen = indicator
                .last_seen
                .or(indicator.first_seen)
                .and_then(time_of_ms)
                .map_or_else(String::new, |time| format!(" · last seen {}", text_time(time)));
            writeln!(
                out,
                "  {dim}indicator {} {} · score {:.0} of confidence {}{seen}{reset}",
                indicator.kind, indicator.value, matched.score, indicator.confidence
            )?;
        }
        let shown = if style.limit == 0 { count } else { style.limit.min(count) };
        for found in &found[..shown] {
            let time = found.timestamp.map_or_else(|| "(no time)".to_owned(), text_time);
            let computer = computer(&found.event).unwrap_or("-");
            let record = found.record_id.map(|id| format!(" #{id}")).unwrap_or_default();
            writeln!(out, "  {time}  {computer}  {dim}{}{record}{reset}", result.inputs[found.input].path.display())?;
        }
        if shown < count {
            writeln!(out, "  {dim}… {} more (--limit 0 shows all){reset}", count - shown)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn write_text(out: &mut dyn Write, engine: &Engine, result: &HuntResult, style: TextStyle) -> io::Result<()> {
    write_correlations_text(out, engine, result, style)?;
    write_native_text(out, result, style)?;
    write_intel_text(out, result, style)?;
    // Rules by level (highest first), then by number of detections.
    let mut by_rule: BTreeMap<usize, Vec<&Detection>> = BTreeMap::new();
    for detection in &result.detections {
        by_rule.entry(detection.rule).or_default().push(detection);
    }
    let mut groups: Vec<(usize, Vec<&Detection>)> = by_rule.into_iter().collect();
    groups.sort_by(|(a_rule, a), (b_rule, b)| {
        let level = |rule: usize| engine.rule(rule).meta.level;
        (level(*b_rule), b.len(), &engine.rule(*a_rule).meta.title).cmp(&(
            level(*a_rule),
            a.len(),
            &engine.rule(*b_rule).meta.title,
        ))
    });
    let (dim, reset) = if style.color { ("\x1b[2m", "\x1b[0m") } else { ("", "") };
    for (rule_index, detections) in groups {
        let rule = engine.rule(rule_index);
        let meta = &rule.meta;
        let (start, end) = level_style(meta.level, style.color);
        let level = meta.level.map_or("none".to_owned(), |level| level.to_string().to_uppercase());
        let count = detections.len();
        let noun = if count == 1 { "detection" } else { "detections" };
        writeln!(out, "{start}{level:<8}{end} {}  {dim}({count} {noun}){reset}", meta.title)?;
        let mut attack: Vec<String> = meta
            .techniques
            .iter()
            .map(|technique| match &technique.name {
                Some(name) => format!("{} {name}", technique.id),
                None => technique.id.clone(),
            })
            .collect();
        attack.extend(meta.tactics.iter().map(|tactic| tactic.name.clone()));
        if !attack.is_empty() {
            writeln!(out, "  {dim}ATT&CK{reset}  {}", attack.join(" · "))?;
        }
        let status = meta.status.map_or("no status".to_owned(), |status| status.to_string());
        writeln!(out, "  {dim}rule{reset}    {} · {status} · {}", meta.id.as_deref().unwrap_or("(no id)"), rule.file)?;
        let shown = if style.limit == 0 { count } else { style.limit.min(count) };
        for detection in &detections[..shown] {
            let time = detection.timestamp.map_or_else(|| "(no time)".to_owned(), text_time);
            let computer = computer(&detection.event).unwrap_or("-");
            let record = detection.record_id.map(|id| format!(" #{id}")).unwrap_or_default();
            writeln!(
                out,
                "  {time}  {computer}  {dim}{}{record}{reset}",
                result.inputs[detection.input].path.display()
            )?;
            let fields: Vec<String> = key_fields(rule, &detection.event)
                .iter()
                .map(|(name, value)| format!("{dim}{name}={reset}{}", shown_within(value, MAX_VALUE_CHARS)))
                .collect();
            if !fields.is_empty() {
                writeln!(out, "      {}", fields.join("  "))?;
            }
        }
        if shown < count {
            writeln!(
                out,
                "  {dim}… {} more (--limit 0 shows all, --format jsonl gives every detection){reset}",
                count - shown
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
