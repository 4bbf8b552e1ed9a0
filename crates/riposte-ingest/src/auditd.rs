//! Linux audit logs (`/var/log/audit/audit.log`).
//!
//! One audit event is several records (`SYSCALL`, `EXECVE`, `CWD`, `PATH`,
//! `PROCTITLE`, ...) sharing `msg=audit(TIME:SERIAL)`, ended by an `EOE`
//! record or by the next event. They are joined into one Riposte event whose
//! fields repeat where records share a name (`type` is every record's type,
//! so `type: EXECVE` matches). Values written in hex because they hold spaces
//! or control characters (`proctitle`, unquoted `a0`, `name`, `exe`...) are
//! decoded; `proctitle`'s NUL-separated arguments are joined by spaces. The
//! `msg='op=... res=...'` of user-space records is unpacked into fields too.

use std::borrow::Cow;
use std::sync::Arc;

use riposte_event::{Event, LogSource, SymbolCache};

/// Fields that auditd writes in hex when their value needs it.
const ENCODED: &[&str] = &[
    "proctitle",
    "name",
    "exe",
    "comm",
    "ocomm",
    "cwd",
    "path",
    "key",
    "data",
    "cmd",
    "acct",
    "new-disk",
    "old-disk",
    "vm",
];

/// Most records joined into one event (a runaway event is cut there).
const MAX_RECORDS: usize = 512;

/// Joins audit records into events. One per file (it holds the open event).
pub struct AuditdDecoder {
    /// The open event's serial, and the event its records build.
    serial: Option<String>,
    time: Option<time::OffsetDateTime>,
    open: Event,
    records: usize,
    symbols: SymbolCache,
    logsource: Arc<LogSource>,
}

impl Default for AuditdDecoder {
    fn default() -> Self {
        AuditdDecoder {
            serial: None,
            time: None,
            open: Event::new(),
            records: 0,
            symbols: SymbolCache::new(),
            logsource: Arc::new(LogSource {
                product: Some("linux".into()),
                service: Some("auditd".into()),
                category: None,
            }),
        }
    }
}

impl AuditdDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one record. When it ends the open event (an `EOE`, or a record
    /// of another event), that event is written to `event` and `Ok(true)`
    /// returned.
    pub fn decode_line(&mut self, line: &[u8], event: &mut Event) -> Result<bool, String> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() {
            return Ok(false);
        }
        // `node=host type=...` (with a node name) or `type=...`.
        let record = text.find("type=").map(|at| &text[at..]).ok_or("no type= in the record")?;
        // The body follows `): `; a record without one (`EOE`) ends at `):`.
        let (header, body) = record
            .split_once("): ")
            .or_else(|| record.trim_end().strip_suffix("):").map(|head| (head, "")))
            .ok_or("no msg=audit(...) in the record")?;
        let (kind, stamp) = header.split_once(" msg=audit(").ok_or("no msg=audit(...) in the record")?;
        let kind = kind.strip_prefix("type=").unwrap_or(kind).trim();
        let (seconds, serial) = stamp.split_once(':').ok_or("msg=audit(...) has no serial")?;
        let mut finished = false;
        if self.serial.as_deref().is_some_and(|open| open != serial) {
            finished = self.finish(event);
        }
        if kind == "EOE" {
            if self.serial.as_deref() == Some(serial) {
                finished |= self.finish(event);
            }
            return Ok(finished);
        }
        if self.serial.is_none() {
            self.serial = Some(serial.to_owned());
            self.time = riposte_event::timestamp::parse(seconds);
            self.open.clear();
            if let Some(node) = text.strip_prefix("node=").and_then(|rest| rest.split_whitespace().next()) {
                self.push("node", node);
            }
        }
        self.records += 1;
        if self.records > MAX_RECORDS {
            return Ok(finished);
        }
        self.push("type", kind);
        for (key, value) in pairs(body) {
            let decoded = decode_value(kind, key, value);
            // User-space records carry their own `key=value` list in `msg='...'`.
            if key == "msg" && value.starts_with('\'') {
                for (inner_key, inner_value) in pairs(&decoded) {
                    let inner = decode_value(kind, inner_key, inner_value);
                    self.push(inner_key, &inner);
                }
            }
            self.push(key, &decoded);
        }
        Ok(finished)
    }

    fn push(&mut self, key: &str, value: &str) {
        if self.open.has_room() {
            let symbol = self.symbols.get(key);
            self.open.push_str(symbol, key, value);
        }
    }

    /// Whether records of an event not yet written are held.
    pub fn is_open(&self) -> bool {
        self.serial.is_some()
    }

    /// Writes the open event, if any (at the end of input).
    pub fn finish(&mut self, event: &mut Event) -> bool {
        if self.serial.is_none() {
            return false;
        }
        if let Some(serial) = self.serial.take() {
            self.push("serial", &serial);
            self.open.record_id = serial.parse().ok();
        }
        self.open.timestamp = self.time.take();
        self.open.logsource = Some(self.logsource.clone());
        // The caller's event becomes the next one to build (cleared then).
        std::mem::swap(event, &mut self.open);
        self.records = 0;
        true
    }
}

/// `key=value` pairs; values may be double- or single-quoted (with spaces).
fn pairs(body: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = body.trim();
    std::iter::from_fn(move || {
        loop {
            let pair = next_pair(&mut rest)?;
            if !pair.0.is_empty() {
                return Some(pair);
            }
        }
    })
}

/// The next pair of `rest` (its key may be empty), and `rest` moved past it.
fn next_pair<'a>(rest: &mut &'a str) -> Option<(&'a str, &'a str)> {
    let text: &'a str = rest;
    let equal = text.find('=')?;
    let after = &text[equal + 1..];
    let (value, next) = match after.as_bytes().first() {
        Some(&quote @ (b'"' | b'\'')) => match after[1..].find(quote as char) {
            Some(end) => (&after[..end + 2], &after[end + 2..]),
            None => (after, ""),
        },
        // auditd appends its enriched names after \x1d, with no space before it.
        _ => match after.find([' ', '\u{1d}']) {
            Some(end) => (&after[..end], &after[end..]),
            None => (after, ""),
        },
    };
    // The key is the last word before `=` (`avc:  denied  { read } for  pid=1`
    // gives `pid`).
    let before = &text[..equal];
    let key = before.rsplit([' ', '\u{1d}']).next().unwrap_or(before);
    *rest = next.trim_start_matches([' ', '\u{1d}']);
    Some((key, value))
}

/// A value of a `kind` record as text: quotes removed, hex decoded where
/// auditd encodes.
fn decode_value<'a>(kind: &str, key: &str, value: &'a str) -> Cow<'a, str> {
    if let Some(quoted) = value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|inner| inner.strip_suffix('\'')))
    {
        return Cow::Borrowed(quoted);
    }
    let encodable = ENCODED.contains(&key) || (kind == "EXECVE" && is_execve_argument(key));
    if encodable
        && value.len() >= 2
        && value.len().is_multiple_of(2)
        && value.bytes().all(|byte| byte.is_ascii_hexdigit())
    {
        let bytes: Vec<u8> =
            (0..value.len()).step_by(2).filter_map(|at| u8::from_str_radix(&value[at..at + 2], 16).ok()).collect();
        let text = String::from_utf8_lossy(&bytes);
        // proctitle and arguments separate words with NUL.
        return Cow::Owned(text.trim_end_matches('\0').replace('\0', " "));
    }
    Cow::Borrowed(value)
}

/// `a0`, `a1`, ... (and `a0[1]` of long arguments) of an EXECVE record.
fn is_execve_argument(key: &str) -> bool {
    key.strip_prefix('a').is_some_and(|rest| {
        let digits = rest.split('[').next().unwrap_or("");
        !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(decode_value("PROCTITLE", "proctitle", "636174002F6574632F736861646F77"), "cat /etc/shadow");
        assert_eq!(decode_value("EXECVE", "a1", "2D6C61"), "-la");
        assert_eq!(decode_value("SYSCALL", "a1", "2D6C61"), "2D6C61", "a register, not an argument");
        assert_eq!(decode_value("SYSCALL", "comm", "\"cat\""), "cat");
        assert_eq!(decode_value("SYSCALL", "syscall", "59"), "59", "not an encoded field");
        assert_eq!(decode_value("SYSCALL", "exe", "deadbee"), "deadbee", "odd length is not hex");
        assert_eq!(
            pairs(r#"argc=2 a0="ls" msg='op=x res=1'"#).collect::<Vec<_>>(),
            [("argc", "2"), ("a0", "\"ls\""), ("msg", "'op=x res=1'")]
        );
        assert_eq!(
            pairs("avc:  denied  { read } for  pid=1 comm=\"cat\"").collect::<Vec<_>>(),
            [("pid", "1"), ("comm", "\"cat\"")]
        );
        assert_eq!(
            pairs("key=(null)\u{1d}ARCH=x86_64 SYSCALL=execve").collect::<Vec<_>>(),
            [("key", "(null)"), ("ARCH", "x86_64"), ("SYSCALL", "execve")]
        );
    }
}
