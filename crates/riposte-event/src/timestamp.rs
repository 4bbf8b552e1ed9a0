//! Reading timestamps in the forms security tools write them.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Parses RFC 3339 (`2019-03-19T23:35:15.1852181Z`), the space-separated UTC
/// form of Sysmon and many logs (`2025-11-26 05:11:27.908`), and Unix epoch
/// seconds or milliseconds (`1700000000`, `1700000000.25`, `1700000000123`).
/// Times without an offset are taken as UTC.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if text.as_bytes()[0].is_ascii_digit() && text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
        return parse_epoch(text);
    }
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(time);
    }
    // `+0000` (Suricata, Wazuh): RFC 3339 wants `+00:00`.
    if let Some(time) = with_colon_in_offset(text).and_then(|fixed| OffsetDateTime::parse(&fixed, &Rfc3339).ok()) {
        return Some(time);
    }
    let local = text.strip_suffix('Z').unwrap_or(text);
    let with_fraction = format_description!("[year]-[month]-[day][first [T] [ ]][hour]:[minute]:[second].[subsecond]");
    let without_fraction = format_description!("[year]-[month]-[day][first [T] [ ]][hour]:[minute]:[second]");
    PrimitiveDateTime::parse(local, with_fraction)
        .or_else(|_| PrimitiveDateTime::parse(local, without_fraction))
        .ok()
        .map(|time| time.assume_offset(UtcOffset::UTC))
}

/// `2026-11-29T10:00:00.1+0000` as `2026-11-29T10:00:00.1+00:00`.
fn with_colon_in_offset(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let sign = bytes.len().checked_sub(5)?;
    let digits = &bytes[sign + 1..];
    if !matches!(bytes[sign], b'+' | b'-') || !digits.iter().all(u8::is_ascii_digit) || !text.contains('T') {
        return None;
    }
    Some(format!("{}:{}", &text[..sign + 3], &text[sign + 3..]))
}

fn parse_epoch(text: &str) -> Option<OffsetDateTime> {
    let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.contains('.') || integer.len() > 15 {
        return None;
    }
    let whole: i128 = integer.parse().ok()?;
    // Nine fractional digits at most matter: nanoseconds.
    let digits = &fraction[..fraction.len().min(9)];
    let fraction_nanos: i128 =
        if digits.is_empty() { 0 } else { digits.parse::<i128>().ok()? * 10_i128.pow(9 - digits.len() as u32) };
    // Twelve or more integer digits are milliseconds (seconds would be past the year 5138).
    let nanos = if integer.len() >= 12 {
        whole * 1_000_000 + fraction_nanos / 1_000
    } else {
        whole * 1_000_000_000 + fraction_nanos
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms() {
        let rfc = parse("2019-03-19T23:35:15.1852181Z").unwrap();
        assert_eq!((rfc.hour(), rfc.minute(), rfc.nanosecond()), (23, 35, 185_218_100));
        let offset = parse("2024-01-02T03:04:05+02:00").unwrap();
        assert_eq!(offset.offset().whole_hours(), 2);
        let compact = parse("2024-01-02T03:04:05.5-0130").unwrap();
        assert_eq!((compact.offset().whole_minutes(), compact.nanosecond()), (-90, 500_000_000));
        let sysmon = parse("2025-11-26 05:11:27.908").unwrap();
        assert_eq!((sysmon.day(), sysmon.second(), sysmon.millisecond()), (26, 27, 908));
        assert_eq!(parse("2025-11-26 05:11:27").unwrap().minute(), 11);
        assert_eq!(parse("1700000000").unwrap().year(), 2023);
        assert_eq!(parse("1700000000123").unwrap().millisecond(), 123);
        assert_eq!(parse("1700000000.5").unwrap().millisecond(), 500);
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for text in ["", "yesterday", "2024-13-01T00:00:00Z", "12:00", "1.2.3", "99999999999999999999999999"] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
