//! Readers that turn logs into Riposte events: EVTX files, JSON lines and
//! JSON documents (plain or gzip), found in files and directories, and
//! syslog messages.
//!
//! Readers are synchronous and single-threaded; a caller runs one per worker
//! and spreads the work (EVTX chunks, files) over its threads.

mod discover;
mod error;
pub mod evtx;
pub mod json;
mod sink;
pub mod syslog;

pub use discover::{Discovery, Format, FormatChoice, Input, discover};
pub use error::{IngestError, Location, RecordError};
pub use evtx::{EvtxDecoder, EvtxFile};
pub use json::JsonReader;
pub use sink::{Collect, Sink};
pub use syslog::{Frame, SyslogDecoder, SyslogError, SyslogFramer};
