//! Windows event logs (EVTX) into events.
//!
//! An EVTX file is a 4 KiB header followed by independent 64 KiB chunks, so
//! chunks are read with positional reads and decoded on any thread: a caller
//! spreads the chunks of many files over all cores. Records are rendered by
//! the `evtx` crate to JSON and flattened into events with the field names
//! Sigma's Windows rules use (see `riposte_event::json`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use evtx::{EvtxChunkData, ParserSettings};
use riposte_event::{Event, JsonDecoder};

use crate::error::{IngestError, Location, RecordError};
use crate::sink::Sink;

/// Size of the file header.
pub const HEADER_SIZE: u64 = 4096;
/// Size of one chunk.
pub const CHUNK_SIZE: u64 = 65536;
/// Most records one chunk can hold (each takes at least 24 bytes).
const MAX_RECORDS_PER_CHUNK: usize = (CHUNK_SIZE as usize) / 24;
/// Errors in a row after which the rest of a chunk is given up.
const MAX_ERRORS_IN_A_ROW: usize = 16;

/// An open EVTX file.
#[derive(Debug)]
pub struct EvtxFile {
    file: File,
    path: PathBuf,
    chunks: u64,
}

impl EvtxFile {
    pub fn open(path: &Path) -> Result<EvtxFile, IngestError> {
        let file = File::open(path).map_err(|error| IngestError::io(path, error))?;
        let size = file.metadata().map_err(|error| IngestError::io(path, error))?.len();
        let mut magic = [0u8; 8];
        read_exact_at(&file, &mut magic, 0)
            .map_err(|_| IngestError::NotEvtx { path: path.to_path_buf(), reason: "shorter than its header".into() })?;
        if &magic != b"ElfFile\0" {
            return Err(IngestError::NotEvtx { path: path.to_path_buf(), reason: "no ElfFile signature".into() });
        }
        // Chunks present on disk; a partial last chunk is reported when read.
        let chunks = size.saturating_sub(HEADER_SIZE).div_ceil(CHUNK_SIZE);
        Ok(EvtxFile { file, path: path.to_path_buf(), chunks })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// Reads chunk `index` into `buffer`. `Ok(false)` for an unused (all-zero)
    /// chunk.
    pub fn read_chunk(&self, index: u64, buffer: &mut Vec<u8>) -> Result<bool, RecordError> {
        buffer.clear();
        buffer.resize(CHUNK_SIZE as usize, 0);
        let offset = HEADER_SIZE + index * CHUNK_SIZE;
        read_exact_at(&self.file, buffer, offset).map_err(|error| RecordError {
            file: self.path.clone(),
            location: Location::Chunk(index),
            reason: format!("truncated chunk: {error}"),
        })?;
        Ok(buffer.iter().any(|byte| *byte != 0))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buffer: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buffer.is_empty() {
        match file.seek_read(buffer, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            read => {
                buffer = &mut buffer[read..];
                offset += read as u64;
            }
        }
    }
    Ok(())
}

/// Decodes EVTX chunks into events. One per worker.
pub struct EvtxDecoder {
    settings: Arc<ParserSettings>,
    json: JsonDecoder,
    event: Event,
}

impl Default for EvtxDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl EvtxDecoder {
    pub fn new() -> Self {
        EvtxDecoder {
            settings: Arc::new(ParserSettings::new().num_threads(1)),
            json: JsonDecoder::new(),
            event: Event::new(),
        }
    }

    /// Decodes the records of one chunk (`data`, as read by
    /// [`EvtxFile::read_chunk`]) into `sink`. Returns the number of records.
    pub fn decode_chunk(&mut self, file: &Path, index: u64, data: Vec<u8>, sink: &mut impl Sink) -> u64 {
        let chunk_error =
            |reason: String| RecordError { file: file.to_path_buf(), location: Location::Chunk(index), reason };
        let mut chunk_data = match EvtxChunkData::new(data, false) {
            Ok(chunk_data) => chunk_data,
            Err(error) => {
                sink.skipped(chunk_error(format!("corrupt chunk header: {error}")));
                return 0;
            }
        };
        let mut chunk = match chunk_data.parse(self.settings.clone()) {
            Ok(chunk) => chunk,
            Err(error) => {
                sink.skipped(chunk_error(format!("corrupt chunk: {error}")));
                return 0;
            }
        };
        let mut records = 0;
        let mut errors_in_a_row = 0;
        for record in chunk.iter().take(MAX_RECORDS_PER_CHUNK) {
            let (record_id, rendered) = match record {
                Ok(record) => (record.event_record_id, record.into_json_bytes()),
                Err(error) => {
                    sink.skipped(chunk_error(format!("corrupt record: {error}")));
                    errors_in_a_row += 1;
                    if errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
                        sink.skipped(chunk_error("too many corrupt records; rest of the chunk skipped".into()));
                        break;
                    }
                    continue;
                }
            };
            let record_error = |reason: String| RecordError {
                file: file.to_path_buf(),
                location: Location::Record(record_id),
                reason,
            };
            let json = match rendered {
                Ok(json) => json.data,
                Err(error) => {
                    sink.skipped(record_error(format!("cannot render: {error}")));
                    continue;
                }
            };
            errors_in_a_row = 0;
            if let Err(error) = self.json.decode_into(&json, &mut self.event) {
                sink.skipped(record_error(error.to_string()));
                continue;
            }
            self.event.record_id = Some(record_id);
            records += 1;
            sink.event(&mut self.event, json.len() as u64);
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Collect;

    #[test]
    fn rejects_what_is_not_evtx() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.evtx");
        std::fs::write(&path, b"not an event log at all").unwrap();
        assert!(EvtxFile::open(&path).unwrap_err().to_string().contains("no ElfFile signature"));
        std::fs::write(&path, b"Elf").unwrap();
        assert!(EvtxFile::open(&path).unwrap_err().to_string().contains("shorter than its header"));
    }

    #[test]
    fn truncated_and_garbage_chunks_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.evtx");
        let mut bytes = b"ElfFile\0".to_vec();
        bytes.resize(HEADER_SIZE as usize, 0);
        // One chunk of garbage, then half a chunk.
        bytes.extend((0..CHUNK_SIZE).map(|i| (i % 251) as u8));
        bytes.extend(std::iter::repeat_n(7u8, (CHUNK_SIZE / 2) as usize));
        std::fs::write(&path, &bytes).unwrap();
        let file = EvtxFile::open(&path).unwrap();
        assert_eq!(file.chunk_count(), 2);
        let mut decoder = EvtxDecoder::new();
        let mut sink = Collect::default();
        let mut buffer = Vec::new();
        assert!(file.read_chunk(0, &mut buffer).unwrap());
        assert_eq!(decoder.decode_chunk(&path, 0, std::mem::take(&mut buffer), &mut sink), 0);
        let truncated = file.read_chunk(1, &mut buffer).unwrap_err();
        assert!(truncated.to_string().contains("chunk 1: truncated chunk"), "{truncated}");
        assert!(sink.events.is_empty());
        assert!(sink.skipped[0].to_string().contains("chunk 0: corrupt chunk"), "{:?}", sink.skipped);
    }
}
