//! Line-based logs of known tools: Zeek's tab-separated logs, CEF records,
//! Linux audit logs and syslog files (whose messages may be CEF), plain or
//! gzip-compressed, read line by line with the line number of every bad one.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;
use riposte_event::Event;

use crate::auditd::AuditdDecoder;
use crate::cef::CefDecoder;
use crate::discover::{Format, Input};
use crate::error::{IngestError, Location, RecordError};
use crate::json::MAX_LINE_BYTES;
use crate::sink::Sink;
use crate::syslog::SyslogDecoder;
use crate::zeek::{ZeekLine, ZeekTsvDecoder};

/// Reads line-based inputs. One per worker; each file starts afresh (Zeek
/// headers and open audit events belong to their file).
#[derive(Default)]
pub struct LineReader {
    event: Event,
    cef: CefDecoder,
    syslog: SyslogDecoder,
    /// The log source of events whose decoder does not name one (syslog
    /// lines), from `--logsource`.
    logsource: Option<std::sync::Arc<riposte_event::LogSource>>,
}

impl LineReader {
    pub fn new(logsource: Option<std::sync::Arc<riposte_event::LogSource>>) -> Self {
        LineReader { logsource, ..Self::default() }
    }

    /// Reads every record of `input` (of a line-based format) into `sink`.
    /// Returns the number of events.
    pub fn read(&mut self, input: &Input, sink: &mut impl Sink) -> Result<u64, IngestError> {
        let file = File::open(&input.path).map_err(|error| IngestError::io(&input.path, error))?;
        let reader: Box<dyn Read> = if input.gzip { Box::new(MultiGzDecoder::new(file)) } else { Box::new(file) };
        let mut reader = BufReader::with_capacity(256 << 10, reader);
        let mut zeek = ZeekTsvDecoder::new();
        let mut auditd = AuditdDecoder::new();
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut events = 0u64;
        let now = time::OffsetDateTime::now_utc();
        loop {
            line.clear();
            let read = reader
                .by_ref()
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|error| IngestError::io(&input.path, error))?;
            if read == 0 {
                break;
            }
            number += 1;
            let skipped =
                |reason: String| RecordError { file: input.path.clone(), location: Location::Line(number), reason };
            if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
                crate::json::skip_rest_of_line(&mut reader).map_err(|error| IngestError::io(&input.path, error))?;
                sink.skipped(skipped(format!("line is longer than {MAX_LINE_BYTES} bytes")));
                continue;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let bytes = line.len() as u64;
            let outcome = match input.format {
                Format::Zeek => zeek.decode_line(text, &mut self.event).map(|kind| kind == ZeekLine::Event),
                Format::Auditd => auditd.decode_line(text, &mut self.event),
                Format::Cef if text.trim_ascii().is_empty() => Ok(false),
                Format::Cef => self.cef.decode_into(text, &mut self.event).map(|()| true),
                Format::Syslog if text.trim_ascii().is_empty() => Ok(false),
                Format::Syslog => self.syslog_line(text, now).map(|()| true),
                Format::Evtx | Format::Json => Err("not a line-based format".to_owned()),
            };
            match outcome {
                Ok(true) => {
                    events += 1;
                    if self.event.record_id.is_none() {
                        self.event.record_id = Some(number);
                    }
                    if self.event.logsource.is_none() {
                        self.event.logsource.clone_from(&self.logsource);
                    }
                    sink.event(&mut self.event, bytes);
                }
                Ok(false) => {}
                Err(reason) => sink.skipped(skipped(reason)),
            }
        }
        if auditd.finish(&mut self.event) {
            events += 1;
            sink.event(&mut self.event, 0);
        }
        Ok(events)
    }

    /// A syslog line; a CEF message adds its fields.
    fn syslog_line(&mut self, text: &[u8], now: time::OffsetDateTime) -> Result<(), String> {
        self.syslog.decode_file_line(text, now, &mut self.event).map_err(|error| error.to_string())?;
        add_cef_message(&mut self.cef, &mut self.event)
    }
}

/// When a syslog event's message is a CEF record, adds its fields. In
/// RFC 3164 the `CEF:` prefix reads as a tag (`CEF:0|...` then is the tag
/// `CEF` and the message `0|...`), or as the host name when there is none.
pub fn add_cef_message(cef: &mut CefDecoder, event: &mut Event) -> Result<(), String> {
    static NAMES: std::sync::OnceLock<[riposte_event::Symbol; 3]> = std::sync::OnceLock::new();
    let [message, app_name, hostname] =
        *NAMES.get_or_init(|| ["message", "app_name", "hostname"].map(riposte_event::Symbol::intern));
    let body = event.text(message).unwrap_or("");
    let text = if CefDecoder::is_cef(body) {
        body.to_owned()
    } else if event.text(app_name) == Some("CEF") && body.starts_with(|ch: char| ch.is_ascii_digit()) {
        format!("CEF:{body}")
    } else if let Some(host) = event.text(hostname).filter(|host| host.starts_with("CEF:")) {
        format!("{host} {body}")
    } else {
        return Ok(());
    };
    cef.add_to(&text, event)
}
