//! ArcSight Common Event Format: `CEF:0|Vendor|Product|Version|Class
//! ID|Name|Severity|key=value key=value ...`, alone on a line or as the
//! message of a syslog record.
//!
//! In the header, `\|` and `\\` are escapes. In the extension, a value runs
//! until the space before the next `key=`, and `\=`, `\\`, `\n` and `\r` are
//! escapes. `csN` custom strings (and `cnN`, `cfpN`, ...) are also readable
//! under the name their `csNLabel` gives them.

use std::sync::Arc;

use riposte_event::{Event, LogSource, SymbolCache};

/// Most custom-field labels read from one record (each adds an alias).
const MAX_LABELS: usize = 64;

const HEADER: [&str; 7] =
    ["cef.version", "deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId", "name", "cef.severity"];

/// Decodes CEF records. One per worker.
#[derive(Default)]
pub struct CefDecoder {
    symbols: SymbolCache,
    value: String,
    /// (custom field key, its label) of the record being read.
    labels: Vec<(String, String)>,
    sources: Vec<(String, Arc<LogSource>)>,
}

impl CefDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `text` is a CEF record (after any syslog header).
    pub fn is_cef(text: &str) -> bool {
        text.trim_start().starts_with("CEF:")
    }

    /// Reads a whole line as one CEF record.
    pub fn decode_into(&mut self, line: &[u8], event: &mut Event) -> Result<(), String> {
        let text = std::str::from_utf8(line).map_err(|error| format!("not UTF-8: {error}"))?;
        event.clear();
        self.add_to(text.trim_end_matches(['\r', '\n']), event)
    }

    /// Adds the fields of the CEF record `text` to `event` (which may hold a
    /// syslog header's fields already). Its log source becomes `cef`, with
    /// the device product as the service.
    pub fn add_to(&mut self, text: &str, event: &mut Event) -> Result<(), String> {
        let record = text.trim_start().strip_prefix("CEF:").ok_or("no CEF: prefix")?;
        let mut rest = record;
        let mut product = String::new();
        for (position, name) in HEADER.iter().enumerate() {
            let (field, after) = header_field(rest)
                .ok_or_else(|| format!("CEF header has {position} of its 7 fields (missing {})", HEADER[position]))?;
            self.value.clear();
            unescape_header(field, &mut self.value);
            if position == 2 {
                product = self.value.to_ascii_lowercase();
            }
            let symbol = self.symbols.get(name);
            if position == 0 || position == 6 {
                if self.value.parse::<f64>().is_ok() {
                    event.push_number(symbol, name, &self.value);
                } else {
                    event.push_str(symbol, name, &self.value);
                }
            } else {
                event.push_str(symbol, name, &self.value);
            }
            rest = after;
        }
        self.extension(rest, event);
        event.logsource = Some(self.source(&product));
        Ok(())
    }

    fn extension(&mut self, text: &str, event: &mut Event) {
        self.labels.clear();
        let pairs = extension_pairs(text);
        for (key, raw) in &pairs {
            if !event.has_room() {
                break;
            }
            self.value.clear();
            unescape_extension(raw, &mut self.value);
            if let Some(field) = key.strip_suffix("Label")
                && self.labels.len() < MAX_LABELS
            {
                self.labels.push((field.to_owned(), self.value.clone()));
            }
            let symbol = self.symbols.get(key);
            event.push_str(symbol, key, &self.value);
            if (*key == "rt" || *key == "end") && event.timestamp.is_none() {
                event.timestamp = riposte_event::timestamp::parse(&self.value).or_else(|| cef_time(&self.value));
            }
        }
        // A custom field is also readable by its label (`cs1Label=Rule` makes `Rule`).
        for (field, label) in std::mem::take(&mut self.labels) {
            let label_symbol = self.symbols.get(&label);
            if label.is_empty() || event.contains(label_symbol) {
                continue;
            }
            let field_symbol = self.symbols.get(&field);
            event.add_alias(field_symbol, label_symbol);
        }
    }

    fn source(&mut self, product: &str) -> Arc<LogSource> {
        if let Some((_, source)) = self.sources.iter().find(|(known, _)| known == product) {
            return source.clone();
        }
        let source = Arc::new(LogSource {
            product: Some("cef".into()),
            service: (!product.is_empty()).then(|| product.to_owned()),
            category: None,
        });
        if self.sources.len() < 256 {
            self.sources.push((product.to_owned(), source.clone()));
        }
        source
    }
}

/// The header field up to the next unescaped `|`, and what follows it.
fn header_field(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'|' => return Some((&text[..index], &text[index + 1..])),
            _ => index += 1,
        }
    }
    None
}

fn unescape_header(field: &str, out: &mut String) {
    let mut chars = field.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            match chars.next() {
                Some(next @ ('|' | '\\')) => out.push(next),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(ch);
        }
    }
}

fn unescape_extension(value: &str, out: &mut String) {
    let mut chars = value.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(next @ ('=' | '\\' | '|')) => out.push(next),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(ch);
        }
    }
}

/// Whether `bytes[start..end]` is a CEF key (letters, digits, `_`, `.`, `[`, `]`, `-`).
fn is_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key.iter().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'[' | b']' | b'-'))
}

/// The extension's (key, raw value) pairs: a value ends at the last space
/// before the next unescaped `key=`.
fn extension_pairs(text: &str) -> Vec<(&str, &str)> {
    let bytes = text.as_bytes();
    // Positions of unescaped `=` that follow a key.
    // (A key starts after the last space seen, kept while scanning, so that
    // long values cost linear time.)
    let mut equals = Vec::new();
    let mut key_start = 0;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b' ' => {
                key_start = index + 1;
                index += 1;
            }
            b'=' => {
                if is_key(&bytes[key_start..index]) {
                    equals.push((key_start, index));
                }
                index += 1;
            }
            _ => index += 1,
        }
    }
    let mut pairs = Vec::with_capacity(equals.len());
    for (position, &(key_start, equal)) in equals.iter().enumerate() {
        let value_end = equals.get(position + 1).map_or(bytes.len(), |&(next_key, _)| next_key);
        let value = text[equal + 1..value_end].trim_end_matches(' ');
        pairs.push((&text[key_start..equal], value));
    }
    pairs
}

/// CEF's own time forms: epoch milliseconds (handled by the common parser)
/// or `MMM dd yyyy HH:mm:ss`.
fn cef_time(text: &str) -> Option<time::OffsetDateTime> {
    let format =
        time::macros::format_description!("[month repr:short] [day padding:space] [year] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text.trim(), format).ok().map(|time| time.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_run_to_the_next_key() {
        let pairs = extension_pairs(r"src=10.0.0.1 msg=Detected a threat. No action needed act=blocked a\=b");
        assert_eq!(
            pairs,
            [("src", "10.0.0.1"), ("msg", "Detected a threat. No action needed"), ("act", r"blocked a\=b")]
        );
        assert!(extension_pairs("").is_empty());
    }
}
