//! JSON lines, NDJSON and JSON documents (plain or gzip) into events.
//!
//! A file is read line by line when its first record fits on one line; a bad
//! line is reported with its number and reading goes on. Otherwise (a
//! pretty-printed object, several concatenated objects, an array of objects)
//! the file is read as a stream of JSON documents; a syntax error there ends
//! the file, since a JSON stream cannot be resynchronised.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use riposte_event::{Event, JsonDecoder, LogSource};

use crate::dialect::{Dialect, Dialects, ZEEK_LOGS};
use crate::discover::Input;
use crate::error::{IngestError, Location, RecordError};
use crate::sink::Sink;

/// Longest line read, in bytes; longer lines are skipped and reported.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Largest file read as JSON documents (after decompression), in bytes.
pub const MAX_DOCUMENT_BYTES: u64 = 512 << 20;

/// Reads JSON inputs. One per worker.
#[derive(Default)]
pub struct JsonReader {
    decoder: JsonDecoder,
    event: Event,
    /// The log source to give events (from `--logsource`), when known.
    logsource: Option<Arc<LogSource>>,
    dialects: Dialects,
    /// The Zeek log the file's name says it is (`dns.log` → `dns`).
    zeek_log: Option<&'static str>,
    /// The tool the user said the file's records are from.
    dialect: Option<Dialect>,
}

impl JsonReader {
    pub fn new(logsource: Option<Arc<LogSource>>) -> Self {
        JsonReader { logsource, ..Self::default() }
    }

    /// Reads every record of `input` into `sink`. Returns the number of events.
    pub fn read(&mut self, input: &Input, sink: &mut impl Sink) -> Result<u64, IngestError> {
        let file = File::open(&input.path).map_err(|error| IngestError::io(&input.path, error))?;
        let reader: Box<dyn Read> = if input.gzip { Box::new(MultiGzDecoder::new(file)) } else { Box::new(file) };
        let mut reader = BufReader::with_capacity(256 << 10, reader);
        self.zeek_log = zeek_log_named(&input.path);
        self.dialect = input.dialect;
        let first_is_a_line = {
            let head = reader.fill_buf().map_err(|error| IngestError::io(&input.path, error))?;
            first_line_is_a_record(head)
        };
        if first_is_a_line {
            self.read_lines(&input.path, reader, sink)
        } else {
            self.read_documents(&input.path, reader, sink)
        }
    }

    fn emit(&mut self, sink: &mut impl Sink, record: u64, bytes: u64) {
        if self.event.record_id.is_none() {
            self.event.record_id = Some(record);
        }
        if self.logsource.is_some() {
            self.event.logsource.clone_from(&self.logsource);
        } else if let Some(dialect) = self.dialect {
            self.dialects.complete_as(&mut self.event, dialect, self.zeek_log);
        } else {
            self.dialects.complete(&mut self.event, self.zeek_log);
        }
        sink.event(&mut self.event, bytes);
    }

    fn read_lines(&mut self, path: &Path, mut reader: impl BufRead, sink: &mut impl Sink) -> Result<u64, IngestError> {
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut events = 0;
        loop {
            line.clear();
            let read = reader
                .by_ref()
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|error| IngestError::io(path, error))?;
            if read == 0 {
                return Ok(events);
            }
            number += 1;
            if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
                skip_rest_of_line(&mut reader).map_err(|error| IngestError::io(path, error))?;
                sink.skipped(RecordError {
                    file: path.to_path_buf(),
                    location: Location::Line(number),
                    reason: format!("line is longer than {MAX_LINE_BYTES} bytes"),
                });
                continue;
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match self.decoder.decode_into(text, &mut self.event) {
                Ok(()) => {
                    events += 1;
                    self.emit(sink, number, line.len() as u64);
                }
                Err(error) => sink.skipped(RecordError {
                    file: path.to_path_buf(),
                    location: Location::Line(number),
                    reason: error.to_string(),
                }),
            }
        }
    }

    fn read_documents(&mut self, path: &Path, reader: impl Read, sink: &mut impl Sink) -> Result<u64, IngestError> {
        let mut bytes = Vec::new();
        reader.take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut bytes).map_err(|error| IngestError::io(path, error))?;
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(IngestError::TooLarge { path: path.to_path_buf(), limit: MAX_DOCUMENT_BYTES });
        }
        let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        let mut number = 0u64;
        let mut events = 0;
        for document in serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>() {
            let document = match document {
                Ok(document) => document,
                Err(error) => {
                    sink.skipped(RecordError {
                        file: path.to_path_buf(),
                        location: Location::Line(error.line() as u64),
                        reason: format!("invalid JSON, rest of the file skipped: {error}"),
                    });
                    break;
                }
            };
            let records: Vec<&serde_json::Value> = match &document {
                serde_json::Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            for record in records {
                number += 1;
                match self.decoder.decode_value(record, &mut self.event) {
                    Ok(()) => {
                        events += 1;
                        self.emit(sink, number, 0);
                    }
                    Err(error) => sink.skipped(RecordError {
                        file: path.to_path_buf(),
                        location: Location::Document(number),
                        reason: error.to_string(),
                    }),
                }
            }
        }
        Ok(events)
    }
}

/// The Zeek log a file's name names: `conn.log`, `dns.json`,
/// `http.00:00:00-01:00:00.log.gz`.
fn zeek_log_named(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    let stem = name.split('.').next()?;
    ZEEK_LOGS.iter().copied().find(|log| *log == stem)
}

pub(crate) fn skip_rest_of_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        if let Some(end) = buffer.iter().position(|byte| *byte == b'\n') {
            reader.consume(end + 1);
            return Ok(());
        }
        let len = buffer.len();
        reader.consume(len);
    }
}

/// Whether the file is JSON lines, judged from its first bytes: the first
/// non-empty line is a whole JSON object, or is an object too long to judge
/// here. Files starting with `[`, or whose first line is only part of a
/// document (pretty-printed JSON), are read as documents.
fn first_line_is_a_record(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let Some(start) = head.iter().position(|byte| !byte.is_ascii_whitespace()) else {
        return true;
    };
    let rest = &head[start..];
    if rest.starts_with(b"[") {
        return false;
    }
    match rest.iter().position(|byte| *byte == b'\n') {
        Some(end) => serde_json::from_slice::<serde::de::IgnoredAny>(rest[..end].trim_ascii()).is_ok(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use riposte_event::{Symbol, Value};

    use super::*;
    use crate::discover::Format;
    use crate::sink::Collect;

    fn input(path: &Path, gzip: bool) -> Input {
        Input { path: path.to_path_buf(), format: Format::Json, gzip, size: 0, dialect: None }
    }

    fn read(bytes: &[u8], gzip: bool) -> Collect {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        std::fs::write(&path, bytes).unwrap();
        let mut sink = Collect::default();
        JsonReader::default().read(&input(&path, gzip), &mut sink).unwrap();
        sink
    }

    #[test]
    fn json_lines_with_a_bad_line_keep_going() {
        let sink = read(b"{\"a\": 1}\n\nnot json\n{\"a\": 2}\r\n{\"a\": \n", false);
        assert_eq!(sink.events.len(), 2);
        assert_eq!(sink.events[1].get(Symbol::intern("a")), Some(Value::Number("2")));
        assert_eq!(sink.events[1].record_id, Some(4), "record id is the line number");
        let lines: Vec<Location> = sink.skipped.iter().map(|error| error.location).collect();
        assert_eq!(lines, [Location::Line(3), Location::Line(5)]);
        assert!(sink.skipped[0].to_string().contains("events.json: line 3: invalid JSON"));
    }

    #[test]
    fn gzip_json_lines() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..1000 {
            writeln!(encoder, "{{\"n\": {i}, \"msg\": \"hello\"}}").unwrap();
        }
        let sink = read(&encoder.finish().unwrap(), true);
        assert_eq!(sink.events.len(), 1000);
        assert!(sink.skipped.is_empty());
    }

    #[test]
    fn pretty_documents_and_arrays() {
        let sink = read(
            b"{\n  \"Event\": {\"System\": {\"EventID\": 1}}\n}\n{\n  \"Event\": {\"System\": {\"EventID\": 2}}\n}\n",
            false,
        );
        assert_eq!(sink.events.len(), 2);
        assert_eq!(sink.events[1].get(Symbol::intern("EventID")), Some(Value::Number("2")));
        let sink = read(b"[{\"a\": 1}, {\"a\": 2}, 3]", false);
        assert_eq!(sink.events.len(), 2);
        assert_eq!(sink.skipped[0].location, Location::Document(3));
        let sink = read(b"{\n \"a\": 1\n}\n{\n \"a\": oops\n}\n{\"a\": 3}", false);
        assert_eq!(sink.events.len(), 1);
        assert_eq!(sink.skipped[0].location, Location::Line(5));
        assert!(sink.skipped[0].reason.contains("rest of the file skipped"));
    }

    #[test]
    fn logsource_from_the_command_line_is_given_to_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, b"{\"type\": \"EXECVE\"}\n").unwrap();
        let logsource = Arc::new(LogSource::parse("product=linux,service=auditd").unwrap());
        let mut sink = Collect::default();
        JsonReader::new(Some(logsource.clone())).read(&input(&path, false), &mut sink).unwrap();
        assert_eq!(sink.events[0].logsource.as_deref(), Some(&*logsource));
    }

    #[test]
    fn overlong_lines_are_skipped() {
        let mut bytes = vec![b'{'];
        bytes.extend(std::iter::repeat_n(b' ', MAX_LINE_BYTES + 10));
        bytes.extend_from_slice(b"}\n{\"ok\": true}\n");
        let sink = read(&bytes, false);
        assert_eq!(sink.events.len(), 1);
        assert!(sink.skipped[0].reason.contains("longer than"));
    }
}
