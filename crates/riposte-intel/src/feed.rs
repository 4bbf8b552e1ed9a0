//! Reading indicators from the simplest feeds: plain blocklists (one value a
//! line, comments allowed) and CSV with a column mapping. A bad line is
//! reported with its number and the rest is read.

use std::collections::BTreeMap;

use crate::defang::refang;
use crate::indicator::{Indicator, IndicatorKind, Tlp};
use crate::normalize::{normalize, recognise};

/// A feed that cannot be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("CSV has no column {0:?}")]
    NoColumn(String),
    #[error("CSV column mapping names no value column")]
    NoValueColumn,
}

/// What reading a feed did: indicators read, and each line skipped with why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedReport {
    pub read: usize,
    pub skipped: Vec<(usize, String)>,
}

/// Reads a plain blocklist: one value a line (defanged values are read as
/// real), `#`, `;` and `//` comments, blank lines ignored. Each value's kind
/// is `kind`, or recognised from the value when `None`.
pub fn read_blocklist(text: &str, source: &str, kind: Option<IndicatorKind>) -> (Vec<Indicator>, FeedReport) {
    let mut indicators = Vec::new();
    let mut report = FeedReport::default();
    for (number, line) in text.lines().enumerate() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let line = line.split(" //").next().unwrap_or(line).trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        // Some lists put a score or a comment after the value; hosts files
        // put an address first (`0.0.0.0 evil.example`): the name is the value.
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or(line);
        let value = match words.next() {
            Some(name) if matches!(first, "0.0.0.0" | "127.0.0.1" | "::" | "::1") => refang(name),
            _ => refang(first),
        };
        let parsed = match kind {
            Some(kind) => normalize(kind, &value).map(|value| (kind, value)).map_err(|error| error.to_string()),
            None => recognise(&value)
                .ok_or_else(|| format!("{value:?} is not an address, network, domain, URL, e-mail or hash")),
        };
        match parsed {
            Ok((kind, value)) => {
                indicators.push(Indicator::new(kind, value, source));
                report.read += 1;
            }
            Err(reason) => report.skipped.push((number + 1, reason)),
        }
    }
    (indicators, report)
}

/// Which CSV column holds what (by header name). `kind` may name a column,
/// or be fixed for the whole feed; without either, kinds are recognised.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsvColumns {
    pub value: String,
    pub kind_column: Option<String>,
    pub kind: Option<IndicatorKind>,
    pub confidence: Option<String>,
    pub tags: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub tlp: Option<String>,
    /// A column whose `0` or `false` leaves the row out (MISP's `to_ids`).
    pub to_ids: Option<String>,
}

/// Reads CSV with a header row and the columns `columns` names. Times are
/// milliseconds, seconds or RFC 3339-ish `YYYY-MM-DD[ T]HH:MM:SS` (UTC);
/// tags are separated by `,`, `;` or `|` inside their field.
pub fn read_csv(text: &str, source: &str, columns: &CsvColumns) -> Result<(Vec<Indicator>, FeedReport), FeedError> {
    let mut lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Ok((Vec::new(), FeedReport::default()));
    };
    let names: Vec<String> = split_csv(header).into_iter().map(|name| name.trim().to_ascii_lowercase()).collect();
    let position = |wanted: &Option<String>| -> Result<Option<usize>, FeedError> {
        match wanted {
            None => Ok(None),
            Some(name) => names
                .iter()
                .position(|known| known.eq_ignore_ascii_case(name.trim()))
                .map(Some)
                .ok_or_else(|| FeedError::NoColumn(name.clone())),
        }
    };
    if columns.value.trim().is_empty() {
        return Err(FeedError::NoValueColumn);
    }
    let value_at = position(&Some(columns.value.clone()))?.ok_or(FeedError::NoValueColumn)?;
    let kind_at = position(&columns.kind_column)?;
    let confidence_at = position(&columns.confidence)?;
    let tags_at = position(&columns.tags)?;
    let first_at = position(&columns.first_seen)?;
    let last_at = position(&columns.last_seen)?;
    let tlp_at = position(&columns.tlp)?;
    let to_ids_at = position(&columns.to_ids)?;
    let mut indicators = Vec::new();
    let mut report = FeedReport::default();
    for (number, line) in lines {
        let fields = split_csv(line);
        let field = |at: Option<usize>| {
            at.and_then(|at| fields.get(at)).map(|field| field.trim()).filter(|field| !field.is_empty())
        };
        let Some(raw) = field(Some(value_at)) else {
            report.skipped.push((number + 1, format!("no value in column {:?}", columns.value)));
            continue;
        };
        if field(to_ids_at).is_some_and(|flag| flag == "0" || flag.eq_ignore_ascii_case("false")) {
            report.skipped.push((number + 1, "not meant for detection (to_ids is false)".into()));
            continue;
        }
        let parsed = match row_values(field(kind_at), columns.kind, raw) {
            Ok((parsed, left_out)) => {
                report.skipped.extend(left_out.into_iter().map(|reason| (number + 1, reason)));
                parsed
            }
            Err(reason) => {
                report.skipped.push((number + 1, reason));
                continue;
            }
        };
        let tags: Vec<String> = field(tags_at)
            .map(|tags| {
                tags.split([',', ';', '|']).map(str::trim).filter(|tag| !tag.is_empty()).map(str::to_owned).collect()
            })
            .unwrap_or_default();
        // A TLP column, or a `tlp:` tag (kept out of the tags).
        let tlp = field(tlp_at)
            .and_then(|text| text.parse::<Tlp>().ok())
            .or_else(|| tags.iter().filter_map(|tag| tag.parse::<Tlp>().ok().filter(|_| tag.contains(':'))).max());
        for (kind, value) in parsed {
            let mut indicator = Indicator::new(kind, value, source);
            if let Some(confidence) = field(confidence_at).and_then(|text| text.parse::<f64>().ok()) {
                indicator.confidence = confidence.clamp(0.0, 100.0) as u8;
            }
            indicator.tags = tags.iter().filter(|tag| !tag.to_ascii_lowercase().starts_with("tlp:")).cloned().collect();
            indicator.first_seen = field(first_at).and_then(parse_time);
            indicator.last_seen = field(last_at).and_then(parse_time);
            indicator.tlp = tlp.unwrap_or_default();
            indicators.push(indicator);
            report.read += 1;
        }
    }
    Ok((indicators, report))
}

/// A row's indicators: its value of the kind its type column names (or the
/// fixed kind, or recognised from the value), and why parts were left out.
/// A composite MISP type (`domain|ip`, `filename|sha256`, `ip-dst|port`)
/// gives one indicator per part of a kind Riposte matches.
type RowValues = (Vec<(IndicatorKind, String)>, Vec<String>);

fn row_values(named: Option<&str>, fixed: Option<IndicatorKind>, raw: &str) -> Result<RowValues, String> {
    let value = refang(raw);
    let Some(named) = named else {
        let found = match fixed {
            Some(kind) => (kind, normalize(kind, &value).map_err(|error| error.to_string())?),
            None => recognise(&value).ok_or_else(|| format!("{value:?} is not a recognised indicator"))?,
        };
        return Ok((vec![found], Vec::new()));
    };
    // Riposte's kind names and their aliases, then MISP's attribute types.
    let kind_named =
        |name: &str| name.parse::<IndicatorKind>().ok().or_else(|| crate::misp::kind_of(&name.to_ascii_lowercase()));
    let types: Vec<&str> = named.split('|').collect();
    let (mut found, mut left_out) = (Vec::new(), Vec::new());
    for (part_type, part_value) in types.iter().zip(value.splitn(types.len(), '|')) {
        let Some(kind) = kind_named(part_type) else { continue };
        // MISP allows a network where an address is expected.
        let kind = if kind == IndicatorKind::Ip && part_value.contains('/') { IndicatorKind::Cidr } else { kind };
        match normalize(kind, part_value) {
            Ok(normalised) => found.push((kind, normalised)),
            Err(error) => left_out.push(error.to_string()),
        }
    }
    if found.is_empty() {
        return Err(match left_out.pop() {
            Some(reason) => reason,
            None => format!("unknown indicator type {named:?}"),
        });
    }
    Ok((found, left_out))
}

/// One CSV record's fields: `,` separated, `"` quoted with `""` for a quote.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut field)),
            (ch, _) => field.push(ch),
        }
    }
    fields.push(field);
    fields
}

/// Milliseconds since the epoch from epoch seconds or milliseconds, or a
/// `YYYY-MM-DD[ T]HH:MM:SS[...]` UTC time (a date alone is its midnight).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i64>() {
        return if number > 100_000_000_000 { Some(number) } else { number.checked_mul(1000) };
    }
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range).and_then(|part| part.parse::<i64>().ok());
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = if bytes.len() >= 19 && matches!(bytes[10], b'T' | b' ') {
        (number(11..13)?, number(14..16)?, number(17..19)?)
    } else {
        (0, 0, 0)
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some((days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second) * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Counts of indicators by kind, for reports.
pub fn count_by_kind(indicators: &[Indicator]) -> BTreeMap<IndicatorKind, usize> {
    let mut counts = BTreeMap::new();
    for indicator in indicators {
        *counts.entry(indicator.kind).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocklists() {
        let text = "# bad hosts\n198.51.100.7\nevil[.]example   # defanged\n\n; another comment\nhxxp://evil.example/a.ps1\nnot a value\n203.0.113.0/24 90\n";
        let (indicators, report) = read_blocklist(text, "list", None);
        let kinds: Vec<IndicatorKind> = indicators.iter().map(|indicator| indicator.kind).collect();
        assert_eq!(kinds, [IndicatorKind::Ip, IndicatorKind::Domain, IndicatorKind::Url, IndicatorKind::Cidr]);
        assert_eq!(indicators[1].value, "evil.example");
        assert_eq!(report.read, 4);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].0, 7, "the line number");
        let (hosts, _) = read_blocklist("0.0.0.0 ads.evil.example\n127.0.0.1 c2.evil.example\n", "hosts", None);
        assert_eq!(
            hosts.iter().map(|indicator| indicator.value.as_str()).collect::<Vec<_>>(),
            ["ads.evil.example", "c2.evil.example"]
        );
        let (domains, report) = read_blocklist("evil.example\n198.51.100.7\n", "list", Some(IndicatorKind::Domain));
        assert_eq!((domains.len(), report.skipped.len()), (1, 1), "an address is no domain");
    }

    #[test]
    fn csv_with_a_column_mapping() {
        let text = "indicator,type,score,tags,first_seen,tlp\n\"198.51.100.7\",ip-dst,80,\"c2, botnet\",2026-11-29T10:00:00Z,amber\nevil.example,domain,,phishing,1795946400,\nbad,ip,10,,,\n";
        let columns = CsvColumns {
            value: "indicator".into(),
            kind_column: Some("type".into()),
            confidence: Some("score".into()),
            tags: Some("tags".into()),
            first_seen: Some("first_seen".into()),
            tlp: Some("tlp".into()),
            ..CsvColumns::default()
        };
        let (indicators, report) = read_csv(text, "csv", &columns).unwrap();
        assert_eq!(indicators.len(), 2);
        assert_eq!((indicators[0].kind, indicators[0].confidence), (IndicatorKind::Ip, 80));
        assert_eq!(indicators[0].tags, ["c2", "botnet"]);
        assert_eq!(indicators[0].tlp, Tlp::Amber);
        assert_eq!(indicators[0].first_seen, Some(1_795_946_400_000));
        assert_eq!(indicators[1].first_seen, Some(1_795_946_400_000), "epoch seconds");
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].0, 4);
        let missing = CsvColumns { value: "ioc".into(), ..CsvColumns::default() };
        assert_eq!(read_csv(text, "csv", &missing).unwrap_err(), FeedError::NoColumn("ioc".into()));
    }

    #[test]
    fn a_misp_csv_export() {
        let text = "uuid,event_id,category,type,value,comment,to_ids,date,attribute_tag\n\
            u1,12,Network activity,ip-dst,45.77.12.9,C2,1,1795946400,\"tlp:amber,apt\"\n\
            u2,12,Network activity,ip-dst|port,45.77.12.10|443,,1,1795946400,\n\
            u3,12,Network activity,domain|ip,evil.example|45.77.12.11,,True,1795946400,\n\
            u4,12,Other,comment,hello,,0,1795946400,\n\
            u5,12,Payload delivery,filename|sha256,a.exe|not-a-hash,,1,1795946400,\n\
            u6,12,Network activity,ip-src,45.77.13.0/24,,1,1795946400,\n\
            u7,12,Network activity,ja3-fingerprint-md5,E7D705A3286E19EA42F587B344EE6865,,1,1795946400,\n\
            u8,12,Network activity,ip-dst,not-an-ip,,1,1795946400,\n";
        let columns = CsvColumns {
            value: "value".into(),
            kind_column: Some("type".into()),
            tags: Some("attribute_tag".into()),
            first_seen: Some("date".into()),
            to_ids: Some("to_ids".into()),
            ..CsvColumns::default()
        };
        let (indicators, report) = read_csv(text, "misp", &columns).unwrap();
        let values: Vec<String> = indicators.iter().map(|found| format!("{} {}", found.kind, found.value)).collect();
        assert_eq!(
            values,
            [
                "ip 45.77.12.9",
                "ip 45.77.12.10",
                "domain evil.example",
                "ip 45.77.12.11",
                "file-name a.exe",
                "cidr 45.77.13.0/24",
                "ja3 e7d705a3286e19ea42f587b344ee6865",
            ]
        );
        assert_eq!((indicators[0].tlp, indicators[0].tags.as_slice()), (Tlp::Amber, &["apt".to_owned()][..]));
        assert_eq!(indicators[0].first_seen, Some(1_795_946_400_000));
        let lines: Vec<usize> = report.skipped.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [5, 6, 9], "to_ids 0, the bad hash of a kept name, a bad address: {:?}", report.skipped);
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(split_csv(r#"a,"b,c","say ""hi""",,e"#), ["a", "b,c", "say \"hi\"", "", "e"]);
    }
}
