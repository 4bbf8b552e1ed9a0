//! Zeek logs in their native tab-separated form.
//!
//! A log starts with `#` header lines: the separator (`#separator \x09`),
//! the set separator, the markers of empty and unset fields, the log's name
//! (`#path conn`) and the column names and types (`#fields`, `#types`). Data
//! lines follow. An unset field (`-`) is left out of the event, an empty one
//! (`(empty)`) is an empty string, a set or vector becomes repeated fields,
//! numbers and booleans keep their type, `\xNN` escapes are decoded, and `ts`
//! is the event's time. (Zeek's JSON logs are read by the JSON decoder.)

use std::sync::Arc;

use riposte_event::{Event, LogSource, Symbol, SymbolCache};

/// How one column is written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
    Time,
    /// A `set[...]` or `vector[...]`: values joined by the set separator.
    List(ElementKind),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ElementKind {
    Text,
    Number,
}

fn kind_of(zeek_type: &str) -> Kind {
    let number = |name: &str| matches!(name, "count" | "int" | "double" | "port" | "interval");
    if let Some(inner) = zeek_type.strip_prefix("set[").or_else(|| zeek_type.strip_prefix("vector[")) {
        let inner = inner.trim_end_matches(']');
        return Kind::List(if number(inner) { ElementKind::Number } else { ElementKind::Text });
    }
    match zeek_type {
        "bool" => Kind::Bool,
        "time" => Kind::Time,
        name if number(name) => Kind::Number,
        _ => Kind::Text,
    }
}

struct Column {
    name: String,
    symbol: Symbol,
    kind: Kind,
}

/// Reads one Zeek log, line by line; keeps the header's settings.
pub struct ZeekTsvDecoder {
    separator: Vec<u8>,
    set_separator: Vec<u8>,
    empty: Vec<u8>,
    unset: Vec<u8>,
    columns: Vec<Column>,
    logsource: Arc<LogSource>,
    symbols: SymbolCache,
    text: String,
}

impl Default for ZeekTsvDecoder {
    fn default() -> Self {
        ZeekTsvDecoder {
            separator: b"\t".to_vec(),
            set_separator: b",".to_vec(),
            empty: b"(empty)".to_vec(),
            unset: b"-".to_vec(),
            columns: Vec::new(),
            logsource: Arc::new(LogSource::product("zeek")),
            symbols: SymbolCache::new(),
            text: String::new(),
        }
    }
}

/// What a line of a Zeek log was.
#[derive(Debug, PartialEq, Eq)]
pub enum ZeekLine {
    /// A data line, now in the event.
    Event,
    /// A header or blank line.
    Header,
}

impl ZeekTsvDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one line (without its line break).
    pub fn decode_line(&mut self, line: &[u8], event: &mut Event) -> Result<ZeekLine, String> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(ZeekLine::Header);
        }
        if let Some(header) = line.strip_prefix(b"#") {
            self.header(header)?;
            return Ok(ZeekLine::Header);
        }
        if self.columns.is_empty() {
            return Err("data line before the #fields header".into());
        }
        event.clear();
        let mut count = 0;
        for (index, value) in split(line, &self.separator).enumerate() {
            count += 1;
            let Some(column) = self.columns.get(index) else {
                return Err(format!("{} values for {} #fields", index + 1, self.columns.len()));
            };
            if value == self.unset.as_slice() {
                continue;
            }
            let (symbol, kind) = (column.symbol, column.kind);
            if value == self.empty.as_slice() {
                if !matches!(kind, Kind::List(_)) {
                    event.push_str(symbol, &column.name, "");
                }
                continue;
            }
            if let Kind::List(element) = kind {
                // Elements are split before unescaping: `\x2c` is a comma inside one.
                for item in split(value, &self.set_separator) {
                    if item == self.empty.as_slice() {
                        continue;
                    }
                    unescape(item, &mut self.text);
                    match element {
                        ElementKind::Number => push_number_or_text(event, symbol, &column.name, &self.text),
                        ElementKind::Text => event.push_str(symbol, &column.name, &self.text),
                    }
                }
                continue;
            }
            unescape(value, &mut self.text);
            match kind {
                Kind::Text => event.push_str(symbol, &column.name, &self.text),
                Kind::Number => push_number_or_text(event, symbol, &column.name, &self.text),
                Kind::Bool => match self.text.as_str() {
                    "T" => event.push_bool(symbol, &column.name, true),
                    "F" => event.push_bool(symbol, &column.name, false),
                    other => event.push_str(symbol, &column.name, other),
                },
                Kind::Time => {
                    // The record's time is `ts`; other time columns (a
                    // ticket's expiry, a certificate's validity) are values.
                    if column.name == "ts" || (index == 0 && event.timestamp.is_none()) {
                        event.timestamp = riposte_event::timestamp::parse(&self.text);
                    }
                    push_number_or_text(event, symbol, &column.name, &self.text);
                }
                Kind::List(_) => {}
            }
        }
        if count != self.columns.len() {
            return Err(format!("{count} values for {} #fields", self.columns.len()));
        }
        event.logsource = Some(self.logsource.clone());
        Ok(ZeekLine::Event)
    }

    fn header(&mut self, header: &[u8]) -> Result<(), String> {
        // `#separator` is itself separated by a space; the rest by the separator.
        if let Some(value) = header.strip_prefix(b"separator ") {
            unescape(value, &mut self.text);
            self.separator = self.text.as_bytes().to_vec();
            if self.separator.is_empty() {
                return Err("empty #separator".into());
            }
            return Ok(());
        }
        let mut parts = split(header, &self.separator);
        let name = parts.next().unwrap_or_default();
        let values: Vec<&[u8]> = parts.collect();
        let first = || values.first().copied().unwrap_or_default().to_vec();
        match name {
            b"set_separator" => self.set_separator = first(),
            b"empty_field" => self.empty = first(),
            b"unset_field" => self.unset = first(),
            b"path" => {
                let path = String::from_utf8_lossy(&first()).into_owned();
                self.logsource =
                    Arc::new(LogSource { product: Some("zeek".into()), service: Some(path), category: None });
            }
            b"fields" => {
                if values.len() > riposte_event::MAX_FIELDS {
                    return Err(format!("{} #fields, more than {}", values.len(), riposte_event::MAX_FIELDS));
                }
                self.columns = values
                    .iter()
                    .map(|name| {
                        let name = String::from_utf8_lossy(name).into_owned();
                        Column { symbol: self.symbols.get(&name), name, kind: Kind::Text }
                    })
                    .collect();
            }
            b"types" => {
                if values.len() != self.columns.len() {
                    return Err(format!("{} #types for {} #fields", values.len(), self.columns.len()));
                }
                for (column, zeek_type) in self.columns.iter_mut().zip(values) {
                    column.kind = kind_of(&String::from_utf8_lossy(zeek_type));
                }
            }
            // #open, #close and comments say nothing about the records.
            _ => {}
        }
        Ok(())
    }
}

fn push_number_or_text(event: &mut Event, symbol: Symbol, name: &str, text: &str) {
    if !text.is_empty() && text.parse::<f64>().is_ok_and(f64::is_finite) {
        event.push_number(symbol, name, text);
    } else {
        event.push_str(symbol, name, text);
    }
}

fn split<'a>(line: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memmem::find(current, separator) {
            Some(at) => {
                rest = Some(&current[at + separator.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Decodes Zeek's `\xNN` escapes (and `\\`) into `out`; other bytes as UTF-8
/// (invalid sequences replaced).
fn unescape(value: &[u8], out: &mut String) {
    out.clear();
    if !value.contains(&b'\\') {
        out.push_str(&String::from_utf8_lossy(value));
        return;
    }
    let mut bytes = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        let escaped = (value[index] == b'\\' && value.get(index + 1) == Some(&b'x'))
            .then(|| value.get(index + 2..index + 4))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok()));
        if let Some(byte) = escaped {
            bytes.push(byte);
            index += 4;
            continue;
        }
        if value[index] == b'\\' && value.get(index + 1) == Some(&b'\\') {
            bytes.push(b'\\');
            index += 2;
            continue;
        }
        bytes.push(value[index]);
        index += 1;
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut out = String::new();
        unescape(br"\x09", &mut out);
        assert_eq!(out, "\t");
        unescape(br"a\x2cb\\c\x", &mut out);
        assert_eq!(out, r"a,b\c\x");
        unescape(b"plain", &mut out);
        assert_eq!(out, "plain");
        unescape(br"\x+9", &mut out);
        assert_eq!(out, r"\x+9", "two hex digits or no escape");
    }
}
