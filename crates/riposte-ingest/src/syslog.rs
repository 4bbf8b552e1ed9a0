//! Syslog messages (RFC 5424 and the older BSD format of RFC 3164) into
//! events, and the two TCP framings of RFC 6587.
//!
//! Fields: `facility`, `severity` (numbers), `hostname`, `app_name`,
//! `procid`, `msgid`, structured data as `sd.<id>.<param>`, and `message`.
//! Parsing is lenient the way real senders need (a missing header part is
//! left out), but a message received with no `<PRI>` is refused. Lines of
//! syslog *files* have none (`Nov 29 10:00:00 host sshd[1]: ...`, or an RFC
//! 3339 time first, as rsyslog writes them): [`SyslogDecoder::decode_file_line`]
//! reads those.

use riposte_event::{Event, SymbolCache};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Longest message accepted, in bytes (RFC 5424 asks receivers for 2 KiB at
/// least; senders of stack traces need far more).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// Why a message could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    #[error("no <PRI> at the start of the message")]
    NoPriority,
    #[error("priority {0} is out of range (0 to 191)")]
    BadPriority(u32),
    #[error("message is longer than {MAX_MESSAGE_BYTES} bytes")]
    TooLong,
    #[error("unterminated structured data")]
    BadStructuredData,
}

/// Reads syslog messages into events. One per worker.
#[derive(Default)]
pub struct SyslogDecoder {
    symbols: SymbolCache,
}

impl SyslogDecoder {
    /// Decodes one message (without its framing) into `event` (cleared
    /// first). `now` dates BSD timestamps, which have no year.
    pub fn decode_into(&mut self, message: &[u8], now: OffsetDateTime, event: &mut Event) -> Result<(), SyslogError> {
        event.clear();
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(SyslogError::TooLong);
        }
        let text = String::from_utf8_lossy(message);
        let text = text.trim_end_matches(['\r', '\n', '\0']);
        let (priority, rest) = priority(text)?;
        self.push_number(event, "facility", u64::from(priority / 8));
        self.push_number(event, "severity", u64::from(priority % 8));
        match rest.strip_prefix("1 ") {
            Some(rest) => self.rfc5424(rest, event)?,
            None => self.rfc3164(rest, now, event),
        }
        Ok(())
    }

    /// Decodes one line of a syslog file: with a `<PRI>`, as a message;
    /// without, as what syslog daemons write to disk (time, host, tag).
    pub fn decode_file_line(&mut self, line: &[u8], now: OffsetDateTime, event: &mut Event) -> Result<(), SyslogError> {
        if line.first() == Some(&b'<') {
            return self.decode_into(line, now, event);
        }
        event.clear();
        if line.len() > MAX_MESSAGE_BYTES {
            return Err(SyslogError::TooLong);
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n', '\0']);
        // rsyslog's precise form: `2026-11-29T10:00:00.123456+00:00 host tag: message`.
        if let Some((first, rest)) = text.split_once(' ')
            && first.contains('T')
            && let Some(time) = riposte_event::timestamp::parse(first)
        {
            event.timestamp = Some(time);
            self.push_text(event, "timestamp", first);
            self.host_tag_message(rest.trim_start_matches(' '), event);
            return Ok(());
        }
        self.rfc3164(text, now, event);
        Ok(())
    }

    fn push_number(&mut self, event: &mut Event, name: &str, value: u64) {
        let symbol = self.symbols.get(name);
        event.push_u64(symbol, name, value);
    }

    fn push_text(&mut self, event: &mut Event, name: &str, value: &str) {
        if value.is_empty() || value == "-" {
            return;
        }
        let symbol = self.symbols.get(name);
        event.push_str(symbol, name, value);
    }

    fn rfc5424(&mut self, rest: &str, event: &mut Event) -> Result<(), SyslogError> {
        let mut parts = rest.splitn(6, ' ');
        let timestamp = parts.next().unwrap_or("-");
        if timestamp != "-" {
            event.timestamp = riposte_event::timestamp::parse(timestamp);
            self.push_text(event, "timestamp", timestamp);
        }
        for name in ["hostname", "app_name", "procid", "msgid"] {
            let value = parts.next().unwrap_or("-");
            self.push_text(event, name, value);
        }
        let mut rest = parts.next().unwrap_or("");
        if let Some(after) = rest.strip_prefix('-') {
            rest = after;
        } else {
            while rest.starts_with('[') {
                rest = self.structured_element(rest, event)?;
            }
        }
        let message = rest.strip_prefix(' ').unwrap_or(rest);
        // A UTF-8 byte order mark may open the message.
        let message = message.strip_prefix('\u{feff}').unwrap_or(message);
        self.push_text(event, "message", message);
        Ok(())
    }

    /// Reads one `[id param="value" ...]`; returns what follows it.
    fn structured_element<'a>(&mut self, text: &'a str, event: &mut Event) -> Result<&'a str, SyslogError> {
        let body = &text[1..];
        let id_end = body.find([' ', ']']).ok_or(SyslogError::BadStructuredData)?;
        let id = &body[..id_end];
        let mut rest = &body[id_end..];
        loop {
            rest = rest.trim_start_matches(' ');
            if let Some(after) = rest.strip_prefix(']') {
                return Ok(after);
            }
            let equals = rest.find('=').ok_or(SyslogError::BadStructuredData)?;
            let name = &rest[..equals];
            let quoted = rest[equals + 1..].strip_prefix('"').ok_or(SyslogError::BadStructuredData)?;
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, escaped @ ('"' | '\\' | ']'))) => value.push(escaped),
                        Some((_, other)) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => return Err(SyslogError::BadStructuredData),
                    },
                    Some((at, '"')) => break at,
                    Some((_, other)) => value.push(other),
                    None => return Err(SyslogError::BadStructuredData),
                }
            };
            let field = format!("sd.{id}.{name}");
            let symbol = self.symbols.get(&field);
            event.push_str(symbol, &field, &value);
            rest = &quoted[end + 1..];
        }
    }

    fn rfc3164(&mut self, rest: &str, now: OffsetDateTime, event: &mut Event) {
        match bsd_timestamp(rest, now) {
            Some((time, after)) => {
                event.timestamp = Some(time);
                self.push_text(event, "timestamp", &rest[..rest.len() - after.len()]);
                self.host_tag_message(after.trim_start_matches(' '), event);
            }
            None => self.tag_message(rest, event),
        }
    }

    /// After the time: a hostname, unless the tag follows at once (a host
    /// has no `:` or `[` in it, a tag ends with one of them); then the rest.
    fn host_tag_message(&mut self, rest: &str, event: &mut Event) {
        let mut rest = rest;
        if let Some((word, after)) = rest.split_once(' ')
            && !word.ends_with(':')
            && !word.contains('[')
        {
            self.push_text(event, "hostname", word);
            rest = after;
        }
        self.tag_message(rest, event);
    }

    fn tag_message(&mut self, rest: &str, event: &mut Event) {
        let mut rest = rest;
        // `TAG[PID]: message` or `TAG: message`.
        let tag_end = rest.find([':', '[', ' ']).unwrap_or(0);
        if tag_end > 0 && tag_end <= 48 {
            let tag = &rest[..tag_end];
            let mut after = &rest[tag_end..];
            let mut procid = None;
            if let Some(inner) = after.strip_prefix('[')
                && let Some(close) = inner.find(']')
            {
                procid = Some(&inner[..close]);
                after = &inner[close + 1..];
            }
            if let Some(message) = after.strip_prefix(':') {
                self.push_text(event, "app_name", tag);
                if let Some(procid) = procid {
                    self.push_text(event, "procid", procid);
                }
                rest = message.strip_prefix(' ').unwrap_or(message);
            }
        }
        self.push_text(event, "message", rest);
    }
}

/// `<PRI>` and what follows.
fn priority(text: &str) -> Result<(u32, &str), SyslogError> {
    let inner = text.strip_prefix('<').ok_or(SyslogError::NoPriority)?;
    let close = inner.find('>').filter(|&close| (1..=3).contains(&close)).ok_or(SyslogError::NoPriority)?;
    let digits = &inner[..close];
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(SyslogError::NoPriority);
    }
    let value: u32 = digits.parse().map_err(|_| SyslogError::NoPriority)?;
    if value > 191 {
        return Err(SyslogError::BadPriority(value));
    }
    Ok((value, &inner[close + 1..]))
}

/// `Mmm dd hh:mm:ss`, dated in the year that puts it nearest `now` (a
/// December message read in January is last year's).
fn bsd_timestamp(text: &str, now: OffsetDateTime) -> Option<(OffsetDateTime, &str)> {
    let head = text.get(..15)?;
    let month = match &head[..3] {
        "Jan" => Month::January,
        "Feb" => Month::February,
        "Mar" => Month::March,
        "Apr" => Month::April,
        "May" => Month::May,
        "Jun" => Month::June,
        "Jul" => Month::July,
        "Aug" => Month::August,
        "Sep" => Month::September,
        "Oct" => Month::October,
        "Nov" => Month::November,
        "Dec" => Month::December,
        _ => return None,
    };
    let day: u8 = head[4..6].trim_start().parse().ok()?;
    if head.as_bytes()[3] != b' ' || head.as_bytes()[6] != b' ' {
        return None;
    }
    let mut clock = head[7..15].split(':').map(|part| part.parse::<u8>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let time = Time::from_hms(hour, minute, second).ok()?;
    let candidates = [now.year() - 1, now.year(), now.year() + 1];
    let dated = candidates
        .iter()
        .filter_map(|&year| Date::from_calendar_date(year, month, day).ok())
        .map(|date| PrimitiveDateTime::new(date, time).assume_offset(UtcOffset::UTC))
        .min_by_key(|dated| (*dated - now).abs())?;
    Some((dated, &text[15..]))
}

/// Splits a TCP stream into messages: octet-counted (`LEN SP MSG`, RFC 6587
/// 3.4.1) when a frame starts with a digit, newline-terminated otherwise.
#[derive(Default)]
pub struct SyslogFramer {
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer` already framed: dropped when more
    /// arrive, not after every frame (which moved the rest of a read once
    /// per message).
    consumed: usize,
}

/// What the framer found in the bytes given so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// A frame that can never be read (its length field is invalid or too
    /// large); the connection should be closed.
    Invalid(String),
}

impl SyslogFramer {
    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.drain(..self.consumed);
        self.consumed = 0;
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet framed.
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.consumed
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let rest = &self.buffer[self.consumed..];
        // Blank lines between frames are not messages.
        let start = rest.iter().position(|byte| !matches!(byte, b'\n' | b'\r' | b' '))?;
        self.consumed += start;
        let rest = &rest[start..];
        if rest[0].is_ascii_digit() {
            let space = match rest.iter().take(8).position(|byte| *byte == b' ') {
                Some(space) => space,
                None if rest.len() >= 8 => return Some(Frame::Invalid("octet count is not a number".into())),
                None => return None,
            };
            let length: usize = match std::str::from_utf8(&rest[..space]).ok().and_then(|digits| digits.parse().ok()) {
                Some(length) => length,
                None => return Some(Frame::Invalid("octet count is not a number".into())),
            };
            if length > MAX_MESSAGE_BYTES {
                return Some(Frame::Invalid(format!("frame of {length} bytes is over the {MAX_MESSAGE_BYTES} limit")));
            }
            if rest.len() < space + 1 + length {
                return None;
            }
            let message = rest[space + 1..space + 1 + length].to_vec();
            self.consumed += space + 1 + length;
            return Some(Frame::Message(message));
        }
        match rest.iter().position(|byte| *byte == b'\n') {
            Some(end) => {
                let message = rest[..end].to_vec();
                self.consumed += end + 1;
                Some(Frame::Message(message))
            }
            None if rest.len() > MAX_MESSAGE_BYTES => {
                Some(Frame::Invalid(format!("line is over the {MAX_MESSAGE_BYTES} byte limit")))
            }
            None => None,
        }
    }

    /// What remains when the connection closes: a last line without a newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let mut rest = std::mem::take(&mut self.buffer);
        rest.drain(..std::mem::take(&mut self.consumed));
        let trimmed = rest.trim_ascii();
        (!trimmed.is_empty() && !trimmed[0].is_ascii_digit()).then(|| trimmed.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riposte_event::Value;
    use time::macros::datetime;

    fn decode(message: &str) -> Event {
        let mut event = Event::new();
        SyslogDecoder::default().decode_into(message.as_bytes(), datetime!(2026-01-02 00:00 UTC), &mut event).unwrap();
        event
    }

    fn text<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
        event.get_path(name).and_then(|value| value.as_text())
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let event = decode(
            r#"<165>1 2026-11-29T22:14:15.003Z web01.corp su 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App\"lication\]"][x@1 a="b"] BOMfailed for lonvick"#,
        );
        assert_eq!(event.get_path("facility"), Some(Value::Number("20")));
        assert_eq!(event.get_path("severity"), Some(Value::Number("5")));
        assert_eq!(text(&event, "hostname"), Some("web01.corp"));
        assert_eq!(text(&event, "app_name"), Some("su"));
        assert_eq!(text(&event, "procid"), Some("4242"));
        assert_eq!(text(&event, "msgid"), Some("ID47"));
        assert_eq!(text(&event, "sd.exampleSDID@32473.eventSource"), Some("App\"lication]"));
        assert_eq!(text(&event, "sd.x@1.a"), Some("b"));
        assert_eq!(text(&event, "message"), Some("BOMfailed for lonvick"));
        assert_eq!(event.timestamp, Some(datetime!(2026-11-29 22:14:15.003 UTC)));
        let nil = decode("<13>1 - - - - - -");
        assert_eq!(text(&nil, "hostname"), None);
        assert_eq!(text(&nil, "message"), None);
    }

    #[test]
    fn rfc3164_forms() {
        let event = decode("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(text(&event, "hostname"), Some("mymachine"));
        assert_eq!(text(&event, "app_name"), Some("su"));
        assert_eq!(text(&event, "procid"), Some("230"));
        assert_eq!(text(&event, "message"), Some("'su root' failed for lonvick on /dev/pts/8"));
        assert_eq!(event.timestamp, Some(datetime!(2025-10-11 22:14:15 UTC)), "the nearest year to now");
        let no_host = decode("<13>Jan  1 00:00:01 sshd: Accepted publickey for bob");
        assert_eq!(text(&no_host, "hostname"), None);
        assert_eq!(text(&no_host, "app_name"), Some("sshd"));
        assert_eq!(no_host.timestamp, Some(datetime!(2026-01-01 00:00:01 UTC)));
        let bare = decode("<13>just some text");
        assert_eq!(text(&bare, "message"), Some("just some text"));
    }

    #[test]
    fn refuses_what_is_not_syslog() {
        let mut event = Event::new();
        let mut decoder = SyslogDecoder::default();
        let now = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(decoder.decode_into(b"hello", now, &mut event), Err(SyslogError::NoPriority));
        assert_eq!(decoder.decode_into(b"<999>x", now, &mut event), Err(SyslogError::BadPriority(999)));
        assert_eq!(
            decoder.decode_into(b"<1>1 - h a p m [unterminated", now, &mut event),
            Err(SyslogError::BadStructuredData)
        );
        let long = format!("<1>{}", "a".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(decoder.decode_into(long.as_bytes(), now, &mut event), Err(SyslogError::TooLong));
    }

    #[test]
    fn frames_both_ways_in_any_pieces() {
        let stream = b"<13>one\n11 <13>two two\n<13>three\r\n\n8 <13>four";
        for piece in [1, 3, 7, stream.len()] {
            let mut framer = SyslogFramer::default();
            let mut messages = Vec::new();
            for chunk in stream.chunks(piece) {
                framer.push(chunk);
                while let Some(frame) = framer.next_frame() {
                    messages.push(frame);
                }
            }
            assert_eq!(
                messages,
                [
                    Frame::Message(b"<13>one".to_vec()),
                    Frame::Message(b"<13>two two".to_vec()),
                    Frame::Message(b"<13>three\r".to_vec()),
                    Frame::Message(b"<13>four".to_vec()),
                ],
                "pieces of {piece}"
            );
        }
        let mut framer = SyslogFramer::default();
        framer.push(b"99999999999 x");
        assert!(matches!(framer.next_frame(), Some(Frame::Invalid(_))));
        let mut framer = SyslogFramer::default();
        framer.push(b"<13>last line");
        assert_eq!(framer.next_frame(), None);
        assert_eq!(framer.finish(), Some(b"<13>last line".to_vec()));
        // What was framed is no longer pending, nor part of what is left at the end.
        let mut framer = SyslogFramer::default();
        framer.push(b"<13>a\n<13>b");
        assert_eq!(framer.next_frame(), Some(Frame::Message(b"<13>a".to_vec())));
        assert_eq!((framer.next_frame(), framer.pending()), (None, 5));
        assert_eq!(framer.finish(), Some(b"<13>b".to_vec()));
    }
}
