//! Indicator files read for threat-intelligence matching: STIX bundles and
//! MISP events (JSON), CSV, and plain blocklists, merged into one set.

use std::path::{Path, PathBuf};

use riposte_intel::{CsvColumns, Indicator, IndicatorSet, import_bundle, read_blocklist, read_csv};

/// An indicator file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct IntelFileError {
    pub path: PathBuf,
    pub reason: String,
}

/// What loading indicator files did.
#[derive(Default)]
pub struct Loaded {
    pub set: IndicatorSet,
    pub read: usize,
    /// Lines or objects left out, with where and why.
    pub skipped: Vec<String>,
}

/// Reads indicator files into one set (duplicates across files merged).
pub fn load(paths: &[PathBuf]) -> Result<Loaded, IntelFileError> {
    let mut loaded = Loaded::default();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|error| IntelFileError { path: path.clone(), reason: format!("cannot read: {error}") })?;
        let source =
            path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned());
        let indicators = read_file(path, &text, &source, &mut loaded.skipped)?;
        loaded.read += indicators.len();
        for indicator in indicators {
            loaded.set.insert(indicator);
        }
    }
    Ok(loaded)
}

fn read_file(
    path: &Path,
    text: &str,
    source: &str,
    skipped: &mut Vec<String>,
) -> Result<Vec<Indicator>, IntelFileError> {
    let place = path.display();
    let fail = |reason: String| IntelFileError { path: path.to_path_buf(), reason };
    if text.trim_start().starts_with('{') && text.contains("\"Event\"") {
        let import =
            riposte_intel::import_event(text, source).map_err(|error| fail(format!("not a MISP event: {error}")))?;
        for (kind, value, reason) in &import.skipped {
            skipped.push(format!("{place}: {kind} {value:?}: {reason}"));
        }
        return Ok(import.indicators);
    }
    if text.trim_start().starts_with(['{', '[']) {
        let import = import_bundle(text, source).map_err(|error| fail(format!("not a STIX bundle: {error}")))?;
        for (id, _, reason) in &import.unmatchable {
            skipped.push(format!("{place}: {id}: {reason}"));
        }
        for (position, reason) in &import.errors {
            skipped.push(format!("{place}: object {position}: {reason}"));
        }
        return Ok(import.indicators);
    }
    if path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("csv")) {
        let header = text.lines().next().unwrap_or("").to_ascii_lowercase();
        let columns: Vec<&str> = header.split(',').map(|name| name.trim().trim_matches('"')).collect();
        let pick = |names: &[&str]| names.iter().find(|name| columns.contains(name)).map(|name| (*name).to_owned());
        let Some(value) = pick(&["indicator", "value", "ioc", "observable"]) else {
            return Err(fail("no indicator, value, ioc or observable column".into()));
        };
        let mapping = CsvColumns {
            value,
            kind_column: pick(&["type", "kind", "indicator_type"]),
            confidence: pick(&["confidence", "score"]),
            tags: pick(&["tags", "labels"]),
            first_seen: pick(&["first_seen", "firstseen"]),
            last_seen: pick(&["last_seen", "lastseen"]),
            tlp: pick(&["tlp"]),
            ..CsvColumns::default()
        };
        let (indicators, report) = read_csv(text, source, &mapping).map_err(|error| fail(error.to_string()))?;
        skipped.extend(report.skipped.into_iter().map(|(line, reason)| format!("{place}:{line}: {reason}")));
        return Ok(indicators);
    }
    let (indicators, report) = read_blocklist(text, source, None);
    skipped.extend(report.skipped.into_iter().map(|(line, reason)| format!("{place}:{line}: {reason}")));
    Ok(indicators)
}
