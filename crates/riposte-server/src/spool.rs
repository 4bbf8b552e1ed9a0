//! The write-ahead spool: an accepted event is on disk before anyone is told
//! it was accepted, and stays there until its results are in the store.
//!
//! Records go to segment files (`<first seq>.seg`) as `[length u32][crc32
//! u32][seq u64][received_ms i64][source length u8][source][origin length
//! u8][origin][payload]`,
//! little-endian, the CRC covering everything after it. One writer thread
//! appends whatever is waiting and syncs once for all of it (group commit),
//! then answers every caller. The pipeline reads records back in order up
//! to the last synced one, and moves the *checkpoint* once their results are
//! committed; segments wholly below it are deleted. After a crash, a torn
//! last record is cut off and reading resumes after the checkpoint: nothing
//! acknowledged is lost, and replayed events are recognised downstream by
//! their sequence number.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// Bytes of a record before its source name.
const HEADER: usize = 4 + 4 + 8 + 8 + 1;
/// Longest source name or origin kept.
const MAX_NAME: usize = 255;
/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Appends waiting for the writer thread before callers wait (or, for UDP,
/// drop).
const QUEUE: usize = 1024;

/// Why the spool cannot take or give a record.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("the spool is full ({bytes} bytes waiting); try again later")]
    Full { bytes: u64 },
    #[error("the spool is closed")]
    Closed,
    #[error("record of {0} bytes is over the {MAX_PAYLOAD} byte limit")]
    TooLarge(usize),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |error| SpoolError::Io { path: path.to_path_buf(), error }
}

/// A record to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The source it came from (a name from the configuration).
    pub source: String,
    /// Where in its source it was, when the source can be read twice (a
    /// tailed file: its name, file id and offset). Detections of records with
    /// an origin are keyed by it, so reading the same line again after a
    /// crash does not count it twice. Empty otherwise.
    pub origin: String,
    pub received_ms: i64,
    pub payload: Vec<u8>,
}

/// A record read back, with its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spooled {
    pub seq: u64,
    pub record: Record,
}

struct Append {
    records: Vec<Record>,
    reply: oneshot::Sender<Result<u64, SpoolError>>,
}

/// What the writer has made durable, for the reader to wait on.
#[derive(Default)]
struct Durable {
    last_seq: Mutex<u64>,
    changed: Condvar,
}

/// Shared state of the spool.
pub struct Spool {
    dir: PathBuf,
    queue: mpsc::Sender<Append>,
    durable: Arc<Durable>,
    committed: AtomicU64,
    /// Bytes in live segments.
    bytes: Arc<AtomicU64>,
    max_bytes: u64,
    /// Records durable but not processed past which appends are refused.
    max_pending: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, repairing a torn tail, and
    /// starts its writer thread.
    pub fn open(dir: &Path, segment_bytes: u64, max_bytes: u64, max_pending: u64) -> Result<Arc<Spool>, SpoolError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let committed = read_checkpoint(dir)?;
        let segments = segments(dir)?;
        let mut next_seq = committed + 1;
        let mut bytes = 0;
        for (index, (first, path)) in segments.iter().enumerate() {
            let length = fs::metadata(path).map_err(io_error(path))?.len();
            if index + 1 == segments.len() {
                let (valid_length, last) = scan(path)?;
                if valid_length < length {
                    tracing::warn!(segment = %path.display(), cut = length - valid_length, "spool: cutting a torn record off the last segment");
                    let file = OpenOptions::new().write(true).open(path).map_err(io_error(path))?;
                    file.set_len(valid_length).map_err(io_error(path))?;
                    file.sync_all().map_err(io_error(path))?;
                }
                next_seq = next_seq.max(last.map_or(*first, |last| last + 1));
                bytes += valid_length;
            } else {
                bytes += length;
            }
        }
        let durable = Arc::new(Durable { last_seq: Mutex::new(next_seq - 1), changed: Condvar::new() });
        let bytes = Arc::new(AtomicU64::new(bytes));
        let (queue, receiver) = mpsc::channel(QUEUE);
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            file: None,
            segment_first: 0,
            segment_length: 0,
            segment_bytes,
            next_seq,
            durable: durable.clone(),
            bytes: bytes.clone(),
        };
        if let Some((first, path)) = segments.last() {
            let file = OpenOptions::new().append(true).open(path).map_err(io_error(path))?;
            writer.segment_length = file.metadata().map_err(io_error(path))?.len();
            writer.segment_first = *first;
            writer.file = Some(file);
        }
        std::thread::Builder::new()
            .name("riposte-spool".into())
            .spawn(move || writer.run(receiver))
            .map_err(io_error(dir))?;
        Ok(Arc::new(Spool {
            dir: dir.to_path_buf(),
            queue,
            durable,
            committed: AtomicU64::new(committed),
            bytes,
            max_bytes,
            max_pending,
        }))
    }

    /// Appends records and waits until they are on disk. Returns the
    /// sequence number of the last one.
    pub async fn append(&self, records: Vec<Record>) -> Result<u64, SpoolError> {
        self.check(&records)?;
        let (reply, answer) = oneshot::channel();
        self.queue.send(Append { records, reply }).await.map_err(|_| SpoolError::Closed)?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    /// Like [`Spool::append`], but refuses at once when the writer's queue is
    /// full (for UDP, which cannot slow its senders down).
    pub fn try_append(&self, records: Vec<Record>) -> Result<oneshot::Receiver<Result<u64, SpoolError>>, SpoolError> {
        self.check(&records)?;
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Append { records, reply }).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => SpoolError::Full { bytes: self.bytes() },
            mpsc::error::TrySendError::Closed(_) => SpoolError::Closed,
        })?;
        Ok(answer)
    }

    fn check(&self, records: &[Record]) -> Result<(), SpoolError> {
        if let Some(record) = records.iter().find(|record| record.payload.len() > MAX_PAYLOAD) {
            return Err(SpoolError::TooLarge(record.payload.len()));
        }
        if !self.has_room() {
            return Err(SpoolError::Full { bytes: self.bytes() });
        }
        Ok(())
    }

    /// Whether the spool has room for more (for readiness and back-pressure):
    /// under its size limit, and not too far ahead of the pipeline.
    pub fn has_room(&self) -> bool {
        self.bytes() < self.max_bytes && self.depth() < self.max_pending
    }

    /// Bytes in live segments.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The last durable record.
    pub fn last_seq(&self) -> u64 {
        *self.durable.last_seq.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The last record whose results are committed.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// Records durable but not yet committed.
    pub fn depth(&self) -> u64 {
        self.last_seq().saturating_sub(self.committed())
    }

    /// Waits until a record after `seq` is durable, or `timeout` passes.
    /// Returns the last durable sequence number.
    pub fn wait_after(&self, seq: u64, timeout: Duration) -> u64 {
        let last = self.durable.last_seq.lock().unwrap_or_else(|poison| poison.into_inner());
        let (last, _) = self
            .durable
            .changed
            .wait_timeout_while(last, timeout, |last| *last <= seq)
            .unwrap_or_else(|poison| poison.into_inner());
        *last
    }

    /// Records everything up to `seq` as done: it will not be read again,
    /// and segments wholly before it are deleted.
    pub fn commit(&self, seq: u64) -> Result<(), SpoolError> {
        write_checkpoint(&self.dir, seq)?;
        self.committed.store(seq, Ordering::Relaxed);
        let segments = segments(&self.dir)?;
        for pair in segments.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            if *next_first <= seq + 1 {
                let length = fs::metadata(path).map(|metadata| metadata.len()).unwrap_or(0);
                fs::remove_file(path).map_err(io_error(path))?;
                self.bytes.fetch_sub(length.min(self.bytes()), Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// A reader from the record after the checkpoint.
    pub fn reader(self: &Arc<Self>) -> Reader {
        Reader {
            spool: self.clone(),
            next_seq: self.committed() + 1,
            file: None,
            offset: 0,
            buffer: Vec::new(),
            used: 0,
        }
    }
}

struct Writer {
    dir: PathBuf,
    file: Option<File>,
    segment_first: u64,
    segment_length: u64,
    segment_bytes: u64,
    next_seq: u64,
    durable: Arc<Durable>,
    bytes: Arc<AtomicU64>,
}

impl Writer {
    fn run(&mut self, mut receiver: mpsc::Receiver<Append>) {
        let mut batch: Vec<Append> = Vec::new();
        while let Some(first) = receiver.blocking_recv() {
            batch.push(first);
            while batch.len() < QUEUE {
                match receiver.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let mut lasts = Vec::with_capacity(batch.len());
            let mut failure = None;
            for append in &batch {
                match self.write(&append.records) {
                    Ok(last) => lasts.push(last),
                    Err(error) => {
                        failure = Some(error.to_string());
                        break;
                    }
                }
            }
            if failure.is_none()
                && let Some(file) = &self.file
                && let Err(error) = file.sync_data()
            {
                failure = Some(format!("spool: cannot sync: {error}"));
            }
            match failure {
                None => {
                    let last = self.next_seq - 1;
                    *self.durable.last_seq.lock().unwrap_or_else(|poison| poison.into_inner()) = last;
                    self.durable.changed.notify_all();
                    for (append, last) in batch.drain(..).zip(lasts) {
                        let _ = append.reply.send(Ok(last));
                    }
                }
                Some(reason) => {
                    tracing::error!(error = %reason, "spool: append failed");
                    for append in batch.drain(..) {
                        let _ = append.reply.send(Err(SpoolError::Io {
                            path: self.dir.clone(),
                            error: io::Error::other(reason.clone()),
                        }));
                    }
                    // What was written before the failure is not announced;
                    // the next open cuts or keeps it as a whole record.
                }
            }
        }
    }

    /// Writes records (not yet synced); returns the last sequence number.
    fn write(&mut self, records: &[Record]) -> Result<u64, SpoolError> {
        let mut buffer = Vec::new();
        for record in records {
            if self.file.is_none() || self.segment_length >= self.segment_bytes {
                self.rotate()?;
            }
            buffer.clear();
            encode(self.next_seq, record, &mut buffer);
            let path = segment_path(&self.dir, self.segment_first);
            self.file.as_mut().ok_or(SpoolError::Closed)?.write_all(&buffer).map_err(io_error(&path))?;
            self.segment_length += buffer.len() as u64;
            self.bytes.fetch_add(buffer.len() as u64, Ordering::Relaxed);
            self.next_seq += 1;
        }
        Ok(self.next_seq - 1)
    }

    fn rotate(&mut self) -> Result<(), SpoolError> {
        if let Some(file) = &self.file {
            file.sync_data().map_err(io_error(&self.dir))?;
        }
        let path = segment_path(&self.dir, self.next_seq);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_error(&path))?;
        // The new file's name must survive a crash too.
        File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(io_error(&self.dir))?;
        self.file = Some(file);
        self.segment_first = self.next_seq;
        self.segment_length = 0;
        Ok(())
    }
}

fn encode(seq: u64, record: &Record, out: &mut Vec<u8>) {
    let source = &record.source.as_bytes()[..record.source.len().min(MAX_NAME)];
    let origin = &record.origin.as_bytes()[..record.origin.len().min(MAX_NAME)];
    let length = (HEADER - 8 + source.len() + 1 + origin.len() + record.payload.len()) as u32;
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&record.received_ms.to_le_bytes());
    out.push(source.len() as u8);
    out.extend_from_slice(source);
    out.push(origin.len() as u8);
    out.extend_from_slice(origin);
    out.extend_from_slice(&record.payload);
    let crc = crc32fast::hash(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the record at the start of `bytes` (the part after its length
/// and CRC), checking the CRC.
fn decode(crc: u32, body: &[u8]) -> Option<Spooled> {
    if crc32fast::hash(body) != crc || body.len() < HEADER - 8 {
        return None;
    }
    let seq = u64::from_le_bytes(body[0..8].try_into().ok()?);
    let received_ms = i64::from_le_bytes(body[8..16].try_into().ok()?);
    let source_length = body[16] as usize;
    let source = body.get(17..17 + source_length)?;
    let origin_at = 17 + source_length;
    let origin_length = *body.get(origin_at)? as usize;
    let origin = body.get(origin_at + 1..origin_at + 1 + origin_length)?;
    let payload = body.get(origin_at + 1 + origin_length..)?;
    Some(Spooled {
        seq,
        record: Record {
            source: String::from_utf8_lossy(source).into_owned(),
            origin: String::from_utf8_lossy(origin).into_owned(),
            received_ms,
            payload: payload.to_vec(),
        },
    })
}

/// The valid length of a segment and its last sequence number.
fn scan(path: &Path) -> Result<(u64, Option<u64>), SpoolError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let mut at = 0;
    let mut last = None;
    while at + 8 <= bytes.len() {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        let Some(body) = bytes.get(at + 8..at + 8 + length) else { break };
        let Some(record) = decode(crc, body) else { break };
        last = Some(record.seq);
        at += 8 + length;
    }
    Ok((at as u64, last))
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

/// The segments, by first sequence number.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let first = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".seg"))
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

fn read_checkpoint(dir: &Path) -> Result<u64, SpoolError> {
    let path = dir.join("checkpoint");
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| SpoolError::Io {
            path: path.clone(),
            error: io::Error::new(io::ErrorKind::InvalidData, "checkpoint is not a number"),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(io_error(&path)(error)),
    }
}

fn write_checkpoint(dir: &Path, seq: u64) -> Result<(), SpoolError> {
    let path = dir.join("checkpoint");
    let temporary = dir.join("checkpoint.new");
    let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
    file.write_all(seq.to_string().as_bytes()).map_err(io_error(&temporary))?;
    file.sync_data().map_err(io_error(&temporary))?;
    fs::rename(&temporary, &path).map_err(io_error(&path))?;
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(io_error(dir))
}

/// Reads records back in order.
pub struct Reader {
    spool: Arc<Spool>,
    next_seq: u64,
    file: Option<(File, PathBuf)>,
    /// Where `buffer` starts in the file, and how far into it records are read.
    offset: u64,
    buffer: Vec<u8>,
    used: usize,
}

/// Bytes read from a segment at once.
const READ_AHEAD: usize = 1 << 20;

impl Reader {
    /// The next durable records, at most `max`, waiting up to `timeout` for
    /// the first. Empty when there were none in time.
    pub fn next_batch(&mut self, max: usize, timeout: Duration) -> Result<Vec<Spooled>, SpoolError> {
        let durable = self.spool.wait_after(self.next_seq - 1, timeout);
        let mut out = Vec::new();
        while self.next_seq <= durable && out.len() < max {
            match self.read_one()? {
                Some(record) => {
                    self.next_seq = record.seq + 1;
                    out.push(record);
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn read_one(&mut self) -> Result<Option<Spooled>, SpoolError> {
        loop {
            if self.file.is_none() {
                // The segment holding `next_seq`: the last one starting at or before it.
                let segments = segments(&self.spool.dir)?;
                let Some((first, path)) = segments.into_iter().rev().find(|(first, _)| *first <= self.next_seq) else {
                    return Ok(None);
                };
                let file = File::open(&path).map_err(io_error(&path))?;
                self.offset = 0;
                self.buffer.clear();
                self.used = 0;
                self.file = Some((file, path));
                // Skip to `next_seq` (after a restart it may be mid-segment).
                if first < self.next_seq {
                    while let Some(record) = self.read_at_offset()? {
                        if record.seq + 1 >= self.next_seq {
                            break;
                        }
                    }
                }
            }
            match self.read_at_offset()? {
                Some(record) if record.seq >= self.next_seq => return Ok(Some(record)),
                Some(_) => continue,
                None => {
                    // End of this segment: is there a later one?
                    let (_, path) = self.file.as_ref().expect("open segment");
                    let next = segment_path(&self.spool.dir, self.next_seq);
                    if next.exists() && next != *path {
                        self.file = None;
                        continue;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// The next record of the open segment, reading ahead a megabyte at a
    /// time; `None` at its (current) end.
    fn read_at_offset(&mut self) -> Result<Option<Spooled>, SpoolError> {
        loop {
            let available = &self.buffer[self.used..];
            if available.len() >= 8 {
                let length = u32::from_le_bytes(available[..4].try_into().unwrap_or_default()) as usize;
                if available.len() >= 8 + length {
                    let crc = u32::from_le_bytes(available[4..8].try_into().unwrap_or_default());
                    let at = self.offset + self.used as u64;
                    return match decode(crc, &available[8..8 + length]) {
                        Some(record) => {
                            self.used += 8 + length;
                            Ok(Some(record))
                        }
                        None => Err(SpoolError::Io {
                            path: self.file.as_ref().map(|(_, path)| path.clone()).unwrap_or_default(),
                            error: io::Error::new(io::ErrorKind::InvalidData, format!("corrupt record at offset {at}")),
                        }),
                    };
                }
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    /// Keeps what is left of the buffer and reads more after it. False when
    /// there is nothing more in the file yet.
    fn refill(&mut self) -> Result<bool, SpoolError> {
        use std::os::unix::fs::FileExt;
        let Some((file, path)) = &self.file else { return Ok(false) };
        self.buffer.drain(..self.used);
        self.offset += self.used as u64;
        self.used = 0;
        let kept = self.buffer.len();
        let wanted = READ_AHEAD.max(kept + 8 + MAX_PAYLOAD + 2 * MAX_NAME + HEADER);
        self.buffer.resize(wanted, 0);
        let read = file.read_at(&mut self.buffer[kept..], self.offset + kept as u64).map_err(io_error(path))?;
        self.buffer.truncate(kept + read);
        Ok(read > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &str) -> Record {
        Record { source: "test".into(), origin: String::new(), received_ms: 7, payload: payload.as_bytes().to_vec() }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn appends_reads_commits_and_survives_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime();
        {
            let spool = Spool::open(dir.path(), 200, 1 << 30, u64::MAX).unwrap();
            let last =
                runtime.block_on(spool.append((0..10).map(|n| record(&format!("event {n}"))).collect())).unwrap();
            assert_eq!(last, 10);
            assert!(segments(dir.path()).unwrap().len() > 1, "small segments rotate");
            let mut reader = spool.reader();
            let batch = reader.next_batch(4, Duration::from_secs(1)).unwrap();
            assert_eq!(batch.iter().map(|spooled| spooled.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
            assert_eq!(batch[2].record, record("event 2"));
            spool.commit(4).unwrap();
            assert_eq!(spool.depth(), 6);
        }
        // A crash in the middle of a record: it is cut off on reopening.
        let segments_now = segments(dir.path()).unwrap();
        let (_, last_segment) = segments_now.last().unwrap();
        let mut file = OpenOptions::new().append(true).open(last_segment).unwrap();
        file.write_all(&[42, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let spool = Spool::open(dir.path(), 200, 1 << 30, u64::MAX).unwrap();
        let mut reader = spool.reader();
        let rest = reader.next_batch(100, Duration::from_secs(1)).unwrap();
        assert_eq!(rest.iter().map(|spooled| spooled.seq).collect::<Vec<_>>(), (5..=10).collect::<Vec<_>>());
        assert_eq!(rest[0].record, record("event 4"));
        let next = runtime.block_on(spool.append(vec![record("after")])).unwrap();
        assert_eq!(next, 11, "numbering goes on after the torn record");
        assert_eq!(reader.next_batch(10, Duration::from_secs(1)).unwrap()[0].record, record("after"));
        spool.commit(11).unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 1, "committed segments are deleted");
    }

    #[test]
    fn refuses_when_full_or_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime();
        let spool = Spool::open(dir.path(), 1 << 20, 100, u64::MAX).unwrap();
        runtime.block_on(spool.append(vec![record(&"x".repeat(200))])).unwrap();
        assert!(matches!(runtime.block_on(spool.append(vec![record("more")])), Err(SpoolError::Full { .. })));
        assert!(!spool.has_room());
        let big =
            Record { source: "s".into(), origin: String::new(), received_ms: 0, payload: vec![0; MAX_PAYLOAD + 1] };
        assert!(matches!(runtime.block_on(spool.append(vec![big])), Err(SpoolError::TooLarge(_))));
        assert!(matches!(spool.try_append(vec![record("x")]), Err(SpoolError::Full { .. })));
        let mut reader = spool.reader();
        assert_eq!(reader.next_batch(10, Duration::from_millis(10)).unwrap().len(), 1);
        assert!(reader.next_batch(10, Duration::from_millis(10)).unwrap().is_empty(), "waits, then nothing");
    }
}
