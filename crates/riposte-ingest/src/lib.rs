//! Readers that turn logs into Riposte events: EVTX files, JSON lines and
//! JSON documents (plain or gzip; Suricata, Zeek, Wazuh, Falco and
//! Winlogbeat records recognised), Zeek's tab-separated logs, CEF, Linux
//! audit logs and syslog, found in files and directories.
//!
//! Readers are synchronous and single-threaded; a caller runs one per worker
//! and spreads the work (EVTX chunks, files) over its threads.

pub mod auditd;
pub mod cef;
pub mod dialect;
mod discover;
mod error;
pub mod evtx;
pub mod json;
pub mod lines;
mod sink;
pub mod syslog;
pub mod zeek;

pub use auditd::AuditdDecoder;
pub use cef::CefDecoder;
pub use dialect::{Dialect, Dialects, NativeAlert, native_alert};
pub use discover::{Discovery, Format, FormatChoice, Input, discover};
pub use error::{IngestError, Location, RecordError};
pub use evtx::{EvtxDecoder, EvtxFile};
pub use json::JsonReader;
pub use lines::LineReader;
pub use sink::{Collect, Sink};
pub use syslog::{Frame, SyslogDecoder, SyslogError, SyslogFramer};
pub use zeek::{ZeekLine, ZeekTsvDecoder};
