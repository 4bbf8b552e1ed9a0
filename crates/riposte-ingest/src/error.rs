use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Why an input could not be read at all.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an EVTX file ({reason})")]
    NotEvtx { path: PathBuf, reason: String },
    #[error(
        "{path}: unrecognised file type (expected EVTX, JSON or JSON lines, plain or gzip); name the format with --input-format"
    )]
    UnknownFormat { path: PathBuf },
    #[error("{path}: larger than the {limit} bytes a JSON document may have (split it into JSON lines)")]
    TooLarge { path: PathBuf, limit: u64 },
}

impl IngestError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io { path: path.into(), source }
    }
}

/// Where in a file a record was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// An EVTX chunk (0-based).
    Chunk(u64),
    /// An EVTX record id.
    Record(u64),
    /// A line (1-based).
    Line(u64),
    /// The n-th JSON document of a file (1-based).
    Document(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Chunk(chunk) => write!(f, "chunk {chunk}"),
            Location::Record(record) => write!(f, "record {record}"),
            Location::Line(line) => write!(f, "line {line}"),
            Location::Document(document) => write!(f, "document {document}"),
        }
    }
}

/// A record that was skipped: the rest of the file goes on.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{}: {location}: {reason}", file.display())]
pub struct RecordError {
    pub file: PathBuf,
    pub location: Location,
    pub reason: String,
}
