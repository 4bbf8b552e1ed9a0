//! Where events come from besides the HTTP API: syslog over UDP and TCP, and
//! files followed as they grow. Each puts what it receives in the spool
//! before it takes more: TCP senders and files are slowed down when the
//! pipeline falls behind; UDP, which cannot be, drops and counts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use riposte_event::Event;
use riposte_ingest::{AuditdDecoder, Frame, SyslogFramer, ZeekLine, ZeekTsvDecoder};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, watch};

use crate::auth::write_private;
use crate::config::FileFormat;
use crate::metrics::Metrics;
use crate::pipeline::now_ms;
use crate::spool::{Record, Spool, SpoolError};

/// Most TCP connections served at once.
const MAX_CONNECTIONS: usize = 1024;

fn record(source: &str, payload: Vec<u8>) -> Record {
    Record { source: source.to_owned(), origin: String::new(), received_ms: now_ms(), payload }
}

/// Appends, waiting while the spool is full (back-pressure for TCP and
/// files). Returns false when the server is stopping.
async fn append_patiently(spool: &Spool, records: Vec<Record>, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        match spool.append(records.clone()).await {
            Ok(_) => return true,
            Err(SpoolError::Full { .. }) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return false,
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot spool received events; they are lost");
                return true;
            }
        }
    }
}

/// Syslog datagrams. A datagram the spool cannot take at once is dropped and
/// counted.
pub async fn syslog_udp(
    name: String,
    socket: UdpSocket,
    spool: Arc<Spool>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            _ = stop.changed() => return,
        };
        let Ok((length, _)) = received else { continue };
        metrics.received(&name, 1);
        if let Err(error) = spool.try_append(vec![record(&name, buffer[..length].to_vec())]) {
            metrics.dropped(&name, 1);
            tracing::debug!(source = %name, %error, "datagram dropped");
        }
    }
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS acceptor for a certificate chain and key in PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("{}: {error}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| format!("{}: {error}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| format!("certificate and key do not fit: {error}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Syslog over TCP (or TLS when `tls` is given), octet-counted or one
/// message a line.
pub async fn syslog_tcp(
    name: String,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    spool: Arc<Spool>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut accept_stop = stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = accept_stop.changed() => return,
        };
        let Ok((connection, peer)) = accepted else { continue };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(source = %name, %peer, "too many syslog connections; closing one");
            continue;
        };
        let (name, spool, metrics, stop, tls) =
            (name.clone(), spool.clone(), metrics.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => read_messages(connection, &name, peer, &spool, &metrics, stop).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(connection)).await {
                    Ok(Ok(stream)) => read_messages(stream, &name, peer, &spool, &metrics, stop).await,
                    Ok(Err(error)) => {
                        metrics.failed(&name, &format!("TLS handshake failed: {error}"), b"");
                        tracing::warn!(source = %name, %peer, %error, "TLS handshake failed");
                    }
                    Err(_) => tracing::warn!(source = %name, %peer, "TLS handshake timed out"),
                },
            }
        });
    }
}

/// Reads framed syslog messages from one connection until it closes.
async fn read_messages(
    mut connection: impl tokio::io::AsyncRead + Unpin,
    name: &str,
    peer: std::net::SocketAddr,
    spool: &Spool,
    metrics: &Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut framer = SyslogFramer::default();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let read = tokio::select! {
            read = connection.read(&mut buffer) => read,
            _ = stop.changed() => return,
        };
        let length = match read {
            Ok(0) | Err(_) => break,
            Ok(length) => length,
        };
        framer.push(&buffer[..length]);
        let mut records = Vec::new();
        while let Some(frame) = framer.next_frame() {
            match frame {
                Frame::Message(message) => records.push(record(name, message)),
                Frame::Invalid(reason) => {
                    metrics.failed(name, &reason, &buffer[..length.min(64)]);
                    tracing::warn!(source = %name, %peer, %reason, "closing a syslog connection");
                    return;
                }
            }
        }
        if !records.is_empty() {
            metrics.received(name, records.len() as u64);
            // Nothing more is read from this sender until these are on disk.
            if !append_patiently(spool, records, &mut stop).await {
                return;
            }
        }
    }
    if let Some(last) = framer.finish() {
        metrics.received(name, 1);
        append_patiently(spool, vec![record(name, last)], &mut stop).await;
    }
}

/// Where a followed file was read to, kept across restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Position {
    file_id: u64,
    offset: u64,
}

fn file_id(metadata: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        metadata.dev().rotate_left(32) ^ metadata.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        0
    }
}

fn read_position(path: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(path).ok()?;
    let (file_id, offset) = text.trim().split_once(' ')?;
    Some(Position { file_id: file_id.parse().ok()?, offset: offset.parse().ok()? })
}

/// Most bytes read from a file in one go.
const READ_CHUNK: usize = 1 << 20;
/// How often a file is looked at when nothing new was found.
const POLL: Duration = Duration::from_millis(200);

/// A line of a followed file: where it starts, and its bytes.
type Line = (u64, Vec<u8>);

/// Turns a followed file's lines into spooled records. Most formats are a
/// record per line, decoded later by the pipeline; Zeek's tab-separated logs
/// (which need their file's header) and audit logs (whose events span
/// records) are decoded here and spooled as JSON.
enum Framer {
    Lines,
    Zeek(Box<ZeekTsvDecoder>, Event),
    Auditd {
        decoder: Box<AuditdDecoder>,
        event: Event,
        /// Where the open event's first record starts.
        open_at: u64,
        /// Polls that found nothing while an event was open.
        idle: u32,
    },
}

impl Framer {
    fn new(format: FileFormat) -> Framer {
        match format {
            FileFormat::Zeek => Framer::Zeek(Box::default(), Event::new()),
            FileFormat::Auditd => {
                Framer::Auditd { decoder: Box::new(AuditdDecoder::new()), event: Event::new(), open_at: 0, idle: 0 }
            }
            FileFormat::Json
            | FileFormat::Lines
            | FileFormat::Syslog
            | FileFormat::Cef
            | FileFormat::Suricata
            | FileFormat::Wazuh
            | FileFormat::Falco
            | FileFormat::Winlogbeat => Framer::Lines,
        }
    }

    /// Reads what a Zeek log's header says before resuming at `offset` (the
    /// header lines were read before a restart, or before a rotation).
    fn resume(&mut self, file: &std::fs::File, offset: u64) {
        if let Framer::Zeek(decoder, event) = self {
            **decoder = ZeekTsvDecoder::new();
            if offset == 0 {
                return;
            }
            let Ok((lines, _, _)) = complete_lines(file, 0) else { return };
            for (line_offset, line) in lines {
                if line_offset >= offset || !line.starts_with(b"#") {
                    break;
                }
                let _ = decoder.decode_line(&line, event);
            }
        }
        if let Framer::Auditd { decoder, .. } = self {
            **decoder = AuditdDecoder::new();
        }
    }

    /// The records of `lines` (each with its offset). `end` is where the
    /// lines end; the offset returned is where a restart must resume (the
    /// start of an audit event still open).
    fn frame(
        &mut self,
        lines: Vec<Line>,
        end: u64,
        source: &str,
        file_id: u64,
        metrics: &Metrics,
    ) -> (Vec<Record>, u64) {
        let origin = |offset: u64| format!("{source}:{file_id:x}:{offset}");
        let json = |event: &Event, offset: u64| Record {
            source: source.to_owned(),
            origin: origin(offset),
            received_ms: now_ms(),
            payload: decoded_json(event),
        };
        let mut records = Vec::new();
        match self {
            Framer::Lines => {
                for (offset, line) in lines {
                    records.push(Record {
                        source: source.to_owned(),
                        origin: origin(offset),
                        received_ms: now_ms(),
                        payload: line,
                    });
                }
                (records, end)
            }
            Framer::Zeek(decoder, event) => {
                for (offset, line) in lines {
                    match decoder.decode_line(&line, event) {
                        Ok(ZeekLine::Event) => records.push(json(event, offset)),
                        Ok(ZeekLine::Header) => {}
                        Err(reason) => metrics.failed(source, &reason, &line),
                    }
                }
                (records, end)
            }
            Framer::Auditd { decoder, event, open_at, idle } => {
                *idle = 0;
                for (offset, line) in lines {
                    let was_open = decoder.is_open();
                    let started_at = *open_at;
                    let finished = match decoder.decode_line(&line, event) {
                        Ok(finished) => finished,
                        Err(reason) => {
                            metrics.failed(source, &reason, &line);
                            false
                        }
                    };
                    if finished {
                        records.push(json(event, started_at));
                    }
                    if decoder.is_open() && (!was_open || finished) {
                        *open_at = offset;
                    }
                }
                (records, if decoder.is_open() { *open_at } else { end })
            }
        }
    }

    /// Nothing new came: an audit event left open (the last one, whose end
    /// no record announces) is written after a few quiet polls.
    fn idle(&mut self, source: &str, file_id: u64, end: u64) -> Option<(Record, u64)> {
        let Framer::Auditd { decoder, idle, .. } = self else { return None };
        if !decoder.is_open() {
            return None;
        }
        *idle += 1;
        if *idle < 2 {
            return None;
        }
        self.flush(source, file_id).map(|record| (record, end))
    }

    /// The audit event still open, written now (the file is left: rotated or
    /// truncated).
    fn flush(&mut self, source: &str, file_id: u64) -> Option<Record> {
        let Framer::Auditd { decoder, event, open_at, idle } = self else { return None };
        *idle = 0;
        if !decoder.finish(event) {
            return None;
        }
        Some(Record {
            source: source.to_owned(),
            origin: format!("{source}:{file_id:x}:{open_at}"),
            received_ms: now_ms(),
            payload: decoded_json(event),
        })
    }
}

/// An event decoded here, as the JSON the pipeline reads back: with its
/// time, and with the Zeek log it came from as `_path` (as Zeek's own JSON
/// writer can put it), so that nothing the decoder knew is lost.
fn decoded_json(event: &Event) -> Vec<u8> {
    let mut json = event.to_json();
    if let serde_json::Value::Object(fields) = &mut json {
        if let Some(time) =
            event.timestamp.and_then(|time| time.format(&time::format_description::well_known::Rfc3339).ok())
        {
            fields.entry("@timestamp").or_insert(serde_json::Value::String(time));
        }
        let source = event.logsource.as_deref();
        if source.and_then(|source| source.product.as_deref()) == Some("zeek")
            && let Some(path) = source.and_then(|source| source.service.clone())
        {
            fields.entry("_path").or_insert(serde_json::Value::String(path));
        }
    }
    serde_json::to_vec(&json).unwrap_or_default()
}

/// Follows a file: new complete lines are spooled (see [`Framer`]), the read
/// position is kept in `positions`. When the file is rotated (replaced by a
/// new one), the rest of the old one is read first; when it is truncated,
/// reading starts over.
pub async fn file(
    name: String,
    path: PathBuf,
    format: FileFormat,
    positions: PathBuf,
    spool: Arc<Spool>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let position_path = positions.join(format!("{}.pos", sanitize(&name)));
    // Where a restart resumes, and where reading goes on now (beyond it while
    // an audit event is open).
    let mut position = read_position(&position_path).unwrap_or_default();
    let mut read_to = position.offset;
    let mut framer = Framer::new(format);
    // The file being read: kept open across a rotation until it is drained.
    let mut open: Option<(std::fs::File, u64)> = None;
    // A rotation was seen: the old file is read once more before it is left
    // (lines written just before the rotation).
    let mut last_look = false;
    let save = |position: Position| {
        let text = format!("{} {}\n", position.file_id, position.offset);
        if let Err(error) = write_private(&position_path, text.as_bytes()) {
            tracing::warn!(source = %name, %error, "cannot save the read position");
        }
    };
    loop {
        if open.is_none()
            && let Ok(file) = std::fs::File::open(&path)
            && let Ok(metadata) = file.metadata()
        {
            let id = file_id(&metadata);
            if position.file_id != id {
                position = Position { file_id: id, offset: 0 };
            }
            read_to = position.offset;
            framer.resume(&file, read_to);
            open = Some((file, id));
        }
        let mut progressed = false;
        if let Some((file, id)) = &open {
            if file.metadata().is_ok_and(|metadata| metadata.len() < read_to) {
                tracing::warn!(source = %name, file = %path.display(), "file truncated; reading from the start");
                if let Some(record) = framer.flush(&name, *id)
                    && !append_patiently(&spool, vec![record], &mut stop).await
                {
                    return;
                }
                position.offset = 0;
                read_to = 0;
                framer.resume(file, 0);
            }
            match complete_lines(file, read_to) {
                Ok((lines, consumed, overlong)) if consumed > 0 => {
                    if overlong {
                        metrics.failed(&name, &format!("line longer than {READ_CHUNK} bytes, skipped"), &[]);
                    }
                    let (records, durable) = framer.frame(lines, read_to + consumed, &name, *id, &metrics);
                    metrics.received(&name, records.len() as u64);
                    if !records.is_empty() && !append_patiently(&spool, records, &mut stop).await {
                        return;
                    }
                    read_to += consumed;
                    position.offset = durable;
                    save(position);
                    progressed = true;
                }
                Ok(_) => {
                    if let Some((record, durable)) = framer.idle(&name, *id, read_to) {
                        metrics.received(&name, 1);
                        if !append_patiently(&spool, vec![record], &mut stop).await {
                            return;
                        }
                        position.offset = durable;
                        save(position);
                    }
                    // Drained. If the path now names another file (rotation),
                    // that one is next, from its start, once this one has had
                    // a last look and its open event is written.
                    let rotated = std::fs::metadata(&path).is_ok_and(|metadata| file_id(&metadata) != *id);
                    if rotated && !last_look {
                        last_look = true;
                        progressed = true;
                    } else if rotated {
                        if let Some(record) = framer.flush(&name, *id)
                            && !append_patiently(&spool, vec![record], &mut stop).await
                        {
                            return;
                        }
                        open = None;
                        last_look = false;
                        progressed = true;
                    }
                }
                Err(error) => tracing::warn!(source = %name, file = %path.display(), %error, "cannot read"),
            }
        }
        if !progressed {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Complete, non-blank lines from `offset` on (at most [`READ_CHUNK`]
/// bytes) with their offsets, the bytes they took, and whether a line longer
/// than a chunk was skipped (then the bytes are that line's). A last line
/// without its newline waits for it.
fn complete_lines(file: &std::fs::File, offset: u64) -> std::io::Result<(Vec<Line>, u64, bool)> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0u8; READ_CHUNK];
    let read = file.read_at(&mut buffer, offset)?;
    buffer.truncate(read);
    let Some(last_newline) = buffer.iter().rposition(|byte| *byte == b'\n') else {
        if read < READ_CHUNK {
            return Ok((Vec::new(), 0, false));
        }
        // A line longer than a chunk: skipped whole once its end is written.
        let mut at = offset + read as u64;
        loop {
            let more = file.read_at(&mut buffer, at)?;
            if more == 0 {
                return Ok((Vec::new(), 0, false));
            }
            if let Some(newline) = buffer[..more].iter().position(|byte| *byte == b'\n') {
                return Ok((Vec::new(), at + newline as u64 + 1 - offset, true));
            }
            at += more as u64;
        }
    };
    let mut lines = Vec::new();
    let mut at = 0;
    for line in buffer[..last_newline].split(|byte| *byte == b'\n') {
        let line_offset = offset + at as u64;
        at += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        lines.push((line_offset, line.to_vec()));
    }
    Ok((lines, last_newline as u64 + 1, false))
}

/// A name as a file name: letters, digits, `-` and `_` kept, the rest `_`.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_complete_lines_with_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "one\r\n\ntwo\nthree without newline").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let (lines, consumed, _) = complete_lines(&file, 0).unwrap();
        let (records, durable) = Framer::new(FileFormat::Lines).frame(lines, consumed, "app", 7, &Metrics::default());
        assert_eq!(
            records.iter().map(|record| record.payload.as_slice()).collect::<Vec<_>>(),
            [b"one" as &[u8], b"two"]
        );
        assert_eq!(records[1].origin, "app:7:6");
        assert_eq!((consumed, durable), (10, 10));
        let (rest, more, _) = complete_lines(&file, consumed).unwrap();
        assert!(rest.is_empty() && more == 0, "the unfinished line waits");
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_skipped_once_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let long = "x".repeat(READ_CHUNK + READ_CHUNK / 2);
        std::fs::write(&path, &long).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(complete_lines(&file, 0).unwrap(), (Vec::new(), 0, false), "it waits for its end");
        std::fs::write(&path, format!("{long}\nnext\n")).unwrap();
        let (lines, consumed, overlong) = complete_lines(&file, 0).unwrap();
        assert!(lines.is_empty() && overlong);
        assert_eq!(consumed, long.len() as u64 + 1);
        let (lines, _, overlong) = complete_lines(&file, consumed).unwrap();
        assert_eq!((lines[0].1.as_slice(), overlong), (b"next" as &[u8], false));
    }

    #[test]
    fn an_open_audit_event_holds_the_durable_position_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let first =
            "type=SYSCALL msg=audit(1795946400.000:1): syscall=59 comm=\"id\"\ntype=EOE msg=audit(1795946400.000:1):\n";
        let second = "type=SYSCALL msg=audit(1795946401.000:2): syscall=59 comm=\"cat\"\n";
        std::fs::write(&path, format!("{first}{second}")).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut framer = Framer::new(FileFormat::Auditd);
        let (lines, consumed, _) = complete_lines(&file, 0).unwrap();
        let (records, durable) = framer.frame(lines, consumed, "audit", 1, &Metrics::default());
        assert_eq!(records.len(), 1, "the second event is still open");
        let event: serde_json::Value = serde_json::from_slice(&records[0].payload).unwrap();
        assert_eq!(event["comm"], "id");
        assert_eq!(durable, first.len() as u64, "a restart reads the open event again");
        assert!(framer.idle("audit", 1, consumed).is_none(), "one quiet poll is not enough");
        let (record, durable) = framer.idle("audit", 1, consumed).unwrap();
        let event: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        assert_eq!(event["comm"], "cat");
        assert_eq!(record.origin, format!("audit:1:{}", first.len()));
        assert_eq!(durable, consumed);
    }

    #[test]
    fn a_zeek_log_resumed_mid_file_rereads_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conn.log");
        let header = "#separator \\x09\n#path\tconn\n#fields\tts\tuid\n#types\ttime\tstring\n";
        let first = "1795946400.0\tC1\n";
        std::fs::write(&path, format!("{header}{first}1795946401.0\tC2\n")).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let resume_at = (header.len() + first.len()) as u64;
        let mut framer = Framer::new(FileFormat::Zeek);
        framer.resume(&file, resume_at);
        let (lines, consumed, _) = complete_lines(&file, resume_at).unwrap();
        let (records, _) = framer.frame(lines, resume_at + consumed, "zeek", 1, &Metrics::default());
        let event: serde_json::Value = serde_json::from_slice(&records[0].payload).unwrap();
        assert_eq!((event["uid"].as_str(), event["ts"].as_f64()), (Some("C2"), Some(1_795_946_401.0)));
    }
}
